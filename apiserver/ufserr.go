package apiserver

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/persistence"
)

// UFSError turns a failure of a mount's UFS into the Connect error both
// masters and workers answer with; what says what cairn was doing, and the
// error's own message names the mount, the operation and the path (a
// persistence.StoreError). A Connect error passes through unchanged. The
// codes: NotFound for a missing object; InvalidArgument for a bad path or
// mount; FailedPrecondition where an operator must act (credentials, a
// missing bucket, a cache-only or missing mount); DataLoss for an object
// that changed while it was read; the context's own codes; Unavailable for
// the rest (unreachable, throttled: retrying may help).
func UFSError(what string, err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	code := connect.CodeUnavailable
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		code = connect.CodeNotFound
	case errors.Is(err, persistence.ErrInvalidPath), errors.Is(err, persistence.ErrBadMount):
		code = connect.CodeInvalidArgument
	case errors.Is(err, persistence.ErrDenied), errors.Is(err, persistence.ErrNoBucket),
		errors.Is(err, persistence.ErrCacheOnly), errors.Is(err, persistence.ErrNoMount):
		code = connect.CodeFailedPrecondition
	case errors.Is(err, persistence.ErrChanged):
		code = connect.CodeDataLoss
	case errors.Is(err, context.DeadlineExceeded):
		code = connect.CodeDeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = connect.CodeCanceled
	}
	return connect.NewError(code, fmt.Errorf("%s: %w", what, err))
}
