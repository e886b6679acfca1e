package journal

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Every connection to the raft port proves it knows the cluster secret: a
// node with another secret gets no log, leads nothing and forwards nothing,
// and a connection without the proof is refused at its first byte.
func TestPeersProveMembership(t *testing.T) {
	t.Parallel()
	good, bad := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	n := 0
	js := tcpCluster(t, 3, func(c *Config) {
		c.ClusterSecret = good
		if n == 2 {
			c.ClusterSecret = bad
		}
		n++
	})
	noteCalls(js)
	for i := range 5 {
		if _, err := leadNote(context.Background(), js[i%2], "from a member"); err != nil {
			t.Fatalf("a member's write: %v", err)
		}
	}
	outsider := js[2]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := leadNote(ctx, outsider, "from outside"); err == nil {
		t.Fatal("a node with the wrong secret forwarded a write")
	}
	if outsider.IsLeader() || outsider.State().AppliedIndex() > 1 {
		t.Fatalf("the outsider leads (%t) or got the log (applied %d)", outsider.IsLeader(), outsider.State().AppliedIndex())
	}
	// The leader's attempts to replicate to it were refused by the
	// outsider: the proofs do not match either way.
	waitFor(t, "refusals counted", func() bool {
		return testutil.ToFloat64(outsider.metrics.raftRefused.WithLabelValues("bad_proof")) > 0
	})

	// Raft's own first byte, without the proof, is refused at once.
	nc, err := net.Dial("tcp", js[0].RaftAddress())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte{0, 1, 2, 3}) // an AppendEntries RPC type byte and junk
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err == nil {
		t.Fatal("the raft port answered a connection without the proof")
	}
	waitFor(t, "the refusal at the first byte counted", func() bool {
		return testutil.ToFloat64(js[0].metrics.raftRefused.WithLabelValues("no_proof")) > 0
	})

	// With the right secret, the same node joins the cluster's work.
	outsider.SetClusterSecret(good)
	waitFor(t, "the node with the secret to catch up", func() bool {
		return outsider.State().AppliedIndex() >= js[0].State().AppliedIndex()
	})
	if _, err := leadNote(context.Background(), outsider, "now a member"); err != nil {
		t.Fatalf("write through the node once it has the secret: %v", err)
	}
}

func TestMembershipProofRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		dialer, hearer []byte
		ok             bool
	}{
		{"same secret", []byte("s1"), []byte("s1"), true},
		{"other secret", []byte("s1"), []byte("s2"), false},
	} {
		a, b := net.Pipe()
		done := make(chan error, 1)
		go func() {
			var m [1]byte
			if _, err := b.Read(m[:]); err != nil || m[0] != peerMagic {
				done <- errors.New("no magic")
				return
			}
			done <- checkMembership(b, b, tc.hearer)
			b.Close()
		}()
		err := proveMembership(a, tc.dialer, time.Now().Add(5*time.Second))
		a.Close()
		herr := <-done
		if (err == nil) != tc.ok || (herr == nil) != tc.ok {
			t.Errorf("%s: dialer %v, listener %v; want ok %t", tc.name, err, herr, tc.ok)
		}
		if !tc.ok && !errors.Is(err, errPeerRefused) {
			t.Errorf("%s: the dialer's error %v does not say it was refused", tc.name, err)
		}
	}
}
