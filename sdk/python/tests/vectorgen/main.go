// Command vectorgen writes fresh random placement vectors with the Go
// implementation (package placement), in the layout of the "cases" of
// placement/testdata/vectors.json, so the Python SDK's tests can check its
// own owners() against the Go code's in the same run: the two can never
// drift apart unnoticed, whatever the fixed vectors happen to cover.
//
//	go run ./sdk/python/tests/vectorgen -seed 42 -cases 200 > vectors.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/cairnhq/cairn/placement"
)

type lookup struct {
	Path   string   `json:"path"`
	Owners []string `json:"owners"`
}

type ownerCase struct {
	Name        string             `json:"name"`
	Replication int                `json:"replication"`
	Workers     []placement.Worker `json:"workers"`
	Lookups     []lookup           `json:"lookups"`
}

type output struct {
	Seed  uint64      `json:"seed"`
	Cases []ownerCase `json:"cases"`
}

// alphabets the random ids and paths draw from: ASCII, Latin-1 and other
// BMP letters, CJK, and characters outside the BMP (4-byte UTF-8).
var alphabets = [][2]rune{{'a', 'z'}, {'0', '9'}, {0xC0, 0xFF}, {0x391, 0x3C9}, {0x4E00, 0x4E80}, {0x1F300, 0x1F320}}

func randString(r *rand.Rand, minLen, maxLen int) string {
	n := minLen + r.IntN(maxLen-minLen+1)
	var b strings.Builder
	for range n {
		a := alphabets[r.IntN(len(alphabets))]
		if r.IntN(3) > 0 {
			a = alphabets[r.IntN(2)] // mostly ASCII
		}
		b.WriteRune(a[0] + rune(r.IntN(int(a[1]-a[0]+1))))
	}
	return b.String()
}

func randWeight(r *rand.Rand) uint64 {
	switch r.IntN(5) {
	case 0:
		return 1 + r.Uint64N(10) // tiny
	case 1:
		return (1 + r.Uint64N(8)) << 30 // whole GiB
	case 2:
		return (1 + r.Uint64N(100)) << 40 // whole TiB
	case 3:
		return 1 + r.Uint64() // anywhere, also above 2^53 (rounds to float64)
	default:
		return 1 + r.Uint64N(1<<34)
	}
}

func randPath(r *rand.Rand) string {
	switch r.IntN(8) {
	case 0:
		return ""
	case 1:
		return randString(r, 0, 6)
	case 2:
		return fmt.Sprintf("/bucket/obj-%06d", r.IntN(1000000))
	}
	var b strings.Builder
	for range 1 + r.IntN(4) {
		b.WriteString("/")
		b.WriteString(randString(r, 1, 12))
	}
	return b.String()
}

func main() {
	seed := flag.Uint64("seed", 0, "random seed (0: from the clock; the seed used is in the output)")
	cases := flag.Int("cases", 100, "how many random maps")
	lookups := flag.Int("lookups", 40, "paths looked up per map")
	flag.Parse()
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	r := rand.New(rand.NewPCG(*seed, 0x9E3779B97F4A7C15))
	out := output{Seed: *seed}
	for c := range *cases {
		n := 1 + r.IntN(40)
		if r.IntN(5) == 0 {
			n = 1 + r.IntN(400)
		}
		weighted := r.IntN(2) == 0
		equalWeight := randWeight(r)
		seen := map[string]bool{}
		var ws []placement.Worker
		for len(ws) < n {
			id := fmt.Sprintf("w-%d", r.IntN(100000))
			if r.IntN(2) == 0 {
				id = randString(r, 1, 16)
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			w := placement.Worker{ID: id, Weight: equalWeight}
			if weighted {
				w.Weight = randWeight(r)
				if r.IntN(4) == 0 {
					w.Weight = equalWeight // some equal weights among unequal ones
				}
			}
			ws = append(ws, w)
		}
		repl := 1 + r.IntN(placement.MaxReplication)
		if r.IntN(2) == 0 {
			repl = 1 + r.IntN(3)
		}
		m, err := placement.New(ws, repl)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		oc := ownerCase{Name: fmt.Sprintf("random %d (seed %d): %d workers, R %d, weighted %v", c, *seed, n, repl, m.Weighted()), Replication: repl, Workers: ws}
		for range *lookups {
			p := randPath(r)
			oc.Lookups = append(oc.Lookups, lookup{Path: p, Owners: m.OwnerIDs(p)})
		}
		out.Cases = append(out.Cases, oc)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
