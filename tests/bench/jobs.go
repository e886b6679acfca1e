package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// benchLeases measures lease cycles (lease, then a report that completes
// the task) per second on a 3-master journal, with many workers leasing
// at once. The tasks are PERSIST tasks (any worker may take them) made up
// front; the workers are registered over the API and run in this process:
// the cost measured is the journal's and the lease service's.
func benchLeases(args []string) error {
	fs := flag.NewFlagSet("leases", flag.ExitOnError)
	tasks := fs.Int("tasks", 45000, "tasks made up front")
	list := fs.String("workers", "16,64", "concurrent workers, comma-separated")
	batch := fs.Int("max-tasks", 8, "tasks a worker leases per call")
	dur := fs.Duration("duration", 4*time.Second, "measuring time per row")
	modes := fs.String("reports", "single,batch", "how workers report, comma-separated: single (one Report per task) or batch (one ReportBatch for the tasks of a lease)")
	profile := fs.String("profile", "", "write a CPU profile of the leader during the last row to this file")
	_ = fs.Parse(args)
	counts, err := parseCounts(*list)
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "cairn-bench-leases-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	ms, err := startMasters(root, 3, "--heartbeat-timeout", "1h", "--lease-ttl", "1m", "--persist-interval", "1h")
	if err != nil {
		return err
	}
	leader := leaderOf(ms)
	var addrs []string
	for _, m := range ms {
		addrs = append(addrs, m.api)
	}
	c := benchClient(addrs)
	ctx := context.Background()
	if _, err := c.Masters()[0].Jobs.UpdateSetting(ctx, connect.NewRequest(&cairnv1.UpdateSettingRequest{Name: "rebalance.enabled", Value: "false"})); err != nil {
		return err
	}
	maxW := 0
	for _, n := range counts {
		maxW = max(maxW, n)
	}
	for i := range maxW {
		if _, err := c.Masters()[0].Cluster.RegisterWorker(ctx, connect.NewRequest(&cairnv1.RegisterWorkerRequest{
			WorkerId: fmt.Sprintf("bw%d", i), Address: fmt.Sprintf("127.0.0.1:%d", 20000+i), CapacityBytes: 1 << 30})); err != nil {
			return err
		}
	}
	// The tasks, made by 64 concurrent callers: an ASYNC_THROUGH file in
	// the namespace (a PERSIST job needs one waiting for its upload; no
	// bytes anywhere, the bench plays the workers), then its PERSIST job
	// (the masters' own scheduler is held off with --persist-interval).
	start := time.Now()
	js, ns := c.Masters()[0].Jobs, c.Masters()[0].Namespace
	if err := forEach(64, *tasks, func(i int) error {
		p := fmt.Sprintf("/bench/f%d", i+1)
		cr, err := ns.CreateFile(ctx, connect.NewRequest(&cairnv1.CreateFileRequest{Path: p, WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH}))
		if err != nil {
			return err
		}
		v := cr.Msg.GetWrite().GetVersion()
		if _, err := ns.CompleteFile(ctx, connect.NewRequest(&cairnv1.CompleteFileRequest{Path: p, Version: v})); err != nil {
			return err
		}
		_, err = js.StartJob(ctx, connect.NewRequest(&cairnv1.StartJobRequest{Spec: &cairnv1.JobSpec{
			Kind: cairnv1.JobKind_JOB_KIND_PERSIST, Path: p, Version: v}}))
		return err
	}); err != nil {
		return fmt.Errorf("make tasks: %w", err)
	}
	fmt.Printf("%d PERSIST tasks made in %s; workers lease up to %d tasks per call\n\n",
		*tasks, time.Since(start).Round(time.Millisecond), *batch)
	fmt.Printf("| workers | reports | lease cycles/s | leases granted | reports | errors |\n|---|---|---|---|---|---|\n")
	lc := benchClient([]string{leader.api}).Masters()[0].Leases
	type row struct {
		workers int
		mode    string
	}
	var rows []row
	for _, n := range counts {
		for _, m := range strings.Split(*modes, ",") {
			if m != "single" && m != "batch" {
				return fmt.Errorf("--reports: %q is neither single nor batch", m)
			}
			rows = append(rows, row{n, m})
		}
	}
	for ri, rw := range rows {
		n := rw.workers
		var cycles, leased, errs atomic.Int64
		end := time.Now().Add(*dur)
		var wg sync.WaitGroup
		for w := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("bw%d", w)
				for time.Now().Before(end) {
					resp, err := lc.Lease(ctx, connect.NewRequest(&cairnv1.LeaseRequest{WorkerId: id,
						Kinds: []cairnv1.JobKind{cairnv1.JobKind_JOB_KIND_PERSIST}, MaxTasks: uint32(*batch), Wait: durationpb.New(0)}))
					if err != nil {
						errs.Add(1)
						continue
					}
					if len(resp.Msg.GetTasks()) == 0 {
						return // out of tasks
					}
					leased.Add(int64(len(resp.Msg.GetTasks())))
					reps := make([]*cairnv1.ReportRequest, len(resp.Msg.GetTasks()))
					for i, lt := range resp.Msg.GetTasks() {
						t := lt.GetTask()
						reps[i] = &cairnv1.ReportRequest{WorkerId: id,
							Lease: &cairnv1.TaskRef{JobId: t.GetJobId(), Index: t.GetIndex(), LeaseId: t.GetLeaseId()}, Seq: 1,
							Delta: &cairnv1.Counters{Uploaded: 1, UploadedBytes: 1 << 20}, Final: cairnv1.TaskState_TASK_STATE_SUCCEEDED}
					}
					if rw.mode == "batch" {
						r, err := lc.ReportBatch(ctx, connect.NewRequest(&cairnv1.ReportBatchRequest{WorkerId: id, Reports: reps}))
						if err != nil {
							errs.Add(int64(len(reps)))
							continue
						}
						for _, res := range r.Msg.GetResults() {
							if res.GetOutcome() == cairnv1.ReportOutcome_REPORT_OUTCOME_REFUSED {
								errs.Add(1)
							} else {
								cycles.Add(1)
							}
						}
						continue
					}
					for _, rep := range reps {
						if _, err := lc.Report(ctx, connect.NewRequest(rep)); err != nil {
							errs.Add(1)
							continue
						}
						cycles.Add(1)
					}
				}
			}()
		}
		t0 := time.Now()
		if *profile != "" && ri == len(rows)-1 {
			go fetchProfile(baseURL(leader.api), *profile, max(1, int(dur.Seconds())-1))
		}
		wg.Wait()
		el := time.Since(t0)
		fmt.Printf("| %d | %s | %.0f | %d | %d | %d |\n", n, rw.mode, float64(cycles.Load())/el.Seconds(), leased.Load(), cycles.Load(), errs.Load())
	}
	return nil
}

