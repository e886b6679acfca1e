package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// Principal is who a call comes from: the name and role of its token.
type Principal struct {
	Name string
	Role cairnv1.Role
	// Insecure: the process checks nothing (--insecure); Name is empty.
	Insecure bool
}

// Verifier finds the principal of a token from its hash.
type Verifier interface {
	// Principal returns the name and role of the token with this SHA-256,
	// and whether there is one. An error means the table cannot be
	// consulted (a worker that has not yet received it).
	Principal(hash []byte) (Principal, bool, error)
}

// Checker checks the token of every call a process serves against the
// rules (Wrap), or, built with Insecure, checks nothing.
type Checker struct {
	v        Verifier
	errw     *connect.ErrorWriter
	refused  *prometheus.CounterVec
	insecure prometheus.Gauge
}

// NewChecker checks tokens with v; metrics go to reg.
func NewChecker(v Verifier, reg prometheus.Registerer) *Checker {
	c := &Checker{v: v, errw: connect.NewErrorWriter(),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_auth_refused_total",
			Help: "Calls refused by authentication or authorization, by reason: no_token, unknown_token, forbidden, unavailable (the token table is not loaded yet).",
		}, []string{"reason"}),
		insecure: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cairn_auth_insecure",
			Help: "1 when this process runs with --insecure and checks no token.",
		}),
	}
	reg.MustRegister(c.refused, c.insecure)
	return c
}

// Insecure returns a checker that lets every call through as an insecure
// admin, and says so in cairn_auth_insecure.
func Insecure(reg prometheus.Registerer) *Checker {
	c := NewChecker(nil, reg)
	c.insecure.Set(1)
	return c
}

// IsInsecure reports whether the checker checks nothing.
func (c *Checker) IsInsecure() bool { return c.v == nil }

// Check returns the principal of a call to path with headers h, or the
// error (Unauthenticated, PermissionDenied, Unavailable) to refuse it with.
// Paths that have no rule and are no cairn procedure are open.
func (c *Checker) Check(path string, h http.Header) (Principal, error) {
	class, ruled := Lookup(path)
	if !ruled && strings.HasPrefix(path, "/cairn.") {
		class, ruled = Admin, true // a cairn procedure without a rule: admins only
	}
	if c.v == nil {
		return Principal{Role: cairnv1.Role_ROLE_ADMIN, Insecure: true}, nil
	}
	if !ruled || class == Open {
		return Principal{}, nil
	}
	token, ok := FromHeader(h)
	if !ok {
		c.refused.WithLabelValues("no_token").Inc()
		return Principal{}, connect.NewError(connect.CodeUnauthenticated,
			errors.New("this call needs a token: send the header authorization: Bearer TOKEN (the CLI takes --token, --token-file or CAIRN_TOKEN)"))
	}
	p, found, err := c.v.Principal(Hash(token))
	if err != nil {
		c.refused.WithLabelValues("unavailable").Inc()
		return Principal{}, connect.NewError(connect.CodeUnavailable, fmt.Errorf("cannot check the token yet: %w", err))
	}
	if !found {
		c.refused.WithLabelValues("unknown_token").Inc()
		return Principal{}, connect.NewError(connect.CodeUnauthenticated, errors.New("the token is not known: it was revoked, or belongs to another cluster"))
	}
	if !class.Allows(p.Role) {
		c.refused.WithLabelValues("forbidden").Inc()
		return Principal{}, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("token %q has the role %s; %s needs one of: %s",
			p.Name, RoleName(p.Role), path, strings.Join(RolesOf(class), ", ")))
	}
	return p, nil
}

// Wrap checks every request before next serves it, and puts the principal
// in the request's context (FromContext). Refusals are written in the
// caller's protocol: a Connect, gRPC or gRPC-Web error, or for plain HTTP
// routes the status (401, 403, 503) with a JSON body {"error": "..."}.
func (c *Checker) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := c.Check(r.URL.Path, r.Header)
		if err != nil {
			c.refuse(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

func (c *Checker) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if connect.CodeOf(err) == connect.CodeUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cairn"`)
	}
	if _, route := Routes[r.URL.Path]; !route && c.errw.IsSupported(r) {
		c.errw.Write(w, r, err)
		return
	}
	status := http.StatusUnauthorized
	switch connect.CodeOf(err) {
	case connect.CodePermissionDenied:
		status = http.StatusForbidden
	case connect.CodeUnavailable:
		status = http.StatusServiceUnavailable
	}
	msg := err.Error()
	var ce *connect.Error
	if errors.As(err, &ce) {
		msg = ce.Message()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal a checked call carries, and whether it
// carries one.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Table is a Verifier over a list of tokens, replaced as a whole (a
// worker's copy of the masters' table). Until the first Set it answers
// with an error.
type Table struct {
	m   map[string]Principal
	set bool
}

// NewTable builds a table from token records.
func NewTable(tokens []*cairnv1.Token) *Table {
	t := &Table{m: make(map[string]Principal, len(tokens)), set: true}
	for _, tk := range tokens {
		t.m[string(tk.GetHash())] = Principal{Name: tk.GetName(), Role: tk.GetRole()}
	}
	return t
}

// Principal implements Verifier.
func (t *Table) Principal(hash []byte) (Principal, bool, error) {
	if t == nil || !t.set {
		return Principal{}, false, errors.New("the token table has not arrived from the masters yet")
	}
	p, ok := t.m[string(hash)]
	return p, ok, nil
}
