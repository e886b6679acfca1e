package master

import (
	"context"
	"fmt"
	"time"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// runRebalance is the leader's rebalance controller: whenever the epoch
// moves past the newest epoch a rebalance was started for (and rebalance
// is enabled), it stops the running rebalance and starts one for the
// current map, in one journal entry. Everything it decides on comes from
// the journal, so a new leader picks up where the old one stopped.
func (m *Master) runRebalance(ctx context.Context) {
	st := m.j.State()
	for {
		changed := st.Changed()
		if err := m.rebalanceOnce(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("rebalance controller", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func (m *Master) rebalanceOnce(ctx context.Context) error {
	// This runs on every change of the journal: the cheap test first (the
	// epoch is in memory, the last rebalance's one read), the settings
	// only when a new epoch has no rebalance yet.
	st := m.j.State()
	epoch := st.ClusterMap().GetEpoch()
	last, err := st.LastRebalanceEpoch()
	if err != nil || epoch == 0 || last >= epoch {
		return err
	}
	if set, err := st.Settings(); err != nil || !set.GetRebalanceEnabled() {
		return err
	}
	running, err := st.RunningJobs(cairnv1.JobKind_JOB_KIND_REBALANCE)
	if err != nil {
		return err
	}
	var stops []*cairnv1.Event
	for _, j := range running {
		stops = append(stops, &cairnv1.Event{Kind: &cairnv1.Event_JobStopped{JobStopped: &cairnv1.JobStopped{
			JobId: j.GetId(), Reason: fmt.Sprintf("superseded by epoch %d", epoch)}}})
	}
	resp, err := m.startJob(ctx, &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_REBALANCE, Epoch: epoch}, "rebalance controller", 0, stops...)
	if err != nil {
		return err
	}
	if len(stops) > 0 {
		m.log.Info("a new epoch aborted the running rebalance", "stopped", len(stops), "epoch", epoch, "job", resp.GetJob().GetId())
	}
	return nil
}
