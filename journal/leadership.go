package journal

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

type leaderFn struct {
	name string
	fn   func(ctx context.Context)
}

// OnLeader registers fn to run whenever this node becomes leader, with a
// context cancelled when leadership is lost or the journal closes. fn must
// return soon after its context ends. Register before leadership can
// arrive (right after Open) to be sure to run the first time.
func (j *Journal) OnLeader(name string, fn func(ctx context.Context)) {
	j.leaderMu.Lock()
	defer j.leaderMu.Unlock()
	j.leaderFns = append(j.leaderFns, leaderFn{name: name, fn: fn})
}

func (j *Journal) runLeadership(notify <-chan bool, obs <-chan raft.Observation) {
	defer j.wg.Done()
	var cancel context.CancelFunc
	var running sync.WaitGroup
	stopLeading := func() {
		if cancel != nil {
			cancel()
			running.Wait()
			cancel = nil
			j.log.Info("leader work stopped")
		}
	}
	defer stopLeading()
	for {
		select {
		case <-j.stop:
			return
		case <-obs:
			j.metrics.leaderChanges.Inc()
			j.leaderMu.Lock()
			close(j.leaderChanged)
			j.leaderChanged = make(chan struct{})
			j.leaderMu.Unlock()
		case leading := <-notify:
			if !leading {
				stopLeading()
				continue
			}
			if cancel != nil {
				continue
			}
			// Apply everything committed before this term first, so leader
			// work starts from the latest state.
			if err := j.raft.Barrier(10 * time.Second).Error(); err != nil {
				j.log.Warn("barrier after winning the election failed; not starting leader work", "err", err)
				continue
			}
			ctx, leadCancel := context.WithCancel(context.Background())
			cancel = leadCancel
			j.leaderMu.Lock()
			fns := append([]leaderFn(nil), j.leaderFns...)
			j.leaderMu.Unlock()
			j.log.Info("leading: starting leader work", "term", j.raft.CurrentTerm(), "tasks", len(fns))
			for _, lf := range fns {
				running.Add(1)
				go func() {
					defer running.Done()
					lf.fn(ctx)
				}()
			}
		}
	}
}
