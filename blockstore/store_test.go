package blockstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/cairnhq/cairn/directio"
)

const bs = 1024 // small blocks keep the tests fast

func open(t testing.TB, dir string, capacity int64) *Store {
	t.Helper()
	s, err := Open(dir, Options{Capacity: capacity, BlockSize: bs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func content(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func write(t testing.TB, s *Store, path string, version uint64, data []byte, fo FileOptions) (Entry, error) {
	t.Helper()
	w, err := s.Create(Identity{Path: path, Version: version, Size: int64(len(data)), Checksum: xxhash.Sum64(data)}, fo)
	if err != nil {
		t.Fatal(err)
	}
	// Uneven chunks cross block boundaries in every way.
	for off := 0; off < len(data); {
		k := min(len(data)-off, 1+off%700)
		if _, err := w.Write(data[off : off+k]); err != nil {
			w.Abort()
			return Entry{}, err
		}
		off += k
	}
	return w.Commit()
}

func readAll(t testing.TB, s *Store, path string) []byte {
	t.Helper()
	r, err := s.Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, r.Entry().Size)
	if n, err := r.ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF) && n == len(b)) {
		t.Fatal(err)
	}
	return b
}

func TestRoundTripSizes(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), 1<<30)
	defer s.Close()
	for i, n := range []int{0, 1, bs - 1, bs, bs + 1, 10*bs + 17} {
		data := content(n, uint64(i))
		p := "/f" + string(rune('a'+i))
		e, err := write(t, s, p, 1, data, FileOptions{WriteType: "MUST_CACHE"})
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if e.Blocks() != int64((n+bs-1)/bs) {
			t.Errorf("size %d: %d blocks", n, e.Blocks())
		}
		if got := readAll(t, s, p); !bytes.Equal(got, data) {
			t.Fatalf("size %d: read back differs", n)
		}
		// A read in the middle, across a block edge.
		if n > bs+10 {
			r, _ := s.Open(p, 1)
			part := make([]byte, 20)
			if _, err := r.ReadAt(part, bs-10); err != nil || !bytes.Equal(part, data[bs-10:bs+10]) {
				t.Fatalf("size %d: ReadAt across blocks: %v", n, err)
			}
		}
	}
}

func TestMismatchCommitsNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	defer s.Close()
	data := content(3*bs, 7)
	w, _ := s.Create(Identity{Path: "/x", Version: 1, Size: int64(len(data)), Checksum: xxhash.Sum64(data) + 1}, FileOptions{})
	w.Write(data)
	if _, err := w.Commit(); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong checksum: %v", err)
	}
	w, _ = s.Create(Identity{Path: "/x", Version: 1, Size: 5, Checksum: 0}, FileOptions{})
	if _, err := w.Write(data); !errors.Is(err, ErrMismatch) {
		t.Fatalf("too many bytes: %v", err)
	}
	w.Abort()
	if _, ok := s.Get("/x"); ok {
		t.Fatal("a mismatched write is cached")
	}
	if used, _ := s.Usage(); used != 0 {
		t.Fatalf("%d bytes still used", used)
	}
	if n := countFiles(t, filepath.Join(dir, "blocks")); n != 0 {
		t.Fatalf("%d block files left behind", n)
	}
}

