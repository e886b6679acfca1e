package tests

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// TestCleanupWindow: AIStore's dont_cleanup_time. Fresh stale copies (one
// misplaced, one of a deleted file) are kept by a cleanup under the default
// 2h window and counted as kept_recent; a per-job window of 0s removes
// them; the cluster setting changes the window of the next job. Then
// --force with the owner unreachable keeps a persisted file's misplaced
// copy (kept_unverified), where it used to remove it.
func TestCleanupWindow(t *testing.T) {
	c := startClusterWith(t, 1, 3, nil, nil)
	setting(t, c, "cleanup.auto", "false")
	cm := mapWith(t, c, 3)
	pm, err := placement.FromClusterMap(cm)
	if err != nil {
		t.Fatal(err)
	}
	nonOwner := func(p string) string {
		for _, w := range cm.GetWorkers() {
			if !pm.IsOwner(w.GetId(), p) {
				return w.GetId()
			}
		}
		t.Fatalf("every worker owns %s", p)
		return ""
	}
	files := c.client().Files()
	put := func(p string, data []byte) uint64 {
		t.Helper()
		f, err := files.Put(context.Background(), p, bytes.NewReader(data), int64(len(data)), client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH})
		if err != nil {
			t.Fatalf("put %s: %v", p, err)
		}
		return f.GetVersion()
	}
	misplaced, gone := "/win/misplaced", "/win/gone"
	data := randomBytes(4000, 11)
	versions := map[string]uint64{misplaced: put(misplaced, data), gone: 1}
	placeCopy(t, workerAddr(t, c, nonOwner(misplaced)), misplaced, versions[misplaced], data)
	placeCopy(t, workerAddr(t, c, nonOwner(misplaced)), gone, 1, randomBytes(3000, 12)) // the namespace never had it
	held := func() int {
		n := 0
		for _, set := range cachedOn(t, cm, []string{misplaced, gone}, versions) {
			n += len(set)
		}
		return n
	}
	if n := held(); n != 2+len(pm.OwnerIDs(misplaced)) {
		t.Fatalf("%d copies before the cleanups", n)
	}
	run := func(extra ...string) *cairnv1.GetJobResponse {
		t.Helper()
		args := append([]string{"job", "start", "cleanup", "--prefix", "/win", "--wait", "--masters", c.addrs()}, extra...)
		if out, err := cairn(t, args...); err != nil {
			t.Fatalf("cleanup %v: %v\n%s", extra, err, out)
		}
		return getJob(t, c, lastCleanupID(t, c))
	}

	// The default window: both fresh copies stay, under their own reason.
	job := run()
	cn := job.GetJob().GetCounters()
	if w := job.GetJob().GetSpec().GetDontCleanupTime().AsDuration(); w != 2*time.Hour {
		t.Fatalf("the job ran with window %s, want the default 2h", w)
	}
	if cn.GetKeptRecent() != 2 || cn.GetRemoved() != 0 || cn.GetDeleted() != 0 {
		t.Fatalf("cleanup under the default window: %v", cn)
	}
	if n := held(); n != 2+len(pm.OwnerIDs(misplaced)) {
		t.Fatalf("%d copies after a cleanup under the window", n)
	}
	out, err := cairn(t, "job", "show", "--masters", c.addrs(), strconv.FormatUint(job.GetJob().GetId(), 10))
	if err != nil || !strings.Contains(out, "KEPT RECENT") || !strings.Contains(out, "dont_cleanup_time 2h0m0s") {
		t.Fatalf("job show: %v\n%s", err, out)
	}

	// A window of 0s for this job: both go.
	job = run("--dont-cleanup-time", "0s")
	cn = job.GetJob().GetCounters()
	if cn.GetKeptRecent() != 0 || cn.GetRemoved() != 2 || cn.GetDeleted() != 1 {
		t.Fatalf("cleanup with --dont-cleanup-time 0s: %v", cn)
	}
	if n := held(); n != len(pm.OwnerIDs(misplaced)) {
		t.Fatalf("%d copies after a cleanup without a window, want the owners' %d", n, len(pm.OwnerIDs(misplaced)))
	}

	// The cluster setting is the next job's window.
	setting(t, c, "cleanup.dont_cleanup_time", "90m")
	if out, err := cairn(t, "job", "settings", "--masters", c.addrs()); err != nil || !strings.Contains(out, "1h30m0s") {
		t.Fatalf("settings: %v\n%s", err, out)
	}
	if w := run().GetJob().GetSpec().GetDontCleanupTime().AsDuration(); w != 90*time.Minute {
		t.Fatalf("the next job ran with window %s, want the setting's 1h30m", w)
	}
	if out, err := cairn(t, "job", "settings", "cleanup.dont_cleanup_time", "-1s", "--masters", c.addrs()); err == nil {
		t.Fatalf("a negative window was taken:\n%s", out)
	}

	t.Run("force with the owner unreachable keeps a persisted copy", func(t *testing.T) {
		p := "/win/forced"
		d := randomBytes(5000, 13)
		versions[p] = put(p, d)
		holder := nonOwner(p)
		placeCopy(t, workerAddr(t, c, holder), p, versions[p], d)
		owners := pm.OwnerIDs(p)
		for _, w := range c.workers {
			for _, o := range owners {
				if w.name == o {
					w.kill()
				}
			}
		}
		// Started at once, before the leader marks the owners DOWN: the job's
		// map still names them, and they do not answer.
		resp, err := jobCall(t, c, func(ctx context.Context, s client.Services) (*cairnv1.StartJobResponse, error) {
			r, err := s.Jobs.StartJob(ctx, connect.NewRequest(&cairnv1.StartJobRequest{Spec: &cairnv1.JobSpec{
				Kind: cairnv1.JobKind_JOB_KIND_CLEANUP, Prefix: p, Force: true, Workers: []string{holder}, DontCleanupTime: durationpb.New(0)}}))
			if err != nil {
				return nil, err
			}
			return r.Msg, nil
		})
		if err != nil {
			t.Fatalf("start the forced cleanup: %v", err)
		}
		if e := resp.GetJob().GetSpec().GetEpoch(); e != cm.GetEpoch() {
			t.Fatalf("the owners were marked DOWN before the cleanup started (epoch %d, want %d): the test raced", e, cm.GetEpoch())
		}
		done := waitJobState(t, c, resp.GetJob().GetId(), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
		cn := done.GetJob().GetCounters()
		if cn.GetForced() != 0 || cn.GetRemoved() != 0 || cn.GetKeptUnverified() != 1 {
			t.Fatalf("forced cleanup with the owner unreachable: %v", cn)
		}
		stat, err := newDataClient(workerAddr(t, c, holder)).Stat(context.Background(), connect.NewRequest(&cairnv1.StatRequest{Paths: []string{p}}))
		if err != nil || len(stat.Msg.GetFiles()) != 1 {
			t.Fatalf("the copy on %s after the forced cleanup: %v %v", holder, stat, err)
		}
	})
}

