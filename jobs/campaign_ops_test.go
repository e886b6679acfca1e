package jobs_test

import (
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairnhq/cairn/fsm"
	"github.com/cairnhq/cairn/jobs"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// The campaign's steps. Each picks its subject at random and does nothing
// when there is none.

const (
	active      = cairnv1.WorkerState_WORKER_STATE_ACTIVE
	down        = cairnv1.WorkerState_WORKER_STATE_DOWN
	maintenance = cairnv1.WorkerState_WORKER_STATE_MAINTENANCE
	persisted   = cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED
)

func (s *sim) join() {
	all := s.workers(cairnv1.WorkerState_WORKER_STATE_UNSPECIFIED)
	if len(all) < 6 {
		id := fmt.Sprintf("w%d", len(all)+1)
		s.logf("join %s", id)
		s.apply(&cairnv1.Event{Kind: &cairnv1.Event_WorkerRegistered{WorkerRegistered: &cairnv1.WorkerRegistered{
			WorkerId: id, Address: id + ":7701", CapacityBytes: 1 << 30}}})
		return
	}
	s.up()
}

// move journals ev for a worker in state from, picked at random.
func (s *sim) move(from cairnv1.WorkerState, what string, ev func(id string) *cairnv1.Event) {
	if id, ok := pick(s.rng, s.workers(from)); ok {
		s.logf("%s %s", id, what)
		s.apply(ev(id))
	}
}

func (s *sim) down() {
	s.move(active, "DOWN", func(id string) *cairnv1.Event { return fsm.DownEvent(id, s.now.Add(-time.Minute), 10*time.Second) })
}

func (s *sim) up() {
	s.move(down, "back up", func(id string) *cairnv1.Event {
		return &cairnv1.Event{Kind: &cairnv1.Event_WorkerUp{WorkerUp: &cairnv1.WorkerUp{WorkerId: id}}}
	})
}

func (s *sim) maintain() {
	s.move(active, "to maintenance", func(id string) *cairnv1.Event {
		return &cairnv1.Event{Kind: &cairnv1.Event_WorkerMaintenanceStarted{WorkerMaintenanceStarted: &cairnv1.WorkerMaintenanceStarted{WorkerId: id}}}
	})
}

func (s *sim) activate() {
	s.move(maintenance, "activated", func(id string) *cairnv1.Event {
		return &cairnv1.Event{Kind: &cairnv1.Event_WorkerActivated{WorkerActivated: &cairnv1.WorkerActivated{WorkerId: id}}}
	})
}

// decommission takes a worker out for good; its disk stays (it may still
// answer, or not).
func (s *sim) decommission() {
	s.move(active, "decommissioned", func(id string) *cairnv1.Event {
		return &cairnv1.Event{Kind: &cairnv1.Event_WorkerDecommissioned{WorkerDecommissioned: &cairnv1.WorkerDecommissioned{WorkerId: id}}}
	})
}

func (s *sim) replication() {
	r := uint32(1 + s.rng.IntN(3))
	s.logf("R = %d", r)
	s.apply(&cairnv1.Event{Kind: &cairnv1.Event_ReplicationSet{ReplicationSet: &cairnv1.ReplicationSet{Replication: r}}})
}

// write creates a version of a path (an overwrite when it exists), puts
// its copies on the owners under the current map (and in the UFS for
// CACHE_THROUGH), and completes it now or, a third of the time, later.
func (s *sim) write() {
	cm := s.m.ClusterMap()
	if len(cm.GetWorkers()) == 0 {
		return
	}
	p, _ := pick(s.rng, paths)
	wt, _ := pick(s.rng, []cairnv1.WriteType{cairnv1.WriteType_WRITE_TYPE_MUST_CACHE, cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH, cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH})
	// Mostly the cluster's R; sometimes more or fewer copies of its own.
	replication, _ := pick(s.rng, []uint32{0, 0, 0, 1, 3})
	r := s.apply(&cairnv1.Event{Kind: &cairnv1.Event_FileCreated{FileCreated: &cairnv1.FileCreated{Path: p, WriteType: wt, Overwrite: true, Replication: replication}}})
	if r.Code != fsm.OK {
		return
	}
	w := pendingWrite{path: p, version: r.Value, sum: s.rng.Uint64(), wt: wt}
	owners := s.pm(cm).FileOwnerIDs(p, replication)
	s.logf("write %s@%d %s on %v", p, w.version, wt, owners)
	for _, o := range owners {
		s.worker(o)[p] = cachedCopy{version: w.version, sum: w.sum, unpersisted: wt != cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH, cached: s.now}
	}
	if wt == cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH {
		s.ufs[p] = w.version
	}
	if s.rng.IntN(3) == 0 {
		s.writes = append(s.writes, w)
		return
	}
	s.complete(w)
}

func (s *sim) complete(w pendingWrite) {
	s.logf("complete %s@%d", w.path, w.version)
	s.apply(&cairnv1.Event{Kind: &cairnv1.Event_FileCompleted{FileCompleted: &cairnv1.FileCompleted{
		Path: w.path, Version: w.version, Length: 100, Checksum: w.sum}}})
}

func (s *sim) completeWrite() {
	if len(s.writes) == 0 {
		return
	}
	i := s.rng.IntN(len(s.writes))
	w := s.writes[i]
	s.writes = slices.Delete(s.writes, i, i+1)
	s.complete(w)
}

func (s *sim) delete() {
	p, _ := pick(s.rng, paths)
	s.logf("delete %s", p)
	s.apply(&cairnv1.Event{Kind: &cairnv1.Event_FileDeleted{FileDeleted: &cairnv1.FileDeleted{Path: p}}})
}

// holder returns a worker that can be reached and holds path at version
// with checksum sum.
func (s *sim) holder(path string, version, sum uint64) (string, bool) {
	var hs []string
	for _, w := range s.workers(cairnv1.WorkerState_WORKER_STATE_UNSPECIFIED) {
		c, ok := s.disks[w][path]
		if ok && c.version == version && c.sum == sum && s.reachable(w) {
			hs = append(hs, w)
		}
	}
	return pick(s.rng, hs)
}

// upload starts the PERSIST job of a queued file, leases it to an ACTIVE
// worker, which copies a copy it can reach to the UFS; the report comes
// now or in a later step.
func (s *sim) upload() {
	q, err := s.m.UploadQueue("", 10)
	if err != nil {
		panic(err)
	}
	f, ok := pick(s.rng, q)
	if !ok {
		return
	}
	lessee, ok := pick(s.rng, s.workers(active))
	if !ok {
		return
	}
	r := s.apply(&cairnv1.Event{Kind: &cairnv1.Event_JobStarted{JobStarted: &cairnv1.JobStarted{
		Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, Path: f.GetPath(), Version: f.GetVersion()}, Workers: []string{""}}}})
	if r.Code != fsm.OK || r.Repeat {
		return
	}
	job := r.Value
	r = s.apply(&cairnv1.Event{Kind: &cairnv1.Event_TaskLeased{TaskLeased: &cairnv1.TaskLeased{JobId: job, WorkerId: lessee, Expiry: timestamppb.New(s.now.Add(time.Hour))}}})
	if r.Code != fsm.OK {
		return
	}
	u := pendingUpload{job: job, lease: r.Value, version: f.GetVersion(), path: f.GetPath()}
	if _, ok := s.holder(f.GetPath(), f.GetVersion(), f.GetChecksum()); !ok {
		s.logf("upload %s@%d by %s: no copy reachable", u.path, u.version, lessee)
		s.apply(&cairnv1.Event{Kind: &cairnv1.Event_TaskReported{TaskReported: &cairnv1.TaskReported{
			JobId: job, LeaseId: u.lease, Seq: 1, Final: cairnv1.TaskState_TASK_STATE_FAILED, Error: "no copy", NoCopy: true}}})
		return
	}
	s.logf("upload %s@%d by %s (job %d)", u.path, u.version, lessee, job)
	s.ufs[u.path] = u.version
	s.stats.uploads++
	if c, ok := s.disks[lessee][u.path]; ok && c.version == u.version {
		c.unpersisted = false
		s.disks[lessee][u.path] = c
	}
	if s.rng.IntN(2) == 0 {
		s.uploads = append(s.uploads, u)
		return
	}
	s.report(u)
}

