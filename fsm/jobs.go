package fsm

import (
	"bytes"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/cairnhq/cairn/jobs"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// Settings names and defaults.
const (
	SettingRebalanceEnabled = "rebalance.enabled"
	SettingJobRetention     = "jobs.retention"
	SettingCleanupAuto      = "cleanup.auto"
	// SettingPartialCaching: a read of part of a file no owner caches
	// caches the whole file (default true).
	SettingPartialCaching = "cache.partial"
	// SettingDontCleanupTime is the cleanup safety window (AIStore's
	// dont_cleanup_time): a cleanup keeps every copy cached less than this
	// long before its task started.
	SettingDontCleanupTime = "cleanup.dont_cleanup_time"
	// DefaultJobRetention is how long finished jobs are kept by default.
	DefaultJobRetention = 24 * time.Hour
	// DefaultDontCleanupTime is the cleanup safety window by default, as
	// AIStore's.
	DefaultDontCleanupTime = jobs.DefaultDontCleanupTime
)

func (t *txn) job(id uint64) (*cairnv1.Job, *Result) {
	j := &cairnv1.Job{}
	if id == 0 || !t.getProto(jobKey(id), j) {
		r := t.reject(NotFound, "job %d does not exist (finished jobs are kept for the retention period only)", id)
		return nil, &r
	}
	return j, nil
}

func (t *txn) task(job uint64, index uint32) (*cairnv1.Task, *Result) {
	tk := &cairnv1.Task{}
	if !t.getProto(taskKey(job, index), tk) {
		r := t.reject(NotFound, "job %d has no task %d", job, index)
		return nil, &r
	}
	return tk, nil
}

func (t *txn) tasks(job uint64) []*cairnv1.Task {
	var out []*cairnv1.Task
	if err := scanProto(t.b, tasksPrefix(job), func() *cairnv1.Task { return &cairnv1.Task{} },
		func(tk *cairnv1.Task) bool { out = append(out, tk); return true }); err != nil {
		t.fail(err)
	}
	return out
}

// putTask stores a task of job j whose state was before, keeping the
// pending and leased indexes in step; a task that becomes PENDING gets a
// queue entry carrying j's kind and path. j may be nil where the task
// cannot become PENDING (its entry would be empty, and readers would read
// the job instead).
func (t *txn) putTask(j *cairnv1.Job, tk *cairnv1.Task, before cairnv1.TaskState) {
	if before != tk.GetState() {
		switch before {
		case cairnv1.TaskState_TASK_STATE_PENDING:
			t.del(queuedKey(tk.GetWorkerId(), tk.GetJobId(), tk.GetIndex()))
		case cairnv1.TaskState_TASK_STATE_LEASED:
			t.del(leasedKey(tk.GetJobId(), tk.GetIndex()))
		}
		switch tk.GetState() {
		case cairnv1.TaskState_TASK_STATE_PENDING:
			var v []byte
			if j != nil {
				v = queuedValue(j.GetSpec())
			}
			k := queuedKey(tk.GetWorkerId(), tk.GetJobId(), tk.GetIndex())
			t.put(k, v)
			if t.queued == nil {
				t.queued = map[string][]byte{}
			}
			if low, ok := t.queued[tk.GetWorkerId()]; !ok || bytes.Compare(k, low) < 0 {
				t.queued[tk.GetWorkerId()] = k
			}
		case cairnv1.TaskState_TASK_STATE_LEASED:
			t.put(leasedKey(tk.GetJobId(), tk.GetIndex()), nil)
		}
	}
	t.putProto(taskKey(tk.GetJobId(), tk.GetIndex()), tk)
}

// settle ends the job when its tasks are all final, keeping its indexes.
func (t *txn) settle(j *cairnv1.Job) {
	if !jobs.Settle(j, t.tasks(j.GetId()), t.at()) {
		t.putProto(jobKey(j.GetId()), j)
		return
	}
	t.del(dedupKey(jobs.DedupKey(j.GetSpec())))
	t.del(runningKey(j.GetSpec().GetKind(), j.GetId()))
	t.put(endedKey(j.GetEndedTime().AsTime().UnixNano(), j.GetId()), nil)
	t.putProto(jobKey(j.GetId()), j)
}

// taskRefs returns the tasks indexed under prefix, in key order.
func (t *txn) taskRefs(prefix []byte) []taskRef {
	var refs []taskRef
	if err := scan(t.b, prefix, func(k, _ []byte) (bool, error) {
		refs = append(refs, refOf(k[len(prefix):]))
		return true, nil
	}); err != nil {
		t.fail(err)
	}
	return refs
}

func (t *txn) jobStarted(e *cairnv1.JobStarted) Result {
	spec := e.GetSpec()
	if spec.GetKind() == cairnv1.JobKind_JOB_KIND_UNSPECIFIED {
		return t.reject(InvalidArgument, "job kind is unspecified")
	}
	key := e.GetDedupKey()
	if spec.GetKind() == cairnv1.JobKind_JOB_KIND_CLEANUP && spec.GetDontCleanupTime() == nil {
		// The window filled in here is part of the key the job's end
		// clears (settle), so the key is the filled-in spec's.
		key = ""
	}
	if spec.GetKind() == cairnv1.JobKind_JOB_KIND_CLEANUP {
		var rej *Result
		if spec, rej = t.cleanupWindow(spec); rej != nil {
			return *rej
		}
	}
	if key == "" {
		key = jobs.DedupKey(spec)
	}
	if id := u64(t.getRaw(dedupKey(key))); id != 0 {
		r := ok(t.epoch())
		r.Value, r.Repeat = id, true
		if j, rej := t.job(id); rej == nil {
			r.Record = j
		}
		return r
	}
	if spec.GetKind() == cairnv1.JobKind_JOB_KIND_PERSIST {
		if rej := t.persistStarted(spec); rej != nil {
			return *rej
		}
	}
	seen := map[string]bool{}
	for _, w := range e.GetWorkers() {
		if w != "" && seen[w] {
			return t.reject(InvalidArgument, "worker %s is given two tasks of one job", w)
		}
		seen[w] = true
	}
	limit := e.GetDeliveryLimit()
	if limit == 0 {
		limit = jobs.DefaultDeliveryLimit
	}
	id := t.next(keyJobSeq)
	j := &cairnv1.Job{
		Id: id, Spec: spec, State: cairnv1.JobState_JOB_STATE_RUNNING, CreatedTime: t.timestamp(),
		Counters: &cairnv1.Counters{}, Tasks: uint32(len(e.GetWorkers())), DeliveryLimit: limit,
		RequestedBy: e.GetRequestedBy(),
	}
	for i, w := range e.GetWorkers() {
		tk := jobs.NewTask(id, uint32(i), w)
		t.putTask(j, tk, cairnv1.TaskState_TASK_STATE_UNSPECIFIED)
	}
	if spec.GetKind() == cairnv1.JobKind_JOB_KIND_REBALANCE && spec.GetEpoch() > u64(t.getRaw(keyRebalanceEpoch)) {
		t.put(keyRebalanceEpoch, putU64(spec.GetEpoch()))
	}
	t.put(dedupKey(key), putU64(id))
	t.put(runningKey(spec.GetKind(), id), nil)
	if spec.GetKind() == cairnv1.JobKind_JOB_KIND_PERSIST {
		t.put(persistJobKey(spec.GetPath()), putU64(id))
	}
	t.settle(j) // a job without tasks has nothing to do: it succeeds at once
	r := ok(t.epoch())
	r.Value = id
	return r.with(j)
}

func (t *txn) jobStopped(e *cairnv1.JobStopped) Result {
	reason := orDefault(e.GetReason(), "stopped")
	var ids []uint64
	if e.GetJobId() != 0 {
		ids = append(ids, e.GetJobId())
	} else {
		if e.GetKind() == cairnv1.JobKind_JOB_KIND_UNSPECIFIED {
			return t.reject(InvalidArgument, "stop needs a job id or a kind")
		}
		p := runningPrefix(e.GetKind())
		if err := scan(t.b, p, func(k, _ []byte) (bool, error) {
			ids = append(ids, u64(k[len(p):]))
			return true, nil
		}); err != nil {
			t.fail(err)
		}
	}
	stopped := uint64(0)
	for _, id := range ids {
		j, rej := t.job(id)
		if rej != nil {
			if e.GetJobId() != 0 {
				return *rej
			}
			continue
		}
		if j.GetState() != cairnv1.JobState_JOB_STATE_RUNNING {
			continue
		}
		for _, tk := range t.tasks(id) {
			before := tk.GetState()
			if jobs.Cancel(tk, reason, t.at()) {
				t.putTask(j, tk, before)
				t.taskEnded(j, tk, nil)
			}
		}
		j.Reason = reason
		j.StoppedBy = t.actor
		t.settle(j)
		stopped++
	}
	r := ok(t.epoch())
	r.Value = stopped
	return r
}

// taskOf loads a task and its job for a lease event.
func (t *txn) taskOf(job uint64, index uint32) (*cairnv1.Job, *cairnv1.Task, *Result) {
	j, rej := t.job(job)
	if rej != nil {
		return nil, nil, rej
	}
	tk, rej := t.task(job, index)
	if rej != nil {
		return nil, nil, rej
	}
	return j, tk, nil
}

func (t *txn) taskLeased(e *cairnv1.TaskLeased) Result {
	j, tk, rej := t.taskOf(e.GetJobId(), e.GetIndex())
	if rej != nil {
		return *rej
	}
	if e.GetWorkerId() == "" || e.GetExpiry() == nil {
		return t.reject(InvalidArgument, "a lease needs a worker and an expiry")
	}
	before := tk.GetState()
	lease := u64(t.getRaw(keyLeaseSeq)) + 1
	if err := jobs.Lease(tk, e.GetWorkerId(), lease, t.at(), e.GetExpiry().AsTime()); err != nil {
		return t.ruleErr(err)
	}
	t.put(keyLeaseSeq, putU64(lease))
	t.putTask(j, tk, before)
	r := ok(t.epoch())
	r.Value = lease
	return r.with(tk)
}

func (t *txn) leaseRenewed(e *cairnv1.LeaseRenewed) Result {
	_, tk, rej := t.taskOf(e.GetJobId(), e.GetIndex())
	if rej != nil {
		return *rej
	}
	if e.GetExpiry() == nil {
		return t.reject(InvalidArgument, "a renewal needs an expiry")
	}
	if err := jobs.Renew(tk, e.GetLeaseId(), e.GetExpiry().AsTime()); err != nil {
		return t.ruleErr(err)
	}
	t.putTask(nil, tk, tk.GetState())
	return ok(t.epoch())
}

func (t *txn) taskReported(e *cairnv1.TaskReported) Result {
	j, tk, rej := t.taskOf(e.GetJobId(), e.GetIndex())
	if rej != nil {
		return *rej
	}
	before := tk.GetState()
	out, err := jobs.Report(tk, e.GetLeaseId(), e.GetSeq(), e.GetDelta(), e.GetFinal(), e.GetError(), e.GetLocalDone(), j.GetDeliveryLimit(), t.at())
	if err != nil {
		return t.ruleErr(err)
	}
	r := ok(t.epoch()).with(tk)
	if !out.Counted {
		r.Repeat = true
		return r
	}
	t.putTask(j, tk, before)
	if j.Counters == nil {
		j.Counters = &cairnv1.Counters{}
	}
	jobs.Add(j.Counters, e.GetDelta())
	if out.Ended {
		t.taskEnded(j, tk, e)
		t.settle(j)
	} else {
		t.putProto(jobKey(j.GetId()), j)
	}
	r.Stale = out.Stale
	return r
}

func (t *txn) leaseExpired(e *cairnv1.LeaseExpired) Result {
	j, tk, rej := t.taskOf(e.GetJobId(), e.GetIndex())
	if rej != nil {
		return *rej
	}
	before := tk.GetState()
	ended, err := jobs.Expire(tk, e.GetLeaseId(), j.GetDeliveryLimit(), t.at())
	if err != nil {
		return t.ruleErr(err)
	}
	t.putTask(j, tk, before)
	if ended {
		t.taskEnded(j, tk, nil)
		t.settle(j)
	}
	return ok(t.epoch())
}

func (t *txn) leasesExtended(e *cairnv1.LeasesExtended) Result {
	ttl := e.GetTtl().AsDuration()
	if ttl <= 0 {
		return t.reject(InvalidArgument, "lease extension needs a positive ttl")
	}
	n := uint64(0)
	for _, ref := range t.taskRefs(prefixLeased) {
		tk, rej := t.task(ref.job, ref.index)
		if rej != nil {
			continue
		}
		if jobs.Extend(tk, t.at(), ttl) {
			t.putTask(nil, tk, tk.GetState())
			n++
		}
	}
	r := ok(t.epoch())
	r.Value = n
	return r
}

func (t *txn) jobsPruned(e *cairnv1.JobsPruned) Result {
	if e.GetEndedBefore() == nil {
		return t.reject(InvalidArgument, "pruning needs a time")
	}
	upper := endedKey(e.GetEndedBefore().AsTime().UnixNano(), 0)
	var ids []uint64
	var keys [][]byte
	it, err := t.b.NewIter(&pebble.IterOptions{LowerBound: prefixEnded, UpperBound: upper})
	if err != nil {
		t.fail(err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		k := append([]byte(nil), it.Key()...)
		keys = append(keys, k)
		ids = append(ids, u64(k[len(k)-8:]))
	}
	if err := it.Close(); err != nil {
		t.fail(err)
	}
	for i, id := range ids {
		if err := t.b.DeleteRange(tasksPrefix(id), prefixEnd(tasksPrefix(id)), nil); err != nil {
			t.fail(err)
		}
		t.del(jobKey(id))
		t.del(keys[i])
	}
	r := ok(t.epoch())
	r.Value = uint64(len(ids))
	return r
}

func (t *txn) settingChanged(e *cairnv1.SettingChanged) Result {
	v := e.GetValue()
	switch e.GetName() {
	case SettingRebalanceEnabled, SettingCleanupAuto, SettingPartialCaching:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return t.reject(InvalidArgument, "%s takes true or false, not %q", e.GetName(), v)
		}
		v = strconv.FormatBool(b)
	case SettingJobRetention:
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			return t.reject(InvalidArgument, "%s takes a duration of at least 1m (such as 24h), not %q", e.GetName(), v)
		}
		v = d.String()
	case SettingDontCleanupTime:
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return t.reject(InvalidArgument, "%s takes a duration of 0s or more (such as 2h), not %q", e.GetName(), v)
		}
		v = d.String()
	default:
		return t.reject(InvalidArgument, "unknown setting %q (known: %s, %s, %s, %s, %s)", e.GetName(), SettingRebalanceEnabled, SettingCleanupAuto, SettingPartialCaching, SettingJobRetention, SettingDontCleanupTime)
	}
	t.put(settingKey(e.GetName()), []byte(v))
	return ok(t.epoch())
}

