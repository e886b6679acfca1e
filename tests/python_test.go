package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// pythonBin is the interpreter the Python SDK is tested with: Debian's,
// which sees the Debian packages the SDK depends on (python3-grpcio,
// python3-protobuf, python3-xxhash, python3-pytest).
const pythonBin = "/usr/bin/python3"

// TestPythonSDK runs the Python SDK's pytest suite (sdk/python/tests). It
// starts its own clusters from the binary this package built: a cairn dev,
// and three masters with three workers; it checks the SDK's placement
// against vectors the Go code writes in the same run. `make test` installs
// the Debian packages first and sets CAIRN_PYTHON_TESTS=required, so there
// a missing package fails the test; a plain `go test` skips it instead.
func TestPythonSDK(t *testing.T) {
	check := exec.Command(pythonBin, "-c", "import grpc, google.protobuf, xxhash, pytest")
	if out, err := check.CombinedOutput(); err != nil {
		msg := "the Python SDK's tests need " + pythonBin + " with python3-grpcio, python3-protobuf, python3-xxhash and python3-pytest (make python-deps installs them): " + strings.TrimSpace(string(out))
		if os.Getenv("CAIRN_PYTHON_TESTS") == "required" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	sdk, err := filepath.Abs("../sdk/python")
	if err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pythonBin, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", t.TempDir(), "tests")
	cmd.Dir = sdk
	cmd.Env = append(os.Environ(), "CAIRN_BIN="+cairnBin, "GO="+goBin, "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	t.Logf("pytest (sdk/python):\n%s", out)
	if err != nil {
		t.Fatalf("pytest failed: %v", err)
	}
}
