package worker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/blockstore"
	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/jobs"
	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// rebalanceParallel is how many files a rebalance task sends at once.
const rebalanceParallel = 8

// mapAt returns the cluster map at an epoch: the worker's own when it is
// that epoch, else the masters'.
func (w *Worker) mapAt(ctx context.Context, epoch uint64) (*cairnv1.ClusterMap, error) {
	if cm := w.Map(); cm.GetEpoch() == epoch {
		return cm, nil
	}
	if cm := w.prev.Load(); cm != nil && cm.GetEpoch() == epoch {
		return cm, nil
	}
	return client.Call(ctx, w.masters, func(ctx context.Context, s client.Services) (*cairnv1.ClusterMap, error) {
		r, err := s.Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{Epoch: epoch}))
		if err != nil {
			return nil, err
		}
		return r.Msg.GetMap(), nil
	})
}

// layout is a cluster map ready for use: its placement and each worker's
// address.
type layout struct {
	pm   *placement.Map
	addr map[string]string
}

// layoutOf returns the layout of a map, from a small cache by epoch: a
// miss asks for one, so building it each time would sit on the read path.
func (w *Worker) layoutOf(cm *cairnv1.ClusterMap) (*layout, error) {
	w.layoutMu.Lock()
	defer w.layoutMu.Unlock()
	for _, l := range w.layouts {
		if l.epoch == cm.GetEpoch() {
			return l.layout, nil
		}
	}
	pm, err := placement.FromClusterMap(cm)
	if err != nil {
		return nil, fmt.Errorf("map of epoch %d: %w", cm.GetEpoch(), err)
	}
	l := &layout{pm: pm, addr: map[string]string{}}
	for _, mw := range cm.GetWorkers() {
		l.addr[mw.GetId()] = mw.GetAddress()
	}
	// Keep the newest few: the current map, the previous one, a job's.
	w.layouts = append(w.layouts, epochLayout{cm.GetEpoch(), l})
	if len(w.layouts) > 4 {
		w.layouts = w.layouts[1:]
	}
	return l, nil
}

// epochLayout is one entry of the layout cache.
type epochLayout struct {
	epoch  uint64
	layout *layout
}

// layoutAt is layoutOf the map at an epoch.
func (w *Worker) layoutAt(ctx context.Context, epoch uint64) (*layout, error) {
	cm, err := w.mapAt(ctx, epoch)
	if err != nil {
		return nil, fmt.Errorf("fetch the map of epoch %d: %w", epoch, err)
	}
	return w.layoutOf(cm)
}

