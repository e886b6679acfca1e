package fsm

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// The mount table: which UFS serves which path (u/<path>). A path is served
// by the mount with the longest path that holds it (persistence.Resolve).
// A file's UFS copy is found through the table when it is used, so the
// table may only change where no file depends on it: a mount is added or
// replaced only where nothing is in use (no file, write in progress,
// pending UFS removal or running upload under it), and removed only when
// every file it serves is persisted, and those files are forgotten with it.

// mountRejection is why a mount change is refused (Code OK: it is not).
type mountRejection struct {
	code Code
	msg  string
}

func (r mountRejection) result(t *txn) Result { return t.reject(r.code, "%s", r.msg) }

func refuse(code Code, format string, args ...any) *mountRejection {
	return &mountRejection{code: code, msg: fmt.Sprintf(format, args...)}
}

// mountOf builds the record a mount event leaves, checking its form. A
// mount event from before URIs (uri empty, ufs_root set) is kept as it
// was; others are stored canonical.
func mountOf(e *cairnv1.UfsMounted) (*cairnv1.Mount, *mountRejection) {
	p, err := persistence.CleanPath(e.GetPath())
	if err != nil {
		return nil, refuse(InvalidArgument, "mount: %v", err)
	}
	mt := &cairnv1.Mount{Path: p, CacheOnly: e.GetCacheOnly(), Replication: e.GetReplication(), FromFlag: e.GetFromFlag()}
	switch {
	case e.GetReplication() > MaxReplication:
		return nil, refuse(InvalidArgument, "mount %s: replication %d is above %d", p, e.GetReplication(), MaxReplication)
	case e.GetCacheOnly():
		if p == "/" || e.GetUfsRoot() != "" || e.GetUri() != "" {
			return nil, refuse(InvalidArgument, "mount %s: a cache-only mount is a folder below / with no UFS", p)
		}
		return mt, nil
	case e.GetUri() == "":
		if e.GetUfsRoot() == "" || e.GetUfsRoot()[0] != '/' {
			return nil, refuse(InvalidArgument, "mount %s: the UFS root %q is not an absolute path", p, e.GetUfsRoot())
		}
		mt.UfsRoot = e.GetUfsRoot()
		return mt, nil
	}
	spec, err := persistence.ParseURI(e.GetUri(), e.GetOptions())
	if err != nil {
		return nil, refuse(InvalidArgument, "mount %s: %v", p, err)
	}
	mt.Uri, mt.UfsRoot = spec.URI(), spec.Dir
	if len(spec.Options) > 0 {
		mt.Options = spec.Options
	}
	return mt, nil
}

// mounts reads the mount table.
func mounts(r pebble.Reader) ([]*cairnv1.Mount, error) {
	var out []*cairnv1.Mount
	err := scanProto(r, prefixMount, func() *cairnv1.Mount { return &cairnv1.Mount{} }, func(mt *cairnv1.Mount) bool {
		out = append(out, mt)
		return true
	})
	return out, err
}

// checkMount decides whether the mount mt may be added (or replace the one
// at its path). Repeat: the same mount is in place already (or mt comes
// from a master's flag and an operator's mount holds the path).
func checkMount(r pebble.Reader, mt *cairnv1.Mount) (repeat bool, rej *mountRejection, err error) {
	p := mt.GetPath()
	table, err := mounts(r)
	if err != nil {
		return false, nil, err
	}
	for _, cur := range table {
		if cur.GetPath() == p && proto.Equal(cur, mt) {
			return true, nil, nil
		}
		if cur.GetPath() == p && mt.GetFromFlag() && !cur.GetFromFlag() {
			return true, nil, nil // an operator's mount wins over a master's --ufs
		}
	}
	if mt.GetCacheOnly() || mt.GetFromFlag() {
		// The masters' own flags: the cache-only mount, and --ufs at / (a
		// new leader mounts its own folder, as it always has).
		return false, nil, nil
	}
	for _, cur := range table {
		if cur.GetCacheOnly() && persistence.Under(p, cur.GetPath()) {
			return false, refuse(FailedPrecondition, "mount %s: it is inside the cache-only mount %s, whose files have no UFS", p, cur.GetPath()), nil
		}
	}
	inUse := func(what string) (bool, *mountRejection, error) {
		return false, refuse(FailedPrecondition, "mount %s: %s; a mount is added only where no file depends on the mount table (delete the files, or mount elsewhere)", p, what), nil
	}
	// A path's UFS changes with the new mount when it is under p and not
	// served by a mount deeper than p.
	affected := func(q string) bool {
		if !persistence.Under(q, p) {
			return false
		}
		cur, _, ok := persistence.Resolve(table, q)
		return !ok || cur.GetPath() == p || !persistence.Under(cur.GetPath(), p)
	}
	for _, ns := range []struct {
		prefix []byte
		what   string
	}{{prefixFile, "cairn has files under it (%s), whose UFS copies are where the current mounts put them"}, {prefixPending, "%s is being written under it"}} {
		if q, found, err := firstAffected(r, ns.prefix, p, affected); err != nil || found {
			if err != nil {
				return false, nil, err
			}
			return inUse(fmt.Sprintf(ns.what, q))
		}
	}
	gone, err := ufsDeletes(r)
	if err != nil {
		return false, nil, err
	}
	for _, d := range gone {
		if affected(d.UfsPath) {
			return inUse(fmt.Sprintf("the UFS copy of the deleted %s (%s) waits for removal", d.Path, d.UfsPath))
		}
	}
	specs, err := runningUploads(r)
	if err != nil {
		return false, nil, err
	}
	for id, s := range specs {
		if target := uploadTarget(s); affected(target) {
			return inUse(fmt.Sprintf("upload job %d sends %s there (%s)", id, s.GetPath(), target))
		}
	}
	return false, nil, nil
}

