package journal

import (
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/fsm"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// raftFSM adapts fsm.Machine to raft.BatchingFSM.
type raftFSM struct{ j *Journal }

var _ raft.BatchingFSM = (*raftFSM)(nil)

// ApplyBatch decodes the committed entries and applies them in one call.
// Each command entry's response is its []fsm.Result; other entry types
// (configuration changes) only advance the applied index.
func (f *raftFSM) ApplyBatch(logs []*raft.Log) []any {
	entries := make([]fsm.Entry, len(logs))
	undecodable := make(map[int]string)
	before := f.j.machine.AppliedIndex()
	for i, l := range logs {
		entries[i].Index = l.Index
		if l.Type != raft.LogCommand || l.Index <= before {
			continue // the state machine skips what it applied before a restart: no need to decode it
		}
		var b cairnv1.EventBatch
		if err := proto.Unmarshal(l.Data, &b); err != nil {
			undecodable[i] = err.Error()
			continue
		}
		entries[i].Events = b.Events
	}
	results := f.j.machine.Apply(entries)
	out := make([]any, len(logs))
	for i := range logs {
		if msg, bad := undecodable[i]; bad {
			f.j.log.Error("journal entry cannot be decoded; skipped", "index", logs[i].Index, "err", msg)
			out[i] = []fsm.Result{{Code: fsm.InvalidArgument, Message: "undecodable entry: " + msg}}
			continue
		}
		out[i] = results[i]
		if logs[i].Index <= before {
			f.j.metrics.skipped.Inc()
		}
	}
	return out
}

// Apply applies a single entry (raft calls ApplyBatch; this satisfies the
// raft.FSM interface).
func (f *raftFSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// Snapshot captures the state machine; Persist streams it on raft's
// snapshot goroutine.
func (f *raftFSM) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.j.machine.Snapshot()
	if err != nil {
		return nil, err
	}
	return &raftSnapshot{s: s, m: f.j.machine}, nil
}

// Restore replaces the state with a snapshot (from the leader, or a user
// restore).
func (f *raftFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.j.machine.Restore(rc)
}

type raftSnapshot struct {
	s *fsm.Snapshot
	m *fsm.Machine
}

// Persist writes the snapshot and, before reporting it complete, syncs the
// state store: raft will take this snapshot's index as applied on restart
// without restoring it, so the store must be durable at least that far.
func (r *raftSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := r.s.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot at index %d: %w", r.s.Index(), err)
	}
	if err := r.m.Sync(); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (r *raftSnapshot) Release() { r.s.Close() }
