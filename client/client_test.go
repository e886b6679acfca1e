package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

func TestParseMasters(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "127.0.0.1:7700", want: []string{"127.0.0.1:7700"}},
		{in: " a:1 , b:2,,http://c:3 ", want: []string{"a:1", "b:2", "c:3"}},
		{in: "", bad: true},
		{in: " , ", bad: true},
		{in: "a:1,nohost", bad: true},
	}
	for _, c := range cases {
		got, err := ParseMasters(c.in)
		if c.bad != (err != nil) || strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("ParseMasters(%q) = %v, %v", c.in, got, err)
		}
	}
}

// statusServer is a real Connect server whose GetStatus answers with err
// (or a status naming id).
type statusServer struct {
	cairnv1connect.UnimplementedOperatorServiceHandler
	id    string
	err   error
	calls atomic.Int32
}

func (s *statusServer) GetStatus(context.Context, *connect.Request[cairnv1.GetStatusRequest]) (*connect.Response[cairnv1.GetStatusResponse], error) {
	s.calls.Add(1)
	if s.err != nil {
		return nil, s.err
	}
	return connect.NewResponse(&cairnv1.GetStatusResponse{MasterId: s.id}), nil
}

func serve(t *testing.T, h *statusServer) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(cairnv1connect.NewOperatorServiceHandler(h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func status(ctx context.Context, c *Client) (string, error) {
	return Call(ctx, c, func(ctx context.Context, s Services) (string, error) {
		r, err := s.Operator.GetStatus(ctx, connect.NewRequest(&cairnv1.GetStatusRequest{}))
		if err != nil {
			return "", err
		}
		return r.Msg.GetMasterId(), nil
	})
}

func TestDoMovesOnFromUnavailableMasters(t *testing.T) {
	t.Parallel()
	down := &statusServer{err: connect.NewError(connect.CodeUnavailable, errors.New("no leader"))}
	up := &statusServer{id: "m2"}
	gone := "127.0.0.1:1" // nothing listens: a dial error is Unavailable too
	c := New([]string{gone, serve(t, down), serve(t, up)})
	got, err := status(context.Background(), c)
	if err != nil || got != "m2" {
		t.Fatalf("status = %q, %v; want m2", got, err)
	}
	// The master that answered is asked first next time.
	before := down.calls.Load()
	if _, err := status(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if down.calls.Load() != before {
		t.Fatal("the client went back to a master that had failed instead of the one that answered")
	}
}

func TestDoStopsOnOtherErrorsAndOnBudget(t *testing.T) {
	t.Parallel()
	bad := &statusServer{err: connect.NewError(connect.CodeInvalidArgument, errors.New("bad"))}
	other := &statusServer{id: "m2"}
	c := New([]string{serve(t, bad), serve(t, other)})
	if _, err := status(context.Background(), c); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("an InvalidArgument answer must not be retried elsewhere: %v", err)
	}
	down := &statusServer{err: connect.NewError(connect.CodeUnavailable, errors.New("no leader"))}
	c = New([]string{serve(t, down)}, WithRetryBudget(300*time.Millisecond))
	start := time.Now()
	_, err := status(context.Background(), c)
	if connect.CodeOf(err) != connect.CodeUnavailable || time.Since(start) > 5*time.Second {
		t.Fatalf("after the budget: %v in %s", err, time.Since(start))
	}
	if down.calls.Load() < 2 {
		t.Fatalf("an Unavailable master was asked %d times within the budget", down.calls.Load())
	}
}
