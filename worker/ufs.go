package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/blockstore"
	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// ufsAccess is the worker's way to the UFS: the masters' mount table
// (mountTable), the UFSes of its mounts, opened once each (the masters
// and workers must reach a file mount's folder at the same path, and an
// object store with their own credentials), and the loads in flight, so
// that many readers of one cold file cause one UFS read.
type ufsAccess struct {
	w        *Worker
	table    *mountTable
	mounts   *persistence.Mounts
	mu       sync.Mutex
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
		table:  &mountTable{fetch: w.listMounts},
		mounts: persistence.NewMounts(persistence.NewMetrics(reg)),
		reads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_worker_ufs_reads_total", Help: "Files this worker read from the UFS (cache misses it filled or served)."}),
		readBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_worker_ufs_read_bytes_total", Help: "Bytes this worker read from the UFS."}),
	}
	reg.MustRegister(u.reads, u.readBytes)
	return u
}

func (u *ufsAccess) close() {
	u.mounts.Close()
}

// open opens the UFS copy of f (at its mapped UFS path, if it has one)
// and checks it is the one the namespace recorded: same length, not older
// than the modification time the journal keeps, and, on an object store,
// the object with the ETag the journal recorded (the version it recorded,
// on a versioned bucket, is the one read). A file the namespace has that
// was never persisted, or whose UFS copy fails the checks, is DataLoss:
// restoring it from the UFS would serve other bytes.
func (u *ufsAccess) open(ctx context.Context, f *cairnv1.File) (persistence.Reader, error) {
	where := f.GetUfsPath()
	if where == "" {
		where = f.GetPath()
	}
	persisted := f.GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED
	neverPersisted := !persisted && f.GetVersion() != 0 && f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_UNSPECIFIED
	tg, err := u.resolve(ctx, where, false)
	if err != nil {
		if neverPersisted && (errors.Is(err, persistence.ErrCacheOnly) || errors.Is(err, persistence.ErrNoMount)) {
			return nil, connect.NewError(connect.CodeDataLoss, fmt.Errorf("%s version %d is not cached here and was never persisted (%s): no copy to restore it from",
				f.GetPath(), f.GetVersion(), f.GetPersistenceState()))
		}
		return nil, err
	}
	var r persistence.Reader
	if vo, ok := tg.UFS.(persistence.VersionedOpener); ok && f.GetUfsVersionId() != "" {
		r, err = vo.OpenVersion(ctx, tg.Path, f.GetUfsVersionId())
	} else {
		r, err = tg.UFS.Open(ctx, tg.Path)
	}
	switch {
	case errors.Is(err, persistence.ErrNotFound) && neverPersisted:
		return nil, connect.NewError(connect.CodeDataLoss, fmt.Errorf("%s version %d is not cached here and was never persisted (%s): no copy to restore it from",
			f.GetPath(), f.GetVersion(), f.GetPersistenceState()))
	case errors.Is(err, persistence.ErrNotFound):
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("%s version %d is neither cached here nor in the UFS mounted at %s", f.GetPath(), f.GetVersion(), tg.Label()))
	case err != nil:
		return nil, apiserver.UFSError(fmt.Sprintf("open %s in the UFS", where), err)
	}
	info := r.Info()
	if got := info.Size; got != int64(f.GetLength()) {
		r.Close()
		return nil, connect.NewError(connect.CodeDataLoss, fmt.Errorf("the UFS copy of %s (%s in %s) has %d bytes, the namespace's version %d has %d: the UFS changed behind cairn",
			f.GetPath(), where, tg.Label(), got, f.GetVersion(), f.GetLength()))
	}
	if rec := f.GetUfsMtime(); rec != nil && info.ModTime.Before(rec.AsTime()) {
		r.Close()
		return nil, connect.NewError(connect.CodeDataLoss, fmt.Errorf("the UFS copy of %s (%s in %s) was modified at %s, before the %s the journal recorded for version %d: it is an older copy",
			f.GetPath(), where, tg.Label(), info.ModTime.Format(time.RFC3339Nano), rec.AsTime().Format(time.RFC3339Nano), f.GetVersion()))
	}
	if rec := f.GetUfsEtag(); rec != "" && info.ETag != "" && rec != info.ETag {
		r.Close()
		return nil, connect.NewError(connect.CodeDataLoss, fmt.Errorf("the UFS object of %s (%s in %s) has ETag %s, the journal recorded %s for version %d: another object was written there",
			f.GetPath(), where, tg.Label(), info.ETag, rec, f.GetVersion()))
	}
	u.reads.Inc()
	return r, nil
}

// piece is a run of a file's bytes read from the UFS.
type piece struct {
	pos  int64
	data []byte
}

