package placement

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/cespare/xxhash/v2"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from the implementation")

func equalWorkers(n int) []Worker {
	ws := make([]Worker, n)
	for i := range ws {
		ws[i] = Worker{ID: fmt.Sprintf("worker-%03d", i), Weight: 1 << 40}
	}
	return ws
}

func mustNew(t testing.TB, ws []Worker, r int) *Map {
	t.Helper()
	m, err := New(ws, r)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		ws   []Worker
		r    int
	}{
		{"replication zero", equalWorkers(3), 0},
		{"replication too high", equalWorkers(3), MaxReplication + 1},
		{"empty id", []Worker{{ID: "", Weight: 1}}, 1},
		{"duplicate id", []Worker{{ID: "a", Weight: 1}, {ID: "a", Weight: 1}}, 1},
		{"zero weight", []Worker{{ID: "a", Weight: 0}}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(c.ws, c.r); err == nil {
				t.Fatalf("New accepted %v with R=%d", c.ws, c.r)
			}
		})
	}
}

func TestOwnersBasics(t *testing.T) {
	t.Parallel()
	empty := mustNew(t, nil, 3)
	if got := empty.Owners(nil, "/a"); len(got) != 0 {
		t.Fatalf("empty map owns %v", got)
	}
	m := mustNew(t, equalWorkers(5), 3)
	for _, p := range []string{"", "/", "/a/b", "/x/y/z.parquet"} {
		own := m.Owners(nil, p)
		if len(own) != 3 {
			t.Fatalf("%q: %d owners, want 3", p, len(own))
		}
		seen := map[int]bool{}
		for _, i := range own {
			if seen[i] {
				t.Fatalf("%q: owner %d twice in %v", p, i, own)
			}
			seen[i] = true
		}
		// The owners are the prefix of a full ranking: R=1's owner is R=3's primary.
		if one := m.OwnersN(nil, p, 1); one[0] != own[0] {
			t.Fatalf("%q: R=1 owner %d, R=3 primary %d", p, one[0], own[0])
		}
		if all := m.OwnersN(nil, p, 5); !slices.Equal(all[:3], own) {
			t.Fatalf("%q: R=5 ranking %v does not start with %v", p, all, own)
		}
	}
	small := mustNew(t, equalWorkers(2), 3)
	if got := small.Owners(nil, "/a"); len(got) != 2 {
		t.Fatalf("R=3 over 2 workers: %d owners, want 2", len(got))
	}
}

// TestRankingMatchesDefinition checks the fast top-R selection against a
// plain sort of every worker by the specified order.
func TestRankingMatchesDefinition(t *testing.T) {
	t.Parallel()
	weightSets := map[string]func(i int) uint64{
		"equal":    func(int) uint64 { return 100 },
		"weighted": func(i int) uint64 { return uint64(1+i%4) << 30 },
	}
	for name, weight := range weightSets {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ws := make([]Worker, 37)
			for i := range ws {
				ws[i] = Worker{ID: fmt.Sprintf("w%02d", i), Weight: weight(i)}
			}
			m := mustNew(t, ws, MaxReplication)
			for p := range 2000 {
				path := fmt.Sprintf("/data/part-%05d", p)
				dp := xxhash.Sum64String(path)
				idx := make([]int, m.Len())
				for i := range idx {
					idx[i] = i
				}
				slices.SortStableFunc(idx, func(a, b int) int {
					ha, hb := m.Hash(a, dp), m.Hash(b, dp)
					if m.Weighted() {
						sa, sb := m.Score(a, dp), m.Score(b, dp)
						if sa != sb {
							if sa > sb {
								return -1
							}
							return 1
						}
					}
					if ha != hb {
						if ha > hb {
							return -1
						}
						return 1
					}
					return a - b
				})
				got := m.Owners(nil, path)
				if !slices.Equal(got, idx[:MaxReplication]) {
					t.Fatalf("%s: owners %v, definition %v", path, got, idx[:MaxReplication])
				}
			}
		})
	}
}

// TestEqualWeightsAreHRW: the weighted formula with equal weights ranks like
// plain HRW, so a map whose weights all match may skip it.
func TestEqualWeightsAreHRW(t *testing.T) {
	t.Parallel()
	m := mustNew(t, equalWorkers(50), 3)
	for p := range 20000 {
		dp := xxhash.Sum64String(strconv.Itoa(p))
		best, bestH := -1, uint64(0)
		bestS := math.Inf(-1)
		for i := range m.Len() {
			s, h := m.Score(i, dp), m.Hash(i, dp)
			if best < 0 || better(s, h, bestS, bestH) {
				best, bestS, bestH = i, s, h
			}
		}
		if got := m.Owners(nil, strconv.Itoa(p))[0]; got != best {
			t.Fatalf("path %d: HRW owner %d, weighted formula %d", p, got, best)
		}
	}
}

