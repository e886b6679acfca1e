package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func workerState(t *testing.T, c *cluster, id string) cairnv1.WorkerState {
	t.Helper()
	cm, err := c.clusterMap()
	if err != nil {
		return cairnv1.WorkerState_WORKER_STATE_UNSPECIFIED
	}
	for _, w := range cm.GetWorkers() {
		if w.GetId() == id {
			return w.GetState()
		}
	}
	return cairnv1.WorkerState_WORKER_STATE_UNSPECIFIED
}

func inMap(cm *cairnv1.ClusterMap, id string) bool {
	for _, w := range cm.GetWorkers() {
		if w.GetId() == id {
			return true
		}
	}
	return false
}

// TestCluster drives one 3-master, 3-worker cluster through the
// foundation's promises in order: grpcurl compatibility, validation,
// maintenance epochs, heartbeat loss, leader failover and catch-up.
func TestCluster(t *testing.T) {
	c := startCluster(t, 3, 3)
	cli := c.client()
	ctx := context.Background()

	t.Run("grpcurl lists services and reads the map", func(t *testing.T) {
		out, err := grpcurl(t, "-plaintext", c.masters[1].api, "list")
		if err != nil {
			t.Fatalf("grpcurl list: %v\n%s", err, out)
		}
		for _, svc := range []string{"cairn.v1.ClusterService", "cairn.v1.OperatorService", "cairn.v1.EventService", "cairn.v1.NamespaceService", "grpc.health.v1.Health"} {
			if !strings.Contains(out, svc) {
				t.Errorf("grpcurl list on a master lacks %s:\n%s", svc, out)
			}
		}
		out, err = grpcurl(t, "-plaintext", "-d", "{}", c.masters[2].api, "cairn.v1.ClusterService/GetClusterMap")
		if err != nil {
			t.Fatalf("grpcurl GetClusterMap: %v\n%s", err, out)
		}
		var resp struct {
			Map struct {
				Epoch   string `json:"epoch"`
				Workers []struct {
					ID string `json:"id"`
				} `json:"workers"`
			} `json:"map"`
			ClusterID string `json:"clusterId"`
		}
		if err := json.Unmarshal([]byte(out), &resp); err != nil {
			t.Fatalf("grpcurl output is not JSON: %v\n%s", err, out)
		}
		if len(resp.Map.Workers) != 3 || resp.ClusterID == "" || resp.Map.Epoch == "" {
			t.Fatalf("map read through grpcurl: %s", out)
		}
		out, err = grpcurl(t, "-plaintext", "-d", `{"service":"cairn.v1.ClusterService"}`, c.masters[0].api, "grpc.health.v1.Health/Check")
		if err != nil || !strings.Contains(out, "SERVING") {
			t.Fatalf("health check: %v\n%s", err, out)
		}
	})

	t.Run("malformed requests get InvalidArgument naming the field", func(t *testing.T) {
		out, err := grpcurl(t, "-plaintext", "-d", `{"worker_id":"../etc","address":"127.0.0.1:1","capacity_bytes":1073741824}`,
			c.masters[1].api, "cairn.v1.ClusterService/RegisterWorker")
		if err == nil || !strings.Contains(out, "InvalidArgument") || !strings.Contains(out, "worker_id") {
			t.Fatalf("register with a bad id through grpcurl: %v\n%s", err, out)
		}
		cases := []struct {
			field string
			call  func(context.Context, client.Services) error
		}{
			{"address", func(ctx context.Context, s client.Services) error {
				_, err := s.Cluster.RegisterWorker(ctx, connect.NewRequest(&cairnv1.RegisterWorkerRequest{WorkerId: "ok", Address: "no-port", CapacityBytes: 1 << 30}))
				return err
			}},
			{"capacity_bytes", func(ctx context.Context, s client.Services) error {
				_, err := s.Cluster.RegisterWorker(ctx, connect.NewRequest(&cairnv1.RegisterWorkerRequest{WorkerId: "ok", Address: "127.0.0.1:9", CapacityBytes: 10}))
				return err
			}},
			{"replication", func(ctx context.Context, s client.Services) error {
				_, err := s.Cluster.SetReplication(ctx, connect.NewRequest(&cairnv1.SetReplicationRequest{Replication: 17}))
				return err
			}},
			{"text", func(ctx context.Context, s client.Services) error {
				_, err := s.Events.AppendNote(ctx, connect.NewRequest(&cairnv1.AppendNoteRequest{}))
				return err
			}},
		}
		for _, tc := range cases {
			err := cli.Do(ctx, tc.call)
			if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("bad %s: got %v, want InvalidArgument naming %s", tc.field, err, tc.field)
			}
		}
		if out, err := cairn(t, "cluster", "maintenance", "no-such-worker", "--masters", c.addrs()); err == nil || !strings.Contains(out, "not registered") {
			t.Errorf("maintenance of an unknown worker: %v\n%s", err, out)
		}
	})

	t.Run("maintenance takes a worker out of the map with a new epoch", func(t *testing.T) {
		before, err := c.clusterMap()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cairn(t, "cluster", "maintenance", "w2", "--reason", "disk swap", "--masters", c.masters[2].api)
		if err != nil {
			t.Fatalf("cairn cluster maintenance: %v\n%s", err, out)
		}
		after, err := c.clusterMap()
		if err != nil {
			t.Fatal(err)
		}
		if after.GetMap().GetEpoch() != before.GetMap().GetEpoch()+1 || inMap(after.GetMap(), "w2") || len(after.GetMap().GetWorkers()) != 2 {
			t.Fatalf("after maintenance: epoch %d→%d, map %v", before.GetMap().GetEpoch(), after.GetMap().GetEpoch(), after.GetMap().GetWorkers())
		}
		if out, err := cairn(t, "cluster", "activate", "w2", "--masters", c.addrs()); err != nil {
			t.Fatalf("cairn cluster activate: %v\n%s", err, out)
		}
		back, err := c.clusterMap()
		if err != nil {
			t.Fatal(err)
		}
		if back.GetMap().GetEpoch() != after.GetMap().GetEpoch()+1 || !inMap(back.GetMap(), "w2") {
			t.Fatalf("after activate: epoch %d, map %v", back.GetMap().GetEpoch(), back.GetMap().GetWorkers())
		}
		// An epoch, once made, can be read back.
		old, err := cli.Masters()[0].Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{Epoch: after.GetMap().GetEpoch()}))
		if err != nil || inMap(old.Msg.GetMap(), "w2") {
			t.Fatalf("map at epoch %d: %v", after.GetMap().GetEpoch(), err)
		}
	})

	t.Run("the namespace through any master", func(t *testing.T) {
		var follower *master
		lead := c.leader()
		for _, m := range c.masters {
			if m != lead {
				follower = m
				break
			}
		}
		ns := follower.cli.Masters()[0].Namespace
		created, err := ns.CreateFile(ctx, connect.NewRequest(&cairnv1.CreateFileRequest{Path: "/data/a.bin", WriteType: cairnv1.WriteType_WRITE_TYPE_MUST_CACHE}))
		if err != nil {
			t.Fatalf("create through a follower: %v", err)
		}
		done, err := ns.CompleteFile(ctx, connect.NewRequest(&cairnv1.CompleteFileRequest{Path: "/data/a.bin", Length: 3, Checksum: 42, Etag: "e1", Version: created.Msg.GetWrite().GetVersion()}))
		if err != nil || done.Msg.GetFile().GetVersion() != created.Msg.GetWrite().GetVersion() {
			t.Fatalf("complete: %v %v", done, err)
		}
		for _, m := range c.masters {
			eventually(t, 5*time.Second, m.id+" to see the file", func() bool {
				r, err := m.cli.Masters()[0].Namespace.GetFile(ctx, connect.NewRequest(&cairnv1.GetFileRequest{Path: "/data/a.bin"}))
				return err == nil && r.Msg.GetFile().GetVersion() == done.Msg.GetFile().GetVersion() && r.Msg.GetFile().GetEtag() == "e1"
			})
		}
		out, err := grpcurl(t, "-plaintext", "-d", `{"prefix":"/data"}`, follower.api, "cairn.v1.NamespaceService/ListFiles")
		if err != nil || !strings.Contains(out, "/data/a.bin") {
			t.Fatalf("list through grpcurl: %v\n%s", err, out)
		}
		_, err = ns.CreateFile(ctx, connect.NewRequest(&cairnv1.CreateFileRequest{Path: "/data/../etc", WriteType: cairnv1.WriteType_WRITE_TYPE_MUST_CACHE}))
		if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "path") {
			t.Fatalf("a climbing path: %v", err)
		}
		if _, err := ns.GetFile(ctx, connect.NewRequest(&cairnv1.GetFileRequest{Path: "/data/missing"})); connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("a missing file: %v", err)
		}
		del, err := ns.DeleteFile(ctx, connect.NewRequest(&cairnv1.DeleteFileRequest{Path: "/data", Recursive: true}))
		if err != nil || del.Msg.GetDeleted() != 1 {
			t.Fatalf("recursive delete: %v %v", del, err)
		}
	})

	t.Run("a silent worker is DOWN within the timeout and ACTIVE when it returns", func(t *testing.T) {
		w3 := c.workers[2]
		w3.signal(t, syscall.SIGSTOP)
		stopped := time.Now()
		eventually(t, hbTimeout+3*time.Second, "w3 DOWN", func() bool {
			return workerState(t, c, "w3") == cairnv1.WorkerState_WORKER_STATE_DOWN
		})
		took := time.Since(stopped)
		// DOWN comes after the timeout plus at most one heartbeat interval
		// (the last heartbeat may precede the stop) and a check tick.
		if took > hbTimeout+hbTimeout/4+time.Second {
			t.Errorf("DOWN %s after the heartbeats stopped; timeout is %s", took, hbTimeout)
		}
		cm, _ := c.clusterMap()
		if inMap(cm.GetMap(), "w3") {
			t.Fatal("a DOWN worker is still in the map")
		}
		w3.signal(t, syscall.SIGCONT)
		eventually(t, 10*time.Second, "w3 ACTIVE again", func() bool {
			return workerState(t, c, "w3") == cairnv1.WorkerState_WORKER_STATE_ACTIVE
		})
		cm, _ = c.clusterMap()
		if !inMap(cm.GetMap(), "w3") {
			t.Fatal("w3 is ACTIVE but not in the map")
		}
	})

	t.Run("kill -9 the leader: a new leader, the map intact, writes through survivors, catch-up without replay", func(t *testing.T) {
		before, err := c.clusterMap()
		if err != nil {
			t.Fatal(err)
		}
		old := c.leader()
		st, err := old.status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		appliedAtKill := st.GetAppliedIndex()
		// Applied state reaches the disk within a sync interval; wait for
		// it so the restart below can be held to this index exactly.
		eventually(t, 5*time.Second, "the leader's state to be on disk", func() bool {
			s, err := old.status(ctx)
			return err == nil && s.GetDurableIndex() >= appliedAtKill
		})
		old.kill()
		killed := time.Now()
		var survivors []*master
		for _, m := range c.masters {
			if m != old {
				survivors = append(survivors, m)
			}
		}
		// Write through each survivor in turn until one is accepted.
		var firstWrite time.Duration
		for i := 0; ; i++ {
			s := survivors[i%2]
			cctx, cancel := context.WithTimeout(ctx, 6*time.Second)
			_, err := s.cli.Masters()[0].Events.AppendNote(cctx, connect.NewRequest(&cairnv1.AppendNoteRequest{Text: "after failover"}))
			cancel()
			if err == nil {
				firstWrite = time.Since(killed)
				break
			}
			if time.Since(killed) > 10*time.Second {
				t.Fatalf("no write accepted 10s after killing the leader: %v", err)
			}
		}
		if firstWrite > 5*time.Second {
			t.Errorf("first write accepted %s after the leader died; want under 5s", firstWrite)
		}
		t.Logf("first write accepted %s after kill -9 of leader %s", firstWrite, old.id)
		nl := c.leader()
		if nl == old {
			t.Fatal("the killed master still leads")
		}
		for _, s := range survivors {
			after, err := adminClient([]string{s.api}).Masters()[0].Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			if after.Msg.GetMap().GetEpoch() != before.GetMap().GetEpoch() || len(after.Msg.GetMap().GetWorkers()) != 3 {
				t.Fatalf("%s after failover: epoch %d with %d workers, before: epoch %d", s.id, after.Msg.GetMap().GetEpoch(),
					len(after.Msg.GetMap().GetWorkers()), before.GetMap().GetEpoch())
			}
		}
		// Writes sent to the other survivor (a follower) are forwarded.
		for _, s := range survivors {
			if _, err := s.cli.Masters()[0].Cluster.MaintainWorker(ctx, connect.NewRequest(&cairnv1.MaintainWorkerRequest{WorkerId: "w1"})); err != nil {
				t.Fatalf("maintenance through %s: %v", s.id, err)
			}
			if _, err := s.cli.Masters()[0].Cluster.ActivateWorker(ctx, connect.NewRequest(&cairnv1.ActivateWorkerRequest{WorkerId: "w1"})); err != nil {
				t.Fatalf("activate through %s: %v", s.id, err)
			}
		}
		// A note sent to the follower survivor travels inside the journal:
		// the follower hands the call to the leader over the raft port, and
		// the caller's request id goes with it into the event.
		for _, s := range survivors {
			if s == c.leader() {
				continue
			}
			before := metric(t, s.api, "cairn_journal_forwarded_total", `outcome="answered"`)
			req := connect.NewRequest(&cairnv1.AppendNoteRequest{Text: "through a follower"})
			req.Header().Set("Cairn-Request-Id", "note-via-"+s.id)
			r, err := s.cli.Masters()[0].Events.AppendNote(ctx, req)
			if err != nil || r.Msg.GetIndex() == 0 {
				t.Fatalf("note through follower %s: %v", s.id, err)
			}
			if after := metric(t, s.api, "cairn_journal_forwarded_total", `outcome="answered"`); after < before+1 {
				t.Fatalf("follower %s forwarded %v calls inside the journal, want at least the note", s.id, after-before)
			}
			tail, err := s.cli.Masters()[0].Events.TailEvents(ctx, connect.NewRequest(&cairnv1.TailEventsRequest{FromIndex: r.Msg.GetIndex(), NoFollow: true}))
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for tail.Receive() {
				e := tail.Msg()
				found = found || (e.GetIndex() == r.Msg.GetIndex() && e.GetEvent().GetNoteAppended().GetText() == "through a follower" && e.GetEvent().GetRequestId() == "note-via-"+s.id)
			}
			if !found {
				t.Fatalf("the note at index %d through %s is not in the journal with its request id (%v)", r.Msg.GetIndex(), s.id, tail.Err())
			}
		}

		old.restart(t)
		rst := old.waitUp(t)
		if rst.GetStartAppliedIndex() < appliedAtKill || rst.GetStartAppliedIndex() <= 1 {
			t.Fatalf("restarted master began at applied index %d; it had applied %d before the kill (it replayed)",
				rst.GetStartAppliedIndex(), appliedAtKill)
		}
		lst, err := nl.status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the restarted master to catch up", func() bool {
			s, err := old.status(ctx)
			return err == nil && s.GetAppliedIndex() >= lst.GetAppliedIndex()
		})
		got, err := old.cli.Masters()[0].Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := c.clusterMap()
		if got.Msg.GetMap().GetEpoch() != want.GetMap().GetEpoch() {
			t.Fatalf("restarted master at epoch %d, cluster at %d", got.Msg.GetMap().GetEpoch(), want.GetMap().GetEpoch())
		}
	})

	t.Run("operator verbs", func(t *testing.T) {
		out, err := cairn(t, "operator", "raft", "peers", "--masters", c.addrs())
		if err != nil || strings.Count(out, "follower") != 2 || strings.Count(out, "leader") != 1 {
			t.Fatalf("raft peers: %v\n%s", err, out)
		}
		before := c.leader()
		out, err = cairn(t, "operator", "raft", "transfer-leadership", "--masters", c.addrs())
		if err != nil {
			t.Fatalf("transfer-leadership: %v\n%s", err, out)
		}
		if after := c.leader(); after == before {
			t.Fatalf("leadership stayed with %s", before.id)
		}
		snap := filepath.Join(t.TempDir(), "snap.bin")
		if out, err := cairn(t, "operator", "snapshot", "save", snap, "--masters", c.addrs()); err != nil || !strings.Contains(out, "saved snapshot at index") {
			t.Fatalf("snapshot save: %v\n%s", err, out)
		}
		out, err = cairn(t, "events", "tail", "--no-follow", "--masters", c.addrs())
		if err != nil || !strings.Contains(out, "after failover") || !strings.Contains(out, "worker_down") {
			t.Fatalf("events tail: %v\n%s", err, out)
		}
	})
}

