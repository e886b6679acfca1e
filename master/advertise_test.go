package master

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
)

// A master bound to every interface (as in a container) advertises the
// raft address it is given; without one it refuses to start, since peers
// cannot dial 0.0.0.0.
func TestRaftAdvertise(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := Config{
		ID: "m1", DataDir: t.TempDir(), APIAddr: "127.0.0.1:0", Bootstrap: true, Insecure: true,
		RaftAddr: net.JoinHostPort("0.0.0.0", itoa(port)),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if m, err := Start(context.Background(), cfg); err == nil {
		m.Close()
		t.Fatal("a master bound to 0.0.0.0 with nothing to advertise started")
	} else if !strings.Contains(err.Error(), "not one peers can dial") {
		t.Fatalf("bound to 0.0.0.0 without --raft-advertise: %v", err)
	}
	cfg.DataDir = t.TempDir()
	cfg.RaftAdvertise = net.JoinHostPort("127.0.0.1", itoa(port))
	m, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := m.RaftAddr(); got != cfg.RaftAdvertise {
		t.Fatalf("raft address %s, want the advertised %s", got, cfg.RaftAdvertise)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
