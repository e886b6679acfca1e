package fsm

import (
	"bytes"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// DefaultBlockSize is a file's block size when its creator gives none.
const DefaultBlockSize = 4 << 20

// cleanPath returns a rejection for a malformed path.
func (t *txn) cleanPath(p string) (string, *Result) {
	c, err := persistence.CleanPath(p)
	if err != nil {
		r := t.reject(InvalidArgument, "%v", err)
		return "", &r
	}
	if c == "/" {
		r := t.reject(InvalidArgument, "the root is a folder, not a file")
		return "", &r
	}
	return c, nil
}

// hasUnder reports whether any key with prefix+path+"/" exists.
func (t *txn) hasUnder(prefix []byte, path string) bool {
	found := false
	under := underPrefix(prefix, path)
	if err := scan(t.b, under, func(k, v []byte) (bool, error) {
		found = true
		return false, nil
	}); err != nil {
		t.fail(err)
	}
	return found
}

func (t *txn) fileCreated(e *cairnv1.FileCreated) Result {
	p, rej := t.cleanPath(e.GetPath())
	if rej != nil {
		return *rej
	}
	if e.GetWriteType() == cairnv1.WriteType_WRITE_TYPE_UNSPECIFIED {
		return t.reject(InvalidArgument, "create %s: no write type", p)
	}
	if e.GetReplication() > MaxReplication {
		return t.reject(InvalidArgument, "create %s: replication %d is above %d", p, e.GetReplication(), MaxReplication)
	}
	for dir := persistence.Parent(p); dir != "/"; dir = persistence.Parent(dir) {
		if t.getRaw(fileKey(dir)) != nil {
			return t.reject(FailedPrecondition, "create %s: %s is a file, not a folder", p, dir)
		}
		if t.getRaw(pendingKey(dir)) != nil {
			return t.reject(FailedPrecondition, "create %s: %s is a file being written, not a folder", p, dir)
		}
	}
	if t.hasUnder(prefixFile, p) || t.hasUnder(prefixPending, p) {
		return t.reject(FailedPrecondition, "create %s: it is a folder with files in it", p)
	}
	cur := &cairnv1.File{}
	exists := t.getProto(fileKey(p), cur)
	if exists && !e.GetOverwrite() {
		return t.reject(FailedPrecondition, "create %s: the file exists; overwrite it explicitly", p)
	}
	pinned := e.GetPinned()
	replication := e.GetReplication()
	if mt := t.cacheOnly(p); mt != nil {
		switch e.GetWriteType() {
		case cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH, cairnv1.WriteType_WRITE_TYPE_THROUGH:
			return t.reject(FailedPrecondition, "create %s: it is under a cache-only mount, which has no UFS behind it; write it MUST_CACHE", p)
		}
		pinned = true
		if replication == 0 {
			replication = mt.GetReplication()
		}
	}
	bs := e.GetBlockSize()
	if bs == 0 {
		bs = DefaultBlockSize
	}
	version := u64(t.getRaw(keyFileVersion)) + 1
	t.put(keyFileVersion, putU64(version))
	pw := &cairnv1.PendingWrite{
		Path: p, WriteType: e.GetWriteType(), BlockSize: bs, Replication: replication,
		Pinned: pinned, CreatedTime: t.timestamp(), Version: version,
	}
	if exists {
		pw.Replaces = cur.GetVersion()
	}
	t.putProto(pendingKey(p), pw)
	r := ok(t.epoch())
	r.Value = version
	return r.with(pw)
}

// persistenceOf is where a completed write stands with the UFS.
func persistenceOf(wt cairnv1.WriteType) cairnv1.PersistenceState {
	switch wt {
	case cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH, cairnv1.WriteType_WRITE_TYPE_THROUGH:
		return cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED
	case cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH:
		return cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED
	}
	return cairnv1.PersistenceState_PERSISTENCE_STATE_NOT_PERSISTED
}

func (t *txn) fileCompleted(e *cairnv1.FileCompleted) Result {
	p, rej := t.cleanPath(e.GetPath())
	if rej != nil {
		return *rej
	}
	pw := &cairnv1.PendingWrite{}
	if !t.getProto(pendingKey(p), pw) {
		return t.reject(FailedPrecondition, "complete %s: no write of it is in progress (create it first)", p)
	}
	version := pw.GetVersion()
	if e.GetVersion() != version {
		return t.reject(FailedPrecondition, "complete %s: version %d is not the write in progress (version %d started since)", p, e.GetVersion(), version)
	}
	state, drift := persistenceOf(pw.GetWriteType()), ""
	if pw.GetWriteType() == cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH && t.uploadActedSince(p, pw.GetCreatedTime().AsTime()) {
		// An upload of an older version of the path may have written the
		// UFS copy after this write did: the UFS may hold the older bytes.
		// Upload this version again from its cached copies rather than
		// call it persisted (found by the cleanup safety campaign). The
		// owners stored those copies as persisted (evictable): the drift
		// count moves, so that they make them unevictable until the upload.
		state = cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED
		drift = "raced: an upload of an older version may have written the UFS after this write; uploaded again from the cache"
	}
	f := &cairnv1.File{
		Path: p, Version: version, Length: e.GetLength(), BlockSize: pw.GetBlockSize(),
		Checksum: e.GetChecksum(), Etag: e.GetEtag(), Metadata: e.GetMetadata(),
		WriteType: pw.GetWriteType(), Replication: pw.GetReplication(), Pinned: pw.GetPinned(),
		PersistenceState: state,
		CreatedTime:      pw.GetCreatedTime(), CompletedTime: t.timestamp(), UfsMtime: e.GetUfsMtime(),
		UfsEtag: e.GetUfsEtag(), UfsVersionId: e.GetUfsVersionId(),
	}
	if drift != "" {
		f.UfsDrift, f.UfsDriftTime = drift, t.timestamp()
		t.next(keyUfsDrifts)
	}
	t.applyUploadMapping(f)
	t.putProto(fileKey(p), f)
	t.del(pendingKey(p))
	t.queueForUpload(f)
	t.stopUpload(p, fmt.Sprintf("version %d was written", version))
	r := ok(t.epoch())
	r.Value = version
	t.getProto(fileKey(p), f) // as stopping the old upload left it
	return r.with(f)
}

func (t *txn) writeAbandoned(e *cairnv1.WriteAbandoned) Result {
	p, rej := t.cleanPath(e.GetPath())
	if rej != nil {
		return *rej
	}
	pw := &cairnv1.PendingWrite{}
	if !t.getProto(pendingKey(p), pw) || pw.GetVersion() != e.GetVersion() {
		r := ok(t.epoch())
		r.Repeat = true // that write ended some other way
		return r
	}
	t.del(pendingKey(p))
	return ok(t.epoch())
}

func (t *txn) fileDeleted(e *cairnv1.FileDeleted) Result {
	p, rej := t.cleanPath(e.GetPath())
	if rej != nil {
		if e.GetPath() != "/" || !e.GetRecursive() {
			return *rej
		}
		p = "" // everything: "n/" + "" + "/" covers every path
	}
	var deleted uint64
	children := t.hasUnder(prefixFile, p) || t.hasUnder(prefixPending, p)
	if children && !e.GetRecursive() {
		return t.reject(FailedPrecondition, "delete %s: it is a folder with files in it; delete recursively", p)
	}
	abandoned := false // a write in progress at p, now abandoned
	if p != "" {
		f := &cairnv1.File{}
		if t.getProto(fileKey(p), f) {
			t.del(fileKey(p))
			t.pathGone(f)
			deleted++
		}
		if t.getRaw(pendingKey(p)) != nil {
			t.del(pendingKey(p))
			abandoned = true
		}
	}
	if children {
		for _, prefix := range [][]byte{prefixFile, prefixPending} {
			under := underPrefix(prefix, p)
			var keys [][]byte
			var gone []*cairnv1.File
			if err := scan(t.b, under, func(k, v []byte) (bool, error) {
				keys = append(keys, bytes.Clone(k))
				if bytes.HasPrefix(k, prefixFile) {
					f := &cairnv1.File{}
					if err := proto.Unmarshal(v, f); err != nil {
						return false, fmt.Errorf("decode %q: %w", k, err)
					}
					gone = append(gone, f)
				}
				return true, nil
			}); err != nil {
				t.fail(err)
			}
			for _, k := range keys {
				t.del(k)
				if bytes.HasPrefix(k, prefixFile) {
					deleted++
				}
			}
			for _, f := range gone {
				t.pathGone(f)
			}
		}
	} else if deleted == 0 && !abandoned && p != "" {
		return t.reject(NotFound, "delete %s: no such file", p)
	}
	r := ok(t.epoch())
	r.Value = deleted
	return r
}

// File returns the current version of path.
func (m *Machine) File(path string) (*cairnv1.File, bool, error) {
	f := &cairnv1.File{}
	var found bool
	err := m.read(func(r pebble.Reader) error {
		var err error
		found, err = getProto(r, fileKey(path), f)
		return err
	})
	return f, found, err
}

// PendingWrite returns the write of path in progress, if any.
func (m *Machine) PendingWrite(path string) (*cairnv1.PendingWrite, bool, error) {
	pw := &cairnv1.PendingWrite{}
	var found bool
	err := m.read(func(r pebble.Reader) error {
		var err error
		found, err = getProto(r, pendingKey(path), pw)
		return err
	})
	return pw, found, err
}

// ListFiles returns up to limit files at or under prefix with paths after
// after, in path order, and the path to pass as after for the next page
// ("" when there is none).
func (m *Machine) ListFiles(prefix, after string, limit int) ([]*cairnv1.File, string, error) {
	if limit <= 0 {
		limit = 1000
	}
	var out []*cairnv1.File
	more := false
	err := m.read(func(r pebble.Reader) error {
		take := func(f *cairnv1.File) bool {
			if len(out) == limit {
				more = true
				return false
			}
			out = append(out, f)
			return true
		}
		under := prefix
		if prefix == "/" {
			under = ""
		} else if after < prefix {
			f := &cairnv1.File{}
			found, err := getProto(r, fileKey(prefix), f)
			if err != nil {
				return err
			}
			if found {
				take(f)
			}
		}
		lower := underPrefix(prefixFile, under)
		upper := prefixEnd(lower)
		if after != "" {
			if a := append(fileKey(after), 0); bytes.Compare(a, lower) > 0 {
				lower = a
			}
		}
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			f := &cairnv1.File{}
			if err := unmarshalValue(it, f); err != nil {
				return err
			}
			if !take(f) {
				break
			}
		}
		return it.Error()
	})
	if err != nil {
		return nil, "", fmt.Errorf("list files under %s: %w", prefix, err)
	}
	next := ""
	if more && len(out) > 0 {
		next = out[len(out)-1].GetPath()
	}
	return out, next, nil
}

