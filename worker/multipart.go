package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/blockstore"
	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// multipartIdle is how long a multipart write may go without a call
// before the worker discards it and releases its reservation.
const multipartIdle = 10 * time.Minute

// mpSession is one multipart write on this worker. WritePart holds mu
// shared for the length of a part; Complete, Abort and the janitor hold
// it exclusively, so a part never lands in a write that has ended.
type mpSession struct {
	id    string
	h     *cairnv1.WriteHeader
	path  string
	cw    *blockstore.Writer
	mu    sync.RWMutex
	ended bool
	last  atomic.Int64 // unix ns of the last call
}

// multiparts holds the worker's open multipart writes.
type multiparts struct {
	mu       sync.Mutex
	sessions map[string]*mpSession
	parts    *prometheus.CounterVec
}

func newMultiparts(reg prometheus.Registerer) *multiparts {
	m := &multiparts{
		sessions: make(map[string]*mpSession),
		parts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_worker_multipart_parts_total", Help: "Parts of multipart writes received, by outcome: ok, or refused (bytes that did not match the part's length or checksum, or a part overlapping another)."},
			[]string{"outcome"}),
	}
	reg.MustRegister(m.parts, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cairn_worker_multipart_writes_open", Help: "Multipart writes started and not yet completed or aborted."},
		func() float64 { m.mu.Lock(); defer m.mu.Unlock(); return float64(len(m.sessions)) }))
	return m
}

// get returns the open session id, or NotFound with what to do.
func (m *multiparts) get(id string) (*mpSession, error) {
	m.mu.Lock()
	s, ok := m.sessions[id]
	m.mu.Unlock()
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("no multipart write %q on this worker: it was completed or aborted, left idle for %s, or the worker restarted; start the write again", id, multipartIdle))
	}
	s.last.Store(time.Now().UnixNano())
	return s, nil
}

// end takes s out of the table; the caller holds s.mu exclusively.
func (m *multiparts) end(s *mpSession) {
	s.ended = true
	s.cw.Abort()
	m.mu.Lock()
	delete(m.sessions, s.id)
	m.mu.Unlock()
}

// expire aborts the sessions idle since before cutoff that no call is
// using, and, when cutoff is zero, every session (the worker closes).
func (m *multiparts) expire(cutoff time.Time, log interface{ Info(string, ...any) }) {
	m.mu.Lock()
	var idle []*mpSession
	for _, s := range m.sessions {
		if cutoff.IsZero() || s.last.Load() < cutoff.UnixNano() {
			idle = append(idle, s)
		}
	}
	m.mu.Unlock()
	for _, s := range idle {
		if !s.mu.TryLock() {
			continue // a part is arriving: not idle after all
		}
		if !s.ended {
			m.end(s)
			log.Info("discarded an idle multipart write", "upload_id", s.id, "path", s.path)
		}
		s.mu.Unlock()
	}
}

// runMultipartJanitor discards idle multipart writes until the worker
// stops, then all of them.
func (w *Worker) runMultipartJanitor() {
	defer w.wg.Done()
	tick := time.NewTicker(multipartIdle / 10)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			w.mp.expire(time.Time{}, w.log)
			return
		case <-tick.C:
			w.mp.expire(time.Now().Add(-multipartIdle), w.log)
		}
	}
}

func (s *dataService) StartMultipartWrite(ctx context.Context, req *connect.Request[cairnv1.StartMultipartWriteRequest]) (*connect.Response[cairnv1.StartMultipartWriteResponse], error) {
	h := req.Msg.GetHeader()
	switch {
	case h.GetNoCache():
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("a THROUGH write (no_cache) caches nothing to gather parts in: send it with Write"))
	case h.GetRebalanceEpoch() != 0:
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("rebalance copies are sent with Write"))
	}
	p, bid, fo, err := fromHeader(h)
	if err != nil {
		return nil, err
	}
	if h.GetThrough() {
		// Refuse a write whose path has no UFS before any part travels.
		if _, err := s.w.ufs.resolve(ctx, p, true); err != nil {
			return nil, err
		}
	}
	cw, err := s.w.store.CreateParts(bid, fo)
	if err != nil {
		return nil, storeErr(err)
	}
	if h.GetNewVersion() {
		cw.NewVersion(h.GetReplaces())
	}
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		cw.Abort()
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	sess := &mpSession{id: hex.EncodeToString(rnd[:]), h: h, path: p, cw: cw}
	sess.last.Store(time.Now().UnixNano())
	s.w.mp.mu.Lock()
	s.w.mp.sessions[sess.id] = sess
	s.w.mp.mu.Unlock()
	return connect.NewResponse(&cairnv1.StartMultipartWriteResponse{UploadId: sess.id}), nil
}

