package blockstore

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// step is one thing done to the store in TestVersionSlots.
type step struct {
	version  uint64
	replaces uint64 // with client: NewVersion(replaces)
	client   bool   // a client's write of a new version
	delete   bool   // DeleteKeeping(keep) instead of a write
	keep     uint64
	publish  bool // Published instead of a write
	wantErr  error
}

// TestVersionSlots: a path keeps the version the namespace publishes
// beside a newer one that is not published yet, whatever happens to the
// newer one, and drops it once the newer one is published.
func TestVersionSlots(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		steps   []step
		held    []uint64 // readable versions at the end
		current uint64   // what Get returns
	}{
		{"a newer version keeps the current one", []step{{version: 1}, {version: 2}}, []uint64{1, 2}, 2},
		{"publishing the newer one drops the older", []step{{version: 1}, {version: 2}, {version: 2, publish: true}}, []uint64{2}, 2},
		{"naming the older one keeps both", []step{{version: 1}, {version: 2}, {version: 1, publish: true}}, []uint64{1, 2}, 2},
		{"two unfinished overwrites keep the published version", []step{
			{version: 1}, {version: 2, client: true, replaces: 1}, {version: 3, client: true, replaces: 1}}, []uint64{1, 3}, 3},
		{"an overwrite of a newer version drops the one it superseded", []step{
			{version: 1}, {version: 2, client: true, replaces: 1}, {version: 3, client: true, replaces: 2}}, []uint64{2, 3}, 3},
		{"a new file keeps nothing beside it", []step{
			{version: 1}, {version: 2, client: true}}, []uint64{2}, 2},
		{"an older write landing last is refused", []step{
			{version: 1}, {version: 3, client: true, replaces: 1}, {version: 2, client: true, replaces: 1, wantErr: ErrSuperseded}}, []uint64{1, 3}, 3},
		{"removing the unfinished version brings the published one back", []step{
			{version: 1}, {version: 2, client: true, replaces: 1}, {version: 2, delete: true, keep: 1}}, []uint64{1}, 1},
		{"removing the current version otherwise removes the older one too", []step{
			{version: 1}, {version: 2, client: true, replaces: 1}, {version: 3, publish: true}, {version: 2, delete: true, keep: 3},
			{version: 3}}, []uint64{3}, 3},
		{"an older version read back takes the previous slot", []step{
			{version: 1}, {version: 2, client: true, replaces: 1}, {version: 1, delete: true}, {version: 1}}, []uint64{1, 2}, 2},
		{"rewriting the kept version replaces it in place", []step{
			{version: 1}, {version: 2}, {version: 1}}, []uint64{1, 2}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := open(t, dir, 1<<20)
			for _, st := range tc.steps {
				var err error
				switch {
				case st.delete:
					_, err = s.DeleteKeeping("/f", st.version, st.keep)
				case st.publish:
					s.Published("/f", st.version)
				default:
					err = writeVersion(t, s, st)
				}
				if !errors.Is(err, st.wantErr) {
					t.Fatalf("step %+v: %v, want %v", st, err, st.wantErr)
				}
			}
			check := func(s *Store) {
				t.Helper()
				var used int64
				for v := uint64(1); v <= 3; v++ {
					got, err := readVersion(s, v)
					if slices.Contains(tc.held, v) {
						if err != nil || !bytes.Equal(got, versionData(v)) {
							t.Fatalf("version %d: %v (equal %v)", v, err, bytes.Equal(got, versionData(v)))
						}
						used += int64(len(got))
					} else if !errors.Is(err, ErrNotCached) {
						t.Fatalf("version %d is still readable (%v)", v, err)
					}
				}
				if e, ok := s.Get("/f"); !ok || e.Version != tc.current {
					t.Fatalf("Get: version %d (%v), want %d", e.Version, ok, tc.current)
				}
				if u, _ := s.Usage(); u != used {
					t.Fatalf("used %d, want %d", u, used)
				}
				if n := countFiles(t, filepath.Join(dir, "blocks")); n != len(tc.held) {
					t.Fatalf("%d block files, want %d", n, len(tc.held))
				}
			}
			check(s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open(t, dir, 1<<20)
			defer s.Close()
			check(s)
		})
	}
}

// versionData is version v's content: one block or less, so a version
// is one block file.
func versionData(v uint64) []byte { return content(100*int(v), v) }

func writeVersion(t *testing.T, s *Store, st step) error {
	t.Helper()
	data := versionData(st.version)
	w, err := s.Create(Identity{Path: "/f", Version: st.version, Size: int64(len(data)), Checksum: xxhash.Sum64(data)}, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.client {
		w.NewVersion(st.replaces)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	_, err = w.Commit()
	return err
}

func readVersion(s *Store, v uint64) ([]byte, error) {
	r, err := s.Open("/f", v)
	if err != nil {
		return nil, err
	}
	b := make([]byte, r.Entry().Size)
	if n, err := r.ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF) && n == len(b)) {
		return nil, err
	}
	return b, nil
}
