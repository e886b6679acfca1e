package fsm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// Machine is the state machine over one pebble store. Apply, Snapshot and
// Restore are called by the journal (one at a time, as raft does); the read
// methods are safe to call from any goroutine at any time.
type Machine struct {
	dir string
	log *slog.Logger

	// mu guards db: readers hold it shared, Restore swaps the store under it
	// exclusively.
	mu sync.RWMutex
	db *pebble.DB

	applied   atomic.Uint64
	durable   atomic.Uint64
	lastTime  atomic.Int64
	clusterID atomic.Pointer[string]
	current   atomic.Pointer[cairnv1.ClusterMap]
	// tokens indexes the token table by hash (see tokens.go).
	tokens atomic.Pointer[map[string]*cairnv1.Token]

	// snaps counts snapshots being written; Restore waits for them.
	snaps sync.WaitGroup

	changedMu sync.Mutex
	changed   chan struct{}

	// queueHints speed up PendingTasks past the tombstones that leased
	// tasks leave at the front of a worker's queue (see hints.go).
	queueHints hints
}

// Open opens (or creates) the state store in dir. Leftovers of an
// interrupted Restore next to it are removed.
func Open(dir string, log *slog.Logger) (*Machine, error) {
	if log == nil {
		log = slog.Default()
	}
	for _, leftover := range []string{dir + ".restore", dir + ".old"} {
		if err := os.RemoveAll(leftover); err != nil {
			return nil, fmt.Errorf("remove leftover %s: %w", leftover, err)
		}
	}
	db, err := openPebble(dir, log)
	if err != nil {
		return nil, err
	}
	m := &Machine{dir: dir, log: log, db: db, changed: make(chan struct{})}
	if err := m.loadCaches(); err != nil {
		db.Close()
		return nil, err
	}
	return m, nil
}

// Close closes the store. The Machine must not be used afterwards.
func (m *Machine) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.db == nil {
		return nil
	}
	err := m.db.Close()
	m.db = nil
	return err
}

// Dir is the directory of the store.
func (m *Machine) Dir() string { return m.dir }

// loadCaches reads the applied index, time, cluster id and current map
// from the store into memory. Called with mu held or before m is shared.
func (m *Machine) loadCaches() error {
	applied, err := getRaw(m.db, keyApplied)
	if err != nil {
		return err
	}
	t, err := getRaw(m.db, keyTime)
	if err != nil {
		return err
	}
	id, err := getRaw(m.db, keyClusterID)
	if err != nil {
		return err
	}
	cm, err := currentMap(m.db)
	if err != nil {
		return err
	}
	m.applied.Store(u64(applied))
	// What a store holds when it is opened (or restored) is on disk.
	m.durable.Store(u64(applied))
	m.lastTime.Store(int64(u64(t)))
	sid := string(id)
	m.clusterID.Store(&sid)
	m.current.Store(cm)
	return m.loadTokens(m.db)
}

// currentMap reads the map at the current epoch; epoch 0 (nothing has
// happened yet) is an empty map with R = 1.
func currentMap(r pebble.Reader) (*cairnv1.ClusterMap, error) {
	e, err := getRaw(r, keyEpoch)
	if err != nil {
		return nil, err
	}
	epoch := u64(e)
	if epoch == 0 {
		return &cairnv1.ClusterMap{Epoch: 0, Replication: 1}, nil
	}
	cm := &cairnv1.ClusterMap{}
	ok, err := getProto(r, epochKey(epoch), cm)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("state store: current epoch %d has no map", epoch)
	}
	return cm, nil
}

// AppliedIndex is the raft index of the last applied entry.
func (m *Machine) AppliedIndex() uint64 { return m.applied.Load() }

