package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// A job round of the leader-kill and worker-partition drills: a rebalance
// or a cleanup with uploads beside it, a fault while both run, and the
// checks of their counters against the disks and the UFS afterwards.

// waitLeased waits until job holds at least one lease (and, when worker
// is given, one held by that worker).
func waitLeased(ctx context.Context, cli *client.Client, id uint64, worker string, d time.Duration) (*cairnv1.GetJobResponse, error) {
	deadline := time.Now().Add(d)
	for {
		j, err := getJob(ctx, cli, id)
		if err == nil {
			n, by := leased(j)
			if n > 0 && (worker == "" || by[worker]) {
				return j, nil
			}
			if j.GetJob().GetState() != cairnv1.JobState_JOB_STATE_RUNNING {
				return j, fmt.Errorf("job %d ended (%s) before it held a lease%s", id, j.GetJob().GetState(), map[bool]string{true: "", false: " on " + worker}[worker == ""])
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("job %d held no lease%s within %s", id, map[bool]string{true: "", false: " on " + worker}[worker == ""], d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runningUploads counts the PERSIST jobs of batch paths still running.
func runningUploads(ctx context.Context, cli *client.Client, prefix string) int {
	js, err := listJobs(ctx, cli, cairnv1.JobKind_JOB_KIND_PERSIST)
	if err != nil {
		return -1
	}
	n := 0
	for _, j := range js {
		if j.GetState() == cairnv1.JobState_JOB_STATE_RUNNING && len(j.GetSpec().GetPath()) > len(prefix) && j.GetSpec().GetPath()[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}

type upload struct {
	files map[string]fileRec
	err   error
}

// startUploads writes a batch of ASYNC_THROUGH files (replication 2, so
// that no change of R moves them) in the background; the persistence
// scheduler turns each into an upload as it completes.
func (r *runner) startUploads(ctx context.Context, round int) (string, <-chan upload) {
	prefix := fmt.Sprintf("/data/up/r%d/", round)
	ch := make(chan upload, 1)
	go func() {
		files, err := writeFiles(ctx, r.admin, paths(prefix+"f%02d", 40), 256<<10,
			client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH, Replication: 2})
		ch <- upload{files, err}
	}()
	return prefix, ch
}

// jobRound is one round of a drill that runs jobs: R changes (a rebalance)
// or a cleanup runs, uploads run beside it, and fault strikes once the job
// holds leases. Afterwards the job's counters are held against the block
// files that appeared on (or went from) the workers' disks, the files must
// sit on their owners, and the uploads' counters against the UFS. A nil
// fault: the round runs without one (and does not wait for leases).
func (r *runner) jobRound(ctx context.Context, round int, set map[string]fileRec, replication uint32, cleanup bool, holder string, fault func(job *cairnv1.GetJobResponse, uploads int) error) error {
	r.logf("round %d: R=%d%s, uploads beside it", round, replication, map[bool]string{true: " then a cleanup", false: ""}[cleanup])
	t0 := time.Now()
	before, err := r.c.disks(ctx)
	if err != nil {
		return err
	}
	r.logf("round %d: read the workers' disks in %s", round, time.Since(t0).Round(time.Millisecond))
	cm, err := setReplication(ctx, r.admin, replication)
	if err != nil {
		return err
	}
	r.logf("round %d: epoch %d", round, cm.GetEpoch())
	id, err := rebalanceFor(ctx, r.admin, cm.GetEpoch(), 30*time.Second)
	if err != nil {
		return err
	}
	// Let the uploads begin, so that the fault finds some running.
	uploadsRun := func(prefix string) {
		for t := time.Now(); time.Since(t) < 5*time.Second && runningUploads(ctx, r.admin, prefix) == 0; {
			time.Sleep(20 * time.Millisecond)
		}
	}
	kind := "rebalance"
	var prefix string
	var up <-chan upload
	if cleanup {
		kind = "cleanup"
		if _, err := waitJob(ctx, r.admin, id, cairnv1.JobState_JOB_STATE_SUCCEEDED, 2*time.Minute); err != nil {
			return err
		}
		// A cleanup of the set's copies takes a few hundred
		// milliseconds: it starts once the uploads run, so that a fault
		// finds both running.
		prefix, up = r.startUploads(ctx, round)
		uploadsRun(prefix)
		resp, err := client.Msg(ctx, r.admin, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.StartJobResponse], error) {
			// No safety window (cleanup.dont_cleanup_time, 2h by default):
			// the copies this cleanup must remove are seconds old.
			return s.Jobs.StartJob(ctx, connect.NewRequest(&cairnv1.StartJobRequest{Spec: &cairnv1.JobSpec{
				Kind: cairnv1.JobKind_JOB_KIND_CLEANUP, Prefix: "/data/set", DontCleanupTime: durationpb.New(0)}}))
		})
		if err != nil {
			return fmt.Errorf("start the cleanup: %w", err)
		}
		id = resp.GetJob().GetId()
	} else {
		prefix, up = r.startUploads(ctx, round)
		if fault != nil {
			if _, err := waitLeased(ctx, r.admin, id, holder, 30*time.Second); err != nil {
				return err
			}
			uploadsRun(prefix)
		}
	}
	if fault != nil {
		j, err := waitLeased(ctx, r.admin, id, holder, 30*time.Second)
		if err != nil {
			return err
		}
		if err := fault(j, runningUploads(ctx, r.admin, prefix)); err != nil {
			return err
		}
	}
	r.logf("round %d: waiting for job %d to end", round, id)
	done, err := waitJob(ctx, r.admin, id, cairnv1.JobState_JOB_STATE_SUCCEEDED, 3*time.Minute)
	if err != nil {
		return err
	}
	r.logf("round %d: job %d ended; checking disks and the UFS", round, id)
	u := <-up
	if u.err != nil {
		return u.err
	}
	after, err := r.c.disks(ctx)
	if err != nil {
		return err
	}
	r.logf("round %d: read the workers' disks again", round)
	r.saveJob(ctx, id)
	cn := done.GetJob().GetCounters()
	added, addedBytes, removed, removedBytes := diskDelta(before, after, set)
	var errs []error
	if cleanup {
		if uint64(removed) != cn.GetRemoved() || uint64(removedBytes) != cn.GetReclaimedBytes() || added != 0 {
			errs = append(errs, fmt.Errorf("cleanup %d counts %d copies and %d bytes removed; the disks lost %d copies (%d bytes) and gained %d", id, cn.GetRemoved(), cn.GetReclaimedBytes(), removed, removedBytes, added))
		}
	} else {
		if uint64(added) != cn.GetReceived() || uint64(addedBytes) != cn.GetReceivedBytes() || removed != 0 {
			errs = append(errs, fmt.Errorf("rebalance %d counts %d copies and %d bytes received; the disks gained %d copies (%d bytes) and lost %d", id, cn.GetReceived(), cn.GetReceivedBytes(), added, addedBytes, removed))
		}
		if cn.GetSent() != cn.GetReceived() || cn.GetSentBytes() != cn.GetReceivedBytes() {
			err := fmt.Errorf("rebalance %d sent %d files (%d bytes) and received %d (%d bytes)", id, cn.GetSent(), cn.GetSentBytes(), cn.GetReceived(), cn.GetReceivedBytes())
			// A worker cut off mid-send: the copies it had in flight may
			// have arrived (and been counted as received) while their
			// answers were lost with the lease (up to 8 at once, the
			// rebalance's parallelism, per lease lost).
			lost := 0
			for _, t := range done.GetTasks() {
				if t.GetWorkerId() == holder {
					lost = int(t.GetAttempt()) - 1
				}
			}
			if short := int64(cn.GetReceived()) - int64(cn.GetSent()); holder != "" && short > 0 && short <= int64(8*lost) {
				r.knownIssue(nil, "rebalance sent trails received after a cut: %v (docs/failover-drills.md, Known issues)", err)
			} else {
				errs = append(errs, err)
			}
		}
	}
	now, err := clusterMap(ctx, r.admin)
	if err != nil {
		return err
	}
	missing, extra, examples, err := placementOf(after, set, now)
	switch {
	case err != nil:
		errs = append(errs, err)
	case extra > 0 || uint64(missing) != cn.GetErrors():
		errs = append(errs, fmt.Errorf("after %s %d (%d files given up): %d copies missing on their owners, %d on workers that do not own them: %v", kind, id, cn.GetErrors(), missing, extra, examples))
	case missing > 0:
		r.figure("round %d: %s %d gave up %d copies (their owner was cut off) and left them on their previous owners", round, kind, id, missing)
	}
	r.logf("round %d: checking the uploads", round)
	uploaded, again, err := r.c.checkUploads(ctx, r.admin, u.files, holder == "", 2*time.Minute)
	errs = append(errs, err)
	if again > 0 {
		r.figure("round %d: %d uploads ran twice, counted twice (the worker cut off had uploaded, then lost its lease), each file once in the UFS", round, again)
	}
	if cleanup {
		r.figure("round %d: cleanup %d removed %d copies, %d bytes, as the disks show; %d uploads, %d bytes, as the UFS shows", round, id, cn.GetRemoved(), cn.GetReclaimedBytes(), len(u.files), uploaded)
	} else {
		r.figure("round %d: %s %d sent %d, received %d copies, %d bytes, as the disks show; %d uploads, %d bytes, as the UFS shows", round, kind, id, cn.GetSent(), cn.GetReceived(), cn.GetReceivedBytes(), len(u.files), uploaded)
	}
	return errors.Join(errs...)
}

// saveJob writes a job and its tasks as JSON into the drill's folder.
func (r *runner) saveJob(ctx context.Context, id uint64) {
	j, err := getJob(ctx, r.admin, id)
	if err != nil {
		return
	}
	b, err := protojson.MarshalOptions{Multiline: true, UseProtoNames: true}.Marshal(j)
	if err == nil {
		_ = os.WriteFile(filepath.Join(r.dir, fmt.Sprintf("job-%d.json", id)), b, 0o644)
	}
}