func TestAddingOneWorkerMovesItsShare(t *testing.T) {
	t.Parallel()
	const paths = 100000
	for _, n := range []int{3, 4, 10, 30} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			ws := equalWorkers(n + 1)
			before := mustNew(t, ws[:n], 1)
			after := mustNew(t, ws, 1)
			newcomer := ws[n].ID
			moved := 0
			for p := range paths {
				path := fmt.Sprintf("/bucket/obj-%06d", p)
				a, b := before.OwnerIDs(path)[0], after.OwnerIDs(path)[0]
				if a == b {
					continue
				}
				if b != newcomer {
					t.Fatalf("%s moved from %s to %s, both old workers", path, a, b)
				}
				moved++
			}
			want := float64(paths) / float64(n+1)
			if got := float64(moved); math.Abs(got-want) > 0.1*want {
				t.Fatalf("moved %d of %d paths, want %.0f ±10%%", moved, paths, want)
			}
		})
	}
}

func TestRemovingOneWorkerMovesOnlyItsPaths(t *testing.T) {
	t.Parallel()
	ws := equalWorkers(8)
	before := mustNew(t, ws, 3)
	after := mustNew(t, slices.Delete(slices.Clone(ws), 3, 4), 3)
	gone := ws[3].ID
	for p := range 20000 {
		path := "/r/" + strconv.Itoa(p)
		a, b := before.OwnerIDs(path), after.OwnerIDs(path)
		kept := slices.DeleteFunc(slices.Clone(a), func(id string) bool { return id == gone })
		for _, id := range kept {
			if !slices.Contains(b, id) {
				t.Fatalf("%s: %s lost ownership though only %s left (%v -> %v)", path, id, gone, a, b)
			}
		}
	}
}

func TestWeightedShares(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		weights []uint64
	}{
		{"one double", []uint64{1, 1, 1, 2}},
		{"spread", []uint64{1, 2, 3, 4, 10}},
		{"large", []uint64{4 << 40, 8 << 40, 12 << 40}},
	}
	const paths = 200000
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ws := make([]Worker, len(c.weights))
			var total uint64
			for i, w := range c.weights {
				ws[i] = Worker{ID: fmt.Sprintf("w%d", i), Weight: w}
				total += w
			}
			m := mustNew(t, ws, 1)
			counts := make([]int, len(ws))
			for p := range paths {
				counts[m.Owners(nil, "/f/"+strconv.Itoa(p))[0]]++
			}
			for i, w := range c.weights {
				// m's index order is id order, which is the input order here.
				want := float64(paths) * float64(w) / float64(total)
				if got := float64(counts[i]); math.Abs(got-want) > 0.05*want {
					t.Fatalf("worker %d (weight %d) owns %d paths, want %.0f ±5%%", i, w, counts[i], want)
				}
			}
		})
	}
}

// TestChangingOneWeightMovesOnlyThatWorkersPaths: raising one worker's
// capacity only draws paths to it; the rest keep their relative order.
func TestChangingOneWeightMovesOnlyThatWorkersPaths(t *testing.T) {
	t.Parallel()
	ws := equalWorkers(6)
	before := mustNew(t, ws, 1)
	ws[2].Weight *= 2
	after := mustNew(t, ws, 1)
	for p := range 50000 {
		path := "/w/" + strconv.Itoa(p)
		a, b := before.OwnerIDs(path)[0], after.OwnerIDs(path)[0]
		if a != b && b != ws[2].ID {
			t.Fatalf("%s moved %s -> %s; only %s changed weight", path, a, b, ws[2].ID)
		}
	}
}

func TestLnMatchesMathLog(t *testing.T) {
	t.Parallel()
	for i := range 100000 {
		h := Mix(uint64(i) * 0x9E3779B97F4A7C15)
		u := float64((h>>11)|1) / (1 << 53)
		got, want := ln(u), math.Log(u)
		if diff := math.Abs(got - want); diff > 2*ulp(want) {
			t.Fatalf("ln(%v) = %v, math.Log = %v (%.1f ulp apart)", u, got, want, diff/ulp(want))
		}
	}
}

