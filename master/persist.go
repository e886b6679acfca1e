package master

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/fsm"
	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func (s *namespaceService) PersistFile(ctx context.Context, req *connect.Request[cairnv1.PersistFileRequest]) (*connect.Response[cairnv1.PersistFileResponse], error) {
	return onLeader(ctx, s.m, req, s.persistFile)
}

func (s *namespaceService) persistFile(ctx context.Context, msg *cairnv1.PersistFileRequest) (*cairnv1.PersistFileResponse, error) {
	p, err := cleanPath(msg.GetPath())
	if err != nil {
		return nil, err
	}
	r, err := s.m.proposeOne(ctx, "persist "+p, fromCaller(ctx, &cairnv1.Event{Kind: &cairnv1.Event_PersistRequested{
		PersistRequested: &cairnv1.PersistRequested{Path: p}}}))
	if err != nil {
		return nil, err
	}
	f, _ := r.Record.(*cairnv1.File)
	return &cairnv1.PersistFileResponse{File: f}, nil
}

// runPersistScheduler is the leader's persistence scheduler: every
// PersistInterval it turns files waiting for an upload into PERSIST jobs
// (one task each, for any worker that owns the file), in batches. A path
// whose previous upload may still be acting (running, or cancelled while
// its worker's lease has not ended) waits, so two uploads of one path
// never overlap and the UFS never ends with an older version than the one
// the journal records.
func (m *Master) runPersistScheduler(ctx context.Context) {
	for range ticks(ctx, m.cfg.PersistInterval) {
		if table, err := m.j.State().Mounts(); err == nil {
			m.mounts.Retain(table) // close the stores of mounts that are gone
		}
		if err := m.schedulePersists(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("persistence scheduler", "err", err)
		}
		if err := m.removeDeletedUfsCopies(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("remove UFS copies of deleted files", "err", err)
		}
	}
}

// persistJobs are the PERSIST jobs for files waiting for an upload (one
// task each, for any worker that owns the file), leaving out the paths
// whose previous upload may still be acting (busy).
func persistJobs(files []*cairnv1.File, busy map[string]bool, limit uint32) []*cairnv1.Event {
	var evs []*cairnv1.Event
	for _, f := range files {
		if busy[f.GetPath()] {
			continue
		}
		spec := &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, Path: f.GetPath(), Version: f.GetVersion(), UfsPath: f.GetUfsPath()}
		evs = append(evs, jobStarted(spec, []string{""}, limit, "persistence scheduler"))
	}
	return evs
}

// uploadsBusy reads, of paths, those whose last upload may still be acting
// at now.
func uploadsBusy(st *fsm.Machine, paths []string, now time.Time) (map[string]bool, error) {
	busy := map[string]bool{}
	for _, p := range paths {
		b, err := st.UploadBusy(p, now)
		if err != nil {
			return nil, err
		}
		busy[p] = b
	}
	return busy, nil
}

func (m *Master) schedulePersists(ctx context.Context) error {
	st := m.j.State()
	after := ""
	for {
		files, err := st.UploadQueue(after, 256)
		if err != nil || len(files) == 0 {
			return err
		}
		after = files[len(files)-1].GetPath()
		paths := make([]string, len(files))
		for i, f := range files {
			paths[i] = f.GetPath()
		}
		busy, err := uploadsBusy(st, paths, time.Now())
		if err != nil {
			return err
		}
		evs := persistJobs(files, busy, m.cfg.DeliveryLimit)
		if len(evs) == 0 {
			continue
		}
		res, _, err := m.j.Propose(ctx, evs...)
		if err != nil {
			return journalErr("schedule uploads", err)
		}
		started := 0
		for _, r := range res {
			if r.Code == fsm.OK && !r.Repeat {
				started++
			}
		}
		m.metrics.jobsStarted.WithLabelValues(kindLabel(cairnv1.JobKind_JOB_KIND_PERSIST)).Add(float64(started))
		m.log.Debug("uploads scheduled", "jobs", started)
	}
}

// ufsCopyPlan decides, of the UFS copies of deleted files (gone), which to
// remove and which are settled (removed, or kept because the path exists
// again: back). A path whose upload may still be acting (busy) waits: a
// cancelled upload's worker may still rename its file into place until its
// lease ends.
func ufsCopyPlan(gone []fsm.UfsDelete, back, busy map[string]bool) (remove, settled []fsm.UfsDelete) {
	for _, d := range gone {
		if busy[d.Path] {
			continue
		}
		if !back[d.Path] {
			remove = append(remove, d)
		}
		settled = append(settled, d)
	}
	return remove, settled
}

