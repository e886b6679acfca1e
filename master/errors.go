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

// Errors reach a caller as Connect errors. Each source maps to codes in
// one place: a state machine rejection in resultErr (through connectCode),
// a journal failure in journalErr, and a call the leader ran for a
// follower in leadErr, which gives back the leader's own code and message.

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

// journalErr turns an error from proposing (or from reaching the leader)
// into a Connect error a client can act on: leadership moves are
// Unavailable (retry), deadlines are DeadlineExceeded.
func journalErr(what string, err error) error {
	var ce *connect.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return err // already a Connect error (from the function that ran)
	case journal.Refused(err), errors.Is(err, raft.ErrRaftShutdown):
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s: this master stopped leading before the write was made; retry (%v)", what, err))
	case errors.Is(err, raft.ErrLeadershipLost):
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s: leadership moved while the write was in flight, so it may or may not have been made; retry (%v)", what, err))
	case errors.Is(err, journal.ErrNoLeader):
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s: %w; a majority of the masters must be up to elect one", what, err))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("%s: %w", what, err))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, fmt.Errorf("%s: %w", what, err))
	}
	return connect.NewError(connect.CodeInternal, fmt.Errorf("%s: %w", what, err))
}

// leadErr turns what journal.Lead returned into a Connect error: the
// leader's answer keeps its code and message; the rest is journalErr's.
func leadErr(procedure string, err error) error {
	var ce *journal.CallError
	if errors.As(err, &ce) {
		return connect.NewError(connect.Code(ce.Code), errors.New(ce.Message))
	}
	return journalErr(procedure, err)
}

// internal wraps an unexpected failure (a state store read) for the API.
func internal(err error) error { return connect.NewError(connect.CodeInternal, err) }
