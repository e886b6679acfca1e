package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// TestMountTableFreshAndShared: every caller gets a table fetched after it
// asked (so a mount added before an access is seen by it), and callers
// that arrive while a fetch is in flight share the next one.
func TestMountTableFreshAndShared(t *testing.T) {
	t.Parallel()
	var fetches atomic.Int64
	var version atomic.Int64 // what the masters' table is now
	release := make(chan struct{})
	mt := &mountTable{fetch: func(ctx context.Context) ([]*cairnv1.Mount, error) {
		fetches.Add(1)
		v := version.Load()
		<-release
		return []*cairnv1.Mount{{Path: "/", Replication: uint32(v)}}, nil
	}}
	// The first caller starts a fetch that sees version 0 and is held.
	first := make(chan []*cairnv1.Mount)
	go func() { tab, _ := mt.get(context.Background()); first <- tab }()
	for fetches.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	// The table changes; the callers that arrive now must not get the
	// fetch already in flight, and share one fetch between them.
	version.Store(1)
	var wg sync.WaitGroup
	got := make([]uint32, 20)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tab, err := mt.get(context.Background())
			if err == nil {
				got[i] = tab[0].GetReplication()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them all register
	close(release)
	if tab := <-first; tab[0].GetReplication() != 0 {
		t.Fatalf("the first caller got %v", tab)
	}
	wg.Wait()
	for i, v := range got {
		if v != 1 {
			t.Fatalf("caller %d got a table fetched before it asked (version %d)", i, v)
		}
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches for 21 callers in two waves, want 2", n)
	}
	if c := mt.cached(); c[0].GetReplication() != 1 {
		t.Fatalf("cached table %v", c)
	}
	// A failed fetch is an error for its callers; the last table stays.
	mt.fetch = func(context.Context) ([]*cairnv1.Mount, error) { return nil, errors.New("no master answers") }
	if _, err := mt.get(context.Background()); err == nil {
		t.Fatal("a failed fetch gave a table")
	}
	if c := mt.cached(); len(c) != 1 {
		t.Fatalf("the last table was dropped: %v", c)
	}
}
