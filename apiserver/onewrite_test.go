package apiserver

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// closeTracker is a request body Go's transport does not know to be in
// memory, that remembers being closed.
type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

// TestOneWrite: bodies of known length arrive intact and the caller's body
// is closed; a body the wrapper copied can be sent again (GetBody); larger
// and unknown-length bodies pass through.
func TestOneWrite(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	defer srv.Close()
	rt := OneWrite(HTTP1Transport())
	cases := []struct {
		name   string
		size   int
		length func(n int) int64
	}{
		{"small, known length", 300, func(n int) int64 { return int64(n) }},
		{"at the limit", maxOneWriteBody, func(n int) int64 { return int64(n) }},
		{"above the limit", maxOneWriteBody + 1, func(n int) int64 { return int64(n) }},
		{"unknown length", 300, func(int) int64 { return -1 }},
		{"empty", 0, func(int) int64 { return 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := bytes.Repeat([]byte("x"), tc.size)
			body := &closeTracker{Reader: bytes.NewReader(want)}
			req, err := http.NewRequest(http.MethodPost, srv.URL, body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = tc.length(tc.size)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(got, want) {
				t.Fatalf("server got %d bytes, want %d", len(got), len(want))
			}
			if !body.closed {
				t.Fatal("the caller's body was not closed")
			}
			if req.Body != io.ReadCloser(body) {
				t.Fatal("the caller's request was changed")
			}
		})
	}
	// A body shorter or longer than its promised length is an error, not a
	// request cut or padded.
	for _, length := range []int64{10, 2} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, &closeTracker{Reader: strings.NewReader("abc")})
		req.ContentLength = length
		if _, err := rt.RoundTrip(req); err == nil {
			t.Fatalf("a 3-byte body sent as %d bytes went out", length)
		}
	}
}

// countingConn counts the writes made on a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestOneWriteSendsOneWrite measures what the wrapper is for: a unary
// call's headers and body leave in one write, where Go's transport alone
// makes two; a body it may not copy still goes out, in two.
func TestOneWriteSendsOneWrite(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	writesPerCall := func(rt http.RoundTripper, writes *atomic.Int64, length int64) int64 {
		t.Helper()
		call := func() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL, &closeTracker{Reader: bytes.NewReader(make([]byte, 300))})
			req.ContentLength = length
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		call() // dial outside the count
		before := writes.Load()
		call()
		return writes.Load() - before
	}
	newTransport := func() (*http.Transport, *atomic.Int64) {
		var writes atomic.Int64
		tr := HTTP1Transport()
		dial := tr.DialContext
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{Conn: c, writes: &writes}, nil
		}
		return tr, &writes
	}
	tr, writes := newTransport()
	if n := writesPerCall(OneWrite(tr), writes, 300); n != 1 {
		t.Errorf("through OneWrite a 300-byte call took %d writes, want 1", n)
	}
	if n := writesPerCall(OneWrite(tr), writes, -1); n < 2 {
		t.Errorf("a body of unknown length took %d writes; the test's transport no longer shows the split it guards against", n)
	}
	bare, bareWrites := newTransport()
	if n := writesPerCall(bare, bareWrites, 300); n < 2 {
		t.Errorf("Go's transport alone sent a 300-byte call in %d write; OneWrite may no longer be needed", n)
	}

	// A request the wrapper copied can be sent again: GetBody gives the
	// same bytes.
	var sent *http.Request
	rec := roundTripFunc(func(r *http.Request) (*http.Response, error) { sent = r; return nil, io.EOF })
	req, _ := http.NewRequest(http.MethodPost, srv.URL, &closeTracker{Reader: strings.NewReader("again")})
	req.ContentLength = 5
	OneWrite(rec).RoundTrip(req)
	if sent == nil || sent.GetBody == nil {
		t.Fatal("the copied request has no GetBody")
	}
	for range 2 {
		b, err := sent.GetBody()
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(b); string(got) != "again" {
			t.Fatalf("GetBody gave %q", got)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
