package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairnhq/cairn/blockstore"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// errNoCopy: a PERSIST task found no copy of its file to upload.
var errNoCopy = errors.New("no copy to upload")

// persistMargin is how much of its lease an upload must have left to put
// its file in place: the rename happens well inside the lease, never at
// its edge.
const persistMargin = time.Second

// persist is the PERSIST executor: it uploads this worker's copy of the
// job's file and version to its UFS path (the mapped one, or its own)
// through a temporary file, checks size
// and checksum on the way, and renames it into place only while its lease
// holds. The UFS modification time goes into the final report, and the
// local copy becomes evictable.
func (w *Worker) persist(ctx context.Context, r *run) error {
	spec := r.lt.GetSpec()
	rd, err := w.store.Open(spec.GetPath(), spec.GetVersion())
	if errors.Is(err, blockstore.ErrNotCached) {
		// An owner that has no copy yet (it became an owner when the map
		// changed, say) fetches one from the workers that hold it.
		f := &cairnv1.File{Path: spec.GetPath(), Version: spec.GetVersion(), PersistenceState: cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTING}
		if w.fromNeighbor(ctx, f) {
			rd, err = w.store.Open(spec.GetPath(), spec.GetVersion())
		}
	}
	if err != nil {
		return fmt.Errorf("%w: upload %s version %d: no copy of that version here or on the other owners: %v", errNoCopy, spec.GetPath(), spec.GetVersion(), err)
	}
	e := rd.Entry()
	target := spec.GetUfsPath()
	if target == "" {
		target = spec.GetPath()
	}
	tg, err := w.ufs.resolve(ctx, target, true)
	if err != nil {
		return fmt.Errorf("upload %s: %w", spec.GetPath(), err)
	}
	uw, err := tg.UFS.Create(ctx, tg.Path)
	if err != nil {
		return fmt.Errorf("upload %s to %s: %w", spec.GetPath(), target, err)
	}
	defer uw.Abort()
	// The block files go to the UFS writer, which checksums the bytes as
	// it writes them (with direct I/O on a local UFS); the sum is checked
	// against the copy's identity before the file is put in place, so a
	// cached copy that rotted on disk is never uploaded.
	dir := w.store.Dir(spec.GetPath(), spec.GetVersion())
	for b := int64(0); b*e.BlockSize < e.Size; b++ {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		bf, err := os.Open(filepath.Join(dir, strconv.FormatInt(b, 10)))
		if err != nil {
			return fmt.Errorf("upload %s: block %d of the cached copy: %w", spec.GetPath(), b, err)
		}
		want := min(e.BlockSize, e.Size-b*e.BlockSize)
		n, err := uw.ReadFrom(io.LimitReader(bf, want))
		bf.Close()
		if err != nil {
			return fmt.Errorf("upload %s to %s: %w", spec.GetPath(), target, err)
		}
		if n != want {
			return fmt.Errorf("upload %s: block %d of the cached copy has %d bytes, want %d", spec.GetPath(), b, n, want)
		}
	}
	size, sum, err := uw.Written()
	if err != nil {
		return err
	}
	if size != e.Size || sum != e.Checksum {
		return fmt.Errorf("upload %s: the UFS copy has %d bytes with checksum %016x, the cached copy's identity says %d bytes with %016x; nothing was put in place",
			spec.GetPath(), size, sum, e.Size, e.Checksum)
	}
	// Every byte goes to the store first (the temporary file synced, every
	// part of a multipart upload sent): what is left for the lease's check
	// is the step that publishes the file, a rename or the upload's
	// completion.
	if err := uw.Flush(); err != nil {
		return fmt.Errorf("upload %s to %s: %w", spec.GetPath(), target, err)
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if left := time.Until(time.Unix(0, r.deadline.Load())); left < persistMargin {
		return fmt.Errorf("%w: %s of the lease left, too little to put %s in place", errLeaseLost, left.Round(time.Millisecond), spec.GetPath())
	}
	info, err := uw.Commit()
	if err != nil {
		return fmt.Errorf("upload %s: %w", spec.GetPath(), err)
	}
	r.ufsMtime, r.ufsEtag, r.ufsVersion = timestamppb.New(info.ModTime), info.ETag, info.VersionID
	r.tally.add(&cairnv1.Counters{Uploaded: 1, UploadedBytes: uint64(e.Size)})
	w.tm.uploadedBytes.Add(float64(e.Size))
	if err := w.store.MarkPersisted(spec.GetPath(), spec.GetVersion()); err != nil {
		w.log.Debug("mark the uploaded copy persisted", "path", spec.GetPath(), "err", err)
	}
	return nil
}

// persistedSyncInterval is how often a worker asks the namespace whether
// copies it holds as unpersisted have reached the UFS meanwhile.
const persistedSyncInterval = 10 * time.Second

// persistedSyncPaths bounds the copies one pass asks about.
const persistedSyncPaths = 10 * cleanupBatch

// runPersistedSync marks persisted the copies this worker holds as
// unpersisted once the namespace says their version was uploaded. Only
// the worker that ran an upload marks its own copy; without this, the
// other replicas of an ASYNC_THROUGH or mapped file would stay
// unevictable for good, and so would a copy whose worker stopped between
// the upload and the mark.
func (w *Worker) runPersistedSync() {
	defer w.wg.Done()
	ctx, cancel := w.ctx()
	defer cancel()
	for w.sleep(persistedSyncInterval) {
		if n, err := w.syncPersisted(ctx); err != nil {
			w.log.Debug("check unpersisted copies against the namespace", "err", err)
		} else if n > 0 {
			w.log.Info("copies uploaded to the UFS are now evictable here", "files", n)
		}
	}
}

// syncPersisted is one pass of runPersistedSync; it returns how many
// copies it marked.
func (w *Worker) syncPersisted(ctx context.Context) (int, error) {
	var es []blockstore.Entry
	w.store.List("", func(e blockstore.Entry) bool {
		if e.Unpersisted {
			es = append(es, e)
		}
		return true
	})
	// At most persistedSyncPaths per pass, in path order from where the
	// last pass stopped: a backlog of a million files waiting for upload
	// costs the masters ten lookups per worker per pass, not a thousand.
	sort.Slice(es, func(i, j int) bool { return es[i].Path < es[j].Path })
	from := sort.Search(len(es), func(i int) bool { return es[i].Path > w.persistedCursor })
	es = slices.Concat(es[from:], es[:from])
	es = es[:min(len(es), persistedSyncPaths)]
	marked := 0
	err := w.inBatches(ctx, es, func(batch []blockstore.Entry, ns map[string]*cairnv1.File, _ map[string]*cairnv1.PendingWrite) error {
		w.persistedCursor = batch[len(batch)-1].Path // a failed lookup starts the next pass with its batch
		for _, e := range batch {
			f := ns[e.Path]
			if f.GetVersion() != e.Version || f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
				continue
			}
			if err := w.store.MarkPersisted(e.Path, e.Version); err == nil {
				marked++
			}
		}
		return nil
	})
	if err != nil {
		return marked, err
	}
	return marked, nil
}

