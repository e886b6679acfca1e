package master

import (
	"context"
	"iter"
	"time"

	"github.com/cairnhq/cairn/fsm"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// ticks yields every d until ctx ends, first d from now: the beat of the
// leader's controllers (`for range ticks(ctx, d)`; continue and return
// work as in any loop).
func ticks(ctx context.Context, d time.Duration) iter.Seq[time.Time] {
	return func(yield func(time.Time) bool) {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if ctx.Err() != nil || !yield(now) { // no beat after the end
					return
				}
			}
		}
	}
}

// retry proposes evs until it succeeds or ctx ends, and returns the results.
func (m *Master) retry(ctx context.Context, what string, evs ...*cairnv1.Event) ([]fsm.Result, bool) {
	for {
		res, _, err := m.j.Propose(ctx, evs...)
		if err == nil {
			return res, true
		}
		m.log.Warn(what, "err", err)
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// proposeOne journals one event and returns its result, or the Connect
// error for a journal failure (what names the action) or a refusal.
func (m *Master) proposeOne(ctx context.Context, what string, ev *cairnv1.Event) (fsm.Result, error) {
	res, _, err := m.j.Propose(ctx, ev)
	if err != nil {
		return fsm.Result{}, journalErr(what, err)
	}
	return res[0], resultErr(res[0])
}

// propose journals events and turns every failure, including the first
// rejected event, into a Connect error. Only the leader proposes.
func (m *Master) propose(ctx context.Context, what string, evs ...*cairnv1.Event) (uint64, uint64, error) {
	res, idx, err := m.j.Propose(ctx, evs...)
	return proposed(what, res, idx, err)
}

// proposed turns what Propose returned into the index, the epoch
// of the last event and a Connect error.
func proposed(what string, res []fsm.Result, idx uint64, err error) (uint64, uint64, error) {
	if err != nil {
		return 0, 0, journalErr(what, err)
	}
	var epoch uint64
	for _, r := range res {
		if err := resultErr(r); err != nil {
			return 0, 0, err
		}
		epoch = r.Epoch
	}
	return idx, epoch, nil
}
