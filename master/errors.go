package master

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"

	"github.com/cairnhq/cairn/fsm"
	"github.com/cairnhq/cairn/journal"
)

// resultErr turns a state machine rejection into a Connect error.
func resultErr(r fsm.Result) error {
	var code connect.Code
	switch r.Code {
	case fsm.OK:
		return nil
	case fsm.InvalidArgument:
		code = connect.CodeInvalidArgument
	case fsm.NotFound:
		code = connect.CodeNotFound
	case fsm.FailedPrecondition:
		code = connect.CodeFailedPrecondition
	default:
		code = connect.CodeInternal
	}
	return connect.NewError(code, errors.New(r.Message))
}

// journalErr turns an error from proposing into a Connect error a client
// can act on: leadership moves are Unavailable (retry), deadlines are
// DeadlineExceeded.
func journalErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, journal.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s: leadership moved while the write was in flight; retry (%v)", what, err))
	case errors.Is(err, journal.ErrNoLeader):
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s: %w; a majority of the masters must be up to elect one", what, err))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("%s: %w", what, err))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, fmt.Errorf("%s: %w", what, err))
	}
	return connect.NewError(connect.CodeInternal, fmt.Errorf("%s: %w", what, err))
}
