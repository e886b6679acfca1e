// Package worker is the worker process: it keeps a stable id in its data
// folder, registers with the masters and heartbeats to them, follows the
// cluster map epoch by epoch, and serves its block cache (DataService).
package worker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/auth"
	"github.com/cairnhq/cairn/blockstore"
	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

func timeOfNanos(ns int64) time.Time { return time.Unix(0, ns) }

// Config configures a worker.
type Config struct {
	// DataDir is the worker's folder; it keeps the worker's id in worker-id.
	DataDir string
	// ID names a worker whose folder has no id yet; empty picks one. A
	// folder that already has an id keeps it, and a different ID is refused.
	ID string
	// APIAddr is where the worker's API listens; APIAdvertise is the
	// address others reach (the bound address when empty).
	APIAddr      string
	APIAdvertise string
	// Masters are the masters' API addresses.
	Masters []string
	// CapacityBytes is the cache capacity the worker offers.
	CapacityBytes uint64
	// BlockSize is the block size of files cached here; 4 MiB when zero.
	BlockSize int64
	// MaxStreams caps the data streams this worker serves at once;
	// apiserver.DefaultMaxStreams when 0.
	MaxStreams int
	// Token is the worker's token (role worker), sent with every call to
	// the masters and to other workers.
	Token string
	// Insecure serves every call without checking tokens (logged, and
	// cairn_auth_insecure is 1). Without it the worker checks every call's
	// token against the masters' table (AuthService.WatchTokens), and
	// needs a Token of its own.
	Insecure bool
	// TLS serves the API with TLS, and speaks TLS to the masters and to
	// other workers (the certificate doubles as a client certificate).
	TLS    apiserver.TLSFiles
	Logger *slog.Logger
}