// benchRebalance measures how fast a rebalance moves cached files when a
// fourth worker joins three, against cp of the same number of files of the
// same size on the same disk (with and without a final sync: the block
// store syncs every file it commits), in one run.
func benchRebalance(args []string) error {
	fs := flag.NewFlagSet("rebalance", flag.ExitOnError)
	n := fs.Int("files", 1000, "files written before the fourth worker joins")
	profile := fs.String("profile", "", "write CPU profiles of w1 (a sender) and w4 (the receiver) during the rebalance to FILE.w1 and FILE.w4")
	fs.BoolVar(&traceInstead, "trace", false, "with --profile: execution traces (go tool trace) instead of CPU profiles")
	showTasks := fs.Bool("show-tasks", false, "print when each task was leased and ended, relative to the job's start")
	sizeKiB := fs.Int("size-kib", 1024, "size of each file in KiB")
	_ = fs.Parse(args)
	size := *sizeKiB << 10
	root, err := os.MkdirTemp("", "cairn-bench-rebalance-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	ms, err := startMasters(root, 1)
	if err != nil {
		return err
	}
	m := ms[0]
	capacity := fmt.Sprintf("%dMiB", 2*(*n)*(*sizeKiB)/1024+64)
	startWorker := func(id string) error { return m.startWorker(root, id, capacity) }
	c := benchClient([]string{m.api})
	ctx := context.Background()
	workersIn := func(k int) func() bool {
		return func() bool {
			r, err := c.Masters()[0].Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{}))
			return err == nil && len(r.Msg.GetMap().GetWorkers()) == k
		}
	}
	for i := range 3 {
		if err := startWorker(fmt.Sprintf("w%d", i+1)); err != nil {
			return err
		}
	}
	if err := waitFor(30*time.Second, "3 workers", workersIn(3)); err != nil {
		return err
	}
	files := c.Files()
	data := make([]byte, size)
	if err := forEach(8, *n, func(i int) error {
		buf := bytes.Clone(data)
		rand.Read(buf[:64])
		_, err := files.Put(ctx, fmt.Sprintf("/reb/f%d", i+1), bytes.NewReader(buf), int64(size), client.PutOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("write files: %w", err)
	}

	exec.Command("sync").Run() // start the rebalance with no dirty pages to write back
	if *profile != "" {
		r, err := c.Masters()[0].Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{}))
		if err != nil {
			return err
		}
		for _, w := range r.Msg.GetMap().GetWorkers() {
			if w.GetId() == "w1" {
				go fetchProfile(baseURL(w.GetAddress()), *profile+".w1", 3)
			}
		}
	}
	if err := startWorker("w4"); err != nil {
		return err
	}
	if err := waitFor(30*time.Second, "4 workers", workersIn(4)); err != nil {
		return err
	}
	cm, err := c.Masters()[0].Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{}))
	if err != nil {
		return err
	}
	epoch := cm.Msg.GetMap().GetEpoch()
	if *profile != "" {
		for _, w := range cm.Msg.GetMap().GetWorkers() {
			if w.GetId() == "w4" {
				go fetchProfile(baseURL(w.GetAddress()), *profile+".w4", 2)
			}
		}
	}
	var job *cairnv1.Job
	if err := waitFor(5*time.Minute, "the rebalance to end", func() bool {
		r, err := c.Masters()[0].Jobs.ListJobs(ctx, connect.NewRequest(&cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_REBALANCE}))
		if err != nil {
			return false
		}
		for _, j := range r.Msg.GetJobs() {
			if j.GetSpec().GetEpoch() == epoch && j.GetState() != cairnv1.JobState_JOB_STATE_RUNNING {
				job = j
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}
	if job.GetState() != cairnv1.JobState_JOB_STATE_SUCCEEDED {
		return fmt.Errorf("rebalance %d ended %s: %s", job.GetId(), job.GetState(), job.GetReason())
	}
	took := job.GetEndedTime().AsTime().Sub(job.GetCreatedTime().AsTime())
	if *showTasks {
		gj, _ := c.Masters()[0].Jobs.GetJob(ctx, connect.NewRequest(&cairnv1.GetJobRequest{Id: job.GetId()}))
		t0 := job.GetCreatedTime().AsTime()
		for _, tk := range gj.Msg.GetTasks() {
			fmt.Printf("task on %s: leased +%v, ended +%v, sent %d, received %d\n", tk.GetWorkerId(), tk.GetStartedTime().AsTime().Sub(t0).Round(time.Millisecond),
				tk.GetEndedTime().AsTime().Sub(t0).Round(time.Millisecond), tk.GetCounters().GetSent(), tk.GetCounters().GetReceived())
		}
		fmt.Println()
	}
	moved := job.GetCounters().GetSent()
	bytesMoved := job.GetCounters().GetSentBytes()
	mib := float64(bytesMoved) / (1 << 20)

	// The baseline: cp of as many files of the same size, on the same disk.
	src, dst := filepath.Join(root, "cp-src"), filepath.Join(root, "cp-dst")
	os.MkdirAll(src, 0o755)
	for i := range moved {
		rand.Read(data[:64])
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%d", i)), data, 0o644); err != nil {
			return err
		}
	}
	cp := func(withSync bool) (time.Duration, error) { return cpBest(src, dst, withSync) }
	plain, err := cp(false)
	if err != nil {
		return err
	}
	synced, err := cp(true)
	if err != nil {
		return err
	}
	rate := func(d time.Duration) float64 { return mib / d.Seconds() }
	fmt.Printf("%d files of %d KiB on 3 workers (R = 1); a 4th joins; the rebalance moved %d files (%.0f MiB)\n\n", *n, *sizeKiB, moved, mib)
	fmt.Printf("| measurement | time | MiB/s | ratio to cp |\n|---|---|---|---|\n")
	fmt.Printf("| cp -r of %d files (baseline; best of 2, after a sync) | %s | %.0f | 1.00 |\n", moved, plain.Round(time.Millisecond), rate(plain))
	fmt.Printf("| cp -r, then sync | %s | %.0f | %.2f |\n", synced.Round(time.Millisecond), rate(synced), plain.Seconds()/synced.Seconds())
	fmt.Printf("| rebalance (job start to end, leader time) | %s | %.0f | %.2f |\n", took.Round(time.Millisecond), rate(took), plain.Seconds()/took.Seconds())
	return nil
}

