package master

import (
	"context"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/fsm"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// cleanupView is what the automatic cleanup controller decides on, read
// from the journal (and, for heard, from the leader's liveness clock).
type cleanupView struct {
	settings *cairnv1.Settings
	current  *cairnv1.ClusterMap
	// workers are the journal's records of the workers in current.
	workers []*cairnv1.Worker
	// busy: a rebalance or a cleanup runs.
	busy bool
	// lastRebalance is the newest epoch a rebalance was started for.
	lastRebalance uint64
	// lastCleanup is the newest cleanup job, nil if none.
	lastCleanup *cairnv1.Job
	// mapAt returns the map at an epoch (what needsCleanup walks, only
	// when the cluster is stable).
	mapAt func(epoch uint64) (*cairnv1.ClusterMap, bool)
	// mapErr is the first error mapAt met reading the state (it then
	// answered not found).
	mapErr func() error
	// heard: the worker has heartbeated to this leader within two
	// heartbeat intervals.
	heard map[string]bool
}

// cleanupTiming is the controller's configuration and clock.
type cleanupTiming struct {
	now, leaderSince         time.Time
	settle, heartbeatTimeout time.Duration
}

// cleanupDecision is what decideCleanup decided: wait (and why), or record
// clean the workers the changes since their clean epoch left nothing
// misplaced on, and start a cleanup on the dirty ones.
type cleanupDecision struct {
	wait    string
	clean   []string
	dirty   []string
	reasons map[string]string
}

// readCleanup reads the view, stopping early (with done) as soon as what it
// has read already says there is nothing to do.
func readCleanup(st *fsm.Machine, heard func(string) bool) (v cleanupView, done bool, err error) {
	if v.settings, err = st.Settings(); err != nil || !v.settings.GetCleanupAuto() {
		return v, true, err
	}
	v.current = st.ClusterMap()
	for _, k := range []cairnv1.JobKind{cairnv1.JobKind_JOB_KIND_REBALANCE, cairnv1.JobKind_JOB_KIND_CLEANUP} {
		running, err := st.RunningJobs(k)
		if err != nil {
			return v, true, err
		}
		v.busy = v.busy || len(running) > 0
	}
	if v.lastRebalance, err = st.LastRebalanceEpoch(); err != nil {
		return v, true, err
	}
	if last, _, err := st.ListJobs(cairnv1.JobKind_JOB_KIND_CLEANUP, 0, 0, 1); err != nil {
		return v, true, err
	} else if len(last) == 1 {
		v.lastCleanup = last[0]
	}
	v.heard = map[string]bool{}
	for _, mw := range v.current.GetWorkers() {
		w, found, err := st.Worker(mw.GetId())
		if err != nil {
			return v, true, err
		}
		if found {
			v.workers = append(v.workers, w)
			v.heard[w.GetId()] = heard(w.GetId())
		}
	}
	var readErr error
	v.mapAt = func(e uint64) (*cairnv1.ClusterMap, bool) {
		cm, found, err := st.ClusterMapAt(e)
		if err != nil && readErr == nil {
			readErr = err
		}
		return cm, found && err == nil
	}
	v.mapErr = func() error { return readErr }
	return v, false, nil
}

// decideCleanup decides whether the cluster is stable after an epoch
// change — no rebalance or cleanup running, the rebalance of the epoch
// started, the map unchanged and every worker to judge heartbeating for
// the settle window — and, if so, which of the workers whose clean epoch
// is behind need a cleanup (needsCleanup) and which can be recorded clean.
func decideCleanup(c cleanupTiming, v cleanupView) cleanupDecision {
	epoch := v.current.GetEpoch()
	switch {
	case !v.settings.GetCleanupAuto():
		return cleanupDecision{wait: "cleanup.auto is off"}
	case epoch == 0:
		return cleanupDecision{wait: "no map yet"}
	case c.now.Sub(v.current.GetTime().AsTime()) < c.settle:
		return cleanupDecision{wait: fmt.Sprintf("the map changed less than %s ago", c.settle)}
	case c.now.Sub(c.leaderSince) < min(c.settle, c.heartbeatTimeout):
		return cleanupDecision{wait: "this leader is new: workers have not all had time to heartbeat to it"}
	case v.busy:
		return cleanupDecision{wait: "a rebalance or cleanup runs"}
	case v.settings.GetRebalanceEnabled() && v.lastRebalance < epoch:
		return cleanupDecision{wait: fmt.Sprintf("the rebalance of epoch %d has not started", epoch)}
	}
	// A cleanup of this epoch that failed or was stopped is not retried at
	// once: an operator may be looking at it.
	if l := v.lastCleanup; l != nil && l.GetSpec().GetEpoch() == epoch && l.GetState() != cairnv1.JobState_JOB_STATE_SUCCEEDED &&
		c.now.Sub(l.GetEndedTime().AsTime()) < max(c.settle, time.Minute) {
		return cleanupDecision{wait: fmt.Sprintf("cleanup job %d of this epoch ended %s a moment ago", l.GetId(), l.GetState())}
	}
	// One that kept copies inside its safety window left its workers
	// dirty: the next waits until those copies are out of the window.
	if l := v.lastCleanup; l != nil && l.GetSpec().GetEpoch() == epoch && l.GetState() == cairnv1.JobState_JOB_STATE_SUCCEEDED && l.GetCounters().GetKeptRecent() > 0 {
		if until := l.GetCreatedTime().AsTime().Add(l.GetSpec().GetDontCleanupTime().AsDuration() + c.settle); c.now.Before(until) {
			return cleanupDecision{wait: fmt.Sprintf("cleanup job %d kept %d copies inside its %s window; the next runs after %s",
				l.GetId(), l.GetCounters().GetKeptRecent(), l.GetSpec().GetDontCleanupTime().AsDuration(), until.UTC().Format(time.RFC3339))}
		}
	}
	d := cleanupDecision{reasons: map[string]string{}}
	for _, w := range v.workers {
		if w.GetCleanEpoch() >= epoch {
			continue
		}
		if !v.heard[w.GetId()] {
			return cleanupDecision{wait: fmt.Sprintf("worker %s is not heartbeating", w.GetId())}
		}
		if need, why := needsCleanup(w.GetId(), w.GetCleanEpoch(), epoch, v.mapAt); need {
			d.dirty = append(d.dirty, w.GetId())
			d.reasons[w.GetId()] = why
		} else {
			d.clean = append(d.clean, w.GetId())
		}
	}
	return d
}

// needsCleanup reports whether a change of the map between epoch from and
// epoch to can have left misplaced copies on worker w: a worker joined or
// returned (the others lose ownership to it; a returning worker also holds
// copies that may have gone stale while it was away), a capacity changed
// (weights move ownership both ways), or R went down. A pure removal only
// gives the others more to own, so it needs none. mapAt returns the map at
// an epoch.
func needsCleanup(w string, from, to uint64, mapAt func(uint64) (*cairnv1.ClusterMap, bool)) (bool, string) {
	if from == 0 {
		return true, "no clean epoch recorded"
	}
	prev, found := mapAt(from)
	if !found {
		return true, "no clean epoch recorded"
	}
	for e := from + 1; e <= to; e++ {
		cur, found := mapAt(e)
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
				return true, fmt.Sprintf("R went from %d to %d at epoch %d", prev.GetReplication(), cur.GetReplication(), e)
			}
			for _, x := range cur.GetWorkers() {
				c, was := before[x.GetId()]
				switch {
				case !was:
					return true, fmt.Sprintf("%s joined or returned at epoch %d", x.GetId(), e)
				case c != x.GetCapacityBytes():
					return true, fmt.Sprintf("%s changed capacity at epoch %d", x.GetId(), e)
				}
			}
		}
		prev = cur
	}
	return false, ""
}

