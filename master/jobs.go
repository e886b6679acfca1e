package master

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairnhq/cairn/fsm"
	"github.com/cairnhq/cairn/jobs"
	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// jobService serves JobService: starting and stopping are journaled (on
// the leader); reads come from this master's state.
type jobService struct{ m *Master }

var _ cairnv1connect.JobServiceHandler = (*jobService)(nil)

func internal(err error) error { return connect.NewError(connect.CodeInternal, err) }

// planJob fills in a spec's defaults and returns the workers that get a
// task and, per worker left out, why.
func (m *Master) planJob(spec *cairnv1.JobSpec) ([]string, map[string]string, error) {
	st := m.j.State()
	cur := st.ClusterMap()
	switch spec.GetKind() {
	case cairnv1.JobKind_JOB_KIND_UNSPECIFIED:
		return nil, nil, connect.NewError(connect.CodeInvalidArgument, errors.New("spec.kind: say which job to start (REBALANCE, CLEANUP, FREE or PERSIST)"))
	case cairnv1.JobKind_JOB_KIND_REBALANCE:
		switch {
		case spec.GetEpoch() == 0:
			spec.Epoch = cur.GetEpoch()
		case spec.GetEpoch() != cur.GetEpoch():
			return nil, nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("a rebalance runs by the current map, epoch %d, not epoch %d", cur.GetEpoch(), spec.GetEpoch()))
		}
	case cairnv1.JobKind_JOB_KIND_CLEANUP, cairnv1.JobKind_JOB_KIND_FREE:
		spec.Epoch = cur.GetEpoch() // what the task owns is judged by the map at the start
	case cairnv1.JobKind_JOB_KIND_PERSIST:
		p, err := cleanPath(spec.GetPath())
		if err != nil {
			return nil, nil, err
		}
		spec.Path = p
		return []string{""}, map[string]string{}, nil
	}
	if spec.GetPrefix() != "" {
		p, err := cleanPath(spec.GetPrefix())
		if err != nil {
			return nil, nil, err
		}
		spec.Prefix = p
	}
	for i, p := range spec.GetPaths() {
		c, err := persistence.CleanPath(p)
		if err != nil {
			return nil, nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("spec.paths[%d]: %w", i, err))
		}
		spec.Paths[i] = c
	}
	cm := cur
	if spec.GetEpoch() != 0 && spec.GetEpoch() != cur.GetEpoch() {
		var found bool
		var err error
		if cm, found, err = st.ClusterMapAt(spec.GetEpoch()); err != nil || !found {
			return nil, nil, internal(fmt.Errorf("map at epoch %d: found %t: %v", spec.GetEpoch(), found, err))
		}
	}
	var workers []string
	for _, w := range cm.GetWorkers() {
		workers = append(workers, w.GetId())
	}
	errs := map[string]string{}
	if want := spec.GetWorkers(); len(want) > 0 {
		in := map[string]bool{}
		for _, w := range workers {
			in[w] = true
		}
		workers = nil
		for _, w := range want {
			if !in[w] {
				return nil, nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("worker %s is not ACTIVE in the map at epoch %d", w, cm.GetEpoch()))
			}
			workers = append(workers, w)
		}
		return workers, errs, nil
	}
	all, err := st.Workers()
	if err != nil {
		return nil, nil, internal(err)
	}
	for _, w := range all {
		switch w.GetState() {
		case cairnv1.WorkerState_WORKER_STATE_ACTIVE, cairnv1.WorkerState_WORKER_STATE_REMOVED:
		default:
			errs[w.GetId()] = fmt.Sprintf("worker is %s: no task (it is not in the map at epoch %d)", stateLabel(w.GetState()), cm.GetEpoch())
		}
	}
	return workers, errs, nil
}

