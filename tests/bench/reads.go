package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/auth"
	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// readsPath is the one file whose entry the reads bench reads.
const readsPath = "/bench/reads/key"

// benchReads measures reads of one key through the leader and through a
// follower, linearizable (read-index) against stale, the cairn side of
// issue 20; tools/etcdanchor --reads measures etcd's Get of one key the
// same way.
//
// The read is NamespaceService/GetFile of one existing path: like etcd's
// Get of one key it names one key, which the master looks up in its state
// machine (one point lookup) and answers with one small value (the file's
// entry, with 256 bytes of metadata like the anchor's 256-byte values).
// GetSettings reads several keys and GetClusterMap assembles a map.
//
// "Reads per read-index round" is the linearizable reads the master read
// through got an index for, over the leader's confirmation rounds
// (cairn_journal_read_index_total and _rounds_total) during the row.
func benchReads(args []string) error {
	fs := flag.NewFlagSet("reads", flag.ExitOnError)
	dur := fs.Duration("duration", 4*time.Second, "measuring time per row (after 1s of warm-up)")
	list := fs.String("readers", "1,64", "concurrent readers, comma-separated")
	conns := fs.Int("conns", 0, "client connections the readers share, as etcd's benchmark does (N clients over C connections); 0: the SDK's own pool, a connection per reader in flight")
	proto := fs.String("http", "1.1", "with --conns: the HTTP the readers speak, 1.1 (a reader waits for a free connection) or h2c (streams multiplexed on each connection)")
	profile := fs.String("profile", "", "write CPU profiles during the rows of the largest readers count: of the master read through to FILE.<through>.<consistency>, of the leader during follower rows to ….leader, of this process to ….bench")
	_ = fs.Parse(args)
	if *proto != "1.1" && *proto != "h2c" {
		return fmt.Errorf("--http %q: want 1.1 or h2c", *proto)
	}
	shape := readShape{conns: *conns, h2c: *proto == "h2c"}
	counts, err := parseCounts(*list)
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "cairn-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	ms, err := startMasters(root, 3)
	if err != nil {
		return err
	}
	leader := leaderOf(ms)
	if leader == nil {
		return errors.New("no leader")
	}
	var follower *master
	for _, m := range ms {
		if m != leader {
			follower = m
			break
		}
	}
	if err := putReadsFile(leader, follower); err != nil {
		return err
	}
	fmt.Printf("The read: NamespaceService/GetFile of %s (one key, one point lookup, like etcd's Get of one key).\n\n", readsPath)
	fmt.Printf("| readers | through | consistency | reads/s | p50 | p99 | reads per read-index round | CPU µs per read: master read through, all masters, client | errors |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, n := range counts {
		for _, to := range []*master{leader, follower} {
			for _, c := range []client.Consistency{client.Linearizable, client.Stale} {
				rounds0, _ := metricValue(leader, "cairn_journal_read_index_rounds_total")
				ok0, _ := metricValue(to, `cairn_journal_read_index_total{outcome="ok"}`)
				through := "leader"
				if to != leader {
					through = "follower"
				}
				var stopProfile func()
				if *profile != "" && n == counts[len(counts)-1] {
					stopProfile = profileRow(fmt.Sprintf("%s.%s.%s", *profile, through, c), to, leader, *dur)
				}
				pids := []int{to.cmd.Process.Pid, 0}
				for _, m := range ms {
					pids = append(pids, m.cmd.Process.Pid)
				}
				cpu := cpuWindow(pids, time.Second)
				r, first := readLoad(to, c, n, shape, *dur)
				spent := cpu()
				var masters time.Duration
				for _, t := range spent[2:] {
					masters += t
				}
				if stopProfile != nil {
					stopProfile()
				}
				rounds1, _ := metricValue(leader, "cairn_journal_read_index_rounds_total")
				ok1, _ := metricValue(to, `cairn_journal_read_index_total{outcome="ok"}`)
				perRound := "-"
				if c == client.Linearizable && rounds1 > rounds0 {
					perRound = fmt.Sprintf("%.1f", (ok1-ok0)/(rounds1-rounds0))
				}
				fmt.Printf("| %d | %s | %s | %.0f | %s | %s | %s | %s, %s, %s | %d |\n", n, through, c, float64(r.events)/r.elapsed.Seconds(),
					r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), perRound,
					perOp(spent[0], r.events), perOp(masters, r.events), perOp(spent[1], r.events), r.errors)
				if first != nil {
					fmt.Fprintf(os.Stderr, "bench: %d readers through %s, %s: first error: %v\n", n, through, c, first)
				}
			}
		}
	}
	return nil
}

