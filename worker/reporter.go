package worker

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// maxReportBatch is the most reports one ReportBatch call carries.
const maxReportBatch = 256

// reporter sends the reports of a worker's tasks to the leader. Reports
// that are ready at the same time (tasks that end together, or pile up
// while a call is on its way) go in one ReportBatch call, one journal
// write; a lone report goes at once, with no wait to gather others.
type reporter struct {
	w  *Worker
	in chan pendingReport
	// batchless is when (unix ns) the masters last answered that they
	// have no ReportBatch (an older release): reports go one per call for
	// ten minutes after.
	batchless atomic.Int64
}

// pendingReport is one report waiting for its answer; done is buffered so
// that an answer nobody waits for any more is dropped.
type pendingReport struct {
	req  *cairnv1.ReportRequest
	done chan error
}

func newReporter(w *Worker) *reporter {
	return &reporter{w: w, in: make(chan pendingReport, maxReportBatch)}
}

// send hands req to the reporter and waits for the leader's answer or the
// end of ctx. An error from a refusal has the code Report would answer
// with; after ctx ends the report may still be applied.
func (r *reporter) send(ctx context.Context, req *cairnv1.ReportRequest) error {
	p := pendingReport{req: req, done: make(chan error, 1)}
	select {
	case r.in <- p:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run sends reports until the worker stops: it takes the first waiting
// report and every other one already queued behind it.
func (r *reporter) run() {
	defer r.w.wg.Done()
	for {
		var batch []pendingReport
		select {
		case <-r.w.stop:
			return
		case p := <-r.in:
			batch = append(batch, p)
		}
	gather:
		for len(batch) < maxReportBatch {
			select {
			case p := <-r.in:
				batch = append(batch, p)
			default:
				break gather
			}
		}
		r.sendBatch(batch)
	}
}

// reportCallTimeout bounds one call; a report whose call fails is sent
// again by its task (with the same sequence number, applied once).
const reportCallTimeout = 10 * time.Second

func (r *reporter) sendBatch(batch []pendingReport) {
	ctx, cancel := r.w.ctx()
	defer cancel()
	ctx, cancelCall := context.WithTimeout(ctx, reportCallTimeout)
	defer cancelCall()
	if len(batch) == 1 || time.Since(time.Unix(0, r.batchless.Load())) < 10*time.Minute {
		for _, p := range batch {
			_, err := client.Msg(ctx, r.w.masters, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.ReportResponse], error) {
				return s.Leases.Report(ctx, connect.NewRequest(p.req))
			})
			p.done <- err
		}
		return
	}
	req := &cairnv1.ReportBatchRequest{WorkerId: r.w.id, Reports: make([]*cairnv1.ReportRequest, len(batch))}
	for i, p := range batch {
		req.Reports[i] = p.req
	}
	resp, err := client.Msg(ctx, r.w.masters, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.ReportBatchResponse], error) {
		return s.Leases.ReportBatch(ctx, connect.NewRequest(req))
	})
	if connect.CodeOf(err) == connect.CodeUnimplemented {
		r.w.log.Info("the masters have no ReportBatch (an older release): reports go one per call")
		r.batchless.Store(time.Now().UnixNano())
		r.sendBatch(batch)
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

// resultError is the error Report would have answered one report with.
func resultError(res *cairnv1.ReportResult) error {
	if res.GetCode() == "" {
		return nil
	}
	var code connect.Code
	if err := code.UnmarshalText([]byte(res.GetCode())); err != nil {
		code = connect.CodeUnknown
	}
	return connect.NewError(code, errors.New(res.GetMessage()))
}