// startJob journals a job (or finds the equal running one).
func (m *Master) startJob(ctx context.Context, spec *cairnv1.JobSpec, by string, limit uint32, extra ...*cairnv1.Event) (*cairnv1.StartJobResponse, error) {
	workers, errs, err := m.planJob(spec)
	if err != nil {
		return nil, err
	}
	if spec.GetKind() == cairnv1.JobKind_JOB_KIND_CLEANUP {
		if err := m.refuseBeside(spec, cairnv1.JobKind_JOB_KIND_REBALANCE, cairnv1.JobKind_JOB_KIND_CLEANUP); err != nil {
			return nil, err
		}
	}
	ev := &cairnv1.Event{Kind: &cairnv1.Event_JobStarted{JobStarted: &cairnv1.JobStarted{
		Spec: spec, DedupKey: jobs.DedupKey(spec), Workers: workers, DeliveryLimit: cmp.Or(limit, m.cfg.DeliveryLimit), RequestedBy: cmp.Or(by, "operator")}}}
	res, _, err := m.j.Propose(ctx, append(extra, ev)...)
	if err != nil {
		return nil, journalErr("start the job", err)
	}
	for _, r := range res {
		if err := resultErr(r); err != nil {
			return nil, err
		}
	}
	r := res[len(res)-1]
	j, found, err := m.j.State().Job(r.Value)
	if err != nil || !found {
		return nil, internal(fmt.Errorf("read job %d after starting it: found %t: %v", r.Value, found, err))
	}
	if r.Repeat {
		errs = map[string]string{}
	} else {
		m.metrics.jobsStarted.WithLabelValues(kindLabel(spec.GetKind())).Inc()
		m.log.Info("job started", "job", j.GetId(), "kind", kindLabel(spec.GetKind()), "tasks", j.GetTasks(), "requested_by", j.GetRequestedBy(), "epoch", spec.GetEpoch())
	}
	return &cairnv1.StartJobResponse{Job: j, Created: !r.Repeat, Errors: errs}, nil
}

// refuseBeside refuses a job while a job of one of kinds runs that is not
// the same job.
func (m *Master) refuseBeside(spec *cairnv1.JobSpec, kinds ...cairnv1.JobKind) error {
	key := jobs.DedupKey(spec)
	for _, k := range kinds {
		running, err := m.j.State().RunningJobs(k)
		if err != nil {
			return internal(err)
		}
		for _, j := range running {
			if jobs.DedupKey(j.GetSpec()) != key {
				return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("%s job %d is running; wait for it (cairn job wait %d) or stop it first",
					kindLabel(k), j.GetId(), j.GetId()))
			}
		}
	}
	return nil
}

func (s *jobService) StartJob(ctx context.Context, req *connect.Request[cairnv1.StartJobRequest]) (*connect.Response[cairnv1.StartJobResponse], error) {
	resp, err := s.m.startJob(ctx, proto.Clone(req.Msg.GetSpec()).(*cairnv1.JobSpec), req.Msg.GetRequestedBy(), req.Msg.GetDeliveryLimit())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

func (s *jobService) StopJob(ctx context.Context, req *connect.Request[cairnv1.StopJobRequest]) (*connect.Response[cairnv1.StopJobResponse], error) {
	msg := req.Msg
	if msg.GetId() == 0 && msg.GetKind() == cairnv1.JobKind_JOB_KIND_UNSPECIFIED {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("say which job to stop: an id, or a kind to stop every running job of it"))
	}
	r, err := s.m.proposeOne(ctx, "stop the job", withRequestID(req.Header(), &cairnv1.Event{Kind: &cairnv1.Event_JobStopped{JobStopped: &cairnv1.JobStopped{
		JobId: msg.GetId(), Kind: msg.GetKind(), Reason: cmp.Or(msg.GetReason(), "stopped by an operator")}}}))
	if err != nil {
		return nil, err
	}
	if r.Value > 0 {
		s.m.log.Info("jobs stopped", "job", msg.GetId(), "kind", kindLabel(msg.GetKind()), "stopped", r.Value)
	}
	return connect.NewResponse(&cairnv1.StopJobResponse{Stopped: uint32(r.Value)}), nil
}

