package auth

import (
	"net/http"
)

// Transport returns a RoundTripper that sends token as a bearer token on
// every request (Connect calls and plain HTTP alike), over next. An empty
// token sends none.
func Transport(token string, next http.RoundTripper) http.RoundTripper {
	if token == "" {
		return next
	}
	return bearer{token: "Bearer " + token, next: next}
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.Clone(r.Context()) // a RoundTripper must not change the caller's request
	r2.Header.Set("Authorization", b.token)
	return b.next.RoundTrip(r2)
}

// CloseIdleConnections closes the wrapped transport's idle connections.
func (b bearer) CloseIdleConnections() {
	if c, ok := b.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
