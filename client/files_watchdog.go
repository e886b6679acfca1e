package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
)

// watchdog ends a write whose owners stopped taking bytes (see
// PutOptions.StallTimeout).
type watchdog struct {
	ctx       context.Context
	cancel    context.CancelCauseFunc
	last      atomic.Int64 // unix ns of the last progress
	waitingOn atomic.Int32 // the owner being sent to
	held      atomic.Int32 // holds in force (see hold)
}

// hold stops the clock until release is called: for time spent on
// something other than waiting for the owner (writing to a slow
// destination), or on a call that bounds itself (a completion that reads
// a whole file back).
func (wd *watchdog) hold() (release func()) {
	wd.held.Add(1)
	return func() {
		wd.progressed()
		wd.held.Add(-1)
	}
}

// watch starts the watchdog of what (a write or a read of a path) with
// owners; stop it with wd.cancel(nil).
func watch(ctx context.Context, what string, owners []owner, stall time.Duration) *watchdog {
	wd := &watchdog{}
	wd.ctx, wd.cancel = context.WithCancelCause(ctx)
	wd.progressed()
	if stall = cmp.Or(stall, time.Minute); stall <= 0 {
		return wd
	}
	go func() {
		tick := time.NewTicker(max(stall/8, 10*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-wd.ctx.Done():
				return
			case <-tick.C:
			}
			if wd.held.Load() > 0 {
				wd.progressed()
				continue
			}
			if idle := time.Since(time.Unix(0, wd.last.Load())); idle > stall {
				ow := owners[min(int(wd.waitingOn.Load()), len(owners)-1)]
				wd.cancel(connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s: worker %s (%s) made no progress for %s; it may be overloaded or stopped",
					what, ow.id, ow.addr, idle.Round(time.Millisecond))))
				return
			}
		}
	}()
	return wd
}

func (wd *watchdog) progressed()     { wd.last.Store(time.Now().UnixNano()) }
func (wd *watchdog) sendingTo(i int) { wd.waitingOn.Store(int32(i)) }

// stalled returns the watchdog's error in place of err when it fired.
func (wd *watchdog) stalled(err error) error {
	if cause := context.Cause(wd.ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}
