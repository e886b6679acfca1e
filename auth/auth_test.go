package auth

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// TestEveryProcedureHasARule walks every procedure of every cairn service:
// each must have a rule, and every rule must name a real procedure.
func TestEveryProcedureHasARule(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "cairn.") {
			return true
		}
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for k := range sd.Methods().Len() {
				path := "/" + string(sd.FullName()) + "/" + string(sd.Methods().Get(k).Name())
				seen[path] = true
				if c, ok := Rules[path]; !ok || c == Open {
					t.Errorf("%s has no rule in auth.Rules: say which roles may call it", path)
				}
			}
		}
		return true
	})
	if len(seen) < 50 {
		t.Fatalf("only %d procedures found", len(seen))
	}
	for p := range Rules {
		if !seen[p] {
			t.Errorf("auth.Rules has %s, which no cairn service has", p)
		}
	}
}

type fakeTable map[string]Principal

func (f fakeTable) Principal(hash []byte) (Principal, bool, error) {
	p, ok := f[string(hash)]
	return p, ok, nil
}

func TestCheck(t *testing.T) {
	t.Parallel()
	tokens := map[cairnv1.Role]string{}
	table := fakeTable{}
	for name, r := range Roles {
		tokens[r] = NewToken()
		table[string(Hash(tokens[r]))] = Principal{Name: name + "-token", Role: r}
	}
	c := NewChecker(table, prometheus.NewRegistry())
	header := func(token string) http.Header {
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		return h
	}
	for _, tc := range []struct {
		name  string
		path  string
		token string
		want  connect.Code // 0: allowed
	}{
		{"no token", "/cairn.v1.ClusterService/GetClusterMap", "", connect.CodeUnauthenticated},
		{"unknown token", "/cairn.v1.ClusterService/GetClusterMap", NewToken(), connect.CodeUnauthenticated},
		{"reader reads", "/cairn.v1.NamespaceService/ListFiles", tokens[cairnv1.Role_ROLE_READER], 0},
		{"reader cannot write", "/cairn.v1.NamespaceService/CreateFile", tokens[cairnv1.Role_ROLE_READER], connect.CodePermissionDenied},
		{"worker cannot start a job", "/cairn.v1.JobService/StartJob", tokens[cairnv1.Role_ROLE_WORKER], connect.CodePermissionDenied},
		{"worker cannot decommission", "/cairn.v1.ClusterService/DecommissionWorker", tokens[cairnv1.Role_ROLE_WORKER], connect.CodePermissionDenied},
		{"worker cannot list the namespace", "/cairn.v1.NamespaceService/ListFiles", tokens[cairnv1.Role_ROLE_WORKER], connect.CodePermissionDenied},
		{"worker follows the map", "/cairn.v1.ClusterService/WatchClusterMap", tokens[cairnv1.Role_ROLE_WORKER], 0},
		{"worker leases", "/cairn.v1.LeaseService/Lease", tokens[cairnv1.Role_ROLE_WORKER], 0},
		{"operator starts a job", "/cairn.v1.JobService/StartJob", tokens[cairnv1.Role_ROLE_OPERATOR], 0},
		{"operator cannot make tokens", "/cairn.v1.AuthService/CreateToken", tokens[cairnv1.Role_ROLE_OPERATOR], connect.CodePermissionDenied},
		{"operator cannot lease", "/cairn.v1.LeaseService/Lease", tokens[cairnv1.Role_ROLE_OPERATOR], connect.CodePermissionDenied},
		{"writer writes", "/cairn.v1.DataService/Write", tokens[cairnv1.Role_ROLE_WRITER], 0},
		{"admin makes tokens", "/cairn.v1.AuthService/CreateToken", tokens[cairnv1.Role_ROLE_ADMIN], 0},
		{"metrics need a token", "/metrics", "", connect.CodeUnauthenticated},
		{"any token reads metrics", "/metrics", tokens[cairnv1.Role_ROLE_WORKER], 0},
		{"profiles are for admins", "/debug/pprof/heap", tokens[cairnv1.Role_ROLE_OPERATOR], connect.CodePermissionDenied},
		{"bulk writes are for workers", "/data/v1/write", tokens[cairnv1.Role_ROLE_WRITER], connect.CodePermissionDenied},
		{"health is open", "/grpc.health.v1.Health/Check", "", 0},
		{"a cairn procedure without a rule is for admins", "/cairn.v1.NewService/Thing", tokens[cairnv1.Role_ROLE_OPERATOR], connect.CodePermissionDenied},
	} {
		p, err := c.Check(tc.path, header(tc.token))
		if got := connect.CodeOf(err); (err == nil) != (tc.want == 0) || (err != nil && got != tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if err == nil && tc.token != "" && p.Name == "" && tc.path != "/grpc.health.v1.Health/Check" {
			t.Errorf("%s: no principal", tc.name)
		}
	}
	in := Insecure(prometheus.NewRegistry())
	if p, err := in.Check("/cairn.v1.AuthService/CreateToken", http.Header{}); err != nil || !p.Insecure || p.Role != cairnv1.Role_ROLE_ADMIN {
		t.Errorf("insecure: %v %v", p, err)
	}
}

func TestFromHeader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    string
		want string
		ok   bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc ", "abc", true},
		{"Basic abc", "", false},
		{"Bearer ", "", false},
		{"Bearer " + strings.Repeat("x", 600), "", false},
		{"", "", false},
	} {
		h := http.Header{}
		h.Set("Authorization", tc.v)
		got, ok := FromHeader(h)
		if got != tc.want && tc.ok || ok != tc.ok {
			t.Errorf("%q: %q %t, want %q %t", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

func TestEnsureTokenFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "admin.token")
	tok, created, err := EnsureTokenFile(path)
	if err != nil || !created || !strings.HasPrefix(tok, tokenPrefix) {
		t.Fatalf("first: %q %t %v", tok, created, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", fi.Mode(), err)
	}
	again, created, err := EnsureTokenFile(path)
	if err != nil || created || again != tok {
		t.Fatalf("second: %q %t %v, want the same token, not created", again, created, err)
	}
	os.WriteFile(path, []byte("\n"), 0o600)
	if _, _, err := EnsureTokenFile(path); err == nil {
		t.Fatal("an empty token file was taken")
	}
}

func TestParseInitialTokens(t *testing.T) {
	t.Parallel()
	good := "# name role token\nadmin admin cairn-0123456789abcdef\n\nworkers worker cairn-fedcba9876543210\n"
	got, err := ParseInitialTokens(good)
	if err != nil || len(got) != 2 || got[1].Name != "workers" || got[1].Role != "worker" {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{
		"admin admin",
		"admin boss cairn-0123456789abcdef",
		"admin admin short",
		"a admin cairn-0123456789abcdef\na reader cairn-0123456789abcdeg",
	} {
		if _, err := ParseInitialTokens(bad); err == nil {
			t.Errorf("%q was taken", bad)
		}
	}
}

func FuzzParseInitialTokens(f *testing.F) {
	f.Add("admin admin cairn-0123456789abcdef")
	f.Fuzz(func(t *testing.T, s string) {
		toks, err := ParseInitialTokens(s)
		if err != nil {
			return
		}
		for _, tk := range toks {
			if _, err := ParseRole(tk.Role); err != nil || tk.Name == "" || len(tk.Token) < 16 {
				t.Fatalf("took %+v", tk)
			}
		}
	})
}
