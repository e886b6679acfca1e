// Package blockstore is a worker's cache on its local disk: file data as
// fixed-size block files, and a pebble index of what is cached.
//
// # Layout
//
//	DIR/blocks/<k[0:2]>/<k>/<n>   block n of a cached file; k = the first 16
//	                              bytes of SHA-256(path) in hex, then "-v<version>"
//	DIR/index/                    pebble: "f/<path>" → the current version's Entry (JSON),
//	                              "p/<path>" → the older version kept beside it
//
// A path holds its current version and at most one older version beside
// it (slots.go): the one the namespace still publishes while a newer one
// is written, kept until the newer one is known to be published.
//
// # Writes
//
// A Writer cuts the bytes into blocks as they arrive and reserves space
// for each block before writing it. Nothing is visible until Commit has
// checked the size and the XXH64 checksum the caller promised, synced the
// block files and written the index entry; Abort (or a failed check)
// removes every block written and releases the reservation.
//
// # Quota and eviction
//
// Used bytes are the sizes of the block files present plus the
// reservations of writes in progress, and never exceed the capacity. When
// a reservation does not fit, the least recently used evictable files are
// removed until it does. A file is evictable unless it is pinned (the
// CACHE_ONLY mount) or not yet persisted to the UFS (ASYNC_THROUGH until
// its upload): such data is never evicted, and when only such data fills
// the quota, writes fail with ErrNoSpace.
package blockstore
