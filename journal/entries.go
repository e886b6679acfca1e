package journal

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// LoggedEvent is one event read back from the raft log.
type LoggedEvent struct {
	Index    uint64
	Position int
	Event    *cairnv1.Event
}

// ErrCompacted is wrapped by ReadEvents when the start index was folded
// into a snapshot and is no longer in the log.
var ErrCompacted = errors.New("entries compacted into a snapshot")

// ReadEvents returns the events of the applied entries in [from, to], at
// most limit entries' worth, and the next index to read. Entries without
// events (configuration changes) are passed over.
func (j *Journal) ReadEvents(from, to uint64, limit int) ([]LoggedEvent, uint64, error) {
	first, err := j.logs.FirstIndex()
	if err != nil {
		return nil, from, fmt.Errorf("read raft log: %w", err)
	}
	if from < first {
		return nil, from, fmt.Errorf("%w: the log starts at index %d", ErrCompacted, first)
	}
	if applied := j.machine.AppliedIndex(); to > applied {
		to = applied
	}
	var out []LoggedEvent
	idx := from
	for n := 0; idx <= to && n < limit; idx, n = idx+1, n+1 {
		var l raft.Log
		if err := j.logs.GetLog(idx, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				return out, idx, fmt.Errorf("%w: index %d", ErrCompacted, idx)
			}
			return out, idx, fmt.Errorf("read raft log at %d: %w", idx, err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		var b cairnv1.EventBatch
		if err := proto.Unmarshal(l.Data, &b); err != nil {
			return out, idx, fmt.Errorf("decode entry %d: %w", idx, err)
		}
		for p, ev := range b.Events {
			out = append(out, LoggedEvent{Index: idx, Position: p, Event: ev})
		}
	}
	return out, idx, nil
}

// FirstLogIndex is the oldest index still in the raft log (older entries
// were folded into a snapshot); 1 on a fresh log.
func (j *Journal) FirstLogIndex() uint64 {
	first, err := j.logs.FirstIndex()
	if err != nil || first == 0 {
		return 1
	}
	return first
}
