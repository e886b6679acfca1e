package apiserver

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/persistence"
)

func TestUFSError(t *testing.T) {
	t.Parallel()
	store := func(kind error) error {
		return &persistence.StoreError{Mount: "/s3 (s3://b/p)", Op: "open", Path: "/a", Kind: kind, Err: errors.New("the store said so")}
	}
	cases := []struct {
		err  error
		want connect.Code
	}{
		{store(persistence.ErrNotFound), connect.CodeNotFound},
		{fmt.Errorf("resolve: %w", persistence.ErrInvalidPath), connect.CodeInvalidArgument},
		{store(persistence.ErrDenied), connect.CodeFailedPrecondition},
		{store(persistence.ErrNoBucket), connect.CodeFailedPrecondition},
		{store(persistence.ErrChanged), connect.CodeDataLoss},
		{store(persistence.ErrUnreachable), connect.CodeUnavailable},
		{store(persistence.ErrThrottled), connect.CodeUnavailable},
		{context.DeadlineExceeded, connect.CodeDeadlineExceeded},
		{connect.NewError(connect.CodeAborted, errors.New("already a Connect error")), connect.CodeAborted},
	}
	for _, tc := range cases {
		got := UFSError("read /s3/a from the UFS", tc.err)
		if connect.CodeOf(got) != tc.want {
			t.Errorf("%v: code %v, want %v", tc.err, connect.CodeOf(got), tc.want)
		}
	}
}
