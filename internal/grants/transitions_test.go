package grants

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/policy"
)

// op is one step applied to the request under test (and its grant).
type op struct {
	name    string
	do      func(f *fixture, id string) error
	wantErr error
}

func approveBy(a Actor) op {
	return op{name: "approve by " + a.Subject, do: func(f *fixture, id string) error {
		_, err := f.s.Decide(f.ctx, id, a, VerdictApprove, "")
		return err
	}}
}

func denyBy(a Actor) op {
	return op{name: "deny by " + a.Subject, do: func(f *fixture, id string) error {
		_, err := f.s.Decide(f.ctx, id, a, VerdictDeny, "too risky")
		return err
	}}
}

func breakGlassBy(a Actor) op {
	return op{name: "break glass by " + a.Subject, do: func(f *fixture, id string) error {
		_, err := f.s.Decide(f.ctx, id, a, VerdictBreakGlass, "prod is down")
		return err
	}}
}

func cancelBy(a Actor) op {
	return op{name: "cancel by " + a.Subject, do: func(f *fixture, id string) error {
		_, err := f.s.Cancel(f.ctx, id, a, "not needed")
		return err
	}}
}

// advance moves the clock and runs the expirer.
func advance(d time.Duration) op {
	return op{name: "advance " + d.String(), do: func(f *fixture, _ string) error {
		f.clk.Add(d)
		f.s.sweep()
		return nil
	}}
}

// advanceNoSweep moves the clock without the expirer: lazy checks only.
func advanceNoSweep(d time.Duration) op {
	return op{name: "advance (no sweep) " + d.String(), do: func(f *fixture, _ string) error {
		f.clk.Add(d)
		return nil
	}}
}

