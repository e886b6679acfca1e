package tests

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// TestFileReplicationAboveR: a file written with more copies than the
// map's R keeps them through a topology change. The join's rebalance
// sends each such file to every one of its max(replication, R) owners
// under the new map (not only to its R first), and cleanup removes only
// the copy that is no longer among them (not every copy beyond R). A file
// of replication 0 (the map's R) is the control: one copy, on its owner.
func TestFileReplicationAboveR(t *testing.T) {
	c, _ := quietCluster(t, 3) // R = 1
	files := c.client().Files()
	const n = 24
	repl := func(i int) uint32 {
		if i%4 == 3 {
			return 0
		}
		return 3
	}
	path := func(i int) string { return fmt.Sprintf("/rep/f%02d", i) }
	version := make([]uint64, n)
	for i := range n {
		data := randomBytes(3000+i, uint64(i))
		f, err := files.Put(context.Background(), path(i), bytes.NewReader(data), int64(len(data)), client.PutOptions{Replication: repl(i)})
		if err != nil {
			t.Fatal(err)
		}
		version[i] = f.GetVersion()
	}

	c.addWorker(t, "w4")
	cm := mapWith(t, c, 4)
	waitJobState(t, c, rebalanceFor(t, c, cm.GetEpoch()), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
	pm, err := placement.FromClusterMap(cm)
	if err != nil {
		t.Fatal(err)
	}
	addr := map[string]string{}
	for _, w := range cm.GetWorkers() {
		addr[w.GetId()] = w.GetAddress()
	}
	check := func(stage string, exact bool) {
		t.Helper()
		for i := range n {
			owners := pm.FileOwnerIDs(path(i), repl(i))
			if want := max(int(repl(i)), 1); len(owners) != want {
				t.Fatalf("%s has %d owners %v, want %d", path(i), len(owners), owners, want)
			}
			isOwner := map[string]bool{}
			for _, o := range owners {
				isOwner[o] = true
			}
			for id, a := range addr {
				has := holds(t, a, path(i), version[i])
				switch {
				case isOwner[id] && !has:
					t.Errorf("%s: %s (replication %d) is not on its owner %s (owners %v)", stage, path(i), repl(i), id, owners)
				case exact && !isOwner[id] && has:
					t.Errorf("%s: %s (replication %d) is still on %s, not one of its owners %v", stage, path(i), repl(i), id, owners)
				}
			}
		}
	}
	check("after the join's rebalance", false)
	if t.Failed() {
		t.FailNow()
	}
	job := cleanupNow(t, c, "cleanup", "/rep/")
	if job.GetJob().GetState() != cairnv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("cleanup ended %s: %v", job.GetJob().GetState(), job.GetJob().GetCounters())
	}
	check("after cleanup", true)
}

// TestRebalanceRetriesUnreachableOwner: a rebalance whose sends cannot
// reach a new owner does not end SUCCEEDED with the files left behind: the
// sending tasks fail their attempt and are leased again, and once the owner
// is back a later attempt delivers what it lacks and the job succeeds, its
// errors counting the failed sends.
func TestRebalanceRetriesUnreachableOwner(t *testing.T) {
	// A long heartbeat timeout keeps the killed worker in the map (no new
	// epoch aborts the rebalance); a high delivery limit outlasts its
	// restart.
	c := startClusterWith(t, 1, 3, []string{"--heartbeat-timeout", "2m", "--delivery-limit", "20"}, nil)
	setting(t, c, "cleanup.auto", "false")
	cm := mapWith(t, c, 3)
	waitJobState(t, c, rebalanceFor(t, c, cm.GetEpoch()), cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
	files := c.client().Files()
	const n = 30
	path := func(i int) string { return fmt.Sprintf("/retry/f%02d", i) }
	version := make([]uint64, n)
	for i := range n {
		data := randomBytes(2000+i, uint64(i))
		f, err := files.Put(context.Background(), path(i), bytes.NewReader(data), int64(len(data)), client.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		version[i] = f.GetVersion()
	}

	setting(t, c, "rebalance.enabled", "false")
	w4 := c.addWorker(t, "w4")
	joined := mapWith(t, c, 4)
	w4.kill()
	setting(t, c, "rebalance.enabled", "true")
	id := rebalanceFor(t, c, joined.GetEpoch())

	retried := func() bool {
		for _, tk := range getJob(t, c, id).GetTasks() {
			if tk.GetAttempt() >= 2 && strings.Contains(tk.GetLastError(), "did not reach their owners") {
				return true
			}
		}
		return false
	}
	eventually(t, 30*time.Second, "a sender's attempt to fail for the unreachable owner and be leased again", retried)
	w4.launch(t)
	job := waitJobState(t, c, id, cairnv1.JobState_JOB_STATE_SUCCEEDED, 2*time.Minute)
	if job.GetJob().GetCounters().GetErrors() == 0 {
		t.Fatalf("the job counts no errors for the sends that failed: %v", job.GetJob().GetCounters())
	}
	pm, err := placement.FromClusterMap(joined)
	if err != nil {
		t.Fatal(err)
	}
	addr := map[string]string{}
	for _, w := range joined.GetWorkers() {
		addr[w.GetId()] = w.GetAddress()
	}
	for i := range n {
		for _, o := range pm.OwnerIDs(path(i)) {
			if !holds(t, addr[o], path(i), version[i]) {
				t.Errorf("%s is not on its owner %s after the rebalance succeeded", path(i), o)
			}
		}
	}
}
