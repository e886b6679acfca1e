package journal

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnhq/cairn/fsm"
)

// Config configures a journal node.
type Config struct {
	// NodeID is this master's raft server id.
	NodeID string
	// Dir is the master's data folder.
	Dir string
	// RaftBind is the host:port the raft transport listens on.
	RaftBind string
	// RaftAdvertise is the address peers dial; RaftBind when empty. A
	// host name is kept as it is and resolved by every dial.
	RaftAdvertise string
	// Bootstrap makes this node a one-voter cluster when it has no state yet.
	Bootstrap bool

	// Raft timing. Zero values take the defaults below.
	HeartbeatTimeout   time.Duration // default 500ms
	ElectionTimeout    time.Duration // default 500ms
	LeaderLeaseTimeout time.Duration // default 250ms
	CommitTimeout      time.Duration // default 10ms

	// MaxBatchEvents caps the events gathered into one raft entry; 1 turns
	// application-level batching off (one proposal per entry). Default 4096.
	MaxBatchEvents int
	// MaxInflightEntries caps the raft entries proposed but not yet
	// committed. While the cap is reached, new proposals wait and the next
	// entry gathers all of them: under load, batches grow instead of the
	// queue. Default 2 (2 gave 1.06–1.29× the events/s of 4 at 64 and
	// 1000 proposers, with entries of ~17 events instead of ~10: every entry
	// costs a log write and two fdatasyncs on each node). Unused when
	// batching is off.
	MaxInflightEntries int
	// MaxAppendEntries caps entries per raft append. Default 256.
	MaxAppendEntries int
	// SnapshotThreshold is the number of entries between raft snapshots.
	// Default 8192.
	SnapshotThreshold uint64
	// SnapshotInterval is how often raft checks whether to snapshot.
	// Default 30s.
	SnapshotInterval time.Duration
	// TrailingLogs is how many entries are kept after a snapshot. Default 10240.
	TrailingLogs uint64

	// LogStore picks the raft log's storage: "wal" (hashicorp/raft-wal:
	// append-only segment files, one fdatasync per append) or "bolt"
	// (raft-boltdb v2 on bbolt: a B+tree, two fdatasyncs per append). ""
	// keeps what the data folder already has and makes a new one bolt: a
	// WAL folder cannot be opened again once raft has cleared a log suffix
	// in it (hashicorp/raft-wal#31, chooseLogStore).
	LogStore string
	// Transport replaces the TCP transport (in-memory transports in unit
	// tests); RaftBind is then unused.
	Transport raft.Transport
	// ClusterSecret is what every connection to the raft port proves it
	// knows (peerauth.go); nil: no proof (--insecure). A master that joins
	// learns it from the leader (SetClusterSecret).
	ClusterSecret []byte
	// ServerTLS and ClientTLS put the raft port under TLS (both or
	// neither); with client certificates required, peers must also present
	// one the CA signed.
	ServerTLS, ClientTLS *tls.Config

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultElectionTimeout is the raft election timeout when Config leaves
// it zero.
const DefaultElectionTimeout = 500 * time.Millisecond

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HeartbeatTimeout, 500*time.Millisecond)
	def(&c.ElectionTimeout, DefaultElectionTimeout)
	def(&c.LeaderLeaseTimeout, 250*time.Millisecond)
	def(&c.CommitTimeout, 10*time.Millisecond)
	def(&c.SnapshotInterval, 30*time.Second)
	if c.MaxBatchEvents <= 0 {
		c.MaxBatchEvents = 4096
	}
	if c.MaxInflightEntries <= 0 {
		c.MaxInflightEntries = 2
	}
	if c.MaxAppendEntries <= 0 {
		c.MaxAppendEntries = 256
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.RaftAdvertise == "" {
		c.RaftAdvertise = c.RaftBind
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
}

// Journal is one master's raft node and state machine.
type Journal struct {
	cfg      Config
	log      *slog.Logger
	raft     *raft.Raft
	machine  *fsm.Machine
	logs     raft.LogStore
	logStore *logStore // nil until Open opened it
	stable   raft.StableStore
	snaps    *raft.FileSnapshotStore
	trans    raft.Transport
	fwd      *forwarder // nil with an injected Transport: no forwarding
	mux      *muxLayer  // nil with an injected Transport
	calls    atomic.Pointer[CallHandler]
	// leaderReads and followerReads batch read-index requests.
	leaderReads, followerReads readBatcher
	metrics                    *metrics
	ready                      chan struct{} // closed once raft runs

	startApplied  uint64
	proposals     chan *proposal
	inflight      chan struct{}
	pending       chan pendingEntry
	lastStamp     atomic.Int64
	leaderFns     []leaderFn
	leaderMu      sync.Mutex
	leaderChanged chan struct{}
	// leaderGen counts this node's leadership changes (up on gaining and
	// on losing it); readyGen is the generation whose leadership has
	// committed an entry of its term (readyCh is closed when it moves).
	leaderGen atomic.Uint64
	readyGen  atomic.Uint64
	readyCh   chan struct{}
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// ErrNotLeader is returned by writes on a node that is not the leader.
var ErrNotLeader = errors.New("this master is not the raft leader")

// Open opens (or creates) the journal in cfg.Dir and starts raft. See the
// package documentation for what it checks before raft starts.
func Open(cfg Config) (*Journal, error) {
	cfg.setDefaults()
	if cfg.NodeID == "" {
		return nil, errors.New("journal: node id is empty")
	}
	log := cfg.Logger.With("component", "journal", "node", cfg.NodeID)
	raftDir := filepath.Join(cfg.Dir, "raft")
	if err := os.MkdirAll(raftDir, 0o755); err != nil {
		return nil, fmt.Errorf("open journal %s: %w", cfg.Dir, err)
	}
	ident, err := ReadIdentity(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if ident.NodeID != "" && ident.NodeID != cfg.NodeID {
		return nil, fmt.Errorf("data folder %s belongs to master %q of cluster %s, not to %q: start it with --id %s or use another folder",
			cfg.Dir, ident.NodeID, ident.ClusterID, cfg.NodeID, ident.NodeID)
	}

	j := &Journal{
		cfg:           cfg,
		log:           log,
		proposals:     make(chan *proposal, 8192),
		inflight:      make(chan struct{}, cfg.MaxInflightEntries),
		pending:       make(chan pendingEntry, 1024),
		leaderChanged: make(chan struct{}),
		readyCh:       make(chan struct{}),
		stop:          make(chan struct{}),
		ready:         make(chan struct{}),
	}
	ok := false
	defer func() {
		if !ok {
			close(j.stop) // releases forward connections waiting for raft
			if c, isCloser := j.trans.(interface{ Close() error }); isCloser {
				c.Close()
			}
			j.closeStores()
		}
	}()

	j.leaderReads.round, j.followerReads.round = j.leaderReadRound, j.followerReadRound
	hlog := newHCLogger(cfg.Logger, "raft")
	if j.snaps, err = raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hlog); err != nil {
		return nil, fmt.Errorf("open snapshot store in %s: %w", raftDir, err)
	}
	logStore, err := chooseLogStore(raftDir, cfg.LogStore)
	if err != nil {
		return nil, err
	}
	if j.logStore, err = openLogStore(raftDir, logStore); err != nil {
		return nil, err
	}
	store := j.logStore.log
	j.stable = j.logStore.stable
	if j.logs, err = raft.NewLogCache(1024, store); err != nil {
		return nil, err
	}
	if err := j.openMachine(); err != nil {
		return nil, err
	}
	j.startApplied = j.machine.AppliedIndex()
	j.lastStamp.Store(j.machine.LastTime().UnixNano())

	j.metrics = newMetrics(j, cfg.Registerer)
	if cfg.Transport != nil {
		j.trans = cfg.Transport
	} else {
		adv, err := advertiseAddr(cfg.RaftAdvertise)
		if err != nil {
			return nil, err
		}
		layer, err := listenMux(cfg.RaftBind, adv, j.serveForward, cfg.ServerTLS, cfg.ClientTLS, cfg.ClusterSecret,
			func(reason string) { j.metrics.raftRefused.WithLabelValues(reason).Inc() })
		if err != nil {
			return nil, fmt.Errorf("raft transport on %s: %w", cfg.RaftBind, err)
		}
		j.mux = layer
		j.trans = raft.NewNetworkTransportWithLogger(layer, 5, 10*time.Second, newHCLogger(cfg.Logger, "raft-net"))
		j.fwd = &forwarder{j: j, dial: layer.dialContext}
	}

	notify := make(chan bool, 16)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.MaxAppendEntries = cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NoSnapshotRestoreOnStart = true
	rc.NotifyCh = notify
	rc.Logger = hlog
	rc.NoLegacyTelemetry = true

	if j.raft, err = raft.NewRaft(rc, &raftFSM{j: j}, j.logs, j.stable, j.snaps, j.trans); err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	ok = true
	close(j.ready)
	obs := make(chan raft.Observation, 16)
	j.raft.RegisterObserver(raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, isLeader := o.Data.(raft.LeaderObservation)
		return isLeader
	}))

	if cfg.Bootstrap {
		has, err := raft.HasExistingState(j.logs, j.stable, j.snaps)
		if err != nil {
			j.Close()
			return nil, fmt.Errorf("check raft state: %w", err)
		}
		if !has {
			f := j.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
				Suffrage: raft.Voter, ID: raft.ServerID(cfg.NodeID), Address: j.trans.LocalAddr(),
			}}})
			if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
				j.Close()
				return nil, fmt.Errorf("bootstrap: %w", err)
			}
			log.Info("bootstrapped a new cluster with this master as its only voter")
		}
	}

	j.wg.Add(4)
	go j.runSyncer()
	go j.runBatcher()
	go j.runCompleter()
	go j.runLeadership(notify, obs)
	if j.fwd != nil {
		go j.fwd.watchLeader()
	}
	log.Info("journal opened", "dir", cfg.Dir, "raft", string(j.trans.LocalAddr()),
		"applied_index", j.startApplied, "last_log_index", j.raft.LastIndex())
	return j, nil
}