func ulp(x float64) float64 {
	return math.Abs(math.Nextafter(x, math.Inf(1)) - x)
}

func TestOwnersDoNotAllocate(t *testing.T) {
	for _, weighted := range []bool{false, true} {
		ws := equalWorkers(100)
		if weighted {
			ws[0].Weight *= 3
		}
		m := mustNew(t, ws, 3)
		buf := make([]int, 0, MaxReplication)
		allocs := testing.AllocsPerRun(1000, func() { buf = m.Owners(buf[:0], "/some/path/file.bin") })
		if allocs != 0 {
			t.Fatalf("weighted=%v: %v allocations per lookup", weighted, allocs)
		}
	}
}

// vectorFile is the layout of testdata/vectors.json, the cross-language
// contract of the placement function.
type vectorFile struct {
	Comment string      `json:"comment"`
	XXH64   []hashPair  `json:"xxh64"`
	Mix     []hashPair  `json:"mix"`
	Ln      []lnPair    `json:"ln"`
	Cases   []ownerCase `json:"cases"`
}

type hashPair struct {
	In  string `json:"in"`
	Out string `json:"out"`
}

type lnPair struct {
	XBits  string `json:"x_bits"`
	LnBits string `json:"ln_bits"`
}

type ownerCase struct {
	Name        string        `json:"name"`
	Replication int           `json:"replication"`
	Workers     []Worker      `json:"workers"`
	Lookups     []ownerLookup `json:"lookups"`
}

type ownerLookup struct {
	Path   string   `json:"path"`
	Owners []string `json:"owners"`
}

func buildVectors(t *testing.T) vectorFile {
	t.Helper()
	v := vectorFile{Comment: "cairn placement vectors: see placement/doc.go. Hex values are 64-bit big-endian; ln bits are IEEE-754 binary64 bit patterns."}
	for _, s := range []string{"", "a", "worker-000", "/data/part-00001.parquet", "/ünïcödé/路径"} {
		v.XXH64 = append(v.XXH64, hashPair{In: s, Out: fmt.Sprintf("%016x", xxhash.Sum64String(s))})
	}
	for _, x := range []uint64{0, 1, 0xdeadbeef, 0xffffffffffffffff, 0x0123456789abcdef} {
		v.Mix = append(v.Mix, hashPair{In: fmt.Sprintf("%016x", x), Out: fmt.Sprintf("%016x", Mix(x))})
	}
	for i := range 16 {
		h := Mix(uint64(i) * 0x9E3779B97F4A7C15)
		u := float64((h>>11)|1) / (1 << 53)
		v.Ln = append(v.Ln, lnPair{XBits: fmt.Sprintf("%016x", math.Float64bits(u)), LnBits: fmt.Sprintf("%016x", math.Float64bits(ln(u)))})
	}
	paths := []string{"", "/", "/a", "/cache-only/ckpt/step-000100.bin", "/data/part-00001.parquet", "/ünïcödé/路径"}
	for i := range 24 {
		paths = append(paths, fmt.Sprintf("/bucket/obj-%04d", i*37))
	}
	addCase := func(name string, r int, ws []Worker) {
		m := mustNew(t, ws, r)
		c := ownerCase{Name: name, Replication: r, Workers: ws}
		for _, p := range paths {
			c.Lookups = append(c.Lookups, ownerLookup{Path: p, Owners: m.OwnerIDs(p)})
		}
		v.Cases = append(v.Cases, c)
	}
	addCase("one worker", 1, []Worker{{ID: "solo", Weight: 1 << 30}})
	addCase("three equal R1", 1, equalWorkers(3))
	addCase("five equal R3", 3, equalWorkers(5))
	addCase("ten equal R2", 2, equalWorkers(10))
	addCase("R above worker count", 4, equalWorkers(2))
	addCase("weighted R1", 1, []Worker{{ID: "small", Weight: 1 << 30}, {ID: "medium", Weight: 2 << 30}, {ID: "large", Weight: 4 << 30}})
	addCase("weighted R3", 3, []Worker{{ID: "w-a", Weight: 100 << 30}, {ID: "w-b", Weight: 100 << 30}, {ID: "w-c", Weight: 200 << 30}, {ID: "w-d", Weight: 50 << 30}, {ID: "w-e", Weight: 10 << 40}})
	return v
}

