// Package client is cairn's Go SDK for the control plane: it talks to any
// of the masters, and when one is unreachable or answers Unavailable (no
// leader yet, leadership moving) it tries the next, until the caller's
// context or the retry budget ends. Masters forward writes to the leader
// themselves, so the client never needs to know which one leads.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/auth"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// DefaultMasters is where clients look when nothing else is configured.
const DefaultMasters = "127.0.0.1:7700"

// Services are the clients for one master.
type Services struct {
	Addr      string
	Cluster   cairnv1connect.ClusterServiceClient
	Operator  cairnv1connect.OperatorServiceClient
	Events    cairnv1connect.EventServiceClient
	Namespace cairnv1connect.NamespaceServiceClient
	Jobs      cairnv1connect.JobServiceClient
	Leases    cairnv1connect.LeaseServiceClient
	Auth      cairnv1connect.AuthServiceClient
}

// Client reaches a set of masters.
type Client struct {
	masters     []Services
	retry       time.Duration
	consistency Consistency
	token       string
	tls         *tls.Config
	// scheme is "https" with TLS, else "http".
	scheme string
	// data is the transport to workers (bulk HTTP and Connect alike).
	data http.RoundTripper
	mu   sync.Mutex
	good int // index of the master that answered last
}

// Option configures a Client.
type Option func(*Client)

// WithRetryBudget bounds how long a call keeps trying other masters (and
// waiting out an election) before it returns the last error. Default 15s.
func WithRetryBudget(d time.Duration) Option { return func(c *Client) { c.retry = d } }

// Consistency is how fresh the masters' answers to reads must be.
type Consistency string

// Read consistencies (sent as the Cairn-Consistency header).
const (
	// Linearizable (the default): a read reflects every write acknowledged
	// before it began, through whichever master answers it.
	Linearizable Consistency = apiserver.ConsistencyLinearizable
	// Stale: the master answers from its own state at once; it may be
	// behind the leader, but refuses when it has heard from no leader for
	// longer than its --stale-read-bound.
	Stale Consistency = apiserver.ConsistencyStale
	// StaleAny: the master answers from its own state, however old.
	StaleAny Consistency = apiserver.ConsistencyStaleAny
)

// WithTLS speaks TLS to the masters and the workers, with cfg (the CA to
// trust, and a client certificate where servers require one).
func WithTLS(cfg *tls.Config) Option { return func(c *Client) { c.tls = cfg } }

// WithToken sends token (authorization: Bearer) with every call, to the
// masters and to the workers.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithConsistency sets how fresh every read this client makes must be.
// Writes are unaffected: they always run on the leader.
func WithConsistency(c Consistency) Option { return func(cl *Client) { cl.consistency = c } }

// ParseMasters splits a comma-separated list of host:port addresses.
func ParseMasters(list string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		a = strings.TrimPrefix(strings.TrimPrefix(a, "http://"), "https://")
		if a == "" {
			continue
		}
		if !strings.Contains(a, ":") {
			return nil, fmt.Errorf("master address %q has no port (want host:port)", a)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("no master addresses given (use --masters host:port,... or CAIRN_MASTERS)")
	}
	return out, nil
}

// New makes a client for the masters at addrs (host:port).
func New(addrs []string, opts ...Option) *Client {
	// Connect protocol over a pool of HTTP/1.1 connections: the cheapest
	// path through Go's HTTP stack for many small calls (see
	// BENCHMARKS.md); server streams work over it as well.
	c := &Client{retry: 15 * time.Second}
	for _, o := range opts {
		o(c)
	}
	c.scheme = "http"
	if c.tls != nil {
		c.scheme = "https"
	}
	hc := &http.Client{Transport: apiserver.OneWrite(apiserver.WithTLS(apiserver.HTTP1Transport(), c.tls))}
	c.data = auth.Transport(c.token, apiserver.WithTLS(apiserver.HTTP1Transport(), c.tls))
	var copts []connect.ClientOption
	if c.token != "" {
		// The token goes in as a header of the call itself: a transport
		// that adds it must clone every request first.
		copts = append(copts, connect.WithInterceptors(headerInterceptor{"Authorization", "Bearer " + c.token}))
	}
	if c.consistency != "" && c.consistency != Linearizable {
		copts = append(copts, connect.WithInterceptors(headerInterceptor{apiserver.ConsistencyHeader, string(c.consistency)}))
	}
	for _, a := range addrs {
		base := c.scheme + "://" + a
		c.masters = append(c.masters, Services{
			Addr:      a,
			Cluster:   cairnv1connect.NewClusterServiceClient(hc, base, copts...),
			Operator:  cairnv1connect.NewOperatorServiceClient(hc, base, copts...),
			Events:    cairnv1connect.NewEventServiceClient(hc, base, copts...),
			Namespace: cairnv1connect.NewNamespaceServiceClient(hc, base, copts...),
			Jobs:      cairnv1connect.NewJobServiceClient(hc, base, copts...),
			Leases:    cairnv1connect.NewLeaseServiceClient(hc, base, copts...),
			Auth:      cairnv1connect.NewAuthServiceClient(hc, base, copts...),
		})
	}
	return c
}

// Masters returns the clients of every master, in the order given.
func (c *Client) Masters() []Services { return c.masters }

// Retryable reports whether err means "try another master or try later":
// the master is unreachable, has no leader, or leadership moved.
func Retryable(err error) bool {
	return connect.CodeOf(err) == connect.CodeUnavailable
}

// Do calls fn with one master's clients, starting with the one that
// answered last, and moves on to the next master while fn fails in a
// Retryable way. It gives up when ctx ends or the retry budget is spent,
// returning the last error.
func (c *Client) Do(ctx context.Context, fn func(context.Context, Services) error) error {
	deadline := time.Now().Add(c.retry)
	c.mu.Lock()
	start := c.good
	c.mu.Unlock()
	var last error
	for attempt := 0; ; attempt++ {
		i := (start + attempt) % len(c.masters)
		err := fn(ctx, c.masters[i])
		if err == nil || !Retryable(err) {
			if err == nil {
				c.mu.Lock()
				c.good = i
				c.mu.Unlock()
			}
			return err
		}
		last = err
		if ctx.Err() != nil || time.Now().After(deadline) {
			return last
		}
		// A full round without an answer: wait a little (an election).
		if (attempt+1)%len(c.masters) == 0 {
			select {
			case <-ctx.Done():
				return last
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// Msg is Call for the common case of one Connect call whose answer's
// message is the value wanted.
func Msg[T any](ctx context.Context, c *Client, fn func(context.Context, Services) (*connect.Response[T], error)) (*T, error) {
	r, err := Call(ctx, c, fn)
	if err != nil {
		return nil, err
	}
	return r.Msg, nil
}

// Call is Do for a unary call that returns a value.
func Call[T any](ctx context.Context, c *Client, fn func(context.Context, Services) (T, error)) (T, error) {
	var out T
	err := c.Do(ctx, func(ctx context.Context, s Services) error {
		var err error
		out, err = fn(ctx, s)
		return err
	})
	return out, err
}

// headerInterceptor sets one request header on every call, unary or
// streaming.
type headerInterceptor struct{ name, value string }

func (h headerInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set(h.name, h.value)
		return next(ctx, req)
	}
}

func (h headerInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set(h.name, h.value)
		return conn
	}
}

func (h headerInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