// putReadsFile creates and completes the file the bench reads, through the
// leader, and checks that a linearizable read through the follower sees it
// at once (read your writes through any master) and that a second version
// written next is seen too.
func putReadsFile(leader, follower *master) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := benchClient([]string{leader.api}).Masters()[0].Namespace
	fns := benchClient([]string{follower.api}).Masters()[0].Namespace
	meta := map[string]string{"v": strings.Repeat("v", 256)}
	for version := range 2 {
		cr, err := ns.CreateFile(ctx, connect.NewRequest(&cairnv1.CreateFileRequest{
			Path: readsPath, WriteType: cairnv1.WriteType_WRITE_TYPE_MUST_CACHE, Overwrite: version > 0}))
		if err != nil {
			return fmt.Errorf("create %s: %w", readsPath, err)
		}
		v := cr.Msg.GetWrite().GetVersion()
		if _, err := ns.CompleteFile(ctx, connect.NewRequest(&cairnv1.CompleteFileRequest{Path: readsPath, Version: v, Metadata: meta})); err != nil {
			return fmt.Errorf("complete %s: %w", readsPath, err)
		}
		r, err := fns.GetFile(ctx, connect.NewRequest(&cairnv1.GetFileRequest{Path: readsPath}))
		if err != nil {
			return fmt.Errorf("linearizable read through follower %s right after the write: %w", follower.id, err)
		}
		if got := r.Msg.GetFile().GetVersion(); got != v {
			return fmt.Errorf("linearizable read through follower %s right after the write of version %d saw version %d", follower.id, v, got)
		}
		if version == 1 {
			fmt.Printf("Each answer is a GetFileResponse of %d bytes (etcd's anchor: a 256-byte value).\n", proto.Size(r.Msg))
		}
	}
	return nil
}

// readShape is how the readers reach the master: over one SDK client
// (Connect over pooled HTTP/1.1, a connection per call in flight) shared
// by all of them as an application would, or over conns connections of
// HTTP/1.1 or h2c, as etcd's benchmark spreads N clients over C
// connections.
type readShape struct {
	conns int
	h2c   bool
}

// clients returns the NamespaceService clients the readers use in turn.
func (s readShape) clients(m *master, c client.Consistency) []cairnv1connect.NamespaceServiceClient {
	if s.conns == 0 {
		return []cairnv1connect.NamespaceServiceClient{benchClient([]string{m.api}, client.WithConsistency(c)).Masters()[0].Namespace}
	}
	var out []cairnv1connect.NamespaceServiceClient
	for range s.conns {
		t := apiserver.HTTP1Transport()
		t.MaxConnsPerHost = 1
		if s.h2c {
			t = apiserver.H2CTransport() // without TLS: the reads bench runs with tokens only
		}
		hc := &http.Client{Transport: auth.Transport(adminToken, apiserver.OneWrite(apiserver.WithTLS(t, clientTLS)))}
		out = append(out, cairnv1connect.NewNamespaceServiceClient(hc, baseURL(m.api)))
	}
	return out
}

// readLoad runs readers goroutines that read readsPath through m with
// consistency c for a second of warm-up and then d, reaching m as shape
// says, and measures each read after the warm-up. It also returns the
// first error met.
func readLoad(m *master, c client.Consistency, readers int, shape readShape, d time.Duration) (result, error) {
	nss := shape.clients(m, c)
	var reads, errs atomic.Int64
	var first atomic.Value
	lat := make([][]time.Duration, readers)
	warmup := time.Now().Add(time.Second)
	end := warmup.Add(d)
	var wg sync.WaitGroup
	for i := range readers {
		ns := nss[i%len(nss)]
		wg.Go(func() {
			for {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				req := connect.NewRequest(&cairnv1.GetFileRequest{Path: readsPath})
				if c != client.Linearizable {
					req.Header().Set(apiserver.ConsistencyHeader, string(c)) // the clients of --conns have no WithConsistency
				}
				r, err := ns.GetFile(ctx, req)
				cancel()
				if err == nil && r.Msg.GetFile().GetPath() != readsPath {
					err = fmt.Errorf("GetFile answered the entry of %q", r.Msg.GetFile().GetPath())
				}
				if err != nil {
					first.CompareAndSwap(nil, err)
					if !t0.Before(warmup) {
						errs.Add(1)
					}
					time.Sleep(10 * time.Millisecond) // no tight loop against a master that refuses
					continue
				}
				if !t0.Before(warmup) {
					reads.Add(1)
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
	slices.Sort(all)
	r := result{events: reads.Load(), errors: errs.Load(), elapsed: d}
	if len(all) > 0 {
		r.p50 = all[len(all)/2]
		r.p99 = all[len(all)*99/100]
	}
	err, _ := first.Load().(error)
	return r, err
}

// profileRow starts CPU profiles for a row: of the master read through
// (and of the leader when that is another) and of this process, over the
// measuring time after the warm-up. The function it returns waits for
// them.
func profileRow(name string, to, leader *master, d time.Duration) func() {
	secs := max(1, int(d.Seconds()))
	var wg sync.WaitGroup
	fetch := func(m *master, file string) {
		wg.Go(func() {
			time.Sleep(time.Second)
			fetchProfile(baseURL(m.api), file, secs)
		})
	}
	fetch(to, name)
	if to != leader {
		fetch(leader, name+".leader")
	}
	wg.Go(func() {
		time.Sleep(time.Second)
		f, err := os.Create(name + ".bench")
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		time.Sleep(time.Duration(secs) * time.Second)
		pprof.StopCPUProfile()
	})
	return wg.Wait
}

// metricValue reads one sample (name with its labels, as exposed) from a
// master's /metrics.
func metricValue(m *master, sample string) (float64, bool) {
	resp, err := benchHTTP().Get(baseURL(m.api) + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var buf strings.Builder
	if _, err := io.Copy(&buf, resp.Body); err != nil {
		return 0, false
	}
	for line := range strings.Lines(buf.String()) {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}
