package master

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/journal"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// eventService streams the journal and appends operator notes.
type eventService struct{ m *Master }

var _ cairnv1connect.EventServiceHandler = (*eventService)(nil)

// tailPage is how many raft entries TailEvents reads at a time.
const tailPage = 256

func (s *eventService) TailEvents(ctx context.Context, req *connect.Request[cairnv1.TailEventsRequest], stream *connect.ServerStream[cairnv1.TailEventsResponse]) error {
	j, st := s.m.j, s.m.j.State()
	from := req.Msg.GetFromIndex()
	if first := j.FirstLogIndex(); from < first {
		if from != 0 {
			return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf(
				"index %d was folded into a snapshot; this master's log starts at %d: tail from there (--from %d)", from, first, first))
		}
		from = first
	}
	for {
		changed := st.Changed()
		applied := st.AppliedIndex()
		for from <= applied {
			evs, next, err := j.ReadEvents(from, applied, tailPage)
			if errors.Is(err, journal.ErrCompacted) {
				return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("%w: the log moved past index %d while reading; tail again from a newer index", err, from))
			}
			if err != nil {
				return connect.NewError(connect.CodeInternal, err)
			}
			for _, e := range evs {
				if err := stream.Send(&cairnv1.TailEventsResponse{Index: e.Index, Position: uint32(e.Position), Event: e.Event}); err != nil {
					return err
				}
			}
			from = next
		}
		if req.Msg.GetNoFollow() {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		case <-s.m.stop:
			return s.m.errShuttingDown(fmt.Sprintf("tail from index %d", from))
		}
	}
}

func (s *eventService) AppendNote(ctx context.Context, req *connect.Request[cairnv1.AppendNoteRequest]) (*connect.Response[cairnv1.AppendNoteResponse], error) {
	return onLeader(ctx, s.m, req, s.appendNote)
}

func (s *eventService) appendNote(ctx context.Context, msg *cairnv1.AppendNoteRequest) (*cairnv1.AppendNoteResponse, error) {
	idx, _, err := s.m.propose(ctx, "append note", fromCaller(ctx, &cairnv1.Event{
		Kind: &cairnv1.Event_NoteAppended{NoteAppended: &cairnv1.NoteAppended{Text: msg.GetText()}}}))
	if err != nil {
		return nil, err
	}
	return &cairnv1.AppendNoteResponse{Index: idx}, nil
}
