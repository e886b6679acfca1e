package blockstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnhq/cairn/directio"
)

// Create starts writing a version of a file. id.Size and id.Checksum are
// checked at Commit.
func (s *Store) Create(id Identity, fo FileOptions) (*Writer, error) {
	if id.Path == "" || id.Path[0] != '/' {
		return nil, fmt.Errorf("cache path %q must be absolute", id.Path)
	}
	if id.Size < 0 {
		return nil, fmt.Errorf("%w: negative size %d", ErrMismatch, id.Size)
	}
	final := s.fileDir(id.Path, id.Version)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(final), err)
	}
	// Blocks go to a folder of their own until Commit renames it into
	// place, so a failed write never touches a committed copy.
	dir, err := os.MkdirTemp(filepath.Dir(final), filepath.Base(final)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("start writing %s: %w", id.Path, err)
	}
	return &Writer{s: s, id: id, fo: fo, dir: dir, final: final, bs: s.opts.BlockSize, sum: xxhash.New()}, nil
}

// Writer writes one file into the cache; see the package documentation.
type Writer struct {
	s        *Store
	id       Identity
	fo       FileOptions
	dir      string // where blocks are written
	final    string // where they live once committed
	bs       int64
	sum      hash.Hash64
	cur      *os.File
	curLen   int64
	block    int64
	written  int64
	reserved int64
	files    []*os.File
	done     bool
	err      error
	parts    *partState // for CreateParts
	// newVersion and replaces: see NewVersion.
	newVersion bool
	replaces   uint64
	direct     bool
	curDW      *directio.Writer // w.cur's writer when direct
}

// Direct makes the write go around the page cache (package directio):
// for copies nobody is waiting to read, such as a rebalance's, which
// should not push hot data out of the cache. Call it before the first
// Write.
func (w *Writer) Direct() { w.direct = true }

// Write appends p, cutting it into blocks and reserving space for each.
func (w *Writer) Write(p []byte) (int, error) {
	if w.parts != nil {
		return 0, errors.New("Write on a write by parts: use WriteAt")
	}
	if w.done || w.err != nil {
		return 0, errors.Join(errors.New("write after the end of the write"), w.err)
	}
	if w.written+int64(len(p)) > w.id.Size {
		w.err = fmt.Errorf("%w: %s is longer than the %d bytes promised", ErrMismatch, w.id.Path, w.id.Size)
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		if w.cur == nil {
			need := min(w.bs, w.id.Size-w.written)
			if err := w.s.reserve(need, w.id.Path); err != nil {
				w.err = err
				return n, err
			}
			w.reserved += need
			name := blockFile(w.dir, w.block)
			f, err := os.Create(name)
			if err != nil {
				w.err = fmt.Errorf("create block %d of %s: %w", w.block, w.id.Path, err)
				return n, w.err
			}
			w.cur, w.curLen = f, 0
			if w.direct {
				w.curDW = directio.New(f, func(flag int) (*os.File, error) { return os.OpenFile(name, flag, 0) })
			}
		}
		k := min(int64(len(p)), w.bs-w.curLen)
		var m int
		var err error
		if w.curDW != nil {
			m, err = w.curDW.Write(p[:k])
		} else {
			m, err = w.cur.Write(p[:k])
		}
		w.sum.Write(p[:m])
		n += m
		w.curLen += int64(m)
		w.written += int64(m)
		p = p[m:]
		if err != nil {
			w.err = fmt.Errorf("write block %d of %s: %w", w.block, w.id.Path, err)
			return n, w.err
		}
		if w.curLen == w.bs {
			if err := w.endBlock(); err != nil {
				return n, err
			}
			w.block++
		}
	}
	return n, nil
}

// ReadFrom appends what r holds until it ends (io.EOF), as Write would.
// It stops with ErrMismatch as soon as r holds more than the size
// promised; any other error of r's, io.ErrUnexpectedEOF from a cut
// connection included, is returned as it is.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		// Read at most one byte past the size, to notice a longer body.
		n, err := r.Read(buf[:min(int64(len(buf)), w.id.Size-w.written+1)])
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return total, nil
		case err != nil:
			return total, err
		}
	}
}

