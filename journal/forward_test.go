package journal

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/fsm"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func TestSubmitFromFollowers(t *testing.T) {
	t.Parallel()
	js := tcpCluster(t, 3, nil)
	leader := js[0]
	if _, _, err := leader.Propose(context.Background(), &cairnv1.Event{Kind: &cairnv1.Event_ClusterInitialized{
		ClusterInitialized: &cairnv1.ClusterInitialized{ClusterId: "c-test"}}}); err != nil {
		t.Fatal(err)
	}
	term := leader.Term()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	indexes := make(chan uint64, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := js[i%3]
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, idx, err := j.Submit(ctx, note("from "+j.NodeID()), register("w"))
			switch {
			case err != nil:
				errs <- err
			case len(res) != 2 || res[0].Code != fsm.OK || res[1].Code != fsm.OK || res[1].Epoch == 0:
				errs <- errors.New("unexpected results")
			default:
				indexes <- idx
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(indexes)
	for err := range errs {
		t.Fatal(err)
	}
	top := uint64(0)
	for idx := range indexes {
		top = max(top, idx)
	}
	for _, j := range js {
		waitFor(t, "apply everywhere", func() bool { return j.State().AppliedIndex() >= top })
	}
	evs, _, err := leader.ReadEvents(1, top, 100000)
	if err != nil {
		t.Fatal(err)
	}
	notes := map[string]int{}
	for _, e := range evs {
		if n := e.Event.GetNoteAppended(); n != nil {
			notes[n.GetText()]++
		}
	}
	for _, j := range js {
		if want := 64/3 + map[bool]int{true: 1}[j == js[0]]; notes["from "+j.NodeID()] != want {
			t.Errorf("notes from %s: %d, want %d", j.NodeID(), notes["from "+j.NodeID()], want)
		}
	}
	// Every forward answered was served once, by whichever node led then.
	var served, answered float64
	for _, j := range js {
		served += testutil.ToFloat64(j.metrics.forwardServed)
		answered += testutil.ToFloat64(j.metrics.forwarded.WithLabelValues("answered"))
	}
	if answered == 0 || served != 2*answered {
		t.Errorf("%v forwards answered and %v events served, want some, and 2 events per forward", answered, served)
	}
	// With one leader throughout, each follower forwarded all of its 21.
	if leader.Term() == term && leader.IsLeader() {
		for _, j := range js[1:] {
			if got := testutil.ToFloat64(j.metrics.forwarded.WithLabelValues("answered")); got != 21 {
				t.Errorf("%s: %v answered forwards, want 21", j.NodeID(), got)
			}
		}
	}
}

func TestSubmitFollowsLeadershipTransfer(t *testing.T) {
	t.Parallel()
	js := tcpCluster(t, 3, nil)
	if _, _, err := js[1].Submit(context.Background(), note("before")); err != nil {
		t.Fatal(err)
	}
	js[1].fwd.mu.Lock()
	old := js[1].fwd.conn
	js[1].fwd.mu.Unlock()
	if err := js[0].raft.LeadershipTransferToServer(raft.ServerID(js[1].NodeID()), raft.ServerAddress(js[1].RaftAddress())).Error(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n1 leads", js[1].IsLeader)
	for _, j := range js {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, err := j.Submit(ctx, note("after"))
		cancel()
		if err != nil {
			t.Fatalf("submit on %s after the transfer: %v", j.NodeID(), err)
		}
	}
	// n1 leads now and proposes itself: its connection to the old leader
	// is closed.
	if old == nil {
		t.Fatal("n1 kept no forward connection")
	}
	select {
	case <-old.dead:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection to the former leader is still open")
	}
	js[0].fwd.mu.Lock()
	now := js[0].fwd.conn
	js[0].fwd.mu.Unlock()
	if now == nil || now.addr != js[1].RaftAddress() {
		t.Fatalf("n0 forwards to %v, want %s", now, js[1].RaftAddress())
	}
}

func TestSubmitWaitsOutNoLeader(t *testing.T) {
	t.Parallel()
	js := tcpCluster(t, 3, nil)
	// Stop two nodes: the survivor cannot elect a leader.
	js[0].Close()
	js[1].Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := js[2].Submit(ctx, note("lost"))
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("submit without a majority: %v, want ErrNoLeader", err)
	}
	if time.Since(start) < time.Second {
		t.Fatalf("gave up after %s, before its context ended", time.Since(start))
	}
}

func TestForwardHelloRefused(t *testing.T) {
	t.Parallel()
	js := tcpCluster(t, 2, nil)
	if _, _, err := js[0].Propose(context.Background(), &cairnv1.Event{Kind: &cairnv1.Event_ClusterInitialized{
		ClusterInitialized: &cairnv1.ClusterInitialized{ClusterId: "c-mine"}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		hello forwardHello
		want  string
	}{
		{"stranger", forwardHello{nodeID: "stranger"}, "not a member"},
		{"other cluster", forwardHello{nodeID: "n1", clusterID: "c-other"}, "cluster c-other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dialForward(context.Background(), js[0].RaftAddress(), tc.hello, nil)
			if err == nil {
				c.kill(errors.New("test over"))
				t.Fatal("the hello was accepted")
			}
			if errors.Is(err, errNotSent) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("refusal %q: want a final refusal that mentions %q", err, tc.want)
			}
		})
	}
	// A member of this cluster is let in.
	c, err := dialForward(context.Background(), js[0].RaftAddress(), forwardHello{nodeID: "n1", clusterID: "c-mine"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, idx, err := c.call(context.Background(), []*cairnv1.Event{note("hi")})
	c.kill(errors.New("test over"))
	if err != nil || len(res) != 1 || idx == 0 {
		t.Fatalf("call: %v %v %d", err, res, idx)
	}
}

func TestForwardMalformedRequestClosesConnection(t *testing.T) {
	t.Parallel()
	js := tcpCluster(t, 2, nil)
	nc, err := net.Dial("tcp", js[0].RaftAddress())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write(encodeHello(forwardHello{nodeID: "n1"}))
	br := bufio.NewReader(nc)
	if b, err := br.ReadByte(); err != nil || b != 0 {
		t.Fatalf("welcome: %v %v", b, err)
	}
	nc.Write(frame([]byte{1, 0, 0xff, 0xff}))
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the leader answered a malformed request instead of closing")
	}
	// Raft still runs on the same port.
	if _, _, err := js[0].Propose(context.Background(), note("still up")); err != nil {
		t.Fatal(err)
	}
}

// fakeLeader accepts one forward connection, welcomes it and runs script
// on it; it returns the address to dial.
func fakeLeader(t *testing.T, script func(br *bufio.Reader, c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if m, err := br.ReadByte(); err != nil || m != forwardMagic {
			return
		}
		if _, err := readHello(br); err != nil {
			return
		}
		c.Write([]byte{0})
		script(br, c)
	}()
	return ln.Addr().String()
}

// readRequest reads one forwarded request, failing the test on error.
func readRequest(t *testing.T, br *bufio.Reader) forwardRequest {
	body, err := readFrame(br, nil)
	if err != nil {
		t.Error(err)
		return forwardRequest{}
	}
	req, err := decodeRequest(body)
	if err != nil {
		t.Error(err)
	}
	return req
}

// What a follower makes of each way a leader can answer or fail.
func TestForwardCallOutcomes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		events  []*cairnv1.Event
		script  func(t *testing.T, br *bufio.Reader, c net.Conn)
		check   func(res []fsm.Result, idx uint64, err error) bool
		outcome string
	}{
		{"answered", []*cairnv1.Event{note("a")}, func(t *testing.T, br *bufio.Reader, c net.Conn) {
			req := readRequest(t, br)
			c.Write(frame(encodeAnswer(forwardAnswer{id: req.id, index: 9, results: []fsm.Result{{Code: fsm.OK, Value: 1}}})))
			readFrame(br, nil) // hold the connection until the client goes
		}, func(res []fsm.Result, idx uint64, err error) bool {
			return err == nil && idx == 9 && len(res) == 1 && res[0].Value == 1
		}, "the leader's index and results"},
		{"answered, then the connection closed", []*cairnv1.Event{note("a")}, func(t *testing.T, br *bufio.Reader, c net.Conn) {
			req := readRequest(t, br)
			c.Write(frame(encodeAnswer(forwardAnswer{id: req.id, index: 10, results: []fsm.Result{{Code: fsm.OK}}})))
			c.Close()
		}, func(res []fsm.Result, idx uint64, err error) bool {
			return err == nil && idx == 10
		}, "the answer, never 'may have been committed'"},
		{"refused", []*cairnv1.Event{note("a")}, func(t *testing.T, br *bufio.Reader, c net.Conn) {
			req := readRequest(t, br)
			c.Write(frame(encodeAnswer(forwardAnswer{id: req.id, status: statusRefused, message: "not the leader"})))
			readFrame(br, nil)
		}, func(_ []fsm.Result, _ uint64, err error) bool {
			return errors.Is(err, errNotSent)
		}, "errNotSent (safe to send again)"},
		{"connection lost after sending", []*cairnv1.Event{note("a")}, func(t *testing.T, br *bufio.Reader, c net.Conn) {
			readRequest(t, br)
			c.Close()
		}, func(_ []fsm.Result, _ uint64, err error) bool {
			return errors.Is(err, raft.ErrLeadershipLost) && !errors.Is(err, errNotSent)
		}, "ErrLeadershipLost and not errNotSent (may be committed)"},
		{"too large to forward", []*cairnv1.Event{note(strings.Repeat("x", maxForwardFrame))}, func(t *testing.T, br *bufio.Reader, c net.Conn) {
			readFrame(br, nil)
		}, func(_ []fsm.Result, _ uint64, err error) bool {
			return err != nil && !errors.Is(err, errNotSent) && !errors.Is(err, raft.ErrLeadershipLost) && strings.Contains(err.Error(), "more than")
		}, "a final error naming the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := fakeLeader(t, func(br *bufio.Reader, c net.Conn) { tc.script(t, br, c) })
			c, err := dialForward(context.Background(), addr, forwardHello{nodeID: "n1"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.kill(errors.New("test over"))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, idx, err := c.call(ctx, tc.events)
			if !tc.check(res, idx, err) {
				t.Fatalf("got %v, %d, %v; want %s", res, idx, err, tc.outcome)
			}
		})
	}
}

func TestForwardHelloOfAnotherVersionIsRefused(t *testing.T) {
	t.Parallel()
	js := tcpCluster(t, 1, nil)
	nc, err := net.Dial("tcp", js[0].RaftAddress())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	hello := encodeHello(forwardHello{nodeID: "n0"})
	hello[1] = forwardVersion + 1
	nc.Write(hello)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	if b, err := br.ReadByte(); err != nil || b != 1 {
		t.Fatalf("answer to a hello of another version: %v %v, want a refusal", b, err)
	}
	if why, err := readString(br, 4096); err != nil || !strings.Contains(why, "version") {
		t.Fatalf("refusal %q (%v) does not name the version", why, err)
	}
}

func TestForwardWireRoundTrip(t *testing.T) {
	t.Parallel()
	answers := []forwardAnswer{
		{id: 1, status: statusOK, index: 42, results: []fsm.Result{{Code: fsm.OK, Epoch: 3, Value: 9}, {Code: fsm.NotFound, Message: "no such file", Repeat: true}}},
		{id: 1 << 40, status: statusOK},
		{id: 7, status: statusRefused, message: "not the leader"},
		{id: 8, status: statusLost, message: "leadership lost"},
		{id: 9, status: statusDeadline, message: "deadline"},
		{id: 10, status: statusFailed, message: strings.Repeat("x", 5000)},
	}
	for _, a := range answers {
		got, err := decodeAnswer(encodeAnswer(a))
		if err != nil {
			t.Fatalf("%+v: %v", a, err)
		}
		if got.id != a.id || got.status != a.status || got.index != a.index || got.message != a.message || len(got.results) != len(a.results) {
			t.Fatalf("round trip: got %+v, want %+v", got, a)
		}
		for i := range a.results {
			if got.results[i] != a.results[i] {
				t.Fatalf("result %d: got %+v, want %+v", i, got.results[i], a.results[i])
			}
		}
	}
	req := forwardRequest{id: 5, timeoutMS: 1500, events: []*cairnv1.Event{note("a"), register("w1")}}
	f, err := encodeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRequest(f)
	if err != nil {
		t.Fatal(err)
	}
	if got.id != 5 || got.timeoutMS != 1500 || len(got.events) != 2 || !proto.Equal(got.events[1], req.events[1]) {
		t.Fatalf("request round trip: %+v", got)
	}
	h := forwardHello{nodeID: "m2", clusterID: "c-0123"}
	hb := encodeHello(h)
	if hb[0] != forwardMagic {
		t.Fatal("hello does not start with the magic byte")
	}
	gh, err := readHello(bufio.NewReader(bytes.NewReader(hb[1:])))
	if err != nil || gh != h {
		t.Fatalf("hello round trip: %+v %v", gh, err)
	}
}

// frame is body as writeFrame puts it on the wire.
func frame(body []byte) []byte {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	writeFrame(w, body)
	w.Flush()
	return b.Bytes()
}

func TestFrameRoundTrip(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 127, 128, 64 << 10, maxForwardFrame} {
		body := bytes.Repeat([]byte{7}, n)
		got, err := readFrame(bufio.NewReader(bytes.NewReader(frame(body))), nil)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("frame of %d bytes: read back %d bytes, %v", n, len(got), err)
		}
	}
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(frame(make([]byte, maxForwardFrame+1)))), nil); err == nil {
		t.Fatal("a frame over the limit was read")
	}
}

