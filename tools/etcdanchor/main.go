// Command etcdanchor re-measures the etcd anchor of BENCHMARKS.md on this
// machine, so that cairn's journal can be compared with etcd in the same
// session: three etcd members (etcd's own server code, linked in) on
// loopback with default timeouts, and a load generator shaped like etcd's
// `benchmark put` (N clients over C connections, 8-byte sequential keys,
// 256-byte values), against the leader and against all members.
//
//	cd tools/etcdanchor && go run . --clients 1,64,1000
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
	clients := flag.String("clients", "1,64,1000", "concurrent clients per row, comma-separated")
	dur := flag.Duration("duration", 5*time.Second, "measuring time per row (after 1s of warm-up)")
	flag.Parse()
	if err := run(*clients, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "etcdanchor:", err)
		os.Exit(1)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func run(list string, dur time.Duration) error {
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
	fmt.Printf("| clients (conns) | endpoints | writes/s | p50 | p99 |\n|---|---|---|---|---|\n")
	for _, n := range counts {
		conns := max(1, n/4) // the anchor's shape: 64 clients over 16, 1000 over 100 (capped below)
		if n >= 1000 {
			conns = 100
		}
		for _, to := range []string{"leader", "all three"} {
			targets := []string{leader}
			if to != "leader" {
				targets = eps
			}
			rate, p50, p99, err := drive(targets, n, conns, dur)
			if err != nil {
				return err
			}
			fmt.Printf("| %d (%d) | %s | %.0f | %s | %s |\n", n, conns, to, rate, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
		}
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
// each put 256-byte values under sequential 8-byte keys, and returns the
// rate and latencies after a second of warm-up.
func drive(targets []string, n, conns int, d time.Duration) (float64, time.Duration, time.Duration, error) {
	var cs []*clientv3.Client
	for i := range conns {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{targets[i%len(targets)]}, DialTimeout: 2 * time.Second})
		if err != nil {
			return 0, 0, 0, err
		}
		defer c.Close()
		cs = append(cs, c)
	}
	val := strings.Repeat("v", 256)
	var seq, errs atomic.Uint64
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
				key := fmt.Sprintf("%08d", seq.Add(1)%100_000_000)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := c.Put(ctx, key, val)
				cancel()
				if err != nil {
					errs.Add(1)
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
		return 0, 0, 0, fmt.Errorf("no put succeeded (%d failed)", errs.Load())
	}
	if n := errs.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "etcdanchor: %d puts failed in this row\n", n)
	}
	slices.Sort(all)
	return float64(len(all)) / d.Seconds(), all[len(all)/2], all[len(all)*99/100], nil
}
