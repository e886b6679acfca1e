package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/jobs"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// maxTasks is how many tasks a worker runs at once.
const maxTasks = 4

// errLeaseLost ends a task's work: the lease expired in the worker's own
// view, or the leader said it is gone.
var errLeaseLost = errors.New("the lease on this task is lost")

// tally is the live counters of one piece of work, reported as deltas: the
// part not yet reported is what the counters hold above reported. Several
// task runs (attempts) of the same work share one tally, so what one
// attempt counted but could not report is reported by the next, once.
type tally struct {
	mu       sync.Mutex
	now      cairnv1.Counters
	reported cairnv1.Counters
	// send serializes reports; inflight is a report whose fate is unknown
	// (no answer came): it is sent again, same lease and seq, before
	// anything else, so it is applied once whatever happened to it.
	send     sync.Mutex
	inflight *cairnv1.ReportRequest
}

// snapshot returns the live counters.
func (t *tally) snapshot() *cairnv1.Counters {
	t.mu.Lock()
	defer t.mu.Unlock()
	return proto.Clone(&t.now).(*cairnv1.Counters)
}

// add adds delta to the live counters.
func (t *tally) add(delta *cairnv1.Counters) {
	t.mu.Lock()
	jobs.Add(&t.now, delta)
	t.mu.Unlock()
}

// pending returns what is not yet reported.
func (t *tally) pending() *cairnv1.Counters {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := &cairnv1.Counters{}
	dr, nr, rr := d.ProtoReflect(), t.now.ProtoReflect(), t.reported.ProtoReflect()
	fields := nr.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if v := nr.Get(fd).Uint() - rr.Get(fd).Uint(); v != 0 {
			dr.Set(fd, protoreflect.ValueOfUint64(v))
		}
	}
	return d
}

// acknowledge records that delta reached the journal.
func (t *tally) acknowledge(delta *cairnv1.Counters) {
	t.mu.Lock()
	jobs.Add(&t.reported, delta)
	t.mu.Unlock()
}

// taskMetrics are the worker's job metrics.
type taskMetrics struct {
	tasks         *prometheus.CounterVec
	running       prometheus.Gauge
	rebalanceMB   *prometheus.CounterVec
	rebalanceNum  *prometheus.CounterVec
	neighbor      *prometheus.CounterVec
	clearedBytes  prometheus.Counter
	uploadedBytes prometheus.Counter
}

func newTaskMetrics(reg prometheus.Registerer) *taskMetrics {
	tm := &taskMetrics{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_worker_tasks_total", Help: "Tasks this worker ran, by kind and outcome (succeeded, failed, lease_lost)."},
			[]string{"kind", "outcome"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cairn_worker_tasks_running", Help: "Tasks this worker holds a lease on and works at."}),
		rebalanceMB: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_worker_rebalance_bytes_total", Help: "Bytes of files a rebalance moved, by direction (sent, received)."},
			[]string{"direction"}),
		rebalanceNum: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_worker_rebalance_files_total", Help: "Files a rebalance moved, by direction (sent, received)."},
			[]string{"direction"}),
		neighbor: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_worker_neighbor_fetches_total", Help: "Misses that asked another worker before the UFS (the previous epoch's owners during a rebalance, co-owners of files not persisted), by outcome (fetched, not_found, failed)."},
			[]string{"outcome"}),
	}
	reg.MustRegister(tm.tasks, tm.running, tm.rebalanceMB, tm.rebalanceNum, tm.neighbor)
	tm.clearedBytes = newClearedBytes(reg)
	tm.uploadedBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_worker_uploaded_bytes_total", Help: "Bytes this worker's PERSIST tasks put in the UFS."})
	reg.MustRegister(tm.uploadedBytes)
	return tm
}

// rebalanceTally returns the tally of the rebalance of an epoch: what this
// worker sent and received for it, whether by its own walk, by a peer's, or
// by a miss fetched from a neighbor.
func (w *Worker) rebalanceTally(epoch uint64) *tally {
	return w.tallyOf(tallyKey{epoch: epoch})
}

// tallyKey names a tally: a rebalance's by epoch, any other task's by job
// and index.
type tallyKey struct {
	epoch, job uint64
	index      uint32
}

