package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// Raft's leader lease on the masters (journal defaults): a leader that has
// not heard from a quorum for this long steps down.
const leaderLease = 250 * time.Millisecond

// The drills' master flags set the task lease to this (main.go).
const leaseTTL = 3 * time.Second

func paths(format string, n int, args ...any) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf(format, append(args, i)...)
	}
	return out
}

// startTogether starts every master of a new cluster at the same instant,
// again and again: they must form one cluster each time, and no master may
// exit (Docker's restart policy would hide an exit that a second try
// papered over, so the restart count must stay 0).
func startTogether(ctx context.Context, r *runner) error {
	var took, spread []time.Duration
	for i := 1; i <= r.o.together; i++ {
		if err := r.c.down(ctx); err != nil {
			return err
		}
		if err := r.c.compose(ctx, "up", "--no-start"); err != nil {
			return err
		}
		// docker-compose (v1) attaches a created container to its first
		// network only, and the others when it starts it: the drill starts
		// them itself, so it attaches the clients' network first.
		for _, m := range r.c.masters {
			if err := r.c.d.connect(ctx, r.c.network("edge"), r.c.container(m), r.c.edgeIP(m), []string{m}); err != nil {
				return err
			}
		}
		start := func(svcs []string) error {
			errs := make([]error, len(svcs))
			var wg sync.WaitGroup
			for k, s := range svcs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[k] = r.c.d.start(ctx, r.c.container(s))
				}()
			}
			wg.Wait()
			return errors.Join(errs...)
		}
		t0 := time.Now()
		if err := start(r.c.masters); err != nil {
			return err
		}
		if err := start(r.c.workers); err != nil {
			return err
		}
		_, err := r.c.waitFormed(ctx, 60*time.Second)
		formedAt := time.Now()
		// From the first master's process start (Docker's record), not
		// from the API calls, which take a while to set a container up.
		first, last := t0, t0
		for k, m := range r.c.masters {
			if ci, ierr := r.c.d.inspect(ctx, r.c.container(m)); ierr == nil {
				if st := ci.State.StartedAt; k == 0 || st.Before(first) {
					first = st
				}
				if st := ci.State.StartedAt; k == 0 || st.After(last) {
					last = st
				}
			}
		}
		formed := formedAt.Sub(first)
		if rs := r.c.restarts(ctx); len(rs) > 0 {
			err = errors.Join(err, fmt.Errorf("containers exited and Docker restarted them: %v", rs))
		}
		if err != nil {
			dir := filepath.Join(r.dir, fmt.Sprintf("start-%02d", i))
			_ = os.MkdirAll(dir, 0o755)
			r.c.saveLogs(dir)
			return fmt.Errorf("start %d of %d: %w (logs in %s)", i, r.o.together, err, dir)
		}
		took, spread = append(took, formed), append(spread, last.Sub(first))
		r.logf("start %d: masters started within %s of each other; one cluster of 3 voters and 3 workers %s after the first", i, last.Sub(first).Round(time.Millisecond), formed.Round(time.Millisecond))
	}
	r.head("%d of %d starts formed one cluster, p50 %s max %s", len(took), r.o.together, percentile(took, 0.5).Round(time.Millisecond), percentile(took, 1).Round(time.Millisecond))
	r.figure("%d clusters started with every master at once (their processes started within %s of each other at most): each formed one cluster of 3 voters and 3 workers, and no process exited; first start to formed p50 %s max %s",
		len(took), percentile(spread, 1).Round(time.Millisecond), percentile(took, 0.5).Round(time.Millisecond), percentile(took, 1).Round(time.Millisecond))
	// A history on the last of them.
	r.startLoad(ctx, 1)
	sleep(ctx, 3*time.Second)
	r.stopLoad(ctx)
	return nil
}