func (s *sim) report(u pendingUpload) {
	s.logf("report upload %s@%d (job %d)", u.path, u.version, u.job)
	s.apply(&cairnv1.Event{Kind: &cairnv1.Event_TaskReported{TaskReported: &cairnv1.TaskReported{
		JobId: u.job, LeaseId: u.lease, Seq: 1, Final: cairnv1.TaskState_TASK_STATE_SUCCEEDED, UfsMtime: timestamppb.New(s.now)}}})
}

func (s *sim) reportUpload() {
	if len(s.uploads) == 0 {
		return
	}
	i := s.rng.IntN(len(s.uploads))
	u := s.uploads[i]
	s.uploads = slices.Delete(s.uploads, i, i+1)
	s.report(u)
}

// removeUfsCopy is the leader's removal of a deleted file's UFS copy: not
// when the path came back (a file or a write in progress).
func (s *sim) removeUfsCopy() {
	gone, err := s.m.UfsDeletes(10)
	if err != nil {
		panic(err)
	}
	d, ok := pick(s.rng, gone)
	if !ok {
		return
	}
	files, writes, err := s.m.Files([]string{d.Path})
	if err != nil {
		panic(err)
	}
	if len(files)+len(writes) == 0 {
		s.logf("remove the UFS copy of the deleted %s", d.Path)
		delete(s.ufs, d.Path)
		s.stats.ufsRemovals++
	} else {
		s.logf("%s came back: its UFS copy stays", d.Path)
	}
	s.apply(&cairnv1.Event{Kind: &cairnv1.Event_UfsCopyRemoved{UfsCopyRemoved: &cairnv1.UfsCopyRemoved{Path: d.Path, UfsPath: d.UfsPath}}})
}

