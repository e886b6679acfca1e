package tests

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/auth"
	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// callAs makes one call of procedure on the process at addr with token ("":
// none), with an empty request: the token is checked before the request is
// read. Streams are opened and read to their first message or error.
func callAs(ctx context.Context, addr, procedure string, streaming bool, token string) error {
	hc := &http.Client{Transport: auth.Transport(token, apiserver.HTTP1Transport())}
	c := connect.NewClient[emptypb.Empty, emptypb.Empty](hc, "http://"+addr+procedure)
	if !streaming {
		_, err := c.CallUnary(ctx, connect.NewRequest(&emptypb.Empty{}))
		return err
	}
	s, err := c.CallServerStream(ctx, connect.NewRequest(&emptypb.Empty{}))
	if err != nil {
		return err
	}
	defer s.Close()
	s.Receive()
	return s.Err()
}

// procedures lists every procedure of every cairn service: its path,
// whether it streams, and whether workers serve it (DataService).
func procedures(t *testing.T) []struct {
	path           string
	stream, worker bool
} {
	var out []struct {
		path           string
		stream, worker bool
	}
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "cairn.") {
			return true
		}
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for k := range sd.Methods().Len() {
				md := sd.Methods().Get(k)
				out = append(out, struct {
					path           string
					stream, worker bool
				}{"/" + string(sd.FullName()) + "/" + string(md.Name()), md.IsStreamingServer() || md.IsStreamingClient(), sd.FullName() == "cairn.v1.DataService"})
			}
		}
		return true
	})
	if len(out) < 50 {
		t.Fatalf("only %d procedures found", len(out))
	}
	return out
}

// Every procedure of every service, and every HTTP route, refuses a call
// without a token (Unauthenticated, HTTP 401), and one with an unknown
// token.
func TestEveryEntryPointNeedsAToken(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, 1)
	worker := workerAddrs(t, c)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, p := range procedures(t) {
		addr := c.masters[0].api
		if p.worker {
			addr = worker
		}
		for _, token := range []string{"", auth.NewToken()} {
			err := callAs(ctx, addr, p.path, p.stream, token)
			if connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Errorf("%s on %s with token %t: %v, want Unauthenticated", p.path, addr, token != "", err)
			}
		}
	}
	// A unary call over the Connect protocol is answered with HTTP 401.
	resp, err := http.Post("http://"+c.masters[0].api+"/cairn.v1.NamespaceService/DeleteFile", "application/json", strings.NewReader(`{"path":"/x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a Connect call without a token: HTTP %d, want 401", resp.StatusCode)
	}
	for _, r := range []struct {
		method, addr, path string
	}{
		{http.MethodGet, c.masters[0].api, "/metrics"},
		{http.MethodPost, c.masters[0].api, "/api/v1/cache"},
		{http.MethodDelete, c.masters[0].api, "/api/v1/cache"},
		{http.MethodGet, c.masters[0].api, "/debug/pprof/heap"},
		{http.MethodGet, worker, "/metrics"},
		{http.MethodGet, worker, "/data/v1/read?path=/x&version=1"},
		{http.MethodPost, worker, "/data/v1/write"},
	} {
		req, _ := http.NewRequestWithContext(ctx, r.method, "http://"+r.addr+r.path, strings.NewReader(`{"op":"clear-stale"}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s%s without a token: HTTP %d, want 401", r.method, r.addr, r.path, resp.StatusCode)
		}
	}
	// Health and reflection stay open, for probes and grpcurl.
	if out, err := grpcurlAs(t, "", "-plaintext", c.masters[0].api, "grpc.health.v1.Health/Check"); err != nil || !strings.Contains(out, "SERVING") {
		t.Errorf("health without a token: %v\n%s", err, out)
	}
	if out, err := grpcurlAs(t, "", "-plaintext", c.masters[0].api, "list"); err != nil || !strings.Contains(out, "cairn.v1.AuthService") {
		t.Errorf("reflection without a token: %v\n%s", err, out)
	}
	// grpcurl with a token works; without, the message says what to do.
	if out, err := grpcurl(t, "-plaintext", "-d", "{}", c.masters[0].api, "cairn.v1.AuthService/WhoAmI"); err != nil || !strings.Contains(out, `"name": "admin"`) {
		t.Errorf("grpcurl WhoAmI with the admin token: %v\n%s", err, out)
	}
	if out, err := grpcurlAs(t, "", "-plaintext", "-d", "{}", c.masters[0].api, "cairn.v1.ClusterService/GetClusterMap"); err == nil || !strings.Contains(out, "Unauthenticated") || !strings.Contains(out, "authorization: Bearer") {
		t.Errorf("grpcurl without a token: %v\n%s", err, out)
	}
}