func (s *jobService) jobAndTasks(id uint64) (*cairnv1.Job, []*cairnv1.Task, error) {
	st := s.m.j.State()
	j, found, err := st.Job(id)
	// A job the leader just started may not have reached this master yet:
	// wait a little for an id this master has not seen handed out.
	deadline := time.Now().Add(2 * time.Second)
	for err == nil && !found {
		changed := st.Changed()
		last, lerr := st.LastJobID()
		if lerr != nil || id <= last || time.Now().After(deadline) {
			break
		}
		select {
		case <-changed:
		case <-time.After(time.Until(deadline)):
		case <-s.m.stop:
			deadline = time.Now()
		}
		j, found, err = st.Job(id)
	}
	if err != nil {
		return nil, nil, internal(err)
	}
	if !found {
		return nil, nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("job %d does not exist (finished jobs are kept for the retention period only; cairn job show lists them)", id))
	}
	tasks, err := st.Tasks(id)
	if err != nil {
		return nil, nil, internal(err)
	}
	return j, tasks, nil
}

func (s *jobService) GetJob(ctx context.Context, req *connect.Request[cairnv1.GetJobRequest]) (*connect.Response[cairnv1.GetJobResponse], error) {
	j, tasks, err := s.jobAndTasks(req.Msg.GetId())
	if connect.CodeOf(err) == connect.CodeNotFound && req.Header().Get(forwardedHeader) == "" {
		// A follower far behind (one that just restarted, say) may not have
		// a job the leader started moments ago: the leader knows.
		if resp, lerr := s.fromLeader(ctx, req.Msg.GetId()); lerr == nil {
			return connect.NewResponse(resp), nil
		}
	}
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&cairnv1.GetJobResponse{Job: j, Tasks: tasks}), nil
}

