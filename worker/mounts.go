package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// mountTable is the worker's view of the masters' mount table. Every UFS
// access resolves its path against a table the masters gave after the
// access began (a linearizable ListMounts), so a write that follows a
// mount add lands in the new mount, never in the one the path resolved to
// before. Accesses that arrive while a fetch is in flight share the next
// one: a burst of cold reads costs one lookup, not one each.
type mountTable struct {
	fetch func(ctx context.Context) ([]*cairnv1.Mount, error)

	mu      sync.Mutex
	last    []*cairnv1.Mount // the last table fetched
	running bool
	waiters []chan tableResult
}

type tableResult struct {
	table []*cairnv1.Mount
	err   error
}

// fetchTimeout bounds one ListMounts.
const fetchTimeout = 10 * time.Second

// get returns a table fetched after the call began.
func (mt *mountTable) get(ctx context.Context) ([]*cairnv1.Mount, error) {
	ch := make(chan tableResult, 1)
	mt.mu.Lock()
	mt.waiters = append(mt.waiters, ch)
	if !mt.running {
		mt.running = true
		go mt.loop()
	}
	mt.mu.Unlock()
	select {
	case r := <-ch:
		return r.table, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// cached is the last table fetched (nil before the first).
func (mt *mountTable) cached() []*cairnv1.Mount {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	return mt.last
}

// loop fetches for the callers waiting, one fetch per round, until none
// waits: every caller of a round registered before its fetch started.
func (mt *mountTable) loop() {
	for {
		mt.mu.Lock()
		ws := mt.waiters
		mt.waiters = nil
		if len(ws) == 0 {
			mt.running = false
			mt.mu.Unlock()
			return
		}
		mt.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		table, err := mt.fetch(ctx)
		cancel()
		if err == nil {
			mt.mu.Lock()
			mt.last = table
			mt.mu.Unlock()
		}
		for _, w := range ws {
			w <- tableResult{table: table, err: err}
		}
	}
}

// listMounts asks the masters for the mount table.
func (w *Worker) listMounts(ctx context.Context) ([]*cairnv1.Mount, error) {
	return client.Call(ctx, w.masters, func(ctx context.Context, s client.Services) ([]*cairnv1.Mount, error) {
		r, err := s.Namespace.ListMounts(ctx, connect.NewRequest(&cairnv1.ListMountsRequest{}))
		if err != nil {
			return nil, err
		}
		return r.Msg.GetMounts(), nil
	})
}

// resolve finds the UFS that serves p. A read may fall back on the last
// table when the masters cannot be asked (the table changes only through
// them); a write never does.
func (u *ufsAccess) resolve(ctx context.Context, p string, write bool) (persistence.Target, error) {
	table, err := u.table.get(ctx)
	if err != nil {
		if table = u.table.cached(); table == nil || write {
			return persistence.Target{}, connect.NewError(connect.CodeUnavailable, fmt.Errorf("ask the masters for the mount table: %w", err))
		}
		u.w.log.Warn("the masters did not answer for the mount table; reading through the last one", "path", p, "err", err)
	} else {
		u.mounts.Retain(table)
	}
	t, err := u.mounts.Resolve(ctx, table, p)
	if err != nil {
		return persistence.Target{}, apiserver.UFSError("resolve "+p, err)
	}
	return t, nil
}
