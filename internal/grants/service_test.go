package grants

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/policy"
)

func TestGrantShape(t *testing.T) {
	tests := []struct {
		name     string
		approval func(*policy.Approval)
		args     string
		want     Grant
	}{
		{
			name: "single use pins the exact arguments, expires after single_use_ttl",
			args: `{ "repo": "acme/test", "force": true }`,
			want: Grant{MaxUses: 1, Arguments: json.RawMessage(`{"repo":"acme/test","force":true}`), Expiry: time.Date(2026, 3, 1, 9, 20, 0, 0, time.UTC)},
		},
		{
			name: "single use without arguments pins {}",
			want: Grant{MaxUses: 1, Arguments: json.RawMessage(`{}`), Expiry: time.Date(2026, 3, 1, 9, 20, 0, 0, time.UTC)},
		},
		{
			name:     "single use with a duration",
			approval: func(a *policy.Approval) { a.GrantDuration = time.Minute },
			args:     `{"repo":"x"}`,
			want:     Grant{MaxUses: 1, Arguments: json.RawMessage(`{"repo":"x"}`), Expiry: time.Date(2026, 3, 1, 9, 6, 0, 0, time.UTC)},
		},
		{
			name:     "time-bound covers any arguments, counted from approval",
			approval: func(a *policy.Approval) { a.SingleUse = false; a.GrantDuration = time.Hour },
			args:     `{"repo":"x"}`,
			want:     Grant{MaxUses: 0, Expiry: time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, NewMemStore(), testConfig())
			r := f.open(openParams("delete_repository", tt.args, approval(tt.approval)))
			f.clk.Add(5 * time.Minute) // the grant counts from approval, not from the request
			r = f.decide(r.ID, bob, VerdictApprove, "")
			g, err := f.s.GetGrant(f.ctx, r.GrantID)
			if err != nil {
				t.Fatal(err)
			}
			at := time.Date(2026, 3, 1, 9, 5, 0, 0, time.UTC)
			want := tt.want
			// Pinned arguments are matched by the hash of their canonical
			// form (the store keeps no raw copy); Arguments is the masked one.
			if len(want.Arguments) > 0 {
				want.ArgumentsHash = argsHash(t, want.Arguments)
			}
			want.ID, want.Version, want.RequestID, want.State = g.ID, 1, r.ID, GrantActive
			want.Subject, want.Issuer, want.User, want.ClientID = "alice", "https://idp.example", "alice@example.com", "agent-1"
			want.Target, want.Kind, want.Tool = "github", KindTool, "delete_repository"
			want.NotBefore, want.CreatedAt, want.ApprovedBy = at, at, []string{"bob"}
			if diff := cmp.Diff(&want, g); diff != "" {
				t.Errorf("grant (-want +got):\n%s", diff)
			}
			in, err := f.s.Active(f.ctx, "alice", "github", at)
			if err != nil {
				t.Fatal(err)
			}
			wantIn := []policy.GrantInput{{ID: g.ID, Target: "github", Tool: "delete_repository", Arguments: want.Arguments,
				ArgumentsHash: want.ArgumentsHash, SingleUse: want.MaxUses == 1, Expiry: want.Expiry, Principal: "alice"}}
			if diff := cmp.Diff(wantIn, in); diff != "" {
				t.Errorf("Active (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	f := newFixture(t, NewMemStore(), testConfig())
	p := openParams("delete_repository", `{"repo":"acme/test","n":1}`, approval(nil))
	p.Session, p.DecisionID = "sess-1", "dec-1"
	r := f.open(p)
	want := &Request{
		ID: r.ID, Version: 1, State: RequestPending, Principal: alice, Target: "github", Kind: KindTool,
		Tool: "delete_repository", Arguments: json.RawMessage(`{"repo":"acme/test","n":1}`), Reason: "cleanup",
		ArgumentsHash: argsHash(t, json.RawMessage(`{"n":1,"repo":"acme/test"}`)),
		Terms:         Terms{ApproverGroups: []string{"sre"}, Threshold: 1, SingleUse: true, BreakGlassGroups: []string{"oncall"}},
		CreatedAt:     f.clk.Now(), ExpiresAt: f.clk.Now().Add(10 * time.Minute), CallKey: r.CallKey,
		Session: "sess-1", DecisionID: "dec-1",
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	if got := f.s.ApprovalURL(r.ID); got != "http://127.0.0.1:8080/requests/"+r.ID {
		t.Errorf("ApprovalURL = %s", got)
	}

	// The same call (arguments equal as JSON) joins; a different one does not.
	same := openParams("delete_repository", `{ "n": 1.0, "repo": "acme/test" }`, approval(nil))
	j, joined, err := f.s.Open(f.ctx, same)
	if err != nil || !joined || j.ID != r.ID || j.Joined != 1 {
		t.Fatalf("duplicate: joined=%v id=%s (want %s) joined count=%d err=%v", joined, j.ID, r.ID, j.Joined, err)
	}
	for _, p := range []OpenParams{
		openParams("delete_repository", `{"repo":"acme/other","n":1}`, approval(nil)),
		openParams("archive_repository", `{"repo":"acme/test","n":1}`, approval(nil)),
		func() OpenParams { p := same; p.Principal.ClientID = "agent-2"; return p }(),
		func() OpenParams { p := same; p.Target = "gitlab"; return p }(),
	} {
		o, joined, err := f.s.Open(f.ctx, p)
		if err != nil || joined || o.ID == r.ID {
			t.Errorf("different call %s/%s %s: joined=%v err=%v", p.Target, p.Tool, p.Arguments, joined, err)
		}
	}
	// Once decided, the same call opens a new request.
	f.decide(r.ID, bob, VerdictDeny, "no")
	n, joined, err := f.s.Open(f.ctx, same)
	if err != nil || joined || n.ID == r.ID {
		t.Errorf("after the decision: joined=%v id=%s err=%v", joined, n.ID, err)
	}
}

func TestOpenRefusals(t *testing.T) {
	cfg := testConfig()
	cfg.MaxPendingPerPrincipal = 2
	tests := []struct {
		name    string
		mod     func(*OpenParams)
		wantErr error
	}{
		{"no subject", func(p *OpenParams) { p.Principal.Subject = "" }, ErrInvalid},
		{"no target", func(p *OpenParams) { p.Target = "" }, ErrInvalid},
		{"no tool", func(p *OpenParams) { p.Tool = "" }, ErrInvalid},
		{"unknown kind", func(p *OpenParams) { p.Kind = "prompt" }, ErrInvalid},
		{"resource without uri", func(p *OpenParams) { p.Kind = KindResource; p.Tool = "" }, ErrInvalid},
		{"resource with arguments", func(p *OpenParams) { p.Kind = KindResource; p.Resource = "file:///x" }, ErrInvalid},
		{"no approvers", func(p *OpenParams) { p.Approval.ApproverGroups = nil }, ErrInvalid},
		{"bad JSON arguments", func(p *OpenParams) { p.Arguments = json.RawMessage(`{"a":`) }, ErrInvalid},
		{"reason required, none given", func(p *OpenParams) { p.Approval.ReasonRequired = true; p.Reason = " \t" }, ErrReasonRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, NewMemStore(), cfg)
			p := openParams("delete_repository", `{"a":1}`, approval(nil))
			tt.mod(&p)
			if _, _, err := f.s.Open(f.ctx, p); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	t.Run("too many pending", func(t *testing.T) {
		f := newFixture(t, NewMemStore(), cfg)
		f.open(openParams("a", `{}`, approval(nil)))
		b := f.open(openParams("b", `{}`, approval(nil)))
		if _, _, err := f.s.Open(f.ctx, openParams("c", `{}`, approval(nil))); !errors.Is(err, ErrTooManyPending) {
			t.Fatalf("third: err = %v, want ErrTooManyPending", err)
		}
		// Joining is not a new request.
		if _, joined, err := f.s.Open(f.ctx, openParams("b", `{}`, approval(nil))); err != nil || !joined {
			t.Fatalf("join at the limit: joined=%v err=%v", joined, err)
		}
		// Another principal has its own count.
		other := openParams("c", `{}`, approval(nil))
		other.Principal.Subject = "zoe"
		f.open(other)
		f.decide(b.ID, bob, VerdictDeny, "")
		f.open(openParams("c", `{}`, approval(nil)))
	})
}

func TestResourceRequest(t *testing.T) {
	f := newFixture(t, NewMemStore(), testConfig())
	p := OpenParams{Principal: alice, Target: "files", Kind: KindResource, Resource: "file:///etc/app.conf",
		Approval: approval(func(a *policy.Approval) { a.SingleUse = false; a.GrantDuration = time.Hour })}
	r := f.open(p)
	if r.Arguments != nil || r.Name() != "file:///etc/app.conf" {
		t.Fatalf("request: arguments %s name %s", r.Arguments, r.Name())
	}
	r = f.decide(r.ID, bob, VerdictApprove, "")
	in, _ := f.s.Active(f.ctx, "alice", "files", f.clk.Now())
	want := []policy.GrantInput{{ID: r.GrantID, Target: "files", Resource: "file:///etc/app.conf", Expiry: f.clk.Now().Add(time.Hour), Principal: "alice"}}
	if diff := cmp.Diff(want, in); diff != "" {
		t.Errorf("Active (-want +got):\n%s", diff)
	}
}

func TestActive(t *testing.T) {
	f := newFixture(t, NewMemStore(), testConfig())
	lasting := approval(func(a *policy.Approval) { a.SingleUse = false; a.GrantDuration = time.Hour })
	mk := func(tool, target, client string) string {
		p := openParams(tool, `{}`, lasting)
		p.Target, p.Principal.ClientID = target, client
		return f.decide(f.open(p).ID, bob, VerdictApprove, "").GrantID
	}
	g1 := mk("a", "github", "agent-1")
	g2 := mk("b", "github", "agent-2")
	mk("c", "gitlab", "agent-1")
	g4 := mk("d", "github", "agent-1")
	if _, err := f.s.Revoke(f.ctx, g4, carol, ""); err != nil {
		t.Fatal(err)
	}
	ids := func(in []policy.GrantInput) []string {
		var out []string
		for _, g := range in {
			out = append(out, g.ID)
		}
		return out
	}
	now := f.clk.Now()
	sorted := func(s ...string) []string { return cmpSorted(s) }
	tests := []struct {
		name    string
		subject string
		client  string
		at      time.Time
		want    []string
	}{
		{"all clients", "alice", "", now, sorted(g1, g2)},
		{"agent-1 only", "alice", "agent-1", now, []string{g1}},
		{"other subject", "zoe", "", now, nil},
		{"before not-before", "alice", "", now.Add(-time.Second), nil},
		{"at expiry", "alice", "", now.Add(time.Hour), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in []policy.GrantInput
			if tt.client == "" {
				in, _ = f.s.Active(f.ctx, tt.subject, "github", tt.at)
			} else {
				in, _ = f.s.ActiveForClient(f.ctx, tt.subject, tt.client, "github", tt.at)
			}
			if diff := cmp.Diff(tt.want, cmpSorted(ids(in))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestListFilters(t *testing.T) {
	f := newFixture(t, NewMemStore(), testConfig())
	r1 := f.open(openParams("a", `{}`, approval(nil)))
	f.clk.Add(time.Second)
	r2 := f.open(openParams("b", `{}`, approval(func(a *policy.Approval) { a.ApproverGroups = []string{"dba"}; a.BreakGlassGroups = nil })))
	f.clk.Add(time.Second)
	r3 := f.open(openParams("c", `{}`, approval(nil)))
	f.decide(r3.ID, bob, VerdictApprove, "")
	tests := []struct {
		name string
		f    RequestFilter
		want []string
	}{
		{"all, newest first", RequestFilter{}, []string{r3.ID, r2.ID, r1.ID}},
		{"pending", RequestFilter{States: []RequestState{RequestPending}}, []string{r2.ID, r1.ID}},
		{"decidable by sre", RequestFilter{DecidableBy: []string{"sre"}}, []string{r3.ID, r1.ID}},
		{"decidable by break glass", RequestFilter{DecidableBy: []string{"oncall"}}, []string{r3.ID, r1.ID}},
		{"decidable by dba, pending", RequestFilter{DecidableBy: []string{"dba"}, States: []RequestState{RequestPending}}, []string{r2.ID}},
		{"limit", RequestFilter{Limit: 1}, []string{r3.ID}},
		{"other subject", RequestFilter{Subject: "zoe"}, nil},
		{"target", RequestFilter{Target: "github"}, []string{r3.ID, r2.ID, r1.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := f.s.List(f.ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				got = append(got, r.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	gs, _ := f.s.ListGrants(f.ctx, GrantFilter{States: []GrantState{GrantActive}, Subject: "alice"})
	if len(gs) != 1 || gs[0].RequestID != r3.ID {
		t.Errorf("ListGrants = %+v", gs)
	}
	if gs, _ := f.s.ListGrants(f.ctx, GrantFilter{RequestID: r1.ID}); len(gs) != 0 {
		t.Errorf("ListGrants for a pending request = %d grants", len(gs))
	}
}

func TestReturnedRecordsAreCopies(t *testing.T) {
	f := newFixture(t, NewMemStore(), testConfig())
	r := f.open(openParams("a", `{"x":1}`, approval(nil)))
	r.Terms.ApproverGroups[0] = "mallory"
	r.Arguments[0] = '['
	again, _ := f.s.Get(f.ctx, r.ID)
	if again.Terms.ApproverGroups[0] != "sre" || string(again.Arguments) != `{"x":1}` {
		t.Fatalf("a caller changed the stored request: %+v", again)
	}
}

func TestPrune(t *testing.T) {
	f := newFixture(t, NewMemStore(), testConfig())
	denied := f.open(openParams("a", `{}`, approval(nil)))
	f.decide(denied.ID, bob, VerdictDeny, "")
	lasting := f.decide(f.open(openParams("b", `{}`, approval(func(a *policy.Approval) {
		a.SingleUse = false
		a.GrantDuration = 200 * time.Hour
	}))).ID, bob, VerdictApprove, "")
	f.clk.Add(7*24*time.Hour + time.Second)
	f.s.sweep()
	if _, err := f.s.Get(f.ctx, denied.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("denied request past retention: err = %v, want ErrNotFound", err)
	}
	// The approved request stays while its grant lives.
	if _, err := f.s.Get(f.ctx, lasting.ID); err != nil {
		t.Errorf("approved request with a live grant was pruned: %v", err)
	}
	f.clk.Add(200*time.Hour - 7*24*time.Hour)
	f.s.sweep() // the grant expires
	f.clk.Add(7*24*time.Hour + time.Second)
	f.s.sweep() // and is pruned, with its request
	if _, err := f.s.GetGrant(f.ctx, lasting.GrantID); !errors.Is(err, ErrNotFound) {
		t.Errorf("grant past retention: err = %v", err)
	}
	if _, err := f.s.Get(f.ctx, lasting.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("request of a pruned grant: err = %v", err)
	}
}

func TestEventsCarryRecords(t *testing.T) {
	f := newFixture(t, NewMemStore(), testConfig())
	sub := f.s.Subscribe(context.Background())
	r := f.open(openParams("delete_repository", `{"repo":"x"}`, approval(func(a *policy.Approval) { a.Threshold = 2 })))
	f.decide(r.ID, bob, VerdictApprove, "fine")
	r = f.decide(r.ID, carol, VerdictApprove, "")
	var got []Event
	for range 5 {
		got = append(got, <-sub)
	}
	type brief struct {
		Type      EventType
		Seq       uint64
		Actor     string
		ReqState  RequestState
		Decisions int
		Grant     string
		Decision  string
	}
	var briefs []brief
	for _, e := range got {
		b := brief{Type: e.Type, Seq: e.Seq, Actor: e.Actor}
		if e.Request != nil {
			b.ReqState, b.Decisions = e.Request.State, len(e.Request.Decisions)
		}
		if e.Grant != nil {
			b.Grant = e.Grant.ID
		}
		if e.Decision != nil {
			b.Decision = e.Decision.Actor + ":" + string(e.Decision.Verdict)
		}
		if e.ID == "" || e.At.IsZero() {
			t.Errorf("event %s has no id or time", e.Type)
		}
		briefs = append(briefs, b)
	}
	want := []brief{
		{Type: EventRequestOpened, Seq: 1, ReqState: RequestPending},
		{Type: EventRequestDecision, Seq: 2, Actor: "bob", ReqState: RequestPending, Decisions: 1, Decision: "bob:approve"},
		{Type: EventRequestDecision, Seq: 3, Actor: "carol", ReqState: RequestPending, Decisions: 2, Decision: "carol:approve"},
		{Type: EventRequestApproved, Seq: 4, Actor: "carol", ReqState: RequestApproved, Decisions: 2, Grant: r.GrantID},
		{Type: EventGrantIssued, Seq: 5, Actor: "carol", ReqState: RequestApproved, Decisions: 2, Grant: r.GrantID},
	}
	if diff := cmp.Diff(want, briefs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestSubscriberDroppedWhenBehind(t *testing.T) {
	f := newFixture(t, NewMemStore(), testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := f.s.Subscribe(ctx)
	fast := f.s.Subscribe(ctx)
	got := make(chan int)
	seen := make(chan struct{}, 1)
	go func() {
		n := 0
		for range fast {
			n++
			seen <- struct{}{}
		}
		got <- n
	}()
	for i := range subscriberBuffer + 1 {
		f.open(openParams("t", `{"i":`+itoa(i)+`}`, approval(nil)))
		f.s.cfg.MaxPendingPerPrincipal = 1 << 20
		// The fast subscriber keeps up (in lockstep, whatever the
		// scheduler does under load); only the slow one falls behind.
		<-seen
	}
	n := 0
	for range slow {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("slow subscriber got %d events before its channel closed, want %d", n, subscriberBuffer)
	}
	cancel()
	if n := <-got; n != subscriberBuffer+1 {
		t.Errorf("fast subscriber got %d events, want %d", n, subscriberBuffer+1)
	}
}

func cmpSorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