// fromLeader asks the leader for job id (an error when this master is the
// leader, or none is known).
func (s *jobService) fromLeader(ctx context.Context, id uint64) (*cairnv1.GetJobResponse, error) {
	addr := s.m.leaderAPI()
	if addr == "" {
		return nil, errors.New("no other leader to ask")
	}
	req := connect.NewRequest(&cairnv1.GetJobRequest{Id: id})
	req.Header().Set(forwardedHeader, s.m.cfg.ID)
	ctx, cancel := context.WithTimeout(ctx, s.m.cfg.ForwardHold)
	defer cancel()
	resp, err := cairnv1connect.NewJobServiceClient(s.m.fwd1, "http://"+addr).GetJob(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func (s *jobService) ListJobs(ctx context.Context, req *connect.Request[cairnv1.ListJobsRequest]) (*connect.Response[cairnv1.ListJobsResponse], error) {
	var before uint64
	if tok := req.Msg.GetPageToken(); tok != "" {
		v, err := strconv.ParseUint(tok, 10, 64)
		if err != nil || v == 0 {
			return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("page_token %q: pass the next_page_token of a previous response", tok))
		}
		before = v
	}
	list, next, err := s.m.j.State().ListJobs(req.Msg.GetKind(), req.Msg.GetState(), before, int(req.Msg.GetPageSize()))
	if err != nil {
		return nil, internal(err)
	}
	resp := &cairnv1.ListJobsResponse{Jobs: list}
	if next != 0 {
		resp.NextPageToken = strconv.FormatUint(next, 10)
	}
	return connect.NewResponse(resp), nil
}

func (s *jobService) WatchJob(ctx context.Context, req *connect.Request[cairnv1.WatchJobRequest], stream *connect.ServerStream[cairnv1.WatchJobResponse]) error {
	var last *cairnv1.WatchJobResponse
	leaderHasIt := false
	var behindSince time.Time
	for {
		changed := s.m.j.State().Changed()
		j, tasks, err := s.jobAndTasks(req.Msg.GetId())
		if connect.CodeOf(err) == connect.CodeNotFound && last == nil && !leaderHasIt {
			// Behind the leader (see GetJob): if the leader has the job,
			// wait here until this master has applied it too.
			_, lerr := s.fromLeader(ctx, req.Msg.GetId())
			leaderHasIt = lerr == nil
		}
		if connect.CodeOf(err) == connect.CodeNotFound && leaderHasIt && last == nil {
			if behindSince.IsZero() {
				behindSince = time.Now()
			} else if time.Since(behindSince) > s.m.cfg.ForwardHold {
				return connect.NewError(connect.CodeUnavailable, fmt.Errorf("this master is behind the leader and has not applied job %d within %s; watch on another master", req.Msg.GetId(), s.m.cfg.ForwardHold))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.m.stop:
				return connect.NewError(connect.CodeUnavailable, errors.New("the master is shutting down; watch again on another master"))
			case <-changed:
			case <-time.After(s.m.cfg.ForwardHold):
			}
			continue
		}
		if err != nil {
			return err
		}
		msg := &cairnv1.WatchJobResponse{Job: j, Tasks: tasks}
		if last == nil || !proto.Equal(last, msg) {
			if err := stream.Send(msg); err != nil {
				return err
			}
			last = msg
		}
		if j.GetState() != cairnv1.JobState_JOB_STATE_RUNNING {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.m.stop:
			return connect.NewError(connect.CodeUnavailable, errors.New("the master is shutting down; watch again on another master"))
		case <-changed:
		}
		// At most ten updates a second, however busy the journal is.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *jobService) GetSettings(ctx context.Context, _ *connect.Request[cairnv1.GetSettingsRequest]) (*connect.Response[cairnv1.GetSettingsResponse], error) {
	set, err := s.m.j.State().Settings()
	if err != nil {
		return nil, internal(err)
	}
	return connect.NewResponse(&cairnv1.GetSettingsResponse{Settings: set}), nil
}

func (s *jobService) UpdateSetting(ctx context.Context, req *connect.Request[cairnv1.UpdateSettingRequest]) (*connect.Response[cairnv1.UpdateSettingResponse], error) {
	if _, _, err := s.m.propose(ctx, "change setting "+req.Msg.GetName(), withRequestID(req.Header(), &cairnv1.Event{Kind: &cairnv1.Event_SettingChanged{
		SettingChanged: &cairnv1.SettingChanged{Name: req.Msg.GetName(), Value: req.Msg.GetValue()}}})); err != nil {
		return nil, err
	}
	set, err := s.m.j.State().Settings()
	if err != nil {
		return nil, internal(err)
	}
	s.m.log.Info("setting changed", "name", req.Msg.GetName(), "value", req.Msg.GetValue())
	return connect.NewResponse(&cairnv1.UpdateSettingResponse{Settings: set}), nil
}

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
	msg := req.Msg
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
				if r.Code != fsm.OK {
					continue // leased by a concurrent call, or cancelled meanwhile
				}
				t, _, err := st.Task(pending[i].GetJobId(), pending[i].GetIndex())
				if err != nil {
					return nil, internal(err)
				}
				resp.Tasks = append(resp.Tasks, &cairnv1.LeasedTask{Task: t, Spec: js[i].GetSpec(), Ttl: durationpb.New(ttl)})
			}
			if len(resp.Tasks) > 0 {
				s.m.metrics.leases.Add(float64(len(resp.Tasks)))
				return connect.NewResponse(resp), nil
			}
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return connect.NewResponse(&cairnv1.LeaseResponse{}), nil
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
			return connect.NewResponse(&cairnv1.LeaseResponse{}), nil
		case <-changed:
		case <-timer.C:
		}
		timer.Stop()
	}
}

func (s *leaseService) Renew(ctx context.Context, req *connect.Request[cairnv1.RenewRequest]) (*connect.Response[cairnv1.RenewResponse], error) {
	ttl := s.m.cfg.LeaseTTL
	expiry := timestamppb.New(time.Now().Add(ttl))
	refs := req.Msg.GetLeases()
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
	return connect.NewResponse(resp), nil
}

func (s *leaseService) Report(ctx context.Context, req *connect.Request[cairnv1.ReportRequest]) (*connect.Response[cairnv1.ReportResponse], error) {
	res, _, err := s.m.j.Propose(ctx, reportEvent(req.Msg))
	if err != nil {
		return nil, journalErr("report", err)
	}
	if err := resultErr(res[0]); err != nil {
		return nil, err
	}
	r, err := s.reported(req.Msg, res[0])
	if err != nil {
		return nil, internal(err)
	}
	return connect.NewResponse(&cairnv1.ReportResponse{Task: r.GetTask(), Counted: r.GetCounted()}), nil
}

