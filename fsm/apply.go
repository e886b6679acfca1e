package fsm

import (
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// MaxReplication bounds the replication factor the state machine accepts.
const MaxReplication = 16

// Code classifies the outcome of applying one event.
type Code int

// Outcomes of applying an event. Anything but OK left the state unchanged.
const (
	OK Code = iota
	InvalidArgument
	NotFound
	FailedPrecondition
)

func (c Code) String() string {
	switch c {
	case OK:
		return "ok"
	case InvalidArgument:
		return "invalid argument"
	case NotFound:
		return "not found"
	case FailedPrecondition:
		return "failed precondition"
	}
	return fmt.Sprintf("code(%d)", int(c))
}

// Result is the outcome of one event: its code, a message for people when
// it was rejected, the epoch current after it, and what the event produced
// where it produces a number (FileCompleted: the new version; FileDeleted:
// how many files it removed).
type Result struct {
	Code    Code
	Message string
	Epoch   uint64
	Value   uint64
	// Repeat: the event changed nothing because what it asks for already
	// holds (JobStarted: an equal job runs, named by Value; TaskReported:
	// this lease and seq were applied before).
	Repeat bool
	// Stale (TaskReported): the lease was no longer current, so the
	// report's deltas were added and the rest of it ignored.
	Stale bool
	// Record is the record the event left, as applied, so that a caller
	// can answer without reading it back: the Worker (registration and
	// worker transitions), the Job (JobStarted; the running equal job on a
	// repeat), the Task (TaskLeased, TaskReported), the PendingWrite
	// (FileCreated), the File (FileCompleted, FileLoaded,
	// PersistRequested). Nil for other events and for rejections. Callers
	// must not modify it. Replicas hold equal records, not the same
	// pointers: compare results with Equal.
	Record proto.Message
}

// Equal reports whether two results say the same (their records compared
// by value).
func (r Result) Equal(o Result) bool {
	return r.Code == o.Code && r.Message == o.Message && r.Epoch == o.Epoch && r.Value == o.Value &&
		r.Repeat == o.Repeat && r.Stale == o.Stale && proto.Equal(r.Record, o.Record)
}

// with returns r carrying rec as its record.
func (r Result) with(rec proto.Message) Result {
	r.Record = rec
	return r
}

// Rejection is the error form of a rejected event.
type Rejection struct {
	Code    Code
	Message string
}

func (r *Rejection) Error() string { return r.Message }

// Err returns nil for OK and a *Rejection otherwise.
func (r Result) Err() error {
	if r.Code == OK {
		return nil
	}
	return &Rejection{Code: r.Code, Message: r.Message}
}

// Entry is one journal entry to apply: its raft index and its events (nil
// for entries that carry no events, such as raft configuration changes,
// whose index still counts as applied).
type Entry struct {
	Index  uint64
	Events []*cairnv1.Event
}

// Apply applies entries in order in one pebble batch and returns, per entry,
// the result of each of its events. Entries at or below the applied index
// are skipped (their result is nil). A storage failure panics: a replica
// that cannot write its state must stop rather than diverge.
func (m *Machine) Apply(entries []Entry) [][]Result {
	results := make([][]Result, len(entries))
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.db == nil {
		panic("fsm: apply on a closed state store")
	}
	applied := m.applied.Load()
	var tx *txn
	last := applied
	for i, e := range entries {
		if e.Index <= last {
			continue
		}
		if tx == nil {
			tx = m.newTxn()
		}
		res := make([]Result, len(e.Events))
		for j, ev := range e.Events {
			res[j] = tx.apply(ev)
		}
		results[i] = res
		last = e.Index
	}
	if tx == nil {
		return results
	}
	tx.put(keyApplied, putU64(last))
	tx.put(keyTime, putU64(uint64(tx.now)))
	if err := tx.b.Commit(pebble.NoSync); err != nil {
		panic(fmt.Sprintf("fsm: commit through index %d: %v", last, err))
	}
	tx.b.Close()
	m.applied.Store(last)
	m.lastTime.Store(tx.now)
	if tx.clusterID != nil {
		m.clusterID.Store(tx.clusterID)
	}
	if tx.cur != nil {
		m.current.Store(tx.cur)
	}
	m.queueHints.lower(tx.queued)
	if tx.tokens {
		if err := m.loadTokens(m.db); err != nil {
			panic(fmt.Sprintf("fsm: reload the token table: %v", err))
		}
	}
	m.signal()
	return results
}

// apply applies one event. Its time becomes the state machine's time unless
// it would go backwards (a leader's clock behind its predecessor's).
func (t *txn) apply(ev *cairnv1.Event) Result {
	if ev.GetTime() != nil {
		if ns := ev.GetTime().AsTime().UnixNano(); ns > t.now {
			t.now = ns
		}
	}
	t.actor = ev.GetActor()
	switch k := ev.GetKind().(type) {
	case *cairnv1.Event_TokenCreated:
		return t.tokenCreated(k.TokenCreated)
	case *cairnv1.Event_TokenRevoked:
		return t.tokenRevoked(k.TokenRevoked)
	case *cairnv1.Event_ClusterInitialized:
		return t.clusterInitialized(k.ClusterInitialized)
	case *cairnv1.Event_MasterAdvertised:
		return t.masterAdvertised(k.MasterAdvertised)
	case *cairnv1.Event_MasterRemoved:
		return t.masterRemoved(k.MasterRemoved)
	case *cairnv1.Event_WorkerRegistered:
		return t.workerRegistered(k.WorkerRegistered)
	case *cairnv1.Event_WorkerDown:
		return t.workerDown(k.WorkerDown)
	case *cairnv1.Event_WorkerUp:
		return t.workerUp(k.WorkerUp)
	case *cairnv1.Event_WorkerMaintenanceStarted:
		return t.workerMaintenance(k.WorkerMaintenanceStarted)
	case *cairnv1.Event_WorkerActivated:
		return t.workerActivated(k.WorkerActivated)
	case *cairnv1.Event_WorkerDecommissioned:
		return t.workerDecommissioned(k.WorkerDecommissioned)
	case *cairnv1.Event_ReplicationSet:
		return t.replicationSet(k.ReplicationSet)
	case *cairnv1.Event_NoteAppended:
		return ok(t.epoch())
	case *cairnv1.Event_FileCreated:
		return t.fileCreated(k.FileCreated)
	case *cairnv1.Event_FileCompleted:
		return t.fileCompleted(k.FileCompleted)
	case *cairnv1.Event_FileDeleted:
		return t.fileDeleted(k.FileDeleted)
	case *cairnv1.Event_FileLoaded:
		return t.fileLoaded(k.FileLoaded)
	case *cairnv1.Event_UfsMounted:
		return t.ufsMounted(k.UfsMounted)
	case *cairnv1.Event_UfsUnmounted:
		return t.ufsUnmounted(k.UfsUnmounted)
	case *cairnv1.Event_UfsCopyDrifted:
		return t.ufsCopyDrifted(k.UfsCopyDrifted)
	case *cairnv1.Event_JobStarted:
		return t.jobStarted(k.JobStarted)
	case *cairnv1.Event_JobStopped:
		return t.jobStopped(k.JobStopped)
	case *cairnv1.Event_TaskLeased:
		return t.taskLeased(k.TaskLeased)
	case *cairnv1.Event_LeaseRenewed:
		return t.leaseRenewed(k.LeaseRenewed)
	case *cairnv1.Event_TaskReported:
		return t.taskReported(k.TaskReported)
	case *cairnv1.Event_LeaseExpired:
		return t.leaseExpired(k.LeaseExpired)
	case *cairnv1.Event_LeasesExtended:
		return t.leasesExtended(k.LeasesExtended)
	case *cairnv1.Event_JobsPruned:
		return t.jobsPruned(k.JobsPruned)
	case *cairnv1.Event_SettingChanged:
		return t.settingChanged(k.SettingChanged)
	case *cairnv1.Event_WorkersClean:
		return t.workersClean(k.WorkersClean)
	case *cairnv1.Event_PersistRequested:
		return t.persistRequested(k.PersistRequested)
	case *cairnv1.Event_UfsCopyRemoved:
		return t.ufsCopyRemoved(k.UfsCopyRemoved)
	case *cairnv1.Event_UploadMappingSet:
		return t.uploadMappingSet(k.UploadMappingSet)
	case *cairnv1.Event_WriteAbandoned:
		return t.writeAbandoned(k.WriteAbandoned)
	case nil:
		return t.reject(InvalidArgument, "event has no kind")
	default:
		return t.reject(InvalidArgument, "unknown event kind %T", k)
	}
}

func (t *txn) clusterInitialized(e *cairnv1.ClusterInitialized) Result {
	if e.GetClusterId() == "" {
		return t.reject(InvalidArgument, "cluster id is empty")
	}
	cur := string(t.getRaw(keyClusterID))
	switch cur {
	case e.GetClusterId():
		return ok(t.epoch())
	case "":
		t.put(keyClusterID, []byte(e.GetClusterId()))
		id := e.GetClusterId()
		t.clusterID = &id
		return ok(t.epoch())
	}
	return t.reject(FailedPrecondition, "cluster is already initialized as %s", cur)
}

func (t *txn) masterAdvertised(e *cairnv1.MasterAdvertised) Result {
	if e.GetMasterId() == "" || e.GetApiAddress() == "" || e.GetRaftAddress() == "" {
		return t.reject(InvalidArgument, "master advertisement needs an id, an API address and a raft address")
	}
	t.putProto(masterKey(e.GetMasterId()), e)
	return ok(t.epoch())
}

func (t *txn) masterRemoved(e *cairnv1.MasterRemoved) Result {
	if e.GetMasterId() == "" {
		return t.reject(InvalidArgument, "master id is empty")
	}
	t.del(masterKey(e.GetMasterId()))
	return ok(t.epoch())
}

// worker loads a worker or returns a NotFound result.
func (t *txn) worker(id string) (*cairnv1.Worker, *Result) {
	if id == "" {
		r := t.reject(InvalidArgument, "worker id is empty")
		return nil, &r
	}
	w := &cairnv1.Worker{}
	if !t.getProto(workerKey(id), w) {
		r := t.reject(NotFound, "worker %s is not registered", id)
		return nil, &r
	}
	return w, nil
}

func (t *txn) setState(w *cairnv1.Worker, s cairnv1.WorkerState, reason string) {
	w.State = s
	w.StateTime = t.timestamp()
	w.StateReason = reason
}

func (t *txn) workerRegistered(e *cairnv1.WorkerRegistered) Result {
	if e.GetWorkerId() == "" || e.GetAddress() == "" || e.GetCapacityBytes() == 0 {
		return t.reject(InvalidArgument, "registration needs a worker id, an address and a capacity above 0")
	}
	w := &cairnv1.Worker{}
	cause := ""
	joined := false
	if !t.getProto(workerKey(e.GetWorkerId()), w) {
		joined = true
		w = &cairnv1.Worker{Id: e.GetWorkerId(), RegisteredTime: t.timestamp()}
		t.setState(w, cairnv1.WorkerState_WORKER_STATE_ACTIVE, "registered")
		cause = fmt.Sprintf("worker %s joined", w.Id)
	} else {
		switch w.State {
		case cairnv1.WorkerState_WORKER_STATE_DOWN:
			t.setState(w, cairnv1.WorkerState_WORKER_STATE_ACTIVE, "registered again after being down")
			cause = fmt.Sprintf("worker %s returned", w.Id)
		case cairnv1.WorkerState_WORKER_STATE_REMOVED:
			t.setState(w, cairnv1.WorkerState_WORKER_STATE_ACTIVE, "registered again after removal")
			cause = fmt.Sprintf("worker %s rejoined", w.Id)
		}
		switch {
		case cause != "":
		case w.CapacityBytes != e.GetCapacityBytes():
			cause = fmt.Sprintf("worker %s capacity changed to %d bytes", w.Id, e.GetCapacityBytes())
		case w.Address != e.GetAddress():
			cause = fmt.Sprintf("worker %s moved to %s", w.Id, e.GetAddress())
		}
	}
	w.Address = e.GetAddress()
	w.CapacityBytes = e.GetCapacityBytes()
	t.putProto(workerKey(w.Id), w)
	epoch := t.refreshMap(cause)
	if cause != "" && !joined {
		t.lostFilesBack() // a worker returned: it may hold copies of LOST files
	}
	if joined {
		// A new worker's cache is empty: nothing on it is misplaced.
		w.CleanEpoch = epoch
		t.putProto(workerKey(w.Id), w)
	}
	return ok(epoch).with(w)
}

func (t *txn) workerDown(e *cairnv1.WorkerDown) Result {
	w, rej := t.worker(e.GetWorkerId())
	if rej != nil {
		return *rej
	}
	if w.State != cairnv1.WorkerState_WORKER_STATE_ACTIVE {
		return t.reject(FailedPrecondition, "worker %s is %s, not ACTIVE", w.Id, stateName(w.State))
	}
	reason := "no heartbeat"
	if d := e.GetTimeout(); d != nil {
		reason = fmt.Sprintf("no heartbeat for %s", d.AsDuration())
	}
	t.setState(w, cairnv1.WorkerState_WORKER_STATE_DOWN, reason)
	t.putProto(workerKey(w.Id), w)
	t.abandonWorkerTasks(w.Id, fmt.Sprintf("worker %s went DOWN (%s)", w.Id, reason))
	return ok(t.refreshMap(fmt.Sprintf("worker %s is down", w.Id))).with(w)
}

func (t *txn) workerUp(e *cairnv1.WorkerUp) Result {
	w, rej := t.worker(e.GetWorkerId())
	if rej != nil {
		return *rej
	}
	switch w.State {
	case cairnv1.WorkerState_WORKER_STATE_ACTIVE:
		return ok(t.epoch()).with(w)
	case cairnv1.WorkerState_WORKER_STATE_DOWN:
	default:
		return t.reject(FailedPrecondition, "worker %s is %s, not DOWN", w.Id, stateName(w.State))
	}
	t.setState(w, cairnv1.WorkerState_WORKER_STATE_ACTIVE, "heartbeats resumed")
	t.putProto(workerKey(w.Id), w)
	t.lostFilesBack()
	return ok(t.refreshMap(fmt.Sprintf("worker %s returned", w.Id))).with(w)
}

func (t *txn) workerMaintenance(e *cairnv1.WorkerMaintenanceStarted) Result {
	w, rej := t.worker(e.GetWorkerId())
	if rej != nil {
		return *rej
	}
	switch w.State {
	case cairnv1.WorkerState_WORKER_STATE_MAINTENANCE:
		return ok(t.epoch()).with(w)
	case cairnv1.WorkerState_WORKER_STATE_ACTIVE, cairnv1.WorkerState_WORKER_STATE_DOWN:
	default:
		return t.reject(FailedPrecondition, "worker %s is %s; only an ACTIVE or DOWN worker can enter maintenance", w.Id, stateName(w.State))
	}
	t.setState(w, cairnv1.WorkerState_WORKER_STATE_MAINTENANCE, orDefault(e.GetReason(), "maintenance"))
	t.putProto(workerKey(w.Id), w)
	t.abandonWorkerTasks(w.Id, fmt.Sprintf("worker %s entered maintenance", w.Id))
	return ok(t.refreshMap(fmt.Sprintf("worker %s entered maintenance", w.Id))).with(w)
}

func (t *txn) workerActivated(e *cairnv1.WorkerActivated) Result {
	w, rej := t.worker(e.GetWorkerId())
	if rej != nil {
		return *rej
	}
	switch w.State {
	case cairnv1.WorkerState_WORKER_STATE_ACTIVE:
		return ok(t.epoch()).with(w)
	case cairnv1.WorkerState_WORKER_STATE_MAINTENANCE, cairnv1.WorkerState_WORKER_STATE_DECOMMISSIONING:
	case cairnv1.WorkerState_WORKER_STATE_DOWN:
		return t.reject(FailedPrecondition, "worker %s is DOWN; it becomes ACTIVE by itself when its heartbeats return", w.Id)
	default:
		return t.reject(FailedPrecondition, "worker %s is %s; start it again to register it", w.Id, stateName(w.State))
	}
	t.setState(w, cairnv1.WorkerState_WORKER_STATE_ACTIVE, orDefault(e.GetReason(), "activated"))
	t.putProto(workerKey(w.Id), w)
	t.lostFilesBack()
	return ok(t.refreshMap(fmt.Sprintf("worker %s activated", w.Id))).with(w)
}

func (t *txn) workerDecommissioned(e *cairnv1.WorkerDecommissioned) Result {
	w, rej := t.worker(e.GetWorkerId())
	if rej != nil {
		return *rej
	}
	switch w.State {
	case cairnv1.WorkerState_WORKER_STATE_DECOMMISSIONING:
		return ok(t.epoch()).with(w)
	case cairnv1.WorkerState_WORKER_STATE_REMOVED:
		return t.reject(FailedPrecondition, "worker %s is already removed", w.Id)
	}
	t.setState(w, cairnv1.WorkerState_WORKER_STATE_DECOMMISSIONING, orDefault(e.GetReason(), "decommissioned"))
	t.putProto(workerKey(w.Id), w)
	t.abandonWorkerTasks(w.Id, fmt.Sprintf("worker %s was decommissioned", w.Id))
	return ok(t.refreshMap(fmt.Sprintf("worker %s decommissioning", w.Id))).with(w)
}

func (t *txn) replicationSet(e *cairnv1.ReplicationSet) Result {
	r := e.GetReplication()
	if r < 1 || r > MaxReplication {
		return t.reject(InvalidArgument, "replication %d is out of range 1..%d", r, MaxReplication)
	}
	t.put(keyReplication, putU64(uint64(r)))
	return ok(t.refreshMap(fmt.Sprintf("replication set to %d", r)))
}

// refreshMap compares the ACTIVE workers and R with the current map and,
// when they differ, writes a new epoch. It returns the epoch current after.
func (t *txn) refreshMap(cause string) uint64 {
	cur := t.cur
	if cur == nil {
		var err error
		if cur, err = currentMap(t.b); err != nil {
			t.fail(err)
		}
	}
	next := &cairnv1.ClusterMap{Replication: t.replication()}
	err := scanProto(t.b, prefixWorker, func() *cairnv1.Worker { return &cairnv1.Worker{} }, func(w *cairnv1.Worker) bool {
		if w.State == cairnv1.WorkerState_WORKER_STATE_ACTIVE {
			next.Workers = append(next.Workers, &cairnv1.MapWorker{Id: w.Id, Address: w.Address, CapacityBytes: w.CapacityBytes})
		}
		return true
	})
	if err != nil {
		t.fail(err)
	}
	if next.Replication == cur.Replication && slices.EqualFunc(next.Workers, cur.Workers, func(a, b *cairnv1.MapWorker) bool {
		return proto.Equal(a, b)
	}) {
		return cur.Epoch
	}
	next.Epoch = cur.Epoch + 1
	next.Time = t.timestamp()
	next.Cause = cause
	t.putProto(epochKey(next.Epoch), next)
	t.put(keyEpoch, putU64(next.Epoch))
	t.cur = next
	return next.Epoch
}

func stateName(s cairnv1.WorkerState) string {
	switch s {
	case cairnv1.WorkerState_WORKER_STATE_ACTIVE:
		return "ACTIVE"
	case cairnv1.WorkerState_WORKER_STATE_MAINTENANCE:
		return "MAINTENANCE"
	case cairnv1.WorkerState_WORKER_STATE_DECOMMISSIONING:
		return "DECOMMISSIONING"
	case cairnv1.WorkerState_WORKER_STATE_DOWN:
		return "DOWN"
	case cairnv1.WorkerState_WORKER_STATE_REMOVED:
		return "REMOVED"
	}
	return "UNSPECIFIED"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// DownEvent builds the WorkerDown event the leader journals for a worker
// last heard from at last, with the timeout it missed.
func DownEvent(workerID string, last time.Time, timeout time.Duration) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_WorkerDown{WorkerDown: &cairnv1.WorkerDown{
		WorkerId: workerID, LastHeartbeatTime: timestamppb.New(last), Timeout: durationpb.New(timeout),
	}}}
}