// LastTime is the leader time of the last applied event (zero if none).
func (m *Machine) LastTime() time.Time {
	ns := m.lastTime.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// ClusterID is the journaled cluster id, empty until ClusterInitialized.
func (m *Machine) ClusterID() string { return *m.clusterID.Load() }

// ClusterMap is the map at the current epoch. The caller must not modify it.
func (m *Machine) ClusterMap() *cairnv1.ClusterMap { return m.current.Load() }

// Changed returns a channel that is closed the next time state changes
// (an Apply that applied something, or a Restore).
func (m *Machine) Changed() <-chan struct{} {
	m.changedMu.Lock()
	defer m.changedMu.Unlock()
	return m.changed
}

func (m *Machine) signal() {
	m.changedMu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.changedMu.Unlock()
}

// WaitApplied blocks until the applied index reaches index or ctx ends.
func (m *Machine) WaitApplied(ctx context.Context, index uint64) error {
	for {
		ch := m.Changed()
		if m.AppliedIndex() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for index %d (applied %d): %w", index, m.AppliedIndex(), ctx.Err())
		}
	}
}

// Sync makes everything applied so far durable on disk. Apply commits
// without fsync and pebble holds a partial WAL block in memory until a
// sync, so without Sync a killed process loses recent (harmless, the raft
// log re-applies them) but possibly many entries.
func (m *Machine) Sync() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.db == nil {
		return errClosed
	}
	applied := m.applied.Load()
	if err := m.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("sync state store: %w", err)
	}
	for {
		cur := m.durable.Load()
		if applied <= cur || m.durable.CompareAndSwap(cur, applied) {
			return nil
		}
	}
}

// DurableIndex is the applied index known to be on disk: the index a
// process killed now would restart from.
func (m *Machine) DurableIndex() uint64 { return m.durable.Load() }

var errClosed = errors.New("state store is closed")

// read runs fn with the store under the shared lock.
func (m *Machine) read(fn func(r pebble.Reader) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.db == nil {
		return errClosed
	}
	return fn(m.db)
}

// ClusterMapAt returns the map at epoch (0 means the current one) and
// whether such an epoch exists.
func (m *Machine) ClusterMapAt(epoch uint64) (*cairnv1.ClusterMap, bool, error) {
	cur := m.ClusterMap()
	if epoch == 0 || epoch == cur.GetEpoch() {
		return cur, true, nil
	}
	cm := &cairnv1.ClusterMap{}
	var ok bool
	err := m.read(func(r pebble.Reader) error {
		var err error
		ok, err = getProto(r, epochKey(epoch), cm)
		return err
	})
	return cm, ok, err
}

// Worker returns the journal's record of a worker and whether it exists.
func (m *Machine) Worker(id string) (*cairnv1.Worker, bool, error) {
	w := &cairnv1.Worker{}
	var ok bool
	err := m.read(func(r pebble.Reader) error {
		var err error
		ok, err = getProto(r, workerKey(id), w)
		return err
	})
	return w, ok, err
}

// Workers returns every worker the journal knows, sorted by id.
func (m *Machine) Workers() ([]*cairnv1.Worker, error) {
	var ws []*cairnv1.Worker
	err := m.read(func(r pebble.Reader) error {
		return scanProto(r, prefixWorker, func() *cairnv1.Worker { return &cairnv1.Worker{} },
			func(w *cairnv1.Worker) bool { ws = append(ws, w); return true })
	})
	return ws, err
}

// Masters returns every advertised master, sorted by id.
func (m *Machine) Masters() ([]*cairnv1.MasterAdvertised, error) {
	var ms []*cairnv1.MasterAdvertised
	err := m.read(func(r pebble.Reader) error {
		return scanProto(r, prefixMaster, func() *cairnv1.MasterAdvertised { return &cairnv1.MasterAdvertised{} },
			func(a *cairnv1.MasterAdvertised) bool { ms = append(ms, a); return true })
	})
	return ms, err
}

// Master returns one advertised master and whether it is known.
func (m *Machine) Master(id string) (*cairnv1.MasterAdvertised, bool, error) {
	a := &cairnv1.MasterAdvertised{}
	var ok bool
	err := m.read(func(r pebble.Reader) error {
		var err error
		ok, err = getProto(r, masterKey(id), a)
		return err
	})
	return a, ok, err
}
