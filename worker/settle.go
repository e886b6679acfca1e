package worker

import (
	"context"
	"errors"
	"sort"

	"github.com/cairnhq/cairn/blockstore"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// A path's cache keeps the version the namespace publishes beside a newer
// one whose write has not completed (blockstore's previous slot), so that
// a write that never completes takes nothing with it. The older copy goes
// once the newer version is known to be published: at once when a reader
// names it (published), or at the next settle pass, which asks the
// namespace about every path holding two versions.

// published tells the store that a client read version of path, which it
// took from the namespace: an older version kept beside it goes.
func (w *Worker) published(path string, version uint64) {
	if version == 0 {
		return
	}
	if n := w.store.Published(path, version); n > 0 {
		w.log.Debug("a newer version is published; dropped the older copy kept beside it", "path", path, "version", version, "bytes", n)
	}
}

// runSettle runs a settle pass every persistedSyncInterval.
func (w *Worker) runSettle() {
	defer w.wg.Done()
	ctx, cancel := w.ctx()
	defer cancel()
	for w.sleep(persistedSyncInterval) {
		if n, err := w.settle(ctx); err != nil {
			w.log.Debug("check the versions kept beside newer ones against the namespace", "err", err)
		} else if n > 0 {
			w.log.Info("dropped cached versions the namespace no longer publishes nor writes", "copies", n)
		}
	}
}

// settle asks the namespace about every path holding two versions and
// drops each version that is neither the published one nor the write in
// progress: the older one once the newer is published, the newer one
// once its write ended without completing (abandoned, or overtaken by
// another write), which makes the published one current again. It returns
// how many copies it dropped.
//
// The namespace lookup is linearizable and the versions are listed before
// it: a version held here was created before its copy was written, so
// the answer knows it, and a version that is not the write in progress in
// that answer can never be published.
func (w *Worker) settle(ctx context.Context) (int, error) {
	held := map[string][]uint64{}
	var cur []blockstore.Entry
	w.store.Previous(func(prev, c blockstore.Entry) bool {
		held[c.Path] = []uint64{prev.Version, c.Version}
		cur = append(cur, c)
		return true
	})
	sort.Slice(cur, func(i, j int) bool { return cur[i].Path < cur[j].Path })
	dropped := 0
	err := w.inBatches(ctx, cur, func(batch []blockstore.Entry, ns map[string]*cairnv1.File, pending map[string]*cairnv1.PendingWrite) error {
		for _, e := range batch {
			for _, v := range held[e.Path] {
				if v == ns[e.Path].GetVersion() || v == pending[e.Path].GetVersion() {
					continue
				}
				switch _, err := w.store.DeleteKeeping(e.Path, v, ns[e.Path].GetVersion()); {
				case err == nil:
					dropped++
				case !errors.Is(err, blockstore.ErrNotCached):
					w.log.Warn("drop a cached version the namespace no longer publishes", "path", e.Path, "version", v, "err", err)
				}
			}
		}
		return nil
	})
	return dropped, err
}
