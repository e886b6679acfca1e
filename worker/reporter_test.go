package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// leader is a LeaseService that records the calls it gets. A report whose
// error text is "bad" is refused, one whose text is "stale" is counted
// under a lease no longer current; with noBatch it has no ReportBatch; with
// gate set, each call first waits for a value on it.
type leader struct {
	cairnv1connect.UnimplementedLeaseServiceHandler
	noBatch bool
	gate    chan struct{}
	arrived atomic.Int32 // calls that reached the leader
	mu      sync.Mutex
	calls   []string // "single" or "batch of N"
}

func (l *leader) record(what string) {
	l.arrived.Add(1)
	if l.gate != nil {
		<-l.gate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, what)
}

func (l *leader) Report(_ context.Context, req *connect.Request[cairnv1.ReportRequest]) (*connect.Response[cairnv1.ReportResponse], error) {
	l.record("single")
	switch req.Msg.GetError() {
	case "bad":
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("refused"))
	case "invalid":
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("error: too long"))
	case "stale":
		return connect.NewResponse(&cairnv1.ReportResponse{Counted: true, Outcome: cairnv1.ReportOutcome_REPORT_OUTCOME_STALE_LEASE}), nil
	}
	return connect.NewResponse(&cairnv1.ReportResponse{Counted: true, Outcome: cairnv1.ReportOutcome_REPORT_OUTCOME_COUNTED}), nil
}

func (l *leader) ReportBatch(_ context.Context, req *connect.Request[cairnv1.ReportBatchRequest]) (*connect.Response[cairnv1.ReportBatchResponse], error) {
	if l.noBatch {
		return nil, connect.NewError(connect.CodeUnimplemented, errors.New("no ReportBatch"))
	}
	l.record(fmt.Sprintf("batch of %d", len(req.Msg.GetReports())))
	for _, r := range req.Msg.GetReports() {
		if r.GetError() == "invalid" {
			return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("reports[1].error: too long"))
		}
	}
	out := &cairnv1.ReportBatchResponse{}
	for _, r := range req.Msg.GetReports() {
		res := &cairnv1.ReportResult{Counted: true, Outcome: cairnv1.ReportOutcome_REPORT_OUTCOME_COUNTED}
		switch r.GetError() {
		case "bad":
			res = &cairnv1.ReportResult{Outcome: cairnv1.ReportOutcome_REPORT_OUTCOME_REFUSED, Refusal: cairnv1.Refusal_REFUSAL_FAILED_PRECONDITION, Message: "refused"}
		case "stale":
			res = &cairnv1.ReportResult{Counted: true, Outcome: cairnv1.ReportOutcome_REPORT_OUTCOME_STALE_LEASE}
		}
		out.Results = append(out.Results, res)
	}
	return connect.NewResponse(out), nil
}

func (l *leader) got() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.calls, ", ")
}

func testReporter(t *testing.T, l *leader) *reporter {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(cairnv1connect.NewLeaseServiceHandler(l))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	w := &Worker{id: "w1", log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		masters: client.New([]string{strings.TrimPrefix(srv.URL, "http://")}, client.WithRetryBudget(time.Second))}
	return newReporter(w, prometheus.NewRegistry())
}

func report(seq uint64, errText string) *cairnv1.ReportRequest {
	return &cairnv1.ReportRequest{WorkerId: "w1", Lease: &cairnv1.TaskRef{JobId: 1, Index: uint32(seq), LeaseId: 1}, Seq: 1, Error: errText}
}

// TestReporterBatches: a lone report goes alone; reports queued while a
// call is on its way go together in the next; each gets its own answer.
func TestReporterBatches(t *testing.T) {
	t.Parallel()
	l := &leader{gate: make(chan struct{})}
	r := testReporter(t, l)
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { first <- r.send(ctx, report(0, "")) }()
	// While the first call waits at the leader, three more queue up.
	poll := func(what string, cond func() bool) {
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("waited 10s for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	poll("the first call to reach the leader", func() bool { return l.arrived.Load() == 1 })
	results := make([]chan error, 3)
	for i := range results {
		results[i] = make(chan error, 1)
		errText := ""
		if i == 1 {
			errText = "bad"
		}
		go func() { results[i] <- r.send(ctx, report(uint64(i+1), errText)) }()
	}
	poll("three reports to queue", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.queue) == 3 })
	l.gate <- struct{}{} // the first call
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	l.gate <- struct{}{} // the batch
	for i, ch := range results {
		err := <-ch
		if (i == 1) != (err != nil) {
			t.Fatalf("report %d: %v", i+1, err)
		}
		if i == 1 && connect.CodeOf(err) != connect.CodeFailedPrecondition {
			t.Fatalf("the refused report: %v, want FailedPrecondition", err)
		}
	}
	if got := l.got(); got != "single, batch of 3" {
		t.Fatalf("calls: %s", got)
	}
	if n, b, sent := testutil.ToFloat64(r.calls.WithLabelValues("Report")), testutil.ToFloat64(r.calls.WithLabelValues("ReportBatch")), testutil.ToFloat64(r.reports); n != 1 || b != 1 || sent != 4 {
		t.Fatalf("metrics: %v Report calls, %v ReportBatch calls, %v reports; want 1, 1, 4", n, b, sent)
	}
}

