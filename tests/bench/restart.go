package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// serveDeadline bounds every wait of the restart bench for a master to
// serve again.
const serveDeadline = 2 * time.Minute

// benchRestart measures master restarts with a large namespace (issue 19,
// item 6): for each size a fresh three-master cluster is loaded with N
// files through the public API (CreateFile then CompleteFile, MUST_CACHE,
// from many writers spread over all masters). Then, --repeats times, one
// follower, then the leader, then the whole cluster is killed with SIGKILL
// and started again with the same arguments, and the whole cluster once
// more with the joined masters started without their --join (a restarted
// member needs none: its data folder names its cluster). Each restart is
// timed from the process start to the first successful linearizable read
// (GetFile of a loaded path, no consistency header) and the first
// successful write (AppendNote) through the restarted master (the whole
// cluster: through any master). The sizes of the journal, the snapshots
// and the state store are read from the masters' data folders after the
// load.
func benchRestart(args []string) error {
	fl := flag.NewFlagSet("restart", flag.ExitOnError)
	list := fl.String("files", "100000,1000000", "namespace sizes (files), comma-separated; one fresh cluster each")
	writers := fl.Int("writers", 64, "concurrent writers during the load, spread over all masters")
	repeats := fl.Int("repeats", 3, "how many times each kind of restart is measured (the table shows the median)")
	keep := fl.Bool("keep", false, "keep each cluster's temporary folder (data and the masters' logs, DIR/m1.log...) and print where")
	_ = fl.Parse(args)
	counts, err := parseCounts(*list)
	if err != nil {
		return err
	}
	if *writers < 1 || *repeats < 1 {
		return errors.New("--writers and --repeats must be positive")
	}
	var rows []restartRow
	for _, n := range counts {
		r, err := restartOne(n, *writers, *repeats, *keep)
		if err != nil {
			return fmt.Errorf("%d files: %w", n, err)
		}
		rows = append(rows, r)
	}
	fmt.Printf("Restarts timed from the process start (SIGKILL, then the same command again) to the first successful\n"+
		"linearizable read (NamespaceService/GetFile of a loaded path) and write (EventService/AppendNote) through the\n"+
		"restarted master; the whole cluster: through any master. The leader restart includes an election. Median of %d\n"+
		"restarts each. Sizes on disk after the load: the largest of the three masters (each master below).\n\n", *repeats)
	fmt.Printf("| files | load files/s (time) | raft log MiB | snapshot MiB (count) | state MiB | follower restart → read / write | leader restart → read / write | whole-cluster restart → read / write | whole cluster, no --join → read / write |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		var big diskUse
		for _, s := range r.sizes {
			big.raftDB = max(big.raftDB, s.raftDB)
			big.snap = max(big.snap, s.snap)
			big.snaps = max(big.snaps, s.snaps)
			big.state = max(big.state, s.state)
		}
		fmt.Printf("| %d | %.0f (%s) | %.1f | %.1f (%d) | %.1f |", r.files, float64(r.files)/r.load.Seconds(), r.load.Round(100*time.Millisecond),
			mib(big.raftDB), mib(big.snap), big.snaps, mib(big.state))
		for _, kind := range restartKinds {
			read, write := medians(r.restarts[kind])
			fmt.Printf(" %s / %s |", millis(read), millis(write))
		}
		fmt.Println()
	}
	fmt.Printf("\nEach master after the load:\n\n| files | master | raft log MiB | newest snapshot MiB (index) | snapshots | state MiB | applied index |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		for i, s := range r.sizes {
			fmt.Printf("| %d | %s | %.1f | %.1f (%d) | %d | %.1f | %d |\n", r.files, r.ids[i], mib(s.raftDB), mib(s.snap), s.snapIndex, s.snaps, mib(s.state), s.applied)
		}
	}
	fmt.Printf("\nEach restart, from the process start: journal opened and master started are the masters' log lines (the stores open and raft\n" +
		"has scanned the log after its newest snapshot; the API serves); API up is the first answered GetStatus (stale-any); the indexes\n" +
		"are the restarted master's GetStatus once it served the read (applied since start: applied − start applied), and the leader's\n" +
		"applied index then. Raft hands the entries from the snapshot index to the start applied index to the state machine again,\n" +
		"which skips them. The leader rows also give the kill → first write through a survivor (the election).\n\n" +
		"| files | restart | master | journal opened | master started | API up | → read (via) | → write (via) | snapshot index | start applied | applied | applied since start | leader applied |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		for _, kind := range restartKinds {
			for i, t := range r.restarts[kind] {
				name := fmt.Sprintf("%s #%d", kind, i+1)
				if kind == "leader" {
					name += fmt.Sprintf(" (election: %s via %s)", millis(t.electWrite), t.electVia)
				}
				for _, st := range t.masters {
					fmt.Printf("| %d | %s | %s | %s | %s | %s | %s (%s) | %s (%s) | %d | %d | %d | %d | %d |\n", r.files, name, st.id,
						millis(st.journalOpened), millis(st.started), millis(st.up),
						millis(t.read), t.readVia, millis(t.write), t.writeVia,
						st.snapIndex, st.startApplied, st.applied, st.applied-st.startApplied, t.leaderApplied)
				}
			}
		}
	}
	return nil
}

