package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// probe measures failover: one writer per master appends a journal note
// every few milliseconds, each with a short deadline, and records when
// each was sent and when it was acknowledged. After a fault at T, the
// first note sent at or after T that is acknowledged was committed by a
// new leader: the old one is dead, frozen or cut off from the quorum, and
// cannot commit anything sent after T. Failover time = that ack − T.
type probe struct {
	h    *history
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	acks []probeAck
}

type probeAck struct {
	master        string
	call, return_ int64
}

const (
	probeEvery   = 20 * time.Millisecond
	probeTimeout = 300 * time.Millisecond
)

func startProbe(c *cluster, h *history) *probe {
	p := &probe{h: h, stop: make(chan struct{})}
	for _, m := range c.masters {
		s := c.one(m)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			tick := time.NewTicker(probeEvery)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-p.stop:
					return
				case <-tick.C:
				}
				call := h.now()
				ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
				_, err := s.Events.AppendNote(ctx, connect.NewRequest(&cairnv1.AppendNoteRequest{Text: fmt.Sprintf("drill probe %s %d", m, n)}))
				cancel()
				if err == nil {
					p.mu.Lock()
					p.acks = append(p.acks, probeAck{master: m, call: call, return_: h.now()})
					p.mu.Unlock()
				}
			}
		}()
	}
	return p
}

func (p *probe) halt() {
	close(p.stop)
	p.wg.Wait()
}

// failover is the time from a fault at t to the first acknowledgement of a
// note sent at or after t, and the master that took it; ok is false when
// none was acknowledged before until.
func (p *probe) failover(t, until int64) (time.Duration, string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	best, by := int64(-1), ""
	for _, a := range p.acks {
		if a.call >= t && a.return_ <= until && (best < 0 || a.return_ < best) {
			best, by = a.return_, a.master
		}
	}
	if best < 0 {
		return 0, "", false
	}
	return time.Duration(best - t), by, true
}

// lastBefore is when the last note sent before t was acknowledged (by the
// old leader, before it stopped), or -1.
func (p *probe) lastBefore(t int64) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	last := int64(-1)
	for _, a := range p.acks {
		if a.call < t && a.return_ > last {
			last = a.return_
		}
	}
	return last
}

// percentile of ds (nearest rank); ds is sorted in place.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}