func (s *dataService) WritePart(ctx context.Context, stream *connect.ClientStream[cairnv1.WritePartRequest]) (*connect.Response[cairnv1.WritePartResponse], error) {
	if !stream.Receive() {
		if err := stream.Err(); err != nil {
			return nil, err
		}
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("write part: no header"))
	}
	ph := stream.Msg().GetHeader()
	if ph == nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("write part: the first message must be the header"))
	}
	sess, err := s.w.mp.get(ph.GetUploadId())
	if err != nil {
		return nil, err
	}
	sess.mu.RLock()
	defer sess.mu.RUnlock()
	if sess.ended {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("multipart write %q has ended", sess.id))
	}
	size := sess.h.GetIdentity().GetLength()
	off, length := ph.GetOffset(), ph.GetLength()
	if off > size || length > size-off {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("part of %d bytes at %d falls outside the %d bytes of %s", length, off, size, sess.path))
	}
	refuse := func(err error) (*connect.Response[cairnv1.WritePartResponse], error) {
		s.w.mp.parts.WithLabelValues("refused").Inc()
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	h := xxhash.New()
	var n uint64
	for stream.Receive() {
		chunk := stream.Msg().GetChunk()
		if stream.Msg().GetHeader() != nil {
			return refuse(errors.New("write part: a second header"))
		}
		if n+uint64(len(chunk)) > length {
			return refuse(fmt.Errorf("part at %d of %s: more than the %d bytes announced", off, sess.path, length))
		}
		if _, err := sess.cw.WriteAt(chunk, int64(off+n)); err != nil {
			return nil, storeErr(err)
		}
		h.Write(chunk)
		n += uint64(len(chunk))
		s.w.data.writtenBytes.Add(float64(len(chunk)))
		sess.last.Store(time.Now().UnixNano())
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	if n != length || h.Sum64() != ph.GetChecksum() {
		return refuse(fmt.Errorf("%w: part at %d of %s got %d bytes with checksum %016x, promised %d bytes with %016x; send the part again",
			blockstore.ErrMismatch, off, sess.path, n, h.Sum64(), length, ph.GetChecksum()))
	}
	if err := sess.cw.AddPart(int64(off), int64(length)); err != nil {
		return refuse(err)
	}
	s.w.mp.parts.WithLabelValues("ok").Inc()
	return connect.NewResponse(&cairnv1.WritePartResponse{}), nil
}

func (s *dataService) CompleteMultipartWrite(ctx context.Context, req *connect.Request[cairnv1.CompleteMultipartWriteRequest]) (*connect.Response[cairnv1.CompleteMultipartWriteResponse], error) {
	sess, err := s.w.mp.get(req.Msg.GetUploadId())
	if err != nil {
		return nil, err
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.ended {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("multipart write %q has ended", sess.id))
	}
	// Whatever happens next, the session ends: a failed completion
	// leaves nothing worth another try.
	defer s.w.mp.end(sess)
	var uw persistence.Writer
	if sess.h.GetThrough() {
		tg, err := s.w.ufs.resolve(ctx, sess.path, true)
		if err != nil {
			return nil, err
		}
		if uw, err = tg.UFS.Create(ctx, tg.Path); err != nil {
			return nil, apiserver.UFSError(fmt.Sprintf("write %s to the UFS", sess.path), err)
		}
		defer uw.Abort()
	}
	// One pass reads the parts back: it checks the whole file's checksum
	// and, for CACHE_THROUGH, feeds the UFS copy. It stops as soon as the
	// client gives up, and nothing is committed after that (a client that
	// gives up during the final commits may still find them done).
	tee := &completeTee{ctx: ctx, uw: uw}
	sum, err := sess.cw.Sum(tee)
	switch {
	case err == nil:
	case tee.ufsErr != nil:
		return nil, apiserver.UFSError(fmt.Sprintf("write %s to the UFS", sess.path), tee.ufsErr)
	case ctx.Err() != nil:
		return nil, connect.NewError(ctxCode(ctx), fmt.Errorf("the client gave up while %s was read back; nothing was kept", sess.path))
	case errors.Is(err, blockstore.ErrMismatch):
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("%w; nothing was kept", err))
	default:
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	if sum != req.Msg.GetChecksum() {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%w: %s reads back with checksum %016x, promised %016x; nothing was kept",
			blockstore.ErrMismatch, sess.path, sum, req.Msg.GetChecksum()))
	}
	if ctx.Err() != nil {
		return nil, connect.NewError(ctxCode(ctx), fmt.Errorf("the client gave up on %s; nothing was kept", sess.path))
	}
	resp := &cairnv1.CompleteMultipartWriteResponse{}
	if uw != nil {
		info, err := uw.Commit()
		if err != nil {
			return nil, apiserver.UFSError(fmt.Sprintf("write %s to the UFS", sess.path), err)
		}
		resp.UfsMtime, resp.UfsEtag, resp.UfsVersionId = timestamppb.New(info.ModTime), info.ETag, info.VersionID
	}
	sess.cw.SetChecksum(sum)
	e, err := sess.cw.Commit()
	if err != nil {
		return nil, storeErr(err)
	}
	resp.File = s.cached(e)
	return connect.NewResponse(resp), nil
}

// ctxCode is the Connect code for why ctx ended.
func ctxCode(ctx context.Context) connect.Code {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return connect.CodeDeadlineExceeded
	}
	return connect.CodeCanceled
}

// completeTee takes the bytes a completion reads back: it passes them to
// the UFS writer (if any), remembering its error apart, and stops the
// pass once the call's context ends.
type completeTee struct {
	ctx    context.Context
	uw     persistence.Writer
	ufsErr error
}

func (t *completeTee) Write(b []byte) (int, error) {
	if err := t.ctx.Err(); err != nil {
		return 0, err
	}
	if t.uw == nil {
		return len(b), nil
	}
	n, err := t.uw.Write(b)
	if err != nil {
		t.ufsErr = err
	}
	return n, err
}

func (s *dataService) AbortMultipartWrite(ctx context.Context, req *connect.Request[cairnv1.AbortMultipartWriteRequest]) (*connect.Response[cairnv1.AbortMultipartWriteResponse], error) {
	sess, err := s.w.mp.get(req.Msg.GetUploadId())
	if err != nil {
		return connect.NewResponse(&cairnv1.AbortMultipartWriteResponse{}), nil
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.ended {
		return connect.NewResponse(&cairnv1.AbortMultipartWriteResponse{}), nil
	}
	s.w.mp.end(sess)
	return connect.NewResponse(&cairnv1.AbortMultipartWriteResponse{Aborted: true}), nil
}