// workerAddrs returns the workers' API addresses from the map.
func workerAddrs(t *testing.T, c *cluster) []string {
	t.Helper()
	cm, err := c.clusterMap()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, w := range cm.GetMap().GetWorkers() {
		out = append(out, w.GetAddress())
	}
	return out
}

// makeToken creates a token through c and returns it.
func makeToken(t *testing.T, c *cluster, name string, role cairnv1.Role) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.Msg(ctx, c.client(), func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.CreateTokenResponse], error) {
		return s.Auth.CreateToken(ctx, connect.NewRequest(&cairnv1.CreateTokenRequest{Name: name, Role: role}))
	})
	if err != nil {
		t.Fatalf("create token %s: %v", name, err)
	}
	return resp.GetToken()
}

// A worker token cannot start a job, decommission a worker or list the
// namespace; a reader cannot write; an operator can run jobs but not make
// tokens. Jobs and events name the token that made them.
func TestRolesAndAudit(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	api := c.masters[0].api
	worker := makeToken(t, c, "w-extra", cairnv1.Role_ROLE_WORKER)
	reader := makeToken(t, c, "auditor", cairnv1.Role_ROLE_READER)
	ops := makeToken(t, c, "ops", cairnv1.Role_ROLE_OPERATOR)
	as := func(token string) client.Services {
		return client.New([]string{api}, client.WithToken(token), client.WithRetryBudget(time.Second)).Masters()[0]
	}
	denied := func(what string, err error) {
		t.Helper()
		if connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("%s: %v, want PermissionDenied", what, err)
		}
	}
	w, r, o := as(worker), as(reader), as(ops)
	_, err := w.Jobs.StartJob(ctx, connect.NewRequest(&cairnv1.StartJobRequest{Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_CLEANUP}}))
	denied("a worker starts a job", err)
	_, err = w.Cluster.DecommissionWorker(ctx, connect.NewRequest(&cairnv1.DecommissionWorkerRequest{WorkerId: "w1"}))
	denied("a worker decommissions", err)
	_, err = w.Namespace.ListFiles(ctx, connect.NewRequest(&cairnv1.ListFilesRequest{Prefix: "/"}))
	denied("a worker lists the namespace", err)
	if _, err := w.Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{})); err != nil {
		t.Errorf("a worker reads the map: %v", err)
	}
	_, err = r.Namespace.CreateFile(ctx, connect.NewRequest(&cairnv1.CreateFileRequest{Path: "/r", WriteType: cairnv1.WriteType_WRITE_TYPE_MUST_CACHE}))
	denied("a reader creates a file", err)
	_, err = r.Jobs.UpdateSetting(ctx, connect.NewRequest(&cairnv1.UpdateSettingRequest{Name: "cleanup.auto", Value: "false"}))
	denied("a reader changes a setting", err)
	if _, err := r.Namespace.ListFiles(ctx, connect.NewRequest(&cairnv1.ListFilesRequest{Prefix: "/"})); err != nil {
		t.Errorf("a reader lists files: %v", err)
	}
	_, err = o.Auth.CreateToken(ctx, connect.NewRequest(&cairnv1.CreateTokenRequest{Name: "mine", Role: cairnv1.Role_ROLE_ADMIN}))
	denied("an operator makes a token", err)
	// The CLI says the same, and exits non-zero.
	if out, err := cairnAs(t, reader, "job", "start", "cleanup", "--masters", api); err == nil || !strings.Contains(out, "permission_denied") || !strings.Contains(out, "auditor") {
		t.Errorf("cairn job start as a reader: %v\n%s", err, out)
	}

	started, err := o.Jobs.StartJob(ctx, connect.NewRequest(&cairnv1.StartJobRequest{Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_CLEANUP}, RequestedBy: "someone else"}))
	if err != nil {
		t.Fatal(err)
	}
	id := started.Msg.GetJob().GetId()
	if _, err := o.Jobs.StopJob(ctx, connect.NewRequest(&cairnv1.StopJobRequest{Id: id})); err != nil {
		t.Fatal(err)
	}
	j, err := o.Jobs.GetJob(ctx, connect.NewRequest(&cairnv1.GetJobRequest{Id: id}))
	if err != nil {
		t.Fatal(err)
	}
	if j.Msg.GetJob().GetRequestedBy() != "ops" || j.Msg.GetJob().GetStoppedBy() != "ops" {
		t.Errorf("job %d: requested by %q, stopped by %q; want the token's name, ops, for both", id, j.Msg.GetJob().GetRequestedBy(), j.Msg.GetJob().GetStoppedBy())
	}
	if out, err := cairn(t, "job", "show", "--masters", api, strconv.FormatUint(id, 10)); err != nil || !strings.Contains(out, "ops") {
		t.Errorf("cairn job show %d does not name who started and stopped it: %v\n%s", id, err, out)
	}
	if out, err := cairn(t, "events", "tail", "--from", "1", "--no-follow", "--masters", api); err != nil || !strings.Contains(out, "by ops") {
		t.Errorf("cairn events tail does not name the token behind the stop: %v\n%s", err, out)
	}
}

