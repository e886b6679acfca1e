package master

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairnhq/cairn/fsm"
	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// leaseService serves LeaseService on the leader. Concurrent Lease calls
// claim the tasks they propose, so that many workers asking at once lease
// different tasks instead of racing for the first pending ones.
type leaseService struct {
	m       *Master
	mu      sync.Mutex
	claimed map[[2]uint64]bool // (job, index) proposed for lease, not yet applied
	owners  ownersCache
}

// claim picks up to max pending tasks no concurrent call has claimed, and
// claims them.
func (s *leaseService) claim(worker string, kinds []cairnv1.JobKind, max int) ([]*cairnv1.Task, []*cairnv1.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The owner filter answers the same for one epoch and one set of kinds:
	// that names its verdicts, so a worker's scans skip what it refused.
	st := s.m.j.State()
	cm := st.ClusterMap()
	wantKey := fmt.Sprintf("epoch %d kinds %v", cm.GetEpoch(), kinds)
	tasks, of, err := st.PendingTasks(worker, kinds, max, time.Now(), func(job uint64, index uint32) bool {
		return s.claimed[[2]uint64{job, uint64(index)}]
	}, func(kind cairnv1.JobKind, path string) bool { return s.mayLease(cm, worker, kind, path) }, wantKey)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range tasks {
		s.claimed[[2]uint64{t.GetJobId(), uint64(t.GetIndex())}] = true
	}
	return tasks, of, nil
}

// release drops the claims of tasks whose lease proposal has been applied
// (or failed).
func (s *leaseService) release(tasks []*cairnv1.Task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tasks {
		delete(s.claimed, [2]uint64{t.GetJobId(), uint64(t.GetIndex())})
	}
}

var _ cairnv1connect.LeaseServiceHandler = (*leaseService)(nil)

func (s *leaseService) known(id string) error {
	if _, found, err := s.m.j.State().Worker(id); err != nil {
		return internal(err)
	} else if !found {
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("worker %s is not registered; register it first", id))
	}
	return nil
}

func (s *leaseService) Lease(ctx context.Context, req *connect.Request[cairnv1.LeaseRequest]) (*connect.Response[cairnv1.LeaseResponse], error) {
	return onLeader(ctx, s.m, req, s.lease)
}

