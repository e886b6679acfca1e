package jobs

import (
	"errors"
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// DefaultDeliveryLimit is how many leases a task may use when a job does
// not say.
const DefaultDeliveryLimit = 3

// Errors the rules return. The state machine turns them into rejections.
var (
	// ErrState: the task is not in a state that allows the transition.
	ErrState = errors.New("task state does not allow this")
	// ErrLease: the lease is not the task's current one (or never was its).
	ErrLease = errors.New("lease is not current")
	// ErrWorker: the task belongs to another worker.
	ErrWorker = errors.New("task belongs to another worker")
	// ErrNotDue: the lease has not reached its expiry.
	ErrNotDue = errors.New("lease has not expired")
	// ErrBackoff: the task failed an attempt and waits before the next.
	ErrBackoff = errors.New("task is backing off after a failed attempt")
)

// Backoff is how long a task waits after its attempt-th attempt failed:
// 1s, 2s, 4s, ... at most a minute.
func Backoff(attempt uint32) time.Duration {
	d := time.Second << min(attempt-1, 6)
	return min(d, time.Minute)
}

// Eligible reports whether a PENDING task may be leased at now (its
// backoff, if any, has passed).
func Eligible(t *cairnv1.Task, now time.Time) bool {
	nb := t.GetNotBefore()
	return nb == nil || !now.Before(nb.AsTime())
}

// Final reports whether a task state is final.
func Final(s cairnv1.TaskState) bool {
	return s == cairnv1.TaskState_TASK_STATE_SUCCEEDED || s == cairnv1.TaskState_TASK_STATE_FAILED || s == cairnv1.TaskState_TASK_STATE_CANCELLED
}

// NewTask returns task index of job jobID for worker ("" for any worker),
// PENDING.
func NewTask(jobID uint64, index uint32, worker string) *cairnv1.Task {
	return &cairnv1.Task{JobId: jobID, Index: index, WorkerId: worker, State: cairnv1.TaskState_TASK_STATE_PENDING, Counters: &cairnv1.Counters{}}
}

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// Lease grants lease leaseID on a PENDING task to worker until expiry. A
// task bound to a worker can be leased by that worker only.
func Lease(t *cairnv1.Task, worker string, leaseID uint64, now, expiry time.Time) error {
	if t.GetState() != cairnv1.TaskState_TASK_STATE_PENDING {
		return fmt.Errorf("%w: lease of a %s task", ErrState, t.GetState())
	}
	if t.GetWorkerId() != "" && t.GetWorkerId() != worker {
		return fmt.Errorf("%w: task %d/%d is %s's, not %s's", ErrWorker, t.GetJobId(), t.GetIndex(), t.GetWorkerId(), worker)
	}
	if !Eligible(t, now) {
		return fmt.Errorf("%w: until %s", ErrBackoff, t.GetNotBefore().AsTime().Format(time.RFC3339Nano))
	}
	for _, s := range t.GetSeqs() {
		if s.GetLeaseId() >= leaseID {
			return fmt.Errorf("%w: lease %d is not newer than lease %d", ErrLease, leaseID, s.GetLeaseId())
		}
	}
	t.State = cairnv1.TaskState_TASK_STATE_LEASED
	t.Attempt++
	t.LeaseId = leaseID
	t.LeaseWorker = worker
	t.LeaseExpiry = ts(expiry)
	t.LocalDone = false
	if t.StartedTime == nil {
		t.StartedTime = ts(now)
	}
	t.Seqs = append(t.Seqs, &cairnv1.LeaseSeq{LeaseId: leaseID})
	return nil
}

// current reports whether leaseID is the task's live lease.
func current(t *cairnv1.Task, leaseID uint64) bool {
	return t.GetState() == cairnv1.TaskState_TASK_STATE_LEASED && t.GetLeaseId() == leaseID
}

// Renew moves the current lease's expiry to expiry (never backwards).
func Renew(t *cairnv1.Task, leaseID uint64, expiry time.Time) error {
	if !current(t, leaseID) {
		return fmt.Errorf("%w: lease %d of task %d/%d (the task is %s under lease %d)", ErrLease, leaseID, t.GetJobId(), t.GetIndex(), t.GetState(), t.GetLeaseId())
	}
	if expiry.After(t.GetLeaseExpiry().AsTime()) {
		t.LeaseExpiry = ts(expiry)
	}
	return nil
}

// ReportOutcome says what a report did.
type ReportOutcome struct {
	// Counted: the deltas were added (false for a repeat).
	Counted bool
	// Stale: the lease was not current, so a final state or local_done in
	// the report was ignored.
	Stale bool
	// Ended: the report moved the task to a final state.
	Ended bool
}

// Report applies a report under lease leaseID with sequence number seq:
// it adds delta once per (lease, seq) and, when the lease is current,
// records localDone and applies final (SUCCEEDED ends the task; FAILED
// ends it once limit leases are used, else returns it to PENDING).
func Report(t *cairnv1.Task, leaseID, seq uint64, delta *cairnv1.Counters, final cairnv1.TaskState, msg string, localDone bool, limit uint32, now time.Time) (ReportOutcome, error) {
	var out ReportOutcome
	var ls *cairnv1.LeaseSeq
	for _, s := range t.GetSeqs() {
		if s.GetLeaseId() == leaseID {
			ls = s
		}
	}
	if ls == nil {
		return out, fmt.Errorf("%w: task %d/%d never granted lease %d", ErrLease, t.GetJobId(), t.GetIndex(), leaseID)
	}
	switch final {
	case cairnv1.TaskState_TASK_STATE_UNSPECIFIED, cairnv1.TaskState_TASK_STATE_SUCCEEDED, cairnv1.TaskState_TASK_STATE_FAILED:
	default:
		return out, fmt.Errorf("%w: a report can end a task as SUCCEEDED or FAILED, not %s", ErrState, final)
	}
	if seq <= ls.GetSeq() {
		return out, nil // a repeat: applied before
	}
	ls.Seq = seq
	out.Counted = true
	if t.Counters == nil {
		t.Counters = &cairnv1.Counters{}
	}
	Add(t.Counters, delta)
	if !current(t, leaseID) {
		out.Stale = final != cairnv1.TaskState_TASK_STATE_UNSPECIFIED || localDone
		return out, nil
	}
	if localDone {
		t.LocalDone = true
	}
	if msg != "" {
		t.LastError = msg
	}
	switch final {
	case cairnv1.TaskState_TASK_STATE_SUCCEEDED:
		end(t, cairnv1.TaskState_TASK_STATE_SUCCEEDED, now)
		out.Ended = true
	case cairnv1.TaskState_TASK_STATE_FAILED:
		if msg == "" {
			t.LastError = "the worker reported a failure without a message"
		}
		if t.GetAttempt() >= limit {
			t.LastError = fmt.Sprintf("failed on attempt %d of %d on %s: %s", t.GetAttempt(), limit, t.GetLeaseWorker(), t.LastError)
			end(t, cairnv1.TaskState_TASK_STATE_FAILED, now)
			out.Ended = true
		} else {
			t.State = cairnv1.TaskState_TASK_STATE_PENDING
			t.LocalDone = false
			t.NotBefore = ts(now.Add(Backoff(t.GetAttempt())))
		}
	}
	return out, nil
}

func end(t *cairnv1.Task, s cairnv1.TaskState, now time.Time) {
	t.State = s
	t.EndedTime = ts(now)
}

// Expire ends the current lease leaseID when now has reached its expiry:
// the task returns to PENDING, or is FAILED with the reason when limit
// leases are used. It reports whether the task ended.
func Expire(t *cairnv1.Task, leaseID uint64, limit uint32, now time.Time) (bool, error) {
	if !current(t, leaseID) {
		return false, fmt.Errorf("%w: expiry of lease %d of task %d/%d (the task is %s under lease %d)", ErrLease, leaseID, t.GetJobId(), t.GetIndex(), t.GetState(), t.GetLeaseId())
	}
	if now.Before(t.GetLeaseExpiry().AsTime()) {
		return false, fmt.Errorf("%w: lease %d runs until %s", ErrNotDue, leaseID, t.GetLeaseExpiry().AsTime().Format(time.RFC3339Nano))
	}
	t.LastError = fmt.Sprintf("lease %d on %s expired (attempt %d of %d)", leaseID, t.GetLeaseWorker(), t.GetAttempt(), limit)
	t.LocalDone = false
	if t.GetAttempt() >= limit {
		t.LastError = fmt.Sprintf("delivery limit reached: %s", t.LastError)
		end(t, cairnv1.TaskState_TASK_STATE_FAILED, now)
		return true, nil
	}
	t.State = cairnv1.TaskState_TASK_STATE_PENDING
	t.NotBefore = ts(now.Add(Backoff(t.GetAttempt())))
	return false, nil
}

// Extend gives a live lease at least ttl from now, and reports whether it
// changed anything.
func Extend(t *cairnv1.Task, now time.Time, ttl time.Duration) bool {
	if t.GetState() != cairnv1.TaskState_TASK_STATE_LEASED {
		return false
	}
	if to := now.Add(ttl); to.After(t.GetLeaseExpiry().AsTime()) {
		t.LeaseExpiry = ts(to)
		return true
	}
	return false
}

// Abandon ends a task that is not final as FAILED with the reason: the
// worker it is bound to left the map (DOWN, maintenance, decommissioned),
// so it would wait for good. It reports whether it did.
func Abandon(t *cairnv1.Task, reason string, now time.Time) bool {
	if Final(t.GetState()) {
		return false
	}
	t.LastError = reason
	end(t, cairnv1.TaskState_TASK_STATE_FAILED, now)
	return true
}

// Cancel ends a task that is not final as CANCELLED, and reports whether
// it did.
func Cancel(t *cairnv1.Task, reason string, now time.Time) bool {
	if Final(t.GetState()) {
		return false
	}
	t.LastError = reason
	end(t, cairnv1.TaskState_TASK_STATE_CANCELLED, now)
	return true
}

// Add adds every counter of delta to dst.
func Add(dst, delta *cairnv1.Counters) {
	if delta == nil {
		return
	}
	d, s := dst.ProtoReflect(), delta.ProtoReflect()
	s.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		d.Set(fd, protoreflect.ValueOfUint64(d.Get(fd).Uint()+v.Uint()))
		return true
	})
}

