package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cairnhq/cairn/client"
)

// readBack reads every file the final reads found through the data path
// and compares it, byte for byte, with what its put wrote. A file that
// cannot be read back right, when another put of its path sent its bytes
// and never completed, is counted apart (known): see overwrittenBy.
func (w *workload) readBack(ctx context.Context, found map[string]entry) (known []string, err error) {
	files := w.c.adminClient().Files()
	var errs []error
	for p, e := range found {
		w.h.mu.Lock()
		want, ok := w.h.contents[e.Sum]
		w.h.mu.Unlock()
		if !ok {
			errs = append(errs, fmt.Errorf("%s has checksum %x, which no put of the drill wrote", p, e.Sum))
			continue
		}
		var buf strings.Builder
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		f, err := files.Get(rctx, p, &buf, client.GetOptions{NoShortCircuit: true})
		cancel()
		if err == nil && buf.String() == string(want) {
			continue
		}
		if err == nil {
			err = fmt.Errorf("%s (version %d) reads back %d bytes that differ from the %d its put wrote", p, f.GetVersion(), buf.Len(), len(want))
		}
		if by := w.overwrittenBy(p, e.Version); len(by) > 0 {
			known = append(known, fmt.Sprintf("%s version %d: %v; puts of versions %v sent their bytes and never completed", p, e.Version, err, by))
			continue
		}
		if by := w.landedLate(ctx, p, e.Version); len(by) > 0 {
			known = append(known, fmt.Sprintf("%s version %d: %v; the UFS holds the bytes of the put of version %v, which failed before version %d was written, and whose bytes landed after", p, e.Version, err, by, e.Version))
			continue
		}
		errs = append(errs, fmt.Errorf("read %s back: %w", p, err))
		if len(errs) > 5 {
			break
		}
	}
	return known, errors.Join(errs...)
}

// landedLate returns the versions of the puts of p that never completed and
// whose bytes are what the UFS holds at p, whenever they failed: a put's
// bytes held up in a partition (a worker cut off, TCP retransmitting) can
// reach the UFS after the client gave up and after a later put completed
// (docs/failover-drills.md, Known issues: the same issue, landing late).
func (w *workload) landedLate(ctx context.Context, p string, v uint64) []uint64 {
	got, err := w.c.ufs(ctx, p)
	rec, ok := got[p]
	if err != nil || !ok {
		return nil
	}
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	var out []uint64
	for _, o := range w.h.ops {
		if o.Path == p && o.Pending != 0 && o.Pending != v && o.Sent != 0 && !o.OK && o.Sum == rec.sum {
			out = append(out, o.Pending)
		}
	}
	return out
}

// overwrittenBy returns the versions of the puts of p that sent their bytes
// to a worker, never completed, and were still going when the put of
// version v began to send its own. The primary writes a THROUGH put's
// bytes into the UFS at the file's path before the namespace publishes
// the version (a cached put's likewise replace the worker's cached copy),
// so a put that never completes can take the published version's bytes
// with it (docs/failover-drills.md, "Known issues").
func (w *workload) overwrittenBy(p string, v uint64) []uint64 {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	var sent int64 = -1
	for _, o := range w.h.ops {
		if o.Path == p && o.Pending == v {
			sent = o.Sent
		}
	}
	var out []uint64
	for _, o := range w.h.ops {
		if o.Path == p && o.Pending != 0 && o.Pending != v && o.Sent != 0 && !o.OK && (sent < 0 || o.Return > sent) {
			out = append(out, o.Pending)
		}
	}
	return out
}
