package tests

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// TestClearStaleWhileOneRuns: a clear-stale asked for while one submitted
// earlier has not finished starts nothing; over Connect and over REST its
// answer names each worker still running the earlier job with the seed's
// message and that job's id (a paused worker cannot finish its task, so
// it is always among them). Once the job ends, clear-stale starts anew.
func TestClearStaleWhileOneRuns(t *testing.T) {
	t.Parallel()
	// A long heartbeat timeout: the paused worker stays in the map.
	c := startClusterWith(t, 1, 3, []string{"--heartbeat-timeout", "60s"}, nil)
	setting(t, c, "cleanup.auto", "false")
	cm := mapWith(t, c, 3)
	waitJobState(t, c, rebalanceFor(t, c, cm.GetEpoch()), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
	clearStale := func() *cairnv1.ClearStaleResponse {
		t.Helper()
		resp, err := jobCall(t, c, func(ctx context.Context, s client.Services) (*cairnv1.ClearStaleResponse, error) {
			r, err := s.Jobs.ClearStale(ctx, connect.NewRequest(&cairnv1.ClearStaleRequest{}))
			if err != nil {
				return nil, err
			}
			return r.Msg, nil
		})
		if err != nil {
			t.Fatalf("ClearStale: %v", err)
		}
		return resp
	}
	w3 := c.workers[2]
	t.Logf("pausing w3")
	w3.signal(t, syscall.SIGSTOP)
	first := clearStale()
	id := first.GetJob().GetId()
	if !first.GetCreated() || len(first.GetErrors()) != 0 || first.GetJob().GetTasks() != 3 {
		t.Fatalf("the first clear-stale: %v", first)
	}
	want := fmt.Sprintf("a job submitted earlier has not finished running (job %d)", id)
	// checkErrors checks an errors map: w3 is named, every worker named
	// has a task in the job, each with the seed's message and the job's id.
	checkErrors := func(what string, errs map[string]string) {
		t.Helper()
		if errs["w3"] != want {
			t.Fatalf("%s: w3 (paused, its task unfinished) is given %q, want %q; errors %v", what, errs["w3"], want, errs)
		}
		tasks := map[string]bool{}
		for _, tk := range getJob(t, c, id).GetTasks() {
			tasks[tk.GetWorkerId()] = true
		}
		for w, e := range errs {
			if e != want || !tasks[w] {
				t.Fatalf("%s: %s is given %q; want only workers with a task in job %d, with %q", what, w, e, id, want)
			}
		}
	}

	again := clearStale()
	if again.GetCreated() || again.GetJob().GetId() != id {
		t.Fatalf("ClearStale while job %d runs: created %v, job %d", id, again.GetCreated(), again.GetJob().GetId())
	}
	checkErrors("Connect", again.GetErrors())

	code, body := cacheREST(t, http.MethodPost, c.masters[0].api, "", adminToken, `{"op":"clear-stale"}`)
	raw, _ := body["errors"].(map[string]any)
	errs := map[string]string{}
	for w, e := range raw {
		errs[w] = fmt.Sprint(e)
	}
	if code != http.StatusOK || body["created"] != false || body["job"] != float64(id) {
		t.Fatalf("POST clear-stale while job %d runs: HTTP %d %v", id, code, body)
	}
	checkErrors("REST", errs)

	// The CLI's clear-stale is the same call: it says the job is already
	// running and names w3 with the seed's message.
	out, err := cairn(t, "job", "start", "clear-stale", "--masters", c.addrs())
	if err != nil || !strings.Contains(out, fmt.Sprintf("job %d (cleanup) already running", id)) || !strings.Contains(out, "w3: "+want) {
		t.Fatalf("cairn job start clear-stale while job %d runs: %v\n%s", id, err, out)
	}

	if last := lastCleanupID(t, c); last != id {
		t.Fatalf("a clear-stale while job %d ran started cleanup %d", id, last)
	}
	t.Logf("resuming w3")
	w3.signal(t, syscall.SIGCONT)
	waitJobState(t, c, id, cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
	t.Logf("job %d done", id)
	next := clearStale()
	if !next.GetCreated() || next.GetJob().GetId() <= id || len(next.GetErrors()) != 0 {
		t.Fatalf("clear-stale after job %d ended: %v", id, next)
	}
	waitJobState(t, c, next.GetJob().GetId(), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
}