// tallyOf returns the tally of a piece of work, shared by every attempt at
// it in this process.
func (w *Worker) tallyOf(k tallyKey) *tally {
	w.tmu.Lock()
	defer w.tmu.Unlock()
	if w.tallies == nil {
		w.tallies = map[tallyKey]*tally{}
	}
	t, ok := w.tallies[k]
	if !ok {
		t = &tally{}
		w.tallies[k] = t
		// Only recent work matters: forget tallies far behind.
		for o := range w.tallies {
			if (k.epoch != 0 && o.epoch != 0 && o.epoch+16 < k.epoch) || (k.job != 0 && o.job != 0 && o.job+1024 < k.job) {
				delete(w.tallies, o)
			}
		}
	}
	return t
}

// countMove records one file a rebalance moved.
func (w *Worker) countMove(epoch uint64, sent bool, bytes uint64) {
	c := &cairnv1.Counters{Received: 1, ReceivedBytes: bytes}
	dir := "received"
	if sent {
		c = &cairnv1.Counters{Sent: 1, SentBytes: bytes}
		dir = "sent"
	}
	w.rebalanceTally(epoch).add(c)
	w.tm.rebalanceMB.WithLabelValues(dir).Add(float64(bytes))
	w.tm.rebalanceNum.WithLabelValues(dir).Inc()
}

// runLeases asks the leader for work (a long poll) while it has room, and
// runs each task it gets in its own goroutine.
func (w *Worker) runLeases() {
	defer w.wg.Done()
	ctx, cancel := w.ctx()
	defer cancel()
	slots := make(chan struct{}, maxTasks)
	var running sync.WaitGroup
	defer running.Wait()
	// A lease call before the first registration is refused; waiting for
	// it, rather than retrying a second later, lets a worker that joins
	// take its part of the rebalance its joining starts at once.
	select {
	case <-ctx.Done():
		return
	case <-w.registered:
	}
	for ctx.Err() == nil {
		free := 0
		for len(slots) < cap(slots) {
			slots <- struct{}{}
			free++
		}
		if free == 0 {
			select {
			case <-ctx.Done():
				return
			case slots <- struct{}{}:
				free = 1
			}
		}
		sent := time.Now()
		resp, err := client.Call(ctx, w.masters, func(ctx context.Context, s client.Services) (*cairnv1.LeaseResponse, error) {
			r, err := s.Leases.Lease(ctx, connect.NewRequest(&cairnv1.LeaseRequest{
				WorkerId: w.id, Kinds: []cairnv1.JobKind{cairnv1.JobKind_JOB_KIND_REBALANCE, cairnv1.JobKind_JOB_KIND_CLEANUP, cairnv1.JobKind_JOB_KIND_FREE, cairnv1.JobKind_JOB_KIND_PERSIST},
				MaxTasks: uint32(free), Wait: durationpb.New(20 * time.Second)}))
			if err != nil {
				return nil, err
			}
			return r.Msg, nil
		})
		got := len(resp.GetTasks())
		for range free - got {
			<-slots
		}
		if err != nil {
			if ctx.Err() == nil {
				w.log.Debug("lease tasks", "err", err)
				w.sleep(time.Second)
			}
			continue
		}
		for _, lt := range resp.GetTasks() {
			running.Add(1)
			go func() {
				defer running.Done()
				defer func() { <-slots }()
				w.runTask(ctx, lt, sent.Add(resp.GetWaited().AsDuration()))
			}()
		}
	}
}

// run is one task under one lease.
type run struct {
	w        *Worker
	lt       *cairnv1.LeasedTask
	ref      *cairnv1.TaskRef
	tally    *tally
	seq      uint64
	deadline atomic.Int64           // unix ns: the worker's own view of the lease's end
	ufsMtime *timestamppb.Timestamp // PERSIST: the uploaded file's, for the final report
	// PERSIST: the uploaded object's ETag and version id, where the store has them
	ufsEtag, ufsVersion string
	noCopy              bool // PERSIST: no copy was found anywhere
}

func (r *run) kind() string {
	return strings.TrimPrefix(r.lt.GetSpec().GetKind().String(), "JOB_KIND_")
}

