package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// diskUse is what one master keeps on disk.
type diskUse struct {
	raftDB    int64  // DATA/raft/raft.db or DATA/raft/wal/: the raft log
	snap      int64  // the newest snapshot's folder
	snapIndex uint64 // its index
	snaps     int    // complete snapshots kept
	state     int64  // DATA/state
	applied   uint64 // the master's applied index when measured
}

// diskUseOf reads the sizes of m's journal, snapshots and state store from
// its data folder.
func diskUseOf(m *master) (diskUse, error) {
	var u diskUse
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	st, err := m.status(ctx)
	cancel()
	if err != nil {
		return u, err
	}
	u.applied = st.GetAppliedIndex()
	// The raft log: raft.db (bolt) or the wal/ folder's segments.
	if fi, err := os.Stat(filepath.Join(m.dir, "raft", "raft.db")); err == nil {
		u.raftDB = fi.Size()
	} else if u.raftDB, err = treeSize(filepath.Join(m.dir, "raft", "wal")); err != nil {
		return u, err
	}
	if u.state, err = treeSize(filepath.Join(m.dir, "state")); err != nil {
		return u, err
	}
	snapDir := filepath.Join(m.dir, "raft", "snapshots")
	entries, err := os.ReadDir(snapDir)
	if err != nil {
		return u, err
	}
	var newest struct{ Term, Index uint64 }
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue // a snapshot being written
		}
		b, err := os.ReadFile(filepath.Join(snapDir, e.Name(), "meta.json"))
		if err != nil {
			return u, err
		}
		var meta struct{ Term, Index uint64 }
		if err := json.Unmarshal(b, &meta); err != nil {
			return u, fmt.Errorf("%s: %w", filepath.Join(snapDir, e.Name(), "meta.json"), err)
		}
		u.snaps++
		if meta.Term > newest.Term || meta.Term == newest.Term && meta.Index > newest.Index {
			newest = meta
			if u.snap, err = treeSize(filepath.Join(snapDir, e.Name())); err != nil {
				return u, err
			}
		}
	}
	u.snapIndex = newest.Index
	return u, nil
}

// treeSize is the total size of the regular files under dir.
func treeSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	return total, err
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
