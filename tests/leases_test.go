package tests

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// TestJobLeases: leases expire when a worker dies and the task runs again
// when it returns, counted once; with a delivery limit of 1 the task fails
// with the reason; StartJob is idempotent and StopJob of a finished job
// succeeds; a new epoch aborts a running rebalance and starts one for the
// new map.
func TestJobLeases(t *testing.T) {
	c := startClusterWith(t, 1, 2, []string{"--heartbeat-timeout", "60s", "--lease-ttl", "2s"}, nil)
	w1, w2 := c.workers[0], c.workers[1]
	if out, err := cairn(t, "job", "settings", "rebalance.enabled", "false", "--masters", c.addrs()); err != nil {
		t.Fatalf("disable rebalance: %v\n%s", err, out)
	}
	files := c.client().Files()
	for i := range 40 {
		data := randomBytes(100+i, uint64(i))
		if _, err := files.Put(context.Background(), fmt.Sprintf("/l/f%d", i), bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	epoch := mapWith(t, c, 2).GetEpoch()
	// The controller's rebalance of the last join ends first.
	waitJobState(t, c, rebalanceFor(t, c, epoch), cairnv1.JobState_JOB_STATE_SUCCEEDED, 30*time.Second)
	rebalance := &cairnv1.StartJobRequest{Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_REBALANCE}}
	// taskOf returns w's task in a job.
	taskOf := func(id uint64, w string) *cairnv1.Task {
		for _, tk := range getJob(t, c, id).GetTasks() {
			if tk.GetWorkerId() == w {
				return tk
			}
		}
		t.Fatalf("job %d has no task for %s", id, w)
		return nil
	}
	// holding waits for w1 to hold its task (working on it: with w2 paused,
	// its calls to w2 wait).
	holding := func(id uint64) {
		eventually(t, 20*time.Second, "w1 to hold its task", func() bool {
			return taskOf(id, "w1").GetState() == cairnv1.TaskState_TASK_STATE_LEASED
		})
	}

	t.Run("a killed worker's task runs again when it returns", func(t *testing.T) {
		// 20 copies on w1 of files w2 owns: w1's task must send them. With w2
		// paused, w1 is killed in the middle of sending.
		cm := mapWith(t, c, 2)
		pm, err := placement.FromClusterMap(cm)
		if err != nil {
			t.Fatal(err)
		}
		var w1Addr, w2Addr string
		for _, w := range cm.GetWorkers() {
			switch w.GetId() {
			case "w1":
				w1Addr = w.GetAddress()
			case "w2":
				w2Addr = w.GetAddress()
			}
		}
		versions := map[string]uint64{}
		var misplaced []string
		for i := 0; len(misplaced) < 20; i++ {
			p := fmt.Sprintf("/misplaced/f%d", i)
			if pm.OwnerIDs(p)[0] != "w2" {
				continue
			}
			// A real file (on w2, its owner), whose copy moves to w1.
			data := randomBytes(1000+i, uint64(i))
			f, err := files.Put(context.Background(), p, bytes.NewReader(data), int64(len(data)), client.PutOptions{})
			if err != nil {
				t.Fatal(err)
			}
			versions[p] = f.GetVersion()
			st := newDataClient(w1Addr).Write(context.Background())
			st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Header{Header: &cairnv1.WriteHeader{
				Identity: &cairnv1.FileIdentity{Path: p, Version: f.GetVersion(), Length: uint64(len(data)), Checksum: xxhash.Sum64(data)}}}})
			st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Chunk{Chunk: data}})
			if _, err := st.CloseAndReceive(); err != nil {
				t.Fatalf("place %s on w1: %v", p, err)
			}
			if _, err := newDataClient(w2Addr).Delete(context.Background(), connect.NewRequest(&cairnv1.DataServiceDeleteRequest{Path: p})); err != nil {
				t.Fatal(err)
			}
			misplaced = append(misplaced, p)
		}
		w2.signal(t, syscall.SIGSTOP) // holds w1's sends (and the job) open
		first := startJob(t, c, rebalance)
		again := startJob(t, c, rebalance)
		if !first.GetCreated() || again.GetCreated() || again.GetJob().GetId() != first.GetJob().GetId() {
			t.Fatalf("two starts: %v then %v", first, again)
		}
		id := first.GetJob().GetId()
		if first.GetJob().GetSpec().GetEpoch() != epoch {
			t.Fatalf("rebalance for epoch %d, the map is at %d", first.GetJob().GetSpec().GetEpoch(), epoch)
		}
		holding(id)
		w1.kill()
		eventually(t, 20*time.Second, "w1's lease to expire", func() bool {
			tk := taskOf(id, "w1")
			return tk.GetState() == cairnv1.TaskState_TASK_STATE_PENDING && strings.Contains(tk.GetLastError(), "expired")
		})
		w1.restart(t)
		eventually(t, 20*time.Second, "w1 to lease its task again", func() bool {
			tk := taskOf(id, "w1")
			return tk.GetAttempt() == 2 && tk.GetState() == cairnv1.TaskState_TASK_STATE_LEASED
		})
		w2.signal(t, syscall.SIGCONT)
		job := waitJobState(t, c, id, cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
		cn := job.GetJob().GetCounters()
		if cn.GetSent() != 20 || cn.GetReceived() != 20 {
			t.Fatalf("20 files to move, one attempt killed mid-way: counters %v", cn)
		}
		if on := cachedOn(t, cm, misplaced, versions); len(on["w2"]) != 20 {
			t.Fatalf("w2 holds %d of the 20 files sent to it", len(on["w2"]))
		}
		stop, err := jobCall(t, c, func(ctx context.Context, s client.Services) (*cairnv1.StopJobResponse, error) {
			r, err := s.Jobs.StopJob(ctx, connect.NewRequest(&cairnv1.StopJobRequest{Id: id}))
			if err != nil {
				return nil, err
			}
			return r.Msg, nil
		})
		if err != nil || stop.GetStopped() != 0 {
			t.Fatalf("stop a finished job: %v %v", stop, err)
		}
	})

	t.Run("delivery limit 1 fails the task with the reason", func(t *testing.T) {
		w2.signal(t, syscall.SIGSTOP)
		req := &cairnv1.StartJobRequest{Spec: rebalance.GetSpec(), DeliveryLimit: 1}
		id := startJob(t, c, req).GetJob().GetId()
		holding(id)
		w1.kill()
		eventually(t, 20*time.Second, "w1's task to fail", func() bool {
			tk := taskOf(id, "w1")
			return tk.GetState() == cairnv1.TaskState_TASK_STATE_FAILED && strings.Contains(tk.GetLastError(), "delivery limit")
		})
		w2.signal(t, syscall.SIGCONT)
		job := waitJobState(t, c, id, cairnv1.JobState_JOB_STATE_FAILED, time.Minute)
		if !strings.Contains(job.GetJob().GetReason(), "w1") {
			t.Fatalf("failed job's reason %q does not name w1", job.GetJob().GetReason())
		}
		out, err := cairn(t, "job", "wait", fmt.Sprint(id), "--masters", c.addrs())
		if err == nil || !strings.Contains(out, "FAILED") {
			t.Fatalf("job wait of a failed job: err %v\n%s", err, out)
		}
		w1.restart(t)
	})

	t.Run("a new epoch aborts a running rebalance", func(t *testing.T) {
		if out, err := cairn(t, "job", "settings", "rebalance.enabled", "true", "--masters", c.addrs()); err != nil {
			t.Fatalf("enable rebalance: %v\n%s", err, out)
		}
		w2.signal(t, syscall.SIGSTOP)
		id := startJob(t, c, rebalance).GetJob().GetId()
		holding(id)
		// A cleanup beside a running rebalance is refused, naming the job.
		if out, err := cairn(t, "job", "start", "cleanup", "--masters", c.addrs()); err == nil || !strings.Contains(out, "FailedPrecondition") && !strings.Contains(out, "failed_precondition") || !strings.Contains(out, fmt.Sprintf("REBALANCE job %d", id)) {
			t.Fatalf("cleanup during a rebalance: %v\n%s", err, out)
		}
		if out, err := cairn(t, "cluster", "replication", "2", "--masters", c.addrs()); err != nil {
			t.Fatalf("replication 2: %v\n%s", err, out)
		}
		old := waitJobState(t, c, id, cairnv1.JobState_JOB_STATE_CANCELLED, 20*time.Second)
		if !strings.Contains(old.GetJob().GetReason(), "superseded by epoch") {
			t.Fatalf("aborted rebalance's reason: %q", old.GetJob().GetReason())
		}
		next := rebalanceFor(t, c, mapWith(t, c, 2).GetEpoch())
		w2.signal(t, syscall.SIGCONT)
		job := waitJobState(t, c, next, cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
		// R went from 1 to 2: each of the 40 files written first has a second
		// owner to receive it (the 20 moved ones are on both workers already).
		if cn := job.GetJob().GetCounters(); cn.GetReceived() != 40 || cn.GetSent() != 40 {
			t.Fatalf("R 1 → 2 over 40 files: counters %v", cn)
		}
		out, err := cairn(t, "show", "rebalance", "--masters", c.addrs())
		if err != nil || !strings.Contains(out, "OBJECTS RECV") || !strings.Contains(out, fmt.Sprintf("g%d", next)) {
			t.Fatalf("show rebalance: %v\n%s", err, out)
		}
	})
}

