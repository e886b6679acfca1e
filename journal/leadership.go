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
				j.leaderGen.Add(1)
				stopLeading()
				continue
			}
			if cancel != nil {
				continue
			}
			gen := j.leaderGen.Add(1)
			ctx, leadCancel := context.WithCancel(context.Background())
			cancel = leadCancel
			running.Add(1)
			go func() {
				defer running.Done()
				// Apply everything committed before this term first, so
				// leader work starts from the latest state. The wait ends
				// with leadership or the journal, never blocking either.
				if err := j.await(ctx, j.raft.Barrier(10*time.Second)); err != nil {
					j.log.Warn("barrier after winning the election failed; not starting leader work", "err", err)
					return
				}
				j.markReady(gen)
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
			}()
		}
	}
}

// await waits for a raft future until ctx ends or the journal closes. A
// future raft accepted but never processed (it shut down first) is never
// answered, so waiting on it alone could hang Close.
func (j *Journal) await(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-j.stop:
		return raft.ErrRaftShutdown
	}
}
