package master

import (
	"context"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/fsm"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// rebalanceView is what the rebalance controller decides on.
type rebalanceView struct {
	epoch     uint64 // the current epoch
	last      uint64 // the newest epoch a rebalance was started for
	enabled   bool   // the rebalance.enabled setting
	running   []*cairnv1.Job
	readFully bool // settings and running jobs were read (only when needed)
}

// readRebalance reads the view. It runs on every change of the journal:
// the cheap test first (the epoch is in memory, the last rebalance's one
// read), the rest only when a new epoch has no rebalance yet.
func readRebalance(st *fsm.Machine) (rebalanceView, error) {
	v := rebalanceView{epoch: st.ClusterMap().GetEpoch()}
	var err error
	if v.last, err = st.LastRebalanceEpoch(); err != nil || v.epoch == 0 || v.last >= v.epoch {
		return v, err
	}
	set, err := st.Settings()
	if err != nil {
		return v, err
	}
	v.enabled, v.readFully = set.GetRebalanceEnabled(), true
	v.running, err = st.RunningJobs(cairnv1.JobKind_JOB_KIND_REBALANCE)
	return v, err
}

// decideRebalance: when the epoch has moved past the newest rebalance and
// rebalance is enabled, stop the running rebalances and start one for the
// current map (one journal entry). A nil spec: nothing to do.
func decideRebalance(v rebalanceView) (stops []*cairnv1.Event, start *cairnv1.JobSpec) {
	if v.epoch == 0 || v.last >= v.epoch || !v.enabled {
		return nil, nil
	}
	for _, j := range v.running {
		stops = append(stops, &cairnv1.Event{Kind: &cairnv1.Event_JobStopped{JobStopped: &cairnv1.JobStopped{
			JobId: j.GetId(), Reason: fmt.Sprintf("superseded by epoch %d", v.epoch)}}})
	}
	return stops, &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_REBALANCE, Epoch: v.epoch}
}

// runRebalance is the leader's rebalance controller (decideRebalance),
// looking again on every change of the journal. Everything it decides on
// comes from the journal, so a new leader picks up where the old one
// stopped.
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
	v, err := readRebalance(m.j.State())
	if err != nil {
		return err
	}
	stops, spec := decideRebalance(v)
	if spec == nil {
		return nil
	}
	resp, err := m.startJob(ctx, spec, "rebalance controller", 0, stops...)
	if err != nil {
		return err
	}
	if len(stops) > 0 {
		m.log.Info("a new epoch aborted the running rebalance", "stopped", len(stops), "epoch", spec.GetEpoch(), "job", resp.GetJob().GetId())
	}
	return nil
}
