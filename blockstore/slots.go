package blockstore

import (
	"container/list"
	"encoding/json"
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/v2"
)

// A path has up to two cached versions: the current one (the newest held,
// what Get, List and Open with version 0 see) and an older one kept beside
// it, the previous slot. The previous slot holds the version the
// namespace still publishes while a newer one is written but not yet
// published: a write that never completes (its client died, its
// completion was lost, another write of the path overtook it) must not
// take the published version's bytes with it. The previous slot goes
// when the newer version is known to be published (Published, or a
// caller that checked the namespace removes it with DeleteVersion), and
// when the current version goes, the previous one becomes current again.

// prevPrefix keys the index entries of previous slots: "p/<path>".
const prevPrefix = "p/"

// slotOf returns the index prefix and the map holding e's version of its
// path (nil when neither slot holds it); s.mu is held.
func (s *Store) slotOf(e *Entry) (string, map[string]*list.Element) {
	if el, ok := s.prev[e.Path]; ok && el.Value.(*Entry).Version == e.Version {
		return prevPrefix, s.prev
	}
	if el, ok := s.entries[e.Path]; ok && el.Value.(*Entry).Version == e.Version {
		return indexPrefix, s.entries
	}
	return indexPrefix, nil
}

// versionLocked returns the entry of version of path in either slot, or
// nil; s.mu is held.
func (s *Store) versionLocked(path string, version uint64) *Entry {
	for _, slot := range []map[string]*list.Element{s.entries, s.prev} {
		if el, ok := slot[path]; ok && el.Value.(*Entry).Version == version {
			return el.Value.(*Entry)
		}
	}
	return nil
}

// promoteLocked makes path's previous slot its current one, after the
// current one went; s.mu and the path's lock are held. The index change
// is not synced: a crash that undoes it leaves a previous slot without a
// current one, which Open promotes the same way.
func (s *Store) promoteLocked(path string) error {
	el, ok := s.prev[path]
	if !ok {
		return nil
	}
	e := el.Value.(*Entry)
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	b.Set([]byte(indexPrefix+path), v, nil)
	b.Delete([]byte(prevPrefix+path), nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("make version %d of %s current in the cache index: %w", e.Version, path, err)
	}
	delete(s.prev, path)
	s.entries[path] = el
	return nil
}

// dropMissing removes from the index (under prefix) the entries whose
// block folder is gone, and returns the others.
func (s *Store) dropMissing(prefix string, es []*Entry, present map[string]bool) ([]*Entry, error) {
	out := es[:0]
	for _, e := range es {
		if present[s.fileDir(e.Path, e.Version)] {
			out = append(out, e)
			continue
		}
		if err := s.db.Delete([]byte(prefix+e.Path), pebble.NoSync); err != nil {
			return nil, fmt.Errorf("drop %s from the cache index: %w", e.Path, err)
		}
	}
	return out, nil
}

// loadOlder places a previous slot read from the index at Open: beside
// an older current version it stays (kept); without a current version it
// becomes current (added to all); anything else is the debris of an
// interrupted change, dropped.
func (s *Store) loadOlder(e *Entry, current map[string]*Entry, all, kept *[]*Entry) error {
	cur, ok := current[e.Path]
	switch {
	case ok && cur.Version > e.Version:
		*kept = append(*kept, e)
		return nil
	case !ok:
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		b := s.db.NewBatch()
		b.Set([]byte(indexPrefix+e.Path), v, nil)
		b.Delete([]byte(prevPrefix+e.Path), nil)
		if err := b.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("make version %d of %s current in the cache index: %w", e.Version, e.Path, err)
		}
		current[e.Path] = e
		*all = append(*all, e)
		return nil
	}
	// The current version is the same (its folder is the current
	// entry's) or older (its folder goes as an orphan): debris.
	if err := s.db.Delete([]byte(prevPrefix+e.Path), pebble.NoSync); err != nil {
		return fmt.Errorf("drop %s from the cache index: %w", e.Path, err)
	}
	return nil
}

// Lookup returns the entry of version of path if either slot holds it.
func (s *Store) Lookup(path string, version uint64) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.versionLocked(path, version)
	if e == nil {
		return Entry{}, false
	}
	return *e, true
}

// Previous calls fn for every version held in a previous slot, with the
// current version of its path, in no particular order, until fn returns
// false.
func (s *Store) Previous(fn func(prev, cur Entry) bool) {
	type pair struct{ prev, cur Entry }
	s.mu.Lock()
	out := make([]pair, 0, len(s.prev))
	for p, el := range s.prev {
		if cur, ok := s.entries[p]; ok { // not while a commit replaces it
			out = append(out, pair{*el.Value.(*Entry), *cur.Value.(*Entry)})
		}
	}
	s.mu.Unlock()
	for _, pr := range out {
		if !fn(pr.prev, pr.cur) {
			return
		}
	}
}

// Published tells the store that version of path is the one the
// namespace publishes (a reader named it): when it is the current
// version, the older one kept beside it can never be published again and
// goes. It returns the bytes that freed.
func (s *Store) Published(path string, version uint64) int64 {
	s.mu.Lock()
	cur, ok := s.entries[path]
	_, held := s.prev[path]
	s.mu.Unlock()
	if !ok || !held || cur.Value.(*Entry).Version != version {
		return 0
	}
	pl := s.pathLock(path)
	pl.Lock()
	defer pl.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok = s.entries[path]
	pel, held := s.prev[path]
	if !ok || !held || cur.Value.(*Entry).Version != version {
		return 0
	}
	e := pel.Value.(*Entry)
	if err := s.removeLocked(e); err != nil {
		s.log.Warn("remove a superseded cached copy", "path", path, "version", e.Version, "err", err)
		return 0
	}
	return e.Size
}

// removeDirs removes the block folders of entries no index entry refers
// to any more.
func (s *Store) removeDirs(es []*Entry) {
	for _, e := range es {
		if err := os.RemoveAll(s.fileDir(e.Path, e.Version)); err != nil {
			s.log.Warn("remove an older cached copy", "path", e.Path, "version", e.Version, "err", err)
		}
	}
}

// DeleteKeeping removes version of path from the cache, as DeleteVersion
// does, except that when version is the current one and the older copy
// kept beside it is version keep (the one the namespace publishes), that
// copy stays and becomes current: the removed one was a write that never
// completed. Any other older copy goes with the current one. It returns
// the bytes the removed copies took.
func (s *Store) DeleteKeeping(path string, version, keep uint64) (int64, error) {
	pl := s.pathLock(path)
	pl.Lock()
	defer pl.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteLocked(path, version, keep)
}

// deleteLocked is DeleteKeeping with the path's lock and s.mu held.
func (s *Store) deleteLocked(path string, version, keep uint64) (int64, error) {
	e := s.versionLocked(path, version)
	if e == nil {
		return 0, fmt.Errorf("%w: %s version %d", ErrNotCached, path, version)
	}
	n := e.Size
	if el, ok := s.prev[path]; ok && s.entries[path].Value.(*Entry) == e && el.Value.(*Entry).Version != keep {
		older := el.Value.(*Entry)
		n += older.Size
		if err := s.unlinkLocked(older); err != nil {
			return 0, err
		}
	}
	return n, s.removeLocked(e)
}
