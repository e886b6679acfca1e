package journal

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Forwarding: a follower sends what must run on the leader — calls and
// read-index requests — over one connection to the leader's raft port
// (forwardwire.go has the bytes, forwardserve.go the leader's side).
// Requests and answers are pipelined and written in bursts, so under load
// many share a syscall.

const (
	// forwardDialTimeout bounds connecting to the leader and the hello.
	forwardDialTimeout = 5 * time.Second
	// maxForwardWait bounds a forwarded request that brought no deadline.
	maxForwardWait = time.Minute
	// forwardWriteBurst caps the frames written between two flushes.
	forwardWriteBurst = 256
	// maxForwardInflight bounds the requests of one forward connection the
	// leader works on at once; beyond it the leader stops reading, and TCP
	// holds the follower back.
	maxForwardInflight = 4096
	// forwardRetryPause is how long Lead waits between tries while the
	// leader it knows of refuses or cannot be reached.
	forwardRetryPause = 100 * time.Millisecond
)

// Call is a request that must run on the leader, as a follower sends it.
// The journal does not look inside: the handler set with HandleCalls
// gives Method and Body their meaning.
type Call struct {
	// Method names what to run (a master uses its procedure names).
	Method string
	// RequestID is the caller's request id, recorded in the events the
	// call writes; may be empty.
	RequestID string
	// Caller names who made the call (the name of its token), recorded in
	// the events the call writes; may be empty. The follower that sends
	// the call has checked it.
	Caller string
	// Body is the request, encoded.
	Body []byte
	// Encode, if set, makes Body when Body is nil, the first time the call
	// must travel to another node (so a leader never encodes its own).
	Encode func() ([]byte, error)
}

// CallHandler runs a forwarded call on the leader and returns the answer's
// body. An error that is (or wraps) a *CallError reaches the follower with
// its code and message; any other error reaches it as a CallError with
// code 0.
type CallHandler func(ctx context.Context, c Call) ([]byte, error)

// CallError is how the leader's handler failed a forwarded call. Code's
// meaning belongs to the handler (a master sends Connect codes).
type CallError struct {
	Code    uint32
	Message string
}

func (e *CallError) Error() string { return e.Message }

// ErrNoLeader is wrapped by Lead when no leader took the call in time;
// nothing ran.
var ErrNoLeader = errors.New("no raft leader answered in time")

// errNotSent marks a forwarding failure before the request left this node
// (or a leader's refusal to run it): nothing ran, so it may be sent again.
var errNotSent = errors.New("not sent")

// errLeaderMoved ends a connection to a node that no longer leads.
var errLeaderMoved = errors.New("the leader moved")

// notSent is a failure to forward to addr that left nothing on it.
func notSent(addr string, err error) error {
	return fmt.Errorf("forward to the leader at %s: %w: %w", addr, errNotSent, err)
}

// HandleCalls sets the handler that runs the calls followers forward to
// this node while it leads. Set it right after Open, before any call can
// arrive; a call that arrives with no handler fails.
func (j *Journal) HandleCalls(h CallHandler) { j.calls.Store(&h) }

