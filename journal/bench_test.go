package journal

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPropose measures the journal alone: three nodes in this process
// on real disks and a real TCP transport, P goroutines proposing one
// 256-byte note each at a time, with and without application batching.
// tests/bench drives the same work through the API and separate
// processes; the gap between the two is the cost of the API path.
//
//	go test ./journal -run XXX -bench Propose -benchtime 20000x
func BenchmarkPropose(b *testing.B) {
	for _, batch := range []int{4096, 1} {
		for _, p := range []int{1, 64, 1000} {
			for _, store := range []string{"bolt", "wal"} {
				b.Run(fmt.Sprintf("batch=%d/proposers=%d/store=%s", batch, p, store), func(b *testing.B) {
					js := tcpCluster(b, 3, func(c *Config) { c.MaxBatchEvents = batch; c.LogStore = store })
					leader := js[0]
					text := strings.Repeat("x", 256)
					var next atomic.Int64
					var wg sync.WaitGroup
					var failed atomic.Int64
					start := time.Now()
					b.ResetTimer()
					for range p {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for next.Add(1) <= int64(b.N) {
								if _, _, err := leader.Propose(context.Background(), note(text)); err != nil {
									failed.Add(1)
								}
							}
						}()
					}
					wg.Wait()
					b.StopTimer()
					if failed.Load() > 0 {
						b.Fatalf("%d proposals failed", failed.Load())
					}
					b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
				})
			}
		}
	}
}

// tcpCluster starts n journals on TCP loopback and real disks; the first
// bootstraps and leads, the others are added as voters.
func tcpCluster(tb testing.TB, n int, cfg func(*Config)) []*Journal {
	tb.Helper()
	var js []*Journal
	for i := range n {
		c := Config{NodeID: fmt.Sprintf("n%d", i), Dir: tb.TempDir(), RaftBind: freeAddr(tb), Bootstrap: i == 0, Logger: quiet}
		if cfg != nil {
			cfg(&c)
		}
		j, err := Open(c)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { j.Close() })
		js = append(js, j)
		if i == 0 {
			waitFor(tb, "leadership", j.IsLeader)
		}
	}
	for _, j := range js[1:] {
		if err := js[0].AddVoter(j.NodeID(), j.RaftAddress()); err != nil {
			tb.Fatal(err)
		}
	}
	return js
}
