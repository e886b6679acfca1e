package worker

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cairnhq/cairn/blockstore"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// A reader that missed the cache just before a fill committed the file and
// left must be sent to the cache, not start a second UFS read (the race
// TestReadThroughUFS caught as "2 UFS reads").
func TestReadThroughAfterAFillCommitted(t *testing.T) {
	t.Parallel()
	st, err := blockstore.Open(t.TempDir(), blockstore.Options{Capacity: 1 << 20, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data := []byte("committed by an earlier fill")
	wr, err := st.Create(blockstore.Identity{Path: "/f", Version: 3, Size: int64(len(data)), Checksum: xxhash.Sum64(data)}, blockstore.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wr.Write(data); err != nil {
		t.Fatal(err)
	}
	if _, err := wr.Commit(); err != nil {
		t.Fatal(err)
	}
	u := newUFSAccess(&Worker{store: st}, prometheus.NewRegistry())
	f := &cairnv1.File{Path: "/f", Version: 3, Length: uint64(len(data))}
	err = u.readThrough(context.Background(), f, 0, int64(len(data)), func([]byte) error {
		t.Fatal("readThrough served bytes itself")
		return nil
	})
	if !errors.Is(err, errCached) {
		t.Fatalf("readThrough: %v, want errCached", err)
	}
	if n := testutil.ToFloat64(u.reads); n != 0 {
		t.Fatalf("%v UFS reads, want 0", n)
	}
}

func TestSkipPartialFill(t *testing.T) {
	t.Parallel()
	f := &cairnv1.File{Path: "/f", Length: 100}
	cases := []struct {
		name                string
		off, length         uint64
		perRead, clusterOff bool
		skip                bool
	}{
		{name: "a range, partial caching on: fill the whole file", off: 10, length: 10},
		{name: "a range, cache.partial off", off: 10, length: 10, clusterOff: true, skip: true},
		{name: "a range, off for this read", off: 10, length: 10, perRead: true, skip: true},
		{name: "a head range, off", length: 10, clusterOff: true, skip: true},
		{name: "a tail from an offset, off", off: 90, perRead: true, skip: true},
		{name: "the whole file, off: caches", perRead: true, clusterOff: true},
		{name: "the whole file by length, off: caches", length: 100, clusterOff: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := &Worker{}
			w.partialOff.Store(c.clusterOff)
			if got := w.skipPartialFill(f, c.off, c.length, c.perRead); got != c.skip {
				t.Fatalf("skipPartialFill = %v, want %v", got, c.skip)
			}
		})
	}
}