// Lead runs a call on the leader: local when this node leads, else c goes
// to the leader over the raft port and Lead returns the body of its
// answer (nil when local ran). This is the one way to the leader: every
// caller that needs it comes through here.
//
// While no leader is known, or the one asked refuses because it no longer
// leads (it ran nothing), Lead waits for the next one, for at most hold in
// all; the time the call itself takes is bounded by ctx only. When hold is
// spent it returns an error that wraps ErrNoLeader. An error that wraps
// raft.ErrLeadershipLost means the call reached the leader and may have
// taken effect; a *CallError is the leader's handler's answer.
func (j *Journal) Lead(ctx context.Context, hold time.Duration, c Call, local func(context.Context) error) ([]byte, error) {
	var last error
	var waited time.Duration
	for {
		select {
		case <-j.stop:
			return nil, raft.ErrRaftShutdown
		default:
		}
		changed := j.LeaderChanged()
		if j.IsLeader() {
			return nil, local(ctx)
		}
		if j.fwd == nil {
			return nil, ErrNotLeader // an injected transport: nowhere to forward
		}
		if id, addr := j.Leader(); id != "" {
			if c.Body == nil && c.Encode != nil {
				var err error
				if c.Body, err = c.Encode(); err != nil {
					return nil, fmt.Errorf("encode %s for the leader: %w", c.Method, err)
				}
			}
			body, err := j.fwd.call(ctx, addr, c)
			if !errors.Is(err, errNotSent) {
				j.metrics.forwardedBy[forwardOutcome(err)].Inc()
				return body, err
			}
			last = err
		}
		left := hold - waited
		if left <= 0 || ctx.Err() != nil {
			j.metrics.forwardedBy["no_leader"].Inc()
			if last == nil {
				last = errors.New("no leader known")
			}
			if ctx.Err() != nil {
				last = fmt.Errorf("%w; %v", ctx.Err(), last)
			}
			return nil, fmt.Errorf("%w within %s (last try: %v)", ErrNoLeader, hold, last)
		}
		began := time.Now()
		select {
		case <-changed:
		case <-time.After(min(forwardRetryPause, left)):
		case <-ctx.Done():
		case <-j.stop:
			return nil, raft.ErrRaftShutdown
		}
		waited += time.Since(began)
	}
}

func forwardOutcome(err error) string {
	var ce *CallError
	switch {
	case err == nil, errors.As(err, &ce):
		return "answered"
	case errors.Is(err, raft.ErrLeadershipLost):
		return "lost"
	default:
		return "failed"
	}
}

// forwarder keeps this follower's connection to the leader.
type forwarder struct {
	j       *Journal
	dial    func(ctx context.Context, addr string) (net.Conn, error)
	mu      sync.Mutex
	conn    *fwdConn
	dialing chan struct{} // closed when the dial under way ends; nil when none
}

// call sends c to the leader at addr and waits for its answer. Errors
// that wrap errNotSent left nothing on the leader.
func (f *forwarder) call(ctx context.Context, addr string, c Call) ([]byte, error) {
	conn, err := f.connTo(ctx, addr)
	if err != nil {
		return nil, err
	}
	return conn.call(ctx, forwardRequest{kind: kindCall, call: c})
}

// readIndex asks the leader at addr for its read index.
func (f *forwarder) readIndex(ctx context.Context, addr string) (uint64, error) {
	conn, err := f.connTo(ctx, addr)
	if err != nil {
		return 0, err
	}
	body, err := conn.call(ctx, forwardRequest{kind: kindReadIndex})
	if err != nil {
		return 0, err
	}
	idx, n := binary.Uvarint(body)
	if n <= 0 || n != len(body) {
		return 0, fmt.Errorf("read index from the leader at %s: malformed answer", addr)
	}
	return idx, nil
}