// copyBufs holds ReadFrom's buffers.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// endBlock finishes the block being written: its direct writer flushed
// and closed, its file kept for the sync at Commit.
func (w *Writer) endBlock() error {
	if w.curDW != nil {
		err := w.curDW.Flush()
		w.curDW.Close()
		w.curDW = nil
		if err != nil {
			w.err = fmt.Errorf("write block %d of %s: %w", w.block, w.id.Path, err)
			w.files = append(w.files, w.cur)
			w.cur = nil
			return w.err
		}
	}
	w.files = append(w.files, w.cur)
	w.cur = nil
	return nil
}

// NewVersion marks the write as a client's write of a new version of its
// path, not yet published; replaces is the version the namespace
// publishes until this one is (0: none). Commit then keeps the copy of
// replaces, if held, beside the new one and drops any other, and refuses
// the write (ErrSuperseded) when a newer version is held already: that
// version's write started later, so this one can never be published.
// Without NewVersion, a newer version keeps the current one beside it,
// and an older one takes the previous slot (see slots.go).
func (w *Writer) NewVersion(replaces uint64) { w.newVersion, w.replaces = true, replaces }

// SetChecksum sets the checksum Commit checks, for callers that learn it
// only after sending the bytes.
func (w *Writer) SetChecksum(sum uint64) { w.id.Checksum = sum }

