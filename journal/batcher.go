package journal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairnhq/cairn/fsm"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// maxEntryBytes bounds one raft entry; the batcher closes a batch before it.
const maxEntryBytes = 1 << 20

type proposal struct {
	events []*cairnv1.Event
	start  time.Time
	done   chan proposalResult
}

type proposalResult struct {
	results []fsm.Result
	index   uint64
	err     error
}

type pendingEntry struct {
	future raft.ApplyFuture
	batch  []*proposal
	err    error
	slot   bool // holds an in-flight slot to give back when committed
}

// Propose journals events as one unit and waits until they are committed
// and applied on this node. It returns each event's result and the index of
// the entry that holds them. Only the leader accepts proposals: elsewhere,
// or when raft turns the entry away before appending it, it returns an
// error for which Refused is true, and nothing was written. An error that
// wraps raft.ErrLeadershipLost means leadership moved after the entry was
// appended: it may yet be committed. If ctx ends after the events were
// handed to raft, they may still be committed.
func (j *Journal) Propose(ctx context.Context, events ...*cairnv1.Event) ([]fsm.Result, uint64, error) {
	if len(events) == 0 {
		return nil, 0, errors.New("propose: no events")
	}
	if !j.IsLeader() {
		return nil, 0, ErrNotLeader
	}
	p := &proposal{events: events, start: time.Now(), done: make(chan proposalResult, 1)}
	select {
	case j.proposals <- p:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case <-j.stop:
		return nil, 0, raft.ErrRaftShutdown
	}
	select {
	case r := <-p.done:
		return r.results, r.index, r.err
	case <-ctx.Done():
		return nil, 0, fmt.Errorf("waiting for commit: %w", ctx.Err())
	}
}

// runBatcher gathers the proposals that are already waiting into one raft
// entry, stamps their events with leader time and hands the entry to raft.
// It keeps at most MaxInflightEntries entries uncommitted, so under load
// proposals gather while earlier entries commit (group commit without a
// timer: an idle journal adds no delay).
func (j *Journal) runBatcher() {
	defer j.wg.Done()
	defer close(j.pending)
	for {
		var first *proposal
		select {
		case first = <-j.proposals:
		case <-j.stop:
			return
		}
		batching := j.cfg.MaxBatchEvents > 1
		if batching {
			// Wait for room in the pipeline; what arrives meanwhile joins
			// this entry.
			select {
			case j.inflight <- struct{}{}:
			case <-j.stop:
				return
			}
		}
		batch := []*proposal{first}
		n := len(first.events)
		size := 0
		for _, ev := range first.events {
			size += proto.Size(ev)
		}
	gather:
		for n < j.cfg.MaxBatchEvents && size < maxEntryBytes {
			select {
			case p := <-j.proposals:
				batch = append(batch, p)
				n += len(p.events)
				for _, ev := range p.events {
					size += proto.Size(ev)
				}
			default:
				break gather
			}
		}
		entry := &cairnv1.EventBatch{Events: make([]*cairnv1.Event, 0, n)}
		for _, p := range batch {
			for _, ev := range p.events {
				ev.Time = j.stamp()
				entry.Events = append(entry.Events, ev)
			}
		}
		data, err := proto.Marshal(entry)
		pe := pendingEntry{batch: batch, err: err, slot: batching}
		if err == nil {
			pe.future = j.raft.Apply(data, 0)
		}
		j.metrics.entryEvents.Observe(float64(n))
		select {
		case j.pending <- pe:
		case <-j.stop:
			return
		}
	}
}

// stamp returns the leader's current time, never at or before the last
// stamp nor before what the state machine has seen.
func (j *Journal) stamp() *timestamppb.Timestamp {
	now := time.Now().UnixNano()
	if floor := j.machine.LastTime().UnixNano(); now <= floor {
		now = floor + 1
	}
	for {
		last := j.lastStamp.Load()
		if now <= last {
			now = last + 1
		}
		if j.lastStamp.CompareAndSwap(last, now) {
			return timestamppb.New(time.Unix(0, now))
		}
	}
}

// runCompleter waits for each entry's commit in order and answers its
// proposals with their share of the results.
func (j *Journal) runCompleter() {
	defer j.wg.Done()
	for pe := range j.pending {
		err := pe.err
		var results []fsm.Result
		var index uint64
		if err == nil {
			if err = j.await(context.Background(), pe.future); err == nil {
				index = pe.future.Index()
				results, _ = pe.future.Response().([]fsm.Result)
			}
		}
		if pe.slot {
			<-j.inflight
		}
		if errors.Is(err, raft.ErrNotLeader) {
			err = fmt.Errorf("%w (%w)", ErrNotLeader, err) // refused: nothing was appended
		}
		off := 0
		for _, p := range pe.batch {
			r := proposalResult{index: index, err: err}
			if err == nil {
				if off+len(p.events) > len(results) {
					r.err = fmt.Errorf("entry %d: state machine returned %d results for %d events", index, len(results), off+len(p.events))
				} else {
					r.results = results[off : off+len(p.events)]
				}
			}
			off += len(p.events)
			if r.err == nil {
				j.metrics.commitSeconds.Observe(time.Since(p.start).Seconds())
				j.metrics.events.Add(float64(len(p.events)))
			}
			p.done <- r
		}
	}
}

// Refused reports whether err from Propose (or ReadIndex's leader side)
// says this node turned the request away before anything reached the log
// — it was not the leader, or raft refused the entry (not leader,
// leadership transfer) — so sending it again cannot write it twice.
func Refused(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress)
}
