package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/blockstore"
	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// readChunk is the size of the pieces Read streams.
const readChunk = 4 << 20

// dataService serves the worker's cache.
type dataService struct {
	w *Worker
}

var _ cairnv1connect.DataServiceHandler = (*dataService)(nil)

type dataMetrics struct {
	transferredBytes prometheus.Counter
	readBytes        prometheus.Counter
	writtenBytes     prometheus.Counter
	reads            *prometheus.CounterVec
}

func newDataMetrics(w *Worker, reg prometheus.Registerer) *dataMetrics {
	dm := &dataMetrics{
		transferredBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_worker_transferred_bytes_total", Help: "Bytes this worker sent to other workers with Transfer."}),
		readBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_worker_read_bytes_total", Help: "Bytes this worker served from its cache."}),
		writtenBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_worker_written_bytes_total", Help: "Bytes written into this worker's cache."}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_worker_reads_total", Help: "Read calls by outcome: hit (served from the cache) or miss (not cached here)."},
			[]string{"outcome"}),
	}
	reg.MustRegister(dm.transferredBytes, dm.readBytes, dm.writtenBytes, dm.reads,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cairn_worker_cache_used_bytes", Help: "Bytes of cached data, with reservations of writes in progress."},
			func() float64 { u, _ := w.store.Usage(); return float64(u) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cairn_worker_cache_capacity_bytes", Help: "The cache's capacity."},
			func() float64 { _, c := w.store.Usage(); return float64(c) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "cairn_worker_evicted_bytes_total", Help: "Bytes eviction removed to make room."},
			func() float64 { return float64(w.store.EvictedBytes()) }),
	)
	return dm
}

// cached converts a store entry to its API form.
func (s *dataService) cached(e blockstore.Entry) *cairnv1.CachedFile {
	return &cairnv1.CachedFile{
		LocalDir:    s.w.store.Dir(e.Path, e.Version),
		Identity:    identityOf(e),
		WriteType:   cairnv1.WriteType(cairnv1.WriteType_value[e.WriteType]),
		Pinned:      e.Pinned,
		Unpersisted: e.Unpersisted,
		BlockSize:   uint64(e.BlockSize),
		LastAccess:  timestamppb.New(timeOfNanos(e.LastAccess)),
	}
}

// storeErr maps block store errors to Connect codes.
func storeErr(err error) error {
	switch {
	case errors.Is(err, blockstore.ErrNoSpace):
		return connect.NewError(connect.CodeResourceExhausted, err)
	case errors.Is(err, blockstore.ErrMismatch):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, blockstore.ErrSuperseded):
		return connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.Is(err, blockstore.ErrNotCached):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, persistence.ErrInvalidPath):
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	return connect.NewError(connect.CodeInternal, err)
}

