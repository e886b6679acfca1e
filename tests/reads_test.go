package tests

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/anishathalye/porcupine"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// The register these tests read and write is the jobs.retention setting:
// one value, written with UpdateSetting and read with GetSettings through
// any master. Value v is written as a retention of 60+v seconds (the
// setting takes at least a minute), so every write can carry its own v.

func writeRegister(ctx context.Context, s client.Services, v int64) error {
	_, err := s.Jobs.UpdateSetting(ctx, connect.NewRequest(&cairnv1.UpdateSettingRequest{
		Name: "jobs.retention", Value: (time.Duration(60+v) * time.Second).String()}))
	return err
}

func readRegister(ctx context.Context, s client.Services, consistency string) (int64, error) {
	req := connect.NewRequest(&cairnv1.GetSettingsRequest{})
	if consistency != "" {
		req.Header().Set("Cairn-Consistency", consistency)
	}
	r, err := s.Jobs.GetSettings(ctx, req)
	if err != nil {
		return 0, err
	}
	return int64(r.Msg.GetSettings().GetJobRetention().AsDuration()/time.Second) - 60, nil
}

// Every read through one master sees the write just acknowledged through
// another; with stale reads it may not (counted, not asserted).
func TestReadsSeeWritesThroughAnyMaster(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ms := c.masters
	for _, mode := range []string{"", "stale"} {
		stale := 0
		for i := range 1000 {
			w, r := ms[i%3].cli.Masters()[0], ms[(i+1+i/3%2)%3].cli.Masters()[0]
			v := int64(i + 1)
			if err := writeRegister(ctx, w, v); err != nil {
				t.Fatalf("write %d through %s: %v", v, w.Addr, err)
			}
			got, err := readRegister(ctx, r, mode)
			if err != nil {
				t.Fatalf("read after write %d through %s (%q): %v", v, r.Addr, mode, err)
			}
			switch {
			case got == v:
			case mode == "":
				t.Fatalf("pair %d: wrote %d through %s, then read %d through %s: a linearizable read missed an acknowledged write", i, v, w.Addr, got, r.Addr)
			default:
				stale++
			}
		}
		if mode == "stale" {
			t.Logf("stale reads: %d of 1000 reads through another master missed the write just acknowledged (staleness is allowed there; not asserted)", stale)
		}
	}
}

// registerOp is one operation of the porcupine history.
type registerOp struct {
	write bool
	value int64
}

// registerModel is a single register whose writes may be lost only when
// their call failed (those are given an infinite return time, so they can
// be placed anywhere after their call, including after every read).
var registerModel = porcupine.Model{
	Init: func() any { return int64(math.MinInt64) }, // set from the first read below
	Step: func(state, input, output any) (bool, any) {
		in := input.(registerOp)
		if in.write {
			return true, in.value
		}
		return output.(int64) == state.(int64), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(registerOp)
		if in.write {
			return fmt.Sprintf("write(%d)", in.value)
		}
		return fmt.Sprintf("read() -> %d", output.(int64))
	},
}

// A history of concurrent writes and reads through every master, with the
// leader killed (SIGKILL) and restarted in the middle of it, is
// linearizable.
func TestLinearizableHistoryAcrossLeaderKill(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Each client talks to one master at a time, with a short budget, and
	// picks another one for its next operation.
	clients := make([]client.Services, len(c.masters))
	for i, m := range c.masters {
		clients[i] = adminClient([]string{m.api}, client.WithRetryBudget(500*time.Millisecond)).Masters()[0]
	}
	initial, err := readRegister(ctx, clients[0], "")
	if err != nil {
		t.Fatal(err)
	}
	model := registerModel
	model.Init = func() any { return initial }

	start := time.Now()
	var mu sync.Mutex
	var history []porcupine.Operation
	var next int64
	var failedWrites, failedReads int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const clientsN = 8
	for id := range clientsN {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(id), 7))
			pace := time.NewTicker(2 * time.Millisecond)
			defer pace.Stop()
			for {
				select {
				case <-stop:
					return
				case <-pace.C:
				}
				s := clients[rng.IntN(len(clients))]
				octx, ocancel := context.WithTimeout(ctx, 2*time.Second)
				op := porcupine.Operation{ClientId: id, Call: int64(time.Since(start))}
				if rng.IntN(2) == 0 {
					mu.Lock()
					next++
					v := next
					mu.Unlock()
					err := writeRegister(octx, s, v)
					op.Input, op.Output, op.Return = registerOp{write: true, value: v}, int64(0), int64(time.Since(start))
					if err != nil {
						// It may yet have been written: it may take
						// effect at any time after its call.
						op.Return = math.MaxInt64
						mu.Lock()
						failedWrites++
						mu.Unlock()
					}
					mu.Lock()
					history = append(history, op)
					mu.Unlock()
				} else {
					v, err := readRegister(octx, s, "")
					op.Input, op.Output, op.Return = registerOp{}, v, int64(time.Since(start))
					mu.Lock()
					if err == nil {
						history = append(history, op)
					} else {
						failedReads++ // it observed nothing
					}
					mu.Unlock()
				}
				ocancel()
			}
		}()
	}
	// Let the history grow, kill the leader, let it run without it,
	// restart it, and let it run again.
	phase := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	phase(1500 * time.Millisecond)
	old := c.leader()
	old.signal(t, syscall.SIGKILL)
	killedAt := time.Since(start)
	phase(2 * time.Second)
	old.restart(t)
	restartedAt := time.Since(start)
	old.waitUp(t)
	phase(1500 * time.Millisecond)
	close(stop)
	wg.Wait()

	writes, reads := 0, 0
	for _, op := range history {
		if op.Input.(registerOp).write {
			writes++
		} else {
			reads++
		}
	}
	t.Logf("history: %d writes (%d failed: may or may not have taken effect) and %d reads (%d failed, left out); leader %s killed at %s, restarted at %s",
		writes, failedWrites, reads, failedReads, old.id, killedAt.Round(time.Millisecond), restartedAt.Round(time.Millisecond))
	if reads < 200 || writes < 200 || failedWrites > writes/4 {
		t.Fatalf("too small a history to say anything: %d writes (%d failed), %d reads", writes, failedWrites, reads)
	}
	res, info := porcupine.CheckOperationsVerbose(model, history, time.Minute)
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Fatal("porcupine could not decide within a minute")
	default:
		path := t.TempDir() + "/history.html"
		if err := porcupine.VisualizePath(model, info, path); err == nil {
			t.Logf("the history, drawn: %s", path)
		}
		t.Fatal("the history of writes and reads through every master is not linearizable")
	}
}

