package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// setting changes a job controller setting through the CLI.
func setting(t *testing.T, c *cluster, name, value string) {
	t.Helper()
	if out, err := cairn(t, "job", "settings", name, value, "--masters", c.addrs()); err != nil {
		t.Fatalf("set %s %s: %v\n%s", name, value, err, out)
	}
}

// placeCopy writes a copy of data with an identity straight into one
// worker's cache, as a stale or misplaced copy would be.
func placeCopy(t *testing.T, addr, path string, version uint64, data []byte) {
	t.Helper()
	placeIdentity(t, addr, &cairnv1.FileIdentity{Path: path, Version: version}, data)
}

// placeIdentity is placeCopy with the rest of the identity (ETag, custom
// metadata) as id gives it; its length and checksum are data's.
func placeIdentity(t *testing.T, addr string, id *cairnv1.FileIdentity, data []byte) {
	t.Helper()
	id.Length, id.Checksum = uint64(len(data)), xxhash.Sum64(data)
	st := newDataClient(addr).Write(context.Background())
	st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Header{Header: &cairnv1.WriteHeader{Identity: id}}})
	st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Chunk{Chunk: data}})
	if _, err := st.CloseAndReceive(); err != nil {
		t.Fatalf("place %s@%d on %s: %v", id.GetPath(), id.GetVersion(), addr, err)
	}
}

// lastCleanup returns the newest cleanup job after id (0: any), waiting
// for it to exist.
func lastCleanup(t *testing.T, c *cluster, after uint64) *cairnv1.Job {
	t.Helper()
	var job *cairnv1.Job
	eventually(t, 60*time.Second, fmt.Sprintf("a cleanup job after job %d", after), func() bool {
		resp, err := listJobs(t, c, &cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_CLEANUP, PageSize: 1})
		if err != nil || len(resp.GetJobs()) == 0 || resp.GetJobs()[0].GetId() <= after {
			return false
		}
		job = resp.GetJobs()[0]
		return true
	})
	return job
}

// checkPlacement checks that every file is on exactly its owners under cm
// and nowhere else, and reads back right.
func checkPlacement(t *testing.T, c *cluster, cm *cairnv1.ClusterMap, sums map[string]uint64, versions map[string]uint64) {
	t.Helper()
	pm, err := placement.FromClusterMap(cm)
	if err != nil {
		t.Fatal(err)
	}
	paths := slices.Sorted(func(yield func(string) bool) {
		for p := range sums {
			if !yield(p) {
				return
			}
		}
	})
	on := cachedOn(t, cm, paths, versions)
	for _, p := range paths {
		var have []string
		for w, set := range on {
			if set[p] {
				have = append(have, w)
			}
		}
		if want := pm.OwnerIDs(p); strings.Join(sorted(have), ",") != strings.Join(sorted(want), ",") {
			var held []string
			for _, w := range cm.GetWorkers() {
				resp, err := newDataClient(w.GetAddress()).Stat(context.Background(), connect.NewRequest(&cairnv1.StatRequest{Paths: []string{p}}))
				if err == nil && len(resp.Msg.GetFiles()) == 1 {
					held = append(held, fmt.Sprintf("%s@%d", w.GetId(), resp.Msg.GetFiles()[0].GetIdentity().GetVersion()))
				}
			}
			for _, w := range c.workers {
				b, _ := os.ReadFile(w.log)
				for _, line := range strings.Split(string(b), "\n") {
					if strings.Contains(line, p+`"`) {
						t.Logf("%s: %s", w.name, line)
					}
				}
			}
			t.Fatalf("%s (version %d) is on %v, its owners are %v; copies of any version: %v", p, versions[p], sorted(have), sorted(want), held)
		}
	}
	files := c.client().Files()
	for _, p := range paths {
		var buf bytes.Buffer
		if _, err := files.Get(context.Background(), p, &buf, client.GetOptions{NoShortCircuit: true}); err != nil || xxhash.Sum64(buf.Bytes()) != sums[p] {
			t.Fatalf("read %s: %v", p, err)
		}
	}
}

