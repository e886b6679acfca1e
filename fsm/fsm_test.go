package fsm

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

var quiet = slog.New(slog.DiscardHandler)

func open(t testing.TB) *Machine {
	t.Helper()
	m, err := Open(filepath.Join(t.TempDir(), "state"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func dump(t testing.TB, m *Machine) []byte {
	t.Helper()
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var t0 = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

func at(sec int) *timestamppb.Timestamp {
	return timestamppb.New(t0.Add(time.Duration(sec) * time.Second))
}

func reg(id, addr string, capacity uint64) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_WorkerRegistered{WorkerRegistered: &cairnv1.WorkerRegistered{WorkerId: id, Address: addr, CapacityBytes: capacity}}}
}

func evOf(kind string, id string) *cairnv1.Event {
	switch kind {
	case "down":
		return DownEvent(id, t0, 10*time.Second)
	case "up":
		return &cairnv1.Event{Kind: &cairnv1.Event_WorkerUp{WorkerUp: &cairnv1.WorkerUp{WorkerId: id}}}
	case "maintain":
		return &cairnv1.Event{Kind: &cairnv1.Event_WorkerMaintenanceStarted{WorkerMaintenanceStarted: &cairnv1.WorkerMaintenanceStarted{WorkerId: id}}}
	case "activate":
		return &cairnv1.Event{Kind: &cairnv1.Event_WorkerActivated{WorkerActivated: &cairnv1.WorkerActivated{WorkerId: id}}}
	case "decommission":
		return &cairnv1.Event{Kind: &cairnv1.Event_WorkerDecommissioned{WorkerDecommissioned: &cairnv1.WorkerDecommissioned{WorkerId: id}}}
	}
	panic(kind)
}

func replication(r uint32) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_ReplicationSet{ReplicationSet: &cairnv1.ReplicationSet{Replication: r}}}
}

// randomEntries builds n entries of 1..4 random events each, with leader
// times that mostly advance and sometimes go backwards.
func randomEntries(rng *rand.Rand, n int) []Entry {
	var out []Entry
	sec := 0
	for i := range n {
		var evs []*cairnv1.Event
		for range 1 + rng.IntN(4) {
			id := fmt.Sprintf("w%d", rng.IntN(6))
			var ev *cairnv1.Event
			switch rng.IntN(21) {
			case 0, 1, 2:
				ev = reg(id, fmt.Sprintf("10.0.0.%d:7000", rng.IntN(3)), uint64(1+rng.IntN(3))<<30)
			case 3:
				ev = evOf("down", id)
			case 4:
				ev = evOf("up", id)
			case 5:
				ev = evOf("maintain", id)
			case 6:
				ev = evOf("activate", id)
			case 7:
				ev = evOf("decommission", id)
			case 8:
				ev = replication(uint32(rng.IntN(5))) // 0 is rejected
			case 9:
				ev = &cairnv1.Event{Kind: &cairnv1.Event_MasterAdvertised{MasterAdvertised: &cairnv1.MasterAdvertised{
					MasterId: fmt.Sprintf("m%d", rng.IntN(3)), ApiAddress: "127.0.0.1:1", RaftAddress: "127.0.0.1:2"}}}
			case 10:
				ev = fileCreate(randomPath(rng), rng.IntN(2) == 0)
			case 11:
				ev = fileComplete(randomPath(rng), uint64(1+rng.IntN(i+1)), uint64(rng.IntN(1000)), map[string]string{"a": "1", "b": "2", "c": "3"})
			case 12:
				ev = fileDelete(randomPath(rng), rng.IntN(2) == 0)
			case 13:
				kinds := []cairnv1.JobKind{cairnv1.JobKind_JOB_KIND_REBALANCE, cairnv1.JobKind_JOB_KIND_CLEANUP, cairnv1.JobKind_JOB_KIND_PERSIST}
				ev = &cairnv1.Event{Kind: &cairnv1.Event_JobStarted{JobStarted: &cairnv1.JobStarted{
					Spec: &cairnv1.JobSpec{Kind: kinds[rng.IntN(3)], Epoch: uint64(rng.IntN(4)), Path: randomPath(rng)}, Workers: []string{"w1", "w2", ""}[:1+rng.IntN(3)]}}}
			case 14:
				ev = &cairnv1.Event{Kind: &cairnv1.Event_TaskLeased{TaskLeased: &cairnv1.TaskLeased{
					JobId: uint64(1 + rng.IntN(4)), Index: uint32(rng.IntN(3)), WorkerId: fmt.Sprintf("w%d", 1+rng.IntN(2)), Expiry: at(sec + rng.IntN(10))}}}
			case 15:
				ev = &cairnv1.Event{Kind: &cairnv1.Event_TaskReported{TaskReported: &cairnv1.TaskReported{
					JobId: uint64(1 + rng.IntN(4)), Index: uint32(rng.IntN(3)), LeaseId: uint64(1 + rng.IntN(6)), Seq: uint64(1 + rng.IntN(3)),
					Delta: &cairnv1.Counters{Sent: uint64(rng.IntN(10)), Removed: uint64(rng.IntN(3))}, Final: cairnv1.TaskState(rng.IntN(5)), LocalDone: rng.IntN(2) == 0}}}
			case 16:
				ev = &cairnv1.Event{Kind: &cairnv1.Event_LeaseExpired{LeaseExpired: &cairnv1.LeaseExpired{
					JobId: uint64(1 + rng.IntN(4)), Index: uint32(rng.IntN(3)), LeaseId: uint64(1 + rng.IntN(6))}}}
			case 17:
				ev = &cairnv1.Event{Kind: &cairnv1.Event_LeasesExtended{LeasesExtended: &cairnv1.LeasesExtended{Ttl: durationpb.New(time.Duration(rng.IntN(3)) * time.Second)}}}
			case 18:
				ev = &cairnv1.Event{Kind: &cairnv1.Event_JobStopped{JobStopped: &cairnv1.JobStopped{JobId: uint64(rng.IntN(4)), Kind: cairnv1.JobKind(rng.IntN(3))}}}
			case 19:
				ev = &cairnv1.Event{Kind: &cairnv1.Event_WorkersClean{WorkersClean: &cairnv1.WorkersClean{WorkerIds: []string{id}, Epoch: uint64(rng.IntN(4))}}}
			case 20:
				ev = &cairnv1.Event{Kind: &cairnv1.Event_WriteAbandoned{WriteAbandoned: &cairnv1.WriteAbandoned{Path: randomPath(rng), Version: uint64(1 + rng.IntN(i+1))}}}
			}
			sec += rng.IntN(5) - 1
			ev.Time = at(sec)
			ev.RequestId = fmt.Sprintf("req-%d", rng.Uint64())
			evs = append(evs, ev)
		}
		if rng.IntN(20) == 0 {
			evs = nil // a configuration entry
		}
		out = append(out, Entry{Index: uint64(i + 1), Events: evs})
	}
	return out
}

