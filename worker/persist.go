package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

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
	if err != nil {
		return fmt.Errorf("upload %s version %d: no copy of that version here: %w", spec.GetPath(), spec.GetVersion(), err)
	}
	e := rd.Entry()
	root, err := w.ufs.root(ctx)
	if err != nil {
		return fmt.Errorf("upload %s: %w", spec.GetPath(), err)
	}
	target := spec.GetUfsPath()
	if target == "" {
		target = spec.GetPath()
	}
	uw, err := root.Create(ctx, target)
	if err != nil {
		return fmt.Errorf("upload %s to %s: %w", spec.GetPath(), target, err)
	}
	defer uw.Abort()
	sum := xxhash.New()
	buf := make([]byte, 1<<20)
	var off int64
	for off < e.Size {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		n, err := rd.ReadAt(buf[:min(int64(len(buf)), e.Size-off)], off)
		if err != nil && !(errors.Is(err, io.EOF) && off+int64(n) == e.Size) {
			return fmt.Errorf("upload %s: read the cached copy: %w", spec.GetPath(), err)
		}
		sum.Write(buf[:n])
		if _, err := uw.Write(buf[:n]); err != nil {
			return fmt.Errorf("upload %s: %w", spec.GetPath(), err)
		}
		off += int64(n)
	}
	if sum.Sum64() != e.Checksum {
		return fmt.Errorf("upload %s: the cached copy reads back with checksum %016x, its identity says %016x; nothing was put in the UFS", spec.GetPath(), sum.Sum64(), e.Checksum)
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
	if info.Size != e.Size {
		return fmt.Errorf("upload %s: the UFS file has %d bytes, the cached copy %d", spec.GetPath(), info.Size, e.Size)
	}
	r.ufsMtime = timestamppb.New(info.ModTime)
	r.tally.add(&cairnv1.Counters{Uploaded: 1, UploadedBytes: uint64(e.Size)})
	w.tm.uploadedBytes.Add(float64(e.Size))
	if err := w.store.MarkPersisted(spec.GetPath(), spec.GetVersion()); err != nil {
		w.log.Debug("mark the uploaded copy persisted", "path", spec.GetPath(), "err", err)
	}
	return nil
}
