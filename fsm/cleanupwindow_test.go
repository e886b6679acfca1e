package fsm

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// TestCleanupWindow: a cleanup started without a window gets the cluster
// setting's (2h by default) in its journaled spec; one with its own keeps
// it; a negative window and a bad setting are refused; a job's end frees
// its dedup key whether the window was filled in or given.
func TestCleanupWindow(t *testing.T) {
	t.Parallel()
	m := open(t)
	idx := uint64(0)
	apply := func(ev *cairnv1.Event) Result {
		idx++
		ev.Time = at(int(idx))
		return m.Apply([]Entry{{Index: idx, Events: []*cairnv1.Event{ev}}})[0][0]
	}
	start := func(w *durationpb.Duration) *cairnv1.Event {
		return &cairnv1.Event{Kind: &cairnv1.Event_JobStarted{JobStarted: &cairnv1.JobStarted{
			Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_CLEANUP, DontCleanupTime: w}, Workers: []string{"w1"}}}}
	}
	set := func(v string) *cairnv1.Event {
		return &cairnv1.Event{Kind: &cairnv1.Event_SettingChanged{SettingChanged: &cairnv1.SettingChanged{Name: SettingDontCleanupTime, Value: v}}}
	}
	stop := func(id uint64) *cairnv1.Event {
		return &cairnv1.Event{Kind: &cairnv1.Event_JobStopped{JobStopped: &cairnv1.JobStopped{JobId: id}}}
	}
	window := func(id uint64) time.Duration {
		t.Helper()
		j, found, err := m.Job(id)
		if err != nil || !found || j.GetSpec().GetDontCleanupTime() == nil {
			t.Fatalf("job %d: found %t, err %v, spec %v", id, found, err, j.GetSpec())
		}
		return j.GetSpec().GetDontCleanupTime().AsDuration()
	}
	steps := []struct {
		name   string
		ev     *cairnv1.Event
		code   Code
		value  uint64
		repeat bool
		window time.Duration // of job value, when OK and not 0
	}{
		{"default window", start(nil), OK, 1, false, 2 * time.Hour},
		{"the same again is the running job", start(nil), OK, 1, true, 2 * time.Hour},
		{"a per-job window is another job", start(durationpb.New(0)), OK, 2, false, 0},
		{"negative refused", start(durationpb.New(-time.Second)), InvalidArgument, 0, false, 0},
		{"stop the first", stop(1), OK, 1, false, -1},
		{"stop the second", stop(2), OK, 1, false, -1},
		{"after its end, a new one starts", start(nil), OK, 3, false, 2 * time.Hour},
		{"bad setting", set("soon"), InvalidArgument, 0, false, -1},
		{"negative setting", set("-1m"), InvalidArgument, 0, false, -1},
		{"setting", set("30m"), OK, 0, false, -1},
		{"stop", stop(3), OK, 1, false, -1},
		{"the setting's window", start(nil), OK, 4, false, 30 * time.Minute},
	}
	for _, s := range steps {
		r := apply(s.ev)
		if r.Code != s.code || (s.code == OK && (r.Value != s.value || r.Repeat != s.repeat)) {
			t.Fatalf("%s: got %v %q value %d repeat %t", s.name, r.Code, r.Message, r.Value, r.Repeat)
		}
		if s.code == OK && s.window >= 0 {
			if got := window(r.Value); got != s.window {
				t.Fatalf("%s: job %d has window %s, want %s", s.name, r.Value, got, s.window)
			}
		}
	}
	st, err := m.Settings()
	if err != nil || st.GetDontCleanupTime().AsDuration() != 30*time.Minute {
		t.Fatalf("settings %v, %v", st, err)
	}
}
