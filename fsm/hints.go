package fsm

import (
	"bytes"
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

// get returns the hint of a queue (nil: scan from the start) and the
// queue's generation, to pass to set.
func (h *hints) get(queue string) ([]byte, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.gen[queue]
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
	if h.gen[queue] != gen {
		return
	}
	if h.m == nil {
		h.m = map[string]hint{}
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
	for q, k := range lowest {
		h.gen[q]++
		if x, ok := h.m[q]; ok && bytes.Compare(k, x.key) < 0 {
			delete(h.m, q)
		} else if ok {
			h.m[q] = hint{key: x.key, gen: h.gen[q]}
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