// leaderKill: SIGKILL of the leader's container during a rebalance or a
// cleanup, with uploads running, round after round.
func leaderKill(ctx context.Context, r *runner) error {
	r.logf("fresh cluster")
	if err := r.c.fresh(ctx); err != nil {
		return err
	}
	r.logf("writing the data set")
	set, err := writeFiles(ctx, r.admin, paths("/data/set/f%04d", 1000), 16<<10, client.PutOptions{})
	if err != nil {
		return err
	}
	r.startLoad(ctx, 2)
	for round := 1; round <= r.o.rounds; round++ {
		cleanup := round%2 == 0
		replication := uint32(2)
		if cleanup {
			replication = 1
		}
		err := r.jobRound(ctx, round, set, replication, cleanup, "", func(j *cairnv1.GetJobResponse, uploads int) error {
			leader, err := r.c.leader(ctx, 10*time.Second)
			if err != nil {
				return err
			}
			n, _ := leased(j)
			r.figure("round %d: SIGKILL of the leader %s with %s job %d holding %d leases and %d uploads running", round, leader, j.GetJob().GetSpec().GetKind(), j.GetJob().GetId(), n, uploads)
			kill, err := r.c.d.killer(ctx, r.c.container(leader))
			if err != nil {
				return err
			}
			var direct bool
			return r.faultAt(ctx, true, true, func() error {
				var err error
				direct, err = kill()
				return err
			}, func() error {
				if !direct {
					r.figure("round %d: killed through the Docker API (no kill(2) here): the figure counts from the call's start", round)
				}
				sleep(ctx, 2*time.Second)
				if err := r.c.d.start(ctx, r.c.container(leader)); err != nil {
					return err
				}
				return r.c.caughtUp(ctx, leader, time.Minute)
			})
		})
		if err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
	}
	r.stopLoad(ctx)
	return readFiles(ctx, r.admin, set)
}