// firstAffected returns the first path at or under p with a key in prefix
// for which affected holds.
func firstAffected(r pebble.Reader, prefix []byte, p string, affected func(string) bool) (string, bool, error) {
	lower, upper := append(append([]byte(nil), prefix...), p...), prefixEnd(underPrefix(prefix, p))
	if p == "/" {
		lower, upper = prefix, prefixEnd(prefix)
	}
	var found string
	err := scanFrom(r, lower, upper, func(k, _ []byte) (bool, error) {
		if q := string(k[len(prefix):]); affected(q) {
			found = q
			return false, nil
		}
		return true, nil
	})
	return found, found != "", err
}

// ufsDeletes reads every UFS copy waiting for removal.
func ufsDeletes(r pebble.Reader) ([]UfsDelete, error) {
	var out []UfsDelete
	err := scan(r, prefixUfsDelete, func(k, v []byte) (bool, error) {
		d := UfsDelete{Path: string(k[len(prefixUfsDelete):]), UfsPath: string(v)}
		if d.UfsPath == "" {
			d.UfsPath = d.Path
		}
		out = append(out, d)
		return true, nil
	})
	return out, err
}

// runningUploads reads the specs of the running PERSIST jobs, by id.
func runningUploads(r pebble.Reader) (map[uint64]*cairnv1.JobSpec, error) {
	var ids []uint64
	rp := runningPrefix(cairnv1.JobKind_JOB_KIND_PERSIST)
	if err := scan(r, rp, func(k, _ []byte) (bool, error) {
		ids = append(ids, u64(k[len(rp):]))
		return true, nil
	}); err != nil {
		return nil, err
	}
	out := map[uint64]*cairnv1.JobSpec{}
	for _, id := range ids {
		j := &cairnv1.Job{}
		if found, err := getProto(r, jobKey(id), j); err != nil {
			return nil, err
		} else if found {
			out[id] = j.GetSpec()
		}
	}
	return out, nil
}

// uploadTarget is the path a PERSIST job writes in the UFS.
func uploadTarget(s *cairnv1.JobSpec) string {
	if s.GetUfsPath() != "" {
		return s.GetUfsPath()
	}
	return s.GetPath()
}

func (t *txn) ufsMounted(e *cairnv1.UfsMounted) Result {
	mt, rej := mountOf(e)
	if rej != nil {
		return rej.result(t)
	}
	repeat, rej, err := checkMount(t.b, mt)
	if err != nil {
		t.fail(err)
	}
	if rej != nil {
		return rej.result(t)
	}
	r := ok(t.epoch())
	if repeat {
		r.Repeat = true
		return r
	}
	t.putProto(mountKey(mt.GetPath()), mt)
	return r.with(mt)
}

