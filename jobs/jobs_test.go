package jobs

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestLeaseLifecycle(t *testing.T) {
	t.Parallel()
	const ttl = 10 * time.Second
	cases := []struct {
		name  string
		limit uint32
		steps func(t *testing.T, task *cairnv1.Task)
		want  cairnv1.TaskState
	}{
		{"report succeeds", 3, func(t *testing.T, task *cairnv1.Task) {
			must(t, Lease(task, "w1", 1, t0, t0.Add(ttl)))
			out, err := Report(task, 1, 1, &cairnv1.Counters{Sent: 2}, cairnv1.TaskState_TASK_STATE_SUCCEEDED, "", false, 3, t0)
			must(t, err)
			if !out.Counted || !out.Ended || out.Stale {
				t.Fatalf("outcome %+v", out)
			}
		}, cairnv1.TaskState_TASK_STATE_SUCCEEDED},
		{"another worker cannot lease", 3, func(t *testing.T, task *cairnv1.Task) {
			if err := Lease(task, "w2", 1, t0, t0.Add(ttl)); !errors.Is(err, ErrWorker) {
				t.Fatalf("lease by w2: %v", err)
			}
		}, cairnv1.TaskState_TASK_STATE_PENDING},
		{"expiry before its time is refused", 3, func(t *testing.T, task *cairnv1.Task) {
			must(t, Lease(task, "w1", 1, t0, t0.Add(ttl)))
			if _, err := Expire(task, 1, 3, t0.Add(ttl-time.Nanosecond)); !errors.Is(err, ErrNotDue) {
				t.Fatalf("early expiry: %v", err)
			}
		}, cairnv1.TaskState_TASK_STATE_LEASED},
		{"expired lease goes back to pending", 3, func(t *testing.T, task *cairnv1.Task) {
			must(t, Lease(task, "w1", 1, t0, t0.Add(ttl)))
			ended, err := Expire(task, 1, 3, t0.Add(ttl))
			must(t, err)
			if ended {
				t.Fatal("ended on attempt 1 of 3")
			}
		}, cairnv1.TaskState_TASK_STATE_PENDING},
		{"delivery limit 1 fails on expiry", 1, func(t *testing.T, task *cairnv1.Task) {
			must(t, Lease(task, "w1", 1, t0, t0.Add(ttl)))
			if _, err := Expire(task, 1, 1, t0.Add(ttl)); err != nil {
				t.Fatal(err)
			}
			if task.GetLastError() == "" {
				t.Fatal("no reason recorded")
			}
		}, cairnv1.TaskState_TASK_STATE_FAILED},
		{"stale report counts but cannot complete", 3, func(t *testing.T, task *cairnv1.Task) {
			must(t, Lease(task, "w1", 1, t0, t0.Add(ttl)))
			_, err := Expire(task, 1, 3, t0.Add(ttl))
			must(t, err)
			out, err := Report(task, 1, 1, &cairnv1.Counters{Sent: 5}, cairnv1.TaskState_TASK_STATE_SUCCEEDED, "", false, 3, t0.Add(ttl))
			must(t, err)
			if !out.Counted || !out.Stale || out.Ended || task.GetCounters().GetSent() != 5 {
				t.Fatalf("outcome %+v, counters %v", out, task.GetCounters())
			}
		}, cairnv1.TaskState_TASK_STATE_PENDING},
		{"reported failure retries, then fails at the limit", 2, func(t *testing.T, task *cairnv1.Task) {
			must(t, Lease(task, "w1", 1, t0, t0.Add(ttl)))
			_, err := Report(task, 1, 1, nil, cairnv1.TaskState_TASK_STATE_FAILED, "disk full", false, 2, t0)
			must(t, err)
			if task.GetState() != cairnv1.TaskState_TASK_STATE_PENDING {
				t.Fatalf("after first failure: %s", task.GetState())
			}
			if err := Lease(task, "w1", 2, t0.Add(Backoff(1)-time.Nanosecond), t0.Add(ttl)); !errors.Is(err, ErrBackoff) {
				t.Fatalf("lease during the backoff: %v", err)
			}
			must(t, Lease(task, "w1", 2, t0.Add(Backoff(1)), t0.Add(ttl)))
			_, err = Report(task, 2, 1, nil, cairnv1.TaskState_TASK_STATE_FAILED, "disk full", false, 2, t0)
			must(t, err)
		}, cairnv1.TaskState_TASK_STATE_FAILED},
		{"unknown lease is refused", 3, func(t *testing.T, task *cairnv1.Task) {
			must(t, Lease(task, "w1", 4, t0, t0.Add(ttl)))
			if _, err := Report(task, 3, 1, nil, 0, "", false, 3, t0); !errors.Is(err, ErrLease) {
				t.Fatalf("report under lease 3: %v", err)
			}
		}, cairnv1.TaskState_TASK_STATE_LEASED},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			task := NewTask(1, 0, "w1")
			c.steps(t, task)
			if task.GetState() != c.want {
				t.Fatalf("state %s, want %s (last error %q)", task.GetState(), c.want, task.GetLastError())
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLeaseProperties drives one task with random leases, renewals,
// reports (with retries of the same seq), expiries, leader changes and
// clock steps, and checks after every step that the task counted each
// (lease, seq) exactly once, that only a current lease ended it, that a
// final state never changes, and that it never used more leases than its
// limit.
func TestLeaseProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		limit := uint32(rapid.IntRange(1, 4).Draw(rt, "limit"))
		ttl := time.Duration(rapid.IntRange(1, 20).Draw(rt, "ttl")) * time.Second
		workers := []string{"", "w1"}
		task := NewTask(7, 0, rapid.SampledFrom(workers).Draw(rt, "bound"))
		now := t0
		var nextLease uint64 = 1
		granted := []uint64{}
		lastSeq := map[uint64]uint64{} // per lease, the highest seq a worker sent
		applied := map[[2]uint64]bool{}
		var want uint64 // the sum of deltas of distinct (lease, seq)
		for step := range rapid.IntRange(1, 80).Draw(rt, "steps") {
			before := proto.Clone(task).(*cairnv1.Task)
			switch rapid.IntRange(0, 5).Draw(rt, "op") {
			case 0: // lease
				w := rapid.SampledFrom([]string{"w1", "w2"}).Draw(rt, "worker")
				if err := Lease(task, w, nextLease, now, now.Add(ttl)); err == nil {
					granted = append(granted, nextLease)
				}
				nextLease++
			case 1: // renew
				if len(granted) > 0 {
					l := rapid.SampledFrom(granted).Draw(rt, "renew lease")
					_ = Renew(task, l, now.Add(ttl))
				}
			case 2: // report: a new seq, or a retry of the last one
				if len(granted) == 0 {
					break
				}
				l := rapid.SampledFrom(granted).Draw(rt, "report lease")
				seq := lastSeq[l] + 1
				if lastSeq[l] > 0 && rapid.Bool().Draw(rt, "retry") {
					seq = lastSeq[l]
				}
				lastSeq[l] = seq
				delta := uint64(seq*1000 + l) // a retry carries the same delta
				final := rapid.SampledFrom([]cairnv1.TaskState{0, cairnv1.TaskState_TASK_STATE_SUCCEEDED, cairnv1.TaskState_TASK_STATE_FAILED}).Draw(rt, "final")
				wasCurrent := before.GetState() == cairnv1.TaskState_TASK_STATE_LEASED && before.GetLeaseId() == l
				out, err := Report(task, l, seq, &cairnv1.Counters{Sent: delta}, final, "boom", rapid.Bool().Draw(rt, "local done"), limit, now)
				if err != nil {
					rt.Fatalf("step %d: report under granted lease %d: %v", step, l, err)
				}
				key := [2]uint64{l, seq}
				if out.Counted == applied[key] {
					rt.Fatalf("step %d: (lease %d, seq %d) counted=%t but applied before=%t", step, l, seq, out.Counted, applied[key])
				}
				if out.Counted {
					applied[key] = true
					want += delta
				}
				if out.Ended && !wasCurrent {
					rt.Fatalf("step %d: lease %d ended the task but was not current (task was %s under %d)", step, l, before.GetState(), before.GetLeaseId())
				}
			case 3: // expire, maybe early
				if len(granted) > 0 {
					l := rapid.SampledFrom(granted).Draw(rt, "expire lease")
					_, err := Expire(task, l, limit, now)
					if err == nil && now.Before(before.GetLeaseExpiry().AsTime()) {
						rt.Fatalf("step %d: lease %d expired before its expiry", step, l)
					}
				}
			case 4: // a new leader extends every live lease
				Extend(task, now, ttl)
			case 5: // time passes
				now = now.Add(time.Duration(rapid.IntRange(0, 30).Draw(rt, "advance")) * time.Second)
			}
			if got := task.GetCounters().GetSent(); got != want {
				rt.Fatalf("step %d: counted %d, the distinct reports add up to %d", step, got, want)
			}
			if Final(before.GetState()) && before.GetState() != task.GetState() {
				rt.Fatalf("step %d: final state %s changed to %s", step, before.GetState(), task.GetState())
			}
			if task.GetAttempt() > limit {
				rt.Fatalf("step %d: attempt %d above the limit %d", step, task.GetAttempt(), limit)
			}
			if task.GetWorkerId() != "" && task.GetLeaseWorker() != "" && task.GetLeaseWorker() != task.GetWorkerId() {
				rt.Fatalf("step %d: task of %s leased by %s", step, task.GetWorkerId(), task.GetLeaseWorker())
			}
		}
	})
}

