package master

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/jobs"
	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// jobService serves JobService: starting and stopping jobs run on the
// leader; reads come from this master's state.
type jobService struct{ m *Master }

var _ cairnv1connect.JobServiceHandler = (*jobService)(nil)

// planJob fills in a spec's defaults by the current map cur and returns
// the workers that get a task and, per worker left out, why. workers are
// every worker the journal knows. It reads nothing else: the spec, the map
// and the workers decide.
func planJob(spec *cairnv1.JobSpec, cur *cairnv1.ClusterMap, workers []*cairnv1.Worker) ([]string, map[string]string, error) {
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
	var active []string
	for _, w := range cur.GetWorkers() {
		active = append(active, w.GetId())
	}
	errs := map[string]string{}
	if want := spec.GetWorkers(); len(want) > 0 {
		var chosen []string
		for _, w := range want {
			if !slices.Contains(active, w) {
				return nil, nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("worker %s is not ACTIVE in the map at epoch %d", w, cur.GetEpoch()))
			}
			chosen = append(chosen, w)
		}
		return chosen, errs, nil
	}
	for _, w := range workers {
		switch w.GetState() {
		case cairnv1.WorkerState_WORKER_STATE_ACTIVE, cairnv1.WorkerState_WORKER_STATE_REMOVED:
		default:
			errs[w.GetId()] = fmt.Sprintf("worker is %s: no task (it is not in the map at epoch %d)", stateLabel(w.GetState()), cur.GetEpoch())
		}
	}
	return active, errs, nil
}

// startJob journals a job (or finds the equal running one).
func (m *Master) startJob(ctx context.Context, spec *cairnv1.JobSpec, by string, limit uint32, extra ...*cairnv1.Event) (*cairnv1.StartJobResponse, error) {
	st := m.j.State()
	all, err := st.Workers()
	if err != nil {
		return nil, internal(err)
	}
	workers, errs, err := planJob(spec, st.ClusterMap(), all)
	if err != nil {
		return nil, err
	}
	if spec.GetKind() == cairnv1.JobKind_JOB_KIND_CLEANUP {
		if spec.GetDontCleanupTime() == nil {
			// The cluster's window, written into the job so that it records
			// the window it ran with and equal requests share a dedup key.
			set, err := st.Settings()
			if err != nil {
				return nil, internal(err)
			}
			spec.DontCleanupTime = set.GetDontCleanupTime()
		} else if spec.GetDontCleanupTime().AsDuration() < 0 {
			return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("spec.dont_cleanup_time: a window of %s; give 0s or more", spec.GetDontCleanupTime().AsDuration()))
		}
		if err := m.refuseBeside(spec, cairnv1.JobKind_JOB_KIND_REBALANCE, cairnv1.JobKind_JOB_KIND_CLEANUP); err != nil {
			return nil, err
		}
	}
	ev := fromCaller(ctx, jobStarted(spec, workers, cmp.Or(limit, m.cfg.DeliveryLimit), by))
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
	j, _ := r.Record.(*cairnv1.Job)
	if r.Repeat {
		errs = map[string]string{}
	} else {
		m.metrics.jobsStarted.WithLabelValues(kindLabel(spec.GetKind())).Inc()
		m.log.Info("job started", "job", j.GetId(), "kind", kindLabel(spec.GetKind()), "tasks", j.GetTasks(), "requested_by", j.GetRequestedBy(), "epoch", spec.GetEpoch())
	}
	return &cairnv1.StartJobResponse{Job: j, Created: !r.Repeat, Errors: errs}, nil
}

// jobStarted is the event that starts a job of spec with a task for each
// of workers (planJob's).
func jobStarted(spec *cairnv1.JobSpec, workers []string, limit uint32, by string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_JobStarted{JobStarted: &cairnv1.JobStarted{
		Spec: spec, DedupKey: jobs.DedupKey(spec), Workers: workers, DeliveryLimit: limit, RequestedBy: cmp.Or(by, "operator")}}}
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
	return onLeader(ctx, s.m, req, s.startJob)
}

