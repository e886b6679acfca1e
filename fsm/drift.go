package fsm

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// ufsCopyDrifted takes a PERSISTED file back when the leader's persistence
// checker found its UFS copy gone or changed out of band. It applies only
// to the version checked, still PERSISTED with the UFS identity the
// checker compared against and no write of the path in progress: anything
// cairn did to the path meanwhile (a new version, a new upload, a write
// through) makes the observation moot. Applied, the file becomes
// TO_BE_PERSISTED: queued for an upload when its copy is gone; held with
// an error when something else sits at its UFS path (an upload would
// overwrite it: cairn fs persist decides). Its recorded UFS identity is
// cleared (it describes nothing now) and the count of drifts grows, which
// tells workers to make their copies unevictable again. Result.Value is 1
// when the file was taken back, 0 when the event was moot.
func (t *txn) ufsCopyDrifted(e *cairnv1.UfsCopyDrifted) Result {
	p, rej := t.cleanPath(e.GetPath())
	if rej != nil {
		return *rej
	}
	kind := e.GetKind()
	if kind != cairnv1.UfsDriftKind_UFS_DRIFT_KIND_GONE && kind != cairnv1.UfsDriftKind_UFS_DRIFT_KIND_CHANGED {
		return t.reject(InvalidArgument, "ufs copy of %s drifted: kind %s is neither GONE nor CHANGED", p, kind)
	}
	f := &cairnv1.File{}
	if !t.getProto(fileKey(p), f) || f.GetVersion() != e.GetVersion() ||
		f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED ||
		!proto.Equal(f.GetUfsMtime(), e.GetUfsMtime()) || f.GetUfsEtag() != e.GetUfsEtag() ||
		t.getRaw(pendingKey(p)) != nil {
		return ok(t.epoch())
	}
	f.PersistenceState = cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED
	f.PersistError = ""
	f.UfsDrift = fmt.Sprintf("gone: %s", e.GetDetail())
	if kind == cairnv1.UfsDriftKind_UFS_DRIFT_KIND_CHANGED {
		f.UfsDrift = fmt.Sprintf("changed: %s", e.GetDetail())
		f.PersistError = fmt.Sprintf("the UFS copy at %s was changed by another writer (%s); cairn fs persist %s uploads this version over it", ufsPathOf(f), e.GetDetail(), p)
	}
	f.UfsDriftTime = t.timestamp()
	f.UfsMtime, f.UfsEtag, f.UfsVersionId = nil, "", ""
	t.putProto(fileKey(p), f)
	t.queueForUpload(f)
	t.next(keyUfsDrifts)
	r := ok(t.epoch()).with(f)
	r.Value = 1
	return r
}

// UfsDrifts is how many times a file's UFS copy could not be trusted, ever:
// the persistence checker took a file back from PERSISTED (UfsCopyDrifted
// events that applied), or a CACHE_THROUGH write completed while an upload
// of an older version may have overwritten its UFS copy (it completes
// TO_BE_PERSISTED). Workers make the copies of such files unevictable when
// it moves.
func (m *Machine) UfsDrifts() (uint64, error) {
	var v []byte
	err := m.read(func(r pebble.Reader) error {
		var err error
		v, err = getRaw(r, keyUfsDrifts)
		return err
	})
	return u64(v), err
}
