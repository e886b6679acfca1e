package journal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		{name: "new folder defaults to wal", got: "wal"},
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
