// Package directio writes files around the page cache.
//
// A Writer appends to a file through two descriptors: one opened with
// O_DIRECT, which takes the bytes in aligned chunks straight to the disk,
// and an ordinary one for the unaligned tail that Flush writes last. Bulk
// copies nobody is waiting to read — an upload to the UFS, a rebalance's
// copy arriving at its new owner — then neither push hot data out of the
// page cache nor leave gigabytes of dirty pages for the final fsync, and
// on a virtual machine whose host backs guest memory lazily they skip the
// host fault that every freshly allocated page-cache page costs there
// (see BENCHMARKS.md, "bench pagecache").
//
// Where the file system refuses O_DIRECT (tmpfs, some network file
// systems) or on other systems than Linux, the Writer falls back to
// ordinary writes; callers see no difference but speed. The caller still
// calls Sync on the file to make the tail and the metadata durable.
package directio