// TestCleanup: the seed's scenarios — expansion, R down, a worker back
// after being away — each end with every file on exactly its owners, by
// themselves (automatic cleanup), on the right workers only; the kept
// reasons; no resurrection; the REST pair.
func TestCleanup(t *testing.T) {
	c := startClusterWith(t, 1, 3, []string{"--cleanup-settle", "1s"}, nil)
	// The copies here are seconds old: no safety window (TestCleanupWindow
	// tests it).
	setting(t, c, "cleanup.dont_cleanup_time", "0s")
	files := c.client().Files()
	sums, versions := map[string]uint64{}, map[string]uint64{}
	put := func(p string, data []byte, wt cairnv1.WriteType) {
		t.Helper()
		f, err := files.Put(context.Background(), p, bytes.NewReader(data), int64(len(data)), client.PutOptions{WriteType: wt, Overwrite: true})
		if err != nil {
			t.Fatalf("put %s: %v", p, err)
		}
		sums[p], versions[p] = xxhash.Sum64(data), f.GetVersion()
	}
	for i := range 300 {
		put(fmt.Sprintf("/c/f%03d", i), randomBytes(200+i, uint64(i)), cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH)
	}
	cm := mapWith(t, c, 3)
	// The cleanups of the first joins (nothing to do) come and go first.
	waitAllClean(t, c, 0)
	before := lastCleanupID(t, c)

	t.Run("expansion cleans the workers that were there before", func(t *testing.T) {
		c.addWorker(t, "w4")
		cm = mapWith(t, c, 4)
		job := lastCleanup(t, c, before)
		done := waitJobState(t, c, job.GetId(), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
		before = job.GetId()
		var ws []string
		for _, tk := range done.GetTasks() {
			ws = append(ws, tk.GetWorkerId())
		}
		if strings.Join(sorted(ws), ",") != "w1,w2,w3" {
			t.Fatalf("the automatic cleanup ran on %v, want w1,w2,w3", ws)
		}
		if done.GetJob().GetCounters().GetRemoved() == 0 {
			t.Fatalf("nothing removed after an expansion: %v", done.GetJob().GetCounters())
		}
		checkPlacement(t, c, cm, sums, versions)
	})

	t.Run("R down cleans every worker", func(t *testing.T) {
		if out, err := cairn(t, "cluster", "replication", "3", "--masters", c.addrs()); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		cm = mapWith(t, c, 4)
		waitJobState(t, c, rebalanceFor(t, c, cm.GetEpoch()), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
		checkPlacement(t, c, cm, sums, versions) // R up: no cleanup needed, none ran
		if id := lastCleanupID(t, c); id != before {
			t.Fatalf("R going up started cleanup %d", id)
		}
		if out, err := cairn(t, "cluster", "replication", "2", "--masters", c.addrs()); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		cm = mapWith(t, c, 4)
		job := lastCleanup(t, c, before)
		done := waitJobState(t, c, job.GetId(), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
		before = job.GetId()
		if len(done.GetTasks()) != 4 {
			t.Fatalf("R 3 → 2 cleaned %d workers, want all 4", len(done.GetTasks()))
		}
		checkPlacement(t, c, cm, sums, versions)
	})

	t.Run("a worker back after being away: no resurrection", func(t *testing.T) {
		w2 := c.workers[1]
		w2.kill()
		cm = mapWith(t, c, 3) // w2 is DOWN: a pure removal
		waitJobState(t, c, rebalanceFor(t, c, cm.GetEpoch()), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
		// While it is away: overwrite and delete files it holds.
		var overwritten, deleted string
		old := mapWithWorker(t, c, "w2")
		pm, _ := placement.FromClusterMap(old)
		for p := range sums {
			if !pm.IsOwner("w2", p) {
				continue
			}
			switch {
			case overwritten == "":
				overwritten = p
			case deleted == "":
				deleted = p
			}
		}
		put(overwritten, randomBytes(999, 99), cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH)
		if _, err := files.Delete(context.Background(), deleted, false); err != nil {
			t.Fatal(err)
		}
		delete(sums, deleted)
		delete(versions, deleted)
		if id := lastCleanupID(t, c); id != before {
			t.Fatalf("a worker going DOWN started cleanup %d", id)
		}
		w2.restart(t)
		cm = mapWith(t, c, 4)
		job := lastCleanup(t, c, before)
		done := waitJobState(t, c, job.GetId(), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
		before = job.GetId()
		var w2task *cairnv1.Task
		for _, tk := range done.GetTasks() {
			if tk.GetWorkerId() == "w2" {
				w2task = tk
			}
		}
		// The deleted file's copy is w2's to remove (counted as deleted); the
		// overwritten one it owns was replaced by the rebalance, or, if not,
		// removed as a stale version.
		if w2task == nil || w2task.GetCounters().GetDeleted() != 1 {
			t.Fatalf("w2's cleanup after its return: %v", w2task)
		}
		checkPlacement(t, c, cm, sums, versions)
		for _, w := range cm.GetWorkers() {
			resp, err := newDataClient(w.GetAddress()).Stat(context.Background(), connect.NewRequest(&cairnv1.StatRequest{Paths: []string{overwritten, deleted}}))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range resp.Msg.GetFiles() {
				if id := f.GetIdentity(); id.GetPath() == deleted || id.GetVersion() != versions[overwritten] {
					t.Fatalf("%s still holds %s@%d after the cleanup", w.GetId(), id.GetPath(), id.GetVersion())
				}
			}
		}
	})

	t.Run("kept reasons, force, and the last copy", func(t *testing.T) {
		setting(t, c, "cleanup.auto", "false")
		pm, err := placement.FromClusterMap(cm)
		if err != nil {
			t.Fatal(err)
		}
		// Three files, each with a misplaced copy on a worker that does not own it.
		nonOwner := func(p string) string {
			for _, w := range cm.GetWorkers() {
				if !pm.IsOwner(w.GetId(), p) {
					return w.GetId()
				}
			}
			t.Fatalf("every worker owns %s", p)
			return ""
		}
		peerMissing, divergedP, onlyCopy := "/k/peer-missing", "/k/diverged", "/k/must-cache"
		put(peerMissing, randomBytes(500, 1), cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH)
		put(divergedP, randomBytes(500, 2), cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH)
		put(onlyCopy, randomBytes(500, 3), cairnv1.WriteType_WRITE_TYPE_MUST_CACHE)
		for _, p := range []string{peerMissing, onlyCopy} {
			for _, o := range pm.OwnerIDs(p) { // the owners lose their copies
				if _, err := newDataClient(workerAddr(t, c, o)).Delete(context.Background(), connect.NewRequest(&cairnv1.DataServiceDeleteRequest{Path: p})); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, o := range pm.OwnerIDs(divergedP) { // the owners hold other bytes under the same version
			placeCopy(t, workerAddr(t, c, o), divergedP, versions[divergedP], randomBytes(77, 5))
		}
		data := map[string][]byte{peerMissing: randomBytes(500, 1), divergedP: randomBytes(500, 2), onlyCopy: randomBytes(500, 3)}
		for p, d := range data {
			placeCopy(t, workerAddr(t, c, nonOwner(p)), p, versions[p], d)
		}
		run := func(force bool) *cairnv1.Counters {
			args := []string{"job", "start", "cleanup", "--prefix", "/k", "--wait", "--masters", c.addrs()}
			if force {
				args = append(args, "--force")
			}
			if out, err := cairn(t, args...); err != nil {
				t.Fatalf("cleanup (force %t): %v\n%s", force, err, out)
			}
			return getJob(t, c, lastCleanupID(t, c)).GetJob().GetCounters()
		}
		cn := run(false)
		if cn.GetKeptPeerMissing() != 2 || cn.GetKeptDiverged() != 1 || cn.GetRemoved() != 0 {
			t.Fatalf("cleanup without force: %v", cn)
		}
		cn = run(true)
		if cn.GetKeptPeerMissing() != 2 || cn.GetForced() != 1 || cn.GetRemoved() != 1 {
			t.Fatalf("cleanup with force: %v", cn)
		}
		// Its owner lost it; the misplaced copy is the last one: still on disk.
		if on := cachedOn(t, cm, []string{onlyCopy}, versions); !on[nonOwner(onlyCopy)][onlyCopy] {
			t.Fatalf("the last copy of a MUST_CACHE file was removed")
		}
		setting(t, c, "cleanup.auto", "true")
	})

	t.Run("a decommission starts no cleanup", func(t *testing.T) {
		before = lastCleanupID(t, c)
		// Put the kept copies of the last subtest out of the way first.
		for _, p := range []string{"/k/peer-missing", "/k/diverged", "/k/must-cache"} {
			if _, err := files.Delete(context.Background(), p, false); err != nil {
				t.Fatal(err)
			}
			delete(sums, p)
			delete(versions, p)
		}
		if out, err := cairn(t, "cluster", "decommission", "w4", "--masters", c.addrs()); err != nil {
			t.Fatalf("decommission w4: %v\n%s", err, out)
		}
		cm = mapWith(t, c, 3)
		waitJobState(t, c, rebalanceFor(t, c, cm.GetEpoch()), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
		waitAllClean(t, c, cm.GetEpoch())
		if id := lastCleanupID(t, c); id != before {
			t.Fatalf("a decommission started cleanup %d", id)
		}
		checkPlacement(t, c, cm, sums, versions)
	})

	t.Run("free drops persisted copies only", func(t *testing.T) {
		mustCache := "/c/must-cache"
		put(mustCache, randomBytes(300, 7), cairnv1.WriteType_WRITE_TYPE_MUST_CACHE)
		out, err := cairn(t, "job", "start", "free", "--prefix", "/c", "--wait", "--masters", c.addrs())
		if err != nil {
			t.Fatalf("free: %v\n%s", err, out)
		}
		resp, err := listJobs(t, c, &cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_FREE, PageSize: 1})
		if err != nil || len(resp.GetJobs()) != 1 {
			t.Fatalf("list free jobs: %v %v", resp, err)
		}
		var cached []string
		for p := range sums {
			if strings.HasPrefix(p, "/c/") {
				cached = append(cached, p)
			}
		}
		on := cachedOn(t, cm, cached, versions)
		held := 0
		for w, set := range on {
			for p := range set {
				held++
				if p != mustCache {
					t.Fatalf("%s still caches the persisted %s after free", w, p)
				}
			}
		}
		if held == 0 {
			t.Fatal("free dropped the only copies of a MUST_CACHE file")
		}
		if n := resp.GetJobs()[0].GetCounters().GetFreed(); n == 0 {
			t.Fatalf("free counted nothing: %v", resp.GetJobs()[0].GetCounters())
		}
		for _, p := range cached[:5] { // still readable: from the UFS
			var buf bytes.Buffer
			if _, err := files.Get(context.Background(), p, &buf, client.GetOptions{}); err != nil || xxhash.Sum64(buf.Bytes()) != sums[p] {
				t.Fatalf("read %s after free: %v", p, err)
			}
		}
	})

	t.Run("clear-stale over REST", func(t *testing.T) {
		post := func(method string) (int, map[string]any) {
			req, _ := http.NewRequest(method, "http://"+c.masters[0].api+"/api/v1/cache", strings.NewReader(`{"op":"clear-stale"}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			return resp.StatusCode, body
		}
		c.workers[2].kill() // w3 DOWN: it gets no task, and the answer says so
		waitJobState(t, c, rebalanceFor(t, c, mapWith(t, c, 2).GetEpoch()), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
		eventually(t, 30*time.Second, "no cleanup running", func() bool {
			j := getJob(t, c, lastCleanupID(t, c)).GetJob()
			return j.GetState() != cairnv1.JobState_JOB_STATE_RUNNING
		})
		code, body := post(http.MethodPost)
		errs, _ := body["errors"].(map[string]any)
		if code != http.StatusOK || !strings.Contains(fmt.Sprint(errs["w3"]), "DOWN") {
			t.Fatalf("POST clear-stale: %d %v", code, body)
		}
		code, body = post(http.MethodDelete)
		if code != http.StatusOK {
			t.Fatalf("DELETE clear-stale: %d %v", code, body)
		}
		code, body = post(http.MethodDelete) // nothing runs: still fine
		if code != http.StatusOK {
			t.Fatalf("DELETE with nothing running: %d %v", code, body)
		}
		req, _ := http.NewRequest(http.MethodPost, "http://"+c.masters[0].api+"/api/v1/cache", strings.NewReader(`{"op":"explode"}`))
		resp, err := httpClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("unknown op: %v %v", resp, err)
		}
		resp.Body.Close()
		c.workers[2].restart(t)
	})
}

// waitAllClean waits until every ACTIVE worker is clean at epoch (0: at
// the current epoch), as the cleanup controller records it.
func waitAllClean(t *testing.T, c *cluster, epoch uint64) {
	t.Helper()
	eventually(t, 30*time.Second, "every worker clean at the epoch", func() bool {
		resp, err := c.clusterMap()
		if err != nil {
			return false
		}
		want := epoch
		if want == 0 {
			want = resp.GetMap().GetEpoch()
		}
		for _, w := range resp.GetWorkers() {
			if w.GetState() == cairnv1.WorkerState_WORKER_STATE_ACTIVE && w.GetCleanEpoch() < want {
				return false
			}
		}
		return true
	})
}

// lastCleanupID is the newest cleanup job's id (0: none).
func lastCleanupID(t *testing.T, c *cluster) uint64 {
	t.Helper()
	resp, err := listJobs(t, c, &cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_CLEANUP, PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetJobs()) == 0 {
		return 0
	}
	return resp.GetJobs()[0].GetId()
}

// workerAddr is a worker's API address as the journal knows it.
func workerAddr(t *testing.T, c *cluster, id string) string {
	t.Helper()
	resp, err := c.clusterMap()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range resp.GetWorkers() {
		if w.GetId() == id {
			return w.GetAddress()
		}
	}
	t.Fatalf("no worker %s", id)
	return ""
}

// mapWithWorker returns the newest map (going back from the current one)
// that lists worker id.
func mapWithWorker(t *testing.T, c *cluster, id string) *cairnv1.ClusterMap {
	t.Helper()
	cur, err := c.clusterMap()
	if err != nil {
		t.Fatal(err)
	}
	for e := cur.GetMap().GetEpoch(); e > 0; e-- {
		resp, err := client.Msg(context.Background(), c.client(), func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.GetClusterMapResponse], error) {
			return s.Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{Epoch: e}))
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range resp.GetMap().GetWorkers() {
			if w.GetId() == id {
				return resp.GetMap()
			}
		}
	}
	t.Fatalf("no map lists %s", id)
	return nil
}

// TestCleanupAfterMaintenance is AIStore's example: one of three workers is
// in maintenance while files are written; it is activated, a rebalance
// sends it its files, and a cleanup removes the copies left behind — on
// the workers that sent data only, and the journal's removed bytes are the
// bytes freed on the disks.
func TestCleanupAfterMaintenance(t *testing.T) {
	c := startClusterWith(t, 1, 3, []string{"--cleanup-settle", "1s"}, nil)
	setting(t, c, "cleanup.auto", "false")
	setting(t, c, "cleanup.dont_cleanup_time", "0s") // the copies are seconds old
	if out, err := cairn(t, "cluster", "maintenance", "w3", "--masters", c.addrs()); err != nil {
		t.Fatalf("maintenance w3: %v\n%s", err, out)
	}
	mapWith(t, c, 2)
	files := c.client().Files()
	sums, versions := map[string]uint64{}, map[string]uint64{}
	for i := range 200 {
		p, data := fmt.Sprintf("/m/f%03d", i), randomBytes(1000+i, uint64(i))
		f, err := files.Put(context.Background(), p, bytes.NewReader(data), int64(len(data)), client.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sums[p], versions[p] = xxhash.Sum64(data), f.GetVersion()
	}
	if out, err := cairn(t, "cluster", "activate", "w3", "--masters", c.addrs()); err != nil {
		t.Fatalf("activate w3: %v\n%s", err, out)
	}
	cm := mapWith(t, c, 3)
	reb := waitJobState(t, c, rebalanceFor(t, c, cm.GetEpoch()), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
	senders := map[string]bool{}
	for _, tk := range reb.GetTasks() {
		if tk.GetCounters().GetSent() > 0 {
			senders[tk.GetWorkerId()] = true
		}
	}
	used := func() float64 {
		sum := 0.0
		for _, w := range cm.GetWorkers() {
			sum += metric(t, w.GetAddress(), "cairn_worker_cache_used_bytes", "")
		}
		return sum
	}
	before := used()
	out, err := cairn(t, "job", "start", "cleanup", "--wait", "--masters", c.addrs())
	if err != nil {
		t.Fatalf("cleanup: %v\n%s", err, out)
	}
	job := getJob(t, c, lastCleanupID(t, c))
	freed := before - used()
	for _, tk := range job.GetTasks() {
		if removed := tk.GetCounters().GetRemoved(); (removed > 0) != senders[tk.GetWorkerId()] {
			t.Errorf("%s removed %d copies; it sent data in the rebalance: %t", tk.GetWorkerId(), removed, senders[tk.GetWorkerId()])
		}
	}
	if cn := job.GetJob().GetCounters(); cn.GetReclaimedBytes() != uint64(freed) || cn.GetRemoved() != reb.GetJob().GetCounters().GetSent() {
		t.Fatalf("cleanup %v; the disks freed %.0f bytes; the rebalance sent %d files", cn, freed, reb.GetJob().GetCounters().GetSent())
	}
	checkPlacement(t, c, cm, sums, versions)
}