// rebalance sends each current copy an ACTIVE worker holds to the ACTIVE
// owners that lack it (or hold an older version); it never deletes.
func (s *sim) rebalance() {
	cm := s.m.ClusterMap()
	if len(cm.GetWorkers()) == 0 {
		return
	}
	pm := s.pm(cm)
	s.logf("rebalance at epoch %d", cm.GetEpoch())
	for _, w := range s.workers(active) {
		for _, p := range sortedKeys(s.disks[w]) {
			c := s.disks[w][p]
			f, found, err := s.m.File(p)
			if err != nil {
				panic(err)
			}
			if !found || f.GetVersion() != c.version || f.GetChecksum() != c.sum {
				continue
			}
			for _, o := range pm.FileOwnerIDs(p, f.GetReplication()) {
				if oc, ok := s.worker(o)[p]; !ok || oc.version < c.version {
					s.worker(o)[p] = cachedCopy{version: c.version, sum: c.sum, unpersisted: c.unpersisted, cached: s.now}
				}
			}
		}
	}
}

// placeDiverged puts other bytes under a file's current version on a
// worker (an owner holding other bytes is what --force is for).
func (s *sim) placeDiverged() {
	p, _ := pick(s.rng, paths)
	f, found, err := s.m.File(p)
	if err != nil || !found {
		return
	}
	// Over a good copy only where that cannot lose the file: it is
	// persisted, or another good copy stays.
	good := 0
	for _, d := range s.disks {
		if c, ok := d[p]; ok && c.version == f.GetVersion() && c.sum == f.GetChecksum() {
			good++
		}
	}
	spare := f.GetPersistenceState() == persisted || good > 1
	var free []string
	for _, w := range s.workers(cairnv1.WorkerState_WORKER_STATE_UNSPECIFIED) {
		c, ok := s.disks[w][p]
		if !ok || spare && c.version == f.GetVersion() && c.sum == f.GetChecksum() {
			free = append(free, w)
		}
	}
	// Mostly on an owner under the current map: a misplaced copy's owner
	// holding other bytes is what --force is about.
	owners := s.pm(s.m.ClusterMap()).FileOwnerIDs(p, f.GetReplication())
	if on := slices.DeleteFunc(slices.Clone(free), func(w string) bool { return !slices.Contains(owners, w) }); len(on) > 0 && s.rng.IntN(3) > 0 {
		free = on
	}
	if w, ok := pick(s.rng, free); ok {
		s.logf("diverged copy of %s@%d on %s", p, f.GetVersion(), w)
		s.worker(w)[p] = cachedCopy{version: f.GetVersion(), sum: f.GetChecksum() + 1, unpersisted: s.rng.IntN(2) == 0, cached: s.now}
	}
}