func TestVectors(t *testing.T) {
	t.Parallel()
	file := filepath.Join("testdata", "vectors.json")
	if *update {
		b, err := json.MarshalIndent(buildVectors(t), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 || len(v.XXH64) == 0 {
		t.Fatal("vector file holds no vectors")
	}
	// The published XXH64 of the empty input anchors the digest step.
	if v.XXH64[0].In != "" || v.XXH64[0].Out != "ef46db3751d8e999" {
		t.Fatalf("first xxh64 vector is %+v, want the published XXH64(\"\") = ef46db3751d8e999", v.XXH64[0])
	}
	for _, p := range v.XXH64 {
		if got := fmt.Sprintf("%016x", xxhash.Sum64String(p.In)); got != p.Out {
			t.Errorf("XXH64(%q) = %s, vector %s", p.In, got, p.Out)
		}
	}
	for _, p := range v.Mix {
		x, _ := strconv.ParseUint(p.In, 16, 64)
		if got := fmt.Sprintf("%016x", Mix(x)); got != p.Out {
			t.Errorf("mix(%s) = %s, vector %s", p.In, got, p.Out)
		}
	}
	for _, p := range v.Ln {
		xb, _ := strconv.ParseUint(p.XBits, 16, 64)
		if got := fmt.Sprintf("%016x", math.Float64bits(ln(math.Float64frombits(xb)))); got != p.LnBits {
			t.Errorf("ln(bits %s) = bits %s, vector %s", p.XBits, got, p.LnBits)
		}
	}
	for _, c := range v.Cases {
		m := mustNew(t, c.Workers, c.Replication)
		for _, l := range c.Lookups {
			if got := m.OwnerIDs(l.Path); !slices.Equal(got, l.Owners) {
				t.Errorf("case %q path %q: owners %v, vector %v", c.Name, l.Path, got, l.Owners)
			}
		}
	}
}

func FuzzOwners(f *testing.F) {
	f.Add("/a/b", uint8(3), uint8(5), false)
	f.Add("", uint8(1), uint8(1), true)
	f.Fuzz(func(t *testing.T, path string, r, n uint8, weighted bool) {
		rr := int(r)%MaxReplication + 1
		ws := equalWorkers(int(n)%40 + 1)
		if weighted {
			for i := range ws {
				ws[i].Weight = uint64(i%3+1) << 30
			}
		}
		m := mustNew(t, ws, rr)
		own := m.Owners(nil, path)
		if len(own) != min(rr, len(ws)) {
			t.Fatalf("%d owners for R=%d over %d workers", len(own), rr, len(ws))
		}
		seen := map[int]bool{}
		for _, i := range own {
			if i < 0 || i >= m.Len() || seen[i] {
				t.Fatalf("bad owner list %v", own)
			}
			seen[i] = true
		}
	})
}

// TestFileOwners: a file keeps max(its replication, R) owners (at most
// MaxReplication, at most every worker), the prefix of the same ranking;
// 0 means the map's R.
func TestFileOwners(t *testing.T) {
	t.Parallel()
	m := mustNew(t, equalWorkers(6), 2)
	cases := []struct {
		r          uint32
		keep, owns int // FileReplication, and owners among 6 workers
	}{{0, 2, 2}, {1, 2, 2}, {2, 2, 2}, {3, 3, 3}, {6, 6, 6}, {MaxReplication + 5, MaxReplication, 6}}
	for _, tc := range cases {
		if got := m.FileReplication(tc.r); got != tc.keep {
			t.Fatalf("FileReplication(%d) = %d, want %d", tc.r, got, tc.keep)
		}
		for _, p := range []string{"/a", "/b/c.bin", "/x/y/z"} {
			ids := m.FileOwnerIDs(p, tc.r)
			if len(ids) != tc.owns {
				t.Fatalf("%s with replication %d: %d owners %v, want %d", p, tc.r, len(ids), ids, tc.owns)
			}
			rank := m.OwnersN(nil, p, 6)
			for k, id := range ids {
				if id != m.ID(rank[k]) {
					t.Fatalf("%s: owner %d is %s, the ranking says %s", p, k, id, m.ID(rank[k]))
				}
			}
			for k, i := range rank {
				if got := m.IsFileOwner(m.ID(i), p, tc.r); got != (k < tc.owns) {
					t.Fatalf("%s replication %d: IsFileOwner(rank %d) = %v", p, tc.r, k, got)
				}
			}
		}
	}
}