// Empty reports whether every counter is zero.
func Empty(c *cairnv1.Counters) bool { return c == nil || proto.Size(c) == 0 }

// Settle sets a job's final state once every task is final: CANCELLED if
// it was stopped (reason set by the stop), FAILED if a task failed (the
// reason names it), SUCCEEDED otherwise. It reports whether the job ended.
func Settle(j *cairnv1.Job, tasks []*cairnv1.Task, now time.Time) bool {
	if j.GetState() != cairnv1.JobState_JOB_STATE_RUNNING {
		return false
	}
	var done uint32
	var failed *cairnv1.Task
	cancelled := false
	for _, t := range tasks {
		if !Final(t.GetState()) {
			continue
		}
		done++
		switch t.GetState() {
		case cairnv1.TaskState_TASK_STATE_FAILED:
			if failed == nil {
				failed = t
			}
		case cairnv1.TaskState_TASK_STATE_CANCELLED:
			cancelled = true
		}
	}
	j.TasksDone = done
	if done < uint32(len(tasks)) {
		return false
	}
	switch {
	case cancelled:
		j.State = cairnv1.JobState_JOB_STATE_CANCELLED
	case failed != nil:
		j.State = cairnv1.JobState_JOB_STATE_FAILED
		who := failed.GetWorkerId()
		if who == "" {
			who = failed.GetLeaseWorker()
		}
		j.Reason = fmt.Sprintf("task %d on %s: %s", failed.GetIndex(), who, failed.GetLastError())
	default:
		j.State = cairnv1.JobState_JOB_STATE_SUCCEEDED
	}
	j.EndedTime = ts(now)
	return true
}