func (s *sim) setWindow() {
	v, _ := pick(s.rng, []string{"0s", "10m", "2h"})
	s.logf("cleanup.dont_cleanup_time %s", v)
	s.apply(&cairnv1.Event{Kind: &cairnv1.Event_SettingChanged{SettingChanged: &cairnv1.SettingChanged{Name: fsm.SettingDontCleanupTime, Value: v}}})
}

// startCleanup starts a cleanup on every ACTIVE worker under the current
// map, as the master does: not while another runs.
func (s *sim) startCleanup() {
	cm := s.m.ClusterMap()
	if s.cleanup != nil || len(cm.GetWorkers()) == 0 {
		return
	}
	spec := &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_CLEANUP, Epoch: cm.GetEpoch(), Force: s.rng.IntN(2) == 0}
	if s.rng.IntN(2) == 0 {
		w, _ := pick(s.rng, []time.Duration{0, time.Minute, 2 * time.Hour})
		spec.DontCleanupTime = durationpb.New(w)
	}
	var ws []string
	for _, w := range cm.GetWorkers() {
		ws = append(ws, w.GetId())
	}
	r := s.apply(&cairnv1.Event{Kind: &cairnv1.Event_JobStarted{JobStarted: &cairnv1.JobStarted{Spec: spec, Workers: ws}}})
	if r.Code != fsm.OK {
		return
	}
	j, _, err := s.m.Job(r.Value)
	if err != nil {
		panic(err)
	}
	tasks, err := s.m.Tasks(r.Value)
	if err != nil {
		panic(err)
	}
	s.cleanup = &cleanupRun{job: r.Value, epoch: cm.GetEpoch(), tasks: tasks,
		scope: jobs.CleanupScope{Force: spec.GetForce(), Window: j.GetSpec().GetDontCleanupTime().AsDuration()}}
	s.logf("cleanup job %d at epoch %d on %v, force %t, window %s", r.Value, cm.GetEpoch(), ws, spec.GetForce(), s.cleanup.scope.Window)
}

