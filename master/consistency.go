package master

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/apiserver"
)

// ConsistencyHeader is the request header a caller sets to say how fresh a
// read must be (see Consistency). Without it, reads are linearizable.
const ConsistencyHeader = apiserver.ConsistencyHeader

// Consistency is how fresh a read must be.
type Consistency int

// Read consistencies, as the values of ConsistencyHeader.
const (
	// Linearizable (the default): the read reflects every write
	// acknowledged before it began, through any master. The master learns
	// the leader's commit index (the leader confirms with a quorum that it
	// still leads) and waits until its own state has applied it.
	Linearizable Consistency = iota
	// Stale: the master answers from its own state at once. It refuses
	// (Unavailable) when it has heard from no leader for longer than
	// --stale-read-bound, since its state may then be arbitrarily old.
	Stale
	// StaleAny: the master answers from its own state, however old.
	StaleAny
)

// consistencyNames are the header values, by Consistency.
var consistencyNames = []string{apiserver.ConsistencyLinearizable, apiserver.ConsistencyStale, apiserver.ConsistencyStaleAny}

func (c Consistency) String() string {
	if int(c) < len(consistencyNames) {
		return consistencyNames[c]
	}
	return fmt.Sprintf("consistency(%d)", int(c))
}

// ParseConsistency reads a ConsistencyHeader value; empty is Linearizable.
func ParseConsistency(s string) (Consistency, error) {
	if s == "" {
		return Linearizable, nil
	}
	for i, n := range consistencyNames {
		if strings.EqualFold(s, n) {
			return Consistency(i), nil
		}
	}
	return 0, fmt.Errorf("%s %q: want one of %s", ConsistencyHeader, s, strings.Join(consistencyNames, ", "))
}

// readBarrier makes this master's state fit to answer a read with the
// consistency h asks for, or says why it is not (a Connect error).
func (m *Master) readBarrier(ctx context.Context, h http.Header) error {
	c, err := ParseConsistency(h.Get(ConsistencyHeader))
	if err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	switch c {
	case StaleAny:
		return nil
	case Stale:
		last := m.j.LastLeaderContact()
		if age := time.Since(last); last.IsZero() || age > m.cfg.StaleReadBound {
			heard := "never"
			if !last.IsZero() {
				heard = age.Round(time.Millisecond).String() + " ago"
			}
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf(
				"master %s last heard from a leader %s, more than --stale-read-bound %s: its state may be arbitrarily old; read through another master, or pass %s: stale-any to read it anyway",
				m.cfg.ID, heard, m.cfg.StaleReadBound, ConsistencyHeader))
		}
		return nil
	}
	// No derived contexts on this path: it runs for every read, and a
	// context with a timeout costs an allocation, a timer and a
	// registration with the call's own context.
	idx, err := m.j.ReadIndexWithin(ctx, m.cfg.ReadIndexTimeout)
	if err != nil {
		if ctx.Err() != nil {
			return connect.NewError(connect.CodeOf(ctx.Err()), ctx.Err())
		}
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf(
			"master %s cannot serve a linearizable read: no leader confirmed its commit index within %s (%v); retry through another master, or pass %s: stale for this master's own state",
			m.cfg.ID, m.cfg.ReadIndexTimeout, err, ConsistencyHeader))
	}
	st := m.j.State()
	if st.AppliedIndex() >= idx {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, m.cfg.ForwardHold)
	defer cancel()
	if err := st.WaitApplied(wctx, idx); err != nil {
		if ctx.Err() != nil {
			return connect.NewError(connect.CodeOf(ctx.Err()), ctx.Err())
		}
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf(
			"master %s is behind the leader: it has applied index %d of %d and did not catch up within %s; read through another master",
			m.cfg.ID, st.AppliedIndex(), idx, m.cfg.ForwardHold))
	}
	return nil
}

// readInterceptor runs the read barrier before every procedure in reads:
// unary calls, and streams before their first message, so a watch begun
// after a write sees it.
type readInterceptor struct{ m *Master }

var _ connect.Interceptor = readInterceptor{}

func (i readInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient || !reads[req.Spec().Procedure] {
			return next(ctx, req)
		}
		if err := i.m.readBarrier(ctx, req.Header()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (i readInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i readInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if reads[conn.Spec().Procedure] {
			if err := i.m.readBarrier(ctx, conn.RequestHeader()); err != nil {
				return err
			}
		}
		return next(ctx, conn)
	}
}

// errShuttingDown answers streams and waits cut short by Close.
func (m *Master) errShuttingDown(what string) error {
	return connect.NewError(connect.CodeUnavailable, errors.New("master "+m.cfg.ID+" is shutting down; "+what+" on another master"))
}
