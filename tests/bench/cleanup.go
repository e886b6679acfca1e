package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// benchCleanup measures cleanup's identity verification — one Stat per
// owner for a batch of paths against one Stat per file, in one run, over
// the copies of many files held by one worker — and a cleanup end to end
// after a fourth worker joined three.
func benchCleanup(args []string) error {
	fs := flag.NewFlagSet("cleanup", flag.ExitOnError)
	verify := fs.Int("verify-files", 100000, "copies the owner holds for the identity verification measurement")
	n := fs.Int("files", 20000, "files written before the fourth worker joins (end to end)")
	sizeKiB := fs.Int("size-kib", 16, "size of each file in KiB (end to end)")
	_ = fs.Parse(args)
	root, err := os.MkdirTemp("", "cairn-bench-cleanup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	ms, err := startMasters(root, 1, "--cleanup-settle", "1h")
	if err != nil {
		return err
	}
	m := ms[0]
	startWorker := func(id string) error { return m.startWorker(root, id, "8GiB") }
	c := benchClient([]string{m.api})
	ctx := context.Background()
	mapOf := func() (*cairnv1.ClusterMap, error) {
		r, err := c.Masters()[0].Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{}))
		if err != nil {
			return nil, err
		}
		return r.Msg.GetMap(), nil
	}
	for i := range 3 {
		if err := startWorker(fmt.Sprintf("w%d", i+1)); err != nil {
			return err
		}
	}
	if err := waitFor(30*time.Second, "3 workers", func() bool { cm, err := mapOf(); return err == nil && len(cm.GetWorkers()) == 3 }); err != nil {
		return err
	}
	cm, err := mapOf()
	if err != nil {
		return err
	}
	owner := cairnv1connect.NewDataServiceClient(benchHTTP(), baseURL(cm.GetWorkers()[0].GetAddress()))

	paths := make([]string, *verify)
	parallel := forEach
	// End to end: N files on three workers, a fourth joins, the rebalance
	// moves a quarter, then a cleanup removes the copies left behind.
	size := *sizeKiB << 10
	files := c.Files()
	start := time.Now()
	if err := parallel(16, *n, func(i int) error {
		data := bytes.Repeat([]byte{byte(i)}, size)
		copy(data, fmt.Sprintf("file %d", i))
		_, err := files.Put(ctx, fmt.Sprintf("/e2e/d%02d/f%06d", i%100, i), bytes.NewReader(data), int64(size), client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH})
		return err
	}); err != nil {
		return fmt.Errorf("write files: %w", err)
	}
	fmt.Printf("%d files of %d KiB written in %s\n\n", *n, *sizeKiB, time.Since(start).Round(time.Millisecond))
	if err := startWorker("w4"); err != nil {
		return err
	}
	if err := waitFor(30*time.Second, "4 workers", func() bool { cm, err := mapOf(); return err == nil && len(cm.GetWorkers()) == 4 }); err != nil {
		return err
	}
	jobs := c.Masters()[0].Jobs
	ended := func(kind cairnv1.JobKind) (*cairnv1.Job, error) {
		var job *cairnv1.Job
		err := waitFor(10*time.Minute, kind.String()+" to end", func() bool {
			r, err := jobs.ListJobs(ctx, connect.NewRequest(&cairnv1.ListJobsRequest{Kind: kind, PageSize: 1}))
			if err != nil || len(r.Msg.GetJobs()) == 0 || r.Msg.GetJobs()[0].GetState() == cairnv1.JobState_JOB_STATE_RUNNING {
				return false
			}
			job = r.Msg.GetJobs()[0]
			return true
		})
		return job, err
	}
	cm, err = mapOf()
	if err != nil {
		return err
	}
	if err := waitFor(time.Minute, "the rebalance of the join", func() bool {
		r, err := jobs.ListJobs(ctx, connect.NewRequest(&cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_REBALANCE, PageSize: 1}))
		return err == nil && len(r.Msg.GetJobs()) == 1 && r.Msg.GetJobs()[0].GetSpec().GetEpoch() == cm.GetEpoch() &&
			r.Msg.GetJobs()[0].GetState() == cairnv1.JobState_JOB_STATE_SUCCEEDED
	}); err != nil {
		return err
	}
	if _, err := jobs.StartJob(ctx, connect.NewRequest(&cairnv1.StartJobRequest{Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_CLEANUP}})); err != nil {
		return err
	}
	job, err := ended(cairnv1.JobKind_JOB_KIND_CLEANUP)
	if err != nil {
		return err
	}
	if job.GetState() != cairnv1.JobState_JOB_STATE_SUCCEEDED {
		return fmt.Errorf("cleanup %d ended %s: %s", job.GetId(), job.GetState(), job.GetReason())
	}
	took := job.GetEndedTime().AsTime().Sub(job.GetCreatedTime().AsTime())
	cn := job.GetCounters()
	fmt.Printf("| cleanup end to end (4 workers) | time | files scanned/s | copies removed/s | MiB/s reclaimed |\n|---|---|---|---|---|\n")
	fmt.Printf("| %d scanned, %d removed (%.0f MiB) | %s | %.0f | %.0f | %.1f |\n", cn.GetScanned(), cn.GetRemoved(), float64(cn.GetReclaimedBytes())/(1<<20),
		took.Round(time.Millisecond), float64(cn.GetScanned())/took.Seconds(), float64(cn.GetRemoved())/took.Seconds(), float64(cn.GetReclaimedBytes())/(1<<20)/took.Seconds())

	// Identity verification, last (its copies are not in the namespace):
	// one worker holds -verify-files small copies.
	fmt.Println()
	start = time.Now()
	if err := parallel(32, *verify, func(i int) error {
		p := fmt.Sprintf("/verify/d%03d/f%06d", i%1000, i)
		paths[i] = p
		data := []byte(p)
		st := owner.Write(ctx)
		st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Header{Header: &cairnv1.WriteHeader{
			Identity: &cairnv1.FileIdentity{Path: p, Version: 1, Length: uint64(len(data)), Checksum: xxhash.Sum64(data)}}}})
		st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Chunk{Chunk: data}})
		_, err := st.CloseAndReceive()
		return err
	}); err != nil {
		return fmt.Errorf("place copies on the owner: %w", err)
	}
	fmt.Printf("%d copies placed on the owner in %s\n\n", *verify, time.Since(start).Round(time.Millisecond))
	verified := func(files []*cairnv1.CachedFile) int { return len(files) }
	var found atomic.Int64
	start = time.Now()
	const batch = 1000
	if err := parallel(4, (*verify+batch-1)/batch, func(i int) error {
		r, err := owner.Stat(ctx, connect.NewRequest(&cairnv1.StatRequest{Paths: paths[i*batch : min((i+1)*batch, *verify)]}))
		if err == nil {
			found.Add(int64(verified(r.Msg.GetFiles())))
		}
		return err
	}); err != nil {
		return err
	}
	batched := time.Since(start)
	if found.Load() != int64(*verify) {
		return fmt.Errorf("batched Stat found %d of %d", found.Load(), *verify)
	}
	found.Store(0)
	start = time.Now()
	if err := parallel(4, *verify, func(i int) error {
		r, err := owner.Stat(ctx, connect.NewRequest(&cairnv1.StatRequest{Paths: paths[i : i+1]}))
		if err == nil {
			found.Add(int64(verified(r.Msg.GetFiles())))
		}
		return err
	}); err != nil {
		return err
	}
	single := time.Since(start)
	if found.Load() != int64(*verify) {
		return fmt.Errorf("per-file Stat found %d of %d", found.Load(), *verify)
	}
	rate := func(k int, d time.Duration) float64 { return float64(k) / d.Seconds() }
	fmt.Printf("| identity verification of %d copies (4 callers) | time | files/s | ratio |\n|---|---|---|---|\n", *verify)
	fmt.Printf("| one Stat per file (baseline) | %s | %.0f | 1.00 |\n", single.Round(time.Millisecond), rate(*verify, single))
	fmt.Printf("| one Stat per %d paths | %s | %.0f | %.1f |\n\n", batch, batched.Round(time.Millisecond), rate(*verify, batched), single.Seconds()/batched.Seconds())

	return nil
}
