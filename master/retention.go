package master

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// pruneBefore is the end time before which finished jobs are past the
// retention setting at now.
func pruneBefore(now time.Time, set *cairnv1.Settings) time.Time {
	return now.Add(-set.GetJobRetention().AsDuration())
}

// runRetention is the leader's retention controller: every
// RetentionInterval it forgets the finished jobs that ended before
// pruneBefore, if any did.
func (m *Master) runRetention(ctx context.Context) {
	for range ticks(ctx, m.cfg.RetentionInterval) {
		set, err := m.j.State().Settings()
		if err != nil {
			continue
		}
		before := pruneBefore(time.Now(), set)
		if found, err := m.j.State().HasEndedBefore(before); err != nil || !found {
			continue
		}
		if res, ok := m.retry(ctx, "prune finished jobs", &cairnv1.Event{Kind: &cairnv1.Event_JobsPruned{JobsPruned: &cairnv1.JobsPruned{EndedBefore: timestamppb.New(before)}}}); ok {
			m.log.Info("forgot finished jobs past their retention", "jobs", res[0].Value, "ended_before", before)
		}
	}
}
