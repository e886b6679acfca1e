package journal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/testutil"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// noteCalls makes every node of js run "note" calls: the body is the note's
// text, the answer the index it was committed at.
func noteCalls(js []*Journal) {
	for _, j := range js {
		j.HandleCalls(func(ctx context.Context, c Call) ([]byte, error) {
			if c.Method != "note" {
				return nil, &CallError{Code: 12, Message: "unknown method " + c.Method}
			}
			_, idx, err := j.Propose(ctx, note(string(c.Body)))
			if err != nil {
				return nil, err
			}
			return binary.AppendUvarint(nil, idx), nil
		})
	}
}

// leadNote journals a note through j, wherever the leader is, and returns
// its index.
func leadNote(ctx context.Context, j *Journal, text string) (uint64, error) {
	var idx uint64
	body, err := j.Lead(ctx, 5*time.Second, Call{Method: "note", Body: []byte(text)}, func(ctx context.Context) error {
		var err error
		_, idx, err = j.Propose(ctx, note(text))
		return err
	})
	if err == nil && body != nil {
		idx, _ = binary.Uvarint(body)
	}
	return idx, err
}

func TestLeadFromFollowers(t *testing.T) {
	t.Parallel()
	js := tcpCluster(t, 3, nil)
	noteCalls(js)
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
			idx, err := leadNote(ctx, j, "from "+j.NodeID())
			switch {
			case err != nil:
				errs <- err
			case idx == 0:
				errs <- errors.New("no index")
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
	if answered == 0 || served != answered {
		t.Errorf("%v forwards answered and %v calls served, want some, and as many served as answered", answered, served)
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

func TestLeadCarriesTheHandlersError(t *testing.T) {
	t.Parallel()
	js := tcpCluster(t, 2, nil)
	noteCalls(js)
	ran := false
	_, err := js[1].Lead(context.Background(), time.Second, Call{Method: "nonesuch"}, func(context.Context) error { ran = true; return nil })
	var ce *CallError
	if !errors.As(err, &ce) || ce.Code != 12 || !strings.Contains(ce.Message, "nonesuch") || ran {
		t.Fatalf("a call the leader refused: %v (ran locally: %t), want its CallError", err, ran)
	}
}

func TestLeadFollowsLeadershipTransfer(t *testing.T) {
	t.Parallel()
	js := tcpCluster(t, 3, nil)
	noteCalls(js)
	if _, err := leadNote(context.Background(), js[1], "before"); err != nil {
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
		_, err := leadNote(ctx, j, "after")
		cancel()
		if err != nil {
			t.Fatalf("call on %s after the transfer: %v", j.NodeID(), err)
		}
	}
	// n1 leads now and runs calls itself: its connection to the old leader
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

// The hold bounds the waiting for a leader, not the caller's context.
func TestLeadWaitsOutNoLeaderForTheHold(t *testing.T) {
	t.Parallel()
	js := tcpCluster(t, 3, nil)
	noteCalls(js)
	js[0].Close()
	js[1].Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := js[2].Lead(ctx, time.Second, Call{Method: "note"}, func(context.Context) error { return nil })
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("a call without a majority: %v, want ErrNoLeader", err)
	}
	if took := time.Since(start); took < time.Second || took > 10*time.Second {
		t.Fatalf("gave up after %s, want about the 1s hold", took)
	}
}

func TestForwardHelloRefused(t *testing.T) {
	t.Parallel()
	js := tcpCluster(t, 2, nil)
	noteCalls(js)
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
			c, err := dialForward(context.Background(), plainDial, js[0].RaftAddress(), tc.hello, nil)
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
	c, err := dialForward(context.Background(), plainDial, js[0].RaftAddress(), forwardHello{nodeID: "n1", clusterID: "c-mine"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := c.call(context.Background(), forwardRequest{kind: kindCall, call: Call{Method: "note", Body: []byte("hi")}})
	c.kill(errors.New("test over"))
	if idx, _ := binary.Uvarint(body); err != nil || idx == 0 {
		t.Fatalf("call: %v %v", err, body)
	}
}

func plainDial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
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
	nc.Write(frame([]byte{kindCall, 1, 0, 0xff, 0xff}))
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
		call    Call
		timeout time.Duration
		script  func(t *testing.T, br *bufio.Reader, c net.Conn)
		check   func(body []byte, err error) bool
		outcome string
	}{
		{"answered", Call{Method: "m", Body: []byte("q")}, 10 * time.Second, func(t *testing.T, br *bufio.Reader, c net.Conn) {
			req := readRequest(t, br)
			if req.call.Method != "m" || string(req.call.Body) != "q" || req.timeoutMS == 0 {
				t.Errorf("the leader got %+v", req)
			}
			c.Write(frame(encodeAnswer(forwardAnswer{id: req.id, body: []byte("a")})))
			readFrame(br, nil) // hold the connection until the client goes
		}, func(body []byte, err error) bool {
			return err == nil && string(body) == "a"
		}, "the leader's answer"},
		{"answered, then the connection closed", Call{Method: "m"}, 10 * time.Second, func(t *testing.T, br *bufio.Reader, c net.Conn) {
			req := readRequest(t, br)
			c.Write(frame(encodeAnswer(forwardAnswer{id: req.id, body: []byte("b")})))
			c.Close()
		}, func(body []byte, err error) bool {
			return err == nil && string(body) == "b"
		}, "the answer, never 'may have taken effect'"},
		{"the handler's error", Call{Method: "m"}, 10 * time.Second, func(t *testing.T, br *bufio.Reader, c net.Conn) {
			req := readRequest(t, br)
			c.Write(frame(encodeAnswer(forwardAnswer{id: req.id, status: statusError, code: 9, message: "no"})))
			readFrame(br, nil)
		}, func(_ []byte, err error) bool {
			var ce *CallError
			return errors.As(err, &ce) && ce.Code == 9 && ce.Message == "no"
		}, "a CallError with the handler's code and message"},
		{"refused", Call{Method: "m"}, 10 * time.Second, func(t *testing.T, br *bufio.Reader, c net.Conn) {
			req := readRequest(t, br)
			c.Write(frame(encodeAnswer(forwardAnswer{id: req.id, status: statusRefused, message: "not the leader"})))
			readFrame(br, nil)
		}, func(_ []byte, err error) bool {
			return errors.Is(err, errNotSent)
		}, "errNotSent (safe to send again)"},
		{"connection lost after sending", Call{Method: "m"}, 10 * time.Second, func(t *testing.T, br *bufio.Reader, c net.Conn) {
			readRequest(t, br)
			c.Close()
		}, func(_ []byte, err error) bool {
			return errors.Is(err, raft.ErrLeadershipLost) && !errors.Is(err, errNotSent)
		}, "ErrLeadershipLost and not errNotSent (may have taken effect)"},
		{"the caller gives up: the leader is told", Call{Method: "m"}, 300 * time.Millisecond, func(t *testing.T, br *bufio.Reader, c net.Conn) {
			req := readRequest(t, br)
			cancel := readRequest(t, br)
			if cancel.kind != kindCancel || cancel.id != req.id {
				t.Errorf("after the caller gave up the leader got %+v, want a cancel of %d", cancel, req.id)
			}
		}, func(_ []byte, err error) bool {
			return errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, errNotSent)
		}, "the deadline, not errNotSent"},
		{"too large to forward", Call{Method: "m", Body: bytes.Repeat([]byte("x"), maxForwardFrame)}, 10 * time.Second, func(t *testing.T, br *bufio.Reader, c net.Conn) {
			readFrame(br, nil)
		}, func(_ []byte, err error) bool {
			return err != nil && !errors.Is(err, errNotSent) && !errors.Is(err, raft.ErrLeadershipLost) && strings.Contains(err.Error(), "more than")
		}, "a final error naming the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			done := make(chan struct{})
			addr := fakeLeader(t, func(br *bufio.Reader, c net.Conn) { defer close(done); tc.script(t, br, c) })
			c, err := dialForward(context.Background(), plainDial, addr, forwardHello{nodeID: "n1"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			body, err := c.call(ctx, forwardRequest{kind: kindCall, call: tc.call})
			if !tc.check(body, err) {
				t.Fatalf("got %q, %v; want %s", body, err, tc.outcome)
			}
			if tc.timeout < time.Second {
				// The script reads what the caller sent after giving up.
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Error("the script did not end")
				}
			}
			c.kill(errors.New("test over"))
			<-done
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
		{id: 1, status: statusOK, body: []byte("answer")},
		{id: 1 << 40, status: statusOK, body: []byte{}},
		{id: 7, status: statusRefused, message: "not the leader"},
		{id: 8, status: statusError, code: 9, message: "failed precondition"},
		{id: 10, status: statusFailed, message: strings.Repeat("x", 5000)},
	}
	for _, a := range answers {
		got, err := decodeAnswer(encodeAnswer(a))
		if err != nil {
			t.Fatalf("%+v: %v", a, err)
		}
		if got.id != a.id || got.status != a.status || !bytes.Equal(got.body, a.body) || got.code != a.code || got.message != a.message {
			t.Fatalf("round trip: got %+v, want %+v", got, a)
		}
	}
	for _, req := range []forwardRequest{
		{kind: kindCall, id: 5, timeoutMS: 1500, call: Call{Method: "/cairn.v1.X/Y", RequestID: "r-1", Caller: "ops", Body: []byte{0, 1, 2}}},
		{kind: kindCall, id: 6, call: Call{Method: "m"}},
		{kind: kindReadIndex, id: 7, timeoutMS: 500},
		{kind: kindCancel, id: 8},
	} {
		got, err := decodeRequest(encodeRequest(req))
		if err != nil {
			t.Fatalf("%+v: %v", req, err)
		}
		if got.kind != req.kind || got.id != req.id || got.timeoutMS != req.timeoutMS || got.call.Method != req.call.Method ||
			got.call.RequestID != req.call.RequestID || got.call.Caller != req.call.Caller || !bytes.Equal(got.call.Body, req.call.Body) {
			t.Fatalf("request round trip: got %+v, want %+v", got, req)
		}
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
	f.Add(encodeAnswer(forwardAnswer{id: 1, body: []byte("x")}))
	f.Add(encodeAnswer(forwardAnswer{id: 3, status: statusError, code: 14, message: "gone"}))
	f.Add([]byte{1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f})
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
		if again.id != a.id || again.status != a.status || !bytes.Equal(again.body, a.body) || again.code != a.code || again.message != a.message {
			t.Fatalf("re-decoded %+v, first decoded %+v", again, a)
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(encodeRequest(forwardRequest{kind: kindCall, id: 1, timeoutMS: 10, call: Call{Method: "m", Body: []byte("b")}}))
	f.Add(encodeRequest(forwardRequest{kind: kindReadIndex, id: 2, timeoutMS: 10}))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeRequest(b)
		if err != nil {
			return
		}
		if req.kind == kindCall && req.call.Method == "" {
			t.Fatal("decoded a call without a method")
		}
		again, err := decodeRequest(encodeRequest(req))
		if err != nil || again.kind != req.kind || again.id != req.id || again.call.Method != req.call.Method || !bytes.Equal(again.call.Body, req.call.Body) {
			t.Fatalf("re-decoded %+v (%v), first decoded %+v", again, err, req)
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