// Worker is a running worker.
type Worker struct {
	cfg   Config
	id    string
	log   *slog.Logger
	srv   *apiserver.Server
	store *blockstore.Store
	data  *dataMetrics
	ufs   *ufsAccess

	peers    map[string]cairnv1connect.DataServiceClient
	peerHTTP *http.Client
	checker  *auth.Checker
	// clientTLS is how the worker speaks TLS to others; nil: plain.
	clientTLS *tls.Config
	tokens    atomic.Pointer[auth.Table] // the masters' token table, nil until it arrives
	masters   *client.Client
	current   atomic.Pointer[cairnv1.ClusterMap]
	changed   chan struct{}
	mu        sync.Mutex
	state     atomic.Int32
	stop      chan struct{}
	wg        sync.WaitGroup
	// registered is closed once the worker has first registered: the
	// masters refuse its lease calls before.
	registered        chan struct{}
	firstRegistration sync.Once
	once              sync.Once

	// Jobs: the task metrics; the rebalance tallies by epoch; the newest
	// epoch whose rebalance delivered here (misses stop asking the previous
	// owners); the map before the current one; moveMu orders rebalance
	// copies arriving for one path (striped by path hash).
	tm  *taskMetrics
	mp  *multiparts
	rep *reporter
	// persistedCursor is where runPersistedSync's next pass starts (only
	// that goroutine uses it).
	persistedCursor string
	// drifts is the journal's count of persisted files taken back (UFS
	// copy gone or changed), as the last heartbeat said; a change wakes
	// runRepin through repin.
	drifts atomic.Uint64
	repin  chan struct{}
	// partialOff: the cluster setting cache.partial is off (last heartbeat).
	partialOff atomic.Bool
	// noBulk: target address → when it said it has no bulk write
	// endpoint (an older release).
	noBulk       sync.Map
	tmu          sync.Mutex
	tallies      map[tallyKey]*tally
	neighborDone atomic.Uint64
	prev         atomic.Pointer[cairnv1.ClusterMap]
	moveMu       [64]sync.Mutex
	layoutMu     sync.Mutex
	layouts      []epochLayout // see layoutOf

	epochGauge    prometheus.Gauge
	hbFailures    prometheus.Counter
	registrations prometheus.Counter
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Start reads or creates the worker's id, serves its API and starts
// registering, heartbeating and following the map in the background.
func Start(cfg Config) (*Worker, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DataDir == "" {
		return nil, errors.New("a worker needs --data")
	}
	if len(cfg.Masters) == 0 {
		return nil, errors.New("a worker needs --masters")
	}
	if cfg.CapacityBytes < 1<<20 {
		return nil, fmt.Errorf("capacity %d bytes is below the 1 MiB minimum", cfg.CapacityBytes)
	}
	if cfg.Token == "" && !cfg.Insecure {
		return nil, errors.New("a worker needs a token with the worker role: --token-file FILE (an admin makes one with: cairn auth token create --name workers --role worker); or run every process with --insecure")
	}
	id, err := loadID(cfg.DataDir, cfg.ID)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("worker", id)
	serverTLS, clientTLS, err := cfg.TLS.Configs()
	if err != nil {
		return nil, err
	}
	w := &Worker{
		cfg: cfg, id: id, log: log,
		srv:        apiserver.New(log),
		masters:    client.New(cfg.Masters, client.WithRetryBudget(5*time.Second), client.WithToken(cfg.Token), client.WithTLS(clientTLS)),
		clientTLS:  clientTLS,
		changed:    make(chan struct{}),
		stop:       make(chan struct{}),
		registered: make(chan struct{}),
		repin:      make(chan struct{}, 1),
	}
	w.current.Store(&cairnv1.ClusterMap{})
	w.registerMetrics()
	if w.store, err = blockstore.Open(cfg.DataDir, blockstore.Options{
		Capacity: int64(cfg.CapacityBytes), BlockSize: cfg.BlockSize, Logger: log}); err != nil {
		return nil, err
	}
	w.data = newDataMetrics(w, w.srv.Registry())
	w.ufs = newUFSAccess(w, w.srv.Registry())
	w.tm = newTaskMetrics(w.srv.Registry())
	w.mp = newMultiparts(w.srv.Registry())
	w.rep = newReporter(w, w.srv.Registry())
	if err := w.srv.Listen(cfg.APIAddr); err != nil {
		w.store.Close()
		return nil, err
	}
	if w.cfg.APIAdvertise == "" {
		w.cfg.APIAdvertise = w.srv.Addr()
	}
	ds := &dataService{w: w}
	w.srv.Handle(cairnv1connect.NewDataServiceHandler(ds, append(apiserver.DataHandlerOptions(), connect.WithInterceptors(w.srv.LimitStreams(cfg.MaxStreams)))...))
	w.srv.HandleFunc(RawReadPath, http.HandlerFunc(ds.rawRead))
	w.srv.HandleFunc(RawWritePath, http.HandlerFunc(ds.rawWrite))
	if cfg.Insecure {
		w.checker = auth.Insecure(w.srv.Registry())
		log.Warn("--insecure: this worker checks no token; anyone who reaches its API may read and write its data")
	} else {
		w.checker = auth.NewChecker(tokenTable{w}, w.srv.Registry())
	}
	if serverTLS != nil {
		w.srv.UseTLS(serverTLS)
	}
	w.srv.Serve(w.checker.Wrap)
	w.srv.SetServing(true)
	w.wg.Add(8)
	go w.runTokens()
	go w.runPersistedSync()
	go w.runSettle()
	go w.runRepin()
	go w.runMultipartJanitor()
	go w.runMembership()
	go w.runWatch()
	go w.runLeases()
	log.Info("worker started", "api", w.cfg.APIAdvertise, "masters", strings.Join(cfg.Masters, ","), "capacity_bytes", cfg.CapacityBytes)
	return w, nil
}

// loadID returns the id kept in dir/worker-id, creating it (from want, or a
// random one) when the folder is new.
func loadID(dir, want string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create data folder: %w", err)
	}
	path := filepath.Join(dir, "worker-id")
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.TrimSpace(string(b))
		if !idPattern.MatchString(id) {
			return "", fmt.Errorf("%s holds %q, which is not a worker id: fix or remove the file", path, id)
		}
		if want != "" && want != id {
			return "", fmt.Errorf("data folder %s belongs to worker %s, not %s", dir, id, want)
		}
		return id, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("read worker id: %w", err)
	}
	id := want
	if id == "" {
		var r [6]byte
		if _, err := rand.Read(r[:]); err != nil {
			return "", err
		}
		id = "w-" + hex.EncodeToString(r[:])
	}
	if !idPattern.MatchString(id) {
		return "", fmt.Errorf("worker id %q must match %s", id, idPattern)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write worker id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write worker id: %w", err)
	}
	return id, nil
}