// TestRefusesOtherClusters: a master cannot join with another cluster's id,
// nor start on another cluster's or another master's data folder.
func TestRefusesOtherClusters(t *testing.T) {
	a := startCluster(t, 1, 0)
	b := startCluster(t, 1, 0)
	ctx := context.Background()
	bst, err := b.masters[0].status(ctx)
	if err != nil {
		t.Fatal(err)
	}

	_, err = a.masters[0].cli.Masters()[0].Operator.JoinCluster(ctx, connect.NewRequest(&cairnv1.JoinClusterRequest{
		MasterId: "intruder", RaftAddress: "127.0.0.1:1", ApiAddress: "127.0.0.1:2", ClusterId: bst.GetClusterId()}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), bst.GetClusterId()) {
		t.Fatalf("join with cluster b's id: %v", err)
	}
	peers, err := a.peers()
	if err != nil || len(peers.GetPeers()) != 1 {
		t.Fatalf("cluster a's peers after the refused join: %v %v", peers, err)
	}

	b.masters[0].kill()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"another cluster's folder", []string{"--id", "m1", "--join", a.masters[0].api}, "belongs to cluster " + bst.GetClusterId()},
		{"another master's folder", []string{"--id", "m9"}, `belongs to master "m1"`},
	}
	for _, tc := range cases {
		args := append([]string{"master", "--data", b.masters[0].dir, "--api", freeAddr(t), "--raft", freeAddr(t), "--token-file", adminTokenFile}, tc.args...)
		p := start(t, "refused", args...)
		err, gone := p.exited(20 * time.Second)
		if !gone {
			t.Fatalf("%s: the master did not refuse to start", tc.name)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s: exit %v", tc.name, err)
		}
		if log := tail(p.log, 5); !strings.Contains(log, tc.want) {
			t.Fatalf("%s: the refusal does not say why (want %q):\n%s", tc.name, tc.want, log)
		}
	}
}

