package master

import (
	"context"
	"sync"
	"time"

	"github.com/cairnhq/cairn/fsm"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// liveness is the leader's view of worker heartbeats. Last-seen times live
// in memory on the leader only: they are not facts worth journaling, the
// transitions they cause (DOWN, back to ACTIVE) are. A new leader starts
// every ACTIVE worker's clock afresh, so a worker gets a full timeout to
// find the new leader before it is declared DOWN.
type liveness struct {
	m        *Master
	mu       sync.Mutex
	lastSeen map[string]time.Time
}

func newLiveness(m *Master) *liveness {
	return &liveness{m: m, lastSeen: make(map[string]time.Time)}
}

// seen records a heartbeat (or registration) from a worker.
func (l *liveness) seen(id string, at time.Time) {
	l.mu.Lock()
	l.lastSeen[id] = at
	l.mu.Unlock()
}

// heardRecently reports whether this leader has had a heartbeat from a
// worker within two heartbeat intervals.
func (l *liveness) heardRecently(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	last, ok := l.lastSeen[id]
	return ok && time.Since(last) <= 2*l.m.cfg.HeartbeatInterval
}

// silentWorkers are the DOWN events of the ACTIVE workers silent for
// longer than timeout at now: last heard from at lastSeen, or, for one this
// leader has not heard from yet, since it began leading (a new leader
// gives every worker a full timeout).
func silentWorkers(now, since time.Time, timeout time.Duration, workers []*cairnv1.Worker, lastSeen map[string]time.Time) []*cairnv1.Event {
	var down []*cairnv1.Event
	for _, w := range workers {
		if w.GetState() != cairnv1.WorkerState_WORKER_STATE_ACTIVE {
			continue
		}
		last, ok := lastSeen[w.GetId()]
		if !ok {
			last = since
		}
		if now.Sub(last) > timeout {
			down = append(down, fsm.DownEvent(w.GetId(), last, timeout))
		}
	}
	return down
}

// run is the leader task: every timeout/10 it journals silentWorkers DOWN.
func (l *liveness) run(ctx context.Context) {
	timeout := l.m.cfg.HeartbeatTimeout
	start := time.Now()
	l.mu.Lock()
	l.lastSeen = make(map[string]time.Time)
	l.mu.Unlock()
	for range ticks(ctx, max(timeout/10, 20*time.Millisecond)) {
		workers, err := l.m.j.State().Workers()
		if err != nil {
			l.m.log.Error("liveness: read workers", "err", err)
			continue
		}
		l.mu.Lock()
		down := silentWorkers(time.Now(), start, timeout, workers, l.lastSeen)
		l.mu.Unlock()
		for _, ev := range down {
			// One proposal per worker: one rejected transition (the worker
			// changed state meanwhile) must not hide the others.
			res, _, err := l.m.j.Propose(ctx, ev)
			switch {
			case err != nil:
				l.m.log.Warn("liveness: journal DOWN", "worker", ev.GetWorkerDown().GetWorkerId(), "err", err)
			case res[0].Code == fsm.OK:
				l.m.log.Warn("worker is down: no heartbeat within the timeout",
					"worker", ev.GetWorkerDown().GetWorkerId(), "timeout", timeout, "epoch", res[0].Epoch)
			}
		}
	}
}