// restartKinds are the restarts measured, in the tables' order.
var restartKinds = []string{"follower", "leader", "whole cluster", "whole cluster, no --join"}

type restartRow struct {
	files    int
	load     time.Duration
	ids      []string
	sizes    []diskUse
	restarts map[string][]restartTimes // by kind
}

// medians are the median times to the first read and to the first write.
func medians(ts []restartTimes) (read, write time.Duration) {
	var rs, ws []time.Duration
	for _, t := range ts {
		rs, ws = append(rs, t.read), append(ws, t.write)
	}
	if len(ts) == 0 {
		return 0, 0
	}
	slices.Sort(rs)
	slices.Sort(ws)
	return rs[len(rs)/2], ws[len(ws)/2]
}

// restartTimes is one restart, timed from the process start.
type restartTimes struct {
	read, write       time.Duration
	readVia, writeVia string
	masters           []restartedStatus
	leaderApplied     uint64
	// A leader restart: from the kill to the first write through a
	// survivor (a new leader committed it).
	electWrite time.Duration
	electVia   string
}

type restartedStatus struct {
	id                               string
	up                               time.Duration
	startApplied, snapIndex, applied uint64
	// From the master's log: when its journal had opened (the stores,
	// and raft's scan of the log after the newest snapshot) and when its
	// API served, from the start; 0 if not found.
	journalOpened, started time.Duration
}

