package blockstore

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
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
	// ErrSuperseded: a client's write of a version older than one the
	// store holds already, which can no longer be published
	// (FailedPrecondition); nothing was committed.
	ErrSuperseded = errors.New("a newer version of the file is cached here")
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
	// Cached is when this copy was committed here (unix ns, this worker's
	// clock): the age a cleanup's safety window judges. Entries written
	// before it was recorded take their folder's modification time when
	// the store opens.
	Cached int64 `json:"cached,omitempty"`
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
	prev     map[string]*list.Element // path → an older version kept beside entries[path] (see slots.go), in the same LRU
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
	s := &Store{dir: dir, opts: opts, log: opts.Logger, db: db, entries: make(map[string]*list.Element), prev: make(map[string]*list.Element), lru: list.New()}
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

// readIndex returns the entries recorded under prefix.
func (s *Store) readIndex(prefix string) ([]*Entry, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefix), UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var all []*Entry
	for it.First(); it.Valid(); it.Next() {
		e, err := decodeEntry(it.Value())
		if err != nil {
			return nil, fmt.Errorf("cache index entry %q: %w", it.Key(), err)
		}
		all = append(all, e)
	}
	return all, it.Error()
}

// prefixEnd is the first key after every key with prefix.
func prefixEnd(prefix string) []byte {
	end := []byte(prefix)
	end[len(end)-1]++
	return end
}

// load reads the index and orders the LRU by last access.
func (s *Store) load() error {
	all, err := s.readIndex(indexPrefix)
	if err != nil {
		return err
	}
	older, err := s.readIndex(prevPrefix)
	if err != nil {
		return err
	}
	present, err := s.blockDirs()
	if err != nil {
		return err
	}
	// Every entry whose folder is gone was removed from the disk, but the
	// unsynced removal from the index did not survive a crash: finish it.
	all, err = s.dropMissing(indexPrefix, all, present)
	if err != nil {
		return err
	}
	if older, err = s.dropMissing(prevPrefix, older, present); err != nil {
		return err
	}
	current := make(map[string]*Entry, len(all))
	for _, e := range all {
		current[e.Path] = e
	}
	var kept []*Entry
	for _, e := range older {
		if err := s.loadOlder(e, current, &all, &kept); err != nil {
			return err
		}
	}
	// Oldest first, pushed to the front: the newest ends at the front.
	sortByAccess(all)
	sortByAccess(kept)
	known := make(map[string]bool, len(all)+len(kept))
	for _, e := range append(all, kept...) {
		if e.Cached == 0 {
			if fi, err := os.Stat(s.fileDir(e.Path, e.Version)); err == nil {
				e.Cached = fi.ModTime().UnixNano()
			}
		}
	}
	for _, e := range all {
		s.entries[e.Path] = s.lru.PushFront(e)
		s.used += e.Size
		known[s.fileDir(e.Path, e.Version)] = true
	}
	for _, e := range kept {
		s.prev[e.Path] = s.lru.PushFront(e)
		s.used += e.Size
		known[s.fileDir(e.Path, e.Version)] = true
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
		prefix, _ := s.slotOf(e)
		b.Set([]byte(prefix+e.Path), v, nil)
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

// pathLock returns the lock that orders changes to path's entry: commits,
// deletions, eviction, marking persisted (striped by path hash).
func (s *Store) pathLock(path string) *sync.Mutex {
	return &s.pathMu[xxhash.Sum64String(path)%uint64(len(s.pathMu))]
}

// removeLocked drops a file from the index and the disk. The index
// removal is not synced: a crash can undo it, but then the folder is gone
// or going, and Open finishes the removal (an entry without its folder is
// dropped). So removals cost no fsync each.
func (s *Store) removeLocked(e *Entry) error {
	prefix, err := s.unlinkLockedPrefix(e)
	if err != nil || prefix != indexPrefix {
		return err
	}
	return s.promoteLocked(e.Path)
}

// unlinkLocked removes e from the index and the disk, leaving the other
// slot of its path as it is.
func (s *Store) unlinkLocked(e *Entry) error {
	_, err := s.unlinkLockedPrefix(e)
	return err
}

func (s *Store) unlinkLockedPrefix(e *Entry) (string, error) {
	prefix, slot := s.slotOf(e)
	if slot == nil {
		return "", nil // gone meanwhile
	}
	if err := s.db.Delete([]byte(prefix+e.Path), pebble.NoSync); err != nil {
		return "", fmt.Errorf("remove %s from the cache index: %w", e.Path, err)
	}
	s.lru.Remove(slot[e.Path])
	delete(slot, e.Path)
	s.used -= e.Size
	if err := os.RemoveAll(s.fileDir(e.Path, e.Version)); err != nil {
		s.log.Warn("remove cached blocks", "path", e.Path, "err", err)
	}
	return prefix, nil
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

// DeleteVersion removes version of path from the cache (0: every version
// held); a version not held is ErrNotCached. Removing the current version
// removes the older one kept beside it too (see DeleteKeeping). It
// returns the bytes the removed copies took.
func (s *Store) DeleteVersion(path string, version uint64) (int64, error) {
	pl := s.pathLock(path)
	pl.Lock()
	defer pl.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if version == 0 {
		if s.entries[path] == nil {
			return 0, fmt.Errorf("%w: %s", ErrNotCached, path)
		}
		var n int64
		for _, slot := range []map[string]*list.Element{s.prev, s.entries} {
			if el, ok := slot[path]; ok {
				e := el.Value.(*Entry)
				n += e.Size
				if err := s.removeLocked(e); err != nil {
					return n, err
				}
			}
		}
		return n, nil
	}
	return s.deleteLocked(path, version, 0)
}

// MarkPersisted records that version of path reached the UFS, which makes
// it evictable unless it is pinned.
func (s *Store) MarkPersisted(path string, version uint64) error {
	return s.setUnpersisted(path, version, false)
}

// MarkUnpersisted records that version of path is no longer in the UFS
// (its copy there went away or changed): it is never evicted until it is
// marked persisted again.
func (s *Store) MarkUnpersisted(path string, version uint64) error {
	return s.setUnpersisted(path, version, true)
}

func (s *Store) setUnpersisted(path string, version uint64, unpersisted bool) error {
	pl := s.pathLock(path)
	pl.Lock()
	defer pl.Unlock()
	s.mu.Lock()
	e := s.versionLocked(path, version)
	if e == nil {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s version %d", ErrNotCached, path, version)
	}
	e.Unpersisted = unpersisted
	v, err := json.Marshal(e)
	prefix, _ := s.slotOf(e)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.db.Set([]byte(prefix+path), v, pebble.Sync)
}
