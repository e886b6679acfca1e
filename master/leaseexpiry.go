package master

import (
	"context"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/cairnhq/cairn/fsm"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// expiredLeases are the expiry events of the leased tasks whose lease
// expiry is at or before now.
func expiredLeases(now time.Time, leased []*cairnv1.Task) []*cairnv1.Event {
	var evs []*cairnv1.Event
	for _, t := range leased {
		if !now.Before(t.GetLeaseExpiry().AsTime()) {
			evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_LeaseExpired{LeaseExpired: &cairnv1.LeaseExpired{
				JobId: t.GetJobId(), Index: t.GetIndex(), LeaseId: t.GetLeaseId()}}})
		}
	}
	return evs
}

// leasesExtended is what a new leader journals first: every live lease gets
// one ttl from now (it cannot know when the last renewals reached its
// predecessor).
func leasesExtended(ttl time.Duration) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_LeasesExtended{LeasesExtended: &cairnv1.LeasesExtended{Ttl: durationpb.New(ttl)}}}
}

// runLeases is the leader's lease controller: leasesExtended once, then
// expiredLeases every TTL/20.
func (m *Master) runLeases(ctx context.Context) {
	ttl := m.cfg.LeaseTTL
	res, ok := m.retry(ctx, "extend live leases", leasesExtended(ttl))
	if !ok {
		return
	}
	if n := res[0].Value; n > 0 {
		m.log.Info("new leader extended live leases by one TTL", "leases", n, "ttl", ttl)
	}
	for range ticks(ctx, max(ttl/20, 50*time.Millisecond)) {
		leased, err := m.j.State().LeasedTasks()
		if err != nil {
			m.log.Error("lease controller: read leases", "err", err)
			continue
		}
		evs := expiredLeases(time.Now(), leased)
		if len(evs) == 0 {
			continue
		}
		res, _, err := m.j.Propose(ctx, evs...)
		if err != nil {
			m.log.Warn("lease controller: expire leases", "err", err)
			continue
		}
		for i, r := range res {
			if r.Code != fsm.OK {
				continue // renewed or ended meanwhile
			}
			e := evs[i].GetLeaseExpired()
			m.metrics.expired.Inc()
			t, _, _ := m.j.State().Task(e.GetJobId(), e.GetIndex())
			m.log.Warn("lease expired", "job", e.GetJobId(), "task", e.GetIndex(), "lease", e.GetLeaseId(),
				"worker", t.GetLeaseWorker(), "task_state", strings.TrimPrefix(t.GetState().String(), "TASK_STATE_"), "reason", t.GetLastError())
		}
	}
}