// fetchProfile saves a CPU profile of secs seconds from the process at base.
// traceInstead makes fetchProfile fetch execution traces.
var traceInstead bool

func fetchProfile(base, file string, secs int) {
	kind := "profile"
	if traceInstead {
		kind = "trace"
	}
	resp, err := benchHTTP().Get(fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", base, kind, secs))
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	io.Copy(f, resp.Body)
	f.Close()
}

// cpBest is the baseline the jobs benches compare with: the better of
// two cpOnce runs, each after removing dst and a sync.
func cpBest(src, dst string, withSync bool) (time.Duration, error) {
	var best time.Duration
	for range 2 {
		os.RemoveAll(dst)
		exec.Command("sync").Run()
		d, err := cpOnce(src, dst, withSync)
		if err != nil {
			return 0, err
		}
		if best == 0 || d < best {
			best = d
		}
	}
	return best, nil
}

// cpOnce times one cp -r of src to dst, with a sync after it if asked.
func cpOnce(src, dst string, withSync bool) (time.Duration, error) {
	t0 := time.Now()
	if out, err := exec.Command("cp", "-r", src, dst).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("cp: %v: %s", err, out)
	}
	if withSync {
		if err := exec.Command("sync").Run(); err != nil {
			return 0, err
		}
	}
	return time.Since(t0), nil
}