// A master cut off from the others refuses linearizable reads within about
// its election timeout, answers stale reads until --stale-read-bound
// passes, then only stale-any reads; once healed it answers again.
func TestCutOffMasterRefusesReads(t *testing.T) {
	t.Parallel()
	c := startClusterWith(t, 3, 0, []string{"--fault-signals", "--stale-read-bound", "1500ms"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leader := c.leader()
	var cut *master
	for _, m := range c.masters {
		if m != leader {
			cut = m
			break
		}
	}
	s := cut.cli.Masters()[0]
	if _, err := readRegister(ctx, s, ""); err != nil {
		t.Fatalf("read before the cut: %v", err)
	}
	cut.signal(t, syscall.SIGUSR1)
	// Writes go on without it.
	if err := writeRegister(ctx, leader.cli.Masters()[0], 4242); err != nil {
		t.Fatal(err)
	}

	started := time.Now()
	_, err := readRegister(ctx, s, "")
	took := time.Since(started)
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("a linearizable read through the cut-off master: %v, want Unavailable", err)
	}
	// The election timeout is 500ms; allow for a loaded machine.
	if took > 1500*time.Millisecond {
		t.Fatalf("the cut-off master took %s to refuse a linearizable read", took)
	}
	t.Logf("linearizable read refused after %s: %v", took.Round(time.Millisecond), err)

	v, err := readRegister(ctx, s, "stale")
	if err == nil {
		t.Logf("stale read right after the cut: %d (the write of 4242 it missed is allowed)", v)
	} else if time.Since(started) < time.Second {
		t.Fatalf("a stale read within the bound was refused: %v", err)
	}
	eventually(t, 10*time.Second, "stale reads to be refused past the bound", func() bool {
		_, err := readRegister(ctx, s, "stale")
		if err != nil && !strings.Contains(err.Error(), "stale-read-bound") {
			t.Fatalf("stale read refused for another reason: %v", err)
		}
		return connect.CodeOf(err) == connect.CodeUnavailable
	})
	if _, err := readRegister(ctx, s, "stale-any"); err != nil {
		t.Fatalf("stale-any read through the cut-off master: %v", err)
	}

	cut.signal(t, syscall.SIGUSR2)
	eventually(t, 20*time.Second, "the healed master to answer linearizable reads", func() bool {
		v, err := readRegister(ctx, s, "")
		return err == nil && v == 4242
	})

	// The leader cut off: it loses leadership, and refuses too.
	leader.signal(t, syscall.SIGUSR1)
	ls := leader.cli.Masters()[0]
	eventually(t, 5*time.Second, "the cut-off former leader to refuse linearizable reads", func() bool {
		_, err := readRegister(ctx, ls, "")
		if err != nil && connect.CodeOf(err) != connect.CodeUnavailable {
			t.Fatalf("the cut-off leader: %v, want Unavailable", err)
		}
		return err != nil
	})
	leader.signal(t, syscall.SIGUSR2)
	eventually(t, 20*time.Second, "the healed former leader to answer", func() bool {
		_, err := readRegister(ctx, ls, "")
		return err == nil
	})
}