func (s *dataService) Write(ctx context.Context, stream *connect.ClientStream[cairnv1.WriteRequest]) (*connect.Response[cairnv1.WriteResponse], error) {
	if !stream.Receive() {
		if err := stream.Err(); err != nil {
			return nil, err
		}
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("write: no header"))
	}
	h := stream.Msg().GetHeader()
	if h == nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("write: the first message must be the header"))
	}
	if h.GetNoCache() && !h.GetThrough() {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("write: no_cache without through would store the data nowhere"))
	}
	id := h.GetIdentity()
	p, bid, fo, err := fromHeader(h)
	if err != nil {
		return nil, err
	}
	// The legs the bytes go to: the cache, the UFS, or both.
	var cw *blockstore.Writer
	if !h.GetNoCache() {
		if cw, err = s.w.store.Create(bid, fo); err != nil {
			return nil, storeErr(err)
		}
		defer cw.Abort()
		if h.GetNewVersion() {
			cw.NewVersion(h.GetReplaces())
		}
		if h.GetRebalanceEpoch() != 0 {
			// Nobody waits to read a rebalance's copy: it goes around the
			// page cache rather than push this worker's hot data out.
			cw.Direct()
		}
	}
	var uw persistence.Writer
	if h.GetThrough() {
		tg, err := s.w.ufs.resolve(ctx, p, true)
		if err != nil {
			return nil, err
		}
		if uw, err = tg.UFS.Create(ctx, tg.Path); err != nil {
			return nil, apiserver.UFSError(fmt.Sprintf("write %s to the UFS", p), err)
		}
		defer uw.Abort()
	}
	sum := xxhash.New()
	var n uint64
	checksum, gotSum := id.GetChecksum(), !h.GetChecksumLast()
	for stream.Receive() {
		switch part := stream.Msg().GetPart().(type) {
		case *cairnv1.WriteRequest_Chunk:
			if h.GetChecksumLast() && gotSum {
				return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("write: data after the checksum"))
			}
			if n += uint64(len(part.Chunk)); n > id.GetLength() {
				return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("write: more than the %d bytes the header announced", id.GetLength()))
			}
			sum.Write(part.Chunk)
			if cw != nil {
				if _, err := cw.Write(part.Chunk); err != nil {
					return nil, storeErr(err)
				}
			}
			if uw != nil {
				if _, err := uw.Write(part.Chunk); err != nil {
					return nil, apiserver.UFSError(fmt.Sprintf("write %s to the UFS", p), err)
				}
			}
			s.w.data.writtenBytes.Add(float64(len(part.Chunk)))
		case *cairnv1.WriteRequest_Checksum:
			if !h.GetChecksumLast() {
				return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("write: a checksum message, but the header carried the checksum"))
			}
			checksum, gotSum = part.Checksum, true
		default:
			return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("write: a second header"))
		}
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	if !gotSum {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("write: the stream ended without the checksum the header announced"))
	}
	if n != id.GetLength() || sum.Sum64() != checksum {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%w: %s got %d bytes with checksum %016x, promised %d bytes with %016x; nothing was kept",
			blockstore.ErrMismatch, p, n, sum.Sum64(), id.GetLength(), checksum))
	}
	resp := &cairnv1.WriteResponse{}
	if uw != nil {
		info, err := uw.Commit()
		if err != nil {
			return nil, apiserver.UFSError(fmt.Sprintf("write %s to the UFS", p), err)
		}
		resp.UfsMtime, resp.UfsEtag, resp.UfsVersionId = timestamppb.New(info.ModTime), info.ETag, info.VersionID
	}
	if cw != nil {
		if resp.File, resp.AlreadyHeld, err = s.commitCached(cw, p, id, checksum, h.GetRebalanceEpoch()); err != nil {
			return nil, err
		}
	}
	return connect.NewResponse(resp), nil
}

// fromHeader is what a write header asks the cache for: the clean path,
// the copy's identity (with the header's checksum, if it carries one) and
// how it is kept. A bad path is InvalidArgument.
func fromHeader(h *cairnv1.WriteHeader) (string, blockstore.Identity, blockstore.FileOptions, error) {
	id := h.GetIdentity()
	p, err := persistence.CleanPath(id.GetPath())
	if err != nil {
		return "", blockstore.Identity{}, blockstore.FileOptions{}, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("identity.path: %w", err))
	}
	return p, blockstore.Identity{
			Path: p, Version: id.GetVersion(), Size: int64(id.GetLength()), Checksum: id.GetChecksum(),
			ETag: id.GetEtag(), Metadata: id.GetMetadata(),
		},
		blockstore.FileOptions{WriteType: h.GetWriteType().String(), Pinned: h.GetPinned(), Unpersisted: h.GetUnpersisted()}, nil
}

// commitCached commits cw, the cached leg of a write of id with its
// checksum. A rebalance's copy (epoch not 0) is counted once, whoever sent
// it first: when this worker already holds the same identity nothing is
// stored and already is true; an older version than the one held here is
// refused (FailedPrecondition), as a stale copy from a worker that was
// away must not replace a newer one.
func (s *dataService) commitCached(cw *blockstore.Writer, p string, id *cairnv1.FileIdentity, checksum, epoch uint64) (file *cairnv1.CachedFile, already bool, err error) {
	if epoch != 0 {
		mu := &s.w.moveMu[xxhash.Sum64String(p)%uint64(len(s.w.moveMu))]
		mu.Lock()
		defer mu.Unlock()
		if have, ok := s.w.store.Get(p); ok && sameIdentity(identityOf(have), id) {
			return s.cached(have), true, nil
		} else if ok && have.Version > id.GetVersion() {
			return nil, false, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("%s: this worker holds version %d, newer than the version %d sent", p, have.Version, id.GetVersion()))
		}
	}
	cw.SetChecksum(checksum)
	e, err := cw.Commit()
	if err != nil {
		return nil, false, storeErr(err)
	}
	if epoch != 0 {
		s.w.countMove(epoch, false, uint64(e.Size))
	}
	return s.cached(e), false, nil
}

