// Command bench measures the journal through the public API on real
// master processes on loopback, and leader failover:
//
//	go run ./tests/bench journal [--duration 5s] [--proposers 1,64,1000]
//	go run ./tests/bench failover [--kills 5]
//	go run ./tests/bench reads [--readers 1,64] [--duration 4s]
//	go run ./tests/bench restart [--files 100000,1000000] [--writers 64]
//
//	go run ./tests/bench data [--size-mib 256]
//	go run ./tests/bench leases [--workers 16,64] [--max-tasks 8]
//	go run ./tests/bench rebalance [--files 1000] [--size-kib 1024]
//	go run ./tests/bench cleanup [--verify-files 100000] [--files 20000] [--size-kib 16]
//	go run ./tests/bench persist [--large 8] [--large-mib 64] [--small 2000] [--small-kib 4]
//	go run ./tests/bench s3 [--files 4] [--size-mib 256] [--rounds 2]
//
// It builds the cairn binary, starts three masters (data: one master and
// three workers) in a temporary folder,
// and stops every process it started before it exits. Results go to stdout
// as a Markdown table.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench journal|failover|reads|restart|data|leases|rebalance|cleanup|persist|s3|pagecache [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "journal":
		err = benchJournal(os.Args[2:])
	case "failover":
		err = benchFailover(os.Args[2:])
	case "reads":
		err = benchReads(os.Args[2:])
	case "restart":
		err = benchRestart(os.Args[2:])
	case "data":
		err = benchData(os.Args[2:])
	case "leases":
		err = benchLeases(os.Args[2:])
	case "rebalance":
		err = benchRebalance(os.Args[2:])
	case "cleanup":
		err = benchCleanup(os.Args[2:])
	case "persist":
		err = benchPersist(os.Args[2:])
	case "s3":
		err = benchS3(os.Args[2:])
	case "pagecache":
		err = benchPageCache(os.Args[2:])
	default:
		err = fmt.Errorf("unknown benchmark %q: want journal, failover, reads, restart, data, leases, rebalance, cleanup, persist, s3 or pagecache", os.Args[1])
	}
	stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var (
	procsMu sync.Mutex
	procs   []*exec.Cmd
)

func stopAll() {
	procsMu.Lock()
	defer procsMu.Unlock()
	for _, p := range procs {
		if p.ProcessState == nil {
			_ = syscall.Kill(p.Process.Pid, syscall.SIGKILL)
			_ = p.Wait()
		}
	}
	procs = nil
}

func init() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		stopAll()
		os.Exit(1)
	}()
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type master struct {
	id, api, raft, dir string
	args               []string
	cmd                *exec.Cmd
	bin                string
}

func (m *master) start() error {
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(m.dir), m.id+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	m.cmd = exec.Command(m.bin, m.args...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		return err
	}
	procsMu.Lock()
	procs = append(procs, m.cmd)
	procsMu.Unlock()
	return nil
}

func (m *master) kill() {
	_ = syscall.Kill(m.cmd.Process.Pid, syscall.SIGKILL)
	_ = m.cmd.Wait()
}

func (m *master) status(ctx context.Context) (*cairnv1.GetStatusResponse, error) {
	r, err := benchClient([]string{m.api}).Masters()[0].Operator.GetStatus(ctx, connect.NewRequest(&cairnv1.GetStatusRequest{}))
	if err != nil {
		return nil, err
	}
	return r.Msg, nil
}

