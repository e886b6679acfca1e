package master

import (
	"context"
	"fmt"
	"time"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// needsCleanup reports whether a change of the map between epoch from and
// epoch to can have left misplaced copies on worker w: a worker joined or
// returned (the others lose ownership to it; a returning worker also holds
// copies that may have gone stale while it was away), a capacity changed
// (weights move ownership both ways), or R went down. A pure removal only
// gives the others more to own, so it needs none.
func (m *Master) needsCleanup(w string, from, to uint64) (bool, string, error) {
	st := m.j.State()
	prev, found, err := st.ClusterMapAt(from)
	if err != nil {
		return false, "", err
	}
	if !found || from == 0 {
		return true, "no clean epoch recorded", nil
	}
	for e := from + 1; e <= to; e++ {
		cur, found, err := st.ClusterMapAt(e)
		if err != nil {
			return false, "", err
		}
		if !found {
			continue
		}
		before := map[string]uint64{}
		for _, x := range prev.GetWorkers() {
			before[x.GetId()] = x.GetCapacityBytes()
		}
		inCur := false
		for _, x := range cur.GetWorkers() {
			inCur = inCur || x.GetId() == w
		}
		if inCur {
			if cur.GetReplication() < prev.GetReplication() {
				return true, fmt.Sprintf("R went from %d to %d at epoch %d", prev.GetReplication(), cur.GetReplication(), e), nil
			}
			for _, x := range cur.GetWorkers() {
				c, was := before[x.GetId()]
				switch {
				case !was:
					return true, fmt.Sprintf("%s joined or returned at epoch %d", x.GetId(), e), nil
				case c != x.GetCapacityBytes():
					return true, fmt.Sprintf("%s changed capacity at epoch %d", x.GetId(), e), nil
				}
			}
		}
		prev = cur
	}
	return false, "", nil
}

// runCleanupController is the leader's automatic cleanup: once the cluster
// is stable after an epoch change — no rebalance or cleanup running, the
// rebalance of the epoch done, the map unchanged and every ACTIVE worker
// heartbeating for the settle window — it starts a cleanup on exactly the
// workers whose clean epoch is behind and that the changes since could
// have left misplaced copies on, and records the others clean.
func (m *Master) runCleanupController(ctx context.Context) {
	began := time.Now()
	for range ticks(ctx, max(m.cfg.CleanupSettle/10, 100*time.Millisecond)) {
		if err := m.cleanupOnce(ctx, began); err != nil && ctx.Err() == nil {
			m.log.Warn("cleanup controller", "err", err)
		}
	}
}

func (m *Master) cleanupOnce(ctx context.Context, leaderSince time.Time) error {
	st := m.j.State()
	set, err := st.Settings()
	if err != nil || !set.GetCleanupAuto() {
		return err
	}
	cm := st.ClusterMap()
	epoch := cm.GetEpoch()
	settle := m.cfg.CleanupSettle
	if epoch == 0 || time.Since(cm.GetTime().AsTime()) < settle || time.Since(leaderSince) < min(settle, m.cfg.HeartbeatTimeout) {
		return nil
	}
	for _, k := range []cairnv1.JobKind{cairnv1.JobKind_JOB_KIND_REBALANCE, cairnv1.JobKind_JOB_KIND_CLEANUP} {
		if running, err := st.RunningJobs(k); err != nil || len(running) > 0 {
			return err
		}
	}
	if set.GetRebalanceEnabled() {
		if last, err := st.LastRebalanceEpoch(); err != nil || last < epoch {
			return err // the rebalance of this epoch has not run yet
		}
	}
	// A cleanup of this epoch that failed or was stopped is not retried at
	// once: an operator may be looking at it.
	if last, _, err := st.ListJobs(cairnv1.JobKind_JOB_KIND_CLEANUP, 0, 0, 1); err != nil {
		return err
	} else if len(last) == 1 && last[0].GetSpec().GetEpoch() == epoch && last[0].GetState() != cairnv1.JobState_JOB_STATE_SUCCEEDED &&
		time.Since(last[0].GetEndedTime().AsTime()) < max(settle, time.Minute) {
		return nil
	}
	var dirty, clean []string
	reasons := map[string]string{}
	for _, mw := range cm.GetWorkers() {
		w, found, err := st.Worker(mw.GetId())
		if err != nil {
			return err
		}
		if !found || w.GetCleanEpoch() >= epoch {
			continue
		}
		if !m.liveness.heardRecently(w.GetId()) {
			return nil // not stable: a worker is not heartbeating
		}
		need, why, err := m.needsCleanup(w.GetId(), w.GetCleanEpoch(), epoch)
		if err != nil {
			return err
		}
		if need {
			dirty = append(dirty, w.GetId())
			reasons[w.GetId()] = why
		} else {
			clean = append(clean, w.GetId())
		}
	}
	if len(clean) > 0 {
		if _, _, err := m.propose(ctx, "record clean workers", &cairnv1.Event{Kind: &cairnv1.Event_WorkersClean{
			WorkersClean: &cairnv1.WorkersClean{WorkerIds: clean, Epoch: epoch}}}); err != nil {
			return err
		}
		m.log.Info("workers need no cleanup for the last map changes", "workers", clean, "epoch", epoch)
	}
	if len(dirty) == 0 {
		return nil
	}
	resp, err := m.startJob(ctx, &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_CLEANUP, Workers: dirty}, "cleanup controller", 0)
	if err != nil {
		return err
	}
	m.log.Info("automatic cleanup started", "job", resp.GetJob().GetId(), "workers", dirty, "epoch", epoch, "reasons", reasons)
	return nil
}
