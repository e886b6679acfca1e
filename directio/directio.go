package directio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// ChunkSize is how many bytes a Writer gathers before it writes them with
// direct I/O; Align is the alignment direct I/O needs (file offset,
// length and memory): the largest logical block size in common use.
const (
	ChunkSize = 4 << 20
	Align     = 4096
)

// alignedBuf is a ChunkSize buffer whose memory starts on an Align
// boundary.
type alignedBuf struct{ b []byte }

var bufs = sync.Pool{New: func() any { return &alignedBuf{b: Aligned(ChunkSize)} }}

// Aligned returns n bytes of memory that start on an Align boundary, as
// direct I/O needs.
func Aligned(n int) []byte {
	raw := make([]byte, n+Align)
	skip := (Align - int(uintptr(unsafe.Pointer(&raw[0]))%Align)) % Align
	return raw[skip : skip+n]
}

// putBuf returns a buffer to the pool, if it is one the pool could have
// handed out (whole and aligned).
func putBuf(b *alignedBuf) {
	if len(b.b) == ChunkSize && uintptr(unsafe.Pointer(&b.b[0]))%Align == 0 {
		bufs.Put(b)
	}
}

// Writer appends to a file, with direct I/O where it can (see the package
// documentation). It is not safe for concurrent use.
type Writer struct {
	f    *os.File // ordinary writes
	df   *os.File // O_DIRECT on the same file, or nil
	buf  *alignedBuf
	pend int   // bytes gathered in buf
	off  int64 // bytes written to the file
	err  error
}

// New returns a Writer appending to f, which must be empty and open for
// writing; name opens the same file again for direct I/O (nil: ordinary
// writes only). The Writer never closes f.
func New(f *os.File, name func(flag int) (*os.File, error)) *Writer {
	w := &Writer{f: f}
	if name != nil && Flag != 0 {
		if df, err := name(os.O_WRONLY | Flag); err == nil {
			w.df, w.buf = df, bufs.Get().(*alignedBuf)
		}
	}
	return w
}

// Direct reports whether the Writer writes with direct I/O.
func (w *Writer) Direct() bool { return w.df != nil }

// Write appends p.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.df == nil {
		n, err := w.f.WriteAt(p, w.off)
		w.off += int64(n)
		if err != nil {
			w.err = err
		}
		return n, err
	}
	total := len(p)
	for len(p) > 0 {
		if w.df == nil {
			// Fell back to ordinary writes on the way.
			n, err := w.Write(p)
			return total - len(p) + n, err
		}
		k := copy(w.buf.b[w.pend:], p)
		w.pend += k
		p = p[k:]
		if err := w.flushFull(); err != nil {
			return total - len(p), err
		}
	}
	return total, nil
}

// ReadFrom appends what r holds until it ends, reading straight into the
// aligned buffer.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.df == nil {
		return io.Copy(struct{ io.Writer }{w}, r)
	}
	var total int64
	for {
		if w.df == nil {
			// Fell back to ordinary writes on the way.
			n, err := io.Copy(struct{ io.Writer }{w}, r)
			return total + n, err
		}
		m, err := r.Read(w.buf.b[w.pend:])
		w.pend += m
		total += int64(m)
		if ferr := w.flushFull(); ferr != nil {
			return total, ferr
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// flushFull writes the buffer with direct I/O once it is full. A file
// system that took the O_DIRECT open but refuses the first direct write
// (EINVAL) gets ordinary writes from then on.
func (w *Writer) flushFull() error {
	if w.pend < len(w.buf.b) {
		return nil
	}
	if _, err := w.df.WriteAt(w.buf.b, w.off); err != nil {
		if w.off == 0 && errors.Is(err, syscall.EINVAL) {
			return w.fallBack()
		}
		w.err = fmt.Errorf("direct write at %d: %w", w.off, err)
		return w.err
	}
	w.off += int64(w.pend)
	w.pend = 0
	return nil
}

// fallBack writes what the buffer holds with an ordinary write and drops
// direct I/O for the rest of the file.
func (w *Writer) fallBack() error {
	n, err := w.f.WriteAt(w.buf.b[:w.pend], w.off)
	w.off += int64(n)
	w.df.Close()
	putBuf(w.buf)
	w.df, w.buf, w.pend = nil, nil, 0
	if err != nil {
		w.err = fmt.Errorf("write at %d: %w", w.off, err)
	}
	return w.err
}

// Flush writes what the buffer holds: its aligned part with direct I/O,
// the rest with an ordinary write. Call it once, at the end, before
// syncing the file: writes after it are refused (the file may end off
// the alignment direct I/O needs).
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	defer func() {
		if w.err == nil {
			w.err = errors.New("write after Flush")
		}
	}()
	if w.df == nil || w.pend == 0 {
		return nil
	}
	if k := w.pend &^ (Align - 1); k > 0 {
		if _, err := w.df.WriteAt(w.buf.b[:k], w.off); err != nil {
			if w.off == 0 && errors.Is(err, syscall.EINVAL) {
				return w.fallBack() // writes all that is held
			}
			w.err = fmt.Errorf("direct write at %d: %w", w.off, err)
			return w.err
		}
		w.off += int64(k)
		copy(w.buf.b, w.buf.b[k:w.pend])
		w.pend -= k
	}
	if _, err := w.f.WriteAt(w.buf.b[:w.pend], w.off); err != nil {
		w.err = fmt.Errorf("write at %d: %w", w.off, err)
		return w.err
	}
	w.off += int64(w.pend)
	w.pend = 0
	return nil
}

// Close closes the direct descriptor and releases the buffer, dropping
// anything not flushed; the file given to New stays open.
func (w *Writer) Close() error {
	if w.err == nil {
		w.err = errors.New("write after Close")
	}
	if w.df == nil {
		return nil
	}
	err := w.df.Close()
	putBuf(w.buf)
	w.df, w.buf = nil, nil
	return err
}
