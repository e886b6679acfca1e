package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnhq/cairn/blockstore"
	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/jobs"
	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// cleanupBatch is how many paths one namespace lookup and one identity
// Stat per owner carry.
const cleanupBatch = 1000

// localFiles returns the cached files under prefix (or in paths, when
// given), in path order.
func (w *Worker) localFiles(prefix string, paths []string) []blockstore.Entry {
	var files []blockstore.Entry
	if len(paths) > 0 {
		for _, p := range paths {
			if e, ok := w.store.Get(p); ok {
				files = append(files, e)
			}
		}
	} else {
		w.store.List("", func(e blockstore.Entry) bool {
			if prefix == "" || persistence.Under(e.Path, prefix) {
				files = append(files, e)
			}
			return true
		})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files
}

// namespaceOf looks paths up in the namespace: the current version of each
// and the writes in progress.
func (w *Worker) namespaceOf(ctx context.Context, paths []string) (map[string]*cairnv1.File, map[string]*cairnv1.PendingWrite, error) {
	resp, err := client.Msg(ctx, w.masters, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.GetFilesResponse], error) {
		return s.Namespace.GetFiles(ctx, connect.NewRequest(&cairnv1.GetFilesRequest{Paths: paths}))
	})
	if err != nil {
		return nil, nil, fmt.Errorf("look %d paths up in the namespace: %w", len(paths), err)
	}
	files := map[string]*cairnv1.File{}
	for _, f := range resp.GetFiles() {
		files[f.GetPath()] = f
	}
	pending := map[string]*cairnv1.PendingWrite{}
	for _, p := range resp.GetPending() {
		pending[p.GetPath()] = p
	}
	return files, pending, nil
}

// inBatches calls fn for es in batches of cleanupBatch, each with the
// namespace's record of its paths (see namespaceOf); it stops at fn's
// first error or when ctx ends.
func (w *Worker) inBatches(ctx context.Context, es []blockstore.Entry, fn func(batch []blockstore.Entry, ns map[string]*cairnv1.File, pending map[string]*cairnv1.PendingWrite) error) error {
	for start := 0; start < len(es); start += cleanupBatch {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		batch := es[start:min(start+cleanupBatch, len(es))]
		paths := make([]string, len(batch))
		for i, e := range batch {
			paths[i] = e.Path
		}
		ns, pending, err := w.namespaceOf(ctx, paths)
		if err != nil {
			return err
		}
		if err := fn(batch, ns, pending); err != nil {
			return err
		}
	}
	return nil
}

