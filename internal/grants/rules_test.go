package grants

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestJudge(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	base := Request{
		ID: "req_x", State: RequestPending, Principal: alice, DecisionID: "d-1",
		Terms: Terms{ApproverGroups: []string{"sre", "security"}, Threshold: 1, BreakGlassGroups: []string{"oncall"}},
	}
	// issued is one prior approval by (issuer, subject).
	issued := func(issuer, subject string) []Decision {
		return []Decision{{Actor: subject, Issuer: issuer, Verdict: VerdictApprove, Groups: []string{"sre"}, At: now}}
	}
	prior := func(actors ...string) []Decision {
		var ds []Decision
		for _, a := range actors {
			ds = append(ds, Decision{Actor: a, Verdict: VerdictApprove, Groups: []string{"sre"}, At: now})
		}
		return ds
	}
	tests := []struct {
		name         string
		threshold    int
		reasonReq    bool
		personOpened bool
		decisions    []Decision
		actor        Actor
		verdict      Verdict
		reason       string
		wantState    RequestState
		wantGroup    []string
		wantErr      error
	}{
		{name: "approve by approver", actor: bob, verdict: VerdictApprove, wantState: RequestApproved, wantGroup: []string{"sre"}},
		{name: "approve records only eligible groups", actor: carol, verdict: VerdictApprove, wantState: RequestApproved, wantGroup: []string{"sre", "security"}},
		{name: "deny by approver", actor: bob, verdict: VerdictDeny, wantState: RequestDenied, wantGroup: []string{"sre"}},
		{name: "deny by break-glass member", actor: dave, verdict: VerdictDeny, wantState: RequestDenied, wantGroup: []string{"oncall"}},
		{name: "threshold 2, first approval stays pending", threshold: 2, actor: bob, verdict: VerdictApprove, wantState: RequestPending, wantGroup: []string{"sre"}},
		{name: "threshold 2, second distinct approval approves", threshold: 2, decisions: prior("carol"), actor: bob, verdict: VerdictApprove, wantState: RequestApproved, wantGroup: []string{"sre"}},
		{name: "threshold 3, second approval stays pending", threshold: 3, decisions: prior("carol"), actor: bob, verdict: VerdictApprove, wantState: RequestPending, wantGroup: []string{"sre"}},
		{name: "same approver twice", threshold: 2, decisions: prior("bob"), actor: bob, verdict: VerdictApprove, wantErr: ErrAlreadyDecided},
		{name: "deny after own approve wins", threshold: 2, decisions: prior("bob"), actor: bob, verdict: VerdictDeny, wantState: RequestDenied, wantGroup: []string{"sre"}},
		{name: "deny wins over approvals", threshold: 3, decisions: prior("carol", "erin"), actor: bob, verdict: VerdictDeny, wantState: RequestDenied, wantGroup: []string{"sre"}},
		{name: "break glass approves alone", threshold: 3, actor: dave, verdict: VerdictBreakGlass, reason: "prod down", wantState: RequestApproved, wantGroup: []string{"oncall"}},
		{name: "break glass needs a reason", actor: dave, verdict: VerdictBreakGlass, wantErr: ErrReasonRequired},
		{name: "break glass by a plain approver", actor: bob, verdict: VerdictBreakGlass, reason: "x", wantErr: ErrNotApprover},
		{name: "approve by break-glass-only member", actor: dave, verdict: VerdictApprove, wantErr: ErrNotApprover},
		{name: "approve by outsider", actor: mallet, verdict: VerdictApprove, wantErr: ErrNotApprover},
		{name: "deny by outsider", actor: mallet, verdict: VerdictDeny, wantErr: ErrNotApprover},
		{name: "requester approves own request", actor: Actor{Subject: "alice", Groups: []string{"sre"}}, verdict: VerdictApprove, wantErr: ErrSelfApproval},
		{name: "requester breaks glass on own request", actor: Actor{Subject: "alice", Groups: []string{"oncall"}}, verdict: VerdictBreakGlass, reason: "x", wantErr: ErrSelfApproval},
		{name: "requester denies own request", actor: Actor{Subject: "alice", Groups: []string{"sre"}}, verdict: VerdictDeny, wantErr: ErrSelfApproval},
		{name: "agent client approves as itself", actor: Actor{Subject: "agent-1", Groups: []string{"sre"}}, verdict: VerdictApprove, wantErr: ErrSelfApproval},
		{name: "approval through the asking agent client", actor: Actor{Subject: "bob", ClientID: "agent-1", Groups: []string{"sre"}}, verdict: VerdictApprove, wantErr: ErrSelfApproval},
		{name: "colleague through the shared client of a request opened by a person", personOpened: true, actor: Actor{Subject: "bob", ClientID: "agent-1", Groups: []string{"sre"}}, verdict: VerdictApprove, wantState: RequestApproved, wantGroup: []string{"sre"}},
		// Identity is (issuer, subject), issuers compared canonically.
		{name: "requester approves own request under another spelling of the issuer URL", actor: Actor{Issuer: "HTTPS://IDP.Example:443/", Subject: "alice", Groups: []string{"sre"}}, verdict: VerdictApprove, wantErr: ErrSelfApproval},
		{name: "requester approves own request with the issuer's trailing slash", actor: Actor{Issuer: "https://idp.example/", Subject: "alice", Groups: []string{"sre"}}, verdict: VerdictApprove, wantErr: ErrSelfApproval},
		{name: "requester breaks glass under an upper-case issuer host", actor: Actor{Issuer: "https://IDP.EXAMPLE", Subject: "alice", Groups: []string{"oncall"}}, verdict: VerdictBreakGlass, reason: "x", wantErr: ErrSelfApproval},
		{name: "agent client approves as itself under another issuer spelling", actor: Actor{Issuer: "https://idp.example/", Subject: "agent-1", Groups: []string{"sre"}}, verdict: VerdictApprove, wantErr: ErrSelfApproval},
		{name: "same subject from another issuer is another person", actor: Actor{Issuer: "https://corp.example", Subject: "alice", Groups: []string{"sre"}}, verdict: VerdictApprove, wantState: RequestApproved, wantGroup: []string{"sre"}},
		{name: "same approver twice under two spellings of the issuer", threshold: 2, decisions: issued("https://sso.example/", "bob"), actor: Actor{Issuer: "https://SSO.example", Subject: "bob", Groups: []string{"sre"}}, verdict: VerdictApprove, wantErr: ErrAlreadyDecided},
		{name: "same subject from two issuers approves as two people", threshold: 2, decisions: issued("https://sso.example", "bob"), actor: Actor{Issuer: "https://corp.example", Subject: "bob", Groups: []string{"sre"}}, verdict: VerdictApprove, wantState: RequestApproved, wantGroup: []string{"sre"}},
		{name: "a decision recorded without an issuer counts for the subject", threshold: 2, decisions: prior("bob"), actor: Actor{Issuer: "https://sso.example", Subject: "bob", Groups: []string{"sre"}}, verdict: VerdictApprove, wantErr: ErrAlreadyDecided},
		{name: "reason required by terms", reasonReq: true, actor: bob, verdict: VerdictApprove, wantErr: ErrReasonRequired},
		{name: "reason required and given", reasonReq: true, actor: bob, verdict: VerdictApprove, reason: "ok", wantState: RequestApproved, wantGroup: []string{"sre"}},
		{name: "deny needs the reason too when required", reasonReq: true, actor: bob, verdict: VerdictDeny, wantErr: ErrReasonRequired},
		{name: "no subject", actor: Actor{Groups: []string{"sre"}}, verdict: VerdictApprove, wantErr: ErrInvalid},
		{name: "unknown verdict", actor: bob, verdict: "maybe", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := *base.Clone()
			r.Terms.Threshold = max(tt.threshold, 1)
			r.Terms.ReasonRequired = tt.reasonReq
			r.Decisions = tt.decisions
			if tt.personOpened {
				r.DecisionID = ""
			}
			before := r.Clone()
			d, state, err := judge(&r, tt.actor, tt.verdict, tt.reason, now)
			if diff := cmp.Diff(before, &r); diff != "" {
				t.Errorf("judge changed the request (-before +after):\n%s", diff)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if state != tt.wantState {
				t.Errorf("state = %s, want %s", state, tt.wantState)
			}
			want := Decision{Actor: tt.actor.Subject, Issuer: tt.actor.Issuer, User: tt.actor.User, Verdict: tt.verdict, Groups: tt.wantGroup, Reason: tt.reason, At: now}
			if diff := cmp.Diff(want, d); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenReasonRule(t *testing.T) {
	tests := []struct {
		required bool
		reason   string
		wantErr  error
	}{
		{false, "", nil},
		{false, "why", nil},
		{true, "why", nil},
		{true, "", ErrReasonRequired},
	}
	for _, tt := range tests {
		err := checkOpenReason(Terms{ReasonRequired: tt.required}, tt.reason)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("required=%v reason=%q: err = %v, want %v", tt.required, tt.reason, err, tt.wantErr)
		}
	}
}

func TestMayCancelAndRevoke(t *testing.T) {
	r := &Request{ID: "req_x", Principal: alice}
	g := &Grant{ID: "gr_x", Subject: "alice", Issuer: alice.Issuer}
	terms := Terms{ApproverGroups: []string{"sre"}, BreakGlassGroups: []string{"oncall"}}
	tests := []struct {
		name       string
		actor      Actor
		cancelErr  error
		revokeErrr error
	}{
		{"requester", Actor{Subject: "alice"}, nil, nil},
		{"requester, issuer named", Actor{Issuer: "https://idp.example", Subject: "alice"}, nil, nil},
		{"requester, another spelling of the issuer", Actor{Issuer: "HTTPS://idp.EXAMPLE/", Subject: "alice"}, nil, nil},
		{"same subject from another issuer", Actor{Issuer: "https://corp.example", Subject: "alice"}, ErrNotAllowed, ErrNotAllowed},
		{"approver", bob, ErrNotAllowed, nil},
		{"break-glass member", dave, ErrNotAllowed, nil},
		{"outsider", mallet, ErrNotAllowed, ErrNotAllowed},
		{"nobody", Actor{}, ErrNotAllowed, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := mayCancel(r, tt.actor); !errors.Is(err, tt.cancelErr) || (tt.cancelErr == nil && err != nil) {
				t.Errorf("mayCancel = %v, want %v", err, tt.cancelErr)
			}
			if err := mayRevoke(g, terms, tt.actor); !errors.Is(err, tt.revokeErrr) || (tt.revokeErrr == nil && err != nil) {
				t.Errorf("mayRevoke = %v, want %v", err, tt.revokeErrr)
			}
		})
	}
}