// A revoked token is refused by every master and worker within a second,
// also after the leader is killed.
func TestRevokedTokenIsRefusedEverywhere(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, 1)
	worker := workerAddrs(t, c)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	revokeAndCheck := func(name string, masters []*master) {
		t.Helper()
		token := makeToken(t, c, name, cairnv1.Role_ROLE_READER)
		check := func(addr, procedure string, stream bool) error {
			return callAs(ctx, addr, procedure, stream, token)
		}
		// Works everywhere first.
		for _, m := range masters {
			eventually(t, 5*time.Second, "the new token to work on "+m.id, func() bool {
				return check(m.api, "/cairn.v1.JobService/GetSettings", false) == nil
			})
		}
		eventually(t, 5*time.Second, "the new token to work on the worker", func() bool {
			return connect.CodeOf(check(worker, "/cairn.v1.DataService/Stat", false)) != connect.CodeUnauthenticated
		})
		if _, err := masters[len(masters)-1].cli.Masters()[0].Auth.RevokeToken(ctx, connect.NewRequest(&cairnv1.RevokeTokenRequest{Name: name})); err != nil {
			t.Fatal(err)
		}
		revoked := time.Now()
		var wg sync.WaitGroup
		for _, target := range append(append([]string{}, apis(masters)...), worker) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				proc := "/cairn.v1.JobService/GetSettings"
				if target == worker {
					proc = "/cairn.v1.DataService/Stat"
				}
				for connect.CodeOf(check(target, proc, false)) != connect.CodeUnauthenticated {
					if time.Since(revoked) > time.Second {
						t.Errorf("%s still takes token %s %s after it was revoked", target, name, time.Since(revoked))
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
				t.Logf("%s refuses revoked token %s after %s", target, name, time.Since(revoked).Round(time.Millisecond))
			}()
		}
		wg.Wait()
	}
	revokeAndCheck("before-failover", c.masters)
	old := c.leader()
	old.signal(t, syscall.SIGKILL)
	var survivors []*master
	for _, m := range c.masters {
		if m != old {
			survivors = append(survivors, m)
		}
	}
	eventually(t, 10*time.Second, "a new leader", func() bool { return c.leader() != old })
	revokeAndCheck("after-failover", survivors)
}

func apis(ms []*master) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.api)
	}
	return out
}

// Secure by default: a new cluster without a first token, a joining master
// without an admin token and a worker without a token refuse to start,
// saying what to give; --insecure starts and says so.
func TestSecureByDefault(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bootstrap without a token", []string{"master", "--id", "m1", "--data", filepath.Join(dir, "a"), "--api", freeAddr(t), "--raft", freeAddr(t), "--bootstrap"}, "--admin-token-file"},
		{"join without a token", []string{"master", "--id", "m2", "--data", filepath.Join(dir, "b"), "--api", freeAddr(t), "--raft", freeAddr(t), "--join", "127.0.0.1:1"}, "--token-file"},
		{"worker without a token", []string{"worker", "--data", filepath.Join(dir, "w"), "--api", freeAddr(t), "--masters", "127.0.0.1:1"}, "--token-file"},
	} {
		p := start(t, "refused", tc.args...)
		err, gone := p.exited(20 * time.Second)
		var ee *exec.ExitError
		if !gone || !errors.As(err, &ee) {
			t.Fatalf("%s: started (or exited %v)", tc.name, err)
		}
		if log := tail(p.log, 5); !strings.Contains(log, tc.want) {
			t.Fatalf("%s: the refusal does not name %s:\n%s", tc.name, tc.want, log)
		}
	}
	m := startMaster(t, "m1", filepath.Join(dir, "insecure"), "--bootstrap", "--insecure")
	m.waitUp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	who, err := client.New([]string{m.api}).Masters()[0].Auth.WhoAmI(ctx, connect.NewRequest(&cairnv1.WhoAmIRequest{}))
	if err != nil || !who.Msg.GetInsecure() {
		t.Fatalf("whoami on an insecure master without a token: %v %v", who, err)
	}
	if v := metric(t, m.api, "cairn_auth_insecure", ""); v != 1 {
		t.Fatalf("cairn_auth_insecure %v, want 1", v)
	}
	if log := tail(m.log, 200); !strings.Contains(log, "--insecure") {
		t.Fatal("an insecure master does not warn about it")
	}
}