// cleanup is the CLEANUP executor. For each local file under the job's
// prefix it asks the namespace (in batches) and decides by the rules of
// jobs.CleanupTriage and jobs.CleanupVerdict: copies inside the job's
// dont_cleanup_time window stay; a copy of a file the namespace no longer
// has, or of another version, goes; a current copy this worker does not own
// under the job's epoch goes only when an owner holds the same identity
// (batched Stat per owner), or — with force, for a persisted file — when an
// owner was reached and holds a diverged copy; otherwise it is kept and
// counted by reason.
//
// The window is judged on this worker's clock alone: a copy's age is its
// commit time in the local store against the moment this task started,
// both read here. Comparing with the leader's clock instead would let a
// skew between the two machines age a fresh copy.
func (w *Worker) cleanup(ctx context.Context, r *run) error {
	spec := r.lt.GetSpec()
	scope := jobs.CleanupScope{Force: spec.GetForce(), Window: spec.GetDontCleanupTime().AsDuration(), Now: time.Now()}
	if spec.GetDontCleanupTime() == nil {
		// A job journaled before the window existed: the default, to be safe.
		scope.Window = jobs.DefaultDontCleanupTime
	}
	lay, err := w.layoutAt(ctx, spec.GetEpoch())
	if err != nil {
		return err
	}
	pm, addr := lay.pm, lay.addr
	files := w.localFiles(spec.GetPrefix(), spec.GetPaths())
	var released uint64
	var batchNS map[string]*cairnv1.File // the namespace's record of the batch's paths
	remove := func(e blockstore.Entry, c *cairnv1.Counters) {
		// An older copy kept beside this one survives only if it is the
		// version the namespace publishes (this one's write was abandoned).
		n, err := w.store.DeleteKeeping(e.Path, e.Version, batchNS[e.Path].GetVersion())
		if err != nil {
			if !errors.Is(err, blockstore.ErrNotCached) {
				r.tally.add(&cairnv1.Counters{Errors: 1})
				w.log.Warn("cleanup: remove a stale copy", "job", r.ref.GetJobId(), "path", e.Path, "err", err)
			}
			return // replaced or removed meanwhile: nothing of ours to count
		}
		w.log.Debug("cleanup removed a copy", "job", r.ref.GetJobId(), "path", e.Path, "version", e.Version, "counted", jobs.Format(c))
		c.Removed, c.ReclaimedBytes = 1, uint64(n)
		released += uint64(n)
		w.tm.clearedBytes.Add(float64(n))
		r.tally.add(c)
	}
	act := func(e blockstore.Entry, step jobs.CleanupStep, c *cairnv1.Counters) {
		switch {
		case step == jobs.CleanupRemove:
			remove(e, c)
		case c != nil:
			r.tally.add(c)
		}
	}
	err = w.inBatches(ctx, files, func(batch []blockstore.Entry, ns map[string]*cairnv1.File, pending map[string]*cairnv1.PendingWrite) error {
		batchNS = ns
		var check []blockstore.Entry
		for _, e := range batch {
			r.tally.add(&cairnv1.Counters{Scanned: 1, ScannedBytes: uint64(e.Size)})
			// A file with more copies than R has as many owners: its copies
			// beyond R are not misplaced.
			owner := pm.IsFileOwner(w.id, e.Path, ns[e.Path].GetReplication())
			step, c := jobs.CleanupTriage(copyOf(e), ns[e.Path], pending[e.Path].GetVersion(), owner, scope)
			if step == jobs.CleanupAskOwners {
				check = append(check, e)
				continue
			}
			act(e, step, c)
		}
		if len(check) == 0 {
			return nil
		}
		// Ask each owner about the copies it owns, in one Stat per owner.
		byOwner := map[string][]blockstore.Entry{}
		for _, e := range check {
			for _, o := range pm.FileOwnerIDs(e.Path, ns[e.Path].GetReplication()) {
				if o != w.id {
					byOwner[o] = append(byOwner[o], e)
				}
			}
		}
		held := map[string]map[string]*cairnv1.FileIdentity{} // owner → path → identity; nil: unreachable
		for o, es := range byOwner {
			m, err := w.heldBy(ctx, addr[o], es)
			if err != nil {
				w.log.Warn("cleanup: ask an owner for identities", "job", r.ref.GetJobId(), "owner", o, "paths", len(es), "err", err)
				continue
			}
			held[o] = m
		}
		for _, e := range check {
			mine := identityOf(e)
			var answers []jobs.OwnerAnswer
			for _, o := range pm.FileOwnerIDs(e.Path, ns[e.Path].GetReplication()) {
				if o == w.id {
					continue
				}
				switch id, ok := held[o][e.Path]; {
				case held[o] == nil:
					answers = append(answers, jobs.OwnerUnreachable)
				case !ok:
					answers = append(answers, jobs.OwnerLacks)
				case sameIdentity(id, mine):
					answers = append(answers, jobs.OwnerSame)
				default:
					answers = append(answers, jobs.OwnerDiverged)
				}
			}
			step, c := jobs.CleanupVerdict(answers, jobs.Persisted(ns[e.Path], copyOf(e)), scope)
			act(e, step, c)
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.log.Info(fmt.Sprintf("Clear stale cached files finished. %d bytes released", released),
		"job", r.ref.GetJobId(), "bytes_released", released)
	return nil
}

// copyOf is what the cleanup rules know of a cached entry.
func copyOf(e blockstore.Entry) jobs.CleanupCopy {
	return jobs.CleanupCopy{Version: e.Version, Unpersisted: e.Unpersisted, Cached: time.Unix(0, e.Cached)}
}

// identityOf is a cached entry's identity, as DataService.Stat reports it.
func identityOf(e blockstore.Entry) *cairnv1.FileIdentity {
	return &cairnv1.FileIdentity{Path: e.Path, Version: e.Version, Length: uint64(e.Size), Checksum: e.Checksum, Etag: e.ETag, Metadata: e.Metadata}
}

// free is the FREE executor: it drops the cached copies of persisted files
// under the job's prefix (or in its list of paths); a copy of a file that
// is not persisted stays (it may be the only one).
func (w *Worker) free(ctx context.Context, r *run) error {
	spec := r.lt.GetSpec()
	files := w.localFiles(spec.GetPrefix(), spec.GetPaths())
	return w.inBatches(ctx, files, func(batch []blockstore.Entry, ns map[string]*cairnv1.File, _ map[string]*cairnv1.PendingWrite) error {
		for _, e := range batch {
			r.tally.add(&cairnv1.Counters{Scanned: 1, ScannedBytes: uint64(e.Size)})
			f := ns[e.Path]
			if f.GetVersion() != e.Version || f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED || e.Unpersisted || e.Pinned {
				continue
			}
			n, err := w.store.DeleteVersion(e.Path, e.Version)
			if err != nil {
				continue
			}
			r.tally.add(&cairnv1.Counters{Freed: 1, FreedBytes: uint64(n)})
		}
		return nil
	})
}

// clearedBytes is cairn_cleared_stale_cached_data_bytes_total.
func newClearedBytes(reg prometheus.Registerer) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_cleared_stale_cached_data_bytes_total",
		Help: "Bytes of stale cached copies (misplaced and verified at an owner, of deleted files, of old versions) this worker's cleanups removed."})
	reg.MustRegister(c)
	return c
}
