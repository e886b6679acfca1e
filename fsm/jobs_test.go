package fsm

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func TestJobTransitions(t *testing.T) {
	t.Parallel()
	m := open(t)
	idx := uint64(0)
	apply := func(sec int, ev *cairnv1.Event) Result {
		idx++
		ev.Time = at(sec)
		return m.Apply([]Entry{{Index: idx, Events: []*cairnv1.Event{ev}}})[0][0]
	}
	reb := &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_REBALANCE, Epoch: 3}
	start := &cairnv1.Event{Kind: &cairnv1.Event_JobStarted{JobStarted: &cairnv1.JobStarted{Spec: reb, Workers: []string{"w1", "w2"}, DeliveryLimit: 2}}}
	lease := func(idx uint32, w string, expSec int) *cairnv1.Event {
		return &cairnv1.Event{Kind: &cairnv1.Event_TaskLeased{TaskLeased: &cairnv1.TaskLeased{JobId: 1, Index: idx, WorkerId: w, Expiry: at(expSec)}}}
	}
	report := func(idx uint32, lease, seq uint64, sent uint64, final cairnv1.TaskState) *cairnv1.Event {
		return &cairnv1.Event{Kind: &cairnv1.Event_TaskReported{TaskReported: &cairnv1.TaskReported{
			JobId: 1, Index: idx, LeaseId: lease, Seq: seq, Delta: &cairnv1.Counters{Sent: sent}, Final: final}}}
	}
	expire := func(idx uint32, lease uint64) *cairnv1.Event {
		return &cairnv1.Event{Kind: &cairnv1.Event_LeaseExpired{LeaseExpired: &cairnv1.LeaseExpired{JobId: 1, Index: idx, LeaseId: lease}}}
	}
	steps := []struct {
		name   string
		sec    int
		ev     *cairnv1.Event
		code   Code
		msg    string
		value  uint64
		repeat bool
		stale  bool
	}{
		{"start", 10, start, OK, "", 1, false, false},
		{"start again returns the running job", 11, start, OK, "", 1, true, false},
		{"lease by the wrong worker", 12, lease(0, "w2", 20), FailedPrecondition, "belongs to another worker", 0, false, false},
		{"lease", 12, lease(0, "w1", 20), OK, "", 1, false, false},
		{"lease the other", 12, lease(1, "w2", 20), OK, "", 2, false, false},
		{"report", 13, report(0, 1, 1, 5, 0), OK, "", 0, false, false},
		{"repeat report", 14, report(0, 1, 1, 5, 0), OK, "", 0, true, false},
		{"early expiry", 15, expire(0, 1), FailedPrecondition, "has not expired", 0, false, false},
		{"expiry", 20, expire(0, 1), OK, "", 0, false, false},
		{"stale report counts", 21, report(0, 1, 2, 7, cairnv1.TaskState_TASK_STATE_SUCCEEDED), OK, "", 0, false, true},
		{"lease again", 22, lease(0, "w1", 40), OK, "", 3, false, false},
		{"new leader extends", 39, &cairnv1.Event{Kind: &cairnv1.Event_LeasesExtended{LeasesExtended: &cairnv1.LeasesExtended{Ttl: durationpb.New(10 * time.Second)}}}, OK, "", 2, false, false},
		{"expiry before the extension ends", 45, expire(0, 3), FailedPrecondition, "has not expired", 0, false, false},
		{"succeed 0", 46, report(0, 3, 1, 1, cairnv1.TaskState_TASK_STATE_SUCCEEDED), OK, "", 0, false, false},
		{"succeed 1", 47, report(1, 2, 1, 0, cairnv1.TaskState_TASK_STATE_SUCCEEDED), OK, "", 0, false, false},
		{"a new rebalance after the end", 48, start, OK, "", 2, false, false},
		{"stop by kind", 49, &cairnv1.Event{Kind: &cairnv1.Event_JobStopped{JobStopped: &cairnv1.JobStopped{Kind: cairnv1.JobKind_JOB_KIND_REBALANCE, Reason: "superseded"}}}, OK, "", 1, false, false},
		{"stop a finished job", 50, &cairnv1.Event{Kind: &cairnv1.Event_JobStopped{JobStopped: &cairnv1.JobStopped{JobId: 1}}}, OK, "", 0, false, false},
		{"bad setting", 51, &cairnv1.Event{Kind: &cairnv1.Event_SettingChanged{SettingChanged: &cairnv1.SettingChanged{Name: "rebalance.enabled", Value: "maybe"}}}, InvalidArgument, "true or false", 0, false, false},
		{"unknown setting", 51, &cairnv1.Event{Kind: &cairnv1.Event_SettingChanged{SettingChanged: &cairnv1.SettingChanged{Name: "nope", Value: "1"}}}, InvalidArgument, "unknown setting", 0, false, false},
		{"disable rebalance", 51, &cairnv1.Event{Kind: &cairnv1.Event_SettingChanged{SettingChanged: &cairnv1.SettingChanged{Name: "rebalance.enabled", Value: "false"}}}, OK, "", 0, false, false},
		{"prune before the first end", 52, &cairnv1.Event{Kind: &cairnv1.Event_JobsPruned{JobsPruned: &cairnv1.JobsPruned{EndedBefore: at(47)}}}, OK, "", 0, false, false},
		{"prune", 53, &cairnv1.Event{Kind: &cairnv1.Event_JobsPruned{JobsPruned: &cairnv1.JobsPruned{EndedBefore: at(48)}}}, OK, "", 1, false, false},
	}
	for _, s := range steps {
		r := apply(s.sec, s.ev)
		if r.Code != s.code || !strings.Contains(r.Message, s.msg) || (s.code == OK && r.Value != s.value) || r.Repeat != s.repeat || r.Stale != s.stale {
			t.Fatalf("%s: %v %q value %d repeat %t stale %t, want %v containing %q value %d repeat %t stale %t",
				s.name, r.Code, r.Message, r.Value, r.Repeat, r.Stale, s.code, s.msg, s.value, s.repeat, s.stale)
		}
		// The result carries the record as applied: no read back needed.
		switch rec := r.Record.(type) {
		case *cairnv1.Job:
			if got, _, _ := m.Job(rec.GetId()); !proto.Equal(got, rec) {
				t.Fatalf("%s: the result's job %v is not the stored %v", s.name, rec, got)
			}
		case *cairnv1.Task:
			if got, _, _ := m.Task(rec.GetJobId(), rec.GetIndex()); !proto.Equal(got, rec) {
				t.Fatalf("%s: the result's task %v is not the stored %v", s.name, rec, got)
			}
		case nil:
			if s.code == OK && (s.ev.GetJobStarted() != nil || s.ev.GetTaskLeased() != nil || s.ev.GetTaskReported() != nil) {
				t.Fatalf("%s: no record in the result", s.name)
			}
		}
		if s.name == "succeed 1" {
			j, _, _ := m.Job(1)
			if j.GetState() != cairnv1.JobState_JOB_STATE_SUCCEEDED || j.GetCounters().GetSent() != 13 || j.GetTasksDone() != 2 {
				t.Fatalf("job 1 after its tasks: %v", j)
			}
		}
	}
	if _, found, _ := m.Job(1); found {
		t.Fatal("job 1 survived pruning")
	}
	if ts, _ := m.Tasks(1); len(ts) != 0 {
		t.Fatalf("job 1's tasks survived pruning: %v", ts)
	}
	j, _, _ := m.Job(2)
	if j.GetState() != cairnv1.JobState_JOB_STATE_CANCELLED || j.GetReason() != "superseded" {
		t.Fatalf("job 2: %v", j)
	}
	if p, _, _ := m.PendingTasks("w1", nil, 10, farFuture, nil, nil, ""); len(p) != 0 {
		t.Fatalf("pending after cancel: %v", p)
	}
	if l, _ := m.LeasedTasks(); len(l) != 0 {
		t.Fatalf("leased after the end: %v", l)
	}
	s, err := m.Settings()
	if err != nil || s.GetRebalanceEnabled() || s.GetJobRetention().AsDuration() != DefaultJobRetention {
		t.Fatalf("settings %v %v", s, err)
	}
	list, next, err := m.ListJobs(0, 0, 0, 10)
	if err != nil || len(list) != 1 || list[0].GetId() != 2 || next != 0 {
		t.Fatalf("list %v next %d err %v", list, next, err)
	}
}

