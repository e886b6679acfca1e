// Package s3test runs a real S3 server for tests: versitygw (Apache-2.0),
// which serves a local directory over S3 (a bucket is a folder of it, an
// object a file under the bucket's folder). Each test gets its own server
// process on a free loopback port over a temporary directory, stopped by
// pid when the test ends.
package s3test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Version is the versitygw the tests use; make test installs it into bin/.
const Version = "v1.8.0"

// The credentials every test server accepts. Tests hand them to the
// processes that touch the store through the standard AWS environment
// variables (Env).
const (
	Access = "cairntestaccess"
	Secret = "cairn-test-secret-key"
)

// Server is one running versitygw.
type Server struct {
	// Endpoint is http://127.0.0.1:PORT.
	Endpoint string
	// Dir holds the buckets: Dir/BUCKET/KEY is the object BUCKET/KEY.
	Dir string
	cmd *exec.Cmd
	log string
}

// Options tune a server.
type Options struct {
	// Versioning turns on bucket versioning support (its metadata lives
	// beside Dir).
	Versioning bool
	// Access and Secret are the credentials the server accepts (Access and
	// Secret, the constants, when empty): a server with others refuses the
	// tests' credentials.
	Access, Secret string
}

// Start runs a server for t.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith runs a server for t with options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	s := &Server{Dir: filepath.Join(root, "data"), log: filepath.Join(root, "versitygw.log")}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	s.Endpoint = "http://" + addr
	access, secret := Access, Secret
	if o.Access != "" {
		access, secret = o.Access, o.Secret
	}
	args := []string{"--access", access, "--secret", secret, "--port", addr, "posix"}
	if o.Versioning {
		vdir := filepath.Join(root, "versions")
		os.MkdirAll(vdir, 0o755)
		args = append(args, "--versioning-dir", vdir)
	}
	args = append(args, s.Dir)
	f, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = f, f
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start versitygw: %v", err)
	}
	go func() { s.cmd.Wait(); f.Close() }()
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.log)
			t.Fatalf("versitygw did not listen on %s: %v\n%s", addr, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (by pid) and waits for it to go.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
	for range 500 {
		if syscall.Kill(s.cmd.Process.Pid, 0) != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Bucket makes a bucket (a folder of Dir).
func (s *Server) Bucket(t testing.TB, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(s.Dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
}

// Env is the environment a process that touches the store needs: the
// standard AWS variables with the server's credentials.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + Access, "AWS_SECRET_ACCESS_KEY=" + Secret, "AWS_REGION=us-east-1"}
}

// Setenv sets Env in this process for the rest of t (which then must not
// be parallel): processes t starts inherit it.
func (s *Server) Setenv(t *testing.T) {
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	// A developer's own AWS files must not lend other credentials.
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(s.Dir, "no-such-credentials"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(s.Dir, "no-such-config"))
	t.Setenv("AWS_PROFILE", "")
}

// Binary returns the module's bin/versitygw, installing it there from the
// Go module proxy when it is missing (as make test does first).
func Binary() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin")
	path := filepath.Join(bin, "versitygw")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	// Test binaries of several packages may get here at once: one installs.
	lock, err := os.OpenFile(filepath.Join(bin, ".versitygw.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	cmd := exec.Command("go", "install", "github.com/versity/versitygw/cmd/versitygw@"+Version)
	cmd.Env = append(os.Environ(), "GOBIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("install versitygw %s: %v\n%s", Version, err, out)
	}
	return path, nil
}

// moduleRoot is the folder of the go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/cairnhq/cairn\n") {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("no cairn go.mod above the working directory")
		}
		dir = up
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
