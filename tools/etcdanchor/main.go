// Command etcdanchor re-measures the etcd anchor of BENCHMARKS.md on this
// machine, so that cairn's journal can be compared with etcd in the same
// session: three etcd members (etcd's own server code, linked in) on
// loopback with default timeouts, and a load generator shaped like etcd's
// `benchmark put` (N clients over C connections, 8-byte sequential keys,
// 256-byte values), against the leader and against all members.
//
//	cd tools/etcdanchor && go run . --clients 1,64,1000
//
// With --reads it measures reads instead, beside cairn's
// `go run ./tests/bench reads`: it puts one key (256-byte value) and then
// Gets that key, linearizable (etcd's default: read-index) and
// serializable (the member's own state), through the leader and through a
// follower, in the shape of etcd's `benchmark range` (N clients over C
// connections).
//
//	cd tools/etcdanchor && go run . --reads --clients 1,64 --duration 4s
//
// It lives in its own module so that etcd is no dependency of cairn.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "member" {
		etcdmain.Main(append([]string{"etcd"}, os.Args[2:]...))
		return
	}
	clients := flag.String("clients", "1,64,1000", "concurrent clients per row, comma-separated (--reads: 1,64 unless given)")
	dur := flag.Duration("duration", 5*time.Second, "measuring time per row (after 1s of warm-up)")
	reads := flag.Bool("reads", false, "measure Gets of one key (linearizable and serializable, through the leader and a follower) instead of puts")
	flag.Parse()
	list := *clients
	if *reads && !flagSet("clients") {
		list = "1,64"
	}
	if err := run(list, *dur, *reads); err != nil {
		fmt.Fprintln(os.Stderr, "etcdanchor:", err)
		os.Exit(1)
	}
}

// flagSet reports whether the named flag was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func run(list string, dur time.Duration, reads bool) error {
	var counts []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("--clients: %q is not a positive number", s)
		}
		counts = append(counts, n)
	}
	root, err := os.MkdirTemp("", "etcdanchor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	type member struct {
		name, client, peer string
	}
	var ms []member
	var initial []string
	for i := range 3 {
		cp, err := freePort()
		if err != nil {
			return err
		}
		pp, err := freePort()
		if err != nil {
			return err
		}
		m := member{fmt.Sprintf("e%d", i+1), fmt.Sprintf("http://127.0.0.1:%d", cp), fmt.Sprintf("http://127.0.0.1:%d", pp)}
		ms = append(ms, m)
		initial = append(initial, m.name+"="+m.peer)
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGKILL)
			p.Wait()
		}
	}()
	for _, m := range ms {
		cmd := exec.Command(self, "member", "--name", m.name, "--data-dir", filepath.Join(root, m.name),
			"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
			"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--log-level", "fatal")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		procs = append(procs, cmd)
	}
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.client)
	}
	leader, err := waitLeader(eps)
	if err != nil {
		return err
	}
	if reads {
		pids := map[string]int{}
		for i, p := range procs {
			pids[eps[i]] = p.Process.Pid
		}
		return runReads(eps, pids, leader, counts, dur)
	}
	fmt.Printf("| clients (conns) | endpoints | writes/s | p50 | p99 |\n|---|---|---|---|---|\n")
	for _, n := range counts {
		conns := connsFor(n)
		for _, to := range []string{"leader", "all three"} {
			targets := []string{leader}
			if to != "leader" {
				targets = eps
			}
			rate, p50, p99, _, err := drive(targets, n, conns, dur, "put", put)
			if err != nil {
				return err
			}
			fmt.Printf("| %d (%d) | %s | %.0f | %s | %s |\n", n, conns, to, rate, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
		}
	}
	return nil
}

// connsFor is the anchor's shape: n clients over n/4 connections (64
// clients over 16), at most 100 (1000 clients over 100).
func connsFor(n int) int {
	if n >= 1000 {
		return 100
	}
	return max(1, n/4)
}

// readKey is the one key the reads mode Gets.
const readKey = "readkey0"

