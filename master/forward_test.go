package master

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/cairnhq/cairn/proto/cairn/v1"
)

// TestStreamsAreServedLocally: the forwarder buffers bodies, so it may only
// forward unary calls; every streaming cairn procedure must be served by
// the master that receives it.
func TestStreamsAreServedLocally(t *testing.T) {
	t.Parallel()
	n := 0
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
				n++
				if (md.IsStreamingClient() || md.IsStreamingServer()) && leaderOnly(path) {
					t.Errorf("%s streams but would be forwarded to the leader", path)
				}
			}
		}
		return true
	})
	if n == 0 {
		t.Fatal("no cairn procedures registered")
	}
	if n < len(masterServices) {
		t.Fatalf("only %d procedures found in %d services", n, len(masterServices))
	}
	for _, p := range []string{"/grpc.health.v1.Health/Check", "/metrics", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "/cairn.v1.DataService/Read"} {
		if leaderOnly(p) {
			t.Errorf("%s would be forwarded", p)
		}
	}
	if !leaderOnly("/cairn.v1.NamespaceService/CreateFile") {
		t.Error("a write is served locally")
	}
}
