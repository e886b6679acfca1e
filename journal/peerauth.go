package journal

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Peer authentication on the raft port. Raft's own connections and
// forward connections both start with a proof that the dialer belongs to
// this cluster: it knows the cluster secret. The listener sends a random
// challenge, the dialer answers with an HMAC-SHA256 of it under the
// secret, and only then does the connection carry raft or forwarded calls.
// A connection that does not open with the proof is refused at its first
// byte. With TLS on the raft port (Config.ServerTLS and ClientTLS) the
// proof travels inside TLS, and with client certificates required the
// certificate proves membership too.
//
//	dialer → listener: peerMagic, peerVersion
//	listener → dialer: 32-byte challenge
//	dialer → listener: HMAC-SHA256(secret, peerLabel || challenge)
//	listener → dialer: 0 (welcome), or 1 + uvarint len + reason (then close)

const (
	peerMagic   byte = 0xCB
	peerVersion byte = 1
	// peerLabel binds the proof to its use.
	peerLabel = "cairn raft peer v1"
)

// NewClusterSecret returns a fresh random cluster secret.
func NewClusterSecret() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return b
}

func peerProof(secret, challenge []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(peerLabel))
	m.Write(challenge)
	return m.Sum(nil)
}

// errPeerRefused is wrapped by a dial whose proof the listener refused.
var errPeerRefused = errors.New("the peer refused this master's proof of membership")

// proveMembership is the dialer's side of the handshake, on a new
// connection.
func proveMembership(c net.Conn, secret []byte, deadline time.Time) error {
	c.SetDeadline(deadline)
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte{peerMagic, peerVersion}); err != nil {
		return err
	}
	challenge := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, challenge); err != nil {
		return fmt.Errorf("read the challenge: %w", err)
	}
	if _, err := c.Write(peerProof(secret, challenge)); err != nil {
		return err
	}
	var ok [1]byte
	if _, err := io.ReadFull(c, ok[:]); err != nil {
		return fmt.Errorf("read the answer to the proof: %w", err)
	}
	if ok[0] != 0 {
		why, err := readString(bufio.NewReader(c), 4096)
		if err != nil {
			why = "no reason given"
		}
		return fmt.Errorf("%w: %s", errPeerRefused, why)
	}
	return nil
}

// checkMembership is the listener's side, after it has read peerMagic. It
// answers a refusal itself; the caller closes the connection on error.
func checkMembership(c net.Conn, r io.Reader, secret []byte) error {
	var v [1]byte
	if _, err := io.ReadFull(r, v[:]); err != nil {
		return err
	}
	refuse := func(why string) error {
		c.Write(append([]byte{1}, appendString(nil, why)...))
		return errors.New(why)
	}
	if v[0] != peerVersion {
		return refuse(fmt.Sprintf("peer handshake version %d, this master speaks %d: upgrade every master to the same release", v[0], peerVersion))
	}
	challenge := make([]byte, sha256.Size)
	if _, err := rand.Read(challenge); err != nil {
		return err
	}
	if _, err := c.Write(challenge); err != nil {
		return err
	}
	proof := make([]byte, sha256.Size)
	if _, err := io.ReadFull(r, proof); err != nil {
		return err
	}
	if !hmac.Equal(proof, peerProof(secret, challenge)) {
		return refuse("wrong cluster secret: this master is not a member of the cluster (a new master joins with cairn master --join and an admin token)")
	}
	_, err := c.Write([]byte{0})
	return err
}

// tlsServer wraps an accepted connection in TLS, when the port has it.
func tlsServer(c net.Conn, cfg *tls.Config, deadline time.Time) (net.Conn, error) {
	if cfg == nil {
		return c, nil
	}
	tc := tls.Server(c, cfg)
	c.SetDeadline(deadline)
	defer c.SetDeadline(time.Time{})
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return tc, nil
}

// tlsClient wraps a dialled connection in TLS for the peer at addr, when
// the port has it.
func tlsClient(c net.Conn, cfg *tls.Config, addr string, deadline time.Time) (net.Conn, error) {
	if cfg == nil {
		return c, nil
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	c.SetDeadline(deadline)
	defer c.SetDeadline(time.Time{})
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("tls with %s: %w", addr, err)
	}
	return tc, nil
}
