package persistence

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/cairnhq/cairn/directio"
)

func newLocal(t testing.TB) *Local {
	t.Helper()
	l, err := NewLocal(filepath.Join(t.TempDir(), "ufs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func put(t testing.TB, u UFS, p string, data []byte) Info {
	t.Helper()
	w, err := u.Create(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	info, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func read(t testing.TB, u UFS, p string) []byte {
	t.Helper()
	r, err := u.Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLocalRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := newLocal(t)
	data := bytes.Repeat([]byte("cairn"), 1000)
	info := put(t, l, "/d/e/f.bin", data)
	if info.Size != int64(len(data)) || info.Path != "/d/e/f.bin" {
		t.Fatalf("commit info %+v", info)
	}
	if got := read(t, l, "/d/e/f.bin"); !bytes.Equal(got, data) {
		t.Fatal("read back differs")
	}
	r, err := l.Open(ctx, "/d/e/f.bin")
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 5)
	if _, err := r.ReadAt(part, 5); err != nil || string(part) != "cairn" || r.Info().Size != int64(len(data)) {
		t.Fatalf("ReadAt: %q %v", part, err)
	}
	r.Close()
	put(t, l, "/d/e/f.bin", []byte("new"))
	if got := read(t, l, "/d/e/f.bin"); string(got) != "new" {
		t.Fatalf("overwrite: %q", got)
	}
	put(t, l, "/d/a.txt", []byte("a"))
	put(t, l, "/z.txt", []byte("z"))
	var seen []string
	if err := l.Walk(ctx, "/", func(i Info) error { seen = append(seen, i.Path); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, ",") != "/d/a.txt,/d/e/f.bin,/z.txt" {
		t.Fatalf("walk saw %v", seen)
	}
	if st, err := l.Stat(ctx, "/d"); err != nil || !st.IsDir {
		t.Fatalf("stat dir: %+v %v", st, err)
	}
	if err := l.Delete(ctx, "/d/a.txt"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/d/a.txt", "/missing"} {
		if _, err := l.Open(ctx, p); !errors.Is(err, ErrNotFound) {
			t.Errorf("open %s: %v, want ErrNotFound", p, err)
		}
		if err := l.Delete(ctx, p); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete %s: %v, want ErrNotFound", p, err)
		}
	}
	if err := l.Delete(ctx, "/d"); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("delete a directory: %v", err)
	}
	if _, err := l.Open(ctx, "/d"); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("open a directory: %v", err)
	}
}

func TestLocalWritesAreAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := newLocal(t)
	put(t, l, "/f", []byte("old"))
	w, err := l.Create(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("half of the new"))
	if got := read(t, l, "/f"); string(got) != "old" {
		t.Fatalf("an uncommitted write is visible: %q", got)
	}
	var seen []string
	l.Walk(ctx, "/", func(i Info) error { seen = append(seen, i.Path); return nil })
	if len(seen) != 1 {
		t.Fatalf("walk shows a write in progress: %v", seen)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, l, "/f"); string(got) != "old" {
		t.Fatalf("after abort: %q", got)
	}
	entries, _ := os.ReadDir(l.Dir())
	if len(entries) != 1 {
		t.Fatalf("abort left files behind: %v", entries)
	}
	// A crash mid-write leaves a temporary file: a fresh one is somebody's
	// write in progress and stays; an old one is removed.
	w2, _ := l.Create(ctx, "/g/h")
	w2.Write([]byte("x"))
	if n, err := l.RemoveInterruptedWrites(time.Hour); err != nil || n != 0 {
		t.Fatalf("a write in progress was removed: %d %v", n, err)
	}
	entries, _ = os.ReadDir(filepath.Join(l.Dir(), "g"))
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(filepath.Join(l.Dir(), "g", entries[0].Name()), old, old)
	if n, err := l.RemoveInterruptedWrites(time.Hour); err != nil || n != 1 {
		t.Fatalf("an interrupted write was not removed: %d %v", n, err)
	}
	entries, _ = os.ReadDir(filepath.Join(l.Dir(), "g"))
	if len(entries) != 0 {
		t.Fatalf("an interrupted write survived: %v", entries)
	}
}

