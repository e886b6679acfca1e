package master

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// Outcomes of one check of a persisted file's UFS copy, the label values of
// cairn_persist_checks_total.
const (
	checkIntact  = "intact"
	checkGone    = "gone"
	checkChanged = "changed"
	checkError   = "error"
)

// ufsDrift decides what a Stat of a PERSISTED file's UFS copy says, given
// the store's answer (info, err). Only the store's own "not found" means
// gone: any other error (an unreachable store, refused credentials, a
// timeout) says nothing about the copy, so it is an error and no event.
// A copy is changed when its size is not the file's length, or, where
// the journal recorded them, its ETag (object stores) or its modification
// time differ. It returns the event to journal (nil when there is none)
// and the outcome.
func ufsDrift(f *cairnv1.File, info persistence.Info, err error) (*cairnv1.UfsCopyDrifted, string) {
	ev := &cairnv1.UfsCopyDrifted{Path: f.GetPath(), Version: f.GetVersion(), UfsMtime: f.GetUfsMtime(), UfsEtag: f.GetUfsEtag()}
	where := ufsPath(f)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		ev.Kind, ev.Detail = cairnv1.UfsDriftKind_UFS_DRIFT_KIND_GONE, fmt.Sprintf("nothing at %s in the UFS", where)
		return ev, checkGone
	case err != nil:
		return nil, checkError
	}
	ev.Kind = cairnv1.UfsDriftKind_UFS_DRIFT_KIND_CHANGED
	rec := f.GetUfsMtime()
	switch {
	case info.IsDir:
		ev.Detail = fmt.Sprintf("%s is a folder now", where)
	case info.Size != int64(f.GetLength()):
		ev.Detail = fmt.Sprintf("%s has %d bytes, version %d has %d", where, info.Size, f.GetVersion(), f.GetLength())
	case f.GetUfsEtag() != "" && info.ETag != "" && info.ETag != f.GetUfsEtag():
		ev.Detail = fmt.Sprintf("%s has ETag %s, the journal recorded %s", where, info.ETag, f.GetUfsEtag())
	case rec != nil && !info.ModTime.Equal(rec.AsTime()):
		ev.Detail = fmt.Sprintf("%s was modified at %s, the journal recorded %s", where,
			info.ModTime.UTC().Format(time.RFC3339Nano), rec.AsTime().UTC().Format(time.RFC3339Nano))
	default:
		return nil, checkIntact
	}
	return ev, checkChanged
}

// ufsPath is where a file is in the UFS.
func ufsPath(f *cairnv1.File) string {
	if p := f.GetUfsPath(); p != "" {
		return p
	}
	return f.GetPath()
}

// runPersistChecker is the leader's persistence checker (the seed's
// persistence.checker.interval): every PersistCheckInterval it compares
// the UFS copies of up to PersistCheckBatch files, from where the last
// tick stopped, with what the journal recorded, and journals the PERSISTED
// files whose copy went away or changed out of band. It sweeps the
// namespace again from the start when it reaches the end.
func (m *Master) runPersistChecker(ctx context.Context) {
	if m.cfg.PersistCheckInterval < 0 {
		return
	}
	cursor := ""
	for range ticks(ctx, m.cfg.PersistCheckInterval) {
		next, err := m.checkPersisted(ctx, cursor)
		if err != nil && ctx.Err() == nil {
			m.log.Warn("persistence checker", "err", err)
			continue
		}
		cursor = next
	}
}

// checkPersisted checks the files after the path after (one tick's
// batch) and returns where the next tick starts ("" from the beginning).
// A mount whose store does not answer is skipped for the rest of the
// tick: its files are checked again on the next sweep, and nothing is
// journaled about them meanwhile.
func (m *Master) checkPersisted(ctx context.Context, after string) (string, error) {
	st := m.j.State()
	files, next, err := st.ListFiles("/", after, m.cfg.PersistCheckBatch)
	if err != nil {
		return after, err
	}
	table, err := st.Mounts()
	if err != nil {
		return after, err
	}
	var evs []*cairnv1.Event
	down := map[string]bool{}
	for _, f := range files {
		if f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
			continue
		}
		if _, writing, err := st.PendingWrite(f.GetPath()); err != nil || writing {
			continue // a write through may be changing the UFS copy right now
		}
		tg, err := m.mounts.Resolve(ctx, table, ufsPath(f))
		if err != nil {
			continue // no UFS behind the path (cache-only, unmounted)
		}
		mp := tg.Mount.GetPath()
		if down[mp] {
			continue
		}
		info, serr := tg.UFS.Stat(ctx, tg.Path)
		if ctx.Err() != nil {
			return after, ctx.Err()
		}
		ev, outcome := ufsDrift(f, info, serr)
		m.metrics.persistChecks.WithLabelValues(outcome).Inc()
		if outcome == checkError {
			down[mp] = true
			m.log.Warn("persistence checker: the UFS did not answer; its files are checked again on the next sweep",
				"mount", tg.Label(), "path", f.GetPath(), "err", serr)
			continue
		}
		if ev != nil {
			evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_UfsCopyDrifted{UfsCopyDrifted: ev}})
		}
	}
	if len(evs) > 0 {
		res, _, err := m.j.Propose(ctx, evs...)
		if err != nil {
			return after, journalErr("journal UFS copies changed out of band", err)
		}
		for i, r := range res {
			if r.Value != 1 {
				continue // moot: cairn changed the file meanwhile
			}
			d := evs[i].GetUfsCopyDrifted()
			m.log.Warn("a persisted file's UFS copy changed out of band; the file is not persisted any more",
				"path", d.GetPath(), "version", d.GetVersion(), "kind", d.GetKind().String(), "detail", d.GetDetail())
		}
	}
	return next, nil
}