// removeDeletedUfsCopies removes the UFS copies of deleted files, so that a
// deleted file never comes back from the UFS (a read of a path the
// namespace lacks loads it from there), as ufsCopyPlan says, and journals
// the settled ones.
func (m *Master) removeDeletedUfsCopies(ctx context.Context) error {
	st := m.j.State()
	gone, err := st.UfsDeletes(256)
	if err != nil || len(gone) == 0 {
		return err
	}
	// One read for whether each path came back (a file or a write in
	// progress), which keeps its UFS copy.
	paths := make([]string, len(gone))
	for i, d := range gone {
		paths[i] = d.Path
	}
	files, writes, err := st.Files(paths)
	if err != nil {
		return err
	}
	back := map[string]bool{}
	for _, f := range files {
		back[f.GetPath()] = true
	}
	for _, w := range writes {
		back[w.GetPath()] = true
	}
	busy, err := uploadsBusy(st, paths, time.Now())
	if err != nil {
		return err
	}
	remove, settled := ufsCopyPlan(gone, back, busy)
	table, err := st.Mounts()
	if err != nil {
		return err
	}
	failed := map[string]bool{}
	for _, d := range remove {
		tg, err := m.mounts.Resolve(ctx, table, d.UfsPath)
		if errors.Is(err, persistence.ErrCacheOnly) || errors.Is(err, persistence.ErrNoMount) {
			continue // no UFS behind the path: nothing to remove
		}
		if err == nil {
			err = tg.UFS.Delete(ctx, tg.Path)
		}
		if err != nil && !errors.Is(err, persistence.ErrNotFound) {
			m.log.Warn("remove the UFS copy of a deleted file", "path", d.Path, "ufs_path", d.UfsPath, "err", err)
			failed[d.Path] = true
			continue
		}
		m.log.Debug("removed the UFS copy of a deleted file", "path", d.Path, "ufs_path", d.UfsPath)
	}
	var done []*cairnv1.Event
	for _, d := range settled {
		if !failed[d.Path] {
			done = append(done, &cairnv1.Event{Kind: &cairnv1.Event_UfsCopyRemoved{UfsCopyRemoved: &cairnv1.UfsCopyRemoved{Path: d.Path, UfsPath: d.UfsPath}}})
		}
	}
	if len(done) == 0 {
		return nil
	}
	_, _, err = m.j.Propose(ctx, done...)
	return err
}

func (s *namespaceService) GetUploadMapping(ctx context.Context, _ *connect.Request[cairnv1.GetUploadMappingRequest]) (*connect.Response[cairnv1.GetUploadMappingResponse], error) {
	m, found, err := s.m.j.State().UploadMapping()
	if err != nil {
		return nil, internal(err)
	}
	resp := &cairnv1.GetUploadMappingResponse{}
	if found {
		resp.Mapping = m
	}
	return connect.NewResponse(resp), nil
}

// checkMapping parses a mapping file's text and checks it against the
// masters' cache-only mount (mount).
func checkMapping(text []byte, mount string) (*cairnv1.UploadMapping, error) {
	um, err := persistence.ParseMapping(text)
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	if mp := um.GetCacheOnlyMountPoint(); mp != mount {
		if mount == "" {
			return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("the mapping's cacheOnlyMountPoint is %s, but the masters have no cache-only mount (start them with --cache-only-mount %s)", mp, mp))
		}
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("the mapping's cacheOnlyMountPoint is %s, but the cache-only mount is %s", mp, mount))
	}
	return um, nil
}

func (s *namespaceService) SetUploadMapping(ctx context.Context, req *connect.Request[cairnv1.SetUploadMappingRequest]) (*connect.Response[cairnv1.SetUploadMappingResponse], error) {
	return onLeader(ctx, s.m, req, s.setUploadMapping)
}

func (s *namespaceService) setUploadMapping(ctx context.Context, msg *cairnv1.SetUploadMappingRequest) (*cairnv1.SetUploadMappingResponse, error) {
	um, err := checkMapping([]byte(msg.GetMappingJson()), s.m.cfg.CacheOnlyMount)
	if err != nil {
		return nil, err
	}
	table, err := s.m.j.State().Mounts()
	if err != nil {
		return nil, internal(err)
	}
	if err := mappingTargets(um, table); err != nil {
		return nil, err
	}
	if _, _, err := s.m.propose(ctx, "set the upload mapping", fromCaller(ctx, &cairnv1.Event{Kind: &cairnv1.Event_UploadMappingSet{
		UploadMappingSet: &cairnv1.UploadMappingSet{Mapping: um}}})); err != nil {
		return nil, err
	}
	s.m.log.Info("upload mapping replaced", "mount_point", um.GetCacheOnlyMountPoint(), "mappings", len(um.GetMappings()), "black_list", len(um.GetBlackList()))
	return &cairnv1.SetUploadMappingResponse{Mapping: um}, nil
}

// journalMapping runs on the leader: it journals the mapping given with
// --async-upload-mapping when the journal has none yet (one replaced
// through the API since stays in force).
func (m *Master) journalMapping(ctx context.Context) {
	if m.mapping == nil {
		return
	}
	if _, found, err := m.j.State().UploadMapping(); err != nil || found {
		return
	}
	if _, ok := m.retry(ctx, "journal the upload mapping", &cairnv1.Event{Kind: &cairnv1.Event_UploadMappingSet{
		UploadMappingSet: &cairnv1.UploadMappingSet{Mapping: m.mapping}}}); ok {
		m.log.Info("upload mapping journaled from --async-upload-mapping", "mappings", len(m.mapping.GetMappings()))
	}
}

// mappingTargets checks that every UFS path of a mapping reaches a UFS
// through the mount table: the seed's /cache-only/a → /s3/a needs a UFS
// at /s3 (or above it), and a target under the cache-only mount has none.
func mappingTargets(um *cairnv1.UploadMapping, table []*cairnv1.Mount) error {
	for _, pm := range um.GetMappings() {
		if _, _, err := persistence.ResolveUFS(table, pm.GetUfsPath()); err != nil {
			return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("the mapping sends %s to %s: %w", pm.GetCachePath(), pm.GetUfsPath(), err))
		}
	}
	return nil
}