// TestReporterFallsBackToSingleCalls: masters without ReportBatch get one
// call per report; so does a batch refused as a whole for one invalid
// report, so that only that report is refused.
func TestReporterFallsBackToSingleCalls(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		l         *leader
		second    string
		wantCode  connect.Code
		wantCalls string
	}{
		{"no ReportBatch", &leader{noBatch: true}, "bad", connect.CodeFailedPrecondition, "single, single"},
		{"one invalid report", &leader{}, "invalid", connect.CodeInvalidArgument, "batch of 2, single, single"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := testReporter(t, tc.l)
			batch := []pendingReport{
				{ctx: context.Background(), req: report(1, ""), done: make(chan error, 1)},
				{ctx: context.Background(), req: report(2, tc.second), done: make(chan error, 1)},
			}
			r.sendBatch(batch)
			if err := <-batch[0].done; err != nil {
				t.Fatalf("the good report: %v", err)
			}
			if err := <-batch[1].done; connect.CodeOf(err) != tc.wantCode {
				t.Fatalf("the refused report: %v, want %v", err, tc.wantCode)
			}
			if got := tc.l.got(); got != tc.wantCalls {
				t.Fatalf("calls: %s, want %s", got, tc.wantCalls)
			}
		})
	}
}

// TestStaleLeaseStopsTheWork: a report counted under a lease that is no
// longer current answers errStaleLease (a lost lease) in a batch and alone,
// and sendReport acknowledges its deltas (they were added) instead of
// sending it again.
func TestStaleLeaseStopsTheWork(t *testing.T) {
	t.Parallel()
	for _, noBatch := range []bool{false, true} {
		t.Run(fmt.Sprintf("noBatch=%v", noBatch), func(t *testing.T) {
			t.Parallel()
			r := testReporter(t, &leader{noBatch: noBatch})
			batch := []pendingReport{
				{ctx: context.Background(), req: report(1, ""), done: make(chan error, 1)},
				{ctx: context.Background(), req: report(2, "stale"), done: make(chan error, 1)},
			}
			r.sendBatch(batch)
			if err := <-batch[0].done; err != nil {
				t.Fatalf("the current lease's report: %v", err)
			}
			if err := <-batch[1].done; !errors.Is(err, errStaleLease) || !errors.Is(err, errLeaseLost) {
				t.Fatalf("the stale lease's report: %v, want errStaleLease (a lost lease)", err)
			}
			// Through sendReport: acknowledged, not pending, not in flight.
			w := r.w
			w.rep = r
			tl := &tally{}
			tl.add(&cairnv1.Counters{Removed: 3})
			req := report(3, "stale")
			req.Delta = tl.pending()
			tl.inflight = req
			if err := w.sendReport(context.Background(), tl, req); !errors.Is(err, errLeaseLost) {
				t.Fatalf("sendReport: %v, want a lost lease", err)
			}
			if tl.inflight != nil || !proto.Equal(tl.pending(), &cairnv1.Counters{}) {
				t.Fatalf("after a stale-lease answer: inflight %v, pending %v; want none (its deltas were counted)", tl.inflight, tl.pending())
			}
		})
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", maxReportError+10)
	if got := clip(long, maxReportError); utf8.RuneCountInString(got) != maxReportError || !strings.HasSuffix(got, "(cut)") {
		t.Fatalf("clipped to %d characters: ...%s", utf8.RuneCountInString(got), got[len(got)-12:])
	}
	if got := clip("short", maxReportError); got != "short" {
		t.Fatalf("a short error changed: %q", got)
	}
}

// TestReporterSplitsLargeBatches: a queue of reports larger than a call
// should carry goes out in several calls, none above the byte bound.
func TestReporterSplitsLargeBatches(t *testing.T) {
	t.Parallel()
	l := &leader{}
	r := testReporter(t, l)
	big := strings.Repeat("é", maxReportError) // 8 KiB of error text
	var ps []pendingReport
	for i := range 200 {
		p := pendingReport{ctx: context.Background(), req: report(uint64(i), big), done: make(chan error, 1)}
		ps = append(ps, p)
	}
	r.queue, r.sending = ps, true
	r.drain()
	total := 0
	for _, call := range strings.Split(l.got(), ", ") {
		var n int
		if _, err := fmt.Sscanf(call, "batch of %d", &n); err != nil {
			t.Fatalf("call %q is not a batch", call)
		}
		if n*proto.Size(ps[0].req) > maxReportBatchBytes {
			t.Fatalf("a batch of %d reports of %d bytes each", n, proto.Size(ps[0].req))
		}
		total += n
	}
	if total != 200 {
		t.Fatalf("%d reports sent of 200 (calls: %s)", total, l.got())
	}
	for i, p := range ps {
		if err := <-p.done; err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
	}
}