func TestPendingTasksOrder(t *testing.T) {
	t.Parallel()
	m := open(t)
	evs := append(asyncFile("/a", 1),
		&cairnv1.Event{Time: at(1), Kind: &cairnv1.Event_JobStarted{JobStarted: &cairnv1.JobStarted{Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, Path: "/a", Version: 1}, Workers: []string{""}}}},
		&cairnv1.Event{Time: at(1), Kind: &cairnv1.Event_JobStarted{JobStarted: &cairnv1.JobStarted{Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_REBALANCE, Epoch: 1}, Workers: []string{"w1", "w2"}}}},
	)
	m.Apply([]Entry{{Index: 1, Events: evs}})
	tasks, js, err := m.PendingTasks("w1", nil, 10, farFuture, nil, nil, "")
	if err != nil || len(tasks) != 2 || tasks[0].GetJobId() != 2 || tasks[1].GetJobId() != 1 || js[1].GetSpec().GetPath() != "/a" {
		t.Fatalf("w1's pending tasks: %v %v", tasks, err)
	}
	tasks, _, _ = m.PendingTasks("w1", []cairnv1.JobKind{cairnv1.JobKind_JOB_KIND_PERSIST}, 10, farFuture, nil, nil, "")
	if len(tasks) != 1 || tasks[0].GetJobId() != 1 {
		t.Fatalf("w1's PERSIST tasks: %v", tasks)
	}
	tasks, _, _ = m.PendingTasks("w3", nil, 1, farFuture, nil, nil, "")
	if len(tasks) != 1 || tasks[0].GetJobId() != 1 {
		t.Fatalf("w3's tasks: %v", tasks)
	}
}