// runTask works on a leased task until it is done or the lease is lost,
// renewing the lease and reporting counters meanwhile. granted is the
// earliest the lease can have been granted (the request's sending plus the
// time the leader held it): the lease's end in the worker's view is
// granted + TTL, never later than the leader's.
func (w *Worker) runTask(ctx context.Context, lt *cairnv1.LeasedTask, granted time.Time) {
	t := lt.GetTask()
	r := &run{w: w, lt: lt, ref: &cairnv1.TaskRef{JobId: t.GetJobId(), Index: t.GetIndex(), LeaseId: t.GetLeaseId()}}
	ttl := lt.GetTtl().AsDuration()
	r.deadline.Store(granted.Add(ttl).UnixNano())
	log := w.log.With("job", t.GetJobId(), "task", t.GetIndex(), "lease", t.GetLeaseId(), "kind", r.kind(), "attempt", t.GetAttempt())
	var exec func(context.Context, *run) error
	switch lt.GetSpec().GetKind() {
	case cairnv1.JobKind_JOB_KIND_REBALANCE:
		r.tally = w.rebalanceTally(lt.GetSpec().GetEpoch())
		exec = w.rebalance
	case cairnv1.JobKind_JOB_KIND_CLEANUP:
		r.tally = w.tallyOf(tallyKey{job: t.GetJobId(), index: t.GetIndex()})
		exec = w.cleanup
	case cairnv1.JobKind_JOB_KIND_FREE:
		r.tally = w.tallyOf(tallyKey{job: t.GetJobId(), index: t.GetIndex()})
		exec = w.free
	case cairnv1.JobKind_JOB_KIND_PERSIST:
		r.tally = w.tallyOf(tallyKey{job: t.GetJobId(), index: t.GetIndex()})
		exec = w.persist
	default:
		r.tally = &tally{}
		exec = func(context.Context, *run) error {
			return fmt.Errorf("this worker cannot run %s tasks", r.kind())
		}
	}
	log.Info("task started")
	w.tm.running.Inc()
	defer w.tm.running.Dec()

	work, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	done := make(chan struct{})
	go r.keepLease(work, stop, ttl, done)
	err := exec(work, r)
	close(done)
	if cause := context.Cause(work); errors.Is(cause, errLeaseLost) {
		err = cause
	}

	final, msg, outcome := cairnv1.TaskState_TASK_STATE_SUCCEEDED, "", "succeeded"
	switch {
	case errors.Is(err, errLeaseLost):
		outcome = "lease_lost"
		final = cairnv1.TaskState_TASK_STATE_UNSPECIFIED // counters only: a lost lease cannot end the task
	case ctx.Err() != nil:
		outcome, final = "lease_lost", cairnv1.TaskState_TASK_STATE_UNSPECIFIED
	case err != nil:
		final, msg, outcome = cairnv1.TaskState_TASK_STATE_FAILED, err.Error(), "failed"
		r.noCopy = errors.Is(err, errNoCopy)
	}
	// The last report: sent even when the lease is gone, so the work done is
	// counted (once).
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if rerr := r.report(rctx, final, msg, false); errors.Is(rerr, errStaleLease) {
		outcome = "lease_lost" // counted, but another lease holds the task
		log.Info("final report counted under a lease no longer current", "err", rerr)
	} else if rerr != nil {
		log.Warn("final report", "err", rerr)
	}
	w.tm.tasks.WithLabelValues(r.kind(), outcome).Inc()
	log.Info("task ended", "outcome", outcome, "err", err, "counters", jobs.Format(r.tally.snapshot()))
}

