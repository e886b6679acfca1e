package tests

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// addWorker starts one more worker that knows every master. It lives as
// long as the cluster's test (not a subtest that adds it).
func (c *cluster) addWorker(t testing.TB, id string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"worker", "--id", id, "--data", filepath.Join(c.root, id),
		"--api", freeAddr(t), "--masters", c.addrs(), "--capacity", "1GiB", "--log-level", "debug",
		"--token-file", workerTokenFile}, extra...)
	p := start(c.t, id, args...)
	c.workers = append(c.workers, p)
	return p
}

// jobs is a JobService call through any master.
func jobCall[T any](t testing.TB, c *cluster, fn func(context.Context, client.Services) (T, error)) (T, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return client.Call(ctx, c.client(), fn)
}

// listJobs is JobService.ListJobs through any master.
func listJobs(t testing.TB, c *cluster, req *cairnv1.ListJobsRequest) (*cairnv1.ListJobsResponse, error) {
	t.Helper()
	return jobCall(t, c, func(ctx context.Context, s client.Services) (*cairnv1.ListJobsResponse, error) {
		r, err := s.Jobs.ListJobs(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	})
}

func getJob(t testing.TB, c *cluster, id uint64) *cairnv1.GetJobResponse {
	t.Helper()
	resp, err := jobCall(t, c, func(ctx context.Context, s client.Services) (*cairnv1.GetJobResponse, error) {
		r, err := s.Jobs.GetJob(ctx, connect.NewRequest(&cairnv1.GetJobRequest{Id: id}))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	})
	if err != nil {
		t.Fatalf("get job %d: %v", id, err)
	}
	return resp
}

func startJob(t testing.TB, c *cluster, req *cairnv1.StartJobRequest) *cairnv1.StartJobResponse {
	t.Helper()
	resp, err := jobCall(t, c, func(ctx context.Context, s client.Services) (*cairnv1.StartJobResponse, error) {
		r, err := s.Jobs.StartJob(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	})
	if err != nil {
		t.Fatalf("start job: %v", err)
	}
	return resp
}

// rebalanceFor waits for the rebalance job of an epoch to exist and
// returns its id.
func rebalanceFor(t testing.TB, c *cluster, epoch uint64) uint64 {
	t.Helper()
	var id uint64
	eventually(t, 30*time.Second, fmt.Sprintf("a rebalance for epoch %d", epoch), func() bool {
		resp, err := listJobs(t, c, &cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_REBALANCE})
		if err != nil {
			return false
		}
		for _, j := range resp.GetJobs() {
			if j.GetSpec().GetEpoch() == epoch {
				id = j.GetId()
				return true
			}
		}
		return false
	})
	return id
}

// waitJobState waits for a job to reach state and returns it with its tasks.
func waitJobState(t testing.TB, c *cluster, id uint64, state cairnv1.JobState, d time.Duration) *cairnv1.GetJobResponse {
	t.Helper()
	var last *cairnv1.GetJobResponse
	eventually(t, d, fmt.Sprintf("job %d to be %s", id, state), func() bool {
		resp, err := jobCall(t, c, func(ctx context.Context, s client.Services) (*cairnv1.GetJobResponse, error) {
			r, err := s.Jobs.GetJob(ctx, connect.NewRequest(&cairnv1.GetJobRequest{Id: id}))
			if err != nil {
				return nil, err
			}
			return r.Msg, nil
		})
		if err != nil {
			return false
		}
		last = resp
		if s := resp.GetJob().GetState(); s != cairnv1.JobState_JOB_STATE_RUNNING && s != state {
			t.Fatalf("job %d ended %s, want %s: %s\ntasks: %v", id, s, state, resp.GetJob().GetReason(), resp.GetTasks())
		}
		return resp.GetJob().GetState() == state
	})
	return last
}

// mapWith waits for the cluster map to list n workers and returns it.
func mapWith(t testing.TB, c *cluster, n int) *cairnv1.ClusterMap {
	t.Helper()
	var cm *cairnv1.ClusterMap
	eventually(t, 30*time.Second, fmt.Sprintf("%d workers in the map", n), func() bool {
		resp, err := c.clusterMap()
		if err != nil || len(resp.GetMap().GetWorkers()) != n {
			return false
		}
		cm = resp.GetMap()
		return true
	})
	return cm
}

// cachedOn returns, per worker of cm, which of paths it caches at the
// given versions (batched Stat calls).
func cachedOn(t testing.TB, cm *cairnv1.ClusterMap, paths []string, versions map[string]uint64) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	for _, w := range cm.GetWorkers() {
		ds := newDataClient(w.GetAddress())
		have := map[string]bool{}
		for i := 0; i < len(paths); i += 1000 {
			resp, err := ds.Stat(context.Background(), connect.NewRequest(&cairnv1.StatRequest{Paths: paths[i:min(i+1000, len(paths))]}))
			if err != nil {
				t.Fatalf("stat on %s: %v", w.GetId(), err)
			}
			for _, f := range resp.Msg.GetFiles() {
				if f.GetIdentity().GetVersion() == versions[f.GetIdentity().GetPath()] {
					have[f.GetIdentity().GetPath()] = true
				}
			}
		}
		out[w.GetId()] = have
	}
	return out
}