// escapeFixture builds a root with links that point out of it and a
// secret file outside.
func escapeFixture(t testing.TB) (*Local, string) {
	t.Helper()
	base := t.TempDir()
	secret := filepath.Join(base, "secret")
	if err := os.WriteFile(secret, []byte("SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := NewLocal(filepath.Join(base, "ufs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	put(t, l, "/in/ok.txt", []byte("ok"))
	for link, target := range map[string]string{
		"out-abs":    secret,
		"out-rel":    "../secret",
		"out-dir":    base,
		"in/out-rel": "../../secret",
		"in-link":    "in/ok.txt",
	} {
		if err := os.Symlink(target, filepath.Join(l.Dir(), link)); err != nil {
			t.Fatal(err)
		}
	}
	return l, secret
}

func TestLocalRefusesEscapes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, secret := escapeFixture(t)
	// A link that stays inside the root works, and Walk skips the others.
	if got := read(t, l, "/in-link"); string(got) != "ok" {
		t.Fatalf("in-root link: %q", got)
	}
	var seen []string
	if err := l.Walk(ctx, "/", func(i Info) error { seen = append(seen, i.Path); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, ",") != "/in/ok.txt,/in-link" {
		t.Fatalf("walk saw %v", seen)
	}
	for _, p := range []string{"/../secret", "../secret", "/in/../../secret", "/out-abs", "/out-rel", "/out-dir/secret", "/in/out-rel", "secret"} {
		if r, err := l.Open(ctx, p); err == nil {
			b, _ := io.ReadAll(r)
			r.Close()
			t.Errorf("open %q escaped the root and read %q", p, b)
		}
		if _, err := l.Stat(ctx, p); err == nil {
			t.Errorf("stat %q escaped the root", p)
		}
		// A write either fails or replaces the link itself with a file
		// inside the root; it never reaches what the link points at.
		if w, err := l.Create(ctx, p); err == nil {
			w.Write([]byte("x"))
			w.Commit()
		}
		if b, err := os.ReadFile(secret); err != nil || string(b) != "SECRET" {
			t.Fatalf("writing %q changed the file outside the root: %q %v", p, b, err)
		}
	}
}

// FuzzLocalOpen: no path opens anything but files inside the root.
func FuzzLocalOpen(f *testing.F) {
	for _, s := range []string{"/in/ok.txt", "/../secret", "/out-abs", "/out-dir/secret", "/in/out-rel", "/in-link", "/%2e%2e/secret"} {
		f.Add(s)
	}
	l, _ := escapeFixture(f)
	f.Fuzz(func(t *testing.T, p string) {
		r, err := l.Open(context.Background(), p)
		if err != nil {
			return
		}
		defer r.Close()
		b, _ := io.ReadAll(r)
		if bytes.Contains(b, []byte("SECRET")) {
			t.Fatalf("%q read the secret outside the root", p)
		}
	})
}

// TestLocalWriterPieces writes files whose sizes straddle the direct I/O
// alignment and chunk, mixing Write and ReadFrom, and checks the bytes in
// place and Written's size and checksum (directio has the finer cases).
func TestLocalWriterPieces(t *testing.T) {
	t.Parallel()
	l := newLocal(t)
	data := make([]byte, 2*directio.ChunkSize+3*directio.Align+17)
	for i := range data {
		data[i] = byte(i*7 + i/4099)
	}
	tests := []struct {
		name  string
		size  int
		piece []int // sizes of successive pieces, cycled; negative: ReadFrom
	}{
		{"empty", 0, []int{1}},
		{"align+1", directio.Align + 1, []int{-directio.Align, 1}},
		{"two chunks and a tail", len(data), []int{-directio.ChunkSize, -(3*directio.Align + 17), 777, directio.ChunkSize}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := data[:tc.size]
			p := "/pieces/" + strings.ReplaceAll(tc.name, " ", "-")
			uw, err := l.Create(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			defer uw.Abort()
			if !uw.(*localWriter).dw.Direct() {
				t.Logf("%s refuses direct I/O: writes go through the page cache", l.Dir())
			}
			for off, i := 0, 0; off < len(want); i++ {
				k := tc.piece[i%len(tc.piece)]
				useReadFrom := k < 0
				k = min(abs(k), len(want)-off)
				if useReadFrom {
					n, err := uw.ReadFrom(bytes.NewReader(want[off : off+k]))
					if err != nil || n != int64(k) {
						t.Fatalf("ReadFrom at %d: %d, %v", off, n, err)
					}
				} else if n, err := uw.Write(want[off : off+k]); err != nil || n != k {
					t.Fatalf("Write at %d: %d, %v", off, n, err)
				}
				off += k
			}
			n, sum, err := uw.Written()
			if err != nil || n != int64(len(want)) || sum != xxhash.Sum64(want) {
				t.Fatalf("Written() = %d, %016x, %v; want %d, %016x", n, sum, err, len(want), xxhash.Sum64(want))
			}
			info, err := uw.Commit()
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != int64(len(want)) {
				t.Fatalf("Commit: size %d, want %d", info.Size, len(want))
			}
			got, err := os.ReadFile(filepath.Join(l.Dir(), p))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the UFS file differs from what was written (%d bytes, want %d)", len(got), len(want))
			}
		})
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
