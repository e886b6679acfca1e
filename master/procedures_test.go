package master

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/cairnhq/cairn/proto/cairn/v1"
)

// TestEveryProcedureHasOneWayToBeServed walks every procedure of every
// master service: each is a read (served here after the read barrier), a
// local operation, or a leader procedure — exactly one — so a procedure
// added without a thought fails here. Streams cannot go to the leader.
func TestEveryProcedureHasOneWayToBeServed(t *testing.T) {
	t.Parallel()
	leader := (&Master{}).leaderProcs()
	seen := map[string]bool{}
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "cairn.") {
			return true
		}
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			if !slices.Contains(masterServices, string(sd.FullName())) {
				continue
			}
			for k := range sd.Methods().Len() {
				md := sd.Methods().Get(k)
				path := "/" + string(sd.FullName()) + "/" + string(md.Name())
				seen[path] = true
				ways := 0
				for _, in := range []bool{reads[path], localOps[path], leader[path] != nil} {
					if in {
						ways++
					}
				}
				if ways != 1 {
					t.Errorf("%s is served %d ways (read %t, local %t, leader %t); want exactly one", path, ways, reads[path], localOps[path], leader[path] != nil)
				}
				if (md.IsStreamingClient() || md.IsStreamingServer()) && leader[path] != nil {
					t.Errorf("%s streams but is a leader procedure: the journal forwards unary calls only", path)
				}
			}
		}
		return true
	})
	if len(seen) < 30 {
		t.Fatalf("only %d procedures found in %d services", len(seen), len(masterServices))
	}
	for _, table := range []map[string]bool{reads, localOps} {
		for p := range table {
			if !seen[p] {
				t.Errorf("%s is listed but no master service has it", p)
			}
		}
	}
	for p := range leader {
		if !seen[p] {
			t.Errorf("%s is a leader procedure but no master service has it", p)
		}
	}
}

func TestParseConsistency(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Consistency
		bad  bool
	}{
		{"", Linearizable, false},
		{"linearizable", Linearizable, false},
		{"stale", Stale, false},
		{"STALE", Stale, false},
		{"stale-any", StaleAny, false},
		{"serializable", 0, true},
		{"stale ", 0, true},
	} {
		got, err := ParseConsistency(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseConsistency(%q) = %v, %v; want %v (error: %t)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