func (s *dataService) Read(ctx context.Context, req *connect.Request[cairnv1.ReadRequest], stream *connect.ServerStream[cairnv1.ReadResponse]) error {
	r, err := s.w.store.Open(req.Msg.GetPath(), req.Msg.GetVersion())
	if err != nil {
		s.w.data.reads.WithLabelValues("miss").Inc()
		f := req.Msg.GetUfsFallback()
		if !errors.Is(err, blockstore.ErrNotCached) || f == nil {
			return storeErr(err)
		}
		if f.GetPath() != req.Msg.GetPath() || (req.Msg.GetVersion() != 0 && f.GetVersion() != req.Msg.GetVersion()) {
			return connect.NewError(connect.CodeInvalidArgument, errors.New("ufs_fallback describes another file than the one asked for"))
		}
		if req.Msg.GetNoCache() || s.w.skipPartialFill(f, req.Msg.GetOffset(), req.Msg.GetLength(), req.Msg.GetNoPartialCaching()) {
			return s.readUFS(ctx, req.Msg, stream)
		}
		off, end, err := span(f.GetPath(), req.Msg.GetOffset(), req.Msg.GetLength(), f.GetLength())
		if err != nil {
			return connect.NewError(connect.CodeOutOfRange, err)
		}
		first := true
		err = s.w.ufs.readThrough(ctx, f, off, end, func(b []byte) error {
			msg := &cairnv1.ReadResponse{Chunk: b}
			if first {
				msg.File = &cairnv1.CachedFile{Identity: &cairnv1.FileIdentity{Path: f.GetPath(), Version: f.GetVersion(), Length: f.GetLength(), Checksum: f.GetChecksum()}}
				first = false
			}
			s.w.data.readBytes.Add(float64(len(b)))
			return stream.Send(msg)
		})
		switch {
		case err == nil && first:
			// An empty range: answer with the file's description alone.
			return stream.Send(&cairnv1.ReadResponse{File: &cairnv1.CachedFile{Identity: &cairnv1.FileIdentity{Path: f.GetPath(), Version: f.GetVersion(), Length: f.GetLength()}}})
		case err == nil:
			return nil
		case !errors.Is(err, errCached):
			return err
		case !first:
			return connect.NewError(connect.CodeInternal, errors.New("read-through ended early after sending part of the range"))
		}
		if r, err = s.w.store.Open(f.GetPath(), f.GetVersion()); err != nil {
			return storeErr(err)
		}
	} else {
		s.w.data.reads.WithLabelValues("hit").Inc()
		s.w.published(req.Msg.GetPath(), req.Msg.GetVersion())
	}
	e := r.Entry()
	off, end, err := span(e.Path, req.Msg.GetOffset(), req.Msg.GetLength(), uint64(e.Size))
	if err != nil {
		return connect.NewError(connect.CodeOutOfRange, err)
	}
	// A reader goroutine stays one chunk ahead of the sender, so disk
	// reads and network writes overlap.
	type chunk struct {
		b   []byte
		err error
	}
	chunks := make(chan chunk, 2)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(chunks)
		for pos := off; pos < end; {
			b := make([]byte, min(int64(readChunk), end-pos))
			m, err := r.ReadAt(b, pos)
			if err != nil && !(errors.Is(err, io.EOF) && m == len(b)) {
				select {
				case chunks <- chunk{err: storeErr(err)}:
				case <-stop:
				}
				return
			}
			pos += int64(m)
			select {
			case chunks <- chunk{b: b[:m]}:
			case <-stop:
				return
			}
		}
	}()
	first := &cairnv1.ReadResponse{File: s.cached(e)}
	sent := int64(0)
	for c := range chunks {
		if c.err != nil {
			// A cached block that cannot be read: serve the rest of the range
			// from the UFS when it holds this version, caching nothing.
			f := req.Msg.GetUfsFallback()
			if f == nil || f.GetVersion() != e.Version || f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
				return c.err
			}
			s.w.log.Warn("a cached copy could not be read; serving the rest from the UFS", "path", e.Path, "version", e.Version, "offset", off+sent, "err", c.err)
			s.w.data.reads.WithLabelValues("cache_error").Inc()
			if off+sent >= end {
				return nil
			}
			return s.readUFS(ctx, &cairnv1.ReadRequest{Path: e.Path, Version: e.Version, Offset: uint64(off + sent), Length: uint64(end - off - sent), UfsFallback: f}, stream)
		}
		sent += int64(len(c.b))
		msg := &cairnv1.ReadResponse{Chunk: c.b}
		if first != nil {
			first.Chunk = c.b
			msg, first = first, nil
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
		s.w.data.readBytes.Add(float64(len(c.b)))
	}
	if first != nil { // an empty range
		return stream.Send(first)
	}
	return nil
}

