package journal

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnhq/cairn/fsm"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

var quiet = slog.New(slog.DiscardHandler)

func note(s string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NoteAppended{NoteAppended: &cairnv1.NoteAppended{Text: s}}}
}

func register(id string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_WorkerRegistered{WorkerRegistered: &cairnv1.WorkerRegistered{
		WorkerId: id, Address: "127.0.0.1:1", CapacityBytes: 1 << 30}}}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dumpState(t testing.TB, m *fsm.Machine) []byte {
	t.Helper()
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var b bytes.Buffer
	if _, err := s.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// inmemCluster starts n journals over raft's in-memory transport: the first
// bootstraps, the others are added as voters.
func inmemCluster(t *testing.T, n int, cfg func(*Config)) []*Journal {
	t.Helper()
	trans := make([]*raft.InmemTransport, n)
	for i := range trans {
		_, trans[i] = raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("node%d", i)))
	}
	for i := range trans {
		for k := range trans {
			if i != k {
				trans[i].Connect(trans[k].LocalAddr(), trans[k])
			}
		}
	}
	js := make([]*Journal, n)
	for i := range js {
		c := Config{
			NodeID: fmt.Sprintf("m%d", i), Dir: t.TempDir(), Bootstrap: i == 0, Transport: trans[i], Logger: quiet,
			// The production timings: shorter ones let a loaded machine
			// (the race detector, parallel tests) move leadership in the
			// middle of tests that do not expect it.
		}
		if cfg != nil {
			cfg(&c)
		}
		j, err := Open(c)
		if err != nil {
			t.Fatal(err)
		}
		js[i] = j
		t.Cleanup(func() { j.Close() })
	}
	waitFor(t, "m0 to lead", js[0].IsLeader)
	for i := 1; i < n; i++ {
		if err := js[0].AddVoter(js[i].NodeID(), string(trans[i].LocalAddr())); err != nil {
			t.Fatal(err)
		}
	}
	return js
}

func leaderOf(t *testing.T, js []*Journal) *Journal {
	t.Helper()
	var l *Journal
	waitFor(t, "a leader", func() bool {
		for _, j := range js {
			if j.IsLeader() {
				l = j
				return true
			}
		}
		return false
	})
	return l
}

func TestProposeReplicatesToEveryNode(t *testing.T) {
	t.Parallel()
	js := inmemCluster(t, 3, nil)
	leader := leaderOf(t, js)
	ctx := context.Background()
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	var lastIndex atomic.Uint64
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				res, idx, err := leader.Propose(ctx, note(fmt.Sprintf("g%d-%d", g, i)), register(fmt.Sprintf("w%d", g%5)))
				if err != nil || len(res) != 2 || res[0].Code != fsm.OK || res[1].Code != fsm.OK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%v %+v", err, res))
					continue
				}
				for {
					cur := lastIndex.Load()
					if idx <= cur || lastIndex.CompareAndSwap(cur, idx) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d proposals failed; the first: %v", failed.Load(), firstErr.Load())
	}
	for _, j := range js {
		if err := j.State().WaitApplied(ctx, lastIndex.Load()); err != nil {
			t.Fatal(err)
		}
	}
	// Followers may apply further (configuration) entries; compare at rest.
	waitFor(t, "equal applied indexes", func() bool {
		a := js[0].State().AppliedIndex()
		return js[1].State().AppliedIndex() == a && js[2].State().AppliedIndex() == a
	})
	want := dumpState(t, js[0].State())
	for _, j := range js[1:] {
		if !bytes.Equal(want, dumpState(t, j.State())) {
			t.Fatalf("%s's state differs from m0's", j.NodeID())
		}
	}
	if n := len(js[0].State().ClusterMap().Workers); n != 5 {
		t.Fatalf("%d workers in the map, want 5", n)
	}
	// 1280 proposals in far fewer entries: the batcher gathered them.
	if lastIndex.Load() >= 1280 {
		t.Fatalf("1280 concurrent proposals took %d entries: nothing was batched", lastIndex.Load())
	}
}