func (s *leaseService) ReportBatch(ctx context.Context, req *connect.Request[cairnv1.ReportBatchRequest]) (*connect.Response[cairnv1.ReportBatchResponse], error) {
	reps := req.Msg.GetReports()
	evs := make([]*cairnv1.Event, len(reps))
	for i, r := range reps {
		if r.GetWorkerId() != req.Msg.GetWorkerId() {
			return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("reports[%d].worker_id: %q is not the batch's worker %q", i, r.GetWorkerId(), req.Msg.GetWorkerId()))
		}
		evs[i] = reportEvent(r)
	}
	res, _, err := s.m.j.Propose(ctx, evs...)
	if err != nil {
		return nil, journalErr("report", err)
	}
	out := &cairnv1.ReportBatchResponse{Results: make([]*cairnv1.ReportResult, len(reps))}
	for i, r := range reps {
		var err error
		if res[i].Code != fsm.OK {
			out.Results[i] = &cairnv1.ReportResult{Code: connectCode(res[i].Code).String(), Message: res[i].Message}
		} else if out.Results[i], err = s.reported(r, res[i]); err != nil {
			out.Results[i] = &cairnv1.ReportResult{Code: connect.CodeInternal.String(), Message: err.Error()}
		}
	}
	return connect.NewResponse(out), nil
}

// reportEvent is the event that journals a report.
func reportEvent(msg *cairnv1.ReportRequest) *cairnv1.Event {
	l := msg.GetLease()
	return &cairnv1.Event{Kind: &cairnv1.Event_TaskReported{TaskReported: &cairnv1.TaskReported{
		JobId: l.GetJobId(), Index: l.GetIndex(), LeaseId: l.GetLeaseId(), Seq: msg.GetSeq(), Delta: msg.GetDelta(),
		Final: msg.GetFinal(), Error: msg.GetError(), LocalDone: msg.GetLocalDone(), UfsMtime: msg.GetUfsMtime(), NoCopy: msg.GetNoCopy()}}}
}

// reported answers a report the journal accepted (r is OK): counts it in
// the metrics and returns the task as it now stands; the error is a
// failure to read the task.
func (s *leaseService) reported(msg *cairnv1.ReportRequest, r fsm.Result) (*cairnv1.ReportResult, error) {
	outcome := "counted"
	if r.Repeat {
		outcome = "repeat"
	} else if r.Message != "" {
		outcome = "stale_lease"
	}
	s.m.metrics.reports.WithLabelValues(outcome).Inc()
	l := msg.GetLease()
	t, _, err := s.m.j.State().Task(l.GetJobId(), l.GetIndex())
	if err != nil {
		return nil, err
	}
	return &cairnv1.ReportResult{Task: t, Counted: !r.Repeat}, nil
}

// kindLabel is the short upper-case name of a job kind.
func kindLabel(k cairnv1.JobKind) string { return strings.TrimPrefix(k.String(), "JOB_KIND_") }