// runCleanupTask runs one task of the running cleanup, now, by the rules
// under test, and reports it.
func (s *sim) runCleanupTask() {
	c := s.cleanup
	if c == nil {
		return
	}
	i := s.rng.IntN(len(c.tasks))
	tk := c.tasks[i]
	c.tasks = slices.Delete(c.tasks, i, i+1)
	if len(c.tasks) == 0 {
		s.cleanup = nil
	}
	r := s.apply(&cairnv1.Event{Kind: &cairnv1.Event_TaskLeased{TaskLeased: &cairnv1.TaskLeased{
		JobId: c.job, Index: tk.GetIndex(), WorkerId: tk.GetWorkerId(), Expiry: timestamppb.New(s.now.Add(time.Hour))}}})
	if r.Code != fsm.OK {
		return // abandoned: its worker left the map
	}
	lease := r.Value
	cm, found, err := s.m.ClusterMapAt(c.epoch)
	if err != nil || !found {
		panic(fmt.Sprintf("map at epoch %d: %v", c.epoch, err))
	}
	pm := s.pm(cm)
	w := tk.GetWorkerId()
	disk := s.worker(w)
	local := sortedKeys(disk)
	files, pending, err := s.m.Files(local)
	if err != nil {
		panic(err)
	}
	ns := map[string]*cairnv1.File{}
	for _, f := range files {
		ns[f.GetPath()] = f
	}
	inFlight := map[string]uint64{}
	for _, p := range pending {
		inFlight[p.GetPath()] = p.GetVersion()
	}
	scope := c.scope
	scope.Now = s.now
	total := &cairnv1.Counters{}
	s.stats.tasks++
	for _, p := range local {
		cp := disk[p]
		cc := jobs.CleanupCopy{Version: cp.version, Unpersisted: cp.unpersisted, Cached: cp.cached}
		// As the worker does: a file with more copies than R has as many
		// owners.
		owners := pm.FileOwnerIDs(p, ns[p].GetReplication())
		step, count := s.r.triage(cc, ns[p], inFlight[p], slices.Contains(owners, w), scope)
		var answers []jobs.OwnerAnswer
		if step == jobs.CleanupAskOwners {
			for _, o := range owners {
				if o != w {
					answers = append(answers, s.answer(o, p, cp))
				}
			}
			step, count = s.r.verdict(answers, jobs.Persisted(ns[p], cc), scope)
		}
		jobs.Add(total, count)
		if count.GetKeptRecent() > 0 {
			s.stats.recent++
		}
		if step == jobs.CleanupRemove {
			delete(disk, p)
			s.stats.removed++
			s.stats.forced += int(count.GetForced())
			s.logf("  %s removes %s@%d (cached %s, owners %v said %v): %s", w, p, cp.version, cp.cached.Format("01-02 15:04:05"), owners, answers, jobs.Format(count))
		}
	}
	s.logf("cleanup job %d task on %s: %s", c.job, w, jobs.Format(total))
	s.apply(&cairnv1.Event{Kind: &cairnv1.Event_TaskReported{TaskReported: &cairnv1.TaskReported{
		JobId: c.job, Index: tk.GetIndex(), LeaseId: lease, Seq: 1, Delta: total, Final: cairnv1.TaskState_TASK_STATE_SUCCEEDED}}})
}

// reachable decides whether a worker answers now: one in the map mostly
// does, one out of it (DOWN, decommissioned) mostly does not.
func (s *sim) reachable(w string) bool {
	switch s.state(w) {
	case active, maintenance:
		return s.rng.IntN(7) != 0
	default:
		return s.rng.IntN(3) == 0
	}
}

// answer is what owner o says about its copy of p, against mine.
func (s *sim) answer(o, p string, mine cachedCopy) jobs.OwnerAnswer {
	if !s.reachable(o) {
		return jobs.OwnerUnreachable
	}
	c, ok := s.disks[o][p]
	switch {
	case !ok:
		return jobs.OwnerLacks
	case c.version == mine.version && c.sum == mine.sum:
		return jobs.OwnerSame
	default:
		return jobs.OwnerDiverged
	}
}

// check is the campaign's invariant: every file the namespace has that is
// not persisted has a cached copy of its current bytes somewhere, and every
// persisted one has its version in the UFS — unless a write of the path is
// in progress, which replaces both before it completes.
func (s *sim) check() string {
	files, _, err := s.m.ListFiles("/", "", 1000)
	if err != nil {
		panic(err)
	}
	_, pending, err := s.m.Files(paths)
	if err != nil {
		panic(err)
	}
	writing := map[string]bool{}
	for _, p := range pending {
		writing[p.GetPath()] = true
	}
	for _, f := range files {
		p := f.GetPath()
		if writing[p] {
			// A write in progress replaces the cached copies on the owners,
			// and a CACHE_THROUGH one the UFS copy, before it completes.
			continue
		}
		if f.GetPersistenceState() == persisted {
			if s.ufs[p] != f.GetVersion() {
				return fmt.Sprintf("%s@%d is PERSISTED but the UFS holds version %d", p, f.GetVersion(), s.ufs[p])
			}
			continue
		}
		held := false
		for _, d := range s.disks {
			if c, ok := d[p]; ok && c.version == f.GetVersion() && c.sum == f.GetChecksum() {
				held = true
			}
		}
		if !held {
			return fmt.Sprintf("%s@%d (%s) lost its last cached copy", p, f.GetVersion(), f.GetPersistenceState())
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