// lease is a long poll: it waits up to the request's wait for tasks.
func (s *leaseService) lease(ctx context.Context, msg *cairnv1.LeaseRequest) (*cairnv1.LeaseResponse, error) {
	if err := s.known(msg.GetWorkerId()); err != nil {
		return nil, err
	}
	ttl := s.m.cfg.LeaseTTL
	began := time.Now()
	deadline := began.Add(msg.GetWait().AsDuration())
	st := s.m.j.State()
	for {
		changed := st.Changed()
		pending, js, err := s.claim(msg.GetWorkerId(), msg.GetKinds(), int(msg.GetMaxTasks()))
		if err != nil {
			return nil, internal(err)
		}
		if len(pending) > 0 {
			waited := time.Since(began)
			expiry := timestamppb.New(time.Now().Add(ttl))
			evs := make([]*cairnv1.Event, len(pending))
			for i, t := range pending {
				evs[i] = &cairnv1.Event{Kind: &cairnv1.Event_TaskLeased{TaskLeased: &cairnv1.TaskLeased{
					JobId: t.GetJobId(), Index: t.GetIndex(), WorkerId: msg.GetWorkerId(), Expiry: expiry}}}
			}
			res, _, err := s.m.j.Propose(ctx, evs...)
			s.release(pending)
			if err != nil {
				return nil, journalErr("lease tasks", err)
			}
			resp := &cairnv1.LeaseResponse{Waited: durationpb.New(waited)}
			for i, r := range res {
				t, ok := r.Record.(*cairnv1.Task)
				if r.Code != fsm.OK || !ok {
					continue // leased by a concurrent call, or cancelled meanwhile
				}
				resp.Tasks = append(resp.Tasks, &cairnv1.LeasedTask{Task: t, Spec: js[i].GetSpec(), Ttl: durationpb.New(ttl)})
			}
			if len(resp.Tasks) > 0 {
				s.m.metrics.leases.Add(float64(len(resp.Tasks)))
				return resp, nil
			}
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return &cairnv1.LeaseResponse{}, nil
		}
		// Look again at least twice a second: a task backing off becomes
		// eligible with no change to the journal.
		timer := time.NewTimer(min(wait, 500*time.Millisecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-s.m.stop:
			timer.Stop()
			return &cairnv1.LeaseResponse{}, nil
		case <-changed:
		case <-timer.C:
		}
		timer.Stop()
	}
}

func (s *leaseService) Renew(ctx context.Context, req *connect.Request[cairnv1.RenewRequest]) (*connect.Response[cairnv1.RenewResponse], error) {
	return onLeader(ctx, s.m, req, s.renew)
}

// renew runs on the leader: the new expiry is in leader time.
func (s *leaseService) renew(ctx context.Context, msg *cairnv1.RenewRequest) (*cairnv1.RenewResponse, error) {
	ttl := s.m.cfg.LeaseTTL
	expiry := timestamppb.New(time.Now().Add(ttl))
	refs := msg.GetLeases()
	evs := make([]*cairnv1.Event, len(refs))
	for i, l := range refs {
		evs[i] = &cairnv1.Event{Kind: &cairnv1.Event_LeaseRenewed{LeaseRenewed: &cairnv1.LeaseRenewed{
			JobId: l.GetJobId(), Index: l.GetIndex(), LeaseId: l.GetLeaseId(), Expiry: expiry}}}
	}
	res, _, err := s.m.j.Propose(ctx, evs...)
	if err != nil {
		return nil, journalErr("renew leases", err)
	}
	resp := &cairnv1.RenewResponse{Ttl: durationpb.New(ttl)}
	for i, r := range res {
		resp.Results = append(resp.Results, &cairnv1.RenewResult{Lease: refs[i], Ok: r.Code == fsm.OK, Message: r.Message})
	}
	return resp, nil
}

func (s *leaseService) Report(ctx context.Context, req *connect.Request[cairnv1.ReportRequest]) (*connect.Response[cairnv1.ReportResponse], error) {
	return onLeader(ctx, s.m, req, s.report)
}

// report journals one report. A refusal is the call's error, with the code
// resultErr gives the state machine's; what was applied is an outcome.
func (s *leaseService) report(ctx context.Context, msg *cairnv1.ReportRequest) (*cairnv1.ReportResponse, error) {
	res, _, err := s.m.j.Propose(ctx, reportEvent(msg))
	if err != nil {
		return nil, journalErr("report", err)
	}
	r := s.reported(res[0])
	if r.GetOutcome() == cairnv1.ReportOutcome_REPORT_OUTCOME_REFUSED {
		return nil, resultErr(res[0])
	}
	return &cairnv1.ReportResponse{Task: r.GetTask(), Counted: r.GetCounted(), Outcome: r.GetOutcome()}, nil
}

func (s *leaseService) ReportBatch(ctx context.Context, req *connect.Request[cairnv1.ReportBatchRequest]) (*connect.Response[cairnv1.ReportBatchResponse], error) {
	return onLeader(ctx, s.m, req, s.reportBatch)
}

// reportBatch journals several reports in one entry; each is applied,
// repeated or refused on its own, as report would.
func (s *leaseService) reportBatch(ctx context.Context, msg *cairnv1.ReportBatchRequest) (*cairnv1.ReportBatchResponse, error) {
	reps := msg.GetReports()
	evs := make([]*cairnv1.Event, len(reps))
	for i, r := range reps {
		if r.GetWorkerId() != msg.GetWorkerId() {
			return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("reports[%d].worker_id: %q is not the batch's worker %q", i, r.GetWorkerId(), msg.GetWorkerId()))
		}
		evs[i] = reportEvent(r)
	}
	res, _, err := s.m.j.Propose(ctx, evs...)
	if err != nil {
		return nil, journalErr("report", err)
	}
	out := &cairnv1.ReportBatchResponse{Results: make([]*cairnv1.ReportResult, len(reps))}
	for i := range reps {
		out.Results[i] = s.reported(res[i])
	}
	return out, nil
}

