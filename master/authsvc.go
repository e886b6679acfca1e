package master

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/auth"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// authService serves AuthService: tokens are created and revoked on the
// leader (journaled as hashes), listed and watched from this master's
// state.
type authService struct{ m *Master }

var _ cairnv1connect.AuthServiceHandler = (*authService)(nil)

func (s *authService) CreateToken(ctx context.Context, req *connect.Request[cairnv1.CreateTokenRequest]) (*connect.Response[cairnv1.CreateTokenResponse], error) {
	return onLeader(ctx, s.m, req, s.createToken)
}

// createToken makes the token here, on the leader, and journals its hash:
// the token itself is in the answer only.
func (s *authService) createToken(ctx context.Context, msg *cairnv1.CreateTokenRequest) (*cairnv1.CreateTokenResponse, error) {
	token := auth.NewToken()
	r, err := s.m.proposeOne(ctx, "create token "+msg.GetName(), tokenCreated(ctx, msg.GetName(), msg.GetRole(), token))
	if err != nil {
		return nil, err
	}
	rec, _ := r.Record.(*cairnv1.Token)
	s.m.log.Info("token created", "name", rec.GetName(), "role", auth.RoleName(rec.GetRole()), "by", rec.GetCreatedBy())
	return &cairnv1.CreateTokenResponse{Token: token, Record: withoutHash(rec)}, nil
}

// tokenCreated is the event that journals a token (as its hash).
func tokenCreated(ctx context.Context, name string, role cairnv1.Role, token string) *cairnv1.Event {
	return fromCaller(ctx, &cairnv1.Event{Kind: &cairnv1.Event_TokenCreated{TokenCreated: &cairnv1.TokenCreated{
		Token: &cairnv1.Token{Name: name, Role: role, Hash: auth.Hash(token)}}}})
}

func (s *authService) RevokeToken(ctx context.Context, req *connect.Request[cairnv1.RevokeTokenRequest]) (*connect.Response[cairnv1.RevokeTokenResponse], error) {
	return onLeader(ctx, s.m, req, s.revokeToken)
}

func (s *authService) revokeToken(ctx context.Context, msg *cairnv1.RevokeTokenRequest) (*cairnv1.RevokeTokenResponse, error) {
	if _, err := s.m.proposeOne(ctx, "revoke token "+msg.GetName(), fromCaller(ctx, &cairnv1.Event{Kind: &cairnv1.Event_TokenRevoked{
		TokenRevoked: &cairnv1.TokenRevoked{Name: msg.GetName()}}})); err != nil {
		return nil, err
	}
	s.m.log.Info("token revoked", "name", msg.GetName(), "by", callerName(ctx))
	return &cairnv1.RevokeTokenResponse{}, nil
}

func (s *authService) ListTokens(ctx context.Context, _ *connect.Request[cairnv1.ListTokensRequest]) (*connect.Response[cairnv1.ListTokensResponse], error) {
	all, err := s.m.j.State().Tokens()
	if err != nil {
		return nil, internal(err)
	}
	resp := &cairnv1.ListTokensResponse{}
	for _, tk := range all {
		resp.Tokens = append(resp.Tokens, withoutHash(tk))
	}
	return connect.NewResponse(resp), nil
}

// withoutHash is a token's record as people see it.
func withoutHash(tk *cairnv1.Token) *cairnv1.Token {
	c := proto.Clone(tk).(*cairnv1.Token)
	c.Hash = nil
	return c
}

func (s *authService) WhoAmI(ctx context.Context, _ *connect.Request[cairnv1.WhoAmIRequest]) (*connect.Response[cairnv1.WhoAmIResponse], error) {
	p, _ := auth.FromContext(ctx)
	return connect.NewResponse(&cairnv1.WhoAmIResponse{Name: p.Name, Role: p.Role, Insecure: p.Insecure}), nil
}

// WatchTokens sends the token table (hashes included: workers check tokens
// against it), then again after every change to it.
func (s *authService) WatchTokens(ctx context.Context, _ *connect.Request[cairnv1.WatchTokensRequest], stream *connect.ServerStream[cairnv1.WatchTokensResponse]) error {
	st := s.m.j.State()
	var last []*cairnv1.Token
	for first := true; ; first = false {
		changed := st.Changed()
		all, err := st.Tokens()
		if err != nil {
			return internal(err)
		}
		if first || !slices.EqualFunc(all, last, func(a, b *cairnv1.Token) bool { return proto.Equal(a, b) }) {
			if err := stream.Send(&cairnv1.WatchTokensResponse{Tokens: all}); err != nil {
				return err
			}
			last = all
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		case <-s.m.stop:
			return s.m.errShuttingDown("watch the tokens")
		}
	}
}

// verifier checks tokens against this master's state.
type verifier struct{ m *Master }

func (v verifier) Principal(hash []byte) (auth.Principal, bool, error) {
	st := v.m.j.State()
	tk, ok := st.TokenByHash(hash)
	if !ok {
		if !st.HasTokens() {
			// Only while a new cluster starts: its leader has not
			// journaled the initial tokens yet. Unavailable: try again.
			return auth.Principal{}, false, errors.New("this master knows no token yet: its cluster is starting (the first leader journals the initial tokens)")
		}
		return auth.Principal{}, false, nil
	}
	return auth.Principal{Name: tk.GetName(), Role: tk.GetRole()}, true, nil
}

// journalTokens runs on the leader: it journals the tokens given at
// bootstrap (--admin-token-file, --initial-tokens) that the journal lacks
// by name. A token file that exists already is used as it is, so every
// start with the same files is the same.
func (m *Master) journalTokens(ctx context.Context) {
	if len(m.initial) == 0 {
		return
	}
	var evs []*cairnv1.Event
	for _, it := range m.initial {
		role, err := auth.ParseRole(it.Role)
		if err != nil {
			m.log.Error("initial token", "name", it.Name, "err", err)
			continue
		}
		if tk, found := m.j.State().TokenByHash(auth.Hash(it.Token)); found {
			if tk.GetName() != it.Name {
				m.log.Warn("an initial token is journaled under another name; keeping that one", "name", it.Name, "journaled_as", tk.GetName())
			}
			continue
		}
		if has, err := m.hasToken(it.Name); err != nil || has {
			if err == nil {
				m.log.Warn("an initial token's name is taken by another token; not journaling it", "name", it.Name)
			}
			continue
		}
		evs = append(evs, tokenCreated(ctx, it.Name, role, it.Token))
	}
	if len(evs) == 0 {
		return
	}
	if res, ok := m.retry(ctx, "journal the initial tokens", evs...); ok {
		for i, r := range res {
			name := evs[i].GetTokenCreated().GetToken().GetName()
			if err := resultErr(r); err != nil {
				m.log.Error("initial token refused", "name", name, "err", err)
				continue
			}
			m.log.Info("initial token journaled", "name", name, "role", auth.RoleName(evs[i].GetTokenCreated().GetToken().GetRole()))
		}
	}
}

// hasToken reports whether the journal has a token named name.
func (m *Master) hasToken(name string) (bool, error) {
	all, err := m.j.State().Tokens()
	if err != nil {
		return false, fmt.Errorf("read the tokens: %w", err)
	}
	return slices.ContainsFunc(all, func(t *cairnv1.Token) bool { return t.GetName() == name }), nil
}
