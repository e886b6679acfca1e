package tests

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// A cluster under mutual TLS: masters, workers and clients speak TLS on
// the API and the raft port, and require certificates the CA signed.
// grpcurl works with -cacert (and a client certificate), not in plaintext;
// data goes through the workers; a master with a certificate of another CA
// cannot join.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	certs, err := apiserver.DevTLS(filepath.Join(t.TempDir(), "tls"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tlsArgs := []string{"--tls-ca", certs.CA, "--tls-cert", certs.Cert, "--tls-key", certs.Key, "--tls-client-auth"}
	c := startClusterWith(t, 3, 2, tlsArgs, tlsArgs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	api := c.masters[1].api

	// grpcurl: with the CA and a client certificate, yes; without the
	// certificate, or in plaintext, no.
	if out, err := grpcurl(t, "-cacert", certs.CA, "-cert", certs.Cert, "-key", certs.Key, "-d", "{}", api, "cairn.v1.AuthService/WhoAmI"); err != nil || !strings.Contains(out, `"admin"`) {
		t.Fatalf("grpcurl under mTLS: %v\n%s", err, out)
	}
	if out, err := grpcurl(t, "-cacert", certs.CA, "-d", "{}", api, "cairn.v1.AuthService/WhoAmI"); err == nil {
		t.Fatalf("grpcurl without a client certificate was served:\n%s", out)
	}
	if out, err := grpcurl(t, "-plaintext", "-d", "{}", api, "cairn.v1.AuthService/WhoAmI"); err == nil {
		t.Fatalf("grpcurl in plaintext was served:\n%s", out)
	}

	// The CLI with the same flags writes and reads a file through the
	// workers (which speak TLS to each other and to the masters).
	src := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(src, bytes.Repeat([]byte("tls "), 300_000), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := append([]string{"--masters", c.addrs()}, tlsArgs[:6]...)
	if out, err := cairn(t, append([]string{"fs", "put", src, "/tls/data.bin", "--replication", "2"}, cli...)...); err != nil {
		t.Fatalf("put over TLS: %v\n%s", err, out)
	}
	dst := filepath.Join(t.TempDir(), "back.bin")
	if out, err := cairn(t, append([]string{"fs", "get", "/tls/data.bin", dst}, cli...)...); err != nil {
		t.Fatalf("get over TLS: %v\n%s", err, out)
	}
	if a, b := mustRead(t, src), mustRead(t, dst); !bytes.Equal(a, b) {
		t.Fatal("the file read back over TLS differs")
	}
	// Without a client certificate, the CLI is refused.
	if out, err := cairn(t, "cluster", "show", "--masters", api, "--tls-ca", certs.CA); err == nil {
		t.Fatalf("the CLI without a client certificate was served:\n%s", out)
	}

	// A master whose certificate another CA signed cannot join: the API and
	// the raft port refuse it at the TLS handshake.
	other, err := apiserver.DevTLS(filepath.Join(t.TempDir(), "other"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rogue := start(t, "m4", "master", "--id", "m4", "--data", filepath.Join(c.root, "m4"), "--api", freeAddr(t), "--raft", freeAddr(t),
		"--join", api, "--token-file", adminTokenFile, "--tls-ca", other.CA, "--tls-cert", other.Cert, "--tls-key", other.Key, "--tls-client-auth")
	err, gone := rogue.exited(90 * time.Second)
	var ee *exec.ExitError
	if !gone || !errors.As(err, &ee) {
		t.Fatalf("a master with another CA's certificate did not give up joining (exited %t: %v)", gone, err)
	}
	if log := tail(rogue.log, 10); !strings.Contains(log, "certificate") {
		t.Fatalf("the rogue's failure does not name the certificate:\n%s", log)
	}
	peers, err := client.Msg(ctx, c.client(), func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.ListRaftPeersResponse], error) {
		return s.Operator.ListRaftPeers(ctx, connect.NewRequest(&cairnv1.ListRaftPeersRequest{}))
	})
	if err != nil || len(peers.GetPeers()) != 3 {
		t.Fatalf("peers after the rogue's attempt: %v %v", peers, err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