func grantOf(f *fixture, id string) string {
	r, err := f.s.Get(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return r.GrantID
}

func consumeOp() op {
	return op{name: "consume", do: func(f *fixture, id string) error {
		_, err := f.s.Consume(f.ctx, grantOf(f, id), "alice")
		return err
	}}
}

func revokeBy(a Actor) op {
	return op{name: "revoke by " + a.Subject, do: func(f *fixture, id string) error {
		_, err := f.s.Revoke(f.ctx, grantOf(f, id), a, "done")
		return err
	}}
}

func with(o op, err error) op { o.wantErr = err; return o }

func TestTransitions(t *testing.T) {
	lasting := func(a *policy.Approval) { a.SingleUse = false; a.GrantDuration = 30 * time.Minute }
	two := func(a *policy.Approval) { a.Threshold = 2 }
	tests := []struct {
		name       string
		approval   func(*policy.Approval)
		ops        []op
		wantReq    RequestState
		wantGrant  GrantState // "" when no grant
		wantEvents []EventType
	}{
		{name: "pending", wantReq: RequestPending, wantEvents: []EventType{EventRequestOpened}},
		{name: "pending -> approved (single use)", ops: []op{approveBy(bob)}, wantReq: RequestApproved, wantGrant: GrantActive,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestApproved, EventGrantIssued}},
		{name: "pending -> denied", ops: []op{denyBy(bob)}, wantReq: RequestDenied,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestDenied}},
		{name: "pending -> expired", ops: []op{advance(10 * time.Minute)}, wantReq: RequestExpired,
			wantEvents: []EventType{EventRequestOpened, EventRequestExpired}},
		{name: "pending stays before the TTL", ops: []op{advance(10*time.Minute - time.Nanosecond)}, wantReq: RequestPending,
			wantEvents: []EventType{EventRequestOpened}},
		{name: "pending -> cancelled", ops: []op{cancelBy(Actor{Subject: "alice"})}, wantReq: RequestCancelled,
			wantEvents: []EventType{EventRequestOpened, EventRequestCancelled}},
		{name: "cancel by someone else refused", ops: []op{with(cancelBy(bob), ErrNotAllowed)}, wantReq: RequestPending,
			wantEvents: []EventType{EventRequestOpened}},
		{name: "threshold 2: one approval stays pending", approval: two, ops: []op{approveBy(bob)}, wantReq: RequestPending,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision}},
		{name: "threshold 2: two approvals", approval: two, ops: []op{approveBy(bob), approveBy(carol)}, wantReq: RequestApproved, wantGrant: GrantActive,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestDecision, EventRequestApproved, EventGrantIssued}},
		{name: "threshold 2: one approval then deny", approval: two, ops: []op{approveBy(bob), denyBy(carol)}, wantReq: RequestDenied,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestDecision, EventRequestDenied}},
		{name: "threshold 2: same approver twice", approval: two, ops: []op{approveBy(bob), with(approveBy(bob), ErrAlreadyDecided)}, wantReq: RequestPending,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventDecisionRefused}},
		{name: "threshold 2: break glass", approval: two, ops: []op{breakGlassBy(dave)}, wantReq: RequestApproved, wantGrant: GrantActive,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestApproved, EventGrantIssued}},
		{name: "threshold 2: partial approval then expiry", approval: two, ops: []op{approveBy(bob), advance(time.Hour)}, wantReq: RequestExpired,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestExpired}},
		{name: "self approval refused", ops: []op{with(approveBy(Actor{Subject: "alice", Groups: []string{"sre"}}), ErrSelfApproval)}, wantReq: RequestPending,
			wantEvents: []EventType{EventRequestOpened, EventDecisionRefused}},
		{name: "outsider refused", ops: []op{with(approveBy(mallet), ErrNotApprover)}, wantReq: RequestPending,
			wantEvents: []EventType{EventRequestOpened, EventDecisionRefused}},
		{name: "approved: decide again", ops: []op{approveBy(bob), with(denyBy(carol), ErrNotPending)}, wantReq: RequestApproved, wantGrant: GrantActive,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestApproved, EventGrantIssued}},
		{name: "denied: approve", ops: []op{denyBy(bob), with(approveBy(carol), ErrNotPending)}, wantReq: RequestDenied,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestDenied}},
		{name: "expired: approve", ops: []op{advance(time.Hour), with(approveBy(bob), ErrNotPending)}, wantReq: RequestExpired,
			wantEvents: []EventType{EventRequestOpened, EventRequestExpired}},
		{name: "cancelled: cancel", ops: []op{cancelBy(Actor{Subject: "alice"}), with(cancelBy(Actor{Subject: "alice"}), ErrNotPending)}, wantReq: RequestCancelled,
			wantEvents: []EventType{EventRequestOpened, EventRequestCancelled}},
		{name: "approval after the deadline, before the expirer, expires", ops: []op{advanceNoSweep(10 * time.Minute), with(approveBy(bob), ErrNotPending)}, wantReq: RequestExpired,
			wantEvents: []EventType{EventRequestOpened, EventRequestExpired}},

		{name: "grant: active -> consumed", ops: []op{approveBy(bob), consumeOp()}, wantReq: RequestApproved, wantGrant: GrantConsumed,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestApproved, EventGrantIssued, EventGrantConsumed}},
		{name: "grant: consumed -> consume again", ops: []op{approveBy(bob), consumeOp(), with(consumeOp(), ErrGrantUsed)}, wantReq: RequestApproved, wantGrant: GrantConsumed,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestApproved, EventGrantIssued, EventGrantConsumed}},
		{name: "grant: active -> revoked by approver", ops: []op{approveBy(bob), revokeBy(carol)}, wantReq: RequestApproved, wantGrant: GrantRevoked,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestApproved, EventGrantIssued, EventGrantRevoked}},
		{name: "grant: revoked by holder", ops: []op{approveBy(bob), revokeBy(Actor{Subject: "alice"})}, wantReq: RequestApproved, wantGrant: GrantRevoked,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestApproved, EventGrantIssued, EventGrantRevoked}},
		{name: "grant: revoke by outsider refused", ops: []op{approveBy(bob), with(revokeBy(mallet), ErrNotAllowed)}, wantReq: RequestApproved, wantGrant: GrantActive,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestApproved, EventGrantIssued}},
		{name: "grant: revoked -> consume", ops: []op{approveBy(bob), revokeBy(carol), with(consumeOp(), ErrGrantEnded)}, wantReq: RequestApproved, wantGrant: GrantRevoked,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestApproved, EventGrantIssued, EventGrantRevoked}},
		{name: "grant: revoked -> revoke", ops: []op{approveBy(bob), revokeBy(carol), with(revokeBy(carol), ErrGrantEnded)}, wantReq: RequestApproved, wantGrant: GrantRevoked,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestApproved, EventGrantIssued, EventGrantRevoked}},
		{name: "grant: single use expires after single_use_ttl", ops: []op{approveBy(bob), advance(15 * time.Minute)}, wantReq: RequestApproved, wantGrant: GrantExpired,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestApproved, EventGrantIssued, EventGrantExpired}},
		{name: "grant: expired -> consume", ops: []op{approveBy(bob), advance(time.Hour), with(consumeOp(), ErrGrantEnded)}, wantReq: RequestApproved, wantGrant: GrantExpired,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestApproved, EventGrantIssued, EventGrantExpired}},
		{name: "grant: consume after expiry, before the expirer", ops: []op{approveBy(bob), advanceNoSweep(15 * time.Minute), with(consumeOp(), ErrGrantEnded)}, wantReq: RequestApproved, wantGrant: GrantActive,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestApproved, EventGrantIssued}},
		{name: "grant: time-bound used many times", approval: lasting, ops: []op{approveBy(bob), consumeOp(), consumeOp(), consumeOp()}, wantReq: RequestApproved, wantGrant: GrantActive,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestApproved, EventGrantIssued, EventGrantUsed, EventGrantUsed, EventGrantUsed}},
		{name: "grant: time-bound expires after its duration", approval: lasting, ops: []op{approveBy(bob), consumeOp(), advance(30 * time.Minute), with(consumeOp(), ErrGrantEnded)}, wantReq: RequestApproved, wantGrant: GrantExpired,
			wantEvents: []EventType{EventRequestOpened, EventRequestDecision, EventRequestApproved, EventGrantIssued, EventGrantUsed, EventGrantExpired}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, NewMemStore(), testConfig())
			r := f.open(openParams("delete_repository", `{"repo":"acme/test"}`, approval(tt.approval)))
			for _, o := range tt.ops {
				err := o.do(f, r.ID)
				if tt := o.wantErr; (tt == nil && err != nil) || !errors.Is(err, tt) {
					t.Fatalf("%s: err = %v, want %v", o.name, err, o.wantErr)
				}
			}
			got, err := f.s.Get(f.ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tt.wantReq {
				t.Errorf("request state = %s, want %s", got.State, tt.wantReq)
			}
			if tt.wantGrant == "" {
				if got.GrantID != "" {
					t.Errorf("request has grant %s, want none", got.GrantID)
				}
			} else {
				g, err := f.s.GetGrant(f.ctx, got.GrantID)
				if err != nil {
					t.Fatal(err)
				}
				if g.State != tt.wantGrant {
					t.Errorf("grant state = %s, want %s", g.State, tt.wantGrant)
				}
			}
			if diff := cmp.Diff(tt.wantEvents, f.rec.types()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}