// keepLease renews the lease every third of its TTL and ends the work
// (stop) when the worker's own view of the deadline passes without a
// successful renewal, or the leader says the lease is gone. Between
// renewals it reports counters.
func (r *run) keepLease(ctx context.Context, stop context.CancelCauseFunc, ttl time.Duration, done <-chan struct{}) {
	renewEvery := max(ttl/3, 50*time.Millisecond)
	nextRenew := time.Now().Add(renewEvery)
	tick := time.NewTicker(min(renewEvery, time.Second))
	defer tick.Stop()
	for {
		dl := time.Unix(0, r.deadline.Load())
		timer := time.NewTimer(time.Until(dl))
		select {
		case <-done:
			timer.Stop()
			return
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
			stop(fmt.Errorf("%w: no renewal reached the leader before the lease's end (%s)", errLeaseLost, dl.Format(time.RFC3339Nano)))
			return
		case <-tick.C:
		}
		timer.Stop()
		if time.Now().After(nextRenew) {
			sent := time.Now()
			cctx, cancel := context.WithDeadline(ctx, dl)
			resp, err := client.Msg(cctx, r.w.masters, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.RenewResponse], error) {
				return s.Leases.Renew(ctx, connect.NewRequest(&cairnv1.RenewRequest{WorkerId: r.w.id, Leases: []*cairnv1.TaskRef{r.ref}}))
			})
			cancel()
			switch {
			case err != nil:
				r.w.log.Debug("renew lease", "job", r.ref.GetJobId(), "task", r.ref.GetIndex(), "err", err)
				nextRenew = time.Now().Add(renewEvery / 4)
			case len(resp.GetResults()) == 1 && !resp.GetResults()[0].GetOk():
				stop(fmt.Errorf("%w: %s", errLeaseLost, resp.GetResults()[0].GetMessage()))
				return
			default:
				r.deadline.Store(sent.Add(resp.GetTtl().AsDuration()).UnixNano())
				nextRenew = sent.Add(renewEvery)
			}
		}
		// Report progress between renewals (counters only), for no longer
		// than a renewal period: a slow report must not starve the renewals.
		if !jobs.Empty(r.tally.pending()) {
			cctx, cancel := context.WithTimeout(ctx, min(renewEvery, time.Until(dl)))
			err := r.report(cctx, 0, "", false)
			cancel()
			if errors.Is(err, errLeaseLost) {
				stop(err) // the leader says another lease holds the task now
				return
			}
			if err != nil {
				r.w.log.Debug("progress report", "job", r.ref.GetJobId(), "err", err)
			}
		}
	}
}

// report sends the counters not yet reported, and final / localDone,
// under the run's next sequence number. A report whose answer was lost is
// sent again first, unchanged. It returns an error when the leader refused
// the report or ctx ended before an answer.
func (r *run) report(ctx context.Context, final cairnv1.TaskState, msg string, localDone bool) error {
	t := r.tally
	t.send.Lock()
	defer t.send.Unlock()
	if t.inflight != nil {
		if err := r.w.sendReport(ctx, t, t.inflight); err != nil {
			return err
		}
	}
	delta := t.pending()
	if jobs.Empty(delta) && final == 0 && !localDone {
		return nil
	}
	r.seq++
	t.inflight = &cairnv1.ReportRequest{WorkerId: r.w.id, Lease: r.ref, Seq: r.seq, Delta: delta, Final: final, Error: clip(msg, maxReportError), LocalDone: localDone}
	if final == cairnv1.TaskState_TASK_STATE_SUCCEEDED {
		t.inflight.UfsMtime, t.inflight.UfsEtag, t.inflight.UfsVersionId = r.ufsMtime, r.ufsEtag, r.ufsVersion
	}
	if final == cairnv1.TaskState_TASK_STATE_FAILED {
		t.inflight.NoCopy = r.noCopy
	}
	return r.w.sendReport(ctx, t, t.inflight)
}

// maxReportError is the longest error a report carries (the API refuses
// longer ones), in characters.
const maxReportError = 4096

// clip shortens s to at most n characters, marking the cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	const mark = " … (cut)"
	r := []rune(s)
	return string(r[:n-utf8.RuneCountInString(mark)]) + mark
}

// sendReport sends req until the leader answers; t.send is held. An
// answer (accepted or refused) settles req: its deltas are acknowledged
// when accepted, also when the lease was stale (errStaleLease, which
// wraps errLeaseLost), and stay pending when refused (nothing was counted).
func (w *Worker) sendReport(ctx context.Context, t *tally, req *cairnv1.ReportRequest) error {
	for {
		err := w.rep.send(ctx, req)
		if err == nil || errors.Is(err, errStaleLease) {
			// Counted (a stale lease's deltas too): the caller stops the
			// work on errStaleLease.
			t.acknowledge(req.GetDelta())
			t.inflight = nil
			return err
		}
		switch connect.CodeOf(err) {
		case connect.CodeFailedPrecondition, connect.CodeNotFound, connect.CodeInvalidArgument:
			// A refusal: nothing was counted.
			t.inflight = nil
			return fmt.Errorf("report seq %d of lease %d refused: %w", req.GetSeq(), req.GetLease().GetLeaseId(), err)
		}
		// Anything else may have been applied: send the same report again.
		select {
		case <-ctx.Done():
			return fmt.Errorf("report seq %d of lease %d: no answer yet (sent again later): %w", req.GetSeq(), req.GetLease().GetLeaseId(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
