package directio

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unsafe"
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

// TestFallBackWhenDirectWritesAreRefused: a file system that accepts the
// O_DIRECT open but refuses the first direct write (EINVAL) gets ordinary
// writes, and every byte still lands, whether the refusal comes with a
// full chunk or at Flush. A misaligned buffer makes ext4 refuse the write
// the same way.
func TestFallBackWhenDirectWritesAreRefused(t *testing.T) {
	t.Parallel()
	for _, size := range []int{2*ChunkSize + 5, 3*Align + 5} {
		t.Run(fmt.Sprint(size, " bytes"), func(t *testing.T) {
			t.Parallel()
			name := filepath.Join(t.TempDir(), "f")
			f, err := os.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w := New(f, func(flag int) (*os.File, error) { return os.OpenFile(name, flag, 0) })
			if !w.Direct() {
				t.Skipf("%s refuses O_DIRECT at open: nothing to fall back from", name)
			}
			raw := make([]byte, ChunkSize+Align+2)
			w.buf = &alignedBuf{b: raw[1 : 1+ChunkSize]}
			if uintptr(unsafe.Pointer(&w.buf.b[0]))%Align == 0 {
				w.buf.b = raw[2 : 2+ChunkSize]
			}
			want := make([]byte, size)
			for i := range want {
				want[i] = byte(i * 13)
			}
			if n, err := w.Write(want); err != nil || n != len(want) {
				t.Fatalf("Write: %d, %v", n, err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if w.Direct() {
				t.Fatal("still writing with direct I/O after the refused write")
			}
			w.Close()
			got, err := os.ReadFile(name)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("the file holds %d bytes (%v), want the %d written", len(got), err, len(want))
			}
		})
	}
}
