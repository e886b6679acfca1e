package master

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/auth"
	"github.com/cairnhq/cairn/fsm"
	"github.com/cairnhq/cairn/jobs"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// Config configures a master.
type Config struct {
	// ID is this master's id, stable for the life of its data folder.
	ID string
	// DataDir holds the raft log, snapshots, the state store and identity.json.
	DataDir string
	// APIAddr is where the Connect API listens (host:port; port 0 picks one).
	APIAddr string
	// APIAdvertise is the API address other processes reach; the bound
	// address when empty.
	APIAdvertise string
	// RaftAddr is where the raft transport listens; peers dial it.
	RaftAddr string
	// RaftAdvertise is the raft address peers dial when RaftAddr is not
	// one they can (a master bound to 0.0.0.0 in a container); RaftAddr
	// when empty.
	RaftAdvertise string
	// Bootstrap starts a new cluster with this master as its only voter
	// when the data folder is empty.
	Bootstrap bool
	// UFSRoot is the local directory mounted at "/" (created if missing);
	// DataDir/ufs when empty. Workers must reach it at the same path.
	UFSRoot string
	// CacheOnlyReplication is the replication of files written under the
	// cache-only mount when the write asks for none (0: the map's R).
	CacheOnlyReplication uint32
	// UploadMappingFile, if set, is the seed's async upload mapping (JSON),
	// journaled when the journal has none.
	UploadMappingFile string
	// CacheOnlyMount, if set, is a folder whose files live in the cache
	// only: pinned, written to R owners, nothing behind them in the UFS.
	CacheOnlyMount string
	// Join is the API address of a member of the cluster to join when the
	// data folder is empty (or belongs to that cluster).
	Join string
	// HeartbeatTimeout is how long a worker may stay silent before the
	// leader journals it DOWN. Default 10s.
	HeartbeatTimeout time.Duration
	// HeartbeatInterval is how often workers are told to heartbeat.
	// Default HeartbeatTimeout/4.
	HeartbeatInterval time.Duration
	// ForwardHold is how long a write waits for a leader (an election)
	// before it is answered Unavailable, and how long a linearizable read
	// waits for this master to apply what the leader had committed.
	// Default 5s.
	ForwardHold time.Duration
	// ReadIndexTimeout bounds how long a linearizable read waits for the
	// leader to confirm its commit index; past it the read is refused
	// (Unavailable), so a master cut off from the leader refuses reads
	// within about an election timeout. Default: the journal's election
	// timeout.
	ReadIndexTimeout time.Duration
	// StaleReadBound is how long a master may go without hearing from a
	// leader and still answer stale reads (Cairn-Consistency: stale).
	// Default: four election timeouts.
	StaleReadBound time.Duration
	// LeaseTTL is how long a task lease lasts without renewal. Default 10s.
	LeaseTTL time.Duration
	// DeliveryLimit is how many leases a task may use before it fails.
	// Default 3.
	DeliveryLimit uint32
	// CleanupSettle is how long the map must stay unchanged (and every
	// ACTIVE worker heartbeating) before an automatic cleanup starts.
	// Default 30s.
	CleanupSettle time.Duration
	// PersistInterval is how often the persistence scheduler turns files
	// waiting for an upload into PERSIST jobs. Default 1s.
	PersistInterval time.Duration
	// PersistCheckInterval is how often the persistence checker compares
	// a batch of persisted files' UFS copies with the journal's record.
	// Default 1s; negative: never.
	PersistCheckInterval time.Duration
	// PersistCheckBatch is how many files (in path order, of which the
	// PERSISTED ones are checked) one tick of the checker looks at.
	// Default 100.
	PersistCheckBatch int
	// RetentionInterval is how often finished jobs past their retention
	// are forgotten. Default 1m.
	RetentionInterval time.Duration
	// WriteTimeout is how long a write may stay created and not completed
	// before the leader abandons it (its cached copies become stale, for
	// cleanup). Zero: 24h; negative: never.
	WriteTimeout time.Duration
	// Insecure serves every call without checking tokens: anyone who
	// reaches the API may do anything. It is logged, and
	// cairn_auth_insecure is 1. Without it a master checks every call's
	// token against the journal's tokens.
	Insecure bool
	// AdminTokenFile names a file holding the first admin token of a new
	// cluster: used as it is when it exists, else a new token is written
	// there (mode 0600). The token is journaled, as its hash, under the
	// name "admin" (when the journal has no token of that name).
	AdminTokenFile string
	// InitialTokens are journaled (as hashes) when the journal lacks them
	// by name: tokens a deployment provisions (compose, a Kubernetes
	// Secret) for its admins and workers.
	InitialTokens []auth.Initial
	// MaxStreams caps the streams (watches, tails, snapshots) this master
	// serves at once; apiserver.DefaultMaxStreams when 0.
	MaxStreams int
	// Token is what this master sends to other masters before it is one of
	// them (when it joins): an admin token.
	Token string
	// TLS serves the API with TLS and puts the raft port under TLS too (the
	// certificate doubles as a client certificate; with ClientAuth, peers
	// and API clients must present one the CA signed).
	TLS apiserver.TLSFiles
	// Journal tunes raft; its NodeID, Dir, RaftBind, Bootstrap, Logger and
	// Registerer are filled in from the fields above.
	Journal journal.Config
	Logger  *slog.Logger
}

