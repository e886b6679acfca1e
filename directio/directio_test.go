package directio

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriter writes files whose sizes straddle the alignment and the
// chunk, in pieces of every shape (Write and ReadFrom mixed), with direct
// I/O and without, and checks the bytes in the file.
func TestWriter(t *testing.T) {
	t.Parallel()
	data := make([]byte, 2*ChunkSize+3*Align+17)
	for i := range data {
		data[i] = byte(i*7 + i/4099)
	}
	tests := []struct {
		name  string
		size  int
		piece []int // sizes of successive pieces, cycled; negative: ReadFrom
	}{
		{"empty", 0, []int{1}},
		{"one byte", 1, []int{1}},
		{"align-1", Align - 1, []int{1000}},
		{"align", Align, []int{Align}},
		{"align+1", Align + 1, []int{-Align, 1}},
		{"chunk", ChunkSize, []int{-ChunkSize}},
		{"chunk+1 in odd pieces", ChunkSize + 1, []int{777, -100_003, 1 << 20}},
		{"two chunks and a tail", len(data), []int{-ChunkSize, -(3*Align + 17), ChunkSize}},
		{"small writes", 3*Align + 5, []int{13}},
	}
	for _, direct := range []bool{true, false} {
		for _, tc := range tests {
			t.Run(tc.name+map[bool]string{true: " direct", false: " buffered"}[direct], func(t *testing.T) {
				t.Parallel()
				want := data[:tc.size]
				name := filepath.Join(t.TempDir(), "f")
				f, err := os.Create(name)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				var reopen func(int) (*os.File, error)
				if direct {
					reopen = func(flag int) (*os.File, error) { return os.OpenFile(name, flag, 0) }
				}
				w := New(f, reopen)
				if direct && !w.Direct() {
					t.Logf("%s refuses direct I/O: the writer falls back to ordinary writes", name)
				}
				for off, i := 0, 0; off < len(want); i++ {
					k := tc.piece[i%len(tc.piece)]
					readFrom := k < 0
					k = min(max(k, -k), len(want)-off)
					if readFrom {
						n, err := w.ReadFrom(bytes.NewReader(want[off : off+k]))
						if err != nil || n != int64(k) {
							t.Fatalf("ReadFrom at %d: %d, %v", off, n, err)
						}
					} else if n, err := w.Write(want[off : off+k]); err != nil || n != k {
						t.Fatalf("Write at %d: %d, %v", off, n, err)
					}
					off += k
				}
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if _, err := w.Write([]byte{1}); err == nil {
					t.Fatal("a write after Close succeeded")
				}
				got, err := os.ReadFile(name)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("the file differs from what was written (%d bytes, want %d)", len(got), len(want))
				}
			})
		}
	}
}
