package journal

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestAdvertiseAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1:7701":           "10.0.0.1:7701",
		"[::1]:7701":              "[::1]:7701",
		"m-0.masters.ns.svc:7701": "m-0.masters.ns.svc:7701",
		"localhost:7701":          "localhost:7701",
	} {
		got, err := advertiseAddr(in)
		if err != nil || got.String() != want {
			t.Errorf("advertiseAddr(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"0.0.0.0:7701", "[::]:7701", ":7701", "m-0:http", "m-0", "m-0:0"} {
		if got, err := advertiseAddr(in); err == nil {
			t.Errorf("advertiseAddr(%q) = %v, want an error", in, got)
		}
	}
}

// Nodes advertised by host name form a cluster: the raft configuration
// keeps the names, and every dial resolves them anew.
func TestAdvertiseByName(t *testing.T) {
	js := tcpCluster(t, 2, func(c *Config) {
		_, port, _ := net.SplitHostPort(c.RaftBind)
		c.RaftAdvertise = "localhost:" + port
	})
	for _, j := range js {
		if !strings.HasPrefix(j.RaftAddress(), "localhost:") {
			t.Fatalf("%s advertises %s, not its name", j.NodeID(), j.RaftAddress())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := js[0].Propose(ctx, note("by name")); err != nil {
		t.Fatal(err)
	}
	servers, err := js[0].Servers()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		if !strings.HasPrefix(s.Address, "localhost:") {
			t.Fatalf("the configuration holds %s for %s", s.Address, s.ID)
		}
	}
	waitFor(t, "the follower to apply the write", func() bool {
		return js[1].State().AppliedIndex() >= js[0].State().AppliedIndex()
	})
}
