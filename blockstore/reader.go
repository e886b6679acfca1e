package blockstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Reader reads a cached file.
type Reader struct {
	e   Entry
	dir string
}

// Open opens a cached version of path (in either slot, see slots.go) for
// reading and marks it used. A version of 0 opens the current version.
func (s *Store) Open(path string, version uint64) (*Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.entries[path]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotCached, path)
	}
	if e := el.Value.(*Entry); version != 0 && e.Version != version {
		pel, ok := s.prev[path]
		if !ok || pel.Value.(*Entry).Version != version {
			return nil, fmt.Errorf("%w: %s version %d (version %d is cached)", ErrNotCached, path, version, e.Version)
		}
		el = pel
	}
	e := el.Value.(*Entry)
	e.LastAccess = time.Now().UnixNano()
	s.lru.MoveToFront(el)
	return &Reader{e: *e, dir: s.fileDir(e.Path, e.Version)}, nil
}

// Dir is the absolute folder holding the blocks of a cached version,
// named 0, 1, ... (for short-circuit reads).
func (s *Store) Dir(path string, version uint64) string {
	d, err := filepath.Abs(s.fileDir(path, version))
	if err != nil {
		return s.fileDir(path, version)
	}
	return d
}

// Entry describes the file being read.
func (r *Reader) Entry() Entry { return r.e }

// ReadAt reads len(p) bytes at off, across blocks. It returns io.EOF when
// the file ends first. A block evicted meanwhile reads as ErrNotCached.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	n := 0
	for len(p) > 0 {
		if off >= r.e.Size {
			return n, io.EOF
		}
		b, in := off/r.e.BlockSize, off%r.e.BlockSize
		k := min(int64(len(p)), r.e.BlockSize-in, r.e.Size-off)
		f, err := os.Open(blockFile(r.dir, b))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return n, fmt.Errorf("%w: block %d of %s was evicted", ErrNotCached, b, r.e.Path)
			}
			return n, err
		}
		m, err := f.ReadAt(p[:k], in)
		f.Close()
		n += m
		off += int64(m)
		p = p[m:]
		if err != nil && !(errors.Is(err, io.EOF) && int64(m) == k) {
			return n, fmt.Errorf("read block %d of %s: %w", b, r.e.Path, err)
		}
	}
	return n, nil
}
