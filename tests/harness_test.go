// Package tests holds cairn's end-to-end tests and failover drills. They
// build the real binary, start real master and worker processes on free
// loopback ports, and stop every process they started (by pid), pass or
// fail.
package tests

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/auth"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

var (
	cairnBin   string
	grpcurlBin string
)

// Every cluster the tests start checks tokens, as a real one does: each
// journals the same initial tokens (tokensFile), an admin token the tests
// and the CLI use (adminToken, in adminTokenFile) and a worker token the
// workers use (workerTokenFile).
var (
	adminToken, workerToken         string
	adminTokenFile, workerTokenFile string
	tokensFile                      string
)

// setUpTokens writes the tests' tokens into dir.
func setUpTokens(dir string) error {
	adminToken, workerToken = auth.NewToken(), auth.NewToken()
	adminTokenFile, workerTokenFile = filepath.Join(dir, "admin.token"), filepath.Join(dir, "worker.token")
	tokensFile = filepath.Join(dir, "initial-tokens")
	for path, text := range map[string]string{
		adminTokenFile:  adminToken + "\n",
		workerTokenFile: workerToken + "\n",
		tokensFile:      fmt.Sprintf("admin admin %s\nworkers worker %s\n", adminToken, workerToken),
	} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return err
		}
	}
	httpClient = &http.Client{Transport: auth.Transport(adminToken, apiserver.HTTP1Transport())}
	return nil
}

// adminClient is client.New with the tests' admin token.
func adminClient(addrs []string, opts ...client.Option) *client.Client {
	return client.New(addrs, append([]client.Option{client.WithToken(adminToken)}, opts...)...)
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "cairn-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if err := setUpTokens(tmp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cairnBin = filepath.Join(tmp, "cairn")
	build := exec.Command("go", "build", "-o", cairnBin, "../cmd/cairn")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build cairn: %v\n%s", err, out)
		return 1
	}
	if grpcurlBin, err = findGrpcurl(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// grpcurlVersion is the grpcurl the compatibility tests use.
const grpcurlVersion = "v1.9.4"

// findGrpcurl returns ../bin/grpcurl (what make test installs), installing
// it there from the module proxy when it is missing.
func findGrpcurl() (string, error) {
	bin, err := filepath.Abs("../bin")
	if err != nil {
		return "", err
	}
	path := filepath.Join(bin, "grpcurl")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	cmd := exec.Command("go", "install", "github.com/fullstorydev/grpcurl/cmd/grpcurl@"+grpcurlVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("install grpcurl %s: %v\n%s", grpcurlVersion, err, out)
	}
	return path, nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is one process a test started.
type proc struct {
	name string
	args []string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// start runs the cairn binary with args; the process is killed (by pid)
// when the test ends.
func start(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, args: args, log: filepath.Join(t.TempDir(), name+".log")}
	p.launch(t)
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- last lines of %s's log ---\n%s", p.name, tail(p.log, 30))
		}
	})
	return p
}

func (p *proc) launch(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(cairnBin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", p.name, err)
	}
	p.done = make(chan struct{})
	go func() {
		err := p.cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
}

// kill sends SIGKILL to the process (by pid) and waits for it.
func (p *proc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGCONT) // a stopped process cannot die
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// restart starts the process again with the same arguments.
func (p *proc) restart(t testing.TB) {
	t.Helper()
	p.kill()
	p.launch(t)
}

// signal sends sig to the process.
func (p *proc) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(p.cmd.Process.Pid, sig); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
	if sig != syscall.SIGSTOP {
		return
	}
	// Stopping is asynchronous: wait until every thread of the process is
	// stopped, so what the test does next meets a process that cannot
	// answer.
	eventually(t, 5*time.Second, p.name+" to stop after SIGSTOP", p.stopped)
}

