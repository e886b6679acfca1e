package fsm

import (
	"bytes"
	"io"
	"testing"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// Tokens: created with a name, a role and a hash, found by hash, refused
// twice by name or by hash, revoked by name; a stop names its actor.
func TestTokensAndActors(t *testing.T) {
	t.Parallel()
	m := open(t)
	idx := uint64(0)
	apply := func(ev *cairnv1.Event) Result {
		idx++
		ev.Time = at(int(idx))
		return m.Apply([]Entry{{Index: idx, Events: []*cairnv1.Event{ev}}})[0][0]
	}
	hash := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	create := func(name string, role cairnv1.Role, h []byte) *cairnv1.Event {
		return &cairnv1.Event{Actor: "root", Kind: &cairnv1.Event_TokenCreated{TokenCreated: &cairnv1.TokenCreated{Token: &cairnv1.Token{Name: name, Role: role, Hash: h}}}}
	}
	for _, tc := range []struct {
		name string
		ev   *cairnv1.Event
		code Code
	}{
		{"create", create("ops", cairnv1.Role_ROLE_OPERATOR, hash(1)), OK},
		{"same name", create("ops", cairnv1.Role_ROLE_READER, hash(2)), FailedPrecondition},
		{"same token", create("ops2", cairnv1.Role_ROLE_READER, hash(1)), FailedPrecondition},
		{"no role", create("x", 0, hash(3)), InvalidArgument},
		{"short hash", create("x", cairnv1.Role_ROLE_READER, []byte{1}), InvalidArgument},
		{"bad name", create("../x", cairnv1.Role_ROLE_READER, hash(3)), InvalidArgument},
		{"another", create("w", cairnv1.Role_ROLE_WORKER, hash(4)), OK},
		{"revoke", &cairnv1.Event{Kind: &cairnv1.Event_TokenRevoked{TokenRevoked: &cairnv1.TokenRevoked{Name: "w"}}}, OK},
		{"revoke again", &cairnv1.Event{Kind: &cairnv1.Event_TokenRevoked{TokenRevoked: &cairnv1.TokenRevoked{Name: "w"}}}, NotFound},
	} {
		if r := apply(tc.ev); r.Code != tc.code {
			t.Fatalf("%s: %v %q, want %v", tc.name, r.Code, r.Message, tc.code)
		}
	}
	if tk, ok := m.TokenByHash(hash(1)); !ok || tk.GetName() != "ops" || tk.GetRole() != cairnv1.Role_ROLE_OPERATOR || tk.GetCreatedBy() != "root" {
		t.Fatalf("token by hash: %v %t", tk, ok)
	}
	if _, ok := m.TokenByHash(hash(4)); ok {
		t.Fatal("a revoked token is still found")
	}
	if all, err := m.Tokens(); err != nil || len(all) != 1 {
		t.Fatalf("tokens: %v %v", all, err)
	}
	// The index survives a snapshot and restore.
	other := open(t)
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := s.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := other.Restore(io.NopCloser(&b)); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.TokenByHash(hash(1)); !ok {
		t.Fatal("the restored store does not know the token")
	}
	// A stop made by a call names the token that made it.
	apply(&cairnv1.Event{Kind: &cairnv1.Event_JobStarted{JobStarted: &cairnv1.JobStarted{Spec: &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_CLEANUP}, Workers: []string{"w1"}}}})
	apply(&cairnv1.Event{Actor: "ops", Kind: &cairnv1.Event_JobStopped{JobStopped: &cairnv1.JobStopped{JobId: 1}}})
	if j, _, _ := m.Job(1); j.GetStoppedBy() != "ops" {
		t.Fatalf("stopped by %q, want ops", j.GetStoppedBy())
	}
}
