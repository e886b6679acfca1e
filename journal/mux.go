package journal

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// forwardMagic opens a connection to the raft port that carries forwarded
// proposals instead of raft RPCs. hashicorp/raft's NetworkTransport opens
// every connection with an RPC type byte (0–4), so the two never collide.
const forwardMagic byte = 0xCA

// sortTimeout bounds how long an accepted connection may take to send its
// first byte.
const sortTimeout = 10 * time.Second

// errMuxClosed is what Accept returns once the layer is closed.
var errMuxClosed = errors.New("raft listener closed")

// muxLayer is the raft.StreamLayer of a journal on TCP: one listener whose
// connections are sorted by their first byte into raft's and the forward
// server's.
type muxLayer struct {
	ln      net.Listener
	adv     net.Addr
	raft    chan net.Conn
	forward func(net.Conn)
	done    chan struct{}
	once    sync.Once

	// blocked cuts this node off (BlockTransport): every connection is
	// closed, and none is made or let in, until it is cleared.
	blocked atomic.Bool
	connsMu sync.Mutex
	conns   map[*trackedConn]struct{}

	// Membership (peerauth.go): TLS on the port (nil: plain TCP) and the
	// cluster secret every connection proves (nil: none, --insecure).
	serverTLS, clientTLS *tls.Config
	secret               atomic.Pointer[[]byte]
	// refused counts a connection turned away, by reason.
	refused func(reason string)
}

// errBlocked is what a dial returns while the transport is blocked.
var errBlocked = errors.New("raft transport blocked (fault injection)")

var _ raft.StreamLayer = (*muxLayer)(nil)

// listenMux listens on bind and starts sorting connections; forward is
// called (in its own goroutine) with each forward connection, its magic
// byte already read.
// The port uses serverTLS and clientTLS when set, and asks every connection
// to prove it knows secret when it is set; refused counts the connections
// it turns away.
func listenMux(bind string, adv net.Addr, forward func(net.Conn), serverTLS, clientTLS *tls.Config, secret []byte, refused func(reason string)) (*muxLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	l := &muxLayer{ln: ln, adv: adv, raft: make(chan net.Conn), forward: forward, done: make(chan struct{}), conns: map[*trackedConn]struct{}{},
		serverTLS: serverTLS, clientTLS: clientTLS, refused: refused}
	if secret != nil {
		s := append([]byte(nil), secret...)
		l.secret.Store(&s)
	}
	go l.acceptLoop()
	return l, nil
}

func (l *muxLayer) acceptLoop() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			// Out of file descriptors and the like: back off, as
			// net/http does, rather than spin.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		go l.sort(c)
	}
}

func (l *muxLayer) sort(nc net.Conn) {
	if l.blocked.Load() {
		nc.Close()
		return
	}
	tc := l.track(nc)
	deadline := time.Now().Add(sortTimeout)
	c, err := tlsServer(tc, l.serverTLS, deadline)
	if err != nil {
		l.refuse("tls", tc)
		return
	}
	var first [1]byte
	c.SetReadDeadline(deadline)
	if _, err := io.ReadFull(c, first[:]); err != nil {
		c.Close()
		return
	}
	if secret := l.secret.Load(); secret != nil {
		if first[0] != peerMagic {
			l.refuse("no_proof", c) // not even a hello: refused at the first byte
			return
		}
		if err := checkMembership(c, c, *secret); err != nil {
			l.refuse("bad_proof", c)
			return
		}
		if _, err := io.ReadFull(c, first[:]); err != nil {
			c.Close()
			return
		}
	}
	c.SetReadDeadline(time.Time{})
	if first[0] == forwardMagic {
		l.forward(c)
		return
	}
	select {
	case l.raft <- &peekedConn{Conn: c, first: first[0], unread: true}:
	case <-l.done:
		c.Close()
	}
}

// refuse closes a connection that did not prove membership, and counts it.
func (l *muxLayer) refuse(reason string, c net.Conn) {
	c.Close()
	if l.refused != nil {
		l.refused(reason)
	}
}

// Accept returns the next raft connection.
func (l *muxLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.raft:
		return c, nil
	case <-l.done:
		return nil, errMuxClosed
	}
}

// Close stops listening; connections already handed out stay open.
func (l *muxLayer) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.ln.Close()
	})
	return err
}

// Addr is the address peers reach this node at.
func (l *muxLayer) Addr() net.Addr { return l.adv }

// Dial opens a raft connection to a peer.
func (l *muxLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.dialContext(ctx, string(addr))
}

// dialContext opens a connection to a peer's raft port (raft's own, or a
// forward connection).
func (l *muxLayer) dialContext(ctx context.Context, addr string) (net.Conn, error) {
	if l.blocked.Load() {
		return nil, errBlocked
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := l.track(nc)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(sortTimeout)
	}
	c, err := tlsClient(tc, l.clientTLS, addr, deadline)
	if err != nil {
		tc.Close()
		return nil, err
	}
	if secret := l.secret.Load(); secret != nil {
		if err := proveMembership(c, *secret, deadline); err != nil {
			c.Close()
			return nil, fmt.Errorf("prove membership to %s: %w", addr, err)
		}
	}
	return c, nil
}

// block cuts the node off (true) or lets it back (false).
func (l *muxLayer) block(on bool) {
	l.blocked.Store(on)
	if !on {
		return
	}
	l.connsMu.Lock()
	cs := make([]*trackedConn, 0, len(l.conns))
	for c := range l.conns {
		cs = append(cs, c)
	}
	l.connsMu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

// track keeps c in the set block closes, until c is closed.
func (l *muxLayer) track(c net.Conn) *trackedConn {
	t := &trackedConn{Conn: c, l: l}
	l.connsMu.Lock()
	l.conns[t] = struct{}{}
	l.connsMu.Unlock()
	if l.blocked.Load() { // blocked meanwhile: block may have missed it
		t.Close()
	}
	return t
}

// trackedConn leaves its layer's set when closed.
type trackedConn struct {
	net.Conn
	l *muxLayer
}

func (c *trackedConn) Close() error {
	c.l.connsMu.Lock()
	delete(c.l.conns, c)
	c.l.connsMu.Unlock()
	return c.Conn.Close()
}

// peekedConn gives back the byte the mux read to sort the connection.
type peekedConn struct {
	net.Conn
	first  byte
	unread bool
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if c.unread && len(p) > 0 {
		c.unread = false
		p[0] = c.first
		return 1, nil
	}
	return c.Conn.Read(p)
}

// BlockTransport cuts this node off from its peers (true) — every raft and
// forward connection is closed and none is made or let in — or lets it
// back (false). It exists for failover drills: a master cut off this way
// keeps running, as one behind a network partition does. It fails with
// an injected transport.
func (j *Journal) BlockTransport(on bool) error {
	if j.mux == nil {
		return errors.New("this journal's transport cannot be blocked")
	}
	j.mux.block(on)
	j.log.Warn("raft transport blocked for a drill", "blocked", on)
	return nil
}

// SetClusterSecret sets the secret this node proves membership with, and
// checks others' proofs against (a master that joined learns it from the
// leader). Nil turns the proof off.
func (j *Journal) SetClusterSecret(secret []byte) {
	if j.mux == nil {
		return
	}
	if secret == nil {
		j.mux.secret.Store(nil)
		return
	}
	s := append([]byte(nil), secret...)
	j.mux.secret.Store(&s)
}
