package placement

import (
	"fmt"
	"github.com/cespare/xxhash/v2"
	"strconv"
	"testing"
)

// BenchmarkOwners measures one owner lookup (path digest plus ranking) for
// 10, 100 and 1,000 workers, R = 1 and R = 3, equal and unequal weights.
func BenchmarkOwners(b *testing.B) {
	paths := make([]string, 1024)
	for i := range paths {
		paths[i] = "/bucket/dir-" + strconv.Itoa(i%17) + "/object-" + strconv.Itoa(i) + ".bin"
	}
	for _, weighted := range []bool{false, true} {
		for _, n := range []int{10, 100, 1000} {
			for _, r := range []int{1, 3} {
				kind := "equal"
				if weighted {
					kind = "weighted"
				}
				b.Run(fmt.Sprintf("%s/workers=%d/R=%d", kind, n, r), func(b *testing.B) {
					ws := equalWorkers(n)
					if weighted {
						for i := range ws {
							ws[i].Weight = uint64(1+i%4) << 40
						}
					}
					m := mustNew(b, ws, r)
					buf := make([]int, 0, MaxReplication)
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						buf = m.Owners(buf[:0], paths[i&1023])
						i++
					}
				})
			}
		}
	}
}

// BenchmarkFloor is the baseline for BenchmarkOwners: hashing the path and
// mixing it with every worker's digest, summing instead of ranking. No
// lookup that evaluates the specified function for every worker can be
// faster on the same machine, so BENCHMARKS.md reports Owners as a ratio
// to it.
func BenchmarkFloor(b *testing.B) {
	paths := make([]string, 1024)
	for i := range paths {
		paths[i] = "/bucket/dir-" + strconv.Itoa(i%17) + "/object-" + strconv.Itoa(i) + ".bin"
	}
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			m := mustNew(b, equalWorkers(n), 1)
			var sink uint64
			i := 0
			for b.Loop() {
				dp := xxhash.Sum64String(paths[i&1023])
				for _, d := range m.digests {
					sink += Mix(d ^ dp)
				}
				i++
			}
			if sink == 42 {
				b.Log(sink)
			}
		})
	}
}
