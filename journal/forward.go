package journal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnhq/cairn/fsm"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// Forwarding: a follower hands proposals to the leader over one connection
// to the leader's raft port (see forwardwire.go for the bytes). Requests and
// answers are pipelined and written in bursts, so under load many share a
// syscall; the leader proposes each through its batcher like its own.

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
	// forwardRetryPause is how long Submit waits between tries while the
	// leader it knows of refuses or cannot be reached.
	forwardRetryPause = 100 * time.Millisecond
)

// errLeaderMoved ends a connection to a node that no longer leads.
var errLeaderMoved = errors.New("the leader moved")

// notSent is a failure to forward to addr that left nothing on it.
func notSent(addr string, err error) error {
	return fmt.Errorf("forward to the leader at %s: %w: %w", addr, errNotSent, err)
}

// ErrNoLeader is returned by Submit when no leader took the events before
// its context ended; nothing was proposed.
var ErrNoLeader = errors.New("no raft leader took the write in time")

// errNotSent marks a forwarding failure before the request left this node:
// nothing was proposed, so the request may be sent again.
var errNotSent = errors.New("not sent")

// Submit journals events from any node and waits until they are committed
// and applied on the leader. The leader proposes them itself (Propose); a
// follower sends them to the leader over the raft port and returns the
// leader's answer. While no leader is known, or the one asked has just
// stopped leading and proposed nothing, Submit waits for the next leader
// until ctx ends. An error that wraps raft.ErrLeadershipLost means the
// events reached a leader and may yet be committed.
func (j *Journal) Submit(ctx context.Context, events ...*cairnv1.Event) ([]fsm.Result, uint64, error) {
	if len(events) == 0 {
		return nil, 0, errors.New("submit: no events")
	}
	var last error
	for {
		select {
		case <-j.stop:
			return nil, 0, raft.ErrRaftShutdown
		default:
		}
		changed := j.LeaderChanged()
		if j.IsLeader() {
			res, idx, err := j.Propose(ctx, events...)
			if !Refused(err) {
				return res, idx, err
			}
			last = err
		} else if id, addr := j.Leader(); id != "" && j.fwd != nil {
			res, idx, err := j.fwd.call(ctx, addr, events)
			if !errors.Is(err, errNotSent) {
				j.metrics.forwardedBy[forwardOutcome(err)].Inc()
				return res, idx, err
			}
			last = err
		} else if j.fwd == nil {
			return nil, 0, ErrNotLeader
		}
		select {
		case <-changed:
		case <-time.After(forwardRetryPause):
		case <-ctx.Done():
			j.metrics.forwardedBy["no_leader"].Inc()
			if last == nil {
				last = errors.New("no leader known")
			}
			return nil, 0, fmt.Errorf("%w (%v; last try: %v)", ErrNoLeader, ctx.Err(), last)
		case <-j.stop:
			return nil, 0, raft.ErrRaftShutdown
		}
	}
}

// Refused reports whether err from Propose says the events were refused
// before anything reached the log — this node was not the leader, or raft
// turned the entry away (not leader, leadership transfer) — so sending them
// again cannot write them twice.
func Refused(err error) bool {
	return err == ErrNotLeader || errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress)
}

func forwardOutcome(err error) string {
	switch {
	case err == nil:
		return "answered"
	case errors.Is(err, raft.ErrLeadershipLost):
		return "lost"
	default:
		return "failed"
	}
}

// serveForward answers one follower's forward connection. Every master
// serves them; one that is not the leader refuses each request.
func (j *Journal) serveForward(c net.Conn) {
	defer c.Close()
	select {
	case <-j.ready:
	case <-j.stop:
		return
	}
	br := bufio.NewReaderSize(c, 64<<10)
	c.SetDeadline(time.Now().Add(forwardDialTimeout))
	hello, err := readHello(br)
	if err == nil {
		err = j.admit(hello)
	}
	if err != nil {
		j.log.Warn("refused a forward connection", "remote", c.RemoteAddr().String(), "node", hello.nodeID, "err", err)
		c.Write(append([]byte{1}, appendString(nil, err.Error())...))
		return
	}
	if _, err := c.Write([]byte{0}); err != nil {
		return
	}
	c.SetDeadline(time.Time{})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-j.stop:
		case <-ctx.Done():
		}
		c.Close() // ends the read loop below
	}()
	out := make(chan []byte, 1024)
	go func() {
		if err := writeFrames(c, out, ctx.Done()); err != nil {
			cancel()
		}
	}()
	slots := make(chan struct{}, maxForwardInflight)
	var buf []byte
	for {
		body, err := readFrame(br, buf)
		if err != nil {
			return
		}
		buf = body
		req, err := decodeRequest(body)
		if err != nil {
			j.log.Warn("closing a forward connection after a malformed request", "node", hello.nodeID, "err", err)
			return
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		go func() {
			defer func() { <-slots }()
			j.answerForward(ctx, req, out)
		}()
	}
}

// admit checks a forwarder's hello: it must name a member of the raft
// configuration, of this cluster.
func (j *Journal) admit(h forwardHello) error {
	if mine := j.machine.ClusterID(); mine != "" && h.clusterID != "" && mine != h.clusterID {
		return fmt.Errorf("master %s is in cluster %s, this master in cluster %s", h.nodeID, h.clusterID, mine)
	}
	f := j.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("read the raft configuration: %w", err)
	}
	if !slices.ContainsFunc(f.Configuration().Servers, func(s raft.Server) bool { return string(s.ID) == h.nodeID }) {
		return fmt.Errorf("%q is not a member of this cluster's raft configuration", h.nodeID)
	}
	return nil
}

