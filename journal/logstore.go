package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"go.etcd.io/bbolt"
)

// logStore is a data folder's raft log and stable store, and what closes
// them.
type logStore struct {
	log    raft.LogStore
	stable raft.StableStore
	close  func()
}

// openLogStore opens (or makes) the raft log of the raft folder dir in the
// store kind ("wal" or "bolt", as chooseLogStore resolved it).
func openLogStore(dir, kind string) (*logStore, error) {
	if kind == "wal" {
		if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o755); err != nil {
			return nil, fmt.Errorf("open raft log: %w", err)
		}
		// Our own meta store: WAL.Close leaves the one it makes open (and
		// its file locked), so a journal reopened in the same process
		// would wait for it forever.
		meta := &metadb.BoltMetaDB{}
		w, err := wal.Open(filepath.Join(dir, "wal"), wal.WithMetaStore(meta))
		if err != nil {
			meta.Close()
			return nil, fmt.Errorf("open raft log %s: %w", filepath.Join(dir, "wal"), err)
		}
		return &logStore{log: w, stable: w, close: func() { w.Close(); meta.Close() }}, nil
	}
	b, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: time.Second, NoFreelistSync: true},
	})
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w (is another master running on this folder?)", filepath.Join(dir, "raft.db"), err)
	}
	return &logStore{log: b, stable: b, close: func() { b.Close() }}, nil
}

// chooseLogStore resolves Config.LogStore for the raft folder dir: an
// explicit choice must match what the folder holds; "" keeps it, and
// makes a new folder bolt.
//
// Not the WAL by default: hashicorp/raft-wal v0.4.0 seals the tail segment
// without an index block when raft clears a log suffix (a follower whose
// uncommitted entries a new leader overwrites, routine after a leader
// fails), and the folder cannot be opened again ("sealed segment has no
// index block", hashicorp/raft-wal#31): the master panics at every start.
// TestLogStoreSurvivesSuffixTruncation holds both stores to it.
func chooseLogStore(dir, want string) (string, error) {
	_, boltErr := os.Stat(filepath.Join(dir, "raft.db"))
	_, walErr := os.Stat(filepath.Join(dir, "wal"))
	has := ""
	switch {
	case boltErr == nil && walErr == nil:
		return "", fmt.Errorf("raft folder %s holds both raft.db and wal/: remove the one that is not this master's log", dir)
	case boltErr == nil:
		has = "bolt"
	case walErr == nil:
		has = "wal"
	}
	switch {
	case want != "" && want != "bolt" && want != "wal":
		return "", fmt.Errorf("log store %q: want wal or bolt", want)
	case has != "" && want != "" && want != has:
		return "", fmt.Errorf("raft folder %s holds a %s log, not a %s one: a log store cannot be switched in place", dir, has, want)
	case has != "":
		return has, nil
	case want != "":
		return want, nil
	}
	return "bolt", nil
}
