package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// The operators' promises of issue 18 that had no test: what cleanup keeps
// by identity, the clear-stale log line and metric, lease and rebalance
// metrics, and automatic rebalance turned off.

// quietCluster starts 1 master and n workers with automatic cleanup off
// and waits for the rebalance of the last join to end, so that the jobs a
// test starts are the only ones.
func quietCluster(t *testing.T, n int) (*cluster, *cairnv1.ClusterMap) {
	t.Helper()
	c := startCluster(t, 1, n)
	setting(t, c, "cleanup.auto", "false")
	// The copies these tests clean are seconds old: no safety window
	// (TestCleanupWindow tests it).
	setting(t, c, "cleanup.dont_cleanup_time", "0s")
	cm := mapWith(t, c, n)
	waitJobState(t, c, rebalanceFor(t, c, cm.GetEpoch()), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
	return c, cm
}

// notOwning returns a worker of cm that does not own path.
func notOwning(t *testing.T, cm *cairnv1.ClusterMap, path string) *cairnv1.MapWorker {
	t.Helper()
	pm, err := placement.FromClusterMap(cm)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range cm.GetWorkers() {
		if !pm.IsOwner(w.GetId(), path) {
			return w
		}
	}
	t.Fatalf("every worker owns %s", path)
	return nil
}

// holds reports whether the worker at addr caches version of path.
func holds(t *testing.T, addr, path string, version uint64) bool {
	t.Helper()
	resp, err := newDataClient(addr).Stat(context.Background(), connect.NewRequest(&cairnv1.StatRequest{Paths: []string{path}}))
	if err != nil {
		t.Fatalf("stat %s on %s: %v", path, addr, err)
	}
	for _, f := range resp.Msg.GetFiles() {
		if f.GetIdentity().GetVersion() == version {
			return true
		}
	}
	return false
}

// cleanupNow runs a cleanup (by the given kind name) under prefix to its
// end through the CLI and returns the job with its tasks.
func cleanupNow(t *testing.T, c *cluster, kind, prefix string) *cairnv1.GetJobResponse {
	t.Helper()
	args := []string{"job", "start", kind, "--wait", "--masters", c.addrs()}
	if prefix != "" {
		args = append(args, "--prefix", prefix)
	}
	if out, err := cairn(t, args...); err != nil {
		t.Fatalf("%s: %v\n%s", kind, err, out)
	}
	return getJob(t, c, lastCleanupID(t, c))
}

// TestCleanupComparesIdentity: a misplaced copy is removed only when its
// owner holds the same identity; one that differs from the owner's only in
// ETag, or only in custom metadata, is a different object and stays
// (counted as diverged), even with --force while the file is not
// persisted.
func TestCleanupComparesIdentity(t *testing.T) {
	c, cm := quietCluster(t, 3)
	files := c.client().Files()
	meta := map[string]string{"team": "vision", "run": "17"}
	cases := []struct {
		path string
		etag string
		meta map[string]string
		kept bool
	}{
		{path: "/id/same", etag: "e-1", meta: meta},
		{path: "/id/etag", etag: "e-2", meta: meta, kept: true},
		{path: "/id/metadata-value", etag: "e-1", meta: map[string]string{"team": "vision", "run": "18"}, kept: true},
		{path: "/id/metadata-key", etag: "e-1", meta: map[string]string{"team": "vision", "run": "17", "extra": "x"}, kept: true},
	}
	strays := map[string]*cairnv1.MapWorker{}
	versions := map[string]uint64{}
	for i, tc := range cases {
		data := randomBytes(700, uint64(i))
		f, err := files.Put(context.Background(), tc.path, bytes.NewReader(data), int64(len(data)), client.PutOptions{ETag: "e-1", Metadata: meta})
		if err != nil {
			t.Fatal(err)
		}
		versions[tc.path] = f.GetVersion()
		strays[tc.path] = notOwning(t, cm, tc.path)
		placeIdentity(t, strays[tc.path].GetAddress(), &cairnv1.FileIdentity{Path: tc.path, Version: f.GetVersion(), Etag: tc.etag, Metadata: tc.meta}, data)
	}
	for _, force := range []bool{false, true} {
		args := []string{"job", "start", "cleanup", "--prefix", "/id", "--wait", "--masters", c.addrs()}
		if force {
			args = append(args, "--force")
		}
		if out, err := cairn(t, args...); err != nil {
			t.Fatalf("cleanup (force %t): %v\n%s", force, err, out)
		}
		cn := getJob(t, c, lastCleanupID(t, c)).GetJob().GetCounters()
		wantRemoved := uint64(0)
		if !force {
			wantRemoved = 1
		}
		if cn.GetRemoved() != wantRemoved || cn.GetKeptDiverged() != 3 || cn.GetForced() != 0 {
			t.Fatalf("cleanup (force %t) of one same and three different identities: %v", force, cn)
		}
		for _, tc := range cases {
			if got := holds(t, strays[tc.path].GetAddress(), tc.path, versions[tc.path]); got != tc.kept {
				t.Fatalf("after cleanup (force %t) %s holds %s: %t, want %t", force, strays[tc.path].GetId(), tc.path, got, tc.kept)
			}
		}
	}
}

// blocksBytes is the bytes of the block files in a worker's cache folder.
func blocksBytes(t *testing.T, dataDir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(filepath.Join(dataDir, "blocks"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// releasedInLog returns the bytes each "Clear stale cached files finished"
// line of a worker's log names for job id, in order.
func releasedInLog(t *testing.T, log string, id uint64) []uint64 {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, line := range strings.Split(string(b), "\n") {
		var rec struct {
			Msg      string  `json:"msg"`
			Job      uint64  `json:"job"`
			Released *uint64 `json:"bytes_released"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Job != id || !strings.HasPrefix(rec.Msg, "Clear stale cached files finished.") {
			continue
		}
		var n uint64
		if _, err := fmt.Sscanf(rec.Msg, "Clear stale cached files finished. %d bytes released", &n); err != nil || rec.Released == nil || *rec.Released != n {
			t.Fatalf("a completion line that does not say its bytes the seed's way: %s", line)
		}
		got = append(got, n)
	}
	return got
}

// TestClearStaleAccounting: each worker's task logs "Clear stale cached
// files finished. N bytes released" once, N is what its
// cairn_cleared_stale_cached_data_bytes_total grew by and the bytes its
// cache folder shrank by, and their sum is the job's reclaimed bytes — over
// copies misplaced (verified at the owner), of deleted files and of old
// versions.
func TestClearStaleAccounting(t *testing.T) {
	c, cm := quietCluster(t, 3)
	files := c.client().Files()
	put := func(p string, data []byte) uint64 {
		t.Helper()
		f, err := files.Put(context.Background(), p, bytes.NewReader(data), int64(len(data)), client.PutOptions{Overwrite: true})
		if err != nil {
			t.Fatalf("put %s: %v", p, err)
		}
		return f.GetVersion()
	}
	for i := range 30 {
		p, data := fmt.Sprintf("/cs/f%02d", i), randomBytes(3000+97*i, uint64(i))
		v := put(p, data)
		stray := notOwning(t, cm, p).GetAddress()
		switch i % 3 {
		case 0: // misplaced: the owner holds the same copy
			placeCopy(t, stray, p, v, data)
		case 1: // an old version: the file was overwritten since
			placeCopy(t, stray, p, v, data)
			put(p, randomBytes(500, uint64(1000+i)))
		case 2: // of a file deleted since
			placeCopy(t, stray, p, v, data)
			if _, err := files.Delete(context.Background(), p, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	const cleared = "cairn_cleared_stale_cached_data_bytes_total"
	type figures struct{ disk, metric float64 }
	measure := func() map[string]figures {
		m := map[string]figures{}
		for _, w := range cm.GetWorkers() {
			m[w.GetId()] = figures{disk: float64(blocksBytes(t, filepath.Join(c.root, w.GetId()))), metric: metric(t, w.GetAddress(), cleared, "")}
		}
		return m
	}
	before := measure()
	job := cleanupNow(t, c, "clear-stale", "")
	after := measure()
	cn := job.GetJob().GetCounters()
	if cn.GetRemoved() != 30 || cn.GetStaleVersion() != 10 || cn.GetDeleted() != 10 {
		t.Fatalf("clear-stale over 10 misplaced, 10 old and 10 deleted copies: %v", cn)
	}
	var sumDisk, sumMetric float64
	for _, w := range cm.GetWorkers() {
		freed, counted := before[w.GetId()].disk-after[w.GetId()].disk, after[w.GetId()].metric-before[w.GetId()].metric
		logged := releasedInLog(t, c.workerProc(t, w.GetId()).log, job.GetJob().GetId())
		if len(logged) != 1 || float64(logged[0]) != counted || counted != freed {
			t.Errorf("%s: its cache folder shrank by %.0f bytes, %s grew by %.0f, its log says %v", w.GetId(), freed, cleared, counted, logged)
		}
		sumDisk += freed
		sumMetric += counted
	}
	if sumMetric != sumDisk || sumDisk != float64(cn.GetReclaimedBytes()) || sumDisk == 0 {
		t.Fatalf("freed on disk %.0f, summed %s %.0f, the job's reclaimed bytes %d", sumDisk, cleared, sumMetric, cn.GetReclaimedBytes())
	}
}

// workerProc is the worker process named id.
func (c *cluster) workerProc(t *testing.T, id string) *proc {
	t.Helper()
	for _, w := range c.workers {
		if w.name == id {
			return w
		}
	}
	t.Fatalf("no worker process %s", id)
	return nil
}

// holdsFor checks cond every 20 ms for d and fails as soon as it does not
// hold: how a test sees that something does not happen.
func holdsFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
	}
}

// TestLeaseAndRebalanceMetrics: a rebalance after a join moves the
// leader's lease and job metrics and the workers' task and rebalance
// metrics by exactly what the journal says the job did.
func TestLeaseAndRebalanceMetrics(t *testing.T) {
	c, _ := quietCluster(t, 3)
	files := c.client().Files()
	for i := range 60 {
		data := randomBytes(500+i, uint64(i))
		if _, err := files.Put(context.Background(), fmt.Sprintf("/lm/f%02d", i), bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	leader := c.masters[0].api
	type scrape struct{ name, labels string }
	var (
		granted    = scrape{"cairn_task_leases_granted_total", ""}
		expired    = scrape{"cairn_task_leases_expired_total", ""}
		started    = scrape{"cairn_jobs_started_total", `kind="REBALANCE"`}
		tasksDone  = scrape{"cairn_worker_tasks_total", `kind="REBALANCE",outcome="succeeded"`}
		sentFiles  = scrape{"cairn_worker_rebalance_files_total", `direction="sent"`}
		recvFiles  = scrape{"cairn_worker_rebalance_files_total", `direction="received"`}
		sentBytes  = scrape{"cairn_worker_rebalance_bytes_total", `direction="sent"`}
		recvBytes  = scrape{"cairn_worker_rebalance_bytes_total", `direction="received"`}
		onWorkers  = []scrape{tasksDone, sentFiles, recvFiles, sentBytes, recvBytes}
		onLeader   = []scrape{granted, expired, started}
		workersSum = func(s scrape) float64 {
			sum := 0.0
			cm, err := c.clusterMap()
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range cm.GetWorkers() {
				sum += metric(t, w.GetAddress(), s.name, s.labels)
			}
			return sum
		}
	)
	before := map[scrape]float64{}
	for _, s := range onLeader {
		before[s] = metric(t, leader, s.name, s.labels)
	}
	for _, s := range onWorkers {
		before[s] = workersSum(s) // w4 is not there yet: it starts from 0
	}

	c.addWorker(t, "w4")
	cm := mapWith(t, c, 4)
	job := waitJobState(t, c, rebalanceFor(t, c, cm.GetEpoch()), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
	cn := job.GetJob().GetCounters()
	if cn.GetSent() == 0 || len(job.GetTasks()) != 4 {
		t.Fatalf("the join's rebalance moved nothing or has %d tasks: %v", len(job.GetTasks()), cn)
	}
	attempts := 0.0
	for _, tk := range job.GetTasks() {
		attempts += float64(tk.GetAttempt())
	}
	want := map[scrape]float64{
		granted: attempts, expired: attempts - 4, started: 1,
		tasksDone: 4,
		sentFiles: float64(cn.GetSent()), recvFiles: float64(cn.GetReceived()),
		sentBytes: float64(cn.GetSentBytes()), recvBytes: float64(cn.GetReceivedBytes()),
	}
	// A worker counts its task after its last report: poll for the figures.
	var got map[scrape]float64
	match := func() bool {
		got = map[scrape]float64{}
		for _, s := range onLeader {
			got[s] = metric(t, leader, s.name, s.labels) - before[s]
		}
		for _, s := range onWorkers {
			got[s] = workersSum(s) - before[s]
		}
		for s, v := range want {
			if got[s] != v {
				return false
			}
		}
		return metric(t, leader, "cairn_task_leases_live", "") == 0
	}
	deadline := time.Now().Add(20 * time.Second)
	for !match() {
		if time.Now().After(deadline) {
			for s, v := range want {
				if got[s] != v {
					t.Errorf("%s{%s} moved by %.0f, the job says %.0f", s.name, s.labels, got[s], v)
				}
			}
			t.Fatalf("metrics and the journal disagree (job counters %v, leases live %.0f)", cn, metric(t, leader, "cairn_task_leases_live", ""))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRebalanceDisabled: with rebalance.enabled false a join makes a new
// epoch and starts no rebalance; turned on again, the controller starts
// the one that epoch lacks.
func TestRebalanceDisabled(t *testing.T) {
	c, cm := quietCluster(t, 2)
	setting(t, c, "rebalance.enabled", "false")
	leader := c.masters[0].api
	startedBefore := metric(t, leader, "cairn_jobs_started_total", `kind="REBALANCE"`)
	newest := func() uint64 {
		resp, err := listJobs(t, c, &cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_REBALANCE, PageSize: 1})
		if err != nil || len(resp.GetJobs()) == 0 {
			t.Fatalf("list rebalances: %v %v", resp, err)
		}
		return resp.GetJobs()[0].GetId()
	}
	last := newest()

	c.addWorker(t, "w3")
	joined := mapWith(t, c, 3)
	if joined.GetEpoch() <= cm.GetEpoch() {
		t.Fatalf("the join left the epoch at %d", joined.GetEpoch())
	}
	// The controller answers a new epoch within milliseconds when enabled
	// (TestLeaseAndRebalanceMetrics); give it seconds to do nothing.
	holdsFor(t, 3*time.Second, "no rebalance after the join", func() bool {
		return newest() == last && metric(t, leader, "cairn_jobs_started_total", `kind="REBALANCE"`) == startedBefore
	})
	if out, err := cairn(t, "job", "settings", "--masters", c.addrs()); err != nil || !regexp.MustCompile(`(?m)^rebalance\.enabled\s+false\b`).MatchString(out) {
		t.Fatalf("settings: %v\n%s", err, out)
	}

	setting(t, c, "rebalance.enabled", "true")
	id := rebalanceFor(t, c, joined.GetEpoch())
	if id <= last {
		t.Fatalf("the rebalance for epoch %d is job %d, not newer than %d", joined.GetEpoch(), id, last)
	}
	waitJobState(t, c, id, cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
}