// openMachine opens the state store and brings it at least up to the newest
// raft snapshot (see the package documentation).
func (j *Journal) openMachine() error {
	stateDir := filepath.Join(j.cfg.Dir, "state")
	m, err := fsm.Open(stateDir, j.cfg.Logger)
	if err != nil {
		aside := fmt.Sprintf("%s.damaged-%d", stateDir, time.Now().Unix())
		j.log.Error("state store cannot be opened; moving it aside and rebuilding it from the snapshot and the log",
			"dir", stateDir, "moved_to", aside, "err", err)
		if rerr := os.Rename(stateDir, aside); rerr != nil {
			return fmt.Errorf("open state: %w; moving it aside: %v", err, rerr)
		}
		if m, err = fsm.Open(stateDir, j.cfg.Logger); err != nil {
			return err
		}
	}
	j.machine = m
	snaps, err := j.snaps.List()
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	var snapIndex uint64
	if len(snaps) > 0 {
		snapIndex = snaps[0].Index
	}
	if m.AppliedIndex() < snapIndex {
		meta, rc, err := j.snaps.Open(snaps[0].ID)
		if err != nil {
			return fmt.Errorf("open snapshot %s: %w", snaps[0].ID, err)
		}
		j.log.Info("state store is behind the newest snapshot; restoring it",
			"state_applied_index", m.AppliedIndex(), "snapshot_index", meta.Index)
		err = m.Restore(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("restore snapshot %s into the state store: %w", meta.ID, err)
		}
	}
	last, err := j.logs.LastIndex()
	if err != nil {
		return fmt.Errorf("read raft log: %w", err)
	}
	if top := max(last, snapIndex); m.AppliedIndex() > top {
		return fmt.Errorf("state store is at index %d but the raft log and snapshots end at %d: %s was lost or replaced; put it back, or remove %s to rebuild the state from the log",
			m.AppliedIndex(), top, filepath.Join(j.cfg.Dir, "raft"), stateDir)
	}
	return nil
}