// peer returns a DataService client for another worker.
func (w *Worker) peer(addr string) cairnv1connect.DataServiceClient {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.initPeersLocked()
	c, ok := w.peers[addr]
	if !ok {
		c = cairnv1connect.NewDataServiceClient(w.peerHTTP, w.peerURL(addr), connect.WithAcceptCompression("gzip", nil, nil))
		w.peers[addr] = c
	}
	return c
}

// peerClient returns the HTTP client for other workers' endpoints.
func (w *Worker) peerClient() *http.Client {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.initPeersLocked()
	return w.peerHTTP
}

func (w *Worker) initPeersLocked() {
	if w.peers == nil {
		w.peers = make(map[string]cairnv1connect.DataServiceClient)
		w.peerHTTP = &http.Client{Transport: auth.Transport(w.cfg.Token, apiserver.WithTLS(apiserver.HTTP1Transport(), w.clientTLS))}
	}
}

// peerURL is the base URL of another worker's API.
func (w *Worker) peerURL(addr string) string { return w.cfg.TLS.Scheme() + "://" + addr }

// ID is the worker's stable id.
func (w *Worker) ID() string { return w.id }

// Addr is the API address the worker advertises.
func (w *Worker) Addr() string { return w.cfg.APIAdvertise }

// Map is the newest cluster map the worker has seen (epoch 0 before the
// first).
func (w *Worker) Map() *cairnv1.ClusterMap { return w.current.Load() }

// State is the worker's state as the leader last answered it.
func (w *Worker) State() cairnv1.WorkerState { return cairnv1.WorkerState(w.state.Load()) }

// MapChanged returns a channel closed when a newer map arrives.
func (w *Worker) MapChanged() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// Close stops heartbeating and serving. The worker stays in the map until
// the leader's heartbeat timeout marks it DOWN.
func (w *Worker) Close() error {
	var err error
	w.once.Do(func() {
		close(w.stop)
		w.wg.Wait()
		err = errors.Join(w.srv.Close(2*time.Second), w.store.Close())
		w.ufs.close()
		w.log.Info("worker stopped")
	})
	return err
}

func (w *Worker) registerMetrics() {
	w.epochGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cairn_worker_epoch", Help: "Epoch of the newest cluster map this worker follows."})
	w.hbFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_worker_heartbeat_failures_total", Help: "Heartbeats no master accepted."})
	w.registrations = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_worker_registrations_total", Help: "Times this worker registered with the cluster."})
	w.srv.Registry().MustRegister(w.epochGauge, w.hbFailures, w.registrations,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cairn_worker_partial_caching",
			Help: "1 while a read of part of a file that is not cached caches the whole file (the cluster setting cache.partial, as the last heartbeat said), else 0.",
		}, func() float64 {
			if w.partialOff.Load() {
				return 0
			}
			return 1
		}))
}

// ctx returns a context cancelled when the worker closes.
func (w *Worker) ctx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-w.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// sleep waits d or until the worker closes; it reports whether to go on.
func (w *Worker) sleep(d time.Duration) bool {
	select {
	case <-w.stop:
		return false
	case <-time.After(d):
		return true
	}
}

