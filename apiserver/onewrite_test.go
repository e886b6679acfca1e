package apiserver

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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