// TestPendingTasksSeeReturnedTasks: a task that returns to PENDING below
// the queue's read hint (its lease expired) is found again.
func TestPendingTasksSeeReturnedTasks(t *testing.T) {
	t.Parallel()
	m := open(t)
	apply := mustApplier(t, m)
	persistJobs(apply, "/f%d", 3)
	first := func() uint64 {
		tasks, _, err := m.PendingTasks("w1", nil, 1, farFuture, nil, nil, "")
		if err != nil || len(tasks) != 1 {
			t.Fatalf("pending: %v %v", tasks, err)
		}
		return tasks[0].GetJobId()
	}
	if j := first(); j != 1 {
		t.Fatalf("first pending is job %d, want 1", j)
	}
	lease := func(job uint64) *cairnv1.Event {
		return &cairnv1.Event{Kind: &cairnv1.Event_TaskLeased{TaskLeased: &cairnv1.TaskLeased{JobId: job, WorkerId: "w1", Expiry: at(10)}}}
	}
	apply(2, lease(1), lease(2))
	if j := first(); j != 3 {
		t.Fatalf("after leasing 1 and 2 the first pending is job %d, want 3", j)
	}
	apply(11, &cairnv1.Event{Kind: &cairnv1.Event_LeaseExpired{LeaseExpired: &cairnv1.LeaseExpired{JobId: 1, LeaseId: 1}}})
	if j := first(); j != 1 {
		t.Fatalf("after job 1's lease expired the first pending is job %d, want 1", j)
	}
}