// runCleanupController is the leader's automatic cleanup (decideCleanup),
// every settle/10.
func (m *Master) runCleanupController(ctx context.Context) {
	began := time.Now()
	for range ticks(ctx, max(m.cfg.CleanupSettle/10, 100*time.Millisecond)) {
		if err := m.cleanupOnce(ctx, began); err != nil && ctx.Err() == nil {
			m.log.Warn("cleanup controller", "err", err)
		}
	}
}

func (m *Master) cleanupOnce(ctx context.Context, leaderSince time.Time) error {
	v, done, err := readCleanup(m.j.State(), m.liveness.heardRecently)
	if err != nil || done {
		return err
	}
	d := decideCleanup(cleanupTiming{now: time.Now(), leaderSince: leaderSince, settle: m.cfg.CleanupSettle, heartbeatTimeout: m.cfg.HeartbeatTimeout}, v)
	if err := v.mapErr(); err != nil {
		return fmt.Errorf("read the maps since the workers' clean epochs: %w", err)
	}
	epoch := v.current.GetEpoch()
	if len(d.clean) > 0 {
		if _, _, err := m.propose(ctx, "record clean workers", &cairnv1.Event{Kind: &cairnv1.Event_WorkersClean{
			WorkersClean: &cairnv1.WorkersClean{WorkerIds: d.clean, Epoch: epoch}}}); err != nil {
			return err
		}
		m.log.Info("workers need no cleanup for the last map changes", "workers", d.clean, "epoch", epoch)
	}
	if len(d.dirty) == 0 {
		return nil
	}
	resp, err := m.startJob(ctx, &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_CLEANUP, Workers: d.dirty}, "cleanup controller", 0)
	if err != nil {
		return err
	}
	m.log.Info("automatic cleanup started", "job", resp.GetJob().GetId(), "workers", d.dirty, "epoch", epoch, "reasons", d.reasons)
	return nil
}
