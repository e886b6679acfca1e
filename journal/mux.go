package journal

import (
	"errors"
	"io"
	"net"
	"sync"
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
}

var _ raft.StreamLayer = (*muxLayer)(nil)

// listenMux listens on bind and starts sorting connections; forward is
// called (in its own goroutine) with each forward connection, its magic
// byte already read.
func listenMux(bind string, adv net.Addr, forward func(net.Conn)) (*muxLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	l := &muxLayer{ln: ln, adv: adv, raft: make(chan net.Conn), forward: forward, done: make(chan struct{})}
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

func (l *muxLayer) sort(c net.Conn) {
	var first [1]byte
	c.SetReadDeadline(time.Now().Add(sortTimeout))
	if _, err := io.ReadFull(c, first[:]); err != nil {
		c.Close()
		return
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
	return net.DialTimeout("tcp", string(addr), timeout)
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