func restartOne(n, writers, repeats int, keep bool) (restartRow, error) {
	row := restartRow{files: n, restarts: map[string][]restartTimes{}}
	root, err := os.MkdirTemp("", "cairn-bench-restart-")
	if err != nil {
		return row, err
	}
	defer stopAll()
	if keep {
		fmt.Fprintf(os.Stderr, "bench: %d files: cluster folder %s (kept)\n", n, root)
	} else {
		defer os.RemoveAll(root)
	}
	// Info logs, so the masters' logs tell what a restart spends its time on.
	ms, err := startMasters(root, 3, "--log-level", "info")
	if err != nil {
		return row, err
	}
	for _, m := range ms {
		row.ids = append(row.ids, m.id)
	}

	// The load.
	var clients []cairnv1connect.NamespaceServiceClient
	for _, m := range ms {
		clients = append(clients, benchClient([]string{m.api}).Masters()[0].Namespace)
	}
	var done atomic.Int64
	var failed atomic.Bool
	var loadErr atomic.Value // the first failure, not a writer's "stopped"
	start := time.Now()
	progress := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-progress:
				return
			case <-t.C:
				d := done.Load()
				fmt.Fprintf(os.Stderr, "bench: %d files: loaded %d in %s, %.0f files/s\n", n, d, time.Since(start).Round(time.Second), float64(d)/time.Since(start).Seconds())
			}
		}
	}()
	err = forEach(writers, n, func(i int) error {
		if failed.Load() {
			return errors.New("stopped")
		}
		err := loadFile(clients[i%len(clients)], i)
		if err != nil {
			loadErr.CompareAndSwap(nil, err)
			failed.Store(true)
			return err
		}
		done.Add(1)
		return nil
	})
	row.load = time.Since(start)
	close(progress)
	if first, ok := loadErr.Load().(error); ok {
		err = first
	}
	if err != nil {
		return row, fmt.Errorf("load (%d files done): %w", done.Load(), err)
	}
	fmt.Fprintf(os.Stderr, "bench: %d files: loaded in %s, %.0f files/s\n", n, row.load.Round(100*time.Millisecond), float64(n)/row.load.Seconds())
	readPath := filePath(n - 1)

	// Sizes once every master has applied everything.
	if err := waitCaughtUp(ms); err != nil {
		return row, err
	}
	for _, m := range ms {
		u, err := diskUseOf(m)
		if err != nil {
			return row, err
		}
		row.sizes = append(row.sizes, u)
	}

	for rep := range repeats {
		// One follower (the two take turns).
		leader := leaderOf(ms)
		if leader == nil {
			return row, errors.New("no leader before the follower restart")
		}
		var followers []*master
		for _, m := range ms {
			if m != leader {
				followers = append(followers, m)
			}
		}
		follower := followers[rep%len(followers)]
		follower.kill()
		rt, err := restartAndTime(ms, []*master{follower}, readPath)
		if err != nil {
			return row, fmt.Errorf("follower restart: %w", err)
		}
		row.restarts["follower"] = append(row.restarts["follower"], rt)
		if err := waitCaughtUp(ms); err != nil {
			return row, err
		}
		fmt.Fprintf(os.Stderr, "bench: %d files: follower %s restarted: read %s, write %s\n", n, follower.id, millis(rt.read), millis(rt.write))

		// The leader: the others elect a new one meanwhile.
		if leader = leaderOf(ms); leader == nil {
			return row, errors.New("no leader before the leader restart")
		}
		var survivors []*master
		for _, m := range ms {
			if m != leader {
				survivors = append(survivors, m)
			}
		}
		leader.kill()
		killed := time.Now()
		var wg sync.WaitGroup
		var elect restartTimes
		var electErr error
		wg.Go(func() {
			// Writes through the survivors from the kill: when a new
			// leader commits.
			elect, electErr = firstServed(killed, survivors, "", false, true)
		})
		rt, err = restartAndTime(ms, []*master{leader}, readPath)
		wg.Wait()
		if err != nil {
			return row, fmt.Errorf("leader restart: %w", err)
		}
		if electErr != nil {
			return row, fmt.Errorf("election after the leader kill: %w", electErr)
		}
		rt.electWrite, rt.electVia = elect.write, elect.writeVia
		row.restarts["leader"] = append(row.restarts["leader"], rt)
		if err := waitCaughtUp(ms); err != nil {
			return row, err
		}
		fmt.Fprintf(os.Stderr, "bench: %d files: leader %s restarted: read %s, write %s (a new leader wrote %s after the kill)\n",
			n, leader.id, millis(rt.read), millis(rt.write), millis(rt.electWrite))

		// The whole cluster, with the same arguments and then without
		// --join.
		for _, kind := range restartKinds[2:] {
			saved := make([][]string, len(ms))
			for i, m := range ms {
				m.kill()
				saved[i] = m.args
				if kind == "whole cluster, no --join" {
					if j := slices.Index(m.args, "--join"); j >= 0 {
						m.args = slices.Delete(slices.Clone(m.args), j, j+2)
					}
				}
			}
			rt, err := restartAndTime(ms, ms, readPath)
			for i, m := range ms {
				m.args = saved[i]
			}
			if err != nil {
				return row, fmt.Errorf("%s restart: %w", kind, err)
			}
			row.restarts[kind] = append(row.restarts[kind], rt)
			if err := waitCaughtUp(ms); err != nil {
				return row, err
			}
			fmt.Fprintf(os.Stderr, "bench: %d files: %s restarted: read %s (%s), write %s (%s)\n",
				n, kind, millis(rt.read), rt.readVia, millis(rt.write), rt.writeVia)
		}
	}
	return row, nil
}

