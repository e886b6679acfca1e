package blockstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// partState is what a write by parts keeps: its open block files and the
// parts done, sorted by offset and never overlapping.
type partState struct {
	mu      sync.Mutex
	blocks  map[int64]*os.File
	done    []span
	covered int64
	sum     uint64 // from Sum
	summed  bool
}

// span is a byte range [off, end).
type span struct{ off, end int64 }

// CreateParts starts writing a version of a file whose bytes arrive as
// parts, at any offset and from several goroutines at once (WriteAt,
// AddPart). The whole size is reserved at once. Commit needs the parts to
// cover the file and Sum to have read it back.
func (s *Store) CreateParts(id Identity, fo FileOptions) (*Writer, error) {
	w, err := s.Create(id, fo)
	if err != nil {
		return nil, err
	}
	if err := s.reserve(id.Size, id.Path); err != nil {
		w.Abort()
		return nil, err
	}
	w.reserved = id.Size
	w.parts = &partState{blocks: make(map[int64]*os.File)}
	return w, nil
}

// WriteAt writes p at off in a write by parts. WriteAt and AddPart may be
// called from several goroutines at once, but not alongside Sum, Commit
// or Abort. Bytes written twice to the same range must be the same (Sum
// would catch it otherwise).
func (w *Writer) WriteAt(p []byte, off int64) (int, error) {
	ps := w.parts
	if ps == nil {
		return 0, errors.New("WriteAt on a write not started with CreateParts")
	}
	if off < 0 || off+int64(len(p)) > w.id.Size {
		return 0, fmt.Errorf("%w: %d bytes at %d fall outside the %d bytes of %s", ErrMismatch, len(p), off, w.id.Size, w.id.Path)
	}
	n := 0
	for len(p) > 0 {
		b, in := off/w.bs, off%w.bs
		k := min(int64(len(p)), w.bs-in)
		f, err := w.partBlock(b)
		if err != nil {
			return n, err
		}
		m, err := f.WriteAt(p[:k], in)
		n += m
		if err != nil {
			return n, fmt.Errorf("write block %d of %s: %w", b, w.id.Path, err)
		}
		off += k
		p = p[k:]
	}
	return n, nil
}

// partBlock returns block b's file, creating it on first use.
func (w *Writer) partBlock(b int64) (*os.File, error) {
	ps := w.parts
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if w.done {
		return nil, errors.New("write after the end of the write")
	}
	if f, ok := ps.blocks[b]; ok {
		return f, nil
	}
	f, err := os.OpenFile(blockFile(w.dir, b), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create block %d of %s: %w", b, w.id.Path, err)
	}
	ps.blocks[b] = f
	return f, nil
}

// AddPart records that [off, off+n) was written and checked by the
// caller. It refuses a part outside the file or overlapping one already
// recorded.
func (w *Writer) AddPart(off, n int64) error {
	ps := w.parts
	if ps == nil {
		return errors.New("AddPart on a write not started with CreateParts")
	}
	if off < 0 || n <= 0 || off+n > w.id.Size {
		return fmt.Errorf("%w: part of %d bytes at %d falls outside the %d bytes of %s", ErrMismatch, n, off, w.id.Size, w.id.Path)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	i := sort.Search(len(ps.done), func(i int) bool { return ps.done[i].end > off })
	if i < len(ps.done) && ps.done[i].off < off+n {
		return fmt.Errorf("%w: part [%d, %d) of %s overlaps the part [%d, %d) already written", ErrMismatch, off, off+n, w.id.Path, ps.done[i].off, ps.done[i].end)
	}
	ps.done = slices.Insert(ps.done, i, span{off, off + n})
	ps.covered += n
	ps.summed = false
	return nil
}

// Missing returns the first range no part covers yet ([0, 0) when the
// parts cover the file).
func (w *Writer) Missing() (off, end int64) {
	ps := w.parts
	ps.mu.Lock()
	defer ps.mu.Unlock()
	at := int64(0)
	for _, sp := range ps.done {
		if sp.off > at {
			return at, sp.off
		}
		at = sp.end
	}
	if at < w.id.Size {
		return at, w.id.Size
	}
	return 0, 0
}

// Sum reads a write by parts back in order, once its parts cover the
// file, and returns its XXH64; every byte also goes to tee (if not nil),
// so a caller can copy the file elsewhere on the same pass. Commit checks
// the checksum against this sum.
func (w *Writer) Sum(tee io.Writer) (uint64, error) {
	ps := w.parts
	if ps == nil {
		return 0, errors.New("Sum on a write not started with CreateParts")
	}
	if off, end := w.Missing(); end > off {
		return 0, fmt.Errorf("%w: no part of %s covers [%d, %d)", ErrMismatch, w.id.Path, off, end)
	}
	h := xxhash.New()
	out := io.Writer(h)
	if tee != nil {
		out = io.MultiWriter(h, tee)
	}
	buf := make([]byte, min(w.bs, 4<<20))
	for off := int64(0); off < w.id.Size; {
		b, in := off/w.bs, off%w.bs
		k := min(int64(len(buf)), w.bs-in, w.id.Size-off)
		f, err := w.partBlock(b)
		if err != nil {
			return 0, err
		}
		if _, err := f.ReadAt(buf[:k], in); err != nil {
			return 0, fmt.Errorf("read back block %d of %s: %w", b, w.id.Path, err)
		}
		if _, err := out.Write(buf[:k]); err != nil {
			return 0, err
		}
		off += k
	}
	ps.mu.Lock()
	ps.sum, ps.summed = h.Sum64(), true
	ps.mu.Unlock()
	return h.Sum64(), nil
}
