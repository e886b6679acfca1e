package persistence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/cairnhq/cairn/directio"
)

// TempPrefix starts the names of writes in progress; Walk skips them.
const TempPrefix = ".cairn-tmp-"

// Local is a UFS on a local directory.
type Local struct {
	dir  string
	root *os.Root
}

var _ UFS = (*Local)(nil)

// NewLocal serves dir (created if missing) as a UFS.
func NewLocal(dir string) (*Local, error) { return openLocal(dir, true) }

// openLocal serves dir as a UFS; a missing dir is created only with
// create, and is an error otherwise.
func openLocal(dir string, create bool) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("UFS root %s: %w", dir, err)
	}
	if create {
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("create UFS root %s: %w", abs, err)
		}
	} else if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("UFS root %s: %w", abs, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("UFS root %s is not a directory", abs)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("open UFS root %s: %w", abs, err)
	}
	return &Local{dir: abs, root: root}, nil
}

// Dir is the absolute path of the root directory.
func (l *Local) Dir() string { return l.dir }

// Close releases the root directory.
func (l *Local) Close() error { return l.root.Close() }

// RemoveInterruptedWrites deletes the temporary files of writes that
// have not been touched for olderThan: writes a crash interrupted. Several
// processes may write to one UFS, so a fresh temporary file is someone's
// write in progress and is left alone. It returns how many it removed.
func (l *Local) RemoveInterruptedWrites(olderThan time.Duration) (int, error) {
	n := 0
	cutoff := time.Now().Add(-olderThan)
	err := fs.WalkDir(l.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable corners are reported when used
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), TempPrefix) {
			return nil
		}
		if fi, err := d.Info(); err != nil || fi.ModTime().After(cutoff) {
			return nil
		}
		n++
		{
			if err := l.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove interrupted write %s: %w", p, err)
			}
		}
		return nil
	})
	return n, err
}

// rel turns a cairn path into a path relative to the root.
func rel(p string) (string, string, error) {
	c, err := CleanPath(p)
	if err != nil {
		return "", "", err
	}
	if c == "/" {
		return c, ".", nil
	}
	return c, c[1:], nil
}

func notFound(p string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, p)
	}
	return fmt.Errorf("UFS %s: %w", p, err)
}

func infoOf(p string, fi fs.FileInfo) Info {
	return Info{Path: p, Size: fi.Size(), ModTime: fi.ModTime(), IsDir: fi.IsDir()}
}

// Open opens a regular file for reading.
func (l *Local) Open(ctx context.Context, path string) (Reader, error) {
	p, r, err := rel(path)
	if err != nil {
		return nil, err
	}
	f, err := l.root.Open(r)
	if err != nil {
		return nil, notFound(p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, notFound(p, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrInvalidPath, p)
	}
	return &localReader{File: f, info: infoOf(p, fi)}, nil
}

type localReader struct {
	*os.File
	info Info
}

func (r *localReader) Info() Info { return r.info }

// Create starts an atomic write of path.
func (l *Local) Create(ctx context.Context, path string) (Writer, error) {
	p, r, err := rel(path)
	if err != nil {
		return nil, err
	}
	if p == "/" {
		return nil, fmt.Errorf("%w: cannot write the root", ErrInvalidPath)
	}
	dir := filepath.Dir(r)
	if err := l.root.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("UFS: create the folder of %s: %w", p, err)
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	tmp := filepath.Join(dir, TempPrefix+hex.EncodeToString(rnd[:]))
	f, err := l.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("UFS: start writing %s: %w", p, err)
	}
	w := &localWriter{l: l, path: p, rel: r, dir: dir, tmp: tmp, f: f, sum: xxhash.New()}
	w.dw = directio.New(f, func(flag int) (*os.File, error) { return l.root.OpenFile(tmp, flag, 0) })
	return w, nil
}

// localWriter writes a UFS file through a temporary file, with direct I/O
// where the file system allows (package directio): an upload then neither
// fills the page cache with a second copy of data the worker already
// caches nor leaves gigabytes of dirty pages for the fsync at Commit.
type localWriter struct {
	l              *Local
	path, rel, dir string
	tmp            string
	f              *os.File
	dw             *directio.Writer
	n              int64 // bytes accepted
	sum            *xxhash.Digest
	mu             sync.Mutex
	done           bool
	flushed        bool // Flush ran: the temporary file is complete and synced
}

