package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// maxReportBatch is the most reports one ReportBatch call carries, and
// maxReportBatchBytes about the most bytes (a quarter of what a master
// reads in one request).
const (
	maxReportBatch      = 256
	maxReportBatchBytes = 1 << 20
)

// reporter sends the reports of a worker's tasks to the leader. Reports
// that are ready at the same time (tasks that end together, or pile up
// while a call is on its way) go in one ReportBatch call, one journal
// write; a lone report goes at once, with no wait to gather others. No
// goroutine outlives a burst of reports: the first report of a burst
// starts one that sends until the queue is empty, with calls that the
// worker's stop does not cut (a task's last report is sent after it).
type reporter struct {
	w       *Worker
	mu      sync.Mutex
	queue   []pendingReport
	sending bool // a goroutine is draining queue
	// batchless is when (unix ns) the masters last answered that they
	// have no ReportBatch (an older release): reports go one per call for
	// ten minutes after.
	batchless atomic.Int64
	calls     *prometheus.CounterVec // by rpc
	reports   prometheus.Counter
}

// pendingReport is one report waiting for its answer; done is buffered so
// that an answer nobody waits for any more is dropped.
type pendingReport struct {
	ctx  context.Context // the sender's: a report it gave up on is not sent
	req  *cairnv1.ReportRequest
	done chan error
}

func newReporter(w *Worker, reg prometheus.Registerer) *reporter {
	r := &reporter{w: w,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_worker_report_calls_total",
			Help: "Calls that carried task reports to the leader, by procedure (Report: one report, ReportBatch: the reports that were ready together).",
		}, []string{"rpc"}),
		reports: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_worker_reports_sent_total",
			Help: "Task reports sent to the leader (each try of each report); with cairn_worker_report_calls_total, how many travel per call.",
		}),
	}
	reg.MustRegister(r.calls, r.reports)
	return r
}

// send queues req and waits for the leader's answer or the end of ctx. An
// error from a refusal has the code Report would answer with; a report
// counted under a lease no longer current answers errStaleLease; after ctx
// ends the report may still be applied.
func (r *reporter) send(ctx context.Context, req *cairnv1.ReportRequest) error {
	p := pendingReport{ctx: ctx, req: req, done: make(chan error, 1)}
	r.mu.Lock()
	r.queue = append(r.queue, p)
	start := !r.sending
	r.sending = true
	r.mu.Unlock()
	if start {
		// Not counted in w.wg: every report's sender waits for its answer
		// (and the task goroutines are counted), so the worker's Close
		// still waits for the reports in flight.
		go r.drain()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain sends the queued reports, up to maxReportBatch per call, until
// none is left.
func (r *reporter) drain() {
	r.mu.Lock()
	for len(r.queue) > 0 {
		var batch []pendingReport
		size := 0
		for len(r.queue) > 0 && len(batch) < maxReportBatch {
			p := r.queue[0]
			if err := p.ctx.Err(); err != nil {
				r.queue = r.queue[1:]
				p.done <- err // its sender gave up (and sends it again if it must)
				continue
			}
			n := proto.Size(p.req)
			if len(batch) > 0 && size+n > maxReportBatchBytes {
				break // the next call takes it
			}
			r.queue = r.queue[1:]
			size += n
			batch = append(batch, p)
		}
		r.mu.Unlock()
		if len(batch) > 0 {
			r.sendBatch(batch)
		}
		r.mu.Lock()
	}
	r.queue = nil
	r.sending = false
	r.mu.Unlock()
}

// reportCallTimeout bounds one call; a report whose call fails is sent
// again by its task (with the same sequence number, applied once).
const reportCallTimeout = 10 * time.Second

func (r *reporter) sendBatch(batch []pendingReport) {
	if len(batch) == 1 || time.Since(time.Unix(0, r.batchless.Load())) < 10*time.Minute {
		r.sendEach(batch)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), reportCallTimeout)
	defer cancel()
	r.calls.WithLabelValues("ReportBatch").Inc()
	r.reports.Add(float64(len(batch)))
	req := &cairnv1.ReportBatchRequest{WorkerId: r.w.id, Reports: make([]*cairnv1.ReportRequest, len(batch))}
	for i, p := range batch {
		req.Reports[i] = p.req
	}
	resp, err := client.Msg(ctx, r.w.masters, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.ReportBatchResponse], error) {
		return s.Leases.ReportBatch(ctx, connect.NewRequest(req))
	})
	switch connect.CodeOf(err) {
	case connect.CodeUnimplemented:
		r.w.log.Info("the masters have no ReportBatch (an older release): reports go one per call")
		r.batchless.Store(time.Now().UnixNano())
		r.sendEach(batch)
		return
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition, connect.CodeNotFound, connect.CodeResourceExhausted:
		// A call refused as a whole (one report failing validation, say):
		// one call each, so that only what is refused is refused.
		r.sendEach(batch)
		return
	}
	if err == nil && len(resp.GetResults()) != len(batch) {
		err = fmt.Errorf("report batch: %d answers to %d reports", len(resp.GetResults()), len(batch))
	}
	for i, p := range batch {
		if err != nil {
			p.done <- err
			continue
		}
		p.done <- resultError(resp.GetResults()[i])
	}
}

// sendEach sends the reports one Report call each, each call with its
// own time limit.
func (r *reporter) sendEach(batch []pendingReport) {
	for _, p := range batch {
		r.calls.WithLabelValues("Report").Inc()
		r.reports.Inc()
		ctx, cancel := context.WithTimeout(context.Background(), reportCallTimeout)
		resp, err := client.Msg(ctx, r.w.masters, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.ReportResponse], error) {
			return s.Leases.Report(ctx, connect.NewRequest(p.req))
		})
		cancel()
		if err == nil && resp.GetOutcome() == cairnv1.ReportOutcome_REPORT_OUTCOME_STALE_LEASE {
			err = errStaleLease
		}
		p.done <- err
	}
}

// errStaleLease answers a report the journal counted under a lease that is
// no longer current: its deltas were added (the work happened), and the
// task's work must stop, as for any lost lease.
var errStaleLease = fmt.Errorf("%w: the leader counted the report but the lease is no longer current", errLeaseLost)

// resultError is the error Report would have answered one report with:
// a refusal's code is the Connect code itself; a stale lease is
// errStaleLease; anything counted (or counted before) is nil.
func resultError(res *cairnv1.ReportResult) error {
	switch res.GetOutcome() {
	case cairnv1.ReportOutcome_REPORT_OUTCOME_REFUSED:
		return connect.NewError(connect.Code(res.GetRefusal()), errors.New(res.GetMessage()))
	case cairnv1.ReportOutcome_REPORT_OUTCOME_STALE_LEASE:
		return errStaleLease
	}
	return nil
}