// Commit checks size and checksum, makes the blocks durable and the file
// visible. The path keeps at most one other version beside it (see
// NewVersion and slots.go); the one it replaces goes.
func (w *Writer) Commit() (Entry, error) {
	if w.done {
		return Entry{}, errors.New("commit after the end of the write")
	}
	if w.err != nil {
		w.Abort()
		return Entry{}, w.err
	}
	if w.cur != nil {
		if err := w.endBlock(); err != nil {
			w.Abort()
			return Entry{}, err
		}
	}
	if ps := w.parts; ps != nil {
		ps.mu.Lock()
		for b := int64(0); b*w.bs < w.id.Size; b++ {
			if f, ok := ps.blocks[b]; ok {
				w.files = append(w.files, f)
				delete(ps.blocks, b)
			}
		}
		w.written = ps.covered
		ok := ps.summed && ps.sum == w.id.Checksum
		sum := ps.sum
		ps.mu.Unlock()
		if !ok || w.written != w.id.Size {
			err := fmt.Errorf("%w: %s: parts cover %d of %d bytes, read back with checksum %016x (checked: %v), promised %016x",
				ErrMismatch, w.id.Path, w.written, w.id.Size, sum, ps.summed, w.id.Checksum)
			w.Abort()
			return Entry{}, err
		}
	} else if w.written != w.id.Size || w.sum.Sum64() != w.id.Checksum {
		err := fmt.Errorf("%w: %s got %d bytes with checksum %016x, promised %d bytes with %016x",
			ErrMismatch, w.id.Path, w.written, w.sum.Sum64(), w.id.Size, w.id.Checksum)
		w.Abort()
		return Entry{}, err
	}
	for _, f := range w.files {
		if err := f.Sync(); err != nil {
			w.Abort()
			return Entry{}, fmt.Errorf("sync %s: %w", f.Name(), err)
		}
		f.Close()
	}
	w.files = nil
	now := time.Now().UnixNano()
	e := &Entry{Identity: w.id, FileOptions: w.fo, BlockSize: w.bs, LastAccess: now, Cached: now}
	v, err := json.Marshal(e)
	if err != nil {
		w.Abort()
		return Entry{}, err
	}
	// The slow part — rename, the synced index write, removing older
	// copies — runs under the path's lock only, so commits of different
	// paths overlap (pebble groups their syncs) and lookups never wait on
	// a disk; s.mu covers the in-memory bookkeeping alone.
	s := w.s
	pl := s.pathLock(w.id.Path)
	pl.Lock()
	defer pl.Unlock()
	fail := func(err error) (Entry, error) {
		s.release(w.reserved)
		w.done = true
		os.RemoveAll(w.dir)
		return Entry{}, err
	}
	s.mu.Lock()
	pc, err := w.plan()
	if err == nil && pc.same != nil {
		// The same version again: its folder is where this one goes.
		err = s.unlinkLocked(pc.same)
	}
	s.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	if err := os.Rename(w.dir, w.final); err != nil {
		return fail(fmt.Errorf("put the blocks of %s in place: %w", w.id.Path, err))
	}
	b := s.db.NewBatch()
	key := indexPrefix
	if pc.toPrev {
		key = prevPrefix
	}
	b.Set([]byte(key+w.id.Path), v, nil)
	switch {
	case pc.toPrev:
	case pc.keep != nil && pc.keep == pc.cur:
		kv, err := json.Marshal(pc.keep)
		if err != nil {
			os.RemoveAll(w.final)
			return fail(err)
		}
		b.Set([]byte(prevPrefix+w.id.Path), kv, nil)
	case pc.keep == nil && pc.prev != nil:
		b.Delete([]byte(prevPrefix+w.id.Path), nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		os.RemoveAll(w.final)
		return fail(fmt.Errorf("record %s in the cache index: %w", w.id.Path, err))
	}
	s.mu.Lock()
	for _, d := range pc.drop {
		// Eviction cannot have taken them: it needs this path's lock.
		_, slot := s.slotOf(d)
		s.lru.Remove(slot[d.Path])
		delete(slot, d.Path)
		s.used -= d.Size
	}
	if pc.toPrev {
		s.prev[w.id.Path] = s.lru.PushFront(e)
	} else {
		if pc.keep != nil && pc.keep == pc.cur {
			s.prev[w.id.Path] = s.entries[w.id.Path]
		}
		s.entries[w.id.Path] = s.lru.PushFront(e)
	}
	s.reserved -= w.reserved
	s.used += e.Size
	s.mu.Unlock()
	w.done = true
	// After the new entry is durable: a crash before this leaves orphan
	// folders, which Open removes.
	s.removeDirs(pc.drop)
	return *e, nil
}

// commitPlan is where a commit puts its version and what it does to the
// versions of the path already held (see slots.go).
type commitPlan struct {
	cur, prev *Entry   // what the slots held
	same      *Entry   // the same version, held already: replaced
	toPrev    bool     // the new version goes to the previous slot
	keep      *Entry   // with a new current version: the one kept beside it
	drop      []*Entry // held versions that go
}

// plan decides where the write's version goes; s.mu is held.
func (w *Writer) plan() (commitPlan, error) {
	s, id := w.s, w.id
	var pc commitPlan
	if el, ok := s.entries[id.Path]; ok {
		pc.cur = el.Value.(*Entry)
	}
	if el, ok := s.prev[id.Path]; ok {
		pc.prev = el.Value.(*Entry)
	}
	switch {
	case w.newVersion && pc.cur != nil && pc.cur.Version > id.Version:
		return pc, fmt.Errorf("%w: %s version %d, this worker holds version %d, whose write started later", ErrSuperseded, id.Path, id.Version, pc.cur.Version)
	case pc.cur != nil && pc.cur.Version == id.Version:
		pc.same = pc.cur
	case pc.prev != nil && pc.prev.Version == id.Version:
		pc.same, pc.toPrev = pc.prev, true
	case pc.cur == nil || id.Version > pc.cur.Version:
		// A newer version: keep the published one beside it, as far as
		// this write knows which that is (without NewVersion, the current).
		pc.keep = pc.cur
		if w.newVersion {
			pc.keep = nil
			for _, e := range []*Entry{pc.cur, pc.prev} {
				if e != nil && w.replaces != 0 && e.Version == w.replaces {
					pc.keep = e
				}
			}
		}
		for _, e := range []*Entry{pc.cur, pc.prev} {
			if e != nil && e != pc.keep {
				pc.drop = append(pc.drop, e)
			}
		}
	default:
		// An older version than the current one, read back because the
		// namespace names it (a fill from the UFS, a copy from another
		// worker): it takes the previous slot.
		pc.toPrev = true
		if pc.prev != nil {
			pc.drop = append(pc.drop, pc.prev)
		}
	}
	return pc, nil
}

// Abort discards the write and releases its reservation. It is safe to
// call after Commit (it then does nothing).
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	if w.curDW != nil {
		w.curDW.Close()
		w.curDW = nil
	}
	if w.cur != nil {
		w.files = append(w.files, w.cur)
	}
	if ps := w.parts; ps != nil {
		ps.mu.Lock()
		for _, f := range ps.blocks {
			w.files = append(w.files, f)
		}
		clear(ps.blocks)
		ps.mu.Unlock()
	}
	for _, f := range w.files {
		f.Close()
	}
	os.RemoveAll(w.dir)
	w.s.release(w.reserved)
}