// rebalance is the REBALANCE executor: it walks the local files, and sends
// each current one (the namespace's version, asked in batches) to its
// owners under the job's epoch that lack it (a Transfer skips an owner that
// holds the same identity, and an owner holding a newer version refuses).
// It never deletes a source copy: cleanup does that, after verifying. Once
// it has sent everything it reports local_done and waits for every other
// task of the job to get there too, so that what it received from them is
// in its final report. A send that fails for another reason than the copy
// being gone or refused as older (an owner unreachable, a broken stream)
// is counted under errors and fails the attempt once the walk is done: the
// task is leased again after a backoff, and the next attempt sends what the
// owners still lack, until the job's delivery limit (then the job FAILS,
// saying which owner could not be reached) — a rebalance never ends
// SUCCEEDED with files left off their owners.
func (w *Worker) rebalance(ctx context.Context, r *run) error {
	epoch := r.lt.GetSpec().GetEpoch()
	lay, err := w.layoutAt(ctx, epoch)
	if err != nil {
		return err
	}
	pm, addr := lay.pm, lay.addr
	var files []blockstore.Entry
	w.store.List("", func(e blockstore.Entry) bool { files = append(files, e); return true })
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })

	// A send is one copy to one owner; the walk has already asked each
	// owner, one Stat per batch, which copies it holds.
	type send struct {
		e  blockstore.Entry
		to string
	}
	work := make(chan send)
	var failedMu sync.Mutex
	var failed int
	var firstFailure error
	var wg sync.WaitGroup
	for range rebalanceParallel {
		wg.Go(func() {
			for sd := range work {
				if _, err := w.transfer(ctx, sd.e.Path, sd.e.Version, addr[sd.to], epoch, true); err != nil {
					if ctx.Err() != nil {
						return
					}
					if c := connect.CodeOf(err); c == connect.CodeNotFound || c == connect.CodeFailedPrecondition {
						continue // evicted or replaced meanwhile, or the owner holds a newer version
					}
					r.tally.add(&cairnv1.Counters{Errors: 1})
					w.log.Warn("rebalance: send a file to its owner", "job", r.ref.GetJobId(), "path", sd.e.Path, "owner", sd.to, "err", err)
					failedMu.Lock()
					if failed++; firstFailure == nil {
						firstFailure = fmt.Errorf("send %s to %s: %w", sd.e.Path, sd.to, err)
					}
					failedMu.Unlock()
				}
			}
		})
	}
	// Only current copies travel: a copy of a deleted file or of an old
	// version (a worker back from being away) stays for cleanup to remove.
	walkErr := w.inBatches(ctx, files, func(batch []blockstore.Entry, ns map[string]*cairnv1.File, pending map[string]*cairnv1.PendingWrite) error {
		byOwner := map[string][]blockstore.Entry{}
		for _, e := range batch {
			r.tally.add(&cairnv1.Counters{Scanned: 1, ScannedBytes: uint64(e.Size)})
			repl := ns[e.Path].GetReplication()
			switch {
			case ns[e.Path].GetVersion() == e.Version:
			case pending[e.Path].GetVersion() == e.Version:
				repl = pending[e.Path].GetReplication()
			default:
				continue
			}
			// A file with more copies than R has as many owners.
			for _, id := range pm.FileOwnerIDs(e.Path, repl) {
				if id != w.id {
					byOwner[id] = append(byOwner[id], e)
				}
			}
		}
		for _, id := range slices.Sorted(maps.Keys(byOwner)) {
			held, err := w.heldBy(ctx, addr[id], byOwner[id])
			if err != nil {
				// The sends find out for themselves (and count the errors).
				w.log.Debug("rebalance: ask an owner what it holds", "owner", id, "err", err)
			}
			for _, e := range byOwner[id] {
				if sameIdentity(held[e.Path], identityOf(e)) {
					continue
				}
				select {
				case work <- send{e, id}:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			}
		}
		return nil
	})
	close(work)
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if walkErr != nil {
		return walkErr
	}
	if failed > 0 {
		return fmt.Errorf("%d copies did not reach their owners (the next attempt sends what they still lack); the first: %w", failed, firstFailure)
	}
	if err := r.report(ctx, 0, "", true); err != nil {
		return err
	}
	// The barrier: peers may still be sending to this worker. Look often
	// at first (the last sender usually finishes moments later), then less.
	poll := 5 * time.Millisecond
	for {
		resp, err := client.Msg(ctx, w.masters, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.GetJobResponse], error) {
			return s.Jobs.GetJob(ctx, connect.NewRequest(&cairnv1.GetJobRequest{Id: r.ref.GetJobId()}))
		})
		switch {
		case err != nil && ctx.Err() != nil:
			return context.Cause(ctx)
		case err != nil:
			w.log.Debug("rebalance: wait for peers", "job", r.ref.GetJobId(), "err", err)
		case resp.GetJob().GetState() != cairnv1.JobState_JOB_STATE_RUNNING:
			return fmt.Errorf("%w: job %d is %s", errLeaseLost, r.ref.GetJobId(), resp.GetJob().GetState())
		case jobs.AllLocalDone(resp.GetTasks()):
			w.neighborOff(epoch)
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(poll):
		}
		poll = min(2*poll, 100*time.Millisecond)
	}
}