// cleanupWindow gives a CLEANUP spec without a safety window the cluster
// setting's (read from the journaled state, so every replica fills in the
// same), and refuses a negative one.
// The event's spec is left as it was: the filled-in one is a copy.
func (t *txn) cleanupWindow(spec *cairnv1.JobSpec) (*cairnv1.JobSpec, *Result) {
	if w := spec.GetDontCleanupTime(); w != nil {
		if !w.IsValid() || w.AsDuration() < 0 {
			r := t.reject(InvalidArgument, "dont_cleanup_time must be a duration of 0s or more, not %s", w.AsDuration())
			return nil, &r
		}
		return spec, nil
	}
	spec = proto.Clone(spec).(*cairnv1.JobSpec)
	spec.DontCleanupTime = durationpb.New(dontCleanupTime(t.getRaw(settingKey(SettingDontCleanupTime))))
	return spec, nil
}

// dontCleanupTime is the stored value of the window setting, or its
// default when never set.
func dontCleanupTime(v []byte) time.Duration {
	if v == nil {
		return DefaultDontCleanupTime
	}
	d, err := time.ParseDuration(string(v))
	if err != nil {
		return DefaultDontCleanupTime
	}
	return d
}

// markClean raises the clean epoch of workers to epoch (never lowers it,
// never past the current epoch).
func (t *txn) markClean(ids []string, epoch uint64) {
	epoch = min(epoch, t.epoch())
	for _, id := range ids {
		w := &cairnv1.Worker{}
		if id == "" || !t.getProto(workerKey(id), w) || w.GetCleanEpoch() >= epoch {
			continue
		}
		w.CleanEpoch = epoch
		t.putProto(workerKey(id), w)
	}
}