func TestBatchingOffMakesOneEntryPerProposal(t *testing.T) {
	t.Parallel()
	js := inmemCluster(t, 1, func(c *Config) { c.MaxBatchEvents = 1 })
	var mu sync.Mutex
	entries := make(map[uint64]bool)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				_, idx, err := js[0].Propose(context.Background(), note(fmt.Sprint(g, i)))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				entries[idx] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(entries) != 160 {
		t.Fatalf("160 proposals with batching off took %d distinct entries", len(entries))
	}
}

func TestProposeOnFollowerIsRefused(t *testing.T) {
	t.Parallel()
	js := inmemCluster(t, 3, nil)
	leader := leaderOf(t, js)
	for _, j := range js {
		if j == leader {
			continue
		}
		if _, _, err := j.Propose(context.Background(), note("x")); err != ErrNotLeader {
			t.Fatalf("follower %s: %v, want ErrNotLeader", j.NodeID(), err)
		}
	}
}

func TestLeaderWorkFollowsLeadership(t *testing.T) {
	t.Parallel()
	js := inmemCluster(t, 3, nil)
	var mu sync.Mutex
	running := map[string]bool{}
	for _, j := range js {
		j.OnLeader("probe", func(ctx context.Context) {
			mu.Lock()
			running[j.NodeID()] = true
			mu.Unlock()
			<-ctx.Done()
			mu.Lock()
			running[j.NodeID()] = false
			mu.Unlock()
		})
	}
	// m0 led before the probes were registered: hand leadership over so a
	// fresh term starts them.
	old := leaderOf(t, js)
	if err := old.TransferLeadership(""); err != nil {
		t.Fatal(err)
	}
	var leader *Journal
	waitFor(t, "a new leader", func() bool {
		for _, j := range js {
			if j != old && j.IsLeader() {
				leader = j
				return true
			}
		}
		return false
	})
	waitFor(t, "leader work on the new leader only", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, j := range js {
			if running[j.NodeID()] != (j == leader) {
				return false
			}
		}
		return true
	})
	target := old.NodeID()
	if err := leader.TransferLeadership(target); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "leader work to move with leadership", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return running[target] && !running[leader.NodeID()]
	})
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// openTCP opens a single-node journal on a real TCP transport and disk and
// waits until it leads and has applied everything in its log.
func openTCP(t *testing.T, dir, addr string) *Journal {
	t.Helper()
	return openTCPStore(t, dir, addr, "")
}

// openTCPStore is openTCP with the log store named (Config.LogStore).
func openTCPStore(t *testing.T, dir, addr, store string) *Journal {
	t.Helper()
	j, err := Open(Config{NodeID: "solo", Dir: dir, RaftBind: addr, Bootstrap: true, Logger: quiet, LogStore: store,
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond, LeaderLeaseTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "leadership", j.IsLeader)
	// A barrier returns once everything before it is applied (no-op and
	// barrier entries never reach the state machine, so waiting for the
	// last log index would not end).
	if err := j.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestRestartDoesNotReplay runs on both log stores; the reopen names no
// store, so it also shows that a folder keeps the store it was made with.
func TestRestartDoesNotReplay(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"bolt", "wal"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			testRestartDoesNotReplay(t, store)
		})
	}
}

