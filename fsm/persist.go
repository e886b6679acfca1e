package fsm

import (
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnhq/cairn/persistence"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// queueForUpload puts a TO_BE_PERSISTED file without an error in the
// upload queue and takes any other file out of it.
func (t *txn) queueForUpload(f *cairnv1.File) {
	if f.GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED && f.GetPersistError() == "" {
		t.put(persistQueueKey(f.GetPath()), nil)
	} else {
		t.del(persistQueueKey(f.GetPath()))
	}
}

// stopUpload cancels the running PERSIST job of a path, if any: its file
// was deleted or has a newer version.
func (t *txn) stopUpload(path, reason string) {
	id := u64(t.getRaw(persistJobKey(path)))
	if id == 0 {
		return
	}
	t.jobStopped(&cairnv1.JobStopped{JobId: id, Reason: reason})
}

// uploadActedSince reports whether the path's last upload may have written
// the UFS at or after since: its job runs, ended then or later, or one of
// its leases reached that far (a cancelled upload's worker may act until
// its lease ends). Uploads of a path run one at a time, so the last one is
// the one to ask.
func (t *txn) uploadActedSince(path string, since time.Time) bool {
	id := u64(t.getRaw(persistJobKey(path)))
	if id == 0 {
		return false
	}
	j := &cairnv1.Job{}
	if !t.getProto(jobKey(id), j) {
		return false // pruned: it ended long ago
	}
	if j.GetState() == cairnv1.JobState_JOB_STATE_RUNNING || !j.GetEndedTime().AsTime().Before(since) {
		return true
	}
	for _, tk := range t.tasks(id) {
		if exp := tk.GetLeaseExpiry(); exp != nil && !exp.AsTime().Before(since) {
			return true
		}
	}
	return false
}

// lostFilesBack makes every LOST file persistable again: a worker came
// back, and it may hold a copy.
func (t *txn) lostFilesBack() {
	var paths []string
	if err := scan(t.b, prefixLost, func(k, _ []byte) (bool, error) {
		paths = append(paths, string(k[len(prefixLost):]))
		return true, nil
	}); err != nil {
		t.fail(err)
	}
	for _, p := range paths {
		t.del(lostKey(p))
		f := &cairnv1.File{}
		if !t.getProto(fileKey(p), f) || f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_LOST {
			continue
		}
		f.PersistenceState = cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED
		f.PersistError = ""
		t.putProto(fileKey(p), f)
		t.queueForUpload(f)
	}
}

// pathGone is called for every file a delete removed. It leaves the
// path's UFS copy to remove: a deleted file must not come back from the
// UFS.
func (t *txn) pathGone(f *cairnv1.File) {
	path := f.GetPath()
	t.del(persistQueueKey(path))
	t.del(lostKey(path))
	t.stopUpload(path, "the file was deleted")
	// Whatever its state, an earlier version may have reached the UFS (a
	// CACHE_THROUGH version overwritten by a MUST_CACHE one, say): the
	// path's UFS copy goes too.
	t.put(ufsDeleteKey(path), []byte(ufsPathOf(f)))
}

// ufsPathOf is where a file is (or goes) in the UFS.
func ufsPathOf(f *cairnv1.File) string {
	if f.GetUfsPath() != "" {
		return f.GetUfsPath()
	}
	return f.GetPath()
}

// applyUploadMapping decides a newly completed file's way to the UFS: a
// file under a mapped cache-only sub-path is uploaded to its mapped UFS
// path; an ASYNC_THROUGH file goes to its own path; either stays out of
// the UFS when its name matches the blacklist.
func (t *txn) applyUploadMapping(f *cairnv1.File) {
	m := &cairnv1.UploadMapping{}
	if !t.getProto(keyUploadMapping, m) {
		return
	}
	if target, ok := persistence.UploadTarget(m, f.GetPath()); ok {
		if f.GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_NOT_PERSISTED {
			f.PersistenceState = cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED
		}
		if f.GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED {
			f.UfsPath = target
		}
		return
	}
	if f.GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED && persistence.Blacklisted(m, f.GetPath()) {
		f.PersistenceState = cairnv1.PersistenceState_PERSISTENCE_STATE_NOT_PERSISTED
	}
}

func (t *txn) uploadMappingSet(e *cairnv1.UploadMappingSet) Result {
	if e.GetMapping().GetCacheOnlyMountPoint() == "" {
		return t.reject(InvalidArgument, "an upload mapping needs a cache-only mount point")
	}
	t.putProto(keyUploadMapping, e.GetMapping())
	return ok(t.epoch())
}

// UploadMapping returns the async upload mapping in force, if any.
func (m *Machine) UploadMapping() (*cairnv1.UploadMapping, bool, error) {
	um := &cairnv1.UploadMapping{}
	var found bool
	err := m.read(func(r pebble.Reader) error {
		var err error
		found, err = getProto(r, keyUploadMapping, um)
		return err
	})
	return um, found, err
}

func (t *txn) ufsCopyRemoved(e *cairnv1.UfsCopyRemoved) Result {
	// Only the entry the removal was for: the path may have been written
	// and deleted again since, with another UFS path to remove.
	if v := t.getRaw(ufsDeleteKey(e.GetPath())); v != nil && (e.GetUfsPath() == "" || string(v) == e.GetUfsPath()) {
		t.del(ufsDeleteKey(e.GetPath()))
	}
	return ok(t.epoch())
}

// UfsDelete is a deleted file whose UFS copy waits for removal.
type UfsDelete struct {
	// Path is the deleted file's path; UfsPath where its copy is in the UFS.
	Path, UfsPath string
}

// UfsDeletes returns up to limit deleted files whose UFS copies wait for
// removal, in path order.
func (m *Machine) UfsDeletes(limit int) ([]UfsDelete, error) {
	var out []UfsDelete
	err := m.read(func(r pebble.Reader) error {
		return scan(r, prefixUfsDelete, func(k, v []byte) (bool, error) {
			d := UfsDelete{Path: string(k[len(prefixUfsDelete):]), UfsPath: string(v)}
			if d.UfsPath == "" {
				d.UfsPath = d.Path
			}
			out = append(out, d)
			return len(out) < limit, nil
		})
	})
	return out, err
}

// persistStarted checks a PERSIST job against its file and marks the file
// PERSISTING. It returns a rejection when the file is not waiting for an
// upload of that version.
func (t *txn) persistStarted(spec *cairnv1.JobSpec) *Result {
	f := &cairnv1.File{}
	if !t.getProto(fileKey(spec.GetPath()), f) || f.GetVersion() != spec.GetVersion() {
		r := t.reject(FailedPrecondition, "persist %s version %d: the namespace has no such version", spec.GetPath(), spec.GetVersion())
		return &r
	}
	if f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED {
		r := t.reject(FailedPrecondition, "persist %s: it is %s, not TO_BE_PERSISTED", spec.GetPath(), f.GetPersistenceState())
		return &r
	}
	f.PersistenceState = cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTING
	f.PersistError = ""
	t.putProto(fileKey(f.GetPath()), f)
	t.queueForUpload(f)
	return nil
}

// persistEnded moves a file on when the task of its PERSIST job ended: a
// success of the file's current version makes it PERSISTED (a success of
// an older version is discarded: the newer one has its own upload); a
// failure leaves it TO_BE_PERSISTED with the error (LOST when no copy was
// found); an operator's stop leaves it TO_BE_PERSISTED with "upload
// stopped" as the error, out of the queue until cairn fs persist.
func (t *txn) persistEnded(j *cairnv1.Job, tk *cairnv1.Task, rep *cairnv1.TaskReported) {
	spec := j.GetSpec()
	f := &cairnv1.File{}
	if !t.getProto(fileKey(spec.GetPath()), f) || f.GetVersion() != spec.GetVersion() ||
		f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTING {
		return
	}
	switch tk.GetState() {
	case cairnv1.TaskState_TASK_STATE_SUCCEEDED:
		f.PersistenceState = cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED
		f.PersistError = ""
		if rep.GetUfsMtime() != nil {
			f.UfsMtime = rep.GetUfsMtime()
		}
		f.UfsEtag, f.UfsVersionId = rep.GetUfsEtag(), rep.GetUfsVersionId()
	case cairnv1.TaskState_TASK_STATE_FAILED:
		f.PersistenceState = cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED
		f.PersistError = tk.GetLastError()
		if rep.GetNoCopy() {
			// No worker the uploads reached holds a copy: LOST until one
			// comes back.
			f.PersistenceState = cairnv1.PersistenceState_PERSISTENCE_STATE_LOST
			t.put(lostKey(f.GetPath()), nil)
		}
	default:
		f.PersistenceState = cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED
		f.PersistError = fmt.Sprintf("upload stopped: %s", tk.GetLastError())
	}
	t.putProto(fileKey(f.GetPath()), f)
	t.queueForUpload(f)
}

func (t *txn) persistRequested(e *cairnv1.PersistRequested) Result {
	p, rej := t.cleanPath(e.GetPath())
	if rej != nil {
		return *rej
	}
	f := &cairnv1.File{}
	if !t.getProto(fileKey(p), f) {
		return t.reject(NotFound, "persist %s: no such file", p)
	}
	switch f.GetPersistenceState() {
	case cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED, cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTING:
		return ok(t.epoch()).with(f)
	}
	f.PersistenceState = cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED
	f.PersistError = ""
	t.putProto(fileKey(p), f)
	t.queueForUpload(f)
	return ok(t.epoch()).with(f)
}

// UploadQueue returns up to limit files waiting for an upload (TO_BE_PERSISTED
// without an error), in path order after the path after.
func (m *Machine) UploadQueue(after string, limit int) ([]*cairnv1.File, error) {
	var out []*cairnv1.File
	err := m.read(func(r pebble.Reader) error {
		lower := prefixPersistQueue
		if after != "" {
			lower = append(persistQueueKey(after), 0)
		}
		return scanFrom(r, lower, prefixEnd(prefixPersistQueue), func(k, _ []byte) (bool, error) {
			f := &cairnv1.File{}
			found, err := getProto(r, fileKey(string(k[len(prefixPersistQueue):])), f)
			if found {
				out = append(out, f)
			}
			return err == nil && len(out) < limit, err
		})
	})
	return out, err
}

// UploadBusy reports whether an upload of path may still be acting at
// time now: its last PERSIST job is running, or was cancelled while a
// worker could still hold its lease (a cancelled upload's worker stops at
// its lease's end at the latest). A new upload of the path waits until it is not.
func (m *Machine) UploadBusy(path string, now time.Time) (bool, error) {
	var id uint64
	if err := m.read(func(r pebble.Reader) error {
		v, err := getRaw(r, persistJobKey(path))
		id = u64(v)
		return err
	}); err != nil || id == 0 {
		return false, err
	}
	j, found, err := m.Job(id)
	if err != nil || !found {
		return false, err
	}
	if j.GetState() == cairnv1.JobState_JOB_STATE_RUNNING {
		return true, nil
	}
	tasks, err := m.Tasks(id)
	if err != nil {
		return false, err
	}
	for _, tk := range tasks {
		// Only a cancelled task's worker may still be at work (it learns of
		// the cancellation at its next renewal, or stops at its lease's end).
		if exp := tk.GetLeaseExpiry(); tk.GetState() == cairnv1.TaskState_TASK_STATE_CANCELLED && exp != nil && now.Before(exp.AsTime()) {
			return true, nil
		}
	}
	return false, nil
}

// UploadQueueLen counts the files waiting for an upload, up to limit.
func (m *Machine) UploadQueueLen(limit int) (int, error) {
	n := 0
	err := m.read(func(r pebble.Reader) error {
		return scan(r, prefixPersistQueue, func(_, _ []byte) (bool, error) {
			n++
			return n < limit, nil
		})
	})
	return n, err
}