func (w *localWriter) Write(b []byte) (int, error) {
	n, err := w.dw.Write(b)
	w.count(b[:n])
	if err != nil {
		return n, fmt.Errorf("UFS: write %s: %w", w.path, err)
	}
	return n, nil
}

// count adds bytes taken to the size and checksum Written reports.
func (w *localWriter) count(b []byte) {
	w.sum.Write(b)
	w.n += int64(len(b))
}

// ReadFrom reads r to its end, hashing the bytes as they pass.
func (w *localWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := w.dw.ReadFrom(io.TeeReader(r, writerFunc(func(b []byte) (int, error) { w.count(b); return len(b), nil })))
	if err != nil {
		return n, fmt.Errorf("UFS: write %s: %w", w.path, err)
	}
	return n, nil
}

// writerFunc is an io.Writer made of a function.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// release closes the files.
func (w *localWriter) release() {
	w.dw.Close()
	w.f.Close()
}

// Flush writes what direct I/O still buffers and syncs the temporary
// file: Commit is then a rename.
func (w *localWriter) Flush() error {
	if w.flushed {
		return nil
	}
	w.flushed = true
	if err := w.dw.Flush(); err != nil {
		return fmt.Errorf("UFS: write %s: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("UFS: sync %s: %w", w.path, err)
	}
	return nil
}

func (w *localWriter) Written() (int64, uint64, error) {
	return w.n, w.sum.Sum64(), nil
}

func (w *localWriter) Commit() (Info, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return Info{}, fmt.Errorf("UFS write of %s already ended", w.path)
	}
	w.done = true
	fail := func(what string, err error) (Info, error) {
		w.release()
		w.l.root.Remove(w.tmp)
		return Info{}, fmt.Errorf("UFS: %s %s: %w", what, w.path, err)
	}
	if err := w.Flush(); err != nil {
		w.release()
		w.l.root.Remove(w.tmp)
		return Info{}, err
	}
	// The file's record after the sync is the one the rename keeps (size
	// and modification time), so it is also the answer.
	st, err := w.f.Stat()
	if err != nil {
		return fail("check the length of", err)
	} else if st.Size() != w.n {
		return fail("check the length of", fmt.Errorf("the temporary file holds %d bytes, %d were written", st.Size(), w.n))
	}
	w.release()
	if err := w.l.root.Rename(w.tmp, w.rel); err != nil {
		w.l.root.Remove(w.tmp)
		return Info{}, fmt.Errorf("UFS: put %s in place: %w", w.path, err)
	}
	if d, err := w.l.root.Open(w.dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return Info{}, fmt.Errorf("UFS: sync the folder of %s: %w", w.path, err)
		}
	}
	return infoOf(w.path, st), nil
}

func (w *localWriter) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	w.release()
	if err := w.l.root.Remove(w.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("UFS: discard the write of %s: %w", w.path, err)
	}
	return nil
}

// Stat describes a file or directory.
func (l *Local) Stat(ctx context.Context, path string) (Info, error) {
	p, r, err := rel(path)
	if err != nil {
		return Info{}, err
	}
	fi, err := l.root.Stat(r)
	if err != nil {
		return Info{}, notFound(p, err)
	}
	return infoOf(p, fi), nil
}

// Walk calls fn for every regular file under dir (see UFS.Walk). A
// symbolic link is followed only when it resolves inside the root; writes
// in progress are skipped.
func (l *Local) Walk(ctx context.Context, dir string, fn func(Info) error) error {
	p, r, err := rel(dir)
	if err != nil {
		return err
	}
	if _, err := l.root.Stat(r); err != nil {
		return notFound(p, err)
	}
	return fs.WalkDir(l.root.FS(), r, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("UFS: walk %s: %w", p, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), TempPrefix) {
			return nil
		}
		fi, err := l.root.Stat(fp) // follows links that stay inside the root
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		return fn(infoOf("/"+fp, fi))
	})
}

// Delete removes a regular file.
func (l *Local) Delete(ctx context.Context, path string) error {
	p, r, err := rel(path)
	if err != nil {
		return err
	}
	fi, err := l.root.Lstat(r)
	if err != nil {
		return notFound(p, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%w: %s is a directory", ErrInvalidPath, p)
	}
	if err := l.root.Remove(r); err != nil {
		return notFound(p, err)
	}
	return nil
}
