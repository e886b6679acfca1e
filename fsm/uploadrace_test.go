package fsm

import (
	"testing"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// TestCacheThroughOverARunningUpload: a CACHE_THROUGH overwrite whose write
// overlapped an upload of the older version (the upload may have written
// the UFS after it) completes TO_BE_PERSISTED and queued, not PERSISTED;
// one that overlapped no upload is PERSISTED. The cleanup safety campaign
// found the first case (seed 103 before the fix).
func TestCacheThroughOverARunningUpload(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		upload bool // an upload of version 1 runs and ends while version 2 is written
		want   cairnv1.PersistenceState
	}{
		{"overlapping upload", true, cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED},
		{"no upload", false, cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := open(t)
			apply := mustApplier(t, m)
			apply(1, asyncFile("/a", 1)...)
			if tc.upload {
				apply(2, &cairnv1.Event{Kind: &cairnv1.Event_JobStarted{JobStarted: &cairnv1.JobStarted{
					Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, Path: "/a", Version: 1}, Workers: []string{""}}}})
				apply(3, &cairnv1.Event{Kind: &cairnv1.Event_TaskLeased{TaskLeased: &cairnv1.TaskLeased{JobId: 1, WorkerId: "w1", Expiry: at(60)}}})
			}
			apply(4, &cairnv1.Event{Kind: &cairnv1.Event_FileCreated{FileCreated: &cairnv1.FileCreated{Path: "/a", WriteType: cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH, Overwrite: true}}})
			if tc.upload {
				apply(5, &cairnv1.Event{Kind: &cairnv1.Event_TaskReported{TaskReported: &cairnv1.TaskReported{
					JobId: 1, LeaseId: 1, Seq: 1, Final: cairnv1.TaskState_TASK_STATE_SUCCEEDED, UfsMtime: at(5)}}})
				if f, _, _ := m.File("/a"); f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
					t.Fatalf("version 1 after its upload: %v", f.GetPersistenceState())
				}
			}
			apply(6, &cairnv1.Event{Kind: &cairnv1.Event_FileCompleted{FileCompleted: &cairnv1.FileCompleted{Path: "/a", Version: 2, Length: 1, UfsMtime: at(6)}}})
			f, _, err := m.File("/a")
			if err != nil || f.GetVersion() != 2 || f.GetPersistenceState() != tc.want {
				t.Fatalf("version 2: %v %v, %v", f.GetVersion(), f.GetPersistenceState(), err)
			}
			q, err := m.UploadQueue("", 10)
			if err != nil || (len(q) == 1) != tc.upload {
				t.Fatalf("upload queue %v, %v", q, err)
			}
			// The owners hold version 2 as persisted: the drift count moves
			// (and the file says why), so that they pin their copies.
			drifts, err := m.UfsDrifts()
			if err != nil || (drifts == 1) != tc.upload || (f.GetUfsDrift() != "") != tc.upload {
				t.Fatalf("drifts %d, ufs_drift %q, %v", drifts, f.GetUfsDrift(), err)
			}
		})
	}
}