func TestSettle(t *testing.T) {
	t.Parallel()
	mk := func(states ...cairnv1.TaskState) []*cairnv1.Task {
		var ts []*cairnv1.Task
		for i, s := range states {
			ts = append(ts, &cairnv1.Task{Index: uint32(i), WorkerId: "w", State: s, LastError: "why"})
		}
		return ts
	}
	const (
		P = cairnv1.TaskState_TASK_STATE_PENDING
		S = cairnv1.TaskState_TASK_STATE_SUCCEEDED
		F = cairnv1.TaskState_TASK_STATE_FAILED
		C = cairnv1.TaskState_TASK_STATE_CANCELLED
	)
	cases := []struct {
		tasks []*cairnv1.Task
		want  cairnv1.JobState
	}{
		{nil, cairnv1.JobState_JOB_STATE_SUCCEEDED},
		{mk(S, P), cairnv1.JobState_JOB_STATE_RUNNING},
		{mk(S, S), cairnv1.JobState_JOB_STATE_SUCCEEDED},
		{mk(S, F), cairnv1.JobState_JOB_STATE_FAILED},
		{mk(F, C), cairnv1.JobState_JOB_STATE_CANCELLED},
	}
	for i, c := range cases {
		j := &cairnv1.Job{State: cairnv1.JobState_JOB_STATE_RUNNING}
		Settle(j, c.tasks, t0)
		if j.GetState() != c.want {
			t.Errorf("case %d: %s, want %s", i, j.GetState(), c.want)
		}
		if j.GetState() == cairnv1.JobState_JOB_STATE_FAILED && j.GetReason() == "" {
			t.Errorf("case %d: failed without a reason", i)
		}
	}
}

func TestAdd(t *testing.T) {
	t.Parallel()
	c := &cairnv1.Counters{Sent: 1, Errors: 2}
	Add(c, &cairnv1.Counters{Sent: 3, ReceivedBytes: 9})
	Add(c, nil)
	want := &cairnv1.Counters{Sent: 4, Errors: 2, ReceivedBytes: 9}
	if !proto.Equal(c, want) {
		t.Fatalf("got %v, want %v", c, want)
	}
	if !Empty(&cairnv1.Counters{}) || Empty(want) {
		t.Fatal("Empty is wrong")
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		attempt uint32
		want    time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {7, time.Minute}, {30, time.Minute}} {
		if got := Backoff(c.attempt); got != c.want {
			t.Errorf("Backoff(%d) = %s, want %s", c.attempt, got, c.want)
		}
	}
}
