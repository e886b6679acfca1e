package blockstore

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnhq/cairn/directio"
)

// DefaultBlockSize is the block size when Options leave it zero.
const DefaultBlockSize = 4 << 20

// Errors callers map to API codes.
var (
	// ErrNoSpace: the write does not fit even after evicting every
	// evictable file (ResourceExhausted).
	ErrNoSpace = errors.New("cache is full of pinned or unpersisted data")
	// ErrNotCached: the path (or that version of it) is not cached here.
	ErrNotCached = errors.New("not cached on this worker")
	// ErrMismatch: the bytes written do not match the promised size or
	// checksum; nothing was committed.
	ErrMismatch = errors.New("written data does not match its size or checksum")
)

// Identity is what makes two cached copies the same object.
type Identity struct {
	Path     string            `json:"path"`
	Version  uint64            `json:"version"`
	Size     int64             `json:"size"`
	Checksum uint64            `json:"checksum"` // XXH64 of the content
	ETag     string            `json:"etag,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// FileOptions say how a file is kept.
type FileOptions struct {
	// WriteType is recorded for operators (MUST_CACHE, CACHE_THROUGH, ...).
	WriteType string `json:"write_type,omitempty"`
	// Pinned files are never evicted.
	Pinned bool `json:"pinned,omitempty"`
	// Unpersisted files (not yet in the UFS) are never evicted.
	Unpersisted bool `json:"unpersisted,omitempty"`
}

// Entry is one cached file as the index records it.
type Entry struct {
	Identity
	FileOptions
	BlockSize  int64 `json:"block_size"`
	LastAccess int64 `json:"last_access"` // unix ns
}

// Evictable reports whether eviction may remove the file.
func (e Entry) Evictable() bool { return !e.Pinned && !e.Unpersisted }

// Blocks is the number of blocks the file has.
func (e Entry) Blocks() int64 {
	if e.Size == 0 {
		return 0
	}
	return (e.Size + e.BlockSize - 1) / e.BlockSize
}

// Options configure a Store.
type Options struct {
	// Capacity is the most bytes of block data kept.
	Capacity int64
	// BlockSize for new files; DefaultBlockSize when zero.
	BlockSize int64
	Logger    *slog.Logger
}

// Store is a worker's block cache.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger
	db   *pebble.DB

	mu       sync.Mutex
	entries  map[string]*list.Element // path → element holding *Entry, LRU order (front = newest)
	lru      *list.List
	used     int64 // committed block bytes
	reserved int64 // bytes reserved by writes in progress
	evicted  int64 // bytes evicted since open

	// pathMu orders changes to one path's entry (see pathLock); taken
	// before mu, never after it except with TryLock.
	pathMu [256]sync.Mutex
}

// Open opens (or creates) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Capacity <= 0 {
		return nil, fmt.Errorf("block store capacity %d: must be above 0", opts.Capacity)
	}
	if opts.BlockSize <= 0 {
		opts.BlockSize = DefaultBlockSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(dir, "blocks"), 0o755); err != nil {
		return nil, fmt.Errorf("create block store %s: %w", dir, err)
	}
	db, err := pebble.Open(filepath.Join(dir, "index"), &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		return nil, fmt.Errorf("open cache index in %s: %w", dir, err)
	}
	s := &Store{dir: dir, opts: opts, log: opts.Logger, db: db, entries: make(map[string]*list.Element), lru: list.New()}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

const indexPrefix = "f/"

// load reads the index and orders the LRU by last access.
func (s *Store) load() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(indexPrefix), UpperBound: []byte("f0")})
	if err != nil {
		return err
	}
	defer it.Close()
	var all []*Entry
	for it.First(); it.Valid(); it.Next() {
		e, err := decodeEntry(it.Value())
		if err != nil {
			return fmt.Errorf("cache index entry %q: %w", it.Key(), err)
		}
		all = append(all, e)
	}
	// Oldest first, pushed to the front: the newest ends at the front.
	sortByAccess(all)
	present, err := s.blockDirs()
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(all))
	for _, e := range all {
		dir := s.fileDir(e.Path, e.Version)
		if !present[dir] {
			// Removed from the disk, but the unsynced removal from the index
			// did not survive a crash: finish it.
			if err := s.db.Delete([]byte(indexPrefix+e.Path), pebble.NoSync); err != nil {
				return fmt.Errorf("drop %s from the cache index: %w", e.Path, err)
			}
			continue
		}
		s.entries[e.Path] = s.lru.PushFront(e)
		s.used += e.Size
		known[dir] = true
	}
	for dir := range present {
		if !known[dir] {
			// Blocks no index entry refers to: a write a crash interrupted,
			// before or after its rename.
			s.log.Info("removing blocks no index entry refers to", "dir", dir)
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("remove orphan blocks %s: %w", dir, err)
			}
		}
	}
	return nil
}

// blockDirs returns every file folder under the block folder.
func (s *Store) blockDirs() (map[string]bool, error) {
	shards, err := os.ReadDir(filepath.Join(s.dir, "blocks"))
	if err != nil {
		return nil, fmt.Errorf("read the block folder: %w", err)
	}
	dirs := map[string]bool{}
	for _, sh := range shards {
		files, err := os.ReadDir(filepath.Join(s.dir, "blocks", sh.Name()))
		if err != nil {
			continue
		}
		for _, f := range files {
			dirs[filepath.Join(s.dir, "blocks", sh.Name(), f.Name())] = true
		}
	}
	return dirs, nil
}

// sortByAccess sorts entries by last access, oldest first; equal times
// keep their (key) order.
func sortByAccess(es []*Entry) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].LastAccess < es[j].LastAccess })
}

// decodeEntry parses an index value and checks it is self-consistent.
func decodeEntry(b []byte) (*Entry, error) {
	var e Entry
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, err
	}
	switch {
	case e.Path == "" || e.Path[0] != '/':
		return nil, fmt.Errorf("bad path %q", e.Path)
	case e.Size < 0:
		return nil, fmt.Errorf("negative size %d", e.Size)
	case e.BlockSize <= 0:
		return nil, fmt.Errorf("block size %d", e.BlockSize)
	}
	return &e, nil
}

// Close flushes last-access times and closes the index.
func (s *Store) Close() error {
	s.mu.Lock()
	b := s.db.NewBatch()
	for el := s.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*Entry)
		v, _ := json.Marshal(e)
		b.Set([]byte(indexPrefix+e.Path), v, nil)
	}
	s.mu.Unlock()
	err := b.Commit(pebble.Sync)
	return errors.Join(err, s.db.Close())
}

// fileDir is where a version's blocks live.
func (s *Store) fileDir(path string, version uint64) string {
	sum := sha256.Sum256([]byte(path))
	k := hex.EncodeToString(sum[:16]) + "-v" + strconv.FormatUint(version, 10)
	return filepath.Join(s.dir, "blocks", k[:2], k)
}

func blockFile(dir string, n int64) string { return filepath.Join(dir, strconv.FormatInt(n, 10)) }

// Usage returns the bytes used (committed plus reserved) and the capacity.
func (s *Store) Usage() (used, capacity int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used + s.reserved, s.opts.Capacity
}

// EvictedBytes is how many bytes eviction removed since Open.
func (s *Store) EvictedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evicted
}

// reserve makes room for n more bytes, evicting least recently used
// evictable files (never skip, never the path being written).
func (s *Store) reserve(n int64, skip string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.used+s.reserved+n > s.opts.Capacity {
		victim, pl, busy := s.oldestEvictable(skip)
		if victim == nil && busy != nil {
			// Every evictable file is being committed, deleted or marked
			// right now: wait for one of them rather than call the cache
			// full of what cannot be evicted.
			s.mu.Unlock()
			busy.Lock()
			busy.Unlock()
			s.mu.Lock()
			continue
		}
		if victim == nil {
			return fmt.Errorf("%w: %d bytes needed, %d of %d in use", ErrNoSpace, n, s.used+s.reserved, s.opts.Capacity)
		}
		err := s.removeLocked(victim)
		pl.Unlock()
		if err != nil {
			return err
		}
		s.evicted += victim.Size
		s.log.Debug("evicted", "path", victim.Path, "version", victim.Version, "bytes", victim.Size)
	}
	s.reserved += n
	return nil
}

func (s *Store) release(n int64) {
	s.mu.Lock()
	s.reserved -= n
	s.mu.Unlock()
}

// oldestEvictable returns the least recently used evictable entry other
// than skip whose path lock it could take, with that lock held; s.mu is
// held. A path being committed, deleted or marked is passed over: when
// that leaves nothing, busy is the lock of the first one passed over.
func (s *Store) oldestEvictable(skip string) (victim *Entry, pl, busy *sync.Mutex) {
	for el := s.lru.Back(); el != nil; el = el.Prev() {
		e := el.Value.(*Entry)
		if !e.Evictable() || e.Path == skip {
			continue
		}
		l := s.pathLock(e.Path)
		if l.TryLock() {
			return e, l, nil
		}
		if busy == nil {
			busy = l
		}
	}
	return nil, nil, busy
}

// removeLocked drops a file from the index and the disk. The index
// removal is not synced: a crash can undo it, but then the folder is gone
// or going, and Open finishes the removal (an entry without its folder is
// dropped). So removals cost no fsync each.
func (s *Store) removeLocked(e *Entry) error {
	if err := s.db.Delete([]byte(indexPrefix+e.Path), pebble.NoSync); err != nil {
		return fmt.Errorf("remove %s from the cache index: %w", e.Path, err)
	}
	if el, ok := s.entries[e.Path]; ok {
		s.lru.Remove(el)
		delete(s.entries, e.Path)
	}
	s.used -= e.Size
	if err := os.RemoveAll(s.fileDir(e.Path, e.Version)); err != nil {
		s.log.Warn("remove cached blocks", "path", e.Path, "err", err)
	}
	return nil
}

// Get returns the cached entry of path.
func (s *Store) Get(path string) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.entries[path]
	if !ok {
		return Entry{}, false
	}
	return *el.Value.(*Entry), true
}

// List calls fn for every cached file whose path starts with prefix, in
// no particular order, until fn returns false.
func (s *Store) List(prefix string, fn func(Entry) bool) {
	s.mu.Lock()
	var out []Entry
	for p, el := range s.entries {
		if strings.HasPrefix(p, prefix) {
			out = append(out, *el.Value.(*Entry))
		}
	}
	s.mu.Unlock()
	for _, e := range out {
		if !fn(e) {
			return
		}
	}
}

// Delete removes path from the cache. Deleting what is not cached is
// ErrNotCached.
func (s *Store) Delete(path string) error {
	_, err := s.DeleteVersion(path, 0)
	return err
}

// DeleteVersion removes path from the cache if the cached copy is version
// (0: any version); otherwise it is ErrNotCached. It returns the bytes the
// removed copy took.
func (s *Store) DeleteVersion(path string, version uint64) (int64, error) {
	pl := s.pathLock(path)
	pl.Lock()
	defer pl.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.entries[path]
	if !ok || (version != 0 && el.Value.(*Entry).Version != version) {
		return 0, fmt.Errorf("%w: %s version %d", ErrNotCached, path, version)
	}
	e := el.Value.(*Entry)
	return e.Size, s.removeLocked(e)
}

// MarkPersisted records that version of path reached the UFS, which makes
// it evictable unless it is pinned.
func (s *Store) MarkPersisted(path string, version uint64) error {
	pl := s.pathLock(path)
	pl.Lock()
	defer pl.Unlock()
	s.mu.Lock()
	el, ok := s.entries[path]
	if !ok || el.Value.(*Entry).Version != version {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s version %d", ErrNotCached, path, version)
	}
	e := el.Value.(*Entry)
	e.Unpersisted = false
	v, err := json.Marshal(e)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.db.Set([]byte(indexPrefix+path), v, pebble.Sync)
}

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
	direct   bool
	curDW    *directio.Writer // w.cur's writer when direct
}

// Direct makes the write go around the page cache (package directio):
// for copies nobody is waiting to read, such as a rebalance's, which
// should not push hot data out of the cache. Call it before the first
// Write.
func (w *Writer) Direct() { w.direct = true }

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

// SetChecksum sets the checksum Commit checks, for callers that learn it
// only after sending the bytes.
func (w *Writer) SetChecksum(sum uint64) { w.id.Checksum = sum }

// Commit checks size and checksum, makes the blocks durable and the file
// visible, replacing any other cached version of the path.
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
	e := &Entry{Identity: w.id, FileOptions: w.fo, BlockSize: w.bs, LastAccess: time.Now().UnixNano()}
	v, err := json.Marshal(e)
	if err != nil {
		w.Abort()
		return Entry{}, err
	}
	// The slow part — rename, the synced index write, removing the older
	// copy — runs under the path's lock only, so commits of different
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
	var older *Entry
	s.mu.Lock()
	if el, ok := s.entries[w.id.Path]; ok {
		oe := *el.Value.(*Entry)
		older = &oe
		if oe.Version == w.id.Version {
			// The same version again: its folder is where this one goes.
			if err := s.removeLocked(&oe); err != nil {
				s.mu.Unlock()
				return fail(fmt.Errorf("replace %s: %w", oe.Path, err))
			}
			older = nil
		}
	}
	s.mu.Unlock()
	if err := os.Rename(w.dir, w.final); err != nil {
		return fail(fmt.Errorf("put the blocks of %s in place: %w", w.id.Path, err))
	}
	if err := s.db.Set([]byte(indexPrefix+w.id.Path), v, pebble.Sync); err != nil {
		os.RemoveAll(w.final)
		return fail(fmt.Errorf("record %s in the cache index: %w", w.id.Path, err))
	}
	s.mu.Lock()
	if el, ok := s.entries[w.id.Path]; ok {
		// The older version (eviction cannot have taken it: it needs this
		// path's lock).
		s.used -= el.Value.(*Entry).Size
		s.lru.Remove(el)
	}
	s.entries[w.id.Path] = s.lru.PushFront(e)
	s.reserved -= w.reserved
	s.used += e.Size
	s.mu.Unlock()
	w.done = true
	if older != nil {
		// After the new entry is durable: a crash before this leaves an
		// orphan folder, which Open removes.
		if err := os.RemoveAll(s.fileDir(older.Path, older.Version)); err != nil {
			s.log.Warn("remove the older cached copy", "path", older.Path, "version", older.Version, "err", err)
		}
	}
	return *e, nil
}

// pathLock returns the lock that orders changes to path's entry: commits,
// deletions, eviction, marking persisted (striped by path hash).
func (s *Store) pathLock(path string) *sync.Mutex {
	return &s.pathMu[xxhash.Sum64String(path)%uint64(len(s.pathMu))]
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

// Reader reads a cached file.
type Reader struct {
	e   Entry
	dir string
}

// Open opens a cached version of path for reading and marks it used. A
// version of 0 accepts whatever version is cached.
func (s *Store) Open(path string, version uint64) (*Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.entries[path]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotCached, path)
	}
	e := el.Value.(*Entry)
	if version != 0 && e.Version != version {
		return nil, fmt.Errorf("%w: %s version %d (version %d is cached)", ErrNotCached, path, version, e.Version)
	}
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