// TestRebalance: 3 workers hold 10,000 files; a 4th joins and a rebalance
// starts by itself. Afterwards every file is on its owner, sent = received
// = the files whose owner changed, and a reader loop that ran throughout
// saw every file right and caused no UFS read. Then a 5th worker joins and
// the leader is killed mid-rebalance: the job completes under the new
// leader and its counters equal the files on the new worker's disk.
func TestRebalance(t *testing.T) {
	// A long heartbeat timeout: the 5th worker is paused while the leader dies.
	c := startClusterWith(t, 3, 3, []string{"--heartbeat-timeout", "30s", "--lease-ttl", "3s", "--cleanup-settle", "1h"}, nil)
	files := c.client().Files()
	const n = 10000
	paths := make([]string, n)
	sums := map[string]uint64{}
	versions := map[string]uint64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan int)
	start := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				p := fmt.Sprintf("/reb/d%02d/f%05d", i%64, i)
				data := randomBytes(32+i%300, uint64(i))
				f, err := files.Put(context.Background(), p, bytes.NewReader(data), int64(len(data)), client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH})
				if err != nil {
					t.Errorf("put %s: %v", p, err)
					continue
				}
				mu.Lock()
				paths[i], sums[p], versions[p] = p, xxhash.Sum64(data), f.GetVersion()
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("wrote %d files in %s", n, time.Since(start).Round(time.Millisecond))
	before := mapWith(t, c, 3)

	// Readers run throughout the rebalance, through the workers' API.
	stop := make(chan struct{})
	var reads, bad atomic.Int64
	var rwg sync.WaitGroup
	for r := range 4 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			rf := c.client().Files()
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := paths[rng.IntN(n)]
				var buf bytes.Buffer
				if _, err := rf.Get(context.Background(), p, &buf, client.GetOptions{NoShortCircuit: true}); err != nil || xxhash.Sum64(buf.Bytes()) != sums[p] {
					bad.Add(1)
					t.Errorf("read %s during the rebalance: %v (checksum %x, want %x)", p, err, xxhash.Sum64(buf.Bytes()), sums[p])
					continue
				}
				reads.Add(1)
			}
		}()
	}

	c.addWorker(t, "w4")
	after := mapWith(t, c, 4)
	id := rebalanceFor(t, c, after.GetEpoch())
	start = time.Now()
	job := waitJobState(t, c, id, cairnv1.JobState_JOB_STATE_SUCCEEDED, 2*time.Minute)
	t.Logf("rebalance %d took %s after it was seen", id, time.Since(start).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond) // let the readers run past the end too
	close(stop)
	rwg.Wait()

	oldMap, err := placement.FromClusterMap(before)
	if err != nil {
		t.Fatal(err)
	}
	newMap, err := placement.FromClusterMap(after)
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for _, p := range paths {
		if oldMap.OwnerIDs(p)[0] != newMap.OwnerIDs(p)[0] {
			moved++
		}
	}
	cn := job.GetJob().GetCounters()
	t.Logf("moved %d of %d files; job counters: %v; %d reads during the rebalance", moved, n, cn, reads.Load())
	if cn.GetSent() != uint64(moved) || cn.GetReceived() != uint64(moved) {
		t.Errorf("sent %d and received %d, want both %d (the files whose owner changed)", cn.GetSent(), cn.GetReceived(), moved)
	}
	if moved < n/6 || moved > n/3 {
		t.Errorf("%d files changed owner; about a quarter of %d expected", moved, n)
	}
	on := cachedOn(t, after, paths, versions)
	for _, p := range paths {
		if owner := newMap.OwnerIDs(p)[0]; !on[owner][p] {
			t.Fatalf("%s is not on its owner %s after the rebalance", p, owner)
		}
	}
	if reads.Load() == 0 || bad.Load() != 0 {
		t.Errorf("%d good reads and %d bad ones during the rebalance", reads.Load(), bad.Load())
	}
	for _, w := range after.GetWorkers() {
		if v := metric(t, w.GetAddress(), "cairn_worker_ufs_reads_total", ""); v != 0 {
			t.Errorf("%s read the UFS %v times; every file was cached", w.GetId(), v)
		}
	}

	t.Run("the leader dies mid-rebalance", func(t *testing.T) {
		w5 := c.addWorker(t, "w5")
		next := mapWith(t, c, 5)
		// Paused, w5 holds the senders mid-transfer while the leader dies.
		w5.signal(t, syscall.SIGSTOP)
		id := rebalanceFor(t, c, next.GetEpoch())
		eventually(t, 20*time.Second, "senders to hold leases", func() bool {
			leased := 0
			for _, tk := range getJob(t, c, id).GetTasks() {
				if tk.GetState() == cairnv1.TaskState_TASK_STATE_LEASED {
					leased++
				}
			}
			return leased >= 3
		})
		old := c.leader()
		old.kill()
		t.Logf("killed leader %s with rebalance %d running", old.id, id)
		w5.signal(t, syscall.SIGCONT)
		job := waitJobState(t, c, id, cairnv1.JobState_JOB_STATE_SUCCEEDED, 2*time.Minute)
		on := cachedOn(t, next, paths, versions)
		nm, err := placement.FromClusterMap(next)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, p := range paths {
			if nm.OwnerIDs(p)[0] == "w5" {
				want++
				if !on["w5"][p] {
					t.Fatalf("%s is not on its owner w5", p)
				}
			}
		}
		cn := job.GetJob().GetCounters()
		t.Logf("w5 holds %d files; job counters %v", len(on["w5"]), cn)
		if cn.GetSent() != uint64(len(on["w5"])) || cn.GetReceived() != uint64(len(on["w5"])) || len(on["w5"]) != want {
			t.Fatalf("sent %d, received %d; w5 holds %d files and owns %d", cn.GetSent(), cn.GetReceived(), len(on["w5"]), want)
		}
		old.restart(t)
		old.waitUp(t)
	})

	t.Run("the leader dies mid-cleanup", func(t *testing.T) {
		cm := mapWith(t, c, 5)
		used := func() float64 {
			sum := 0.0
			for _, w := range cm.GetWorkers() {
				sum += metric(t, w.GetAddress(), "cairn_worker_cache_used_bytes", "")
			}
			return sum
		}
		w5 := c.workers[len(c.workers)-1]
		before := used()
		// Paused, w5 holds the others' identity checks while the leader dies.
		w5.signal(t, syscall.SIGSTOP)
		out, err := cairn(t, "job", "start", "cleanup", "--dont-cleanup-time", "0s", "--masters", c.addrs()) // the copies are minutes old
		if err != nil {
			t.Fatalf("start cleanup: %v\n%s", err, out)
		}
		id, err := strconv.ParseUint(strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]), 10, 64)
		if err != nil {
			t.Fatalf("job id in %q: %v", out, err)
		}
		eventually(t, 20*time.Second, "workers to hold cleanup leases", func() bool {
			leased := 0
			for _, tk := range getJob(t, c, id).GetTasks() {
				if tk.GetState() == cairnv1.TaskState_TASK_STATE_LEASED {
					leased++
				}
			}
			return leased >= 3
		})
		old := c.leader()
		old.kill()
		w5.signal(t, syscall.SIGCONT)
		job := waitJobState(t, c, id, cairnv1.JobState_JOB_STATE_SUCCEEDED, 2*time.Minute)
		freed := before - used()
		cn := job.GetJob().GetCounters()
		t.Logf("cleanup %d: %v; %.0f bytes freed on disk", id, cn, freed)
		if cn.GetReclaimedBytes() != uint64(freed) || cn.GetRemoved() == 0 {
			t.Fatalf("the journal says %d bytes reclaimed, the disks freed %.0f", cn.GetReclaimedBytes(), freed)
		}
		pm, err := placement.FromClusterMap(cm)
		if err != nil {
			t.Fatal(err)
		}
		on := cachedOn(t, cm, paths, versions)
		for _, p := range paths {
			for w, set := range on {
				if set[p] != pm.IsOwner(w, p) {
					t.Fatalf("%s on %s: cached %t, owner %t", p, w, set[p], pm.IsOwner(w, p))
				}
			}
		}
		old.restart(t)
		old.waitUp(t)
	})
}
