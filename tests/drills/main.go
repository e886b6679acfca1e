// Command drills runs cairn's failover drills against the compose cluster
// (deploy/compose/docker-compose.yml): each drill starts a fresh cluster of
// 3 masters and 3 workers, runs concurrent clients that record every call,
// does its faults (kill, network partition, pause, restarts) with Docker,
// then checks the history with porcupine and the drill's own invariants.
// It prints one line per drill (PASS or FAIL and its figures) and leaves
// the containers' logs, the history and, when a check fails, porcupine's
// drawing of it in a folder it names.
//
//	make image && go run ./tests/drills [--drill leader-kill,leader-pause] [--rounds 5]
//
// See docs/failover-drills.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/auth"
)

type options struct {
	rounds    int
	clients   int
	dirs      int
	together  int
	healthy   time.Duration
	porcupine time.Duration
	strict    bool
	verbose   bool
}

func main() {
	os.Exit(run())
}

func run() int {
	var (
		names   = flag.String("drill", "", "drills to run, comma-separated (default: all): "+strings.Join(drillNames(), ", "))
		compose = flag.String("compose", "deploy/compose/docker-compose.yml", "the compose file")
		secrets = flag.String("secrets", "deploy/compose/secrets", "the folder with admin.token (make image writes it)")
		logs    = flag.String("logs", "", "folder for the logs (default tests/drills/.logs/<time>)")
		project = flag.String("project", "cairndrill", "docker-compose project name (its containers, networks and volumes are removed and made anew)")
		netp    = flag.String("net", "172.29.17", "first three octets of the cluster network")
		edge    = flag.String("edge", "172.29.18", "first three octets of the clients' network")
		keep    = flag.Bool("keep", false, "leave the last drill's cluster running")
		extra   = flag.String("master-flags", "", "more flags for every master, after the drills' own (e.g. --raft-heartbeat-timeout 250ms --raft-election-timeout 250ms --raft-leader-lease 125ms)")
		o       options
	)
	flag.IntVar(&o.rounds, "rounds", 5, "faults per drill (kill, partition, pause): each gives one failover figure")
	flag.IntVar(&o.clients, "clients", 8, "concurrent clients recording the history")
	flag.IntVar(&o.dirs, "dirs", 16, "folders of the workload's namespace (4 files each)")
	flag.IntVar(&o.together, "together", 10, "start-together: how many clusters to start")
	flag.DurationVar(&o.healthy, "healthy", 5*time.Second, "how long the clients run on the healthy cluster before the first fault (the throughput baseline)")
	flag.DurationVar(&o.porcupine, "porcupine-timeout", 3*time.Minute, "how long porcupine may take to decide a history")
	flag.BoolVar(&o.strict, "strict", false, "fail a drill on the known issues too (docs/failover-drills.md)")
	flag.BoolVar(&o.verbose, "verbose", false, "print each drill's steps as they happen (they are in its progress.log anyway)")
	flag.Parse()

	selected := drillNames()
	if *names != "" {
		selected = strings.Split(*names, ",")
		for _, n := range selected {
			if !slices.Contains(drillNames(), n) {
				fmt.Fprintf(os.Stderr, "no drill %q; there are: %s\n", n, strings.Join(drillNames(), ", "))
				return 2
			}
		}
	}
	admin, err := auth.ReadTokenFile(filepath.Join(*secrets, "admin.token"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "the admin token: %v (run make image first: it writes the compose cluster's tokens)\n", err)
		return 2
	}
	d, err := newDocker()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if *logs == "" {
		*logs = filepath.Join("tests", "drills", ".logs", time.Now().UTC().Format("20060102-150405"))
	}
	masterFlags := strings.TrimSpace("--lease-ttl 3s --heartbeat-timeout 30s --persist-interval 200ms --cleanup-settle 1h --delivery-limit 10 " + *extra)
	c := &cluster{
		d: d, file: *compose, project: *project, net: *netp, edge: *edge, admin: admin,
		masters: []string{"m1", "m2", "m3"}, workers: []string{"w1", "w2", "w3"},
		env: []string{"CAIRN_NET=" + *netp, "CAIRN_EDGE=" + *edge, "CAIRN_MASTER_FLAGS=" + masterFlags, "CAIRN_WORKER_FLAGS="},
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Printf("drills: %s; logs in %s\n", strings.Join(selected, ", "), *logs)
	failed := 0
	for _, name := range selected {
		dir := filepath.Join(*logs, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		res := runDrill(ctx, c, &o, name, dir)
		fmt.Println(res.line())
		_ = os.WriteFile(filepath.Join(dir, "result.txt"), []byte(res.report()), 0o644)
		if !res.pass {
			failed++
		}
		if ctx.Err() != nil {
			break
		}
	}
	if !*keep {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		_ = c.down(dctx)
		cancel()
	}
	if failed > 0 {
		fmt.Printf("%d of %d drills failed; logs in %s\n", failed, len(selected), *logs)
		return 1
	}
	return 0
}
