package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/auth"
	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/master"
	"github.com/cairnhq/cairn/worker"
)

// masterGCPercent is the garbage collector target a master runs with when
// neither GOGC nor --gc-percent says otherwise. A master's live heap is
// small (raft's log cache, pebble's block cache, the cluster map), so at
// Go's default of 100 a busy master collects several times a second; 400
// collects a quarter as often for a heap a few tens of megabytes larger.
// On the journal benchmark the gain was small (1.00–1.03× events/s in
// two interleaved pairs at 64 proposers), so this is no headline figure.
const masterGCPercent = 400

func newMasterCmd(g *globals) *cobra.Command {
	var cfg master.Config
	var gcPercent int
	var faultSignals bool
	var initialTokens string
	cmd := &cobra.Command{
		Use:   "master --id ID --data DIR --api HOST:PORT --raft HOST:PORT (--bootstrap | --join API_ADDR)",
		Short: "Run a master: a member of the raft journal and the API for the cluster",
		Long: `Run a master. Masters keep the journal (raft, on disk under --data) and serve
the Connect API: cluster map, membership, operator and event services, plus
gRPC reflection and health (grpcurl -plaintext HOST:PORT list) and /metrics.

Start the first master with --bootstrap, then every other one with
--join API_ADDR of any member. A restarted master needs neither: its data
folder says which cluster it belongs to. A master refuses a data folder
that belongs to another master id or to another cluster.

Any master accepts writes and hands them to the leader over the raft port;
during an election it holds them for up to --forward-hold before answering
Unavailable. Any master answers reads, linearizable by default: it confirms
the leader's commit index (within --read-index-timeout) and catches up
before it answers. Callers may ask for stale reads (header
Cairn-Consistency: stale), which a master refuses once it has heard from no
leader for --stale-read-bound.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			cfg.Logger = log
			if os.Getenv("GOGC") == "" || cmd.Flags().Changed("gc-percent") {
				debug.SetGCPercent(gcPercent)
			}
			if cfg.WriteTimeout <= 0 {
				cfg.WriteTimeout = -1 // the flag's 0 (or less): never
			}
			if cfg.Token, err = g.clientToken(); err != nil {
				return err
			}
			if err := checkRaftTiming(cfg.Journal); err != nil {
				return usageError{err}
			}
			cfg.TLS = g.tls
			if initialTokens != "" {
				text, err := os.ReadFile(initialTokens)
				if err != nil {
					return usageError{fmt.Errorf("--initial-tokens: %w", err)}
				}
				if cfg.InitialTokens, err = auth.ParseInitialTokens(string(text)); err != nil {
					return usageError{fmt.Errorf("--initial-tokens %s: %w", initialTokens, err)}
				}
			}
			if joinSelf(&cfg) {
				log.Info("--join names this master's own --api-advertise address: it is the first master, and bootstraps the cluster if its data folder holds none")
			}
			m, err := master.Start(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if faultSignals {
				stop := cutOnSignals(m, log)
				defer stop()
			}
			<-cmd.Context().Done()
			log.Info("signal received; stopping")
			return m.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ID, "id", "", "this master's id, stable for its data folder (required)")
	f.StringVar(&cfg.DataDir, "data", "", "data folder: raft log, snapshots, state (required)")
	f.StringVar(&cfg.APIAddr, "api", "127.0.0.1:7700", "address the API listens on")
	f.StringVar(&cfg.APIAdvertise, "api-advertise", "", "API address other processes use (default: the bound --api address)")
	f.StringVar(&cfg.RaftAddr, "raft", "127.0.0.1:7701", "address the raft transport listens on and peers dial")
	f.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "raft address peers dial, when --raft binds one they cannot (0.0.0.0 in a container); a host name is resolved by each dial (default: the --raft address)")
	f.BoolVar(&cfg.Bootstrap, "bootstrap", false, "start a new cluster with this master as its only voter")
	f.StringVar(&cfg.Join, "join", "", "API address of a member of the cluster to join; this master's own --api-advertise address means --bootstrap (a StatefulSet's first pod)")
	f.StringVar(&cfg.UploadMappingFile, "async-upload-mapping", "", "the seed's async upload mapping file (JSON: cacheOnlyMountPoint, asyncUploadPathMapping, blackList), journaled when the cluster has none")
	f.Uint32Var(&cfg.CacheOnlyReplication, "cache-only-replication", 0, "replication of files written under the cache-only mount (0: the cluster's R)")
	f.StringVar(&cfg.CacheOnlyMount, "cache-only-mount", "", "a folder whose files live in the cache only: pinned, written to R owners (e.g. /cache-only)")
	f.StringVar(&cfg.UFSRoot, "ufs", "", "local directory mounted at / as the under-file-system; workers must reach it at the same path (default DATA/ufs)")
	f.DurationVar(&cfg.HeartbeatTimeout, "heartbeat-timeout", 10*time.Second, "a worker silent for this long is journaled DOWN")
	f.DurationVar(&cfg.ForwardHold, "forward-hold", 5*time.Second, "how long a write waits for a leader to be elected, and a linearizable read for this master to catch up with the leader")
	f.DurationVar(&cfg.ReadIndexTimeout, "read-index-timeout", 0, "how long a linearizable read waits for the leader to confirm its commit index before it is refused (default: the raft election timeout)")
	f.DurationVar(&cfg.StaleReadBound, "stale-read-bound", 0, "a master that has heard from no leader for longer than this refuses stale reads too (default: four raft election timeouts)")
	f.BoolVar(&cfg.Insecure, "insecure", false, "check no token: anyone who reaches the API may do anything (logged, and cairn_auth_insecure is 1)")
	f.IntVar(&cfg.MaxStreams, "max-streams", apiserver.DefaultMaxStreams, "most streams (watches, tails, snapshots) served at once; more are refused with ResourceExhausted")
	f.StringVar(&cfg.AdminTokenFile, "admin-token-file", "", "with --bootstrap: a file holding the first admin token, used as it is when it exists, else a new token is written there (mode 0600)")
	f.StringVar(&initialTokens, "initial-tokens", "", "a file of tokens to journal (as hashes) when the journal lacks them: one \"NAME ROLE TOKEN\" per line (cairn auth token new makes tokens)")
	f.BoolVar(&faultSignals, "fault-signals", false, "for failover drills: SIGUSR1 cuts this master's raft transport (as a network partition would), SIGUSR2 heals it")
	_ = f.MarkHidden("fault-signals")
	f.DurationVar(&cfg.LeaseTTL, "lease-ttl", 10*time.Second, "how long a task lease lasts without renewal; a worker that stops renewing loses its task after this")
	f.DurationVar(&cfg.WriteTimeout, "write-timeout", 24*time.Hour, "a write created and not completed for this long is abandoned, and its cached copies left for cleanup; 0: never")
	f.DurationVar(&cfg.PersistInterval, "persist-interval", time.Second, "how often files waiting for an upload to the UFS become upload tasks (persistence.scheduler.interval)")
	f.DurationVar(&cfg.PersistCheckInterval, "persist-check-interval", time.Second, "how often the leader compares a batch of persisted files' UFS copies with the journal, taking back those removed or changed out of band (persistence.checker.interval; negative: never)")
	f.IntVar(&cfg.PersistCheckBatch, "persist-check-batch", 100, "how many files one tick of the persistence checker looks at")
	f.DurationVar(&cfg.CleanupSettle, "cleanup-settle", 30*time.Second, "automatic cleanup waits until the map has not changed and every worker has heartbeated for this long")
	f.Uint32Var(&cfg.DeliveryLimit, "delivery-limit", 3, "how many leases a task may use (expired or failed) before it fails for good")
	f.IntVar(&cfg.Journal.MaxBatchEvents, "journal-max-batch-events", 4096, "most events gathered into one raft entry; 1 turns group commit off (for benchmarks)")
	f.StringVar(&cfg.Journal.LogStore, "log-store", "", "raft log storage for a new data folder: wal (append-only segments, one fsync per append) or bolt (raft-boltdb); an existing folder keeps what it holds, and naming the other store is an error (default: bolt for a new folder; wal cannot reopen a folder after raft cleared a log suffix in it, hashicorp/raft-wal#31)")
	f.DurationVar(&cfg.Journal.HeartbeatTimeout, "raft-heartbeat-timeout", 500*time.Millisecond, "a follower that has not heard from the leader for this long (checked at random intervals of 1 to 2 times it) stands for election: lower fails over sooner, and risks elections when a disk or the network stalls for that long; the same on every master")
	f.DurationVar(&cfg.Journal.ElectionTimeout, "raft-election-timeout", 500*time.Millisecond, "how long a candidate waits for votes before it tries again; at least --raft-heartbeat-timeout")
	f.DurationVar(&cfg.Journal.LeaderLeaseTimeout, "raft-leader-lease", 250*time.Millisecond, "a leader that has not heard from a quorum for this long steps down (and stops acknowledging writes); at most --raft-heartbeat-timeout")
	f.IntVar(&cfg.Journal.MaxInflightEntries, "journal-max-inflight-entries", 2, "most raft entries proposed but not yet committed; proposals wait and gather beyond it")
	f.IntVar(&gcPercent, "gc-percent", masterGCPercent, "the Go garbage collector's target (GOGC), used unless the GOGC environment variable is set; -1 turns collection off")
	_ = cmd.MarkFlagRequired("id")
	_ = cmd.MarkFlagRequired("data")
	return cmd
}

func newWorkerCmd(g *globals) *cobra.Command {
	var cfg worker.Config
	var capacity, blockSize string
	cmd := &cobra.Command{
		Use:   "worker --data DIR --api HOST:PORT --masters A,B,C [--capacity 10GiB]",
		Short: "Run a worker: registers with the masters, heartbeats and follows the cluster map",
		Long: `Run a worker. On first start it picks an id (or takes --id) and keeps it in
DIR/worker-id, so it is the same worker after a restart. It registers with
the masters, heartbeats at the interval the leader asks for, and follows the
cluster map epoch by epoch. It serves gRPC reflection, health and /metrics.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			if cfg.CapacityBytes, err = parseSize(capacity); err != nil {
				return usageError{fmt.Errorf("--capacity: %w", err)}
			}
			bs, err := parseSize(blockSize)
			if err != nil || bs < 1024 || bs > 1<<30 {
				return usageError{fmt.Errorf("--block-size %q: want 1KiB..1GiB", blockSize)}
			}
			cfg.BlockSize = int64(bs)
			if cfg.Token, err = g.clientToken(); err != nil {
				return err
			}
			cfg.TLS = g.tls
			if cfg.Masters, err = client.ParseMasters(g.masters); err != nil {
				return usageError{err}
			}
			cfg.Logger = log
			w, err := worker.Start(cfg)
			if err != nil {
				return err
			}
			<-cmd.Context().Done()
			log.Info("signal received; stopping")
			return w.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", "", "data folder; keeps the worker's id (required)")
	f.StringVar(&cfg.ID, "id", "", "id for a new data folder (default: a random one)")
	f.StringVar(&cfg.APIAddr, "api", "127.0.0.1:7710", "address the worker's API listens on")
	f.StringVar(&cfg.APIAdvertise, "api-advertise", "", "API address other processes use (default: the bound --api address)")
	f.StringVar(&capacity, "capacity", "10GiB", "cache capacity this worker offers (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)")
	f.StringVar(&blockSize, "block-size", "4MiB", "size of the block files cached data is cut into")
	f.BoolVar(&cfg.Insecure, "insecure", false, "check no token: anyone who reaches this worker may read and write its data (logged, and cairn_auth_insecure is 1); without it the worker needs --token-file (role worker)")
	f.IntVar(&cfg.MaxStreams, "max-streams", apiserver.DefaultMaxStreams, "most data streams served at once; more are refused with ResourceExhausted")
	_ = cmd.MarkFlagRequired("data")
	return cmd
}

func newDevCmd(g *globals) *cobra.Command {
	var dataDir, api string
	var workers int
	var hbTimeout time.Duration
	var insecure, useTLS bool
	cmd := &cobra.Command{
		Use:   "dev [--data DIR] [--workers 3] [--api 127.0.0.1:7700]",
		Short: "Run a whole cluster in one process: one master and some workers",
		Long: `Run one master (bootstrapped on first start) and --workers workers in this
process, all data under --data. The master's API is --api and its raft
transport the next port; workers listen on free ports. State survives a
restart with the same --data. Stop with Ctrl-C.

Tokens are checked, as on any cluster: the first start writes an admin token
to DATA/admin.token and the workers' token to DATA/worker.token, and prints
how to use them (CAIRN_TOKEN, --token-file, grpcurl -H). --insecure turns
checking off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			if workers < 0 || workers > 64 {
				return usageError{fmt.Errorf("--workers %d: want 0..64", workers)}
			}
			host, port, err := net.SplitHostPort(api)
			if err != nil {
				return usageError{fmt.Errorf("--api %q: %w", api, err)}
			}
			p, err := strconv.Atoi(port)
			if err != nil || p <= 0 || p >= 65535 {
				return usageError{fmt.Errorf("--api %q: need an explicit port below 65535 (the raft transport takes the next one)", api)}
			}
			mcfg := master.Config{
				ID: "dev-master", DataDir: filepath.Join(dataDir, "master"), APIAddr: api,
				RaftAddr: net.JoinHostPort(host, strconv.Itoa(p+1)), Bootstrap: true, UFSRoot: filepath.Join(dataDir, "ufs"), CacheOnlyMount: "/cache-only",
				HeartbeatTimeout: hbTimeout, Logger: log, Insecure: insecure,
			}
			var tlsFiles apiserver.TLSFiles
			if useTLS {
				// One CA and one certificate for every process, made on the
				// first start with --tls.
				if tlsFiles, err = apiserver.DevTLS(filepath.Join(dataDir, "tls"), []string{host}); err != nil {
					return fmt.Errorf("make the dev certificates: %w", err)
				}
				mcfg.TLS = tlsFiles
			}
			adminFile, workerFile := filepath.Join(dataDir, "admin.token"), filepath.Join(dataDir, "worker.token")
			var workerToken string
			if !insecure {
				// The first start writes both tokens; every later start
				// uses them as they are.
				if workerToken, _, err = auth.EnsureTokenFile(workerFile); err != nil {
					return err
				}
				mcfg.AdminTokenFile = adminFile
				mcfg.InitialTokens = []auth.Initial{{Name: "dev-workers", Role: "worker", Token: workerToken}}
			}
			m, err := master.Start(cmd.Context(), mcfg)
			if err != nil {
				return err
			}
			defer m.Close()
			if !insecure {
				// Workers start once their token is journaled, so that
				// their first registration is not refused.
				deadline := time.Now().Add(30 * time.Second)
				for _, found := m.Journal().State().TokenByHash(auth.Hash(workerToken)); !found; _, found = m.Journal().State().TokenByHash(auth.Hash(workerToken)) {
					if time.Now().After(deadline) {
						return errors.New("the master did not journal the workers' token within 30s")
					}
					select {
					case <-m.Journal().State().Changed():
					case <-time.After(100 * time.Millisecond):
					case <-cmd.Context().Done():
						return nil
					}
				}
			}
			var ws []*worker.Worker
			defer func() {
				for _, w := range ws {
					w.Close()
				}
			}()
			for i := range workers {
				w, err := worker.Start(worker.Config{
					DataDir: filepath.Join(dataDir, fmt.Sprintf("worker-%d", i+1)), ID: fmt.Sprintf("dev-worker-%d", i+1),
					APIAddr: net.JoinHostPort(host, "0"), Masters: []string{m.Addr()}, CapacityBytes: 1 << 30, Logger: log,
					Token: workerToken, Insecure: insecure, TLS: tlsFiles,
				})
				if err != nil {
					return err
				}
				ws = append(ws, w)
			}
			fmt.Fprintf(os.Stdout, "\ncairn dev is running (data in %s)\n  master  %s  api %s  raft %s  cluster %s\n", dataDir, "dev-master", m.Addr(), m.RaftAddr(), m.ClusterID())
			for _, w := range ws {
				fmt.Fprintf(os.Stdout, "  worker  %s  api %s\n", w.ID(), w.Addr())
			}
			printDevUsage(os.Stdout, m.Addr(), insecure, adminFile, workerFile, tlsFiles)
			<-cmd.Context().Done()
			log.Info("signal received; stopping")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", ".dev-data", "folder for all the cluster's data")
	f.IntVar(&workers, "workers", 3, "number of workers")
	f.StringVar(&api, "api", "127.0.0.1:7700", "master API address (raft uses the next port)")
	f.DurationVar(&hbTimeout, "heartbeat-timeout", 10*time.Second, "a worker silent for this long is journaled DOWN")
	f.BoolVar(&insecure, "insecure", false, "check no token (by default the first start writes an admin token to DATA/admin.token)")
	f.BoolVar(&useTLS, "tls", false, "serve every process with TLS, with a CA and a certificate made in DATA/tls on the first start")
	return cmd
}

// cutOnSignals blocks m's raft transport on SIGUSR1 and unblocks it on
// SIGUSR2 (--fault-signals); the returned func stops listening.
func cutOnSignals(m *master.Master, log *slog.Logger) func() {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				if err := m.Journal().BlockTransport(sig == syscall.SIGUSR1); err != nil {
					log.Error("fault signal", "signal", sig.String(), "err", err)
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// printDevUsage tells how to reach the dev cluster: with the CLI and with
// grpcurl, with its token and, under --tls, its CA.
func printDevUsage(w io.Writer, api string, insecure bool, adminFile, workerFile string, tlsFiles apiserver.TLSFiles) {
	cliTLS, grpcTLS := "", "-plaintext"
	if tlsFiles.Enabled() {
		cliTLS, grpcTLS = " --tls-ca "+tlsFiles.CA, "-cacert "+tlsFiles.CA
		fmt.Fprintf(w, "\nTLS: every process serves with a certificate of the CA %s\n", tlsFiles.CA)
	}
	if insecure {
		fmt.Fprintf(w, "\n--insecure: no token is checked.\nTry, in another terminal:\n  go run ./cmd/cairn cluster show --masters %s%s\n  grpcurl %s -d '{}' %s cairn.v1.ClusterService/GetClusterMap\n\nCtrl-C stops everything.\n\n",
			api, cliTLS, grpcTLS, api)
		return
	}
	fmt.Fprintf(w, "\nTokens: %s (role admin), %s (role worker)\nTry, in another terminal:\n  export CAIRN_TOKEN=$(cat %s)\n  go run ./cmd/cairn cluster show --masters %s%s\n  grpcurl %s -H \"authorization: Bearer $CAIRN_TOKEN\" -d '{}' %s cairn.v1.ClusterService/GetClusterMap\n\nCtrl-C stops everything.\n\n",
		adminFile, workerFile, adminFile, api, cliTLS, grpcTLS, api)
}

// checkRaftTiming refuses raft timeouts that raft would refuse, with the
// flags' names: each at least 5ms, the election timeout at least the
// heartbeat timeout, and the leader lease at most the heartbeat timeout.
func checkRaftTiming(c journal.Config) error {
	switch {
	case c.HeartbeatTimeout < 5*time.Millisecond || c.ElectionTimeout < 5*time.Millisecond || c.LeaderLeaseTimeout < 5*time.Millisecond:
		return fmt.Errorf("--raft-heartbeat-timeout %s, --raft-election-timeout %s, --raft-leader-lease %s: each must be at least 5ms", c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout)
	case c.ElectionTimeout < c.HeartbeatTimeout:
		return fmt.Errorf("--raft-election-timeout %s is below --raft-heartbeat-timeout %s", c.ElectionTimeout, c.HeartbeatTimeout)
	case c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return fmt.Errorf("--raft-leader-lease %s is above --raft-heartbeat-timeout %s: a leader must step down before its followers elect another", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	return nil
}
