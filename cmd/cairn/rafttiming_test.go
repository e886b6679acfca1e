package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/journal"
)

func TestCheckRaftTiming(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	cases := []struct {
		name            string
		hb, elect, lead time.Duration
		want            string // "" when accepted
	}{
		{"the defaults", 500 * ms, 500 * ms, 250 * ms, ""},
		{"faster", 200 * ms, 200 * ms, 100 * ms, ""},
		{"lease equal to the heartbeat", 300 * ms, 600 * ms, 300 * ms, ""},
		{"too small", 4 * ms, 500 * ms, 2 * ms, "at least 5ms"},
		{"election below heartbeat", 500 * ms, 400 * ms, 250 * ms, "--raft-election-timeout 400ms is below"},
		{"lease above heartbeat", 500 * ms, 500 * ms, 600 * ms, "--raft-leader-lease 600ms is above"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := checkRaftTiming(journal.Config{HeartbeatTimeout: tc.hb, ElectionTimeout: tc.elect, LeaderLeaseTimeout: tc.lead})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}