// applyChunked applies entries in Apply calls of random sizes, so that two
// machines see the same entries in different groupings.
func applyChunked(m *Machine, rng *rand.Rand, entries []Entry) [][]Result {
	var res [][]Result
	for len(entries) > 0 {
		n := 1 + rng.IntN(min(len(entries), 16))
		res = append(res, m.Apply(entries[:n])...)
		entries = entries[n:]
	}
	return res
}

func TestSameEventsSameBytes(t *testing.T) {
	t.Parallel()
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			entries := randomEntries(rand.New(rand.NewPCG(seed, 1)), 400)
			a, b := open(t), open(t)
			ra := applyChunked(a, rand.New(rand.NewPCG(seed, 2)), entries)
			rb := applyChunked(b, rand.New(rand.NewPCG(seed, 3)), entries)
			if !bytes.Equal(dump(t, a), dump(t, b)) {
				t.Fatal("two machines fed the same entries hold different bytes")
			}
			for i := range ra {
				for j := range ra[i] {
					if !ra[i][j].Equal(rb[i][j]) {
						t.Fatalf("entry %d event %d: results %+v vs %+v", i, j, ra[i][j], rb[i][j])
					}
				}
			}
			if a.AppliedIndex() != uint64(len(entries)) {
				t.Fatalf("applied index %d, want %d", a.AppliedIndex(), len(entries))
			}
			if a.ClusterMap().GetEpoch() == 0 {
				t.Fatal("400 random entries made no epoch: the generator is broken")
			}
		})
	}
}

func TestReplayIsNoop(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 7))
	entries := randomEntries(rng, 200)
	m := open(t)
	m.Apply(entries)
	before := dump(t, m)
	res := m.Apply(entries[150:])
	res = append(res, m.Apply(entries)...)
	for i, r := range res {
		if r != nil {
			t.Fatalf("replayed entry %d was applied again: %v", i, r)
		}
	}
	if !bytes.Equal(before, dump(t, m)) {
		t.Fatal("replaying applied entries changed the state")
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(11, 11))
	src, dst := open(t), open(t)
	src.Apply(randomEntries(rng, 300))
	dst.Apply(randomEntries(rng, 50)) // different state, replaced wholesale
	want := dump(t, src)
	if err := dst.Restore(bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, dst); !bytes.Equal(got, want) {
		t.Fatal("restored state differs from the snapshot")
	}
	if dst.AppliedIndex() != src.AppliedIndex() || !proto.Equal(dst.ClusterMap(), src.ClusterMap()) || dst.LastTime() != src.LastTime() {
		t.Fatalf("caches after restore: applied %d/%d epoch %d/%d", dst.AppliedIndex(), src.AppliedIndex(), dst.ClusterMap().GetEpoch(), src.ClusterMap().GetEpoch())
	}
	// The restored machine goes on applying from where the snapshot ended.
	next := []Entry{{Index: src.AppliedIndex() + 1, Events: []*cairnv1.Event{replication(3)}}}
	src.Apply(next)
	dst.Apply(next)
	if !bytes.Equal(dump(t, src), dump(t, dst)) {
		t.Fatal("machines diverged after applying the same entry past the snapshot")
	}
}