func (c *Config) setDefaults() {
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = 10 * time.Second
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = c.HeartbeatTimeout / 4
	}
	if c.ForwardHold <= 0 {
		c.ForwardHold = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.DeliveryLimit == 0 {
		c.DeliveryLimit = jobs.DefaultDeliveryLimit
	}
	if c.CleanupSettle <= 0 {
		c.CleanupSettle = 30 * time.Second
	}
	if c.PersistInterval <= 0 {
		c.PersistInterval = time.Second
	}
	if c.PersistCheckInterval == 0 {
		c.PersistCheckInterval = time.Second
	}
	if c.PersistCheckBatch <= 0 {
		c.PersistCheckBatch = 100
	}
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = time.Minute
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 24 * time.Hour
	}
	election := c.Journal.ElectionTimeout
	if election <= 0 {
		election = journal.DefaultElectionTimeout
	}
	if c.ReadIndexTimeout <= 0 {
		c.ReadIndexTimeout = election
	}
	if c.StaleReadBound <= 0 {
		c.StaleReadBound = 4 * election
	}
	if c.UFSRoot == "" && c.DataDir != "" {
		c.UFSRoot = filepath.Join(c.DataDir, "ufs")
	}
}

// Master is a running master process: its journal and its API server.
type Master struct {
	cfg      Config
	log      *slog.Logger
	j        *journal.Journal
	srv      *apiserver.Server
	ident    journal.Identity
	peers    *http.Client // to other masters, before this one is in the journal (join)
	procs    map[string]leaderProc
	leases   *leaseService
	checker  *auth.Checker
	initial  []auth.Initial // tokens to journal when the journal lacks them
	liveness *liveness
	ufsRoot  string              // --ufs, absolute: the default mount of /
	mounts   *persistence.Mounts // the UFSes of the journal's mounts, opened as used
	metrics  *metrics
	mapping  *cairnv1.UploadMapping // from --async-upload-mapping
	stop     chan struct{}
	once     sync.Once
}