// TestPendingTasksFilteredHint: a worker whose filter refuses most of the
// any-worker queue starts its next scan past what it refused (with the
// same wantKey), still finds a refused-before task that came back below
// that point, and scans from the start under a new wantKey.
func TestPendingTasksFilteredHint(t *testing.T) {
	t.Parallel()
	m := open(t)
	apply := mustApplier(t, m)
	const n = 20
	persistJobs(apply, "/f%02d", n)
	mineOnly := map[string]bool{"/f13": true, "/f17": true}
	asked := 0
	want := func(_ cairnv1.JobKind, path string) bool { asked++; return mineOnly[path] }
	pending := func(key string) []string {
		asked = 0
		tasks, js, err := m.PendingTasks("w1", nil, 10, farFuture, nil, want, key)
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for i := range tasks {
			paths = append(paths, js[i].GetSpec().GetPath())
		}
		return paths
	}
	steps := []struct {
		name      string
		key       string
		want      string
		maxAsked  int
		fullCount bool
	}{
		{"first scan asks about every task", "epoch 1", "/f13,/f17", n, true},
		{"the same filter starts at its first wanted task", "epoch 1", "/f13,/f17", n - 13, false},
		{"a new filter starts from the beginning", "epoch 2", "/f13,/f17", n, true},
	}
	for _, st := range steps {
		got := strings.Join(pending(st.key), ",")
		if got != st.want || asked > st.maxAsked || (st.fullCount && asked != n) {
			t.Fatalf("%s: got %s asking %d times; want %s asking at most %d", st.name, got, asked, st.want, st.maxAsked)
		}
	}
	// /f03 becomes wanted only under a new key; under the old key a task
	// that returns below the hint (an expired lease) is seen again.
	apply(2, &cairnv1.Event{Kind: &cairnv1.Event_TaskLeased{TaskLeased: &cairnv1.TaskLeased{JobId: 14, WorkerId: "w1", Expiry: at(10)}}})
	if got := strings.Join(pending("epoch 2"), ","); got != "/f17" {
		t.Fatalf("after leasing /f13: %s, want /f17", got)
	}
	apply(11, &cairnv1.Event{Kind: &cairnv1.Event_LeaseExpired{LeaseExpired: &cairnv1.LeaseExpired{JobId: 14, LeaseId: 1}}})
	if got := strings.Join(pending("epoch 2"), ","); got != "/f13,/f17" {
		t.Fatalf("after /f13's lease expired: %s, want /f13,/f17", got)
	}
}

// persistJobs makes n ASYNC_THROUGH files, named by format from 0 up (file
// i gets version i+1), each with a PERSIST job for any worker: job i+1.
func persistJobs(apply func(sec int, evs ...*cairnv1.Event), format string, n int) {
	for i := range n {
		p := fmt.Sprintf(format, i)
		apply(1, asyncFile(p, uint64(i+1))...)
		apply(1, &cairnv1.Event{Kind: &cairnv1.Event_JobStarted{JobStarted: &cairnv1.JobStarted{
			Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, Path: p, Version: uint64(i + 1)}, Workers: []string{""}}}})
	}
}

// asyncFile returns the events that create and complete an ASYNC_THROUGH
// file (TO_BE_PERSISTED) that gets the given version.
func asyncFile(path string, version uint64) []*cairnv1.Event {
	return []*cairnv1.Event{
		{Kind: &cairnv1.Event_FileCreated{FileCreated: &cairnv1.FileCreated{Path: path, WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH}}},
		{Kind: &cairnv1.Event_FileCompleted{FileCompleted: &cairnv1.FileCompleted{Path: path, Version: version, Length: 1}}},
	}
}