func (s *jobService) startJob(ctx context.Context, msg *cairnv1.StartJobRequest) (*cairnv1.StartJobResponse, error) {
	// The caller's token names who started it; without one (--insecure),
	// what the caller says.
	return s.m.startJob(ctx, proto.Clone(msg.GetSpec()).(*cairnv1.JobSpec), cmp.Or(callerName(ctx), msg.GetRequestedBy()), msg.GetDeliveryLimit())
}

func (s *jobService) StopJob(ctx context.Context, req *connect.Request[cairnv1.StopJobRequest]) (*connect.Response[cairnv1.StopJobResponse], error) {
	return onLeader(ctx, s.m, req, s.stopJob)
}

func (s *jobService) stopJob(ctx context.Context, msg *cairnv1.StopJobRequest) (*cairnv1.StopJobResponse, error) {
	if msg.GetId() == 0 && msg.GetKind() == cairnv1.JobKind_JOB_KIND_UNSPECIFIED {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("say which job to stop: an id, or a kind to stop every running job of it"))
	}
	r, err := s.m.proposeOne(ctx, "stop the job", fromCaller(ctx, &cairnv1.Event{Kind: &cairnv1.Event_JobStopped{JobStopped: &cairnv1.JobStopped{
		JobId: msg.GetId(), Kind: msg.GetKind(), Reason: cmp.Or(msg.GetReason(), "stopped by an operator")}}}))
	if err != nil {
		return nil, err
	}
	if r.Value > 0 {
		s.m.log.Info("jobs stopped", "job", msg.GetId(), "kind", kindLabel(msg.GetKind()), "stopped", r.Value)
	}
	return &cairnv1.StopJobResponse{Stopped: uint32(r.Value)}, nil
}

// jobAndTasks reads a job and its tasks from this master's state.
func (s *jobService) jobAndTasks(id uint64) (*cairnv1.Job, []*cairnv1.Task, error) {
	st := s.m.j.State()
	j, found, err := st.Job(id)
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
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&cairnv1.GetJobResponse{Job: j, Tasks: tasks}), nil
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

// watchJobEvery is the shortest time between two updates of WatchJob,
// however busy the journal is.
const watchJobEvery = 100 * time.Millisecond

func (s *jobService) WatchJob(ctx context.Context, req *connect.Request[cairnv1.WatchJobRequest], stream *connect.ServerStream[cairnv1.WatchJobResponse]) error {
	var last *cairnv1.WatchJobResponse
	for {
		changed := s.m.j.State().Changed()
		j, tasks, err := s.jobAndTasks(req.Msg.GetId())
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
			return s.m.errShuttingDown("watch the job")
		case <-changed:
		}
		select { // at most one update per watchJobEvery
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(watchJobEvery):
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
	return onLeader(ctx, s.m, req, s.updateSetting)
}

func (s *jobService) updateSetting(ctx context.Context, msg *cairnv1.UpdateSettingRequest) (*cairnv1.UpdateSettingResponse, error) {
	if _, _, err := s.m.propose(ctx, "change setting "+msg.GetName(), fromCaller(ctx, &cairnv1.Event{Kind: &cairnv1.Event_SettingChanged{
		SettingChanged: &cairnv1.SettingChanged{Name: msg.GetName(), Value: msg.GetValue()}}})); err != nil {
		return nil, err
	}
	set, err := s.m.j.State().Settings()
	if err != nil {
		return nil, internal(err)
	}
	s.m.log.Info("setting changed", "name", msg.GetName(), "value", msg.GetValue())
	return &cairnv1.UpdateSettingResponse{Settings: set}, nil
}

func (s *jobService) ClearStale(ctx context.Context, req *connect.Request[cairnv1.ClearStaleRequest]) (*connect.Response[cairnv1.ClearStaleResponse], error) {
	return onLeader(ctx, s.m, req, s.clearStale)
}

// clearStale starts the cleanup on every ACTIVE worker. While a cleanup
// submitted earlier runs, it starts nothing and answers as the seed does:
// per worker that has not finished that job, ClearStaleRunning.
func (s *jobService) clearStale(ctx context.Context, msg *cairnv1.ClearStaleRequest) (*cairnv1.ClearStaleResponse, error) {
	if running, err := s.m.runningClearStale(); err != nil || running != nil {
		return running, err
	}
	resp, err := s.m.startJob(ctx, &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_CLEANUP, Force: msg.GetForce()}, cmp.Or(callerName(ctx), "clear-stale"), 0)
	if err != nil {
		return nil, err
	}
	if !resp.GetCreated() { // an equal one started between the look and the proposal
		return s.m.stillRunning([]*cairnv1.Job{resp.GetJob()})
	}
	return &cairnv1.ClearStaleResponse{Errors: resp.GetErrors(), Job: resp.GetJob(), Created: true}, nil
}