// heldBy asks the worker at addr, in one Stat, which of the copies es it
// holds, and as what: path → identity (a non-nil map on success).
func (w *Worker) heldBy(ctx context.Context, addr string, es []blockstore.Entry) (map[string]*cairnv1.FileIdentity, error) {
	paths := make([]string, len(es))
	for i, e := range es {
		paths[i] = e.Path
	}
	st, err := w.peer(addr).Stat(ctx, connect.NewRequest(&cairnv1.StatRequest{Paths: paths}))
	if err != nil {
		return nil, err
	}
	held := make(map[string]*cairnv1.FileIdentity, len(st.Msg.GetFiles()))
	for _, cf := range st.Msg.GetFiles() {
		held[cf.GetIdentity().GetPath()] = cf.GetIdentity()
	}
	return held, nil
}

// neighborOff records that the rebalance of epoch has delivered what it
// will: misses need not ask the previous owners any more.
func (w *Worker) neighborOff(epoch uint64) {
	for {
		cur := w.neighborDone.Load()
		if cur >= epoch || w.neighborDone.CompareAndSwap(cur, epoch) {
			return
		}
	}
}

// previousMap returns the map of the epoch before cur (cached).
func (w *Worker) previousMap(ctx context.Context, cur uint64) (*cairnv1.ClusterMap, error) {
	if cur <= 1 {
		return nil, nil
	}
	if cm := w.prev.Load(); cm != nil && cm.GetEpoch() == cur-1 {
		return cm, nil
	}
	cm, err := w.mapAt(ctx, cur-1)
	if err != nil {
		return nil, err
	}
	w.prev.Store(cm)
	return cm, nil
}

// fromNeighbor fetches a file missing from this cache from other workers
// before the UFS is read, and reports whether it is cached now:
//
//   - get-from-neighbor: while the rebalance of the current epoch has not
//     delivered here, the file may still be on its owners under the
//     previous epoch; such a copy counts as the rebalance's work on both
//     sides;
//   - a file that is not persisted has no UFS copy to fall back on, so its
//     co-owners under the current map are asked too.
func (w *Worker) fromNeighbor(ctx context.Context, f *cairnv1.File) bool {
	cm := w.Map()
	cur := cm.GetEpoch()
	if cur == 0 {
		return false
	}
	type source struct {
		id, addr string
		epoch    uint64 // the rebalance it counts under, 0: none
	}
	var sources []source
	if w.neighborDone.Load() < cur {
		if prev, err := w.previousMap(ctx, cur); err == nil && prev != nil {
			if lay, err := w.layoutOf(prev); err == nil {
				for _, id := range lay.pm.FileOwnerIDs(f.GetPath(), f.GetReplication()) {
					if id != w.id && lay.addr[id] != "" {
						sources = append(sources, source{id, lay.addr[id], cur})
					}
				}
			}
		}
	}
	if f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
		if lay, err := w.layoutOf(cm); err == nil {
			for _, i := range lay.pm.OwnersN(nil, f.GetPath(), lay.pm.FileReplication(f.GetReplication())) {
				if id := lay.pm.ID(i); id != w.id && lay.addr[id] != "" {
					sources = append(sources, source{id, lay.addr[id], 0})
				}
			}
		}
	}
	tried := map[string]bool{}
	for _, s := range sources {
		if tried[s.addr] {
			continue
		}
		tried[s.addr] = true
		_, err := w.peer(s.addr).Transfer(ctx, connect.NewRequest(&cairnv1.TransferRequest{
			Path: f.GetPath(), Version: f.GetVersion(), TargetAddress: w.Addr(), RebalanceEpoch: s.epoch}))
		switch {
		case err == nil:
			w.tm.neighbor.WithLabelValues("fetched").Inc()
			return true
		case connect.CodeOf(err) == connect.CodeNotFound:
			w.tm.neighbor.WithLabelValues("not_found").Inc()
		default:
			w.tm.neighbor.WithLabelValues("failed").Inc()
			w.log.Debug("fetch a missing file from another worker", "path", f.GetPath(), "from", s.id, "err", err)
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			return false
		}
	}
	return false
}
