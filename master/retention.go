package master

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// runRetention is the leader's retention controller: it forgets finished
// jobs older than the retention setting.
func (m *Master) runRetention(ctx context.Context) {
	for range ticks(ctx, m.cfg.RetentionInterval) {
		set, err := m.j.State().Settings()
		if err != nil {
			continue
		}
		before := time.Now().Add(-set.GetJobRetention().AsDuration())
		if found, err := m.j.State().HasEndedBefore(before); err != nil || !found {
			continue
		}
		if res, ok := m.retry(ctx, "prune finished jobs", &cairnv1.Event{Kind: &cairnv1.Event_JobsPruned{JobsPruned: &cairnv1.JobsPruned{EndedBefore: timestamppb.New(before)}}}); ok {
			m.log.Info("forgot finished jobs past their retention", "jobs", res[0].Value, "ended_before", before)
		}
	}
}
