package grants

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/policy"
)

func TestScopeDescribe(t *testing.T) {
	for _, tt := range []struct {
		terms Terms
		kind  ScopeKind
		text  string
	}{
		{Terms{SingleUse: true}, ScopeCallOnce, "this exact call, once"},
		{Terms{GrantDuration: Duration(15 * time.Minute), PinArguments: true}, ScopeToolArgs, "this tool with these arguments for 15m"},
		{Terms{GrantDuration: Duration(90 * time.Minute)}, ScopeToolAny, "this tool with any arguments for 1h30m"},
		{Terms{SingleUse: true, GrantDuration: Duration(15 * time.Minute)}, ScopeCallOnce, "this exact call, once"},
	} {
		s := tt.terms.Scope()
		if s.Kind != tt.kind || s.Describe() != tt.text || s.View().Text != tt.text {
			t.Errorf("%+v: scope %+v %q, want %s %q", tt.terms, s, s.Describe(), tt.kind, tt.text)
		}
	}
}

func TestScopeNarrow(t *testing.T) {
	anyScope := Scope{Kind: ScopeToolAny, Duration: Duration(15 * time.Minute)}
	for _, tt := range []struct {
		from, want, got Scope
		widen           bool
	}{
		{from: anyScope, want: Scope{Kind: ScopeToolArgs}, got: Scope{Kind: ScopeToolArgs, Duration: Duration(15 * time.Minute)}},
		{from: anyScope, want: Scope{Kind: ScopeCallOnce, Duration: Duration(time.Minute)}, got: Scope{Kind: ScopeCallOnce}},
		{from: anyScope, want: Scope{Duration: Duration(5 * time.Minute)}, got: Scope{Kind: ScopeToolAny, Duration: Duration(5 * time.Minute)}},
		{from: anyScope, want: Scope{Duration: Duration(time.Hour)}, widen: true},
		{from: Scope{Kind: ScopeCallOnce}, want: Scope{Kind: ScopeToolArgs}, widen: true},
		{from: Scope{Kind: ScopeToolArgs, Duration: Duration(time.Minute)}, want: Scope{Kind: ScopeToolAny}, widen: true},
	} {
		got, err := tt.from.Narrow(tt.want)
		if tt.widen {
			if !errors.Is(err, ErrWiden) {
				t.Errorf("%v narrowed to %+v: err %v, want ErrWiden", tt.from, tt.want, err)
			}
			continue
		}
		if err != nil || got != tt.got {
			t.Errorf("%v narrowed to %+v = %+v, %v; want %+v", tt.from, tt.want, got, err, tt.got)
		}
	}
	if got := anyScope.Choices(); len(got) != 3 || got[0] != anyScope || got[1].Kind != ScopeToolArgs || got[2] != (Scope{Kind: ScopeCallOnce}) {
		t.Errorf("choices of %v: %+v", anyScope, got)
	}
	if got := (Scope{Kind: ScopeCallOnce}).Choices(); len(got) != 1 {
		t.Errorf("choices of call_once: %+v", got)
	}
	for _, s := range []string{"call-once", "args", "any", "call_once", "tool_args", "tool_any"} {
		if _, err := ParseScopeKind(s); err != nil {
			t.Errorf("ParseScopeKind(%q): %v", s, err)
		}
	}
	if _, err := ParseScopeKind("everything"); err == nil {
		t.Error("ParseScopeKind(everything) succeeded")
	}
}

// covers reports whether alice's active grants let the call through, as
// ext_authz asks.
func (f *fixture) covers(tool, args string) bool {
	f.t.Helper()
	in, err := f.s.ActiveForClient(f.ctx, alice.Subject, alice.ClientID, "github", f.clk.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	var match []policy.GrantInput
	for _, g := range policy.CoveringGrants(in, json.RawMessage(args)) {
		if g.Tool == tool {
			match = append(match, g)
		}
	}
	return len(match) > 0
}

// Issue 15: approving delete_repository {"repo":"acme/prod-db-backups"}
// let the agent delete acme/payments-service with no new request, because
// the shipped approval granted the tool with any arguments for 15m. The
// shipped terms are now call_once (data.yaml single_use: true, arguments
// pinned); a tool_args grant pins the arguments too. Only tool_any (where
// policy data asks for it) covers other arguments, and says so.
func TestApprovedScopeCoversOnlyWhatWasShown(t *testing.T) {
	const held, other = `{"repo":"acme/prod-db-backups"}`, `{"repo":"acme/payments-service"}`
	for _, tt := range []struct {
		name      string
		approval  policy.Approval
		text      string
		otherCall bool
		heldTwice bool
	}{
		{"shipped call_once", approval(func(a *policy.Approval) { a.PinArguments = true }), "this exact call, once", false, false},
		{"tool_args", approval(func(a *policy.Approval) {
			a.SingleUse, a.GrantDuration, a.PinArguments = false, 15*time.Minute, true
		}), "this tool with these arguments for 15m", false, true},
		{"tool_any", approval(func(a *policy.Approval) { a.SingleUse, a.GrantDuration = false, 15*time.Minute }),
			"this tool with any arguments for 15m", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, NewMemStore(), testConfig())
			r := f.open(openParams("delete_repository", held, tt.approval))
			if got := r.Scope().Describe(); got != tt.text {
				t.Fatalf("scope %q, want %q", got, tt.text)
			}
			f.decide(r.ID, bob, VerdictApprove, "")
			if !f.covers("delete_repository", held) {
				t.Fatal("the approved call is not covered")
			}
			if got := f.covers("delete_repository", other); got != tt.otherCall {
				t.Fatalf("other repository covered = %v, want %v", got, tt.otherCall)
			}
			if _, err := f.s.Consume(f.ctx, mustGrant(t, f, r.ID), alice.Subject); err != nil {
				t.Fatal(err)
			}
			if got := f.covers("delete_repository", held); got != tt.heldTwice {
				t.Fatalf("held call covered after one use = %v, want %v", got, tt.heldTwice)
			}
		})
	}
}