// runRepin makes unevictable again the copies whose files are no longer
// persisted: when the heartbeat's count of files whose UFS copy could not
// be trusted moves (the persistence checker took one back, or a
// CACHE_THROUGH write raced an older upload; and once after a start, when
// the count is not zero), it
// checks every copy held as persisted against the namespace: a copy of a
// version the checker took back (ufs_drift set, not PERSISTED) is marked
// unpersisted, until runPersistedSync sees it uploaded again. A pass that
// fails is tried again a second later. Such files are rare; a pass costs
// one namespace lookup per cleanupBatch copies.
func (w *Worker) runRepin() {
	defer w.wg.Done()
	ctx, cancel := w.ctx()
	defer cancel()
	for {
		select {
		case <-w.stop:
			return
		case <-w.repin:
		}
		n, err := w.repinCopies(ctx)
		if err != nil {
			w.log.Warn("check copies held as persisted against the namespace", "err", err)
			select {
			case w.repin <- struct{}{}:
			default:
			}
			if !w.sleep(time.Second) {
				return
			}
			continue
		}
		if n > 0 {
			w.log.Warn("copies whose UFS copy went away or changed are unevictable again", "files", n)
		}
	}
}

// repinCopies is one pass of runRepin; it returns how many copies it
// marked unpersisted.
func (w *Worker) repinCopies(ctx context.Context) (int, error) {
	var es []blockstore.Entry
	w.store.List("", func(e blockstore.Entry) bool {
		if !e.Unpersisted {
			es = append(es, e)
		}
		return true
	})
	marked := 0
	err := w.inBatches(ctx, es, func(batch []blockstore.Entry, ns map[string]*cairnv1.File, _ map[string]*cairnv1.PendingWrite) error {
		for _, e := range batch {
			// Only files the checker took back: a MUST_CACHE file that was
			// never persisted stays evictable, and stale copies are
			// cleanup's business.
			f, ok := ns[e.Path]
			if !ok || f.GetVersion() != e.Version || f.GetUfsDrift() == "" ||
				f.GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
				continue
			}
			if err := w.store.MarkUnpersisted(e.Path, e.Version); err == nil {
				marked++
			}
		}
		return nil
	})
	return marked, err
}