// Close stops raft and closes the stores. It is safe to call twice.
func (j *Journal) Close() error {
	var err error
	j.closeOnce.Do(func() {
		close(j.stop)
		if j.fwd != nil {
			j.fwd.close()
		}
		if j.raft != nil {
			err = j.raft.Shutdown().Error()
		}
		j.wg.Wait()
		if c, ok := j.trans.(interface{ Close() error }); ok {
			c.Close()
		}
		j.closeStores()
	})
	return err
}

// syncInterval bounds how long applied state stays only in memory: a
// master killed with kill -9 restarts at most this far behind what it had
// applied, and re-applies that from the raft log.
const syncInterval = 50 * time.Millisecond

// runSyncer makes applied state durable every syncInterval while it moves.
func (j *Journal) runSyncer() {
	defer j.wg.Done()
	t := time.NewTicker(syncInterval)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
		}
		if j.machine.AppliedIndex() > j.machine.DurableIndex() {
			if err := j.machine.Sync(); err != nil {
				j.log.Error("sync the state store", "err", err)
			}
		}
	}
}

func (j *Journal) closeStores() {
	if j.machine != nil {
		if err := j.machine.Sync(); err != nil {
			j.log.Warn("sync the state store on close", "err", err)
		}
		j.machine.Close()
	}
	if j.logStore != nil {
		j.logStore.close()
	}
}