// reportEvent is the event that journals a report.
func reportEvent(msg *cairnv1.ReportRequest) *cairnv1.Event {
	l := msg.GetLease()
	return &cairnv1.Event{Kind: &cairnv1.Event_TaskReported{TaskReported: &cairnv1.TaskReported{
		JobId: l.GetJobId(), Index: l.GetIndex(), LeaseId: l.GetLeaseId(), Seq: msg.GetSeq(), Delta: msg.GetDelta(),
		Final: msg.GetFinal(), Error: msg.GetError(), LocalDone: msg.GetLocalDone(), UfsMtime: msg.GetUfsMtime(), NoCopy: msg.GetNoCopy(),
		UfsEtag: msg.GetUfsEtag(), UfsVersionId: msg.GetUfsVersionId()}}}
}

// reported is what the journal made of one report, counted in the
// metrics: the outcome, and the task as the report left it (from the
// result: nothing is read back).
func (s *leaseService) reported(r fsm.Result) *cairnv1.ReportResult {
	out := &cairnv1.ReportResult{Counted: r.Code == fsm.OK && !r.Repeat}
	out.Task, _ = r.Record.(*cairnv1.Task)
	switch {
	case r.Code != fsm.OK:
		out.Outcome, out.Refusal, out.Message = cairnv1.ReportOutcome_REPORT_OUTCOME_REFUSED, cairnv1.Refusal(connectCode(r.Code)), r.Message
	case r.Repeat:
		out.Outcome = cairnv1.ReportOutcome_REPORT_OUTCOME_REPEAT
	case r.Stale:
		out.Outcome = cairnv1.ReportOutcome_REPORT_OUTCOME_STALE_LEASE
	default:
		out.Outcome = cairnv1.ReportOutcome_REPORT_OUTCOME_COUNTED
	}
	s.m.metrics.reports.WithLabelValues(reportOutcomeLabel(out.Outcome)).Inc()
	return out
}

// reportOutcomeLabel is an outcome's label in cairn_task_reports_total.
func reportOutcomeLabel(o cairnv1.ReportOutcome) string {
	return strings.ToLower(strings.TrimPrefix(o.String(), "REPORT_OUTCOME_"))
}

// ownersCache keeps the placement map of the current epoch for the lease
// service's PERSIST filter.
type ownersCache struct {
	mu    sync.Mutex
	epoch uint64
	pm    *placement.Map
}

// owns reports whether worker owns path under cm.
func (c *ownersCache) owns(cm *cairnv1.ClusterMap, worker, path string) bool {
	c.mu.Lock()
	if c.pm == nil || c.epoch != cm.GetEpoch() {
		pm, err := placement.FromClusterMap(cm)
		if err != nil {
			c.mu.Unlock()
			return false
		}
		c.pm, c.epoch = pm, cm.GetEpoch()
	}
	pm := c.pm
	c.mu.Unlock()
	return pm.IsOwner(worker, path)
}

// mayLease reports whether a worker may lease a task of a job of kind with
// spec path under map cm: a PERSIST task goes only to a worker that owns
// the file (and so holds a replica).
func (s *leaseService) mayLease(cm *cairnv1.ClusterMap, worker string, kind cairnv1.JobKind, path string) bool {
	if kind != cairnv1.JobKind_JOB_KIND_PERSIST {
		return true
	}
	return s.owners.owns(cm, worker, path)
}