// runMembership registers, then heartbeats at the interval the leader
// asks for, registering again whenever the leader does not know it.
func (w *Worker) runMembership() {
	defer w.wg.Done()
	ctx, cancel := w.ctx()
	defer cancel()
	interval := time.Second
	registered := false
	for {
		if !registered {
			resp, err := client.Call(ctx, w.masters, func(ctx context.Context, s client.Services) (*cairnv1.RegisterWorkerResponse, error) {
				r, err := s.Cluster.RegisterWorker(ctx, connect.NewRequest(&cairnv1.RegisterWorkerRequest{
					WorkerId: w.id, Address: w.cfg.APIAdvertise, CapacityBytes: w.cfg.CapacityBytes}))
				if err != nil {
					return nil, err
				}
				return r.Msg, nil
			})
			if err != nil {
				w.log.Warn("register with the masters", "err", err)
				if !w.sleep(time.Second) {
					return
				}
				continue
			}
			registered = true
			w.firstRegistration.Do(func() { close(w.registered) })
			w.registrations.Inc()
			w.state.Store(int32(resp.GetWorker().GetState()))
			if d := resp.GetHeartbeatInterval().AsDuration(); d > 0 {
				interval = d
			}
			w.log.Info("registered", "state", resp.GetWorker().GetState().String(), "epoch", resp.GetEpoch(), "heartbeat_interval", interval)
		}
		if !w.sleep(interval) {
			return
		}
		resp, err := client.Msg(ctx, w.masters, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.HeartbeatResponse], error) {
			return s.Cluster.Heartbeat(ctx, connect.NewRequest(&cairnv1.HeartbeatRequest{WorkerId: w.id, Epoch: w.Map().GetEpoch()}))
		})
		switch {
		case connect.CodeOf(err) == connect.CodeNotFound || connect.CodeOf(err) == connect.CodeFailedPrecondition:
			w.log.Warn("the leader does not know this worker as a member; registering again", "err", err)
			registered = false
		case err != nil:
			w.hbFailures.Inc()
			w.log.Warn("heartbeat", "err", err)
		default:
			if prev := w.State(); prev != resp.GetState() {
				w.log.Info("worker state changed", "from", prev.String(), "to", resp.GetState().String())
			}
			w.state.Store(int32(resp.GetState()))
			w.partialOff.Store(resp.GetPartialCachingOff())
			if d := resp.GetUfsDrifts(); w.drifts.Swap(d) != d {
				select {
				case w.repin <- struct{}{}:
				default: // a pass is due already
				}
			}
		}
	}
}

// runWatch follows the cluster map from whichever master answers.
func (w *Worker) runWatch() {
	defer w.wg.Done()
	ctx, cancel := w.ctx()
	defer cancel()
	masters := w.masters.Masters()
	for i := 0; ; i++ {
		s := masters[i%len(masters)]
		stream, err := s.Cluster.WatchClusterMap(ctx, connect.NewRequest(&cairnv1.WatchClusterMapRequest{AfterEpoch: w.Map().GetEpoch()}))
		if err == nil {
			for stream.Receive() {
				w.adopt(stream.Msg().GetMap(), s.Addr)
			}
			err = stream.Err()
			stream.Close()
		}
		if ctx.Err() != nil {
			return
		}
		w.log.Debug("map watch ended; trying the next master", "master", s.Addr, "err", err)
		if !w.sleep(200 * time.Millisecond) {
			return
		}
	}
}

// adopt makes cm the current map if it is newer.
func (w *Worker) adopt(cm *cairnv1.ClusterMap, from string) {
	if cm.GetEpoch() <= w.Map().GetEpoch() {
		return
	}
	w.current.Store(cm)
	w.epochGauge.Set(float64(cm.GetEpoch()))
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
	w.log.Info("following a new epoch", "epoch", cm.GetEpoch(), "active_workers", len(cm.GetWorkers()),
		"replication", cm.GetReplication(), "cause", cm.GetCause(), "from", from)
}

// tokenTable is the masters' token table as this worker last received it.
type tokenTable struct{ w *Worker }

func (t tokenTable) Principal(hash []byte) (auth.Principal, bool, error) {
	return t.w.tokens.Load().Principal(hash)
}

// runTokens follows the masters' token table (AuthService.WatchTokens), so
// that the worker checks the tokens of the calls it serves, and refuses a
// revoked one as soon as a master tells it.
func (w *Worker) runTokens() {
	defer w.wg.Done()
	if w.cfg.Insecure {
		return
	}
	ctx, cancel := w.ctx()
	defer cancel()
	masters := w.masters.Masters()
	for i := 0; ; i++ {
		s := masters[i%len(masters)]
		stream, err := s.Auth.WatchTokens(ctx, connect.NewRequest(&cairnv1.WatchTokensRequest{}))
		if err == nil {
			for stream.Receive() {
				w.tokens.Store(auth.NewTable(stream.Msg().GetTokens()))
			}
			err = stream.Err()
			stream.Close()
		}
		if ctx.Err() != nil {
			return
		}
		w.log.Debug("token watch ended; trying the next master", "master", s.Addr, "err", err)
		if !w.sleep(200 * time.Millisecond) {
			return
		}
	}
}