func TestPersistTransitions(t *testing.T) {
	t.Parallel()
	m := open(t)
	idx := uint64(0)
	apply := func(sec int, evs ...*cairnv1.Event) Result {
		idx++
		for _, ev := range evs {
			ev.Time = at(sec)
		}
		res := m.Apply([]Entry{{Index: idx, Events: evs}})[0]
		for _, r := range res[:len(res)-1] {
			if r.Code != OK {
				t.Fatalf("entry %d: %v %s", idx, r.Code, r.Message)
			}
		}
		return res[len(res)-1]
	}
	must := func(r Result) Result {
		t.Helper()
		if r.Code != OK {
			t.Fatalf("%v %s", r.Code, r.Message)
		}
		return r
	}
	persist := func(p string, v uint64) *cairnv1.Event {
		return &cairnv1.Event{Kind: &cairnv1.Event_JobStarted{JobStarted: &cairnv1.JobStarted{
			Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, Path: p, Version: v}, Workers: []string{""}, DeliveryLimit: 1}}}
	}
	lease := func(job uint64, exp int) *cairnv1.Event {
		return &cairnv1.Event{Kind: &cairnv1.Event_TaskLeased{TaskLeased: &cairnv1.TaskLeased{JobId: job, WorkerId: "w1", Expiry: at(exp)}}}
	}
	state := func(p string) *cairnv1.File {
		f, _, err := m.File(p)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	queued := func() []string {
		fs, err := m.UploadQueue("", 100)
		if err != nil {
			t.Fatal(err)
		}
		var ps []string
		for _, f := range fs {
			ps = append(ps, fmt.Sprintf("%s@%d", f.GetPath(), f.GetVersion()))
		}
		return ps
	}
	const (
		TBP  = cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED
		ING  = cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTING
		DONE = cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED
	)

	apply(1, asyncFile("/p", 1)...)
	if q := queued(); len(q) != 1 || q[0] != "/p@1" {
		t.Fatalf("queue after an ASYNC_THROUGH write: %v", q)
	}
	job := must(apply(2, persist("/p", 1))).Value
	if f := state("/p"); f.GetPersistenceState() != ING || len(queued()) != 0 {
		t.Fatalf("after the upload started: %v, queue %v", f, queued())
	}
	if r := apply(2, persist("/p", 1)); !r.Repeat || r.Value != job {
		t.Fatalf("a second start of the same upload: %+v", r)
	}
	lid := must(apply(3, lease(job, 20))).Value
	must(apply(4, &cairnv1.Event{Kind: &cairnv1.Event_TaskReported{TaskReported: &cairnv1.TaskReported{
		JobId: job, LeaseId: lid, Seq: 1, Final: cairnv1.TaskState_TASK_STATE_SUCCEEDED, UfsMtime: at(4),
		Delta: &cairnv1.Counters{Uploaded: 1, UploadedBytes: 1}}}}))
	if f := state("/p"); f.GetPersistenceState() != DONE || f.GetUfsMtime().AsTime() != at(4).AsTime() {
		t.Fatalf("after the upload succeeded: %v", f)
	}

	// A new version while its upload runs: the upload is cancelled, the
	// newest version waits — until the cancelled worker's lease has ended.
	apply(5, &cairnv1.Event{Kind: &cairnv1.Event_FileCreated{FileCreated: &cairnv1.FileCreated{Path: "/p", WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH, Overwrite: true}}},
		&cairnv1.Event{Kind: &cairnv1.Event_FileCompleted{FileCompleted: &cairnv1.FileCompleted{Path: "/p", Version: 2, Length: 1}}})
	job2 := must(apply(6, persist("/p", 2))).Value
	must(apply(6, lease(job2, 30)))
	apply(7, &cairnv1.Event{Kind: &cairnv1.Event_FileCreated{FileCreated: &cairnv1.FileCreated{Path: "/p", WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH, Overwrite: true}}},
		&cairnv1.Event{Kind: &cairnv1.Event_FileCompleted{FileCompleted: &cairnv1.FileCompleted{Path: "/p", Version: 3, Length: 1}}})
	if j, _, _ := m.Job(job2); j.GetState() != cairnv1.JobState_JOB_STATE_CANCELLED {
		t.Fatalf("the upload of version 2 after version 3 was written: %v", j)
	}
	if q := queued(); len(q) != 1 || q[0] != "/p@3" {
		t.Fatalf("queue after version 3: %v", q)
	}
	for _, c := range []struct {
		sec  int
		busy bool
	}{{29, true}, {30, false}} {
		if busy, err := m.UploadBusy("/p", at(c.sec).AsTime()); err != nil || busy != c.busy {
			t.Fatalf("upload busy at %ds: %v %v, want %v", c.sec, busy, err, c.busy)
		}
	}

	// A delete while an upload runs cancels it and empties the queue.
	job3 := must(apply(31, persist("/p", 3))).Value
	must(apply(31, &cairnv1.Event{Kind: &cairnv1.Event_FileDeleted{FileDeleted: &cairnv1.FileDeleted{Path: "/p"}}}))
	if j, _, _ := m.Job(job3); j.GetState() != cairnv1.JobState_JOB_STATE_CANCELLED || len(queued()) != 0 {
		t.Fatalf("after the delete: job %v, queue %v", j, queued())
	}
	if z, _ := m.UfsDeletes(10); len(z) != 1 || z[0].Path != "/p" || z[0].UfsPath != "/p" {
		t.Fatalf("UFS copies to remove after deleting a file being uploaded: %v", z)
	}
	must(apply(32, &cairnv1.Event{Kind: &cairnv1.Event_UfsCopyRemoved{UfsCopyRemoved: &cairnv1.UfsCopyRemoved{Path: "/p"}}}))
	if z, _ := m.UfsDeletes(10); len(z) != 0 {
		t.Fatalf("UFS copies to remove after the removal: %v", z)
	}

	// An upload that runs out of attempts leaves the error on the file, out
	// of the queue, until a persist request.
	apply(40, asyncFile("/q", 4)...)
	job4 := must(apply(41, persist("/q", 4))).Value
	lid = must(apply(41, lease(job4, 45))).Value
	must(apply(46, &cairnv1.Event{Kind: &cairnv1.Event_LeaseExpired{LeaseExpired: &cairnv1.LeaseExpired{JobId: job4, LeaseId: lid}}}))
	if f := state("/q"); f.GetPersistenceState() != TBP || !strings.Contains(f.GetPersistError(), "delivery limit") || len(queued()) != 0 {
		t.Fatalf("after the upload failed: %v, queue %v", f, queued())
	}
	must(apply(47, &cairnv1.Event{Kind: &cairnv1.Event_PersistRequested{PersistRequested: &cairnv1.PersistRequested{Path: "/q"}}}))
	if f := state("/q"); f.GetPersistError() != "" || len(queued()) != 1 {
		t.Fatalf("after a persist request: %v, queue %v", f, queued())
	}
}

