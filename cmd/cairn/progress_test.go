package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func TestProgressLine(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	job := func(kind cairnv1.JobKind, state cairnv1.JobState, done, tasks uint32, cn *cairnv1.Counters, ended time.Duration) *cairnv1.Job {
		j := &cairnv1.Job{Id: 12, Spec: &cairnv1.JobSpec{Kind: kind}, State: state, Tasks: tasks, TasksDone: done,
			Counters: cn, CreatedTime: timestamppb.New(created)}
		if ended > 0 {
			j.EndedTime = timestamppb.New(created.Add(ended))
		}
		return j
	}
	running, succeeded := cairnv1.JobState_JOB_STATE_RUNNING, cairnv1.JobState_JOB_STATE_SUCCEEDED
	cases := []struct {
		name string
		job  *cairnv1.Job
		at   time.Duration // after the job was created
		want string
	}{
		{"rebalance, a third done", job(cairnv1.JobKind_JOB_KIND_REBALANCE, running, 1, 3,
			&cairnv1.Counters{Scanned: 300, Sent: 120, SentBytes: 40 << 20, Received: 118, ReceivedBytes: 39 << 20}, 0), 20 * time.Second,
			"job 12 rebalance RUNNING: tasks 1/3, scanned 300, sent 120 (40.0 MiB), received 118 (39.0 MiB), 2.0 MiB/s, ETA 40s"},
		{"cleanup, nothing done yet", job(cairnv1.JobKind_JOB_KIND_CLEANUP, running, 0, 4,
			&cairnv1.Counters{Scanned: 10, Removed: 2, ReclaimedBytes: 2048, KeptDiverged: 1, KeptPeerMissing: 2}, 0), 2 * time.Second,
			"job 12 cleanup RUNNING: tasks 0/4, scanned 10, removed 2 (2.0 KiB), kept 3, 1.0 KiB/s, ETA ?"},
		{"free, ended: the rate over its life, how long it took", job(cairnv1.JobKind_JOB_KIND_FREE, succeeded, 2, 2,
			&cairnv1.Counters{Scanned: 50, Freed: 40, FreedBytes: 4 << 20}, 4*time.Second), time.Hour,
			"job 12 free SUCCEEDED: tasks 2/2, scanned 50, freed 40 (4.0 MiB), 1.0 MiB/s, took 4s"},
		{"persist with errors", job(cairnv1.JobKind_JOB_KIND_PERSIST, cairnv1.JobState_JOB_STATE_FAILED, 1, 1,
			&cairnv1.Counters{Uploaded: 0, Errors: 3}, 1500*time.Millisecond), time.Minute,
			"job 12 persist FAILED: tasks 1/1, scanned 0, uploaded 0 (0 B), errors 3, 0 B/s, took 1.5s"},
		{"no time yet: no rate", job(cairnv1.JobKind_JOB_KIND_CLEANUP, running, 0, 1, nil, 0), 0,
			"job 12 cleanup RUNNING: tasks 0/1, scanned 0, removed 0 (0 B), kept 0, ETA ?"},
	}
	for _, c := range cases {
		if got := progressLine(c.job, created.Add(c.at)); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// TestPlainProgress: off a terminal, a line per change at most once a
// second, no carriage returns, and the final line always.
func TestPlainProgress(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	p := newJobProgress(&out, false)
	p.now = func() time.Time { return now }
	j := &cairnv1.Job{Id: 3, Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_CLEANUP}, State: cairnv1.JobState_JOB_STATE_RUNNING,
		Tasks: 2, CreatedTime: timestamppb.New(now), Counters: &cairnv1.Counters{}}
	p.update(j)
	j.Counters.Scanned = 5
	now = now.Add(300 * time.Millisecond)
	p.update(j) // too soon: not printed
	now = now.Add(time.Second)
	j.TasksDone = 1
	p.update(j)
	j.TasksDone, j.State, j.EndedTime = 2, cairnv1.JobState_JOB_STATE_SUCCEEDED, timestamppb.New(now)
	p.stop(j)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if strings.Contains(out.String(), "\r") || len(lines) != 3 {
		t.Fatalf("want 3 plain lines, got %q", out.String())
	}
	for i, want := range []string{"tasks 0/2", "tasks 1/2", "SUCCEEDED: tasks 2/2"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d is %q, want it to contain %q", i, lines[i], want)
		}
	}
}

// TestBarProgress: on a terminal the library draws a bar, which is
// cleared before the final line.
func TestBarProgress(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := newJobProgress(&out, true)
	j := &cairnv1.Job{Id: 3, Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_REBALANCE}, State: cairnv1.JobState_JOB_STATE_RUNNING,
		Tasks: 4, TasksDone: 1, CreatedTime: timestamppb.Now(), Counters: &cairnv1.Counters{Sent: 7}}
	p.update(j)
	j.State, j.TasksDone = cairnv1.JobState_JOB_STATE_SUCCEEDED, 4
	p.stop(j)
	s := out.String()
	if !strings.Contains(s, "25% [=====>") || !strings.Contains(s, "(1/4) tasks of job 3 rebalance: scanned 0, sent 7") {
		t.Fatalf("no bar drawn: %q", s)
	}
	if last := s[strings.LastIndex(s, "\r\x1b[K")+4:]; !strings.HasPrefix(last, "job 3 rebalance SUCCEEDED: tasks 4/4, scanned 0, sent 7") || !strings.HasSuffix(last, "\n") {
		t.Fatalf("the final line does not follow the cleared bar: %q", s)
	}
}
