package blockstore

import (
	"fmt"
	"sync"
)

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