// connTo returns the open connection to addr, dialling it if needed; one
// dial at a time, and callers waiting for it keep to their contexts. A
// connection to an earlier leader is retired: it closes once its last
// request is answered or abandoned.
func (f *forwarder) connTo(ctx context.Context, addr string) (*fwdConn, error) {
	moved := func() error {
		if _, cur := f.j.Leader(); cur != addr {
			return notSent(addr, errLeaderMoved)
		}
		return nil
	}
	for {
		if err := moved(); err != nil {
			return nil, err
		}
		f.mu.Lock()
		if c := f.conn; c != nil && c.addr == addr && c.alive() {
			f.mu.Unlock()
			return c, nil
		}
		if f.conn != nil {
			f.conn.retire()
			f.conn = nil
		}
		if wait := f.dialing; wait != nil {
			f.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, notSent(addr, ctx.Err())
			}
		}
		done := make(chan struct{})
		f.dialing = done
		f.mu.Unlock()

		// The dial serves every caller waiting for it, so it runs on the
		// journal's lifetime, not on this caller's context, and gives up
		// as soon as addr stops being the leader.
		dctx, cancel := context.WithCancel(context.Background())
		go func() {
			for {
				changed := f.j.LeaderChanged()
				if moved() != nil {
					cancel()
					return
				}
				select {
				case <-f.j.stop:
					cancel()
					return
				case <-done:
					return
				case <-changed:
				}
			}
		}()
		c, err := dialForward(dctx, f.dial, addr, forwardHello{nodeID: f.j.cfg.NodeID, clusterID: f.j.machine.ClusterID()}, f.j.stop)
		cancel()
		if err == nil {
			if merr := moved(); merr != nil {
				c.kill(merr)
				c, err = nil, merr
			}
		}
		f.mu.Lock()
		f.dialing = nil
		close(done)
		if err == nil {
			f.conn = c // it was cleared before the dial, and only a dialer sets it
		}
		f.mu.Unlock()
		return c, err
	}
}

// watchLeader retires the connection to a leader as soon as another node
// leads (or this one does), so no connection to a former leader lingers.
func (f *forwarder) watchLeader() {
	for {
		changed := f.j.LeaderChanged()
		_, addr := f.j.Leader()
		f.mu.Lock()
		if f.conn != nil && (f.conn.addr != addr || f.j.IsLeader()) {
			f.conn.retire()
			f.conn = nil
		}
		f.mu.Unlock()
		select {
		case <-changed:
		case <-f.j.stop:
			return
		}
	}
}

// close closes the current connection.
func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		f.conn.kill(errors.New("journal closed"))
		f.conn = nil
	}
}

// fwdConn is one forward connection from a follower to a leader.
type fwdConn struct {
	addr string
	c    net.Conn
	out  chan []byte
	dead chan struct{}

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan forwardAnswer
	retired bool
	err     error
}

func dialForward(ctx context.Context, dial func(context.Context, string) (net.Conn, error), addr string, hello forwardHello, stop <-chan struct{}) (*fwdConn, error) {
	dctx, cancel := context.WithTimeout(ctx, forwardDialTimeout)
	defer cancel()
	nc, err := dial(dctx, addr)
	if err != nil {
		return nil, notSent(addr, err)
	}
	deadline, _ := dctx.Deadline()
	nc.SetDeadline(deadline)
	// A cancelled dial also ends a hello that waits for its answer.
	defer context.AfterFunc(dctx, func() { nc.SetDeadline(time.Now()) })()
	br := bufio.NewReaderSize(nc, 64<<10)
	fail := func(err error) (*fwdConn, error) {
		nc.Close()
		return nil, notSent(addr, err)
	}
	if _, err := nc.Write(encodeHello(hello)); err != nil {
		return fail(err)
	}
	ok, err := br.ReadByte()
	if err != nil {
		return fail(fmt.Errorf("no answer to the hello (%w); a leader that runs an older cairn cannot take forwarded calls: upgrade every master", err))
	}
	if ok != 0 {
		why, err := readString(br, 4096)
		if err != nil {
			why = "no reason given"
		}
		nc.Close()
		// Not errNotSent: a refusal does not go away by trying again.
		return nil, fmt.Errorf("the leader at %s refused this master's forwarded calls: %s", addr, why)
	}
	nc.SetDeadline(time.Time{})
	c := &fwdConn{addr: addr, c: nc, out: make(chan []byte, 1024), dead: make(chan struct{}), waiting: map[uint64]chan forwardAnswer{}}
	go func() {
		if err := writeFrames(nc, c.out, c.dead); err != nil {
			c.kill(err)
		}
	}()
	go c.readLoop(br)
	go func() {
		select {
		case <-stop:
			c.kill(raft.ErrRaftShutdown)
		case <-c.dead:
		}
	}()
	return c, nil
}

func (c *fwdConn) alive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err == nil && !c.retired
}