func testRestartDoesNotReplay(t *testing.T, store string) {
	dir, addr := t.TempDir(), freeAddr(t)
	j := openTCPStore(t, dir, addr, store)
	for i := range 50 {
		if _, _, err := j.Propose(context.Background(), register(fmt.Sprintf("w%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, rc, err := j.TakeSnapshot(); err != nil {
		t.Fatal(err)
	} else {
		rc.Close()
	}
	for i := range 20 {
		if _, _, err := j.Propose(context.Background(), note(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	applied := j.State().AppliedIndex()
	want := dumpState(t, j.State())
	j.Close()

	j2 := openTCP(t, dir, addr)
	if got := j2.StartAppliedIndex(); got != applied {
		t.Fatalf("restart began at applied index %d, want %d (no replay)", got, applied)
	}
	defer j2.Close()
	if got := dumpState(t, j2.State()); !bytes.Equal(want, got) {
		t.Fatalf("state after restart differs from the state before it (%d vs %d bytes)", len(got), len(want))
	}
	if n := len(j2.State().ClusterMap().Workers); n != 50 {
		t.Fatalf("%d workers after restart, want 50", n)
	}
	held := map[string]string{"bolt": "raft.db", "wal": "wal"}[store]
	if _, err := os.Stat(filepath.Join(dir, "raft", held)); err != nil {
		t.Fatalf("the %s log store's %s is not in the raft folder: %v", store, held, err)
	}
}

// TestStateLostRestoresFromSnapshot: with NoSnapshotRestoreOnStart raft
// would take the snapshot's index as applied; Open must rebuild the state
// store from the snapshot first, then raft replays the rest of the log.
func TestStateLostRestoresFromSnapshot(t *testing.T) {
	t.Parallel()
	dir, addr := t.TempDir(), freeAddr(t)
	j := openTCP(t, dir, addr)
	for i := range 30 {
		if _, _, err := j.Propose(context.Background(), register(fmt.Sprintf("w%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	meta, rc, err := j.TakeSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	for i := 30; i < 40; i++ {
		if _, _, err := j.Propose(context.Background(), register(fmt.Sprintf("w%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	if err := os.RemoveAll(filepath.Join(dir, "state")); err != nil {
		t.Fatal(err)
	}
	j2 := openTCP(t, dir, addr)
	defer j2.Close()
	if got := j2.StartAppliedIndex(); got < meta.Index {
		t.Fatalf("state store started at %d, below the snapshot at %d", got, meta.Index)
	}
	if n := len(j2.State().ClusterMap().Workers); n != 40 {
		t.Fatalf("%d workers after rebuilding from snapshot and log, want 40", n)
	}
}

func TestRefusesStateAheadOfLog(t *testing.T) {
	t.Parallel()
	dir, addr := t.TempDir(), freeAddr(t)
	j := openTCP(t, dir, addr)
	for i := range 5 {
		if _, _, err := j.Propose(context.Background(), note(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	if err := os.RemoveAll(filepath.Join(dir, "raft")); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Config{NodeID: "solo", Dir: dir, RaftBind: addr, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "was lost or replaced") {
		t.Fatalf("open with the raft folder gone: %v", err)
	}
}

func TestRefusesAnotherNodesFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := WriteIdentity(dir, Identity{NodeID: "m1", ClusterID: "c-1"}); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Config{NodeID: "m2", Dir: dir, RaftBind: freeAddr(t), Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), `belongs to master "m1"`) {
		t.Fatalf("open as m2 on m1's folder: %v", err)
	}
}

func TestReadEvents(t *testing.T) {
	t.Parallel()
	js := inmemCluster(t, 1, nil)
	j := js[0]
	_, idx, err := j.Propose(context.Background(), note("a"), note("b"))
	if err != nil {
		t.Fatal(err)
	}
	evs, next, err := j.ReadEvents(1, idx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if next != idx+1 || len(evs) < 2 {
		t.Fatalf("read %d events, next %d", len(evs), next)
	}
	last := evs[len(evs)-2:]
	if last[0].Event.GetNoteAppended().GetText() != "a" || last[1].Position != 1 || last[1].Index != idx {
		t.Fatalf("events %v", last)
	}
	if last[0].Event.GetTime() == nil || !last[1].Event.GetTime().AsTime().After(last[0].Event.GetTime().AsTime()) {
		t.Fatal("events are not stamped with increasing leader time")
	}
}
