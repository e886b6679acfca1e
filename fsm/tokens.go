package fsm

import (
	"bytes"
	"crypto/sha256"
	"regexp"

	"github.com/cockroachdb/pebble/v2"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// tokenName is what a token's name may be (as in the API's validation).
var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

func (t *txn) tokenCreated(e *cairnv1.TokenCreated) Result {
	tk := e.GetToken()
	switch {
	case !tokenName.MatchString(tk.GetName()):
		return t.reject(InvalidArgument, "token name %q: use letters, digits, '.', '_' and '-', up to 63", tk.GetName())
	case tk.GetRole() == cairnv1.Role_ROLE_UNSPECIFIED || cairnv1.Role_name[int32(tk.GetRole())] == "":
		return t.reject(InvalidArgument, "token %s: no valid role", tk.GetName())
	case len(tk.GetHash()) != sha256.Size:
		return t.reject(InvalidArgument, "token %s: its hash must be a SHA-256 (%d bytes, not %d)", tk.GetName(), sha256.Size, len(tk.GetHash()))
	}
	if t.getRaw(tokenKey(tk.GetName())) != nil {
		return t.reject(FailedPrecondition, "a token named %s exists; revoke it first, or choose another name", tk.GetName())
	}
	clash := ""
	if err := scanProto(t.b, prefixToken, func() *cairnv1.Token { return &cairnv1.Token{} }, func(o *cairnv1.Token) bool {
		if bytes.Equal(o.GetHash(), tk.GetHash()) {
			clash = o.GetName()
			return false
		}
		return true
	}); err != nil {
		t.fail(err)
	}
	if clash != "" {
		return t.reject(FailedPrecondition, "token %s is the same token as %s: make a new one", tk.GetName(), clash)
	}
	rec := &cairnv1.Token{Name: tk.GetName(), Role: tk.GetRole(), Hash: tk.GetHash(), CreatedTime: t.timestamp(), CreatedBy: t.actor}
	t.putProto(tokenKey(rec.GetName()), rec)
	t.tokens = true
	return ok(t.epoch()).with(rec)
}

func (t *txn) tokenRevoked(e *cairnv1.TokenRevoked) Result {
	if t.getRaw(tokenKey(e.GetName())) == nil {
		return t.reject(NotFound, "no token is named %s (cairn auth token ls lists them)", e.GetName())
	}
	t.del(tokenKey(e.GetName()))
	t.tokens = true
	return ok(t.epoch())
}

// loadTokens rebuilds the in-memory index of tokens by hash from r.
func (m *Machine) loadTokens(r pebble.Reader) error {
	idx := map[string]*cairnv1.Token{}
	err := scanProto(r, prefixToken, func() *cairnv1.Token { return &cairnv1.Token{} }, func(tk *cairnv1.Token) bool {
		idx[string(tk.GetHash())] = tk
		return true
	})
	if err != nil {
		return err
	}
	m.tokens.Store(&idx)
	return nil
}

// TokenByHash returns the token whose SHA-256 is hash, and whether there is
// one. It reads memory only: every call a master serves checks it.
func (m *Machine) TokenByHash(hash []byte) (*cairnv1.Token, bool) {
	idx := m.tokens.Load()
	if idx == nil {
		return nil, false
	}
	tk, ok := (*idx)[string(hash)]
	return tk, ok
}

// HasTokens reports whether the journal holds any token (a new cluster has
// none until its leader journals the initial ones).
func (m *Machine) HasTokens() bool {
	idx := m.tokens.Load()
	return idx != nil && len(*idx) > 0
}

// Tokens returns every token, sorted by name, hashes included.
func (m *Machine) Tokens() ([]*cairnv1.Token, error) {
	var out []*cairnv1.Token
	err := m.read(func(r pebble.Reader) error {
		return scanProto(r, prefixToken, func() *cairnv1.Token { return &cairnv1.Token{} },
			func(tk *cairnv1.Token) bool { out = append(out, tk); return true })
	})
	return out, err
}
