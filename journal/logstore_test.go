package journal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

func TestChooseLogStore(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		holds   []string // "raft.db" (a file) and/or "wal" (a folder)
		want    string
		got     string
		wantErr string
	}{
		{name: "new folder defaults to bolt", got: "bolt"},
		{name: "new folder, bolt asked", want: "bolt", got: "bolt"},
		{name: "new folder, wal asked", want: "wal", got: "wal"},
		{name: "bolt folder kept", holds: []string{"raft.db"}, got: "bolt"},
		{name: "wal folder kept", holds: []string{"wal"}, got: "wal"},
		{name: "bolt folder, bolt asked", holds: []string{"raft.db"}, want: "bolt", got: "bolt"},
		{name: "bolt folder, wal asked", holds: []string{"raft.db"}, want: "wal", wantErr: "cannot be switched in place"},
		{name: "wal folder, bolt asked", holds: []string{"wal"}, want: "bolt", wantErr: "cannot be switched in place"},
		{name: "both held", holds: []string{"raft.db", "wal"}, wantErr: "holds both"},
		{name: "unknown store", want: "rocks", wantErr: "want wal or bolt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for _, h := range tc.holds {
				var err error
				if h == "wal" {
					err = os.Mkdir(filepath.Join(dir, h), 0o755)
				} else {
					err = os.WriteFile(filepath.Join(dir, h), nil, 0o644)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			got, err := chooseLogStore(dir, tc.want)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("chooseLogStore = %q, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.got {
				t.Fatalf("chooseLogStore = %q, %v; want %q", got, err, tc.got)
			}
		})
	}
}

// TestLogStoreSurvivesSuffixTruncation: a follower whose last entries a new
// leader overwrites has raft clear that suffix (DeleteRange up to the last
// index), and must then be able to restart on its folder. In a failover
// drill a master killed after that panicked at every start on the WAL
// ("sealed segment has no index block", hashicorp/raft-wal#31), which is
// why a new folder is bolt. The WAL case records that raft-wal still has
// the bug: when it stops failing, the WAL may become the default again.
func TestLogStoreSurvivesSuffixTruncation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		store    string // Config.LogStore for the new folder
		kind     string // what chooseLogStore makes of it
		reopened bool   // the entries read back after the restart
	}{
		{store: "", kind: "bolt", reopened: true},
		{store: "bolt", kind: "bolt", reopened: true},
		{store: "wal", kind: "wal", reopened: false},
	}
	for _, tc := range cases {
		t.Run(tc.kind+"/"+tc.store, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			kind, err := chooseLogStore(dir, tc.store)
			if err != nil || kind != tc.kind {
				t.Fatalf("chooseLogStore(new, %q) = %q, %v; want %q", tc.store, kind, err, tc.kind)
			}
			ls, err := openLogStore(dir, kind)
			if err != nil {
				t.Fatal(err)
			}
			entry := func(i, term uint64) *raft.Log {
				return &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("entry %d of term %d", i, term))}
			}
			var logs []*raft.Log
			for i := uint64(1); i <= 10; i++ {
				logs = append(logs, entry(i, 1))
			}
			if err := ls.log.StoreLogs(logs); err != nil {
				t.Fatal(err)
			}
			// What raft does with a conflicting suffix: clear it, then
			// append the leader's entries in its place.
			if err := ls.log.DeleteRange(10, 10); err != nil {
				t.Fatal(err)
			}
			if err := ls.log.StoreLogs([]*raft.Log{entry(10, 2), entry(11, 2)}); err != nil {
				t.Fatal(err)
			}
			ls.close()

			// The restart: the folder keeps its store.
			if kind, err = chooseLogStore(dir, ""); err != nil || kind != tc.kind {
				t.Fatalf("chooseLogStore(reopen) = %q, %v; want %q", kind, err, tc.kind)
			}
			ls, err = openLogStore(dir, kind)
			if err == nil {
				defer ls.close()
				err = readBack(ls.log, map[uint64]*raft.Log{1: entry(1, 1), 9: entry(9, 1), 10: entry(10, 2), 11: entry(11, 2)})
			}
			switch {
			case tc.reopened && err != nil:
				t.Fatalf("after a suffix was cleared, the %s log does not reopen: %v", kind, err)
			case !tc.reopened && err == nil:
				t.Fatalf("the %s log reopens after a suffix was cleared: hashicorp/raft-wal#31 is fixed, reconsider the default in chooseLogStore", kind)
			case err != nil:
				t.Logf("%s, as expected: %v", kind, err)
			}
		})
	}
}

// readBack checks that store holds want (index to entry).
func readBack(store raft.LogStore, want map[uint64]*raft.Log) error {
	for i, w := range want {
		var got raft.Log
		if err := store.GetLog(i, &got); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if got.Term != w.Term || !bytes.Equal(got.Data, w.Data) {
			return fmt.Errorf("entry %d is term %d %q, want term %d %q", i, got.Term, got.Data, w.Term, w.Data)
		}
	}
	if last, err := store.LastIndex(); err != nil || last != 11 {
		return fmt.Errorf("last index %d, %v; want 11", last, err)
	}
	return nil
}
