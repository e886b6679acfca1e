package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/client"
)

// openPTY opens a pseudo-terminal: the side a test reads (ptm) and the
// terminal a child process writes to (pts).
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pty's terminal: %v", err)
	}
	t.Cleanup(func() { pts.Close(); ptm.Close() })
	return ptm, pts
}

// ptyOutput collects what a child writes to a terminal.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *ptyOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// onTerminal starts the cairn binary with args, its stdout and stderr a
// terminal; the process is killed (by pid) when the test ends.
func onTerminal(t *testing.T, args ...string) *ptyOutput {
	t.Helper()
	ptm, pts := openPTY(t)
	cmd := exec.Command(cairnBin, args...)
	cmd.Env = append(os.Environ(), "CAIRN_TOKEN="+adminToken)
	cmd.Stdout, cmd.Stderr = pts, pts
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := &ptyOutput{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ptm.Read(b)
			out.mu.Lock()
			out.buf.Write(b[:n])
			out.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	return out
}

// finalLine is wait's last line for a job that succeeded.
var finalLine = regexp.MustCompile(`^job (\d+) cleanup SUCCEEDED: tasks 2/2, scanned \d+, removed \d+ \([^)]*\), kept \d+, [^,]+/s, took [0-9.ms]+$`)

// TestWhatPeopleSee: off a terminal (a pipe), --wait and job wait print
// plain progress lines and the servers log JSON; on a terminal, wait draws
// a bar and a server logs text; --log-format chooses, and refuses what it
// does not know.
func TestWhatPeopleSee(t *testing.T) {
	c := startCluster(t, 1, 2)
	files := c.client().Files()
	for i := range 20 {
		data := randomBytes(1000, uint64(i))
		if _, err := files.Put(t.Context(), fmt.Sprintf("/o/f%02d", i), bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var id string

	t.Run("wait through a pipe prints plain lines", func(t *testing.T) {
		out, err := cairn(t, "job", "start", "cleanup", "--wait", "--masters", c.addrs())
		if err != nil {
			t.Fatalf("cleanup --wait: %v\n%s", err, out)
		}
		if strings.ContainsAny(out, "\r\x1b") {
			t.Fatalf("a pipe got terminal control characters: %q", out)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if !strings.HasPrefix(lines[0], "job ") || !strings.Contains(lines[0], "(cleanup) started: 2 tasks") {
			t.Fatalf("first line %q", lines[0])
		}
		for _, l := range lines[1:] {
			if !strings.HasPrefix(l, "job ") || !strings.Contains(l, " cleanup ") || !strings.Contains(l, ": tasks ") {
				t.Fatalf("not a progress line: %q in\n%s", l, out)
			}
		}
		m := finalLine.FindStringSubmatch(lines[len(lines)-1])
		if m == nil {
			t.Fatalf("last line %q is not the job's final line", lines[len(lines)-1])
		}
		id = m[1]
		out, err = cairn(t, "job", "wait", id, "--masters", c.addrs())
		if err != nil || !finalLine.MatchString(strings.TrimSuffix(out, "\n")) {
			t.Fatalf("job wait %s of an ended job: %v\n%q", id, err, out)
		}
	})

	t.Run("wait on a terminal draws a bar", func(t *testing.T) {
		if id == "" {
			t.Skip("no job from the subtest before")
		}
		out := onTerminal(t, "job", "wait", id, "--masters", c.addrs())
		eventually(t, 20*time.Second, "job wait's final line", func() bool {
			s := out.String()
			return strings.Contains(s, "took") && strings.HasSuffix(s, "\r\n")
		})
		s := out.String()
		if !strings.Contains(s, "100% [") || !strings.Contains(s, "(2/2) tasks of job "+id+" cleanup: scanned") {
			t.Fatalf("no progress bar on a terminal: %q", s)
		}
		// The line after the cleared bar, without the terminal's line end.
		s = strings.TrimSuffix(s, "\r\n")
		last := strings.TrimPrefix(s[strings.LastIndex(s, "\r")+1:], "\x1b[K")
		if !finalLine.MatchString(last) {
			t.Fatalf("the bar is not followed by the final line: %q", s)
		}
	})

	t.Run("servers log JSON to a file and text to a terminal", func(t *testing.T) {
		b, err := os.ReadFile(c.masters[0].log)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(b), "\n")
		var rec map[string]any
		if err := json.Unmarshal([]byte(first), &rec); err != nil || rec["msg"] == nil {
			t.Fatalf("the master's log in a file is not JSON: %q (%v)", first, err)
		}
		args := []string{"worker", "--id", "w3", "--data", filepath.Join(c.root, "w3"), "--api", freeAddr(t),
			"--masters", c.addrs(), "--capacity", "1GiB", "--token-file", workerTokenFile}
		out := onTerminal(t, args...)
		eventually(t, 20*time.Second, "w3 to log on its terminal", func() bool { return strings.Contains(out.String(), "\n") })
		line, _, _ := strings.Cut(out.String(), "\n")
		if !regexp.MustCompile(`^time=\d\d:\d\d:\d\d\.\d{3} level=INFO msg=`).MatchString(line) {
			t.Fatalf("a worker on a terminal logged %q, want text", line)
		}
		// --log-format json on a terminal: JSON all the same.
		args[2], args[4], args[6] = "w4", filepath.Join(c.root, "w4"), freeAddr(t)
		out = onTerminal(t, append(args, "--log-format", "json")...)
		eventually(t, 20*time.Second, "w4 to log on its terminal", func() bool { return strings.Contains(out.String(), "\n") })
		line, _, _ = strings.Cut(out.String(), "\n")
		if err := json.Unmarshal([]byte(strings.TrimSpace(line)), &rec); err != nil {
			t.Fatalf("--log-format json on a terminal logged %q (%v)", line, err)
		}
	})

	t.Run("--log-format refuses what it does not know", func(t *testing.T) {
		for _, verb := range [][]string{{"master"}, {"worker"}, {"dev"}} {
			out, err := cairn(t, append(verb, "--log-format", "xml")...)
			if err == nil || !strings.Contains(out, `invalid argument "xml" for "--log-format" flag: want text, json or auto`) {
				t.Fatalf("cairn %s --log-format xml: %v\n%s", verb[0], err, out)
			}
		}
	})
}