// runReads puts readKey and measures Gets of it, linearizable and
// serializable, through the leader and through a follower.
// Beside each row: the CPU time per read of the member read through, of
// all three members and of this process (the clients).
func runReads(eps []string, pids map[string]int, leader string, counts []int, dur time.Duration) error {
	follower := ""
	for _, ep := range eps {
		if ep != leader {
			follower = ep
			break
		}
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{leader}, DialTimeout: 2 * time.Second})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err = c.Put(ctx, readKey, strings.Repeat("v", 256))
	cancel()
	c.Close()
	if err != nil {
		return fmt.Errorf("put %s: %w", readKey, err)
	}
	fmt.Printf("| clients (conns) | through | consistency | reads/s | p50 | p99 | CPU µs per read: member read through, all members, client | errors |\n|---|---|---|---|---|---|---|---|\n")
	for _, n := range counts {
		conns := connsFor(n)
		for _, to := range []string{"leader", "follower"} {
			target := leader
			if to != "leader" {
				target = follower
			}
			for _, mode := range []string{"linearizable", "serializable"} {
				get := getLinearizable
				if mode == "serializable" {
					get = getSerializable
				}
				watch := []int{pids[target], 0}
				for _, ep := range eps {
					watch = append(watch, pids[ep])
				}
				cpu := cpuSince(watch, time.Second)
				rate, p50, p99, errs, err := drive([]string{target}, n, conns, dur, "get", get)
				if err != nil {
					return err
				}
				spent := cpu()
				reads := rate * dur.Seconds()
				per := func(d time.Duration) float64 { return float64(d.Microseconds()) / reads }
				fmt.Printf("| %d (%d) | %s | %s | %.0f | %s | %s | %.0f, %.0f, %.0f | %d |\n", n, conns, to, mode, rate,
					p50.Round(time.Microsecond), p99.Round(time.Microsecond),
					per(spent[0]), per(spent[2]+spent[3]+spent[4]), per(spent[1]), errs)
			}
		}
	}
	return nil
}

// The calls drive makes: seq numbers the call.
var (
	putValue = strings.Repeat("v", 256)
	put      = func(ctx context.Context, c *clientv3.Client, seq uint64) error {
		_, err := c.Put(ctx, fmt.Sprintf("%08d", seq%100_000_000), putValue)
		return err
	}
	getLinearizable = func(ctx context.Context, c *clientv3.Client, _ uint64) error { return getOne(c.Get(ctx, readKey)) }
	getSerializable = func(ctx context.Context, c *clientv3.Client, _ uint64) error {
		return getOne(c.Get(ctx, readKey, clientv3.WithSerializable()))
	}
)

// getOne checks that a Get of readKey found it.
func getOne(r *clientv3.GetResponse, err error) error {
	if err != nil {
		return err
	}
	if len(r.Kvs) != 1 || len(r.Kvs[0].Value) != 256 {
		return fmt.Errorf("get %s: %d keys", readKey, len(r.Kvs))
	}
	return nil
}

// waitLeader waits for the members to elect a leader and returns its
// client URL.
func waitLeader(eps []string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, ep := range eps {
			c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: time.Second})
			if err != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := c.Status(ctx, ep)
			cancel()
			c.Close()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return ep, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", errors.New("no etcd leader within 30s")
}

// drive runs n clients over conns connections (spread over targets) that
// each call op (put: 256-byte values under sequential 8-byte keys) in a
// loop, and returns the rate, latencies and failed calls after a second
// of warm-up (stderr counts the failures of the warm-up too).
func drive(targets []string, n, conns int, d time.Duration, what string, op func(context.Context, *clientv3.Client, uint64) error) (float64, time.Duration, time.Duration, uint64, error) {
	var cs []*clientv3.Client
	for i := range conns {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{targets[i%len(targets)]}, DialTimeout: 2 * time.Second})
		if err != nil {
			return 0, 0, 0, 0, err
		}
		defer c.Close()
		cs = append(cs, c)
	}
	var seq, errs, measuredErrs atomic.Uint64 // errs: warm-up included
	warm := time.Now().Add(time.Second)
	end := warm.Add(d)
	lat := make([][]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		c := cs[i%len(cs)]
		wg.Go(func() {
			for {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := op(ctx, c, seq.Add(1))
				cancel()
				if err != nil {
					errs.Add(1)
					if !t0.Before(warm) {
						measuredErrs.Add(1)
					}
					time.Sleep(10 * time.Millisecond) // no tight loop against a member that refuses
					continue
				}
				if !t0.Before(warm) {
					lat[i] = append(lat[i], time.Since(t0))
				}
			}
		})
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return 0, 0, 0, errs.Load(), fmt.Errorf("no %s succeeded (%d failed)", what, errs.Load())
	}
	if n := errs.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "etcdanchor: %d %ss failed in this row\n", n, what)
	}
	slices.Sort(all)
	return float64(len(all)) / d.Seconds(), all[len(all)/2], all[len(all)*99/100], measuredErrs.Load(), nil
}
