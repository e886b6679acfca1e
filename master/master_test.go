package master

import (
	"context"
	"testing"
	"time"
)

// TestTicks: the controllers' beat yields until its context ends, and a
// loop that leaves early stops it.
func TestTicks(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	for range ticks(ctx, time.Millisecond) {
		if n++; n == 3 {
			cancel()
		}
	}
	if n != 3 {
		t.Fatalf("%d beats after cancelling at the third", n)
	}
	n = 0
	for range ticks(context.Background(), time.Millisecond) {
		n++
		break
	}
	if n != 1 {
		t.Fatalf("%d beats before a break", n)
	}
}