func TestUploadMapping(t *testing.T) {
	t.Parallel()
	m := open(t)
	um := &cairnv1.UploadMapping{CacheOnlyMountPoint: "/c",
		Mappings:  []*cairnv1.PathMapping{{CachePath: "/c/ckpt", UfsPath: "/archive"}},
		BlackList: []string{"*.tmp"}}
	evs := []*cairnv1.Event{{Time: at(1), Kind: &cairnv1.Event_UploadMappingSet{UploadMappingSet: &cairnv1.UploadMappingSet{Mapping: um}}}}
	write := func(p string, wt cairnv1.WriteType, v uint64) []*cairnv1.Event {
		return []*cairnv1.Event{
			{Time: at(1), Kind: &cairnv1.Event_FileCreated{FileCreated: &cairnv1.FileCreated{Path: p, WriteType: wt}}},
			{Time: at(1), Kind: &cairnv1.Event_FileCompleted{FileCompleted: &cairnv1.FileCompleted{Path: p, Version: v, Length: 1}}},
		}
	}
	evs = append(evs, write("/c/ckpt/step-1", cairnv1.WriteType_WRITE_TYPE_MUST_CACHE, 1)...)
	evs = append(evs, write("/c/ckpt/x.tmp", cairnv1.WriteType_WRITE_TYPE_MUST_CACHE, 2)...)
	evs = append(evs, write("/c/other", cairnv1.WriteType_WRITE_TYPE_MUST_CACHE, 3)...)
	evs = append(evs, write("/async.tmp", cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH, 4)...)
	for _, r := range m.Apply([]Entry{{Index: 1, Events: evs}})[0] {
		if r.Code != OK {
			t.Fatalf("%v %s", r.Code, r.Message)
		}
	}
	cases := []struct {
		path, ufs string
		state     cairnv1.PersistenceState
	}{
		{"/c/ckpt/step-1", "/archive/step-1", cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED},
		{"/c/ckpt/x.tmp", "", cairnv1.PersistenceState_PERSISTENCE_STATE_NOT_PERSISTED},
		{"/c/other", "", cairnv1.PersistenceState_PERSISTENCE_STATE_NOT_PERSISTED},
		{"/async.tmp", "", cairnv1.PersistenceState_PERSISTENCE_STATE_NOT_PERSISTED},
	}
	for _, c := range cases {
		f, _, _ := m.File(c.path)
		if f.GetPersistenceState() != c.state || f.GetUfsPath() != c.ufs {
			t.Errorf("%s: %s to %q, want %s to %q", c.path, f.GetPersistenceState(), f.GetUfsPath(), c.state, c.ufs)
		}
	}
	q, _ := m.UploadQueue("", 10)
	if len(q) != 1 || q[0].GetPath() != "/c/ckpt/step-1" {
		t.Fatalf("upload queue: %v", q)
	}
}