// stopped reports whether every thread of the process is in the stopped
// state (T in /proc/PID/task/TID/stat).
func (p *proc) stopped() bool {
	dir := fmt.Sprintf("/proc/%d/task", p.cmd.Process.Pid)
	tids, err := os.ReadDir(dir)
	if err != nil || len(tids) == 0 {
		return false
	}
	for _, tid := range tids {
		b, err := os.ReadFile(filepath.Join(dir, tid.Name(), "stat"))
		if err != nil {
			return false
		}
		// The state follows the command name in parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// exited waits up to d for the process to exit and returns its error and
// whether it exited.
func (p *proc) exited(d time.Duration) (error, bool) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err, true
	case <-time.After(d):
		return nil, false
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// master is a master process and its addresses.
type master struct {
	*proc
	id, api, raft, dir string
	cli                *client.Client
	// tls is how clients reach it when it serves TLS (nil: plain).
	tls *tls.Config
}

// cluster is a set of masters and workers on loopback.
type cluster struct {
	t       testing.TB
	root    string
	masters []*master
	workers []*proc
}

// hbTimeout is the heartbeat timeout the e2e clusters run with.
const hbTimeout = 2 * time.Second

func startMaster(t testing.TB, id, dir string, extra ...string) *master {
	t.Helper()
	return startMasterAt(t, &master{id: id, api: freeAddr(t), raft: freeAddr(t), dir: dir}, extra...)
}

// startMasterAt starts m (its id, addresses and folder set) without
// waiting for it.
func startMasterAt(t testing.TB, m *master, extra ...string) *master {
	t.Helper()
	id, dir := m.id, m.dir
	args := append([]string{"master", "--id", id, "--data", dir, "--api", m.api, "--raft", m.raft,
		"--heartbeat-timeout", hbTimeout.String(), "--log-level", "debug",
		"--initial-tokens", tokensFile, "--token-file", adminTokenFile}, extra...)
	m.proc = start(t, id, args...)
	m.tls = tlsFromArgs(t, args)
	m.cli = adminClient([]string{m.api}, client.WithRetryBudget(time.Second), client.WithTLS(m.tls))
	return m
}

// status asks one master for its status directly (no failover).
func (m *master) status(ctx context.Context) (*cairnv1.GetStatusResponse, error) {
	r, err := m.cli.Masters()[0].Operator.GetStatus(ctx, connect.NewRequest(&cairnv1.GetStatusRequest{}))
	if err != nil {
		return nil, err
	}
	return r.Msg, nil
}

// waitUp waits until the master answers and knows a leader.
func (m *master) waitUp(t testing.TB) *cairnv1.GetStatusResponse {
	t.Helper()
	var st *cairnv1.GetStatusResponse
	eventually(t, 30*time.Second, m.id+" to answer with a leader", func() bool {
		if err, gone := m.exited(0); gone {
			t.Fatalf("%s exited: %v\n%s", m.id, err, tail(m.log, 20))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := m.status(ctx)
		if err != nil || s.GetLeaderId() == "" {
			return false
		}
		st = s
		return true
	})
	return st
}

// startCluster starts n masters (the first bootstraps, the others join it)
// and w workers that know every master.
func startCluster(t testing.TB, n, w int, workerArgs ...string) *cluster {
	t.Helper()
	return startClusterWith(t, n, w, nil, workerArgs)
}

// startClusterWith is startCluster with extra flags for the masters too.
func startClusterWith(t testing.TB, n, w int, masterArgs, workerArgs []string) *cluster {
	t.Helper()
	root := t.TempDir()
	c := &cluster{t: t, root: root}
	for i := range n {
		var extra []string
		if i == 0 {
			extra = []string{"--bootstrap"}
		} else {
			extra = []string{"--join", c.masters[0].api}
		}
		m := startMaster(t, fmt.Sprintf("m%d", i+1), filepath.Join(root, fmt.Sprintf("m%d", i+1)), append(extra, masterArgs...)...)
		c.masters = append(c.masters, m)
		m.waitUp(t)
	}
	for i := range w {
		id := fmt.Sprintf("w%d", i+1)
		args := append([]string{"worker", "--id", id, "--data", filepath.Join(root, id),
			"--api", freeAddr(t), "--masters", c.addrs(), "--capacity", "1GiB", "--log-level", "debug",
			"--token-file", workerTokenFile}, workerArgs...)
		c.workers = append(c.workers, start(t, id, args...))
	}
	if n > 1 {
		eventually(t, 30*time.Second, "every master to be a voter", func() bool {
			peers, err := c.peers()
			return err == nil && len(peers.GetPeers()) == n
		})
	}
	if w > 0 {
		eventually(t, 30*time.Second, fmt.Sprintf("%d workers in the map", w), func() bool {
			cm, err := c.clusterMap()
			return err == nil && len(cm.GetMap().GetWorkers()) == w
		})
	}
	return c
}

// addrs is the comma-separated API addresses of every master.
func (c *cluster) addrs() string {
	var a []string
	for _, m := range c.masters {
		a = append(a, m.api)
	}
	return strings.Join(a, ",")
}

// client reaches every master with failover.
func (c *cluster) client() *client.Client {
	var a []string
	for _, m := range c.masters {
		a = append(a, m.api)
	}
	return adminClient(a, client.WithRetryBudget(10*time.Second), client.WithTLS(c.masters[0].tls))
}

func (c *cluster) clusterMap() (*cairnv1.GetClusterMapResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return client.Msg(ctx, c.client(), func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.GetClusterMapResponse], error) {
		return s.Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{}))
	})
}