func (t *txn) workersClean(e *cairnv1.WorkersClean) Result {
	if e.GetEpoch() == 0 {
		return t.reject(InvalidArgument, "a clean epoch is needed")
	}
	t.markClean(e.GetWorkerIds(), e.GetEpoch())
	return ok(t.epoch())
}

// abandonWorkerTasks fails every task bound to a worker that left the map,
// PENDING or under a lease, and settles their jobs: otherwise they would
// wait for the worker for good and hold their jobs RUNNING (and with them
// every cleanup that waits for no rebalance or cleanup to run).
func (t *txn) abandonWorkerTasks(worker, reason string) {
	for _, ref := range append(t.taskRefs(queuedPrefix(worker)), t.taskRefs(prefixLeased)...) {
		tk, rej := t.task(ref.job, ref.index)
		if rej != nil || tk.GetWorkerId() != worker {
			continue
		}
		before := tk.GetState()
		if !jobs.Abandon(tk, reason, t.at()) {
			continue
		}
		j, rej := t.job(tk.GetJobId())
		t.putTask(j, tk, before)
		if rej == nil {
			t.taskEnded(j, tk, nil)
			t.settle(j)
		}
	}
}

// taskEnded is what a task's end means beyond its job, however it ended
// (reported, expired past its delivery limit, cancelled, abandoned): a
// PERSIST task moves its file on, and a succeeded cleanup of everything
// makes its worker clean. rep is the final report, if one ended it.
func (t *txn) taskEnded(j *cairnv1.Job, tk *cairnv1.Task, rep *cairnv1.TaskReported) {
	switch spec := j.GetSpec(); spec.GetKind() {
	case cairnv1.JobKind_JOB_KIND_PERSIST:
		t.persistEnded(j, tk, rep)
	case cairnv1.JobKind_JOB_KIND_CLEANUP:
		if tk.GetState() == cairnv1.TaskState_TASK_STATE_SUCCEEDED && (spec.GetPrefix() == "" || spec.GetPrefix() == "/") && len(spec.GetPaths()) == 0 &&
			tk.GetCounters().GetKeptRecent() == 0 {
			// Only a cleanup of everything makes the worker clean, and only
			// one that kept nothing for being inside its window: those
			// copies are a later cleanup's.
			t.markClean([]string{tk.GetWorkerId()}, spec.GetEpoch())
		}
	}
}
