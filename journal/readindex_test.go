package journal

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A read index from any node covers every write acknowledged before it.
func TestReadIndexCoversAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	js := tcpCluster(t, 3, nil)
	noteCalls(js)
	for i := range 50 {
		w, r := js[i%3], js[(i+1)%3]
		idx, err := leadNote(context.Background(), w, "w")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ri, err := r.ReadIndex(ctx)
		cancel()
		if err != nil {
			t.Fatalf("read index on %s: %v", r.NodeID(), err)
		}
		if ri < idx {
			t.Fatalf("write at %d through %s, then read index %d through %s: the read would miss it", idx, w.NodeID(), ri, r.NodeID())
		}
	}
}

// Concurrent reads share confirmation rounds.
func TestReadIndexBatchesRounds(t *testing.T) {
	t.Parallel()
	js := tcpCluster(t, 3, nil)
	leader := js[0]
	waitFor(t, "leadership ready", func() bool {
		_, err := leader.ReadIndex(context.Background())
		return err == nil
	})
	before := testutil.ToFloat64(leader.metrics.readIndexRounds)
	asked := testutil.ToFloat64(js[1].metrics.readIndexRemote)
	var wg sync.WaitGroup
	const n = 300
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := js[i%3].ReadIndex(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if rounds := testutil.ToFloat64(leader.metrics.readIndexRounds) - before; rounds >= n || rounds == 0 {
		t.Fatalf("%v rounds for %d concurrent read-index requests, want fewer rounds than requests", rounds, n)
	}
	// A follower asks the leader once for all the reads waiting on it.
	if a := testutil.ToFloat64(js[1].metrics.readIndexRemote) - asked; a >= n/3 || a == 0 {
		t.Fatalf("follower n1 asked the leader %v times for its %d concurrent reads, want fewer", a, n/3)
	}
}

// A node cut off from the others answers no read index within about an
// election timeout, bounded by the caller's context or by
// ReadIndexWithin's limit, and answers again once it is let back.
func TestReadIndexRefusedWhenCutOff(t *testing.T) {
	t.Parallel()
	js := tcpCluster(t, 3, nil)
	bounds := []struct {
		name string
		read func(*Journal) error
	}{
		{"context", func(j *Journal) error {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err := j.ReadIndex(ctx)
			return err
		}},
		{"limit", func(j *Journal) error {
			_, err := j.ReadIndexWithin(context.Background(), 500*time.Millisecond)
			return err
		}},
	}
	for _, cut := range []*Journal{js[1], js[0]} { // a follower, then the leader
		for _, b := range bounds {
			waitFor(t, "a leader", func() bool { id, _ := cut.Leader(); return id != "" })
			if err := cut.BlockTransport(true); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err := b.read(cut)
			if err == nil {
				t.Fatalf("%s cut off answered a read index (bound: %s)", cut.NodeID(), b.name)
			}
			if !errors.Is(err, ErrNoLeader) && !errors.Is(err, context.DeadlineExceeded) {
				t.Logf("%s refused with: %v", cut.NodeID(), err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("%s took %s to refuse (bound: %s)", cut.NodeID(), took, b.name)
			}
			if err := cut.BlockTransport(false); err != nil {
				t.Fatal(err)
			}
			waitFor(t, cut.NodeID()+" reads again", func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, err := cut.ReadIndex(ctx)
				return err == nil
			})
		}
	}
}
