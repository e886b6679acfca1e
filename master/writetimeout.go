package master

import (
	"context"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/fsm"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// abandonWrites are the events that abandon writes created before the
// write timeout and never completed (the state machine picks them:
// fsm.Machine.StaleWrites).
func abandonWrites(stale []*cairnv1.PendingWrite, timeout time.Duration) []*cairnv1.Event {
	evs := make([]*cairnv1.Event, len(stale))
	for i, pw := range stale {
		evs[i] = &cairnv1.Event{Kind: &cairnv1.Event_WriteAbandoned{WriteAbandoned: &cairnv1.WriteAbandoned{
			Path: pw.GetPath(), Version: pw.GetVersion(),
			Reason: fmt.Sprintf("not completed within --write-timeout %s", timeout)}}}
	}
	return evs
}

// runWriteTimeout is the leader's controller for writes left incomplete:
// a write created more than --write-timeout ago and never completed (its
// client died, or gave up) is abandoned, so that its path is free of it
// and cleanup can remove its cached copies. It checks a few times per
// timeout, at most once a minute.
func (m *Master) runWriteTimeout(ctx context.Context) {
	timeout := m.cfg.WriteTimeout
	if timeout < 0 {
		return
	}
	for range ticks(ctx, min(max(timeout/4, 100*time.Millisecond), time.Minute)) {
		stale, err := m.j.State().StaleWrites(time.Now().Add(-timeout), 256)
		if err != nil || len(stale) == 0 {
			continue
		}
		res, ok := m.retry(ctx, "abandon writes past the write timeout", abandonWrites(stale, timeout)...)
		if !ok {
			return
		}
		for i, r := range res {
			if r.Code == fsm.OK && !r.Repeat {
				m.metrics.abandoned.Inc()
				m.log.Warn("abandoned a write that was never completed", "path", stale[i].GetPath(), "version", stale[i].GetVersion(),
					"created", stale[i].GetCreatedTime().AsTime(), "write_timeout", timeout)
			}
		}
	}
}
