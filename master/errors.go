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
	if r.Code == fsm.OK {
		return nil
	}
	return connect.NewError(connectCode(r.Code), errors.New(r.Message))
}

// connectCode is the Connect code of a rejection's code.
func connectCode(c fsm.Code) connect.Code {
	switch c {
	case fsm.InvalidArgument:
		return connect.CodeInvalidArgument
	case fsm.NotFound:
		return connect.CodeNotFound
	case fsm.FailedPrecondition:
		return connect.CodeFailedPrecondition
	}
	return connect.CodeInternal
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
