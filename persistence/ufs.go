package persistence

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is wrapped when a path does not exist in the UFS.
var ErrNotFound = errors.New("not found in the UFS")

// Info describes one file (or directory) in the UFS.
type Info struct {
	// Path is the clean cairn path.
	Path    string
	Size    int64
	ModTime time.Time
	IsDir   bool
	// ETag and VersionID identify an object in an object store (empty
	// where the store has none: a local directory, an unversioned bucket).
	ETag      string
	VersionID string
}

// Reader reads one UFS file. ReadAt may be called concurrently.
type Reader interface {
	io.ReadCloser
	io.ReaderAt
	// Info describes the file as it was opened.
	Info() Info
}

// Writer writes one UFS file atomically: nothing is visible at the path
// until Commit returns nil; Abort (or Close without Commit) discards it.
type Writer interface {
	io.Writer
	// ReadFrom appends what r holds until r ends, without an
	// intermediate buffer of the caller's.
	io.ReaderFrom
	// Written returns the size and XXH64 of the bytes written so far, as
	// the writer received them (for a copy that did not pass through the
	// caller), and the first write error.
	Written() (size int64, xxh64 uint64, err error)
	// Flush makes every byte written so far durable in the store short of
	// publishing it, so that Commit is one short step (a rename, a
	// multipart upload's completion) that can be timed against a lease.
	Flush() error
	// Commit makes the written bytes durable and visible at the path,
	// replacing what was there, and returns the new file's Info.
	Commit() (Info, error)
	// Abort discards the write. It is safe after Commit (then it does
	// nothing).
	Abort() error
}

// UFS is an under-file-system. Every path is a clean cairn path (see
// CleanPath); implementations refuse others with ErrInvalidPath and never
// touch anything outside their root.
type UFS interface {
	// Open opens a file for reading.
	Open(ctx context.Context, path string) (Reader, error)
	// Create starts an atomic write of path, creating parent directories.
	Create(ctx context.Context, path string) (Writer, error)
	// Stat describes a file or directory.
	Stat(ctx context.Context, path string) (Info, error)
	// Walk calls fn for every file under dir, depth first, the names in
	// each directory in lexical order, skipping writes in progress. fn's
	// error stops it.
	Walk(ctx context.Context, dir string, fn func(Info) error) error
	// Delete removes a file. Deleting a missing file is ErrNotFound.
	Delete(ctx context.Context, path string) error
}

// VersionedOpener is a UFS that can open one version of a file (an object
// store with versioning): a restore then reads exactly the version the
// journal recorded, whatever was written over it since.
type VersionedOpener interface {
	OpenVersion(ctx context.Context, path, version string) (Reader, error)
}

// Sweeper is a UFS whose interrupted writes leave something behind that
// only it can find (an object store's unfinished multipart uploads).
type Sweeper interface {
	AbortInterruptedUploads(ctx context.Context, olderThan time.Duration) (int, error)
}

// Prober is a UFS that can check, before it is mounted, that it will work:
// the store answers, the bucket exists, the credentials are accepted.
type Prober interface {
	Probe(ctx context.Context) error
}