// ClearStaleRunning is the seed's answer, per worker, to a clear-stale
// asked for while one submitted earlier has not finished there; the
// answer adds the running job's id, as in "... running (job 7)".
const ClearStaleRunning = "a job submitted earlier has not finished running"

// runningClearStale is clear-stale's answer while cleanups run (nil when
// none does): see stillRunning.
func (m *Master) runningClearStale() (*cairnv1.ClearStaleResponse, error) {
	running, err := m.j.State().RunningJobs(cairnv1.JobKind_JOB_KIND_CLEANUP)
	if err != nil {
		return nil, internal(err)
	}
	if len(running) == 0 {
		return nil, nil
	}
	return m.stillRunning(running)
}

// stillRunning answers a clear-stale that starts nothing because the
// cleanups running are not finished: errors names each worker whose task
// in one of them is not final, with ClearStaleRunning and that job's id;
// job is the oldest of them; created is false.
func (m *Master) stillRunning(running []*cairnv1.Job) (*cairnv1.ClearStaleResponse, error) {
	slices.SortFunc(running, func(a, b *cairnv1.Job) int { return cmp.Compare(a.GetId(), b.GetId()) })
	errs := map[string]string{}
	for _, j := range running {
		tasks, err := m.j.State().Tasks(j.GetId())
		if err != nil {
			return nil, internal(err)
		}
		for _, t := range tasks {
			if _, named := errs[t.GetWorkerId()]; !named && t.GetWorkerId() != "" && !jobs.Final(t.GetState()) {
				errs[t.GetWorkerId()] = fmt.Sprintf("%s (job %d)", ClearStaleRunning, j.GetId())
			}
		}
	}
	return &cairnv1.ClearStaleResponse{Errors: errs, Job: running[0], Created: false}, nil
}

func (s *jobService) StopClearStale(ctx context.Context, req *connect.Request[cairnv1.StopClearStaleRequest]) (*connect.Response[cairnv1.StopClearStaleResponse], error) {
	return onLeader(ctx, s.m, req, s.stopClearStale)
}

func (s *jobService) stopClearStale(ctx context.Context, _ *cairnv1.StopClearStaleRequest) (*cairnv1.StopClearStaleResponse, error) {
	r, err := s.m.proposeOne(ctx, "stop clear-stale", fromCaller(ctx, &cairnv1.Event{Kind: &cairnv1.Event_JobStopped{JobStopped: &cairnv1.JobStopped{
		Kind: cairnv1.JobKind_JOB_KIND_CLEANUP, Reason: "clear-stale stopped"}}}))
	if err != nil {
		return nil, err
	}
	return &cairnv1.StopClearStaleResponse{Stopped: uint32(r.Value)}, nil
}

// kindLabel is the short upper-case name of a job kind.
func kindLabel(k cairnv1.JobKind) string { return strings.TrimPrefix(k.String(), "JOB_KIND_") }
