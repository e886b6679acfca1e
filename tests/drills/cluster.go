package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// cluster is the compose project the drills run: 3 masters and 3 workers
// from deploy/compose/docker-compose.yml, on networks of their own so that
// a drill never touches a cluster someone started from the same file.
type cluster struct {
	d       *docker
	file    string // the compose file
	project string
	net     string // first three octets of the cluster network
	edge    string // and of the clients' network
	env     []string
	admin   string // the admin token
	masters []string
	workers []string
}

func (c *cluster) container(svc string) string { return c.project + "_" + svc + "_1" }
func (c *cluster) network(n string) string     { return c.project + "_" + n }

// octet is the last octet of a service's fixed addresses (the compose file's).
func octet(svc string) int {
	n := int(svc[1] - '0')
	if svc[0] == 'm' {
		return 10 + n
	}
	return 20 + n
}

func (c *cluster) clusterIP(svc string) string { return fmt.Sprintf("%s.%d", c.net, octet(svc)) }
func (c *cluster) edgeIP(svc string) string    { return fmt.Sprintf("%s.%d", c.edge, octet(svc)) }

// api is where a client reaches a master: its address on the edge network.
func (c *cluster) api(m string) string { return c.edgeIP(m) + ":7700" }

func (c *cluster) apis() []string {
	var out []string
	for _, m := range c.masters {
		out = append(out, c.api(m))
	}
	return out
}

