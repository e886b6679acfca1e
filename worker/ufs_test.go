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