func TestRestoreRejectsDamage(t *testing.T) {
	t.Parallel()
	src, dst := open(t), open(t)
	src.Apply(randomEntries(rand.New(rand.NewPCG(3, 3)), 100))
	dst.Apply(randomEntries(rand.New(rand.NewPCG(4, 4)), 20))
	good := dump(t, src)
	before := dump(t, dst)
	cases := map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)/2],
		"no seal":   good[:len(good)-8],
		"flipped":   flip(good, len(good)/2),
		"bad seal":  flip(good, len(good)-1),
		"bad magic": flip(good, 0),
	}
	for name, b := range cases {
		if err := dst.Restore(bytes.NewReader(b)); err == nil {
			t.Fatalf("%s: restore accepted a damaged snapshot", name)
		}
		if !bytes.Equal(before, dump(t, dst)) {
			t.Fatalf("%s: a failed restore changed the state", name)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

func TestReopenKeepsState(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	m, err := Open(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	m.Apply(randomEntries(rand.New(rand.NewPCG(5, 5)), 120))
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	want := dump(t, m)
	m.Close()
	m2, err := Open(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if m2.AppliedIndex() != 120 || !bytes.Equal(want, dump(t, m2)) {
		t.Fatalf("reopened store: applied %d, same bytes %v", m2.AppliedIndex(), bytes.Equal(want, dump(t, m2)))
	}
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	type step struct {
		ev    *cairnv1.Event
		code  Code
		state cairnv1.WorkerState // of w1 after the step
		epoch uint64
	}
	A := cairnv1.WorkerState_WORKER_STATE_ACTIVE
	M := cairnv1.WorkerState_WORKER_STATE_MAINTENANCE
	D := cairnv1.WorkerState_WORKER_STATE_DOWN
	X := cairnv1.WorkerState_WORKER_STATE_DECOMMISSIONING
	steps := []step{
		{evOf("maintain", "w1"), NotFound, 0, 0},
		{reg("w1", "h:1", 1<<30), OK, A, 1},
		{reg("w1", "h:1", 1<<30), OK, A, 1},            // same registration: no new epoch
		{reg("w1", "h:1", 2<<30), OK, A, 2},            // capacity change: new epoch
		{reg("w2", "h:2", 1<<30), OK, A, 3},            // w2 joins
		{evOf("up", "w1"), OK, A, 3},                   // already active: no-op
		{evOf("activate", "w1"), OK, A, 3},             // already active: no-op
		{evOf("down", "w1"), OK, D, 4},                 // leaves the map
		{evOf("down", "w1"), FailedPrecondition, D, 4}, // only ACTIVE goes down
		{evOf("activate", "w1"), FailedPrecondition, D, 4},
		{evOf("up", "w1"), OK, A, 5},
		{evOf("maintain", "w1"), OK, M, 6},
		{evOf("maintain", "w1"), OK, M, 6},
		{evOf("up", "w1"), FailedPrecondition, M, 6},
		{reg("w1", "h:1", 2<<30), OK, M, 6}, // registering keeps maintenance
		{evOf("activate", "w1"), OK, A, 7},
		{evOf("decommission", "w1"), OK, X, 8},
		{evOf("maintain", "w1"), FailedPrecondition, X, 8},
		{evOf("activate", "w1"), OK, A, 9},
		{replication(0), InvalidArgument, A, 9},
		{replication(17), InvalidArgument, A, 9},
		{replication(2), OK, A, 10},
		{replication(2), OK, A, 10},
		{reg("w1", "h:9", 2<<30), OK, A, 11}, // moved: the map records addresses
		{&cairnv1.Event{}, InvalidArgument, A, 11},
	}
	m := open(t)
	for i, s := range steps {
		s.ev.Time = at(i)
		res := m.Apply([]Entry{{Index: uint64(i + 1), Events: []*cairnv1.Event{s.ev}}})[0][0]
		if res.Code != s.code || res.Epoch != s.epoch {
			t.Fatalf("step %d (%v): got %v %q epoch %d, want %v epoch %d", i, s.ev.GetKind(), res.Code, res.Message, res.Epoch, s.code, s.epoch)
		}
		if res.Code != OK && res.Message == "" {
			t.Fatalf("step %d: rejection without a message", i)
		}
		if s.state != 0 {
			w, _, err := m.Worker("w1")
			if err != nil {
				t.Fatal(err)
			}
			if w.State != s.state {
				t.Fatalf("step %d: w1 is %v, want %v", i, w.State, s.state)
			}
		}
	}
	cm := m.ClusterMap()
	if cm.Epoch != 11 || cm.Replication != 2 || len(cm.Workers) != 2 || cm.Workers[0].Address != "h:9" {
		t.Fatalf("final map %v", cm)
	}
	old, ok, err := m.ClusterMapAt(4)
	if err != nil || !ok || len(old.Workers) != 1 || old.Workers[0].Id != "w2" || old.Cause != "worker w1 is down" {
		t.Fatalf("map at epoch 4: %v %v %v", old, ok, err)
	}
}

func TestClusterInitializedOnce(t *testing.T) {
	t.Parallel()
	m := open(t)
	init := func(id string) Result {
		idx := m.AppliedIndex() + 1
		return m.Apply([]Entry{{Index: idx, Events: []*cairnv1.Event{{Kind: &cairnv1.Event_ClusterInitialized{ClusterInitialized: &cairnv1.ClusterInitialized{ClusterId: id}}}}}})[0][0]
	}
	if r := init("c-1"); r.Code != OK || m.ClusterID() != "c-1" {
		t.Fatalf("first init: %+v, id %q", r, m.ClusterID())
	}
	if r := init("c-1"); r.Code != OK {
		t.Fatalf("same id again: %+v", r)
	}
	if r := init("c-2"); r.Code != FailedPrecondition || m.ClusterID() != "c-1" {
		t.Fatalf("other id: %+v, id %q", r, m.ClusterID())
	}
}

func FuzzRestore(f *testing.F) {
	src, err := Open(filepath.Join(f.TempDir(), "src"), quiet)
	if err != nil {
		f.Fatal(err)
	}
	src.Apply(randomEntries(rand.New(rand.NewPCG(1, 1)), 20))
	f.Add(dump(f, src))
	src.Close()
	f.Add([]byte(snapshotMagic))
	f.Add([]byte(snapshotMagic + "\x05"))
	dst, err := Open(filepath.Join(f.TempDir(), "dst"), quiet)
	if err != nil {
		f.Fatal(err)
	}
	defer dst.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		// Any input either restores a consistent store or fails cleanly.
		if err := dst.Restore(bytes.NewReader(b)); err == nil {
			if _, err := dst.Workers(); err != nil {
				t.Fatalf("restored store cannot be read: %v", err)
			}
			var buf bytes.Buffer
			s, err := dst.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzApplyDecodedEntry(f *testing.F) {
	b, _ := proto.Marshal(&cairnv1.EventBatch{Events: []*cairnv1.Event{reg("w1", "h:1", 1<<30), replication(2)}})
	f.Add(b)
	m, err := Open(filepath.Join(f.TempDir(), "s"), quiet)
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	f.Fuzz(func(t *testing.T, raw []byte) {
		var batch cairnv1.EventBatch
		if err := proto.Unmarshal(raw, &batch); err != nil {
			return
		}
		// Whatever a decodable entry says, applying it yields one result per
		// event and never corrupts the store.
		res := m.Apply([]Entry{{Index: m.AppliedIndex() + 1, Events: batch.Events}})
		if len(res[0]) != len(batch.Events) {
			t.Fatalf("%d results for %d events", len(res[0]), len(batch.Events))
		}
		if _, err := m.Workers(); err != nil {
			t.Fatal(err)
		}
	})
}

func randomPath(rng *rand.Rand) string {
	return []string{"/a", "/a/b", "/a/c", "/d/e", "/d", "/f"}[rng.IntN(6)]
}

func fileCreate(p string, overwrite bool) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_FileCreated{FileCreated: &cairnv1.FileCreated{
		Path: p, WriteType: cairnv1.WriteType_WRITE_TYPE_MUST_CACHE, Overwrite: overwrite}}}
}

func fileComplete(p string, version, length uint64, md map[string]string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_FileCompleted{FileCompleted: &cairnv1.FileCompleted{
		Path: p, Version: version, Length: length, Checksum: length * 31, Metadata: md}}}
}

func fileDelete(p string, recursive bool) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_FileDeleted{FileDeleted: &cairnv1.FileDeleted{Path: p, Recursive: recursive}}}
}
