package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnhq/cairn/blockstore"
	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// ufsAccess is the worker's way to the UFS: the root mounted at "/" as the
// masters' mount table says (the worker must reach it at the same path),
// and the loads in flight, so that many readers of one cold file cause one
// UFS read.
type ufsAccess struct {
	w        *Worker
	mu       sync.Mutex
	ufs      *persistence.Local
	inflight map[string]*fill

	reads     prometheus.Counter
	readBytes prometheus.Counter
}

type fill struct {
	done chan struct{}
	err  error
}

func newUFSAccess(w *Worker, reg prometheus.Registerer) *ufsAccess {
	u := &ufsAccess{w: w, inflight: make(map[string]*fill),
		reads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_worker_ufs_reads_total", Help: "Files this worker read from the UFS (cache misses it filled or served)."}),
		readBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_worker_ufs_read_bytes_total", Help: "Bytes this worker read from the UFS."}),
	}
	reg.MustRegister(u.reads, u.readBytes)
	return u
}

// root opens the UFS mounted at "/", asking the masters once.
func (u *ufsAccess) root(ctx context.Context) (*persistence.Local, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ufs != nil {
		return u.ufs, nil
	}
	mounts, err := client.Call(ctx, u.w.masters, func(ctx context.Context, s client.Services) ([]*cairnv1.Mount, error) {
		r, err := s.Namespace.ListMounts(ctx, connect.NewRequest(&cairnv1.ListMountsRequest{}))
		if err != nil {
			return nil, err
		}
		return r.Msg.GetMounts(), nil
	})
	if err != nil {
		return nil, fmt.Errorf("ask the masters for the mount table: %w", err)
	}
	for _, m := range mounts {
		if m.GetPath() == "/" {
			if u.ufs, err = persistence.NewLocal(m.GetUfsRoot()); err != nil {
				return nil, err
			}
			return u.ufs, nil
		}
	}
	return nil, errors.New("the mount table has no UFS at /")
}

func (u *ufsAccess) close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ufs != nil {
		u.ufs.Close()
	}
}

// open opens the UFS copy of f and checks it is the one the namespace
// recorded (same length).
func (u *ufsAccess) open(ctx context.Context, f *cairnv1.File) (persistence.Reader, error) {
	root, err := u.root(ctx)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	r, err := root.Open(ctx, f.GetPath())
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("%s version %d is neither cached here nor in the UFS", f.GetPath(), f.GetVersion()))
	}
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("open %s in the UFS: %w", f.GetPath(), err))
	}
	if got := r.Info().Size; got != int64(f.GetLength()) {
		r.Close()
		return nil, connect.NewError(connect.CodeDataLoss, fmt.Errorf("the UFS copy of %s has %d bytes, the namespace's version %d has %d: the UFS changed behind cairn",
			f.GetPath(), got, f.GetVersion(), f.GetLength()))
	}
	u.reads.Inc()
	return r, nil
}

// fillCache reads f from the UFS into the cache, once however many
// callers ask for the same version at the same time. A load is not tied
// to the first caller's context: the others may still want it.
func (u *ufsAccess) fillCache(ctx context.Context, f *cairnv1.File) error {
	key := fmt.Sprintf("%s@%d", f.GetPath(), f.GetVersion())
	u.mu.Lock()
	fl, running := u.inflight[key]
	if !running {
		fl = &fill{done: make(chan struct{})}
		u.inflight[key] = fl
	}
	u.mu.Unlock()
	if !running {
		go func() {
			fl.err = u.load(f)
			u.mu.Lock()
			delete(u.inflight, key)
			u.mu.Unlock()
			close(fl.done)
		}()
	}
	select {
	case <-fl.done:
		return fl.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (u *ufsAccess) load(f *cairnv1.File) error {
	ctx, cancel := u.w.ctx()
	defer cancel()
	if _, err := u.w.store.Open(f.GetPath(), f.GetVersion()); err == nil {
		return nil // a previous load finished just now
	}
	r, err := u.open(ctx, f)
	if err != nil {
		return err
	}
	defer r.Close()
	wr, err := u.w.store.Create(blockstore.Identity{
		Path: f.GetPath(), Version: f.GetVersion(), Size: int64(f.GetLength()), Checksum: f.GetChecksum(),
		ETag: f.GetEtag(), Metadata: f.GetMetadata(),
	}, blockstore.FileOptions{WriteType: f.GetWriteType().String(), Pinned: f.GetPinned()})
	if err != nil {
		return storeErr(err)
	}
	defer wr.Abort()
	h := xxhash.New()
	n, err := io.Copy(io.MultiWriter(wr, h), r)
	u.readBytes.Add(float64(n))
	if err != nil {
		return storeErr(fmt.Errorf("fill %s from the UFS: %w", f.GetPath(), err))
	}
	if f.GetChecksum() == 0 {
		wr.SetChecksum(h.Sum64()) // loaded from the UFS: no checksum recorded yet
	}
	if _, err := wr.Commit(); err != nil {
		if errors.Is(err, blockstore.ErrMismatch) {
			return connect.NewError(connect.CodeDataLoss, fmt.Errorf("the UFS copy of %s does not match version %d's checksum: %w", f.GetPath(), f.GetVersion(), err))
		}
		return storeErr(err)
	}
	u.w.log.Info("cached a file from the UFS", "path", f.GetPath(), "version", f.GetVersion(), "bytes", n)
	return nil
}