func (c *cluster) peers() (*cairnv1.ListRaftPeersResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return client.Msg(ctx, c.client(), func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.ListRaftPeersResponse], error) {
		return s.Operator.ListRaftPeers(ctx, connect.NewRequest(&cairnv1.ListRaftPeersRequest{}))
	})
}

// leader returns the master that leads, asking the masters themselves.
func (c *cluster) leader() *master {
	c.t.Helper()
	var found *master
	eventually(c.t, 10*time.Second, "a leader", func() bool {
		for _, m := range c.masters {
			if _, gone := m.exited(0); gone {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := m.status(ctx)
			cancel()
			if err == nil && st.GetRaftState() == cairnv1.RaftState_RAFT_STATE_LEADER {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// httpClient is what tests use to talk to workers directly, with the
// admin token (set up by setUpTokens).
var httpClient *http.Client

// newDataClient reaches a worker's DataService at addr.
func newDataClient(addr string) cairnv1connect.DataServiceClient {
	return cairnv1connect.NewDataServiceClient(httpClient, "http://"+addr)
}

// grpcurl runs the real grpcurl, with the admin token, and returns its
// combined output.
func grpcurl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return grpcurlAs(t, adminToken, args...)
}

// grpcurlAs runs grpcurl with token ("" for none).
func grpcurlAs(t testing.TB, token string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if token != "" {
		args = append([]string{"-H", "authorization: Bearer " + token}, args...)
	}
	out, err := exec.CommandContext(ctx, grpcurlBin, args...).CombinedOutput()
	return string(out), err
}

// cairn runs a client verb of the binary, with the admin token.
func cairn(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return cairnAs(t, adminToken, args...)
}

// cairnAs runs a client verb with token in CAIRN_TOKEN ("" for none).
func cairnAs(t testing.TB, token string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, cairnBin, args...)
	cmd.Env = append(os.Environ(), "CAIRN_TOKEN="+token)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// tlsFromArgs is the client TLS configuration that matches a process's
// --tls-* flags (nil when it has none).
func tlsFromArgs(t testing.TB, args []string) *tls.Config {
	t.Helper()
	var f apiserver.TLSFiles
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--tls-ca":
			f.CA = args[i+1]
		case "--tls-cert":
			f.Cert = args[i+1]
		case "--tls-key":
			f.Key = args[i+1]
		}
	}
	if !f.Enabled() {
		return nil
	}
	cfg, err := f.Client()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