func countFiles(t testing.TB, dir string) int {
	n := 0
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestEvictionSparesPinnedAndUnpersisted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, 10*bs)
	defer s.Close()
	keep := map[string]FileOptions{"/pinned": {Pinned: true}, "/async": {Unpersisted: true, WriteType: "ASYNC_THROUGH"}}
	for p, fo := range keep {
		if _, err := write(t, s, p, 1, content(3*bs, 1), fo); err != nil {
			t.Fatal(err)
		}
	}
	// 4 KiB left: evictable files come and go, the oldest first.
	for i := range 6 {
		if _, err := write(t, s, "/cold"+string(rune('0'+i)), 1, content(2*bs, uint64(i)), FileOptions{}); err != nil {
			t.Fatalf("evictable write %d: %v", i, err)
		}
		readAll(t, s, "/cold0") // /cold0 stays the most recently used while it lives
	}
	if _, ok := s.Get("/cold0"); !ok {
		t.Error("the most recently used file was evicted")
	}
	if _, ok := s.Get("/cold1"); ok {
		t.Error("an old file survived while newer ones needed room")
	}
	for p := range keep {
		if _, ok := s.Get(p); !ok {
			t.Fatalf("%s was evicted", p)
		}
	}
	// Only pinned and unpersisted data can fill it: then writes fail and
	// leave nothing behind.
	for i := range 2 {
		if _, err := write(t, s, "/pin"+string(rune('0'+i)), 1, content(2*bs, 9), FileOptions{Pinned: true}); err != nil {
			t.Fatalf("pinned write %d: %v", i, err)
		}
	}
	before := countFiles(t, filepath.Join(dir, "blocks"))
	if _, err := write(t, s, "/big", 1, content(bs+1, 3), FileOptions{Pinned: true}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("a pinned write larger than the free space: %v", err)
	}
	if after := countFiles(t, filepath.Join(dir, "blocks")); after != before {
		t.Fatalf("the refused write left %d block files", after-before)
	}
	used, capacity := s.Usage()
	if used > capacity {
		t.Fatalf("used %d over capacity %d", used, capacity)
	}
	// Once persisted, the async file is evictable.
	if err := s.MarkPersisted("/async", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := write(t, s, "/after", 1, content(2*bs, 4), FileOptions{}); err != nil {
		t.Fatalf("write after the async file was persisted: %v", err)
	}
	if _, ok := s.Get("/async"); ok {
		t.Fatal("the persisted file should have made room")
	}
}

func TestNewVersionReplacesOldAndSurvivesReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	v1, v2 := content(2*bs, 1), content(bs/2, 2)
	write(t, s, "/f", 1, v1, FileOptions{})
	write(t, s, "/f", 2, v2, FileOptions{Pinned: true})
	// The older version stays beside the newer one until a reader names
	// the newer one (see slots.go).
	if _, err := s.Open("/f", 1); err != nil {
		t.Fatalf("old version gone before the new one was published: %v", err)
	}
	if n := s.Published("/f", 2); n != int64(len(v1)) {
		t.Fatalf("publishing version 2 freed %d bytes, want %d", n, len(v1))
	}
	if _, err := s.Open("/f", 1); !errors.Is(err, ErrNotCached) {
		t.Fatalf("old version still readable: %v", err)
	}
	// An aborted rewrite of the same version leaves the committed copy.
	w, _ := s.Create(Identity{Path: "/f", Version: 2, Size: 10}, FileOptions{})
	w.Write([]byte("abc"))
	w.Abort()
	if got := readAll(t, s, "/f"); !bytes.Equal(got, v2) {
		t.Fatal("an aborted rewrite damaged the cached copy")
	}
	// Debris of a crashed write is removed on open.
	os.MkdirAll(filepath.Join(dir, "blocks", "zz", "debris.tmp-1"), 0o755)
	os.WriteFile(filepath.Join(dir, "blocks", "zz", "debris.tmp-1", "0"), []byte("x"), 0o644)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, 1<<20)
	defer s.Close()
	e, ok := s.Get("/f")
	if !ok || e.Version != 2 || !e.Pinned {
		t.Fatalf("after reopen: %+v %v", e, ok)
	}
	if got := readAll(t, s, "/f"); !bytes.Equal(got, v2) {
		t.Fatal("after reopen the data differs")
	}
	if used, _ := s.Usage(); used != int64(len(v2)) {
		t.Fatalf("used %d after reopen, want %d", used, len(v2))
	}
	if n := countFiles(t, filepath.Join(dir, "blocks")); n != 1 {
		t.Fatalf("%d block files after reopen, want 1", n)
	}
	if err := s.Delete("/f"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("/f"); !errors.Is(err, ErrNotCached) {
		t.Fatalf("second delete: %v", err)
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add([]byte(`{"path":"/a","version":1,"size":3,"checksum":1,"block_size":1024,"last_access":5}`))
	f.Add([]byte(`{"path":"a","size":-1}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		if e.Path == "" || e.Path[0] != '/' || e.Size < 0 || e.BlockSize <= 0 || e.Blocks() < 0 {
			t.Fatalf("accepted an inconsistent entry %+v", e)
		}
	})
}

// TestEntryWithoutBlocksIsDropped: a removal whose unsynced index delete a
// crash undid (the folder is gone, the entry is back) is finished on open.
func TestEntryWithoutBlocksIsDropped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	write(t, s, "/gone", 1, content(100, 1), FileOptions{})
	write(t, s, "/kept", 1, content(200, 2), FileOptions{})
	blocks := s.Dir("/gone", 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(blocks); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, 1<<20)
	defer s.Close()
	if _, ok := s.Get("/gone"); ok {
		t.Fatal("an entry without its blocks survived the reopen")
	}
	if used, _ := s.Usage(); used != 200 {
		t.Fatalf("used %d, want 200", used)
	}
	if got := readAll(t, s, "/kept"); !bytes.Equal(got, content(200, 2)) {
		t.Fatal("the other file was damaged")
	}
}

// TestWriteByParts writes files as parts, in shuffled order from several
// goroutines, and checks what commits and what is refused.
func TestWriteByParts(t *testing.T) {
	t.Parallel()
	type part struct{ off, n int }
	split := func(size, partSize int) []part {
		var ps []part
		for off := 0; off < size; off += partSize {
			ps = append(ps, part{off, min(partSize, size-off)})
		}
		return ps
	}
	tests := []struct {
		name     string
		size     int
		parts    func(size int) []part
		checksum func(data []byte) uint64
		wantErr  string // "" commits
	}{
		{"block-aligned parts", 5 * bs, func(n int) []part { return split(n, 2*bs) }, nil, ""},
		{"unaligned parts", 5*bs + 17, func(n int) []part { return split(n, bs/3+1) }, nil, ""},
		{"one part", 3, func(n int) []part { return split(n, 100) }, nil, ""},
		{"a hole", 4 * bs, func(n int) []part { p := split(n, bs); return append(p[:1], p[2:]...) }, nil, "no part of"},
		{"wrong checksum", 2 * bs, func(n int) []part { return split(n, bs) }, func(d []byte) uint64 { return xxhash.Sum64(d) + 1 }, "promised"},
		{"overlap", 2 * bs, func(n int) []part { return append(split(n, bs), part{bs / 2, bs}) }, nil, "overlaps"},
		{"past the end", bs, func(n int) []part { return []part{{0, bs}, {bs, 1}} }, nil, "outside"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := open(t, dir, 100*bs)
			defer s.Close()
			data := content(tc.size, uint64(i))
			sum := xxhash.Sum64(data)
			if tc.checksum != nil {
				sum = tc.checksum(data)
			}
			w, err := s.CreateParts(Identity{Path: "/p", Version: 1, Size: int64(len(data)), Checksum: sum}, FileOptions{Pinned: true})
			if err != nil {
				t.Fatal(err)
			}
			if used, _ := s.Usage(); used != int64(len(data)) {
				t.Fatalf("usage while writing = %d, want the whole size %d reserved", used, len(data))
			}
			parts := tc.parts(len(data))
			rand.New(rand.NewPCG(uint64(i), 2)).Shuffle(len(parts), func(a, b int) { parts[a], parts[b] = parts[b], parts[a] })
			errs := make(chan error, len(parts))
			var wg sync.WaitGroup
			for _, p := range parts {
				wg.Go(func() {
					end := min(p.off+p.n, len(data))
					if _, err := w.WriteAt(data[p.off:end], int64(p.off)); err != nil {
						errs <- err
						return
					}
					errs <- w.AddPart(int64(p.off), int64(p.n))
				})
			}
			wg.Wait()
			close(errs)
			var werr error
			for err := range errs {
				werr = errors.Join(werr, err)
			}
			if werr == nil {
				_, werr = w.Sum(nil)
			}
			if werr == nil {
				_, werr = w.Commit()
			}
			if tc.wantErr == "" {
				if werr != nil {
					t.Fatal(werr)
				}
				if got := readAll(t, s, "/p"); !bytes.Equal(got, data) {
					t.Fatal("the committed file differs from the parts written")
				}
				return
			}
			if werr == nil || !strings.Contains(werr.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one saying %q", werr, tc.wantErr)
			}
			w.Abort()
			if _, ok := s.Get("/p"); ok {
				t.Fatal("a refused write is visible")
			}
			if used, _ := s.Usage(); used != 0 {
				t.Fatalf("usage after abort = %d, want 0", used)
			}
			if n := countFiles(t, filepath.Join(dir, "blocks")); n != 0 {
				t.Fatalf("%d block files left after abort", n)
			}
		})
	}
}

func TestWriteByPartsReservesUpFront(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), 4*bs)
	defer s.Close()
	if _, err := write(t, s, "/pinned", 1, content(3*bs, 1), FileOptions{Pinned: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateParts(Identity{Path: "/big", Version: 1, Size: 2 * bs}, FileOptions{Pinned: true}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("CreateParts beyond the free space: err = %v, want ErrNoSpace", err)
	}
	if used, _ := s.Usage(); used != 3*bs {
		t.Fatalf("usage = %d after a refused reservation, want %d", used, 3*bs)
	}
}

// TestDirectWrites writes around the page cache (Writer.Direct) with block
// sizes below, at and above the direct I/O chunk, and reads every size
// back byte-identical, before and after the store reopens.
func TestDirectWrites(t *testing.T) {
	t.Parallel()
	for _, bsz := range []int64{3*directio.Align + 100, directio.ChunkSize, directio.ChunkSize + directio.Align + 1} {
		t.Run(fmt.Sprint("block size ", bsz), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s, err := Open(dir, Options{Capacity: 1 << 30, BlockSize: bsz, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			sizes := []int{0, 1, int(bsz) - 1, int(bsz), int(bsz) + 1, 2*int(bsz) + directio.Align + 3}
			want := map[string][]byte{}
			for i, n := range sizes {
				data := content(n, uint64(i))
				p := fmt.Sprintf("/d/%d", n)
				w, err := s.Create(Identity{Path: p, Version: 1, Size: int64(n), Checksum: xxhash.Sum64(data)}, FileOptions{})
				if err != nil {
					t.Fatal(err)
				}
				w.Direct()
				for off := 0; off < n; {
					k := min(n-off, 1<<20+off%4099)
					if _, err := w.Write(data[off : off+k]); err != nil {
						t.Fatal(err)
					}
					off += k
				}
				if _, err := w.Commit(); err != nil {
					t.Fatalf("commit %d bytes: %v", n, err)
				}
				want[p] = data
			}
			check := func(s *Store) {
				for p, data := range want {
					if got := readAll(t, s, p); !bytes.Equal(got, data) {
						t.Fatalf("%s reads back %d bytes that differ (want %d)", p, len(got), len(data))
					}
				}
			}
			check(s)
			s.Close()
			s = open(t, dir, 1<<30)
			defer s.Close()
			check(s)
		})
	}
}

// TestEvictionWaitsForABusyPath: when the only evictable file is being
// committed (its path lock held), a write that needs its room waits for
// it instead of calling the cache full of what cannot be evicted.
func TestEvictionWaitsForABusyPath(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), 4*bs)
	defer s.Close()
	if _, err := write(t, s, "/pinned", 1, content(2*bs, 1), FileOptions{Pinned: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := write(t, s, "/a", 1, content(2*bs, 2), FileOptions{}); err != nil {
		t.Fatal(err)
	}
	pl := s.pathLock("/a")
	pl.Lock()
	done := make(chan error, 1)
	go func() {
		_, err := write(t, s, "/b", 1, content(2*bs, 3), FileOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		pl.Unlock()
		t.Fatalf("the write returned (%v) while the only evictable file was busy; it should wait", err)
	case <-time.After(100 * time.Millisecond):
	}
	pl.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("write after the busy file was released: %v", err)
	}
	if _, ok := s.Get("/a"); ok {
		t.Fatal("/a was not evicted to make room")
	}
}

// truncated yields its bytes, then io.ErrUnexpectedEOF, as a cut HTTP
// body does.
type truncated struct{ b []byte }

func (r *truncated) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func TestReadFromReportsACutSource(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), 100*bs)
	defer s.Close()
	data := content(3*bs, 4)
	w, err := s.Create(Identity{Path: "/cut", Version: 1, Size: int64(len(data)), Checksum: xxhash.Sum64(data)}, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if n, err := w.ReadFrom(&truncated{data[:bs+7]}); !errors.Is(err, io.ErrUnexpectedEOF) || n != bs+7 {
		t.Fatalf("ReadFrom a cut source: %d, %v; want %d bytes and io.ErrUnexpectedEOF", n, err, bs+7)
	}
	w2, err := s.Create(Identity{Path: "/long", Version: 1, Size: 10, Checksum: 0}, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Abort()
	if _, err := w2.ReadFrom(bytes.NewReader(data[:11])); !errors.Is(err, ErrMismatch) {
		t.Fatalf("ReadFrom a source longer than promised: %v, want ErrMismatch", err)
	}
}