// TestCleanupWindowAuto: an automatic cleanup after a join keeps the
// misplaced copies that are inside the window and leaves their workers
// behind (CLEAN EPOCH); once the window has passed, the controller runs
// the next one by itself, which removes them and makes every worker clean.
func TestCleanupWindowAuto(t *testing.T) {
	c := startClusterWith(t, 1, 3, []string{"--cleanup-settle", "1s"}, nil)
	setting(t, c, "cleanup.dont_cleanup_time", "10s")
	mapWith(t, c, 3)
	before := uint64(0)
	eventually(t, 30*time.Second, "the cleanups of the first joins to end", func() bool {
		id := lastCleanupID(t, c)
		if id == 0 {
			return false
		}
		before = id
		return getJob(t, c, id).GetJob().GetState() != cairnv1.JobState_JOB_STATE_RUNNING
	})
	files := c.client().Files()
	for i := range 100 {
		data := randomBytes(100+i, uint64(i))
		if _, err := files.Put(context.Background(), "/auto/f"+strconv.Itoa(i), bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c.addWorker(t, "w4")
	cm := mapWith(t, c, 4)
	first := lastCleanup(t, c, before)
	done := waitJobState(t, c, first.GetId(), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
	if cn := done.GetJob().GetCounters(); cn.GetKeptRecent() == 0 || cn.GetRemoved() != 0 {
		t.Fatalf("the first automatic cleanup, seconds after the writes: %v", cn)
	}
	resp, err := c.clusterMap()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range resp.GetWorkers() {
		if w.GetId() != "w4" && w.GetCleanEpoch() >= cm.GetEpoch() {
			t.Fatalf("%s is clean at epoch %d after a cleanup that kept copies inside its window", w.GetId(), w.GetCleanEpoch())
		}
	}
	second := lastCleanup(t, c, first.GetId())
	done = waitJobState(t, c, second.GetId(), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
	if cn := done.GetJob().GetCounters(); cn.GetRemoved() == 0 || cn.GetKeptRecent() != 0 {
		t.Fatalf("the automatic cleanup after the window: %v", cn)
	}
	if started, ended := second.GetCreatedTime().AsTime(), first.GetCreatedTime().AsTime().Add(10*time.Second); started.Before(ended) {
		t.Fatalf("the second cleanup started at %s, inside the first's window (until %s)", started, ended)
	}
	waitAllClean(t, c, cm.GetEpoch())
}