// Three masters started at the same instant — the first bootstraps, the
// others join it at once, as docker-compose and Kubernetes start them —
// form one cluster: a joiner never gives up because the master it joins
// through is not ready yet.
func TestStartTogether(t *testing.T) {
	t.Parallel()
	for round := range 3 {
		root := t.TempDir()
		m1 := &master{id: "m1", api: freeAddr(t), raft: freeAddr(t), dir: filepath.Join(root, "m1")}
		var ms []*master
		for i, m := range []*master{m1, {id: "m2"}, {id: "m3"}} {
			if i > 0 {
				m.api, m.raft, m.dir = freeAddr(t), freeAddr(t), filepath.Join(root, m.id)
			}
			extra := []string{"--bootstrap"}
			if i > 0 {
				extra = []string{"--join", m1.api}
			}
			ms = append(ms, startMasterAt(t, m, extra...))
		}
		c := &cluster{t: t, root: root, masters: ms}
		eventually(t, 60*time.Second, fmt.Sprintf("round %d: three voters", round), func() bool {
			for _, m := range ms {
				if err, gone := m.exited(0); gone {
					t.Fatalf("round %d: %s exited: %v\n%s", round, m.id, err, tail(m.log, 10))
				}
			}
			peers, err := c.peers()
			return err == nil && len(peers.GetPeers()) == 3
		})
		for _, m := range ms {
			m.kill()
		}
	}
}