// Start opens the journal in cfg.DataDir, joins or bootstraps the cluster
// when the folder is new, and serves the API. It refuses a data folder
// that belongs to another master or another cluster.
func Start(ctx context.Context, cfg Config) (*Master, error) {
	cfg.setDefaults()
	if cfg.ID == "" || cfg.DataDir == "" || cfg.RaftAddr == "" {
		return nil, errors.New("a master needs --id, --data and --raft")
	}
	if cfg.CacheOnlyMount != "" {
		c, err := persistence.CleanPath(cfg.CacheOnlyMount)
		if err != nil || c == "/" {
			return nil, fmt.Errorf("--cache-only-mount %q: want a folder below /, such as /cache-only", cfg.CacheOnlyMount)
		}
		cfg.CacheOnlyMount = c
	}
	if cfg.CacheOnlyReplication > fsm.MaxReplication {
		return nil, fmt.Errorf("--cache-only-replication %d: at most %d", cfg.CacheOnlyReplication, fsm.MaxReplication)
	}
	if cfg.Bootstrap && cfg.Join != "" {
		return nil, errors.New("--bootstrap and --join exclude each other: bootstrap the first master, join the others to it")
	}
	log := cfg.Logger.With("master", cfg.ID)
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	ident, err := journal.ReadIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	initial := append([]auth.Initial(nil), cfg.InitialTokens...)
	if cfg.AdminTokenFile != "" {
		token, created, err := auth.EnsureTokenFile(cfg.AdminTokenFile)
		if err != nil {
			return nil, fmt.Errorf("--admin-token-file: %w", err)
		}
		if created {
			log.Info("wrote a new admin token", "file", cfg.AdminTokenFile)
		}
		initial = append([]auth.Initial{{Name: "admin", Role: "admin", Token: token}}, initial...)
	}
	if !cfg.Insecure {
		switch {
		case ident.ClusterID == "" && cfg.Bootstrap && len(initial) == 0:
			return nil, errors.New("a new cluster needs a first token: start with --admin-token-file FILE (a new token is written there if the file does not exist) or --initial-tokens FILE; or run with --insecure, and anyone who reaches the API may do anything")
		case ident.ClusterID == "" && cfg.Join != "" && cfg.Token == "":
			return nil, errors.New("joining a cluster needs an admin token: give --token-file FILE (the cluster's admin token); or run every process with --insecure")
		}
	} else if len(initial) > 0 {
		log.Warn("--insecure: tokens are journaled but not checked")
	}
	var mapping *cairnv1.UploadMapping
	if cfg.UploadMappingFile != "" {
		text, err := os.ReadFile(cfg.UploadMappingFile)
		if err != nil {
			return nil, fmt.Errorf("--async-upload-mapping: %w", err)
		}
		if mapping, err = checkMapping(text, cfg.CacheOnlyMount); err != nil {
			return nil, fmt.Errorf("--async-upload-mapping %s: %w", cfg.UploadMappingFile, err)
		}
	}
	serverTLS, clientTLS, err := cfg.TLS.Configs()
	if err != nil {
		return nil, err
	}
	m := &Master{
		cfg:     cfg,
		log:     log,
		srv:     apiserver.New(log),
		peers:   &http.Client{Transport: auth.Transport(cfg.Token, apiserver.WithTLS(apiserver.HTTP1Transport(), clientTLS))},
		initial: initial,
		stop:    make(chan struct{}),
		mapping: mapping,
	}

	switch {
	case cfg.Join != "":
		wait := time.Minute
		if ident.ClusterID != "" {
			// A member restarting: its folder already says which cluster;
			// the peer is asked only to catch a folder of another cluster,
			// and may well be restarting too.
			wait = time.Second
		}
		clusterID, err := m.peerClusterID(ctx, cfg.Join, wait)
		switch {
		case err != nil && ident.ClusterID == "":
			return nil, err
		case err != nil:
			log.Warn("cannot reach the master given to --join; starting from the data folder", "join", cfg.Join, "err", err)
			clusterID = ident.ClusterID
		}
		if ident.ClusterID != "" && ident.ClusterID != clusterID {
			return nil, fmt.Errorf("data folder %s belongs to cluster %s, but the master at %s is in cluster %s: use an empty folder to join that cluster",
				cfg.DataDir, ident.ClusterID, cfg.Join, clusterID)
		}
		ident.ClusterID = clusterID
	case ident.ClusterID == "" && cfg.Bootstrap:
		ident.ClusterID = journal.NewClusterID()
		if !cfg.Insecure {
			ident.ClusterSecret = hex.EncodeToString(journal.NewClusterSecret())
		}
	case ident.ClusterID == "":
		return nil, fmt.Errorf("data folder %s holds no cluster: start the first master with --bootstrap and the others with --join ADDR", cfg.DataDir)
	}
	if ident.NodeID == "" {
		ident.NodeID = cfg.ID
	}
	m.ident = ident
	root, err := persistence.NewLocal(cfg.UFSRoot)
	if err != nil {
		return nil, err
	}
	if n, err := root.RemoveInterruptedWrites(time.Hour); err != nil {
		log.Warn("remove interrupted UFS writes", "err", err)
	} else if n > 0 {
		log.Info("removed interrupted UFS writes", "files", n)
	}
	m.ufsRoot = root.Dir()
	root.Close()

	jc := cfg.Journal
	jc.NodeID, jc.Dir, jc.RaftBind, jc.Bootstrap = cfg.ID, cfg.DataDir, cfg.RaftAddr, cfg.Bootstrap
	if cfg.RaftAdvertise != "" {
		jc.RaftAdvertise = cfg.RaftAdvertise
	}
	jc.Logger, jc.Registerer = cfg.Logger, m.srv.Registry()
	jc.ServerTLS, jc.ClientTLS = serverTLS, clientTLS
	// The raft port admits only peers that prove they know the cluster
	// secret. A master about to join learns it from the leader; until then
	// it uses a throwaway one, so that nobody can speak raft to it.
	needSecret := false
	if !cfg.Insecure {
		if jc.ClusterSecret, err = ident.Secret(); err != nil {
			return nil, err
		}
		if jc.ClusterSecret == nil {
			if cfg.Join == "" {
				return nil, fmt.Errorf("data folder %s holds no cluster secret (the master ran with --insecure): run it with --insecure again, or join it to a cluster anew with an empty folder", cfg.DataDir)
			}
			jc.ClusterSecret, needSecret = journal.NewClusterSecret(), true
		}
	}
	if m.j, err = journal.Open(jc); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			m.j.Close()
		}
	}()
	if got := m.j.State().ClusterID(); got != "" && got != ident.ClusterID {
		return nil, fmt.Errorf("data folder %s holds the journal of cluster %s, but its identity.json says %s: the folder was tampered with; restore it or use an empty one",
			cfg.DataDir, got, ident.ClusterID)
	}
	if err := journal.WriteIdentity(cfg.DataDir, ident); err != nil {
		return nil, err
	}

	if err := m.srv.Listen(cfg.APIAddr); err != nil {
		return nil, err
	}
	if m.cfg.APIAdvertise == "" {
		m.cfg.APIAdvertise = m.srv.Addr()
	}
	m.metrics = newMetrics(m, m.srv.Registry())
	m.mounts = persistence.NewMounts(persistence.NewMetrics(m.srv.Registry()))
	if cfg.Insecure {
		m.checker = auth.Insecure(m.srv.Registry())
		log.Warn("--insecure: this master checks no token; anyone who reaches its API may do anything")
	} else {
		m.checker = auth.NewChecker(verifier{m}, m.srv.Registry())
	}
	m.liveness = newLiveness(m)
	m.leases = &leaseService{m: m, claimed: map[[2]uint64]bool{}}
	m.procs = m.leaderProcs()
	m.j.HandleCalls(m.handleCall)
	opts := append(apiserver.HandlerOptions(), connect.WithInterceptors(m.srv.LimitStreams(cfg.MaxStreams), readInterceptor{m}))
	m.srv.Handle(cairnv1connect.NewClusterServiceHandler(&clusterService{m}, opts...))
	m.srv.Handle(cairnv1connect.NewOperatorServiceHandler(&operatorService{m}, opts...))
	m.srv.Handle(cairnv1connect.NewEventServiceHandler(&eventService{m}, opts...))
	m.srv.Handle(cairnv1connect.NewNamespaceServiceHandler(&namespaceService{m}, opts...))
	m.srv.Handle(cairnv1connect.NewJobServiceHandler(&jobService{m}, opts...))
	m.srv.Handle(cairnv1connect.NewLeaseServiceHandler(m.leases, opts...))
	m.srv.Handle(cairnv1connect.NewAuthServiceHandler(&authService{m}, opts...))
	m.j.OnLeader("advertise", m.advertise)
	m.j.OnLeader("liveness", m.liveness.run)
	m.j.OnLeader("mount", m.mount)
	m.j.OnLeader("leases", m.runLeases)
	m.j.OnLeader("rebalance", m.runRebalance)
	m.j.OnLeader("retention", m.runRetention)
	m.j.OnLeader("write-timeout", m.runWriteTimeout)
	m.j.OnLeader("cleanup", m.runCleanupController)
	m.j.OnLeader("persist", m.runPersistScheduler)
	m.j.OnLeader("persist-check", m.runPersistChecker)
	m.j.OnLeader("upload-mapping", m.journalMapping)
	m.j.OnLeader("upload-sweep", m.runUploadSweep)
	m.j.OnLeader("tokens", m.journalTokens)
	m.srv.HandleFunc(CachePath, http.HandlerFunc(m.cacheAPI))
	if serverTLS != nil {
		m.srv.UseTLS(serverTLS)
	}
	m.srv.Serve(m.checker.Wrap)
	m.srv.SetServing(true)
	ok = true

	if cfg.Join != "" && (!m.isMember() || needSecret) {
		if err := m.join(ctx); err != nil {
			m.Close()
			return nil, err
		}
	}
	log.Info("master started", "api", m.cfg.APIAdvertise, "raft", m.j.RaftAddress(), "cluster", ident.ClusterID,
		"start_applied_index", m.j.StartAppliedIndex())
	return m, nil
}

// Addr is the API address this master advertises.
func (m *Master) Addr() string { return m.cfg.APIAdvertise }

// RaftAddr is the raft transport's address.
func (m *Master) RaftAddr() string { return m.j.RaftAddress() }

// ClusterID is the id of the cluster this master belongs to.
func (m *Master) ClusterID() string { return m.ident.ClusterID }

// Journal exposes the master's journal (the dev command and tests use it).
func (m *Master) Journal() *journal.Journal { return m.j }

// Close stops serving and closes the journal.
func (m *Master) Close() error {
	var err error
	m.once.Do(func() {
		close(m.stop)
		m.srv.SetServing(false)
		serr := m.srv.Close(2 * time.Second)
		jerr := m.j.Close()
		var merr error
		if m.mounts != nil {
			merr = m.mounts.Close()
		}
		err = errors.Join(serr, jerr, merr)
		m.log.Info("master stopped")
	})
	return err
}