// TestLostFileComesBack: an upload that finds no copy anywhere leaves the
// file LOST; a worker's return makes it persistable again.
func TestLostFileComesBack(t *testing.T) {
	t.Parallel()
	m := open(t)
	apply := mustApplier(t, m)
	apply(1, reg("w1", "10.0.0.1:1", 1<<30))
	apply(2, asyncFile("/l", 1)...)
	apply(3, &cairnv1.Event{Kind: &cairnv1.Event_JobStarted{JobStarted: &cairnv1.JobStarted{
		Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, Path: "/l", Version: 1}, Workers: []string{""}, DeliveryLimit: 1}}})
	apply(3, &cairnv1.Event{Kind: &cairnv1.Event_TaskLeased{TaskLeased: &cairnv1.TaskLeased{JobId: 1, WorkerId: "w1", Expiry: at(10)}}})
	lease := taskZero(t, m, 1).GetLeaseId()
	apply(4, &cairnv1.Event{Kind: &cairnv1.Event_TaskReported{TaskReported: &cairnv1.TaskReported{
		JobId: 1, LeaseId: lease, Seq: 1, Final: cairnv1.TaskState_TASK_STATE_FAILED, Error: "no copy", NoCopy: true}}})
	if f, _, _ := m.File("/l"); f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_LOST {
		t.Fatalf("after an upload found no copy: %v", f)
	}
	apply(5, evOf("down", "w1"))
	apply(6, evOf("up", "w1"))
	f, _, _ := m.File("/l")
	q, _ := m.UploadQueue("", 10)
	if f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED || len(q) != 1 {
		t.Fatalf("after a worker came back: %v, queue %v", f, q)
	}
}

func taskZero(t *testing.T, m *Machine, job uint64) *cairnv1.Task {
	t.Helper()
	tk, found, err := m.Task(job, 0)
	if err != nil || !found {
		t.Fatalf("task 0 of job %d: %v %v", job, found, err)
	}
	return tk
}

// farFuture is a time every backoff has passed by.
var farFuture = time.Unix(1<<40, 0)

// TestTasksOfAWorkerThatLeft: a worker that goes DOWN fails the tasks bound
// to it, so their jobs end instead of waiting for good.
func TestTasksOfAWorkerThatLeft(t *testing.T) {
	t.Parallel()
	m := open(t)
	apply := mustApplier(t, m)
	apply(1, reg("w1", "10.0.0.1:1", 1<<30), reg("w2", "10.0.0.2:1", 1<<30))
	apply(2, &cairnv1.Event{Kind: &cairnv1.Event_JobStarted{JobStarted: &cairnv1.JobStarted{
		Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_CLEANUP}, Workers: []string{"w1", "w2"}}}})
	apply(3, &cairnv1.Event{Kind: &cairnv1.Event_TaskLeased{TaskLeased: &cairnv1.TaskLeased{JobId: 1, Index: 0, WorkerId: "w1", Expiry: at(10)}}})
	lease := taskZero(t, m, 1).GetLeaseId()
	apply(4, &cairnv1.Event{Kind: &cairnv1.Event_TaskReported{TaskReported: &cairnv1.TaskReported{
		JobId: 1, Index: 0, LeaseId: lease, Seq: 1, Final: cairnv1.TaskState_TASK_STATE_SUCCEEDED}}})
	apply(5, evOf("down", "w2"))
	j, _, _ := m.Job(1)
	tasks, _ := m.Tasks(1)
	if j.GetState() != cairnv1.JobState_JOB_STATE_FAILED || tasks[1].GetState() != cairnv1.TaskState_TASK_STATE_FAILED || !strings.Contains(tasks[1].GetLastError(), "DOWN") {
		t.Fatalf("after w2 went DOWN: job %v, task %v", j, tasks[1])
	}
	if w, _, _ := m.Worker("w1"); w.GetCleanEpoch() == 0 {
		t.Fatalf("w1's successful cleanup did not mark it clean: %v", w)
	}
}