// answerForward proposes one forwarded request and queues its answer.
func (j *Journal) answerForward(ctx context.Context, req forwardRequest, out chan<- []byte) {
	wait := maxForwardWait
	if req.timeoutMS > 0 && time.Duration(req.timeoutMS)*time.Millisecond < wait {
		wait = time.Duration(req.timeoutMS) * time.Millisecond
	}
	pctx, cancel := context.WithTimeout(ctx, wait)
	res, idx, err := j.Propose(pctx, req.events...)
	cancel()
	a := forwardAnswer{id: req.id, index: idx, results: res}
	switch {
	case err == nil:
		j.metrics.forwardServed.Add(float64(len(req.events)))
	case Refused(err):
		a.status, a.message = statusRefused, err.Error()
	case errors.Is(err, ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown):
		a.status, a.message = statusLost, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		a.status, a.message = statusDeadline, err.Error()
	default:
		a.status, a.message = statusFailed, err.Error()
	}
	select {
	case out <- encodeAnswer(a):
	case <-ctx.Done():
	}
}

// writeFrames writes the bodies that arrive on out as frames, flushing when nothing more is
// waiting (or after forwardWriteBurst frames), until done closes or a
// write fails.
func writeFrames(c net.Conn, out <-chan []byte, done <-chan struct{}) error {
	bw := bufio.NewWriterSize(c, 64<<10)
	for {
		var f []byte
		select {
		case f = <-out:
		case <-done:
			return nil
		}
		yielded := false
		for n := 0; ; n++ {
			if err := writeFrame(bw, f); err != nil {
				return err
			}
			if n == forwardWriteBurst {
				break
			}
			select {
			case f = <-out:
				continue
			default:
			}
			if !yielded {
				// Let goroutines that are about to queue a frame (the
				// sender that woke us is usually one of many) run
				// first, so one write carries them all. With nothing
				// else runnable this returns at once.
				yielded = true
				runtime.Gosched()
				select {
				case f = <-out:
					continue
				default:
				}
			}
			break
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
}

// forwarder keeps this follower's connection to the leader.
type forwarder struct {
	j       *Journal
	mu      sync.Mutex
	conn    *fwdConn
	dialing chan struct{} // closed when the dial under way ends; nil when none
}

// call sends events to the leader at addr and waits for its answer.
// Errors that wrap errNotSent left nothing on the leader.
func (f *forwarder) call(ctx context.Context, addr string, events []*cairnv1.Event) ([]fsm.Result, uint64, error) {
	c, err := f.connTo(ctx, addr)
	if err != nil {
		return nil, 0, err
	}
	return c.call(ctx, events)
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
		c, err := dialForward(dctx, addr, forwardHello{nodeID: f.j.cfg.NodeID, clusterID: f.j.machine.ClusterID()}, f.j.stop)
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

func dialForward(ctx context.Context, addr string, hello forwardHello, stop <-chan struct{}) (*fwdConn, error) {
	dctx, cancel := context.WithTimeout(ctx, forwardDialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", addr)
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
		return fail(fmt.Errorf("no answer to the hello (%w); a leader that runs an older cairn cannot take forwarded writes: upgrade every master", err))
	}
	if ok != 0 {
		why, err := readString(br, 4096)
		if err != nil {
			why = "no reason given"
		}
		nc.Close()
		// Not errNotSent: a refusal does not go away by trying again.
		return nil, fmt.Errorf("the leader at %s refused this master's forwarded writes: %s", addr, why)
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

func (c *fwdConn) call(ctx context.Context, events []*cairnv1.Event) ([]fsm.Result, uint64, error) {
	req := forwardRequest{events: events}
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
		return nil, 0, notSent(c.addr, err)
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

	f, err := encodeRequest(req)
	if err == nil && len(f) > maxForwardFrame {
		err = fmt.Errorf("%d events take %d bytes, more than the %d a forwarded request may", len(events), len(f), maxForwardFrame)
	}
	if err != nil {
		forget()
		return nil, 0, err
	}
	select {
	case c.out <- f:
	case <-c.dead:
		forget()
		return nil, 0, notSent(c.addr, c.deathCause())
	case <-ctx.Done():
		forget()
		return nil, 0, fmt.Errorf("forward to the leader at %s: %w", c.addr, ctx.Err())
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
		return nil, 0, fmt.Errorf("forward to the leader at %s: the connection broke after the write was sent, so it may have been committed: %w (%v)",
			c.addr, raft.ErrLeadershipLost, c.deathCause())
	case <-ctx.Done():
		forget()
		select {
		case a := <-ch: // answered as the caller gave up
			return a.result(c.addr)
		default:
		}
		return nil, 0, fmt.Errorf("waiting for the leader at %s: %w", c.addr, ctx.Err())
	}
}

func (c *fwdConn) deathCause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// result turns an answer into what Propose would have returned.
func (a forwardAnswer) result(addr string) ([]fsm.Result, uint64, error) {
	switch a.status {
	case statusOK:
		return a.results, a.index, nil
	case statusRefused:
		return nil, 0, fmt.Errorf("%s is no longer the leader: %w", addr, errNotSent)
	case statusLost:
		return nil, 0, fmt.Errorf("leader at %s: %s: %w", addr, a.message, raft.ErrLeadershipLost)
	case statusDeadline:
		return nil, 0, fmt.Errorf("leader at %s: %s: %w", addr, a.message, context.DeadlineExceeded)
	default:
		return nil, 0, fmt.Errorf("leader at %s: %s", addr, a.message)
	}
}