// AllLocalDone reports whether every task has finished its own part (is
// locally done or final): the barrier a REBALANCE task waits at before it
// reports what it received.
func AllLocalDone(tasks []*cairnv1.Task) bool {
	for _, t := range tasks {
		if !t.GetLocalDone() && !Final(t.GetState()) {
			return false
		}
	}
	return true
}

// DedupKey is the key two equal jobs share: the kind and the spec's
// fields that matter to it.
func DedupKey(s *cairnv1.JobSpec) string {
	k := s.GetKind().String()
	switch s.GetKind() {
	case cairnv1.JobKind_JOB_KIND_REBALANCE:
		return fmt.Sprintf("%s epoch=%d", k, s.GetEpoch())
	case cairnv1.JobKind_JOB_KIND_PERSIST:
		return fmt.Sprintf("%s %s@%d", k, s.GetPath(), s.GetVersion())
	default:
		// CLEANUP and FREE: equal scope and options (a cleanup's window
		// included).
		h := xxhash.New()
		for _, p := range s.GetPaths() {
			h.WriteString(p)
			h.WriteString("\x00")
		}
		for _, w := range s.GetWorkers() {
			h.WriteString("w:" + w)
			h.WriteString("\x00")
		}
		key := fmt.Sprintf("%s prefix=%q force=%t paths=%d/%016x", k, s.GetPrefix(), s.GetForce(), len(s.GetPaths()), h.Sum64())
		if w := s.GetDontCleanupTime(); w != nil {
			key += " window=" + w.AsDuration().String()
		}
		return key
	}
}

// Format renders the counters that are not zero as "name=value" pairs in
// field order, for log lines ("-" when all are zero).
func Format(c *cairnv1.Counters) string {
	var b []byte
	r := c.ProtoReflect()
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if v := r.Get(fd).Uint(); v != 0 {
			if len(b) > 0 {
				b = append(b, ' ')
			}
			b = fmt.Appendf(b, "%s=%d", fd.Name(), v)
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}
