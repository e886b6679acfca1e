// Package persistence is cairn's view of the under-file-system (UFS): the
// slower, durable store the cache sits in front of.
//
// # Paths
//
// A cairn path is absolute and slash-separated ("/datasets/a/part-0001").
// CleanPath is the one gate every path from a user passes: it refuses
// relative paths, "." and ".." segments, empty segments, NUL bytes, and
// over-long names instead of silently rewriting them, so "/a/../b" is an
// error rather than "/b". The result is canonical: one spelling per file.
//
// # The local-directory UFS
//
// Local serves a directory as a UFS. It resolves every path through an
// os.Root opened on that directory, so no path can leave it: not with
// "..", not as an absolute path, and not through a symbolic link (a link
// that points outside the root fails to resolve; the kernel is asked at
// every step, so a link swapped in mid-way cannot escape either).
//
// Writes are atomic: Create writes a temporary file next to the target
// (named with TempPrefix, so listings skip it) and Commit syncs it and
// renames it over the target, then syncs the directory. A reader sees the
// old file or the new one, never a mix, and a crash leaves at most a
// temporary file, which RemoveInterruptedWrites deletes once it is old
// enough not to be another process's write in progress.
package persistence