// TestReportBatch: ReportBatch applies each report as Report would, in
// one call through a follower: a repeat is not counted twice, a refused
// report does not refuse the others, and a report that names another
// worker refuses the call.
func TestReportBatch(t *testing.T) {
	c := startClusterWith(t, 3, 0, []string{"--heartbeat-timeout", "1h"}, nil)
	ctx := context.Background()
	call := func(fn func(ctx context.Context, s client.Services) error) {
		t.Helper()
		if _, err := jobCall(t, c, func(ctx context.Context, s client.Services) (struct{}, error) { return struct{}{}, fn(ctx, s) }); err != nil {
			t.Fatal(err)
		}
	}
	call(func(ctx context.Context, s client.Services) error {
		_, err := s.Jobs.UpdateSetting(ctx, connect.NewRequest(&cairnv1.UpdateSettingRequest{Name: "rebalance.enabled", Value: "false"}))
		return err
	})
	for _, id := range []string{"rb1", "rb2"} {
		call(func(ctx context.Context, s client.Services) error {
			_, err := s.Cluster.RegisterWorker(ctx, connect.NewRequest(&cairnv1.RegisterWorkerRequest{WorkerId: id, Address: freeAddr(t), CapacityBytes: 1 << 30}))
			return err
		})
	}
	mapWith(t, c, 2)
	id := startJob(t, c, &cairnv1.StartJobRequest{Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_REBALANCE}}).GetJob().GetId()
	// Every call goes to a follower, which forwards it to the leader.
	var follower *master
	for _, m := range c.masters {
		if m != c.leader() {
			follower = m
			break
		}
	}
	leases := adminClient([]string{follower.api}).Masters()[0].Leases
	lr, err := leases.Lease(ctx, connect.NewRequest(&cairnv1.LeaseRequest{WorkerId: "rb1", Kinds: []cairnv1.JobKind{cairnv1.JobKind_JOB_KIND_REBALANCE}, MaxTasks: 4}))
	if err != nil || len(lr.Msg.GetTasks()) != 1 || lr.Msg.GetTasks()[0].GetTask().GetJobId() != id {
		t.Fatalf("lease rb1's task of job %d: %v %v", id, lr, err)
	}
	tk := lr.Msg.GetTasks()[0].GetTask()
	ref := &cairnv1.TaskRef{JobId: tk.GetJobId(), Index: tk.GetIndex(), LeaseId: tk.GetLeaseId()}
	done := &cairnv1.ReportRequest{WorkerId: "rb1", Lease: ref, Seq: 1, Delta: &cairnv1.Counters{Scanned: 7}, Final: cairnv1.TaskState_TASK_STATE_SUCCEEDED}
	stale := &cairnv1.ReportRequest{WorkerId: "rb1", Lease: &cairnv1.TaskRef{JobId: id, Index: 1 - tk.GetIndex(), LeaseId: 999}, Seq: 1, Delta: &cairnv1.Counters{Scanned: 100}}

	if _, err := leases.ReportBatch(ctx, connect.NewRequest(&cairnv1.ReportBatchRequest{WorkerId: "rb2", Reports: []*cairnv1.ReportRequest{done}})); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "worker_id") {
		t.Fatalf("a batch of rb2 with a report of rb1: %v, want InvalidArgument naming worker_id", err)
	}
	resp, err := leases.ReportBatch(ctx, connect.NewRequest(&cairnv1.ReportBatchRequest{WorkerId: "rb1", Reports: []*cairnv1.ReportRequest{done, done, stale}}))
	if err != nil {
		t.Fatal(err)
	}
	rs := resp.Msg.GetResults()
	if len(rs) != 3 {
		t.Fatalf("%d results to 3 reports", len(rs))
	}
	if !rs[0].GetCounted() || rs[0].GetOutcome() != cairnv1.ReportOutcome_REPORT_OUTCOME_COUNTED || rs[0].GetTask().GetState() != cairnv1.TaskState_TASK_STATE_SUCCEEDED {
		t.Fatalf("the report: %v", rs[0])
	}
	if rs[1].GetCounted() || rs[1].GetOutcome() != cairnv1.ReportOutcome_REPORT_OUTCOME_REPEAT {
		t.Fatalf("the same report again: %v, want a repeat, not counted", rs[1])
	}
	if rs[2].GetCounted() || rs[2].GetOutcome() != cairnv1.ReportOutcome_REPORT_OUTCOME_REFUSED ||
		rs[2].GetRefusal() != cairnv1.Refusal_REFUSAL_FAILED_PRECONDITION || rs[2].GetMessage() == "" {
		t.Fatalf("a report under a lease that does not exist: %v, want refused (FAILED_PRECONDITION) with a reason", rs[2])
	}
	if n := getJob(t, c, id).GetJob().GetCounters().GetScanned(); n != 7 {
		t.Fatalf("job counters: scanned %d, want 7 (once, and nothing of the refused report)", n)
	}
}