// compose runs docker-compose on the drills' project.
func (c *cluster) compose(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"-p", c.project, "-f", c.file}, args...)...)
	cmd.Env = append(os.Environ(), c.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// down removes the project's containers, networks and volumes.
//
// The Docker engine (20.10) now and then keeps counting endpoints on a
// network after its last container is gone, and refuses to remove it ("has
// active endpoints", moby/moby#42119) until the engine restarts; the
// network's addresses are free all the same. docker-compose stops at that
// error before it removes the volumes, so down removes them itself and
// leaves the network for the next `up`, which reuses it: every drill still
// starts on empty disks.
func (c *cluster) down(ctx context.Context) error {
	err := c.compose(ctx, "down", "-v", "--remove-orphans", "-t", "2")
	if err == nil || !strings.Contains(err.Error(), "has active endpoints") {
		return err
	}
	left, lerr := c.d.projectContainers(ctx, c.project)
	if lerr != nil {
		return errors.Join(err, lerr)
	}
	if len(left) > 0 {
		return fmt.Errorf("%w\n(containers still there: %v)", err, left)
	}
	if verr := c.d.removeProjectVolumes(ctx, c.project); verr != nil {
		return errors.Join(err, verr)
	}
	fmt.Fprintf(os.Stderr, "drills: the Docker engine keeps a stale endpoint on a network of project %s (moby/moby#42119); its containers and volumes are gone, the network is reused\n", c.project)
	return nil
}

// fresh starts a new cluster (every container at once, as docker-compose
// up -d does) and waits for it to form.
func (c *cluster) fresh(ctx context.Context) error {
	if err := c.down(ctx); err != nil {
		return err
	}
	if err := c.compose(ctx, "up", "-d"); err != nil {
		return err
	}
	_, err := c.waitFormed(ctx, 90*time.Second)
	return err
}

// admin is a client of every master with the admin token.
func (c *cluster) adminClient(opts ...client.Option) *client.Client {
	return client.New(c.apis(), append([]client.Option{client.WithToken(c.admin)}, opts...)...)
}

// one is a client of one master that makes each call once (no retry on
// another master): the history records what that master answered.
func (c *cluster) one(m string) client.Services {
	return client.New([]string{c.api(m)}, client.WithToken(c.admin), client.WithRetryBudget(0)).Masters()[0]
}

// status is a master's own view (stale-any: a master cut off from the
// others still answers).
func status(ctx context.Context, s client.Services) (*cairnv1.GetStatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req := connect.NewRequest(&cairnv1.GetStatusRequest{})
	req.Header().Set(apiserver.ConsistencyHeader, apiserver.ConsistencyStaleAny)
	r, err := s.Operator.GetStatus(ctx, req)
	if err != nil {
		return nil, err
	}
	return r.Msg, nil
}

// statuses asks every master at once; a master that does not answer has nil.
func (c *cluster) statuses(ctx context.Context) map[string]*cairnv1.GetStatusResponse {
	out := map[string]*cairnv1.GetStatusResponse{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range c.masters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _ := status(ctx, c.one(m))
			mu.Lock()
			out[m] = st
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// agreedLeader is the master that says it leads and that a majority of the
// masters name as leader, or "".
func agreedLeader(sts map[string]*cairnv1.GetStatusResponse) string {
	for m, st := range sts {
		if st == nil || st.GetRaftState() != cairnv1.RaftState_RAFT_STATE_LEADER {
			continue
		}
		votes := 0
		for _, o := range sts {
			if o != nil && o.GetLeaderId() == m && o.GetTerm() == st.GetTerm() {
				votes++
			}
		}
		if votes*2 > len(sts) {
			return m
		}
	}
	return ""
}

// leader waits (up to d) for a leader the majority agrees on.
func (c *cluster) leader(ctx context.Context, d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	for {
		if l := agreedLeader(c.statuses(ctx)); l != "" {
			return l, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("no leader that a majority of the masters agree on within %s", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFormed waits for one cluster: every master a voter under the same
// leader and in the same cluster, and every worker ACTIVE in the map. It
// returns how long that took.
func (c *cluster) waitFormed(ctx context.Context, d time.Duration) (time.Duration, error) {
	start := time.Now()
	cli := c.adminClient(client.WithRetryBudget(time.Second))
	last := errors.New("nothing answered yet")
	for time.Since(start) < d && ctx.Err() == nil {
		if err := c.formed(ctx, cli); err != nil {
			last = err
			time.Sleep(100 * time.Millisecond)
			continue
		}
		return time.Since(start), nil
	}
	return 0, fmt.Errorf("the cluster did not form within %s: %w", d, last)
}

func (c *cluster) formed(ctx context.Context, cli *client.Client) error {
	sts := c.statuses(ctx)
	leader := agreedLeader(sts)
	if leader == "" {
		return errors.New("no agreed leader")
	}
	ids := map[string]bool{}
	for m, st := range sts {
		if st == nil {
			return fmt.Errorf("%s does not answer", m)
		}
		ids[st.GetClusterId()] = true
		if st.GetLeaderId() != leader {
			return fmt.Errorf("%s follows %q, not %s", m, st.GetLeaderId(), leader)
		}
	}
	if len(ids) != 1 {
		return fmt.Errorf("the masters are in %d clusters: %v", len(ids), ids)
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	peers, err := client.Msg(cctx, cli, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.ListRaftPeersResponse], error) {
		return s.Operator.ListRaftPeers(ctx, connect.NewRequest(&cairnv1.ListRaftPeersRequest{}))
	})
	if err != nil {
		return err
	}
	voters := 0
	for _, p := range peers.GetPeers() {
		if p.GetVoter() {
			voters++
		}
	}
	if voters != len(c.masters) {
		return fmt.Errorf("%d voters, want %d", voters, len(c.masters))
	}
	cm, err := clusterMap(cctx, cli)
	if err != nil {
		return err
	}
	if len(cm.GetWorkers()) != len(c.workers) {
		return fmt.Errorf("%d workers in the map, want %d", len(cm.GetWorkers()), len(c.workers))
	}
	return nil
}

func clusterMap(ctx context.Context, cli *client.Client) (*cairnv1.ClusterMap, error) {
	r, err := client.Msg(ctx, cli, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.GetClusterMapResponse], error) {
		return s.Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{}))
	})
	if err != nil {
		return nil, err
	}
	return r.GetMap(), nil
}

// caughtUp waits for master m to follow the agreed leader and to have
// applied what the leader had when the wait began.
func (c *cluster) caughtUp(ctx context.Context, m string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var target uint64
	for time.Now().Before(deadline) && ctx.Err() == nil {
		sts := c.statuses(ctx)
		l := agreedLeader(sts)
		if l != "" && target == 0 {
			target = sts[l].GetAppliedIndex()
		}
		if st := sts[m]; l != "" && st != nil && st.GetLeaderId() == l && st.GetAppliedIndex() >= target {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not catch up with the leader within %s", m, d)
}

// cut takes a service off the cluster network: masters and workers no
// longer reach it, nor it them; clients still reach a master through the
// edge network.
func (c *cluster) cut(ctx context.Context, svc string) error {
	return c.d.disconnect(ctx, c.network("cluster"), c.container(svc))
}

// heal puts it back with its address and name.
func (c *cluster) heal(ctx context.Context, svc string) error {
	return c.d.connect(ctx, c.network("cluster"), c.container(svc), c.clusterIP(svc), []string{svc})
}

// saveLogs writes every container's log into dir.
func (c *cluster) saveLogs(dir string) {
	for _, svc := range append(append([]string{}, c.masters...), c.workers...) {
		f, err := os.Create(filepath.Join(dir, svc+".log"))
		if err != nil {
			continue
		}
		cmd := exec.Command("docker", "logs", "--timestamps", c.container(svc))
		cmd.Stdout, cmd.Stderr = f, f
		_ = cmd.Run()
		f.Close()
	}
}

// restarts is how many times Docker restarted each container by itself
// (its restart policy): a process that exited.
func (c *cluster) restarts(ctx context.Context) map[string]int {
	out := map[string]int{}
	for _, svc := range append(append([]string{}, c.masters...), c.workers...) {
		if ci, err := c.d.inspect(ctx, c.container(svc)); err == nil && ci.RestartCount > 0 {
			out[svc] = ci.RestartCount
		}
	}
	return out
}

// restore undoes what a drill may have left behind when it failed mid-
// fault: a paused container, one cut off, one stopped.
func (c *cluster) restore(ctx context.Context) {
	for _, svc := range append(append([]string{}, c.masters...), c.workers...) {
		ci, err := c.d.inspect(ctx, c.container(svc))
		if err != nil {
			continue
		}
		if ci.State.Paused {
			_ = c.d.unpause(ctx, c.container(svc))
		}
		if !ci.State.Running {
			_ = c.d.start(ctx, c.container(svc))
		}
		_ = c.heal(ctx, svc) // refused when it is connected: nothing to undo
	}
}