func mustGrant(t *testing.T, f *fixture, requestID string) string {
	t.Helper()
	r, err := f.s.Get(f.ctx, requestID)
	if err != nil || r.GrantID == "" {
		t.Fatalf("request %s has no grant: %v", requestID, err)
	}
	return r.GrantID
}

func TestDecideScopedNarrowsNeverWidens(t *testing.T) {
	f := newFixture(t, NewMemStore(), testConfig())
	wide := approval(func(a *policy.Approval) { a.SingleUse, a.GrantDuration = false, 15*time.Minute })

	r := f.open(openParams("delete_repository", `{"repo":"a"}`, wide))
	_, err := f.s.DecideScoped(f.ctx, r.ID, bob, VerdictApprove, "", &Scope{Kind: ScopeToolAny, Duration: Duration(time.Hour)})
	if !errors.Is(err, ErrWiden) {
		t.Fatalf("widening: err %v, want ErrWiden", err)
	}
	if cur, _ := f.s.Get(f.ctx, r.ID); cur.State != RequestPending || len(cur.Decisions) != 0 {
		t.Fatalf("a refused widening recorded something: %+v", cur)
	}
	out, err := f.s.DecideScoped(f.ctx, r.ID, bob, VerdictApprove, "", &Scope{Kind: ScopeToolArgs, Duration: Duration(5 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	want := Scope{Kind: ScopeToolArgs, Duration: Duration(5 * time.Minute)}
	if out.GrantedScope == nil || *out.GrantedScope != want || out.Scope().Describe() != "this tool with these arguments for 5m" {
		t.Fatalf("granted scope %+v, want %+v", out.GrantedScope, want)
	}
	g, err := f.s.GetGrant(f.ctx, out.GrantID)
	if err != nil {
		t.Fatal(err)
	}
	if g.ArgumentsHash == "" || g.MaxUses != 0 || !g.Expiry.Equal(f.clk.Now().Add(5*time.Minute)) {
		t.Fatalf("grant %+v: want arguments pinned, unlimited uses, 5m", g)
	}
	if g.Scope() != want {
		t.Fatalf("the grant's scope %+v, want %+v", g.Scope(), want)
	}
	b, _ := json.Marshal(g)
	var shown struct{ Scope ScopeView }
	if json.Unmarshal(b, &shown) != nil || shown.Scope.Text != "this tool with these arguments for 5m" {
		t.Fatalf("grant JSON %s", b)
	}

	// Narrowed to call_once: one use, arguments pinned.
	r2 := f.open(openParams("delete_repository", `{"repo":"b"}`, wide))
	out, err = f.s.DecideScoped(f.ctx, r2.ID, bob, VerdictApprove, "", &Scope{Kind: ScopeCallOnce})
	if err != nil {
		t.Fatal(err)
	}
	if g, _ = f.s.GetGrant(f.ctx, out.GrantID); g.MaxUses != 1 || g.ArgumentsHash == "" {
		t.Fatalf("call_once grant %+v", g)
	}

	// A call without arguments pins {}: the grant must not cover other arguments.
	pinned := approval(func(a *policy.Approval) { a.SingleUse, a.GrantDuration, a.PinArguments = false, time.Minute, true })
	r3 := f.open(openParams("delete_cache", "", pinned))
	f.decide(r3.ID, bob, VerdictApprove, "")
	if !f.covers("delete_cache", "") || f.covers("delete_cache", `{"all":true}`) {
		t.Fatal("a pinned grant for a call without arguments covers the wrong calls")
	}
}