// TestRefusedDeleteWritesNothing: a delete of a folder without recursive
// is refused before it changes anything.
func TestRefusedDeleteWritesNothing(t *testing.T) {
	t.Parallel()
	m := open(t)
	evs := append(asyncFile("/d/a", 1), &cairnv1.Event{Kind: &cairnv1.Event_FileDeleted{FileDeleted: &cairnv1.FileDeleted{Path: "/d"}}})
	res := m.Apply([]Entry{{Index: 1, Events: evs}})[0]
	if res[2].Code != FailedPrecondition {
		t.Fatalf("delete of a folder without recursive: %+v", res[2])
	}
	if _, found, _ := m.File("/d/a"); !found {
		t.Fatal("the refused delete removed a file")
	}
	if z, _ := m.UfsDeletes(10); len(z) != 0 {
		t.Fatalf("the refused delete queued UFS removals: %v", z)
	}
}

// mustApplier returns a function that applies events as the next entry, at
// a leader time in seconds, and fails the test on any rejection.
func mustApplier(t *testing.T, m *Machine) func(sec int, evs ...*cairnv1.Event) {
	idx := uint64(0)
	return func(sec int, evs ...*cairnv1.Event) {
		t.Helper()
		idx++
		for _, ev := range evs {
			ev.Time = at(sec)
		}
		for _, r := range m.Apply([]Entry{{Index: idx, Events: evs}})[0] {
			if r.Code != OK {
				t.Fatalf("entry %d: %v %s", idx, r.Code, r.Message)
			}
		}
	}
}

// TestPendingTasksOldQueueEntries: queue entries written before they
// carried their job's kind and path (an empty value) are still filtered
// right, by reading the job.
func TestPendingTasksOldQueueEntries(t *testing.T) {
	t.Parallel()
	m := open(t)
	apply := mustApplier(t, m)
	persistJobs(apply, "/f%d", 6)
	p := queuedPrefix("")
	var keys [][]byte
	if err := m.read(func(r pebble.Reader) error {
		return scan(r, p, func(k, v []byte) (bool, error) {
			if kind, path, ok := decodeQueued(v); !ok || kind != cairnv1.JobKind_JOB_KIND_PERSIST || !strings.HasPrefix(path, "/f") {
				t.Errorf("queue entry %x holds %q, want PERSIST and its path", k, v)
			}
			keys = append(keys, bytes.Clone(k))
			return true, nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := m.db.Set(k, nil, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	want := func(kind cairnv1.JobKind, path string) bool {
		return kind == cairnv1.JobKind_JOB_KIND_PERSIST && (path == "/f1" || path == "/f4")
	}
	tasks, js, err := m.PendingTasks("w1", nil, 10, farFuture, nil, want, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range tasks {
		got = append(got, js[i].GetSpec().GetPath())
	}
	if strings.Join(got, ",") != "/f1,/f4" {
		t.Fatalf("got %v, want /f1,/f4", got)
	}
}

// FuzzDecodeQueued: any queue value decodes without panicking, and what
// queuedValue writes reads back as it was.
func FuzzDecodeQueued(f *testing.F) {
	f.Add(uint32(cairnv1.JobKind_JOB_KIND_PERSIST), "/a/b", []byte{})
	f.Add(uint32(0), "", []byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, kind uint32, path string, raw []byte) {
		decodeQueued(raw)
		k, p, ok := decodeQueued(queuedValue(&cairnv1.JobSpec{Kind: cairnv1.JobKind(kind), Path: path}))
		if int32(kind) >= 0 && (!ok || k != cairnv1.JobKind(kind) || p != path) {
			t.Fatalf("round trip of (%d, %q) gave (%d, %q, %v)", kind, path, k, p, ok)
		}
	})
}