func (s *dataService) Stat(ctx context.Context, req *connect.Request[cairnv1.StatRequest]) (*connect.Response[cairnv1.StatResponse], error) {
	resp := &cairnv1.StatResponse{}
	for _, p := range req.Msg.GetPaths() {
		if e, ok := s.w.store.Get(p); ok {
			resp.Files = append(resp.Files, s.cached(e))
		}
	}
	return connect.NewResponse(resp), nil
}

func (s *dataService) Delete(ctx context.Context, req *connect.Request[cairnv1.DataServiceDeleteRequest]) (*connect.Response[cairnv1.DataServiceDeleteResponse], error) {
	p, v := req.Msg.GetPath(), req.Msg.GetVersion()
	switch _, err := s.w.store.DeleteVersion(p, v); {
	case errors.Is(err, blockstore.ErrNotCached):
		return connect.NewResponse(&cairnv1.DataServiceDeleteResponse{}), nil
	case err != nil:
		return nil, storeErr(err)
	}
	s.w.log.Debug("deleted a cached copy", "path", p, "version", v)
	return connect.NewResponse(&cairnv1.DataServiceDeleteResponse{Deleted: true}), nil
}

// readUFS streams a range of a file straight from the UFS, caching nothing.
func (s *dataService) readUFS(ctx context.Context, req *cairnv1.ReadRequest, stream *connect.ServerStream[cairnv1.ReadResponse]) error {
	f := req.GetUfsFallback()
	r, err := s.w.ufs.open(ctx, f)
	if err != nil {
		return err
	}
	defer r.Close()
	off, end, err := span(f.GetPath(), req.GetOffset(), req.GetLength(), f.GetLength())
	if err != nil {
		return connect.NewError(connect.CodeOutOfRange, err)
	}
	// The range is read in order: where the reader can seek, as one stream
	// from the range's start (one GET of an object, not one per chunk).
	readAt := r.ReadAt
	if sk, ok := r.(io.Seeker); ok {
		if _, err := sk.Seek(off, io.SeekStart); err == nil {
			readAt = func(b []byte, _ int64) (int, error) { return io.ReadFull(r, b) }
		}
	}
	buf := make([]byte, readChunk)
	first := true
	for off < end || first {
		n, err := readAt(buf[:min(int64(len(buf)), end-off)], off)
		if err != nil && !((errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) && off+int64(n) == end) {
			return apiserver.UFSError(fmt.Sprintf("read %s from the UFS", f.GetPath()), err)
		}
		msg := &cairnv1.ReadResponse{Chunk: buf[:n]}
		if first {
			msg.File = &cairnv1.CachedFile{Identity: &cairnv1.FileIdentity{Path: f.GetPath(), Version: f.GetVersion(), Length: f.GetLength(), Checksum: f.GetChecksum()}}
			first = false
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
		s.w.ufs.readBytes.Add(float64(n))
		off += int64(n)
	}
	return nil
}

// sameIdentity reports whether two cached copies are the same object:
// size, checksum and version, and etag and custom metadata where both
// have them.
func sameIdentity(a, b *cairnv1.FileIdentity) bool {
	if a.GetPath() != b.GetPath() || a.GetVersion() != b.GetVersion() || a.GetLength() != b.GetLength() || a.GetChecksum() != b.GetChecksum() {
		return false
	}
	if a.GetEtag() != "" && b.GetEtag() != "" && a.GetEtag() != b.GetEtag() {
		return false
	}
	if len(a.GetMetadata()) > 0 && len(b.GetMetadata()) > 0 {
		if len(a.GetMetadata()) != len(b.GetMetadata()) {
			return false
		}
		for k, v := range a.GetMetadata() {
			if w, ok := b.GetMetadata()[k]; !ok || w != v {
				return false
			}
		}
	}
	return true
}

func (s *dataService) Transfer(ctx context.Context, req *connect.Request[cairnv1.TransferRequest]) (*connect.Response[cairnv1.TransferResponse], error) {
	resp, err := s.w.transfer(ctx, req.Msg.GetPath(), req.Msg.GetVersion(), req.Msg.GetTargetAddress(), req.Msg.GetRebalanceEpoch(), false)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

// transfer sends the cached copy of path (at version, or any with 0) to
// the worker at target unless it holds the same identity already (asked
// first, unless the caller did: checked). With a rebalance epoch, both
// sides count the copy under that rebalance, and it travels through the
// target's bulk write endpoint (RawWritePath); without, through
// DataService.Write.
func (w *Worker) transfer(ctx context.Context, path string, version uint64, target string, epoch uint64, checked bool) (*cairnv1.TransferResponse, error) {
	if target == w.Addr() {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("transfer: the target is this worker"))
	}
	r, err := w.store.Open(path, version)
	if err != nil {
		return nil, storeErr(err)
	}
	e := r.Entry()
	mine := identityOf(e)
	if !checked {
		st, err := w.peer(target).Stat(ctx, connect.NewRequest(&cairnv1.StatRequest{Paths: []string{e.Path}}))
		if err != nil {
			return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("transfer %s to %s: %w", e.Path, target, err))
		}
		for _, cf := range st.Msg.GetFiles() {
			if sameIdentity(cf.GetIdentity(), mine) {
				return &cairnv1.TransferResponse{File: cf}, nil
			}
		}
	}
	h := &cairnv1.WriteHeader{Identity: mine, WriteType: cairnv1.WriteType(cairnv1.WriteType_value[e.WriteType]), Pinned: e.Pinned, Unpersisted: e.Unpersisted, RebalanceEpoch: epoch}
	var resp *cairnv1.WriteResponse
	if epoch != 0 && !w.lacksBulkWrite(target) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.peerURL(target)+RawWritePath, nil)
		if err != nil {
			return nil, err
		}
		resp, err = w.rawSend(req, e, h)
		if errors.Is(err, errNoBulkWrite) {
			// An older worker: the API it has, for a while.
			w.noBulk.Store(target, time.Now())
			resp, err = w.streamSend(ctx, r, h, target)
		} else if err != nil {
			return nil, fmt.Errorf("transfer %s to %s: %w", e.Path, target, err)
		}
	} else {
		resp, err = w.streamSend(ctx, r, h, target)
	}
	if err != nil {
		return nil, err
	}
	if resp.GetAlreadyHeld() {
		return &cairnv1.TransferResponse{File: resp.GetFile()}, nil
	}
	w.data.transferredBytes.Add(float64(e.Size))
	if epoch != 0 {
		w.countMove(epoch, true, uint64(e.Size))
	}
	return &cairnv1.TransferResponse{File: resp.GetFile(), Sent: true, BytesSent: uint64(e.Size)}, nil
}