// unmarshalValue decodes the iterator's current value into msg.
func unmarshalValue(it *pebble.Iterator, msg proto.Message) error {
	v, err := it.ValueAndErr()
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(v, msg); err != nil {
		return fmt.Errorf("decode %q: %w", it.Key(), err)
	}
	return nil
}

func (t *txn) fileLoaded(e *cairnv1.FileLoaded) Result {
	p, rej := t.cleanPath(e.GetPath())
	if rej != nil {
		return *rej
	}
	if t.cacheOnly(p) != nil {
		return t.reject(FailedPrecondition, "load %s: it is under a cache-only mount, which has no UFS behind it", p)
	}
	cur := &cairnv1.File{}
	if t.getProto(fileKey(p), cur) {
		r := ok(t.epoch())
		r.Value = cur.GetVersion()
		return r.with(cur) // loaded meanwhile, or written through cairn: the namespace wins
	}
	for dir := persistence.Parent(p); dir != "/"; dir = persistence.Parent(dir) {
		if t.getRaw(fileKey(dir)) != nil {
			return t.reject(FailedPrecondition, "load %s: %s is a file, not a folder", p, dir)
		}
		if t.getRaw(pendingKey(dir)) != nil {
			return t.reject(FailedPrecondition, "load %s: %s is a file being written, not a folder", p, dir)
		}
	}
	if t.hasUnder(prefixFile, p) || t.hasUnder(prefixPending, p) {
		return t.reject(FailedPrecondition, "load %s: it is a folder with files in it", p)
	}
	version := u64(t.getRaw(keyFileVersion)) + 1
	t.put(keyFileVersion, putU64(version))
	// An object's ETag is the loaded file's identity (its etag): cached
	// copies carry it, and cleanup compares it.
	f := &cairnv1.File{
		Path: p, Version: version, Length: e.GetLength(), BlockSize: DefaultBlockSize, Etag: e.GetUfsEtag(),
		WriteType:        cairnv1.WriteType_WRITE_TYPE_THROUGH,
		PersistenceState: cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED,
		CreatedTime:      t.timestamp(), CompletedTime: t.timestamp(), UfsMtime: e.GetUfsMtime(),
		UfsEtag: e.GetUfsEtag(), UfsVersionId: e.GetUfsVersionId(),
	}
	t.putProto(fileKey(p), f)
	r := ok(t.epoch())
	r.Value = version
	return r.with(f)
}