// readThrough serves [off, end) of f, which is not cached here. The first
// caller for a version starts a fill that reads the whole file from the
// UFS into the cache and is handed the bytes as they arrive, so it is
// served at UFS speed; the fill goes on after it has its range (a partial
// read caches the whole file) and does not depend on it staying. Callers
// that arrive while a fill runs wait for it and read from the cache:
// however many readers ask, the UFS is read once. It returns errCached
// when the caller should now read from the cache.
func (u *ufsAccess) readThrough(ctx context.Context, f *cairnv1.File, off, end int64, send func([]byte) error) error {
	key := fmt.Sprintf("%s@%d", f.GetPath(), f.GetVersion())
	u.mu.Lock()
	fl, running := u.inflight[key]
	if running {
		u.mu.Unlock()
		select {
		case <-fl.done:
			if fl.err != nil {
				return fl.err
			}
			return errCached
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// The caller found no copy, but a fill may have committed one and left
	// since it looked: then there is nothing to load.
	if _, ok := u.w.store.Lookup(f.GetPath(), f.GetVersion()); ok {
		u.mu.Unlock()
		return errCached
	}
	fl = &fill{done: make(chan struct{})}
	u.inflight[key] = fl
	u.mu.Unlock()
	if u.w.fromNeighbor(ctx, f) {
		u.mu.Lock()
		delete(u.inflight, key)
		u.mu.Unlock()
		close(fl.done)
		return errCached
	}

	pieces := make(chan piece, 4)
	gone := make(chan struct{}) // closed when the first reader stops listening
	go func() {
		fl.err = u.load(f, func(p piece) {
			select {
			case pieces <- p:
			case <-gone:
			}
		})
		close(pieces)
		u.mu.Lock()
		delete(u.inflight, key)
		u.mu.Unlock()
		close(fl.done)
	}()
	defer close(gone)
	for p := range pieces {
		lo, hi := max(p.pos, off), min(p.pos+int64(len(p.data)), end)
		if lo < hi {
			if err := send(p.data[lo-p.pos : hi-p.pos]); err != nil {
				return err
			}
		}
		if hi >= end && p.pos+int64(len(p.data)) >= end {
			return nil // served; the fill goes on without us
		}
	}
	// The fill ended before our range was covered.
	<-fl.done
	if fl.err != nil {
		return fl.err
	}
	if off >= end {
		return nil
	}
	return errCached
}

// errCached tells a reader to read from the cache after all.
var errCached = errors.New("cached meanwhile")

// load reads f from the UFS into the cache, handing each run of bytes to
// tee as it goes.
func (u *ufsAccess) load(f *cairnv1.File, tee func(piece)) error {
	ctx, cancel := u.w.ctx()
	defer cancel()
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
	// Reading the UFS and writing the cache overlap: a writer goroutine
	// takes the chunks the reader has already handed to the waiting client.
	h := xxhash.New()
	toCache := make(chan []byte, 4)
	wrote := make(chan error, 1)
	go func() {
		var werr error
		for b := range toCache {
			if werr != nil {
				continue // drain, so the reader never blocks on a dead writer
			}
			if _, err := wr.Write(b); err != nil {
				werr = storeErr(err)
				continue
			}
			h.Write(b)
		}
		wrote <- werr
	}()
	var pos int64
	var rerrOut error
	for {
		buf := make([]byte, readChunk)
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			tee(piece{pos: pos, data: buf[:n]}) // the waiting reader first
			toCache <- buf[:n]
			pos += int64(n)
			u.readBytes.Add(float64(n))
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			rerrOut = connect.NewError(connect.CodeUnavailable, fmt.Errorf("read %s from the UFS: %w", f.GetPath(), rerr))
			break
		}
	}
	close(toCache)
	if werr := <-wrote; werr != nil {
		return werr
	}
	if rerrOut != nil {
		return rerrOut
	}
	if f.GetChecksum() == 0 {
		wr.SetChecksum(h.Sum64()) // loaded from the UFS: no checksum recorded yet
	}
	if _, err := wr.Commit(); err != nil {
		if errors.Is(err, blockstore.ErrMismatch) {
			return connect.NewError(connect.CodeDataLoss, fmt.Errorf("the UFS copy of %s does not match version %d: %w", f.GetPath(), f.GetVersion(), err))
		}
		return storeErr(err)
	}
	u.w.log.Info("cached a file from the UFS", "path", f.GetPath(), "version", f.GetVersion(), "bytes", pos)
	return nil
}

// skipPartialFill reports whether a miss of [off, off+length) of f (length
// 0: to the end) is served from the UFS without caching: the range is not
// the whole file and partial caching is off, for the cluster (the setting
// cache.partial, as the last heartbeat said) or for this read (noPartial).
// With partial caching on, a read of part of a file caches all of it.
func (w *Worker) skipPartialFill(f *cairnv1.File, off, length uint64, noPartial bool) bool {
	whole := off == 0 && (length == 0 || length >= f.GetLength())
	return !whole && (noPartial || w.partialOff.Load())
}
