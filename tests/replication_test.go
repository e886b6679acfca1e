package tests

import (
	"bytes"
	"context"
	"fmt"
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