// retry proposes evs until it succeeds or ctx ends, and returns the results.
func (m *Master) retry(ctx context.Context, what string, evs ...*cairnv1.Event) ([]fsm.Result, bool) {
	for {
		res, _, err := m.j.Propose(ctx, evs...)
		if err == nil {
			return res, true
		}
		m.log.Warn(what, "err", err)
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runLeases is the leader's lease controller: it first gives every live
// lease one TTL from now (a new leader cannot know when the last renewals
// reached its predecessor), then expires leases whose time has passed.
func (m *Master) runLeases(ctx context.Context) {
	ttl := m.cfg.LeaseTTL
	res, ok := m.retry(ctx, "extend live leases", &cairnv1.Event{Kind: &cairnv1.Event_LeasesExtended{LeasesExtended: &cairnv1.LeasesExtended{Ttl: durationpb.New(ttl)}}})
	if !ok {
		return
	}
	if n := res[0].Value; n > 0 {
		m.log.Info("new leader extended live leases by one TTL", "leases", n, "ttl", ttl)
	}
	for range ticks(ctx, max(ttl/20, 50*time.Millisecond)) {
		leased, err := m.j.State().LeasedTasks()
		if err != nil {
			m.log.Error("lease controller: read leases", "err", err)
			continue
		}
		now := time.Now()
		var evs []*cairnv1.Event
		for _, t := range leased {
			if !now.Before(t.GetLeaseExpiry().AsTime()) {
				evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_LeaseExpired{LeaseExpired: &cairnv1.LeaseExpired{
					JobId: t.GetJobId(), Index: t.GetIndex(), LeaseId: t.GetLeaseId()}}})
			}
		}
		if len(evs) == 0 {
			continue
		}
		res, _, err := m.j.Propose(ctx, evs...)
		if err != nil {
			m.log.Warn("lease controller: expire leases", "err", err)
			continue
		}
		for i, r := range res {
			if r.Code != fsm.OK {
				continue // renewed or ended meanwhile
			}
			e := evs[i].GetLeaseExpired()
			m.metrics.expired.Inc()
			t, _, _ := m.j.State().Task(e.GetJobId(), e.GetIndex())
			m.log.Warn("lease expired", "job", e.GetJobId(), "task", e.GetIndex(), "lease", e.GetLeaseId(),
				"worker", t.GetLeaseWorker(), "task_state", strings.TrimPrefix(t.GetState().String(), "TASK_STATE_"), "reason", t.GetLastError())
		}
	}
}

// runRebalance is the leader's rebalance controller: whenever the epoch
// moves past the newest epoch a rebalance was started for (and rebalance
// is enabled), it stops the running rebalance and starts one for the
// current map, in one journal entry. Everything it decides on comes from
// the journal, so a new leader picks up where the old one stopped.
func (m *Master) runRebalance(ctx context.Context) {
	st := m.j.State()
	for {
		changed := st.Changed()
		if err := m.rebalanceOnce(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("rebalance controller", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func (m *Master) rebalanceOnce(ctx context.Context) error {
	// This runs on every change of the journal: the cheap test first (the
	// epoch is in memory, the last rebalance's one read), the settings
	// only when a new epoch has no rebalance yet.
	st := m.j.State()
	epoch := st.ClusterMap().GetEpoch()
	last, err := st.LastRebalanceEpoch()
	if err != nil || epoch == 0 || last >= epoch {
		return err
	}
	if set, err := st.Settings(); err != nil || !set.GetRebalanceEnabled() {
		return err
	}
	running, err := st.RunningJobs(cairnv1.JobKind_JOB_KIND_REBALANCE)
	if err != nil {
		return err
	}
	var stops []*cairnv1.Event
	for _, j := range running {
		stops = append(stops, &cairnv1.Event{Kind: &cairnv1.Event_JobStopped{JobStopped: &cairnv1.JobStopped{
			JobId: j.GetId(), Reason: fmt.Sprintf("superseded by epoch %d", epoch)}}})
	}
	resp, err := m.startJob(ctx, &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_REBALANCE, Epoch: epoch}, "rebalance controller", 0, stops...)
	if err != nil {
		return err
	}
	if len(stops) > 0 {
		m.log.Info("a new epoch aborted the running rebalance", "stopped", len(stops), "epoch", epoch, "job", resp.GetJob().GetId())
	}
	return nil
}

// runRetention is the leader's retention controller: it forgets finished
// jobs older than the retention setting.
func (m *Master) runRetention(ctx context.Context) {
	for range ticks(ctx, m.cfg.RetentionInterval) {
		set, err := m.j.State().Settings()
		if err != nil {
			continue
		}
		before := time.Now().Add(-set.GetJobRetention().AsDuration())
		if found, err := m.j.State().HasEndedBefore(before); err != nil || !found {
			continue
		}
		if res, ok := m.retry(ctx, "prune finished jobs", &cairnv1.Event{Kind: &cairnv1.Event_JobsPruned{JobsPruned: &cairnv1.JobsPruned{EndedBefore: timestamppb.New(before)}}}); ok {
			m.log.Info("forgot finished jobs past their retention", "jobs", res[0].Value, "ended_before", before)
		}
	}
}