// State is the state machine the journal applies to.
func (j *Journal) State() *fsm.Machine { return j.machine }

// NodeID is this master's raft server id.
func (j *Journal) NodeID() string { return j.cfg.NodeID }

// RaftAddress is the address peers reach this node's raft transport at.
func (j *Journal) RaftAddress() string { return string(j.trans.LocalAddr()) }

// StartAppliedIndex is the applied index the state store held when Open
// ran: raft replays nothing at or below it.
func (j *Journal) StartAppliedIndex() uint64 { return j.startApplied }

// Leader returns the current leader's id and raft address, empty when no
// leader is known.
func (j *Journal) Leader() (id, addr string) {
	a, i := j.raft.LeaderWithID()
	return string(i), string(a)
}

// IsLeader reports whether this node is the raft leader.
func (j *Journal) IsLeader() bool { return j.raft.State() == raft.Leader }

// RaftState is this node's raft role.
func (j *Journal) RaftState() raft.RaftState { return j.raft.State() }

// Term is the current raft term.
func (j *Journal) Term() uint64 { return j.raft.CurrentTerm() }

// LeaderChanged returns a channel closed the next time the known leader
// changes (including to none).
func (j *Journal) LeaderChanged() <-chan struct{} {
	j.leaderMu.Lock()
	defer j.leaderMu.Unlock()
	return j.leaderChanged
}

// WaitLeader waits until some leader is known and returns its id, or
// fails when ctx ends first.
func (j *Journal) WaitLeader(ctx context.Context) (string, error) {
	for {
		ch := j.LeaderChanged()
		if id, _ := j.Leader(); id != "" {
			return id, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", fmt.Errorf("no raft leader: %w", ctx.Err())
		case <-j.stop:
			return "", raft.ErrRaftShutdown
		}
	}
}

// SnapshotIndex is the index of the newest raft snapshot on disk, 0 if none.
func (j *Journal) SnapshotIndex() uint64 {
	snaps, err := j.snaps.List()
	if err != nil || len(snaps) == 0 {
		return 0
	}
	return snaps[0].Index
}
