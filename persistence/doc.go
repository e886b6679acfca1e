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
//
// # The S3 UFS
//
// S3 serves a bucket, or a prefix of one, through aws-sdk-go-v2: the cairn
// path /a/b under the mount is the object PREFIX/a/b. S3 has no rename,
// so a write is atomic in S3's own way: a file of one part is a single PUT
// at Commit; a larger one is a multipart upload whose parts are sent as
// they fill (ParallelParts at a time, at most ParallelParts+1 part buffers
// in memory), and the object appears only when Commit completes the
// upload. Flush sends every part first, so that Commit is one short
// request, timed by its caller against a lease. Reads are pinned to the
// version (or ETag) opened. Credentials come from the process's AWS
// environment, never from the mount.
//
// # Mounts
//
// A mount serves a path and everything below it with one UFS, named by a
// URI and options (ParseURI: file:///DIR, s3://BUCKET/PREFIX). Resolve
// finds the mount of a path, the one with the longest path that holds it;
// it and ParseURI do no IO, so the state machine uses them as they are.
// Mounts opens each mount's UFS once per process and counts what it is
// asked per mount (Metrics).
package persistence