func FuzzDecodeAnswer(f *testing.F) {
	f.Add(encodeAnswer(forwardAnswer{id: 1, index: 2, results: []fsm.Result{{Code: fsm.OK, Message: "m"}}}))
	f.Add(encodeAnswer(forwardAnswer{id: 3, status: statusLost, message: "gone"}))
	f.Add([]byte{1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeAnswer(b)
		if err != nil {
			return
		}
		// What decodes survives encoding and decoding again unchanged.
		again, err := decodeAnswer(encodeAnswer(a))
		if err != nil {
			t.Fatalf("re-encoded answer does not decode: %v", err)
		}
		if again.id != a.id || again.status != a.status || again.index != a.index || again.message != a.message || !slices.Equal(again.results, a.results) {
			t.Fatalf("re-decoded %+v, first decoded %+v", again, a)
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	r, _ := encodeRequest(forwardRequest{id: 1, timeoutMS: 10, events: []*cairnv1.Event{note("x")}})
	f.Add(r)
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeRequest(b)
		if err != nil {
			return
		}
		if len(req.events) == 0 {
			t.Fatal("decoded a request without events")
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add(frame([]byte("hello")))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		body, err := readFrame(bufio.NewReader(bytes.NewReader(b)), nil)
		if err == nil && len(body) > maxForwardFrame {
			t.Fatalf("frame of %d bytes accepted", len(body))
		}
	})
}
