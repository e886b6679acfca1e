package placement

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// MaxReplication is the largest replication factor a map accepts.
const MaxReplication = 16

// Worker is one placement candidate: an ACTIVE worker and its weight
// (its capacity in bytes; must be at least 1).
type Worker struct {
	ID     string
	Weight uint64
}

// Map is the placement view of one cluster-map epoch. It is immutable and
// safe for concurrent use. Build it once per epoch with New: it precomputes
// the worker digests that every lookup needs.
type Map struct {
	ids         []string  // sorted bytewise
	digests     []uint64  // XXH64 of each id
	weights     []float64 // float64(weight)
	equal       bool      // every weight is the same: plain HRW
	replication int
}

// New builds a map of the given workers (in any order) and replication
// factor R (1..MaxReplication). Worker ids must be unique and non-empty and
// weights at least 1. A map may be empty: it then owns nothing.
func New(workers []Worker, replication int) (*Map, error) {
	if replication < 1 || replication > MaxReplication {
		return nil, fmt.Errorf("replication %d out of range 1..%d", replication, MaxReplication)
	}
	sorted := slices.Clone(workers)
	slices.SortFunc(sorted, func(a, b Worker) int { return strings.Compare(a.ID, b.ID) })
	m := &Map{
		ids:         make([]string, len(sorted)),
		digests:     make([]uint64, len(sorted)),
		weights:     make([]float64, len(sorted)),
		equal:       true,
		replication: replication,
	}
	for i, w := range sorted {
		if w.ID == "" {
			return nil, errors.New("worker with an empty id")
		}
		if i > 0 && sorted[i-1].ID == w.ID {
			return nil, fmt.Errorf("worker %q listed twice", w.ID)
		}
		if w.Weight == 0 {
			return nil, fmt.Errorf("worker %q has weight 0", w.ID)
		}
		m.ids[i] = w.ID
		m.digests[i] = xxhash.Sum64String(w.ID)
		m.weights[i] = float64(w.Weight)
		if w.Weight != sorted[0].Weight {
			m.equal = false
		}
	}
	return m, nil
}

// Len is the number of workers in the map.
func (m *Map) Len() int { return len(m.ids) }

// Replication is the replication factor R the map was built with.
func (m *Map) Replication() int { return m.replication }

// Weighted reports whether the workers' weights differ, so that lookups use
// the weighted formula.
func (m *Map) Weighted() bool { return !m.equal }

// ID returns the id of worker i (0 <= i < Len), in bytewise id order.
func (m *Map) ID(i int) string { return m.ids[i] }

// Index returns the position of a worker id in the map, or -1.
func (m *Map) Index(id string) int {
	i, ok := slices.BinarySearch(m.ids, id)
	if !ok {
		return -1
	}
	return i
}

// Mix is XXH64's final avalanche, the step that turns (worker digest XOR
// path digest) into the worker's hash for a path.
func Mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xC2B2AE3D27D4EB4F
	x ^= x >> 29
	x *= 0x165667B19E3779F9
	x ^= x >> 32
	return x
}

// Hash returns worker i's hash h for a path digest (step 3 of the function).
func (m *Map) Hash(i int, pathDigest uint64) uint64 { return Mix(m.digests[i] ^ pathDigest) }

// Score returns worker i's weighted score for a path digest (step 4 of the
// function, the weighted case), whatever the other weights are.
func (m *Map) Score(i int, pathDigest uint64) float64 {
	return weightedScore(m.weights[i], m.Hash(i, pathDigest))
}

func weightedScore(w float64, h uint64) float64 {
	u := float64((h>>11)|1) / (1 << 53)
	return float64(w / -ln(u))
}

// Owners appends to dst the indexes of the min(R, Len) owners of path, in
// rank order (the primary first), and returns the extended slice. With
// cap(dst)-len(dst) >= R it does not allocate.
func (m *Map) Owners(dst []int, path string) []int {
	return m.ownersN(dst, path, m.replication)
}

// OwnersN is Owners with a replication factor other than the map's own
// (1..MaxReplication), for callers that ask "who would own it with R = n".
func (m *Map) OwnersN(dst []int, path string, n int) []int {
	if n < 1 {
		return dst
	}
	return m.ownersN(dst, path, min(n, MaxReplication))
}

// OwnerIDs returns the ids of the owners of path, primary first.
func (m *Map) OwnerIDs(path string) []string {
	var buf [MaxReplication]int
	idx := m.Owners(buf[:0], path)
	ids := make([]string, len(idx))
	for k, i := range idx {
		ids[k] = m.ids[i]
	}
	return ids
}

// IsOwner reports whether worker id is among the owners of path.
func (m *Map) IsOwner(id string, path string) bool {
	var buf [MaxReplication]int
	for _, i := range m.Owners(buf[:0], path) {
		if m.ids[i] == id {
			return true
		}
	}
	return false
}

// FileReplication is how many owners keep a file whose own replication is
// r: max(r, R), at most MaxReplication. A file written with more copies
// than the map's R keeps them (rebalance sends to, and cleanup keeps, its
// first r owners); one written with fewer, or with 0 (the map's R), has R.
func (m *Map) FileReplication(r uint32) int {
	return min(max(int(r), m.replication), MaxReplication)
}

// FileOwnerIDs returns the ids of the owners of a file of replication r at
// path (FileReplication(r) of them), primary first.
func (m *Map) FileOwnerIDs(path string, r uint32) []string {
	var buf [MaxReplication]int
	idx := m.ownersN(buf[:0], path, m.FileReplication(r))
	ids := make([]string, len(idx))
	for k, i := range idx {
		ids[k] = m.ids[i]
	}
	return ids
}