// A master whose cluster secret is wrong cannot speak raft with the others:
// it gets no log, cannot forward a write and cannot be elected; with the
// right secret it catches up. A process that is no member is refused at the
// first byte of the raft port.
func TestRaftPortNeedsTheClusterSecret(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leader := c.leader()
	var rogue *master
	for _, m := range c.masters {
		if m != leader {
			rogue = m
			break
		}
	}
	ident := filepath.Join(rogue.dir, "identity.json")
	good, err := os.ReadFile(ident)
	if err != nil {
		t.Fatal(err)
	}
	var id map[string]string
	if err := json.Unmarshal(good, &id); err != nil || len(id["cluster_secret"]) < 32 {
		t.Fatalf("identity.json has no cluster secret: %s", good)
	}
	if fi, err := os.Stat(ident); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity.json is readable by others: %v %v", fi.Mode(), err)
	}
	rogue.kill()
	id["cluster_secret"] = strings.Repeat("ab", 32)
	bad, _ := json.Marshal(id)
	if err := os.WriteFile(ident, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	rogue.restart(t)
	note := func(m *master, text string, d time.Duration) error {
		cctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		_, err := m.cli.Masters()[0].Events.AppendNote(cctx, connect.NewRequest(&cairnv1.AppendNoteRequest{Text: text}))
		return err
	}
	if err := note(leader, "while a rogue runs", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	lst, err := leader.status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the rogue master to answer", func() bool {
		_, err := rogueStatus(ctx, rogue)
		return err == nil
	})
	if err := note(rogue, "through the rogue", 2*time.Second); err == nil {
		t.Fatal("a master with the wrong cluster secret forwarded a write")
	}
	if st, _ := rogueStatus(ctx, rogue); st.GetAppliedIndex() >= lst.GetAppliedIndex() || st.GetRaftState() == cairnv1.RaftState_RAFT_STATE_LEADER {
		t.Fatalf("the rogue master applied %d (the leader %d), state %v", st.GetAppliedIndex(), lst.GetAppliedIndex(), st.GetRaftState())
	}
	eventually(t, 10*time.Second, "the refusals to show in the members' metrics", func() bool {
		return metric(t, leader.api, "cairn_raft_refused_connections_total", `reason="bad_proof"`)+
			metric(t, rogue.api, "cairn_raft_refused_connections_total", `reason="bad_proof"`) > 0
	})
	// With the leader gone, the rogue cannot be elected (nobody grants it a
	// vote), and the one member left cannot win without it.
	leader.kill()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := rogueStatus(ctx, rogue); err == nil && st.GetRaftState() == cairnv1.RaftState_RAFT_STATE_LEADER {
			t.Fatal("the master with the wrong secret was elected")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Back with the right secret, it catches up, and a leader is elected.
	rogue.kill()
	if err := os.WriteFile(ident, good, 0o600); err != nil {
		t.Fatal(err)
	}
	rogue.restart(t)
	rogue.waitUp(t)
	if err := note(rogue, "a member again", 10*time.Second); err != nil {
		t.Fatalf("write through the master once its secret is right: %v", err)
	}
	// A process that is no member at all is refused at the raft port's
	// first byte.
	nc, err := net.Dial("tcp", rogue.raft)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte{0xCA, 2, 0}) // a forward hello, without the proof
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _ := nc.Read(make([]byte, 16)); n > 0 {
		t.Fatal("the raft port answered a connection that did not prove membership")
	}
}

// rogueStatus asks one master for its own view (stale-any: it may be cut
// off from the others).
func rogueStatus(ctx context.Context, m *master) (*cairnv1.GetStatusResponse, error) {
	req := connect.NewRequest(&cairnv1.GetStatusRequest{})
	req.Header().Set("Cairn-Consistency", "stale-any")
	r, err := m.cli.Masters()[0].Operator.GetStatus(ctx, req)
	if err != nil {
		return nil, err
	}
	return r.Msg, nil
}