// filePath is the path of the i-th file the load writes.
func filePath(i int) string { return fmt.Sprintf("/bench/d%04d/f%07d", i/1000, i) }

// loadFile creates and completes the i-th file through ns.
func loadFile(ns cairnv1connect.NamespaceServiceClient, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := filePath(i)
	cr, err := ns.CreateFile(ctx, connect.NewRequest(&cairnv1.CreateFileRequest{Path: p, WriteType: cairnv1.WriteType_WRITE_TYPE_MUST_CACHE}))
	if err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	if _, err := ns.CompleteFile(ctx, connect.NewRequest(&cairnv1.CompleteFileRequest{Path: p, Version: cr.Msg.GetWrite().GetVersion()})); err != nil {
		return fmt.Errorf("complete %s: %w", p, err)
	}
	return nil
}

// restartAndTime starts the (killed) masters again with their arguments
// and times, from the first start, their API coming up each, the first
// linearizable read of path and the first write through any of them. Then
// it reads their status and the leader's applied index.
func restartAndTime(all, targets []*master, path string) (restartTimes, error) {
	t0 := time.Now()
	startErrs := make([]error, len(targets))
	startedAt := make([]time.Time, len(targets))
	var starting sync.WaitGroup
	for i, m := range targets {
		starting.Go(func() {
			startErrs[i] = m.start()
			startedAt[i] = time.Now()
		})
	}
	starting.Wait()
	if err := errors.Join(startErrs...); err != nil {
		return restartTimes{}, err
	}
	for i, m := range targets {
		fmt.Fprintf(os.Stderr, "bench: started %s again at %s (pid %d, exec returned after %s)\n",
			m.id, t0.UTC().Format(time.RFC3339Nano), m.cmd.Process.Pid, startedAt[i].Sub(t0).Round(10*time.Microsecond))
	}
	var wg sync.WaitGroup
	ups := make([]time.Duration, len(targets))
	upErrs := make([]error, len(targets))
	for i, m := range targets {
		wg.Go(func() {
			ups[i], upErrs[i] = firstAnswer(t0, m)
		})
	}
	rt, err := firstServed(t0, targets, path, true, true)
	wg.Wait()
	if err != nil {
		return rt, err
	}
	if err := errors.Join(upErrs...); err != nil {
		return rt, err
	}
	for i, m := range targets {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := m.status(ctx)
		cancel()
		if err != nil {
			return rt, fmt.Errorf("status of %s: %w", m.id, err)
		}
		marks := logMarks(m, t0, "journal opened", "master started")
		rt.masters = append(rt.masters, restartedStatus{id: m.id, up: ups[i],
			startApplied: st.GetStartAppliedIndex(), snapIndex: st.GetSnapshotIndex(), applied: st.GetAppliedIndex(),
			journalOpened: marks["journal opened"], started: marks["master started"]})
	}
	if l := leaderOf(all); l != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if st, err := l.status(ctx); err == nil {
			rt.leaderApplied = st.GetAppliedIndex()
		}
		cancel()
	}
	return rt, nil
}

// logMarks finds in m's log the first line at or after t0 with each of
// msgs and returns its time from t0.
func logMarks(m *master, t0 time.Time, msgs ...string) map[string]time.Duration {
	out := map[string]time.Duration{}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(m.dir), m.id+".log"))
	if err != nil {
		return out
	}
	for line := range strings.Lines(string(b)) {
		var rec struct {
			Time time.Time
			Msg  string
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Time.Before(t0) || !slices.Contains(msgs, rec.Msg) {
			continue
		}
		if _, seen := out[rec.Msg]; !seen {
			out[rec.Msg] = rec.Time.Sub(t0)
		}
	}
	return out
}