// unmountPlan is what removing the mount at path takes: the files it
// serves, which the namespace forgets.
func unmountPlan(r pebble.Reader, path string) (forget []string, rej *mountRejection, err error) {
	p, perr := persistence.CleanPath(path)
	if perr != nil {
		return nil, refuse(InvalidArgument, "unmount: %v", perr), nil
	}
	table, err := mounts(r)
	if err != nil {
		return nil, nil, err
	}
	var mt *cairnv1.Mount
	for _, cur := range table {
		if cur.GetPath() == p {
			mt = cur
		}
	}
	switch {
	case mt == nil:
		return nil, refuse(NotFound, "unmount %s: nothing is mounted there", p), nil
	case p == "/":
		return nil, refuse(FailedPrecondition, "unmount /: every path needs a UFS; mount another one at / instead (when nothing is in use)"), nil
	case mt.GetCacheOnly():
		return nil, refuse(FailedPrecondition, "unmount %s: it is the masters' cache-only mount (--cache-only-mount)", p), nil
	}
	served := func(q string) bool {
		m, _, ok := persistence.Resolve(table, q)
		return ok && m.GetPath() == p
	}
	refused := func(format string, args ...any) ([]string, *mountRejection, error) {
		return nil, refuse(FailedPrecondition, "unmount %s: %s", p, fmt.Sprintf(format, args...)), nil
	}
	var writing string
	if err := scanFrom(r, pendingKey(p), prefixEnd(underPrefix(prefixPending, p)), func(k, _ []byte) (bool, error) {
		if q := string(k[len(prefixPending):]); persistence.Under(q, p) && served(q) {
			writing = q
			return false, nil
		}
		return true, nil
	}); err != nil {
		return nil, nil, err
	}
	if writing != "" {
		return refused("%s is being written", writing)
	}
	var bad *cairnv1.File
	err = scanFrom(r, fileKey(p), prefixEnd(underPrefix(prefixFile, p)), func(k, v []byte) (bool, error) {
		q := string(k[len(prefixFile):])
		if !persistence.Under(q, p) || !served(q) {
			return true, nil
		}
		f := &cairnv1.File{}
		if err := proto.Unmarshal(v, f); err != nil {
			return false, fmt.Errorf("decode %q: %w", k, err)
		}
		if f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
			bad = f
			return false, nil
		}
		forget = append(forget, q)
		return true, nil
	})
	if err != nil {
		return nil, nil, err
	}
	if bad != nil {
		return refused("%s is %s, cached but not in the UFS: unmounting would lose it (wait for its upload, persist it, or delete it)", bad.GetPath(), bad.GetPersistenceState())
	}
	gone, err := ufsDeletes(r)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range gone {
		if served(d.UfsPath) {
			return refused("the UFS copy of the deleted %s (%s) waits for removal from it", d.Path, d.UfsPath)
		}
	}
	specs, err := runningUploads(r)
	if err != nil {
		return nil, nil, err
	}
	for id, s := range specs {
		if served(uploadTarget(s)) {
			return refused("upload job %d sends %s to it", id, s.GetPath())
		}
	}
	um := &cairnv1.UploadMapping{}
	if found, err := getProto(r, keyUploadMapping, um); err != nil {
		return nil, nil, err
	} else if found {
		for _, pm := range um.GetMappings() {
			if served(pm.GetUfsPath()) {
				return refused("the upload mapping sends %s to %s, under it; change the mapping first", pm.GetCachePath(), pm.GetUfsPath())
			}
		}
	}
	return forget, nil, nil
}

func (t *txn) ufsUnmounted(e *cairnv1.UfsUnmounted) Result {
	forget, rej, err := unmountPlan(t.b, e.GetPath())
	if err != nil {
		t.fail(err)
	}
	if rej != nil {
		return rej.result(t)
	}
	p, _ := persistence.CleanPath(e.GetPath())
	t.del(mountKey(p))
	for _, q := range forget {
		t.del(fileKey(q))
		t.del(persistQueueKey(q))
		t.del(lostKey(q))
	}
	r := ok(t.epoch())
	r.Value = uint64(len(forget))
	return r
}

// cacheOnly returns the cache-only mount p is under, if any.
func (t *txn) cacheOnly(p string) *cairnv1.Mount {
	var found *cairnv1.Mount
	if err := scanProto(t.b, prefixMount, func() *cairnv1.Mount { return &cairnv1.Mount{} }, func(mt *cairnv1.Mount) bool {
		if mt.GetCacheOnly() && persistence.Under(p, mt.GetPath()) {
			found = mt
			return false
		}
		return true
	}); err != nil {
		t.fail(err)
	}
	return found
}

// Mounts returns the mount table in path order.
func (m *Machine) Mounts() ([]*cairnv1.Mount, error) {
	var out []*cairnv1.Mount
	err := m.read(func(r pebble.Reader) error {
		var err error
		out, err = mounts(r)
		return err
	})
	return out, err
}

// CheckMount says what UfsMounted e would do now, without journaling it:
// its rejection (Code not OK), or OK with Record the mount it would leave
// (Repeat when that mount is in place already). The leader asks before it
// probes a store and proposes, so that a mount that cannot be made is
// refused with nothing journaled; the state machine checks again at apply.
func (m *Machine) CheckMount(e *cairnv1.UfsMounted) (Result, error) {
	mt, rej := mountOf(e)
	if rej != nil {
		return Result{Code: rej.code, Message: rej.msg}, nil
	}
	var res Result
	err := m.read(func(r pebble.Reader) error {
		repeat, rej, err := checkMount(r, mt)
		switch {
		case err != nil:
			return err
		case rej != nil:
			res = Result{Code: rej.code, Message: rej.msg}
		default:
			res = Result{Code: OK, Repeat: repeat, Record: mt}
		}
		return nil
	})
	return res, err
}

// CheckUnmount says whether UfsUnmounted of path would be refused now,
// and how many files it would forget (Value), without journaling it.
func (m *Machine) CheckUnmount(path string) (Result, error) {
	var res Result
	err := m.read(func(r pebble.Reader) error {
		forget, rej, err := unmountPlan(r, path)
		switch {
		case err != nil:
			return err
		case rej != nil:
			res = Result{Code: rej.code, Message: rej.msg}
		default:
			res = Result{Code: OK, Value: uint64(len(forget))}
		}
		return nil
	})
	return res, err
}