// StaleWrites returns up to limit writes in progress created before t, in
// path order.
func (m *Machine) StaleWrites(t time.Time, limit int) ([]*cairnv1.PendingWrite, error) {
	var out []*cairnv1.PendingWrite
	err := m.read(func(r pebble.Reader) error {
		return scanProto(r, prefixPending, func() *cairnv1.PendingWrite { return &cairnv1.PendingWrite{} }, func(pw *cairnv1.PendingWrite) bool {
			if pw.GetCreatedTime().AsTime().Before(t) {
				out = append(out, pw)
			}
			return len(out) < limit
		})
	})
	return out, err
}

// Files returns the current versions of the paths the namespace has and
// the writes in progress of the paths, in the order asked (missing ones
// left out).
func (m *Machine) Files(paths []string) ([]*cairnv1.File, []*cairnv1.PendingWrite, error) {
	var out []*cairnv1.File
	var pending []*cairnv1.PendingWrite
	err := m.read(func(r pebble.Reader) error {
		for _, p := range paths {
			f := &cairnv1.File{}
			found, err := getProto(r, fileKey(p), f)
			if err != nil {
				return err
			}
			if found {
				out = append(out, f)
			}
			pw := &cairnv1.PendingWrite{}
			if found, err = getProto(r, pendingKey(p), pw); err != nil {
				return err
			}
			if found {
				pending = append(pending, pw)
			}
		}
		return nil
	})
	return out, pending, err
}
