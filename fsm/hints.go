package fsm

import (
	"bytes"
	"strings"
	"sync"
)

// hints remembers, per worker queue of PENDING tasks (q/<worker>0...), the
// first live key the last scan found. Leasing a task deletes its queue key,
// and pebble iterators step over every tombstone until compaction removes
// it, so a queue scanned from its start slows down with every task ever
// leased. Keys below a hint were all deleted when the hint was taken; a
// commit that makes a task PENDING below a hint lowers it. A generation per
// queue keeps a scan that raced with such a commit from raising the hint
// past the new key. Hints are read aids only: nothing is written from them,
// and they start empty when the process does.
type hints struct {
	mu  sync.Mutex
	m   map[string]hint
	gen map[string]uint64
}

type hint struct {
	key []byte
	gen uint64
}

// A filtered hint, named by filtered, is where a scan of the queue by one
// worker with one unchanging filter (say, the files it owns under one
// epoch) may start: every key below it was deleted or refused by that
// filter. It shares its queue's generation and is lowered with it; a
// worker keeps one filtered hint per queue (a new filter replaces the
// last).
func filtered(queue, worker, filter string) string {
	return queue + "\x00" + worker + "\x00" + filter
}

// baseOf is the queue a hint belongs to.
func baseOf(name string) string {
	if i := strings.IndexByte(name, 0); i >= 0 {
		return name[:i]
	}
	return name
}

// get returns the hint of a queue (nil: scan from the start) and the
// queue's generation, to pass to set.
func (h *hints) get(queue string) ([]byte, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.gen[baseOf(queue)]
	if x, ok := h.m[queue]; ok && x.gen == g {
		return x.key, g
	}
	return nil, g
}

// set records key as the first live key of a queue, found by a scan that
// started at generation gen; it is ignored when a commit lowered the queue
// since.
func (h *hints) set(queue string, gen uint64, key []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gen[baseOf(queue)] != gen {
		return
	}
	if h.m == nil {
		h.m = map[string]hint{}
	}
	if i := strings.LastIndexByte(queue, 0); i >= 0 {
		for name := range h.m {
			if name != queue && strings.HasPrefix(name, queue[:i+1]) {
				delete(h.m, name) // the same worker's hint under an older filter
			}
		}
	}
	h.m[queue] = hint{key: bytes.Clone(key), gen: gen}
}

// lower records committed PENDING keys: each queue's hint goes no higher
// than its lowest new key.
func (h *hints) lower(lowest map[string][]byte) {
	if len(lowest) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gen == nil {
		h.gen = map[string]uint64{}
	}
	for q := range lowest {
		h.gen[q]++
	}
	for name, x := range h.m {
		q := baseOf(name)
		k, ok := lowest[q]
		switch {
		case !ok:
		case bytes.Compare(k, x.key) < 0:
			delete(h.m, name)
		default:
			h.m[name] = hint{key: x.key, gen: h.gen[q]}
		}
	}
}

// reset forgets every hint (the store was replaced).
func (h *hints) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for q := range h.gen {
		h.gen[q]++
	}
	h.m = nil
}