// firstAnswer polls m's GetStatus from t0 until it answers. GetStatus is
// a read: without a consistency header it would wait for a leader, so the
// probe asks for stale-any (the API is up, whatever raft is doing).
func firstAnswer(t0 time.Time, m *master) (time.Duration, error) {
	ops := benchClient([]string{m.api}, client.WithConsistency(client.StaleAny)).Masters()[0].Operator
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := ops.GetStatus(ctx, connect.NewRequest(&cairnv1.GetStatusRequest{}))
		cancel()
		if err == nil {
			return time.Since(t0), nil
		}
		if time.Since(t0) > serveDeadline {
			return 0, fmt.Errorf("%s: no status answered within %s: %w", m.id, serveDeadline, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// firstServed polls, from t0, linearizable GetFile of path (when read) and
// AppendNote (when write) through every target at once, each prober
// retrying as soon as an attempt fails, until one read and one write have
// succeeded; it returns the times from t0 and the masters that answered.
func firstServed(t0 time.Time, targets []*master, path string, read, write bool) (restartTimes, error) {
	var rt restartTimes
	var mu sync.Mutex
	var errs []error
	probe := func(kind string, try func(context.Context, client.Services) error, took *time.Duration, via *string) {
		ctx, cancel := context.WithDeadline(context.Background(), t0.Add(serveDeadline))
		defer cancel()
		var once sync.Once
		var last atomic.Value
		var wg sync.WaitGroup
		for _, m := range targets {
			// A client of its own per prober: no pooled connection to a
			// killed process.
			svc := benchClient([]string{m.api}).Masters()[0]
			wg.Go(func() {
				for ctx.Err() == nil {
					actx, acancel := context.WithTimeout(ctx, 2*time.Second)
					err := try(actx, svc)
					acancel()
					if err == nil {
						once.Do(func() {
							*took, *via = time.Since(t0), m.id
							cancel()
						})
						return
					}
					if ctx.Err() == nil {
						last.Store(fmt.Errorf("%s through %s: %w", kind, m.id, err))
						time.Sleep(2 * time.Millisecond)
					}
				}
			})
		}
		wg.Wait()
		if *via == "" {
			err, _ := last.Load().(error)
			mu.Lock()
			errs = append(errs, fmt.Errorf("no %s served within %s: %v", kind, serveDeadline, err))
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	if read {
		wg.Go(func() {
			probe("read", func(ctx context.Context, s client.Services) error {
				r, err := s.Namespace.GetFile(ctx, connect.NewRequest(&cairnv1.GetFileRequest{Path: path}))
				if err == nil && r.Msg.GetFile().GetPath() != path {
					err = fmt.Errorf("GetFile %s answered the entry of %q", path, r.Msg.GetFile().GetPath())
				}
				return err
			}, &rt.read, &rt.readVia)
		})
	}
	if write {
		wg.Go(func() {
			probe("write", func(ctx context.Context, s client.Services) error {
				_, err := s.Events.AppendNote(ctx, connect.NewRequest(&cairnv1.AppendNoteRequest{Text: "restart bench"}))
				return err
			}, &rt.write, &rt.writeVia)
		})
	}
	wg.Wait()
	return rt, errors.Join(errs...)
}

// waitCaughtUp waits until every master answers with a leader known and
// has applied at least what the leader had applied when asked.
func waitCaughtUp(ms []*master) error {
	var target uint64
	if err := waitFor(serveDeadline, "a leader", func() bool {
		l := leaderOf(ms)
		if l == nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := l.status(ctx)
		if err != nil {
			return false
		}
		target = st.GetAppliedIndex()
		return true
	}); err != nil {
		return err
	}
	return waitFor(serveDeadline, fmt.Sprintf("every master to apply index %d", target), func() bool {
		for _, m := range ms {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := m.status(ctx)
			cancel()
			if err != nil || st.GetLeaderId() == "" || st.GetAppliedIndex() < target {
				return false
			}
		}
		return true
	})
}

// millis formats a duration in milliseconds, for the tables.
func millis(d time.Duration) string {
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}