// lacksBulkWrite reports whether target answered, in the last ten
// minutes, that it has no bulk write endpoint.
func (w *Worker) lacksBulkWrite(target string) bool {
	v, ok := w.noBulk.Load(target)
	return ok && time.Since(v.(time.Time)) < 10*time.Minute
}

// streamSend sends the copy r reads to target with DataService.Write.
func (w *Worker) streamSend(ctx context.Context, r *blockstore.Reader, h *cairnv1.WriteHeader, target string) (*cairnv1.WriteResponse, error) {
	e := r.Entry()
	stream := w.peer(target).Write(ctx)
	if err := stream.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Header{Header: h}}); err != nil {
		_, rerr := stream.CloseAndReceive()
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("transfer %s to %s: %w", e.Path, target, errors.Join(err, rerr)))
	}
	buf := make([]byte, min(int64(1<<20), max(e.Size, 1)))
	var sent int64
	for sent < e.Size {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), e.Size-sent)], sent)
		if err != nil && !(errors.Is(err, io.EOF) && sent+int64(n) == e.Size) {
			stream.CloseAndReceive()
			return nil, storeErr(err)
		}
		if err := stream.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Chunk{Chunk: buf[:n]}}); err != nil {
			_, rerr := stream.CloseAndReceive()
			return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("transfer %s to %s: %w", e.Path, target, errors.Join(err, rerr)))
		}
		sent += int64(n)
	}
	resp, err := stream.CloseAndReceive()
	if err != nil {
		return nil, fmt.Errorf("transfer %s to %s: %w", e.Path, target, err)
	}
	return resp.Msg, nil
}

// span checks a read of length bytes (0: to the end) at off in a file of
// size bytes and returns the range [off, end) it covers.
func span(path string, off, length, size uint64) (int64, int64, error) {
	if off > size {
		return 0, 0, fmt.Errorf("offset %d is past the end of %s (%d bytes)", off, path, size)
	}
	end := size
	if length > 0 && length < size-off {
		end = off + length
	}
	return int64(off), int64(end), nil
}