// stepDown waits for master m to say it no longer leads, and returns how
// long that took from since.
func (r *runner) stepDown(ctx context.Context, m string, since time.Time, d time.Duration) (time.Duration, error) {
	s := r.c.one(m)
	for {
		st, err := status(ctx, s)
		if err == nil && st.GetRaftState() != cairnv1.RaftState_RAFT_STATE_LEADER {
			return time.Since(since), nil
		}
		if time.Since(since) > d || ctx.Err() != nil {
			return 0, fmt.Errorf("%s still says it leads %s after the fault", m, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lastAck is when master m last acknowledged a write (the workload's or
// the probe's) returned in [from, to], measured from from; -1 if none.
func (r *runner) lastAck(m string, from, to int64) time.Duration {
	last := int64(-1)
	r.h.mu.Lock()
	for _, o := range r.h.ops {
		if o.OK && o.Write && o.Master == m && o.Return >= from && o.Return <= to {
			last = max(last, o.Return-from)
		}
	}
	r.h.mu.Unlock()
	r.p.mu.Lock()
	for _, a := range r.p.acks {
		if a.master == m && a.return_ >= from && a.return_ <= to {
			last = max(last, a.return_-from)
		}
	}
	r.p.mu.Unlock()
	return time.Duration(last)
}

// leaderPartition: the leader is cut off from the other masters and the
// workers (docker network disconnect) while clients still reach it, then
// healed. It must stop acknowledging writes within its lease, and nothing
// it acknowledged may be lost (the history says).
func leaderPartition(ctx context.Context, r *runner) error {
	if err := r.c.fresh(ctx); err != nil {
		return err
	}
	r.startLoad(ctx, 3)
	for round := 1; round <= r.o.rounds; round++ {
		leader, err := r.c.leader(ctx, 10*time.Second)
		if err != nil {
			return err
		}
		var cut time.Time
		var from, to int64
		var down time.Duration
		err = r.fault(ctx, true, func() error {
			cut, from = time.Now(), r.h.now()
			return r.c.cut(ctx, leader)
		}, func() error {
			var err error
			if down, err = r.stepDown(ctx, leader, cut, 3*time.Second); err != nil {
				return err
			}
			sleep(ctx, time.Until(cut.Add(3*time.Second)))
			to = r.h.now()
			if err := r.c.heal(ctx, leader); err != nil {
				return err
			}
			return r.c.caughtUp(ctx, leader, time.Minute)
		})
		if err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		last := r.lastAck(leader, from, to)
		r.stepDowns, r.lastAcks = append(r.stepDowns, down), append(r.lastAcks, last)
		r.figure("round %d: leader %s cut off for 3s: it stepped down after %s; its last write acknowledged %s after the cut",
			round, leader, down.Round(time.Millisecond), map[bool]string{true: "none", false: last.Round(time.Millisecond).String()}[last < 0])
		if last > 2*leaderLease {
			r.fail(fmt.Errorf("round %d: %s acknowledged a write %s after it was cut off, past its %s lease", round, leader, last, leaderLease))
		}
		sleep(ctx, time.Second)
	}
	r.head("cut-off leader stepped down within %s, last ack %s after the cut", percentile(r.stepDowns, 1).Round(time.Millisecond), percentile(r.lastAcks, 1).Round(time.Millisecond))
	r.stopLoad(ctx)
	return nil
}

// leaderPause: docker pause of the leader for longer than the election
// timeout, then unpause: it steps down, and nothing it answers afterwards
// is stale (the history says).
func leaderPause(ctx context.Context, r *runner) error {
	if err := r.c.fresh(ctx); err != nil {
		return err
	}
	r.startLoad(ctx, 4)
	for round := 1; round <= r.o.rounds; round++ {
		leader, err := r.c.leader(ctx, 10*time.Second)
		if err != nil {
			return err
		}
		var down time.Duration
		err = r.fault(ctx, true, func() error {
			return r.c.d.pause(ctx, r.c.container(leader))
		}, func() error {
			sleep(ctx, 2*time.Second)
			resumed := time.Now()
			if err := r.c.d.unpause(ctx, r.c.container(leader)); err != nil {
				return err
			}
			var err error
			if down, err = r.stepDown(ctx, leader, resumed, 5*time.Second); err != nil {
				return err
			}
			return r.c.caughtUp(ctx, leader, time.Minute)
		})
		if err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		r.figure("round %d: leader %s paused for 2s; after it resumed it said it no longer leads within %s", round, leader, down.Round(time.Millisecond))
		r.stepDowns = append(r.stepDowns, down)
		sleep(ctx, time.Second)
	}
	r.head("resumed leader stepped down within %s", percentile(r.stepDowns, 1).Round(time.Millisecond))
	r.stopLoad(ctx)
	return nil
}

// workerPartition: a worker holding a rebalance lease (and, if it has
// one, an upload's) is cut off for longer than the lease; its leases
// expire, uploads move to other workers, and when it is back the counters
// are exact.
func workerPartition(ctx context.Context, r *runner) error {
	if err := r.c.fresh(ctx); err != nil {
		return err
	}
	set, err := writeFiles(ctx, r.admin, paths("/data/set/f%04d", 1000), 16<<10, client.PutOptions{})
	if err != nil {
		return err
	}
	r.startLoad(ctx, 5)
	rounds := min(r.o.rounds, 2)
	for round := 1; round <= rounds; round++ {
		w := r.c.workers[round-1]
		if round > 1 {
			// Back to one copy of each file, so that R=2 moves them again.
			if err := r.jobRound(ctx, 100+round, set, 1, true, "", nil); err != nil {
				return fmt.Errorf("round %d: back to R=1: %w", round, err)
			}
		}
		var jobID uint64
		err := r.jobRound(ctx, round, set, 2, false, w, func(j *cairnv1.GetJobResponse, uploads int) error {
			jobID = j.GetJob().GetId()
			r.figure("round %d: %s cut off for %s with a lease on rebalance %d and %d uploads running", round, w, 2*leaseTTL+2*time.Second, jobID, uploads)
			return r.fault(ctx, false, func() error {
				return r.c.cut(ctx, w)
			}, func() error {
				sleep(ctx, 2*leaseTTL+2*time.Second)
				return r.c.heal(ctx, w)
			})
		})
		if err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		j, err := getJob(ctx, r.admin, jobID)
		if err != nil {
			return err
		}
		expired := 0
		for _, t := range j.GetTasks() {
			if t.GetAttempt() > 1 {
				expired += int(t.GetAttempt() - 1)
			}
		}
		r.figure("round %d: rebalance %d needed %d leases beyond the first", round, jobID, expired)
		if expired == 0 {
			r.fail(fmt.Errorf("round %d: %s was cut off past its lease, yet every task of rebalance %d ran on its first lease", round, w, jobID))
		}
	}
	moved, err := r.movedUploads(ctx)
	if err != nil {
		return err
	}
	r.figure("%d uploads ran on more than one lease", moved)
	r.head("%d rounds: leases expired and moved, counters = disks and UFS", rounds)
	r.stopLoad(ctx)
	return readFiles(ctx, r.admin, set)
}

// movedUploads counts the PERSIST jobs whose task needed another lease.
func (r *runner) movedUploads(ctx context.Context) (int, error) {
	js, err := listJobs(ctx, r.admin, cairnv1.JobKind_JOB_KIND_PERSIST)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, j := range js {
		jr, err := getJob(ctx, r.admin, j.GetId())
		if err != nil {
			return 0, err
		}
		for _, t := range jr.GetTasks() {
			if t.GetAttempt() > 1 {
				n++
			}
		}
	}
	return n, nil
}

// workers is every worker the journal knows (any state).
func (r *runner) knownWorkers(ctx context.Context) ([]*cairnv1.Worker, error) {
	resp, err := client.Msg(ctx, r.admin, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.GetClusterMapResponse], error) {
		return s.Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{}))
	})
	if err != nil {
		return nil, err
	}
	return resp.GetWorkers(), nil
}

// sameWorkers checks that the journal still knows exactly the workers it
// knew (same ids, registered at the same time: none registered anew).
func sameWorkers(before, after []*cairnv1.Worker) error {
	if len(before) != len(after) {
		return fmt.Errorf("the journal knew %d workers and now knows %d", len(before), len(after))
	}
	for i := range before {
		b, a := before[i], after[i]
		if b.GetId() != a.GetId() || !proto.Equal(b.GetRegisteredTime(), a.GetRegisteredTime()) {
			return fmt.Errorf("worker %s (registered %s) is now %s (registered %s)", b.GetId(), b.GetRegisteredTime().AsTime(), a.GetId(), a.GetRegisteredTime().AsTime())
		}
	}
	return nil
}

// waitWorker waits for a worker to be ACTIVE in the map and to answer.
func (r *runner) waitWorker(ctx context.Context, w string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		cm, err := clusterMap(ctx, r.admin)
		if err == nil {
			for _, mw := range cm.GetWorkers() {
				if mw.GetId() == w {
					ds := cairnv1connect.NewDataServiceClient(r.w.data, "http://"+mw.GetAddress())
					sctx, cancel := context.WithTimeout(ctx, time.Second)
					_, err := ds.Stat(sctx, connect.NewRequest(&cairnv1.StatRequest{Paths: []string{"/"}}))
					cancel()
					if err == nil {
						return nil
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s was not back in the map and answering within %s", w, d)
}

// rollingRestart restarts every master in turn (docker restart: SIGTERM,
// then start) while the clients run, then every worker.
func rollingRestart(ctx context.Context, r *runner) error {
	if err := r.c.fresh(ctx); err != nil {
		return err
	}
	set, err := writeFiles(ctx, r.admin, paths("/data/set/f%04d", 300), 16<<10, client.PutOptions{})
	if err != nil {
		return err
	}
	known, err := r.knownWorkers(ctx)
	if err != nil {
		return err
	}
	r.startLoad(ctx, 6)
	var backIn []time.Duration
	for _, svc := range append(append([]string{}, r.c.masters...), r.c.workers...) {
		t := time.Now()
		err := r.fault(ctx, false, func() error {
			return r.c.d.restart(ctx, r.c.container(svc), 10*time.Second)
		}, func() error {
			if svc[0] == 'm' {
				return r.c.caughtUp(ctx, svc, time.Minute)
			}
			return r.waitWorker(ctx, svc, time.Minute)
		})
		if err != nil {
			return fmt.Errorf("restart %s: %w", svc, err)
		}
		r.figure("%s restarted and back in %s", svc, time.Since(t).Round(time.Millisecond))
		backIn = append(backIn, time.Since(t))
		sleep(ctx, time.Second)
	}
	now, err := r.knownWorkers(ctx)
	if err != nil {
		return err
	}
	r.fail(sameWorkers(known, now))
	r.head("6 restarts, slowest back in %s", percentile(backIn, 1).Round(time.Millisecond))
	r.stopLoad(ctx)
	return readFiles(ctx, r.admin, set)
}

// fullRestart restarts every container at once (docker-compose restart)
// with jobs done and the clients running: the cluster, its workers, jobs,
// counters and files come back as they were.
func fullRestart(ctx context.Context, r *runner) error {
	if err := r.c.fresh(ctx); err != nil {
		return err
	}
	set, err := writeFiles(ctx, r.admin, paths("/data/set/f%04d", 1000), 16<<10, client.PutOptions{})
	if err != nil {
		return err
	}
	cm, err := setReplication(ctx, r.admin, 2)
	if err != nil {
		return err
	}
	reb, err := rebalanceFor(ctx, r.admin, cm.GetEpoch(), 30*time.Second)
	if err != nil {
		return err
	}
	if _, err := waitJob(ctx, r.admin, reb, cairnv1.JobState_JOB_STATE_SUCCEEDED, 2*time.Minute); err != nil {
		return err
	}
	_, up := r.startUploads(ctx, 1)
	u := <-up
	if u.err != nil {
		return u.err
	}
	if _, _, err := r.c.checkUploads(ctx, r.admin, u.files, true, 2*time.Minute); err != nil {
		return err
	}
	type snapshot struct {
		cluster string
		epoch   uint64
		workers []*cairnv1.Worker
		jobs    map[uint64]*cairnv1.Job
		files   map[string]*cairnv1.File
	}
	snap := func() (*snapshot, error) {
		s := &snapshot{jobs: map[uint64]*cairnv1.Job{}, files: map[string]*cairnv1.File{}}
		resp, err := client.Msg(ctx, r.admin, func(ctx context.Context, sv client.Services) (*connect.Response[cairnv1.GetClusterMapResponse], error) {
			return sv.Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{}))
		})
		if err != nil {
			return nil, err
		}
		s.cluster, s.epoch, s.workers = resp.GetClusterId(), resp.GetMap().GetEpoch(), resp.GetWorkers()
		for _, k := range []cairnv1.JobKind{cairnv1.JobKind_JOB_KIND_REBALANCE, cairnv1.JobKind_JOB_KIND_PERSIST} {
			js, err := listJobs(ctx, r.admin, k)
			if err != nil {
				return nil, err
			}
			for _, j := range js {
				s.jobs[j.GetId()] = j
			}
		}
		err = r.admin.Files().List(ctx, "/data", func(f *cairnv1.File) error {
			s.files[f.GetPath()] = f
			return nil
		})
		return s, err
	}
	before, err := snap()
	if err != nil {
		return err
	}
	r.startLoad(ctx, 7)
	var formed, restart time.Duration
	err = r.fault(ctx, false, func() error {
		t := time.Now()
		err := r.c.compose(ctx, "restart", "-t", "10")
		restart = time.Since(t)
		return err
	}, func() error {
		t := time.Now()
		_, err := r.c.waitFormed(ctx, 2*time.Minute)
		formed = time.Since(t)
		return err
	})
	if err != nil {
		return err
	}
	after, err := snap()
	if err != nil {
		return err
	}
	var errs []error
	if before.cluster != after.cluster || after.epoch < before.epoch {
		errs = append(errs, fmt.Errorf("cluster %s at epoch %d came back as %s at epoch %d", before.cluster, before.epoch, after.cluster, after.epoch))
	}
	errs = append(errs, sameWorkers(before.workers, after.workers))
	for id, j := range before.jobs {
		if !proto.Equal(j, after.jobs[id]) {
			errs = append(errs, fmt.Errorf("job %d was %v and is now %v", id, j, after.jobs[id]))
		}
	}
	for p, f := range before.files {
		if !proto.Equal(f, after.files[p]) {
			errs = append(errs, fmt.Errorf("%s was %v and is now %v", p, f, after.files[p]))
		}
	}
	if len(after.files) != len(before.files) {
		errs = append(errs, fmt.Errorf("%d files under /data before, %d after", len(before.files), len(after.files)))
	}
	r.head("docker-compose restart %s, formed %s later; workers, %d jobs and %d files as they were", restart.Round(100*time.Millisecond), formed.Round(time.Millisecond), len(before.jobs), len(before.files))
	r.figure("docker-compose restart took %s; the cluster formed again %s after it returned; %d jobs, %d files, %d workers as they were", restart.Round(time.Millisecond), formed.Round(time.Millisecond), len(before.jobs), len(before.files), len(before.workers))
	r.stopLoad(ctx)
	errs = append(errs, readFiles(ctx, r.admin, set), readFiles(ctx, r.admin, u.files))
	if _, _, err := r.c.checkUploads(ctx, r.admin, u.files, true, time.Minute); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