// forEach calls fn(i) for i in [0, n) from workers goroutines and returns
// the first error (the goroutine that met it stops; the others finish
// what they took).
func forEach(workers, n int, fn func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error // errors of different types: no atomic.Value
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

func waitFor(d time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// startWorker starts a worker of this master's cluster, its data and log
// in root, stopped by stopAll.
func (m *master) startWorker(root, id, capacity string) error {
	cmd := exec.Command(m.bin, append([]string{"worker", "--id", id, "--data", filepath.Join(root, id), "--api", freeAddr(),
		"--masters", m.api, "--capacity", capacity, "--log-level", "warn"}, workerSecurityArgs()...)...)
	logf, err := os.Create(filepath.Join(root, id+".log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	procsMu.Lock()
	procs = append(procs, cmd)
	procsMu.Unlock()
	return nil
}

// startMasters builds the binary and starts n masters (extra flags on each).
func startMasters(root string, n int, extra ...string) ([]*master, error) {
	bin := filepath.Join(root, "cairn")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/cairn").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build: %v\n%s", err, out)
	}
	if err := setUpSecurity(root); err != nil {
		return nil, err
	}
	extra = append(masterSecurityArgs(), extra...)
	var ms []*master
	for i := range n {
		m := &master{id: fmt.Sprintf("m%d", i+1), api: freeAddr(), raft: freeAddr(), bin: bin}
		m.dir = filepath.Join(root, m.id)
		m.args = append([]string{"master", "--id", m.id, "--data", m.dir, "--api", m.api, "--raft", m.raft, "--log-level", "warn"}, extra...)
		if i == 0 {
			m.args = append(m.args, "--bootstrap")
		} else {
			m.args = append(m.args, "--join", ms[0].api)
		}
		if err := m.start(); err != nil {
			return nil, err
		}
		ms = append(ms, m)
		if err := waitFor(30*time.Second, m.id+" up", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			st, err := m.status(ctx)
			return err == nil && st.GetLeaderId() != ""
		}); err != nil {
			return nil, err
		}
	}
	return ms, waitFor(30*time.Second, "all voters", func() bool {
		r, err := benchClient([]string{ms[0].api}).Masters()[0].Operator.ListRaftPeers(context.Background(), connect.NewRequest(&cairnv1.ListRaftPeersRequest{}))
		return err == nil && len(r.Msg.GetPeers()) == n
	})
}

func leaderOf(ms []*master) *master {
	for _, m := range ms {
		if m.cmd.ProcessState != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := m.status(ctx)
		cancel()
		if err == nil && st.GetRaftState() == cairnv1.RaftState_RAFT_STATE_LEADER {
			return m
		}
	}
	return nil
}

type result struct {
	events   int64
	errors   int64
	elapsed  time.Duration
	p50, p99 time.Duration
}

// drive runs proposers that append notes through the given masters (round
// robin) for d and measures each call's latency.
func drive(targets []*master, proposers int, d time.Duration) result {
	// The Go SDK's clients, one per target master, shared by every
	// proposer as an application would.
	var clients []cairnv1connect.EventServiceClient
	for _, m := range targets {
		clients = append(clients, benchClient([]string{m.api}).Masters()[0].Events)
	}
	var events, errs atomic.Int64
	lat := make([][]time.Duration, proposers)
	warmup := time.Now().Add(time.Second)
	end := warmup.Add(d)
	var wg sync.WaitGroup
	text := strings.Repeat("x", 256) // the size of the etcd anchor's values
	for p := range proposers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[p%len(clients)]
			for {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				_, err := c.AppendNote(context.Background(), connect.NewRequest(&cairnv1.AppendNoteRequest{Text: text}))
				if t0.Before(warmup) {
					continue
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				events.Add(1)
				lat[p] = append(lat[p], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	r := result{events: events.Load(), errors: errs.Load(), elapsed: d}
	if len(all) > 0 {
		r.p50 = all[len(all)/2]
		r.p99 = all[len(all)*99/100]
	}
	return r
}

func benchJournal(args []string) error {
	fs := flag.NewFlagSet("journal", flag.ExitOnError)
	dur := fs.Duration("duration", 5*time.Second, "measuring time per row (after 1s of warm-up)")
	list := fs.String("proposers", "1,64,1000", "concurrent proposers, comma-separated")
	profile := fs.String("profile", "", "write CPU profiles of the leader and of a follower during the last batched rows: sent to the leader to FILE and FILE.follower, through all masters to FILE.all and FILE.all.follower")
	masterArgs := fs.String("master-args", "", "more flags for every master, space-separated (experiments: --journal-max-inflight-entries 4)")
	secList := fs.String("security", "auth", "how the masters are secured, one cluster each, comma-separated: auth (tokens checked, the default), insecure (--insecure), tls (tokens and TLS)")
	batchList := fs.String("batching", "on,off", "group commit on, off, or both")
	_ = fs.Parse(args)
	counts, err := parseCounts(*list)
	if err != nil {
		return err
	}
	type mode struct {
		sec      security
		batching bool
	}
	var modes []mode
	for _, name := range strings.Split(*secList, ",") {
		sc, ok := securities[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("--security %q: want auth, insecure or tls", name)
		}
		for _, b := range strings.Split(*batchList, ",") {
			switch strings.TrimSpace(b) {
			case "on":
				modes = append(modes, mode{sc, true})
			case "off":
				modes = append(modes, mode{sc, false})
			default:
				return fmt.Errorf("--batching %q: want on, off or on,off", b)
			}
		}
	}
	defer func() { sec = securities["auth"] }()
	fmt.Printf("| security | batching | proposers | sent to | events/s | p50 | p99 | events per raft entry | errors |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, md := range modes {
		batching := md.batching
		sec = md.sec
		root, err := os.MkdirTemp("", "cairn-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(root)
		extra := strings.Fields(*masterArgs)
		if !batching {
			extra = append(extra, "--journal-max-batch-events", "1")
		}
		ms, err := startMasters(root, 3, extra...)
		if err != nil {
			return err
		}
		leader := leaderOf(ms)
		if leader == nil {
			return errors.New("no leader")
		}
		for _, n := range counts {
			for _, to := range []string{"leader", "all masters"} {
				targets := []*master{leader}
				if to != "leader" {
					targets = ms
				}
				if *profile != "" && batching && n == counts[len(counts)-1] {
					name := *profile
					if to != "leader" {
						name += ".all"
					}
					secs := max(1, int(dur.Seconds())-1)
					go fetchProfile(baseURL(leader.api), name, secs)
					for _, m := range ms {
						if m != leader {
							go fetchProfile(baseURL(m.api), name+".follower", secs)
							break
						}
					}
				}
				sum0, cnt0 := entryEvents(leader)
				r := drive(targets, n, *dur)
				sum1, cnt1 := entryEvents(leader)
				perEntry := "?"
				if cnt1 > cnt0 {
					perEntry = fmt.Sprintf("%.1f", (sum1-sum0)/(cnt1-cnt0))
				}
				on := "on"
				if !batching {
					on = "off"
				}
				fmt.Printf("| %s | %s | %d | %s | %.0f | %s | %s | %s | %d |\n", sec.name, on, n, to, float64(r.events)/r.elapsed.Seconds(),
					r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), perEntry, r.errors)
			}
		}
		stopAll()
	}
	return nil
}

func benchFailover(args []string) error {
	fs := flag.NewFlagSet("failover", flag.ExitOnError)
	kills := fs.Int("kills", 5, "how many times to kill the leader")
	masterArgs := fs.String("master-args", "", "more flags for every master, space-separated (--raft-heartbeat-timeout 250ms ...)")
	_ = fs.Parse(args)
	root, err := os.MkdirTemp("", "cairn-failover-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	ms, err := startMasters(root, 3, strings.Fields(*masterArgs)...)
	if err != nil {
		return err
	}
	fmt.Printf("| kill | killed leader | new leader | kill → first accepted write |\n|---|---|---|---|\n")
	var worst time.Duration
	for k := 1; k <= *kills; k++ {
		old := leaderOf(ms)
		if old == nil {
			return errors.New("no leader before the kill")
		}
		var survivors []*master
		for _, m := range ms {
			if m != old {
				survivors = append(survivors, m)
			}
		}
		old.kill()
		killed := time.Now()
		var took time.Duration
		for i := 0; ; i++ {
			s := survivors[i%len(survivors)]
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := benchClient([]string{s.api}).Masters()[0].Events.AppendNote(ctx, connect.NewRequest(&cairnv1.AppendNoteRequest{Text: "failover " + strconv.Itoa(k)}))
			cancel()
			if err == nil {
				took = time.Since(killed)
				break
			}
			if time.Since(killed) > 30*time.Second {
				return fmt.Errorf("kill %d: no write accepted within 30s: %v", k, err)
			}
		}
		nl := leaderOf(survivors)
		nid := "?"
		if nl != nil {
			nid = nl.id
		}
		worst = max(worst, took)
		fmt.Printf("| %d | %s | %s | %s |\n", k, old.id, nid, took.Round(time.Millisecond))
		if err := old.start(); err != nil {
			return err
		}
		if err := waitFor(30*time.Second, old.id+" back", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			st, err := old.status(ctx)
			return err == nil && st.GetLeaderId() != "" && st.GetRaftState() == cairnv1.RaftState_RAFT_STATE_FOLLOWER
		}); err != nil {
			return err
		}
	}
	fmt.Printf("\nworst: %s\n", worst.Round(time.Millisecond))
	return nil
}

// parseCounts parses a comma-separated list of positive numbers.
func parseCounts(list string) ([]int, error) {
	var counts []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", s)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

// entryEvents reads the leader's cairn_journal_entry_events histogram: the
// sum of events and the count of raft entries so far (zeros when it cannot).
func entryEvents(m *master) (sum, count float64) {
	resp, err := benchHTTP().Get(baseURL(m.api) + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "cairn_journal_entry_events_sum":
			sum = v
		case "cairn_journal_entry_events_count":
			count = v
		}
	}
	return sum, count
}