// retire closes the connection once nothing waits on it.
func (c *fwdConn) retire() {
	c.mu.Lock()
	c.retired = true
	c.mu.Unlock()
	c.killIfIdle()
}

// killIfIdle closes a retired connection that nothing waits on, and
// reports whether it did.
func (c *fwdConn) killIfIdle() bool {
	c.mu.Lock()
	idle := c.retired && len(c.waiting) == 0
	c.mu.Unlock()
	if idle {
		c.kill(errLeaderMoved)
	}
	return idle
}

// kill closes the connection; requests still waiting fail.
func (c *fwdConn) kill(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	close(c.dead)
	c.c.Close()
}

func (c *fwdConn) readLoop(br *bufio.Reader) {
	var buf []byte
	for {
		body, err := readFrame(br, buf)
		if err != nil {
			c.kill(fmt.Errorf("read from the leader: %w", err))
			return
		}
		buf = body
		a, err := decodeAnswer(body)
		if err != nil {
			c.kill(err)
			return
		}
		c.mu.Lock()
		ch, ok := c.waiting[a.id]
		delete(c.waiting, a.id)
		if ok {
			// Under the lock, so the answer is in ch before anything
			// can close dead: call then always sees it.
			ch <- a // room for one: never blocks
		}
		c.mu.Unlock()
		if c.killIfIdle() {
			return
		}
	}
}

// call sends req (its id and timeout filled in here) and waits for the
// answer.
func (c *fwdConn) call(ctx context.Context, req forwardRequest) ([]byte, error) {
	if d, ok := ctx.Deadline(); ok {
		req.timeoutMS = uint64(max(time.Until(d).Milliseconds(), 1))
	}
	ch := make(chan forwardAnswer, 1)
	c.mu.Lock()
	if c.err != nil || c.retired {
		err := c.err
		if err == nil {
			err = errLeaderMoved
		}
		c.mu.Unlock()
		return nil, notSent(c.addr, err)
	}
	c.next++
	req.id = c.next
	c.waiting[req.id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.waiting, req.id)
		c.mu.Unlock()
		c.killIfIdle()
	}

	f := encodeRequest(req)
	if len(f) > maxForwardFrame {
		forget()
		return nil, fmt.Errorf("a call of %d bytes is more than the %d a forwarded call may carry", len(f), maxForwardFrame)
	}
	select {
	case c.out <- f:
	case <-c.dead:
		forget()
		return nil, notSent(c.addr, c.deathCause())
	case <-ctx.Done():
		forget()
		return nil, notSent(c.addr, ctx.Err())
	}
	select {
	case a := <-ch:
		return a.result(c.addr)
	case <-c.dead:
		select {
		case a := <-ch: // answered just before the connection closed
			return a.result(c.addr)
		default:
		}
		return nil, fmt.Errorf("forward to the leader at %s: the connection broke after the call was sent, so it may have taken effect: %w (%v)",
			c.addr, raft.ErrLeadershipLost, c.deathCause())
	case <-ctx.Done():
		forget()
		select {
		case a := <-ch: // answered as the caller gave up
			return a.result(c.addr)
		default:
		}
		// Tell the leader to stop working on it (a long poll, say).
		select {
		case c.out <- encodeRequest(forwardRequest{kind: kindCancel, id: req.id}):
		default:
		}
		return nil, fmt.Errorf("waiting for the leader at %s: %w", c.addr, ctx.Err())
	}
}

func (c *fwdConn) deathCause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// result turns an answer into what the caller returns.
func (a forwardAnswer) result(addr string) ([]byte, error) {
	switch a.status {
	case statusOK:
		return a.body, nil
	case statusRefused:
		return nil, fmt.Errorf("%s no longer leads (%s): %w", addr, a.message, errNotSent)
	case statusError:
		return nil, &CallError{Code: a.code, Message: a.message}
	default:
		return nil, fmt.Errorf("leader at %s: %s", addr, a.message)
	}
}