// IsFileOwner reports whether worker id is among FileOwnerIDs(path, r).
func (m *Map) IsFileOwner(id, path string, r uint32) bool {
	var buf [MaxReplication]int
	for _, i := range m.ownersN(buf[:0], path, m.FileReplication(r)) {
		if m.ids[i] == id {
			return true
		}
	}
	return false
}

func (m *Map) ownersN(dst []int, path string, r int) []int {
	n := len(m.ids)
	if n == 0 {
		return dst
	}
	r = min(r, n)
	dp := xxhash.Sum64String(path)
	if m.equal {
		if r == 1 {
			return append(dst, m.maxHash(dp))
		}
		return m.topByHash(dst, dp, r)
	}
	return m.topByScore(dst, dp, r)
}

// maxHash is topByHash for R = 1: the index of the highest hash, the lower
// index on a tie. Four lanes keep their own maximum, so neither the
// multiplies nor the compares wait on each other; the lanes merge at the
// end under the same tie rule.
func (m *Map) maxHash(dp uint64) int {
	ds := m.digests
	n := len(ds)
	if n < 4 {
		best, bi := Mix(ds[0]^dp), 0
		for i := 1; i < n; i++ {
			if h := Mix(ds[i] ^ dp); h > best {
				best, bi = h, i
			}
		}
		return bi
	}
	b0, b1, b2, b3 := Mix(ds[0]^dp), Mix(ds[1]^dp), Mix(ds[2]^dp), Mix(ds[3]^dp)
	i0, i1, i2, i3 := 0, 1, 2, 3
	i := 4
	for ; i+3 < n; i += 4 {
		d := ds[i : i+4 : i+4]
		h0, h1, h2, h3 := Mix(d[0]^dp), Mix(d[1]^dp), Mix(d[2]^dp), Mix(d[3]^dp)
		if h0 > b0 {
			b0, i0 = h0, i
		}
		if h1 > b1 {
			b1, i1 = h1, i+1
		}
		if h2 > b2 {
			b2, i2 = h2, i+2
		}
		if h3 > b3 {
			b3, i3 = h3, i+3
		}
	}
	for ; i < n; i++ {
		if h := Mix(ds[i] ^ dp); h > b0 || (h == b0 && i < i0) {
			b0, i0 = h, i
		}
	}
	pick := func(ba uint64, ia int, bb uint64, ib int) (uint64, int) {
		if bb > ba || (bb == ba && ib < ia) {
			return bb, ib
		}
		return ba, ia
	}
	b0, i0 = pick(b0, i0, b1, i1)
	b2, i2 = pick(b2, i2, b3, i3)
	_, bi := pick(b0, i0, b2, i2)
	return bi
}

// topByHash keeps the r highest hashes in a small array sorted descending.
// Ties are impossible between distinct digests (Mix is a bijection); equal
// digests keep the lower index, i.e. the lower id, first. The loop is
// unrolled by two and skips on one compare against the r-th best so far.
func (m *Map) topByHash(dst []int, dp uint64, r int) []int {
	var hs [MaxReplication]uint64
	var is [MaxReplication]int
	ds := m.digests
	k := 0
	// Fill the first r slots.
	for k < r {
		h := Mix(ds[k] ^ dp)
		j := k
		for j > 0 && hs[j-1] < h {
			hs[j], is[j] = hs[j-1], is[j-1]
			j--
		}
		hs[j], is[j] = h, k
		k++
	}
	insert := func(h uint64, i int) {
		j := r - 1
		for j > 0 && hs[j-1] < h {
			hs[j], is[j] = hs[j-1], is[j-1]
			j--
		}
		hs[j], is[j] = h, i
	}
	i := r
	for ; i+1 < len(ds); i += 2 {
		h0, h1 := Mix(ds[i]^dp), Mix(ds[i+1]^dp)
		if h0 > hs[r-1] {
			insert(h0, i)
		}
		if h1 > hs[r-1] {
			insert(h1, i+1)
		}
	}
	if i < len(ds) {
		if h := Mix(ds[i] ^ dp); h > hs[r-1] {
			insert(h, i)
		}
	}
	return append(dst, is[:r]...)
}

// topByScore keeps the r best (score, hash) pairs. A worker whose score
// cannot reach the current r-th best is skipped without its logarithm:
// -ln(u) >= 1-u, so score <= w/(1-u); the margin covers rounding, so the
// skip never changes the result.
func (m *Map) topByScore(dst []int, dp uint64, r int) []int {
	var ss [MaxReplication]float64
	var hs [MaxReplication]uint64
	var is [MaxReplication]int
	k := 0
	const margin = 1 + 1.0/(1<<40)
	for i, dw := range m.digests {
		h := Mix(dw ^ dp)
		w := m.weights[i]
		if k == r {
			u := float64((h>>11)|1) / (1 << 53)
			if bound := w / (1 - u) * margin; bound < ss[k-1] {
				continue
			}
		}
		s := weightedScore(w, h)
		if k == r && !better(s, h, ss[k-1], hs[k-1]) {
			continue
		}
		j := k
		if k < r {
			k++
		} else {
			j = r - 1
		}
		for j > 0 && better(s, h, ss[j-1], hs[j-1]) {
			ss[j], hs[j], is[j] = ss[j-1], hs[j-1], is[j-1]
			j--
		}
		ss[j], hs[j], is[j] = s, h, i
	}
	return append(dst, is[:k]...)
}

// better orders (score, hash) pairs: higher score, then higher hash. Equal
// pairs are not better, so the earlier (lower id) worker stays ahead.
func better(s float64, h uint64, s2 float64, h2 uint64) bool {
	if s != s2 {
		return s > s2
	}
	return h > h2
}
