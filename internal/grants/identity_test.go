package grants

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/policy"
)

// The same subject from two issuers is two people: neither uses, sees as
// its own, cancels or gives up what the other asked for or holds, and
// each has its own pending count. Spellings of one issuer URL are one
// issuer.
func TestSameSubjectFromTwoIssuersIsTwoPeople(t *testing.T) {
	cfg := testConfig()
	cfg.MaxPendingPerPrincipal = 1
	f := newFixture(t, NewMemStore(), cfg)
	lasting := approval(func(a *policy.Approval) { a.SingleUse = false; a.GrantDuration = time.Hour })

	impostor := alice
	impostor.Issuer = "https://corp.example"
	variant := alice
	variant.Issuer = "HTTPS://IDP.example:443/"

	r := f.open(openParams("a", `{}`, lasting))
	// alice@corp has her own pending count (alice@idp is at the limit) ...
	other := openParams("b", `{}`, lasting)
	other.Principal = impostor
	ro := f.open(other)
	// ... while alice@idp under another spelling of her issuer is at hers.
	again := openParams("c", `{}`, lasting)
	again.Principal = variant
	if _, _, err := f.s.Open(f.ctx, again); !errors.Is(err, ErrTooManyPending) {
		t.Fatalf("open by alice under another issuer spelling: err = %v, want ErrTooManyPending", err)
	}
	if _, err := f.s.Cancel(f.ctx, r.ID, Actor{Issuer: impostor.Issuer, Subject: "alice"}, ""); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("cancel by alice@corp of alice@idp's request: err = %v, want ErrNotAllowed", err)
	}
	if _, err := f.s.Cancel(f.ctx, ro.ID, Actor{Issuer: "https://corp.example/", Subject: "alice"}, ""); err != nil {
		t.Fatalf("cancel by the requester under another spelling of her issuer: %v", err)
	}
	gid := f.decide(r.ID, bob, VerdictApprove, "").GrantID

	ids := func(in []policy.GrantInput, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, g := range in {
			out = append(out, g.ID)
		}
		return out
	}
	now := f.clk.Now()
	if got := ids(f.s.ActiveForPrincipal(f.ctx, impostor, "github", now)); len(got) != 0 {
		t.Errorf("alice@corp sees alice@idp's grants: %v", got)
	}
	if diff := cmp.Diff([]string{gid}, ids(f.s.ActiveForPrincipal(f.ctx, variant, "github", now))); diff != "" {
		t.Errorf("the holder under another issuer spelling (-want +got):\n%s", diff)
	}
	if _, err := f.s.ConsumeFor(f.ctx, gid, impostor); !errors.Is(err, ErrNotFound) {
		t.Errorf("ConsumeFor by alice@corp: err = %v, want ErrNotFound", err)
	}
	if _, err := f.s.ConsumeFor(f.ctx, gid, variant); err != nil {
		t.Errorf("ConsumeFor by the holder: %v", err)
	}
	if gs, _ := f.s.ListGrants(f.ctx, GrantFilter{Subject: "alice", Issuer: impostor.Issuer}); len(gs) != 0 {
		t.Errorf("ListGrants for alice@corp = %d grants, want 0", len(gs))
	}
	if gs, _ := f.s.ListGrants(f.ctx, GrantFilter{Subject: "alice", Issuer: "https://idp.example/"}); len(gs) != 1 {
		t.Errorf("ListGrants for alice@idp = %d grants, want 1", len(gs))
	}
	if rs, _ := f.s.List(f.ctx, RequestFilter{Subject: "alice", Issuer: impostor.Issuer}); len(rs) != 1 || rs[0].ID != ro.ID {
		t.Errorf("List for alice@corp = %v, want only her own request", rs)
	}
	if _, err := f.s.Revoke(f.ctx, gid, Actor{Issuer: impostor.Issuer, Subject: "alice"}, ""); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("revoke by alice@corp: err = %v, want ErrNotAllowed", err)
	}
	if _, err := f.s.Revoke(f.ctx, gid, Actor{Issuer: variant.Issuer, Subject: "alice"}, "done"); err != nil {
		t.Errorf("the holder gives the grant up: %v", err)
	}
}

// A grant written before airlock kept issuers takes its request's issuer
// when loaded, so the same subject from another issuer cannot use it.
func TestLegacyGrantTakesItsRequestsIssuer(t *testing.T) {
	f := newFixture(t, NewMemStore(), testConfig())
	lasting := approval(func(a *policy.Approval) { a.SingleUse = false; a.GrantDuration = time.Hour })
	r := f.decide(f.open(openParams("a", `{}`, lasting)).ID, bob, VerdictApprove, "")
	g, err := f.s.GetGrant(f.ctx, r.GrantID)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := f.s.Get(f.ctx, r.ID)
	legacy := *g
	legacy.Issuer = ""
	req.Version, legacy.Version = 1, 1
	store := NewMemStore()
	if err := store.Apply(f.ctx, Mutation{Requests: []Request{*req}, Grants: []Grant{legacy}}); err != nil {
		t.Fatal(err)
	}
	f2 := newFixture(t, store, testConfig())
	f2.clk.t = f.clk.Now()
	got, err := f2.s.GetGrant(f.ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Issuer != alice.Issuer {
		t.Errorf("loaded legacy grant issuer = %q, want its request's %q", got.Issuer, alice.Issuer)
	}
	impostor := alice
	impostor.Issuer = "https://corp.example"
	if _, err := f2.s.ConsumeFor(f.ctx, g.ID, impostor); !errors.Is(err, ErrNotFound) {
		t.Errorf("ConsumeFor by alice@corp: err = %v, want ErrNotFound", err)
	}
	if _, err := f2.s.ConsumeFor(f.ctx, g.ID, alice); err != nil {
		t.Errorf("ConsumeFor by the holder: %v", err)
	}
}
