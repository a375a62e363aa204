package extauthz

import (
	"context"
	"errors"
	"testing"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// holdingApprovals answers every hold with res (or err), as the grant
// service would after the hold window.
type holdingApprovals struct {
	*fakeApprovals
	res *grants.HoldResult
	err error
}

func (h *holdingApprovals) Hold(context.Context, grants.OpenParams) (*grants.HoldResult, error) {
	return h.res, h.err
}

// versionedPolicy is fakePolicy serving version "v-serving" (a decision it
// takes says "v1"); tool "boom" makes it fail.
type versionedPolicy struct{ *fakePolicy }

func (versionedPolicy) Version() string { return "v-serving" }

func (p versionedPolicy) Evaluate(ctx context.Context, in *policy.Input) (policy.Decision, error) {
	if in.MCP.Tool == "boom" {
		return policy.Decision{}, errors.New("policy broke")
	}
	return p.fakePolicy.Evaluate(ctx, in)
}

// TestEveryOutcomeRecordedInItsSession: every outcome of Check is one
// decision row, filed under the session the call belongs to, with who,
// what, why, the policy version, and the access request and grant behind
// it — written by ext_authz itself, so a denial Envoy answers locally
// (which ext_proc may never see) is in the session's record.
func TestEveryOutcomeRecordedInItsSession(t *testing.T) {
	const sid = "sess-audit-1"
	ctx := context.Background()
	c := newCore(t)
	c.a.policy = versionedPolicy{c.policy}
	hold := &holdingApprovals{fakeApprovals: c.approvals}
	c.a.approvals = hold
	who := audit.Decision{SessionID: sid, Principal: "alice", ClientID: "agent", Issuer: testIssuer, Target: "demo"}
	nobody := audit.Decision{SessionID: sid, Target: "demo"}

	// The session is live once its owner used it.
	if r := c.a.Check(ctx, post("alice", call(1, "read"), "mcp-session-id", sid)); r.Outcome != OutcomeAllow {
		t.Fatalf("the session's first call: %s %s", r.Outcome, r.Reason)
	}
	c.audit.take()

	cases := []struct {
		name  string
		setup func()
		req   *Request
		want  audit.Decision // beyond the decision id, time and latency
	}{
		{"allow", nil, post("alice", call(2, "read"), "mcp-session-id", sid),
			with(who, "tools/call", "read", "2", "allow", 200, "v1", "", "")},
		{"resource read names its URI", nil, post("alice", `{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"file:///secret"}}`, "mcp-session-id", sid),
			with(who, "resources/read", "file:///secret", "3", "deny", 403, "v1", "", "")},
		{"policy deny", nil, post("alice", call(4, "nuke"), "mcp-session-id", sid),
			with(who, "tools/call", "nuke", "4", "deny", 403, "v1", "", "")},
		{"held, approved", func() {
			hold.res, hold.err = &grants.HoldResult{Outcome: grants.HoldAllowed, Request: &grants.Request{ID: "req_ok"}, Grant: &grants.Grant{ID: "grant_ok"}}, nil
		}, post("alice", call(5, "danger"), "mcp-session-id", sid),
			with(who, "tools/call", "danger", "5", "allow", 200, "v1", "req_ok", "grant_ok")},
		{"held, denied by the approver", func() {
			hold.res = &grants.HoldResult{Outcome: grants.HoldDenied, Request: &grants.Request{ID: "req_no", State: "denied", EndReason: "not today"}}
		}, post("alice", call(6, "danger"), "mcp-session-id", sid),
			with(who, "tools/call", "danger", "6", "deny", 403, "v1", "req_no", "")},
		{"held, timed out (-32042)", func() {
			hold.res = &grants.HoldResult{Outcome: grants.HoldPending, Request: &grants.Request{ID: "req_wait"}, URL: "https://gw.test/airlock/inbox/requests/req_wait"}
		}, post("alice", call(7, "danger"), "mcp-session-id", sid, "mcp-protocol-version", "2025-11-25"),
			with(who, "tools/call", "danger", "7", "approval_required", 200, "v1", "req_wait", "")},
		{"held, expired", func() {
			hold.res = &grants.HoldResult{Outcome: grants.HoldExpired, Request: &grants.Request{ID: "req_old", State: "expired", EndReason: "nobody answered"}}
		}, post("alice", call(8, "danger"), "mcp-session-id", sid),
			with(who, "tools/call", "danger", "8", "deny", 403, "v1", "req_old", "")},
		{"failed hold", func() { hold.res, hold.err = nil, errors.New("disk full") },
			post("alice", call(9, "danger"), "mcp-session-id", sid),
			with(who, "tools/call", "danger", "9", "error", 403, "v1", "", "")},
		{"policy error", nil, post("alice", call(10, "boom"), "mcp-session-id", sid),
			with(who, "tools/call", "boom", "10", "error", 403, "v-serving", "", "")},
		{"unauthenticated, in a live session", nil, post("", call(11, "read"), "mcp-session-id", sid),
			with(nobody, "", "", "11", "unauthenticated", 401, "v-serving", "", "")},
		{"bad token, in a live session", nil, post("expired", call(12, "read"), "mcp-session-id", sid),
			with(nobody, "", "", "12", "unauthenticated", 401, "v-serving", "", "")},
		{"malformed", nil, post("alice", `{"jsonrpc":"2.0","id":13,"method":`, "mcp-session-id", sid),
			with(audit.Decision{SessionID: sid, Principal: "alice", ClientID: "agent", Issuer: testIssuer, Target: "demo"}, "", "", "", "invalid", 400, "v-serving", "", "")},
		{"unauthenticated, unknown session: no session", nil, post("", call(14, "read"), "mcp-session-id", "made-up"),
			with(audit.Decision{Target: "demo"}, "", "", "14", "unauthenticated", 401, "v-serving", "", "")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			r := c.a.Check(ctx, tc.req)
			ds := c.audit.take()
			if len(ds) != 1 {
				t.Fatalf("%d decision rows, want 1: %+v", len(ds), ds)
			}
			got := ds[0]
			if got.DecisionID != r.DecisionID || got.DecisionID == "" || got.Time.IsZero() || got.Reason == "" {
				t.Errorf("decision id %q (answer %q), time %v, reason %q: want all set", got.DecisionID, r.DecisionID, got.Time, got.Reason)
			}
			got.DecisionID, got.Time, got.LatencyUS, got.Reason = "", tc.want.Time, 0, ""
			if got != tc.want {
				t.Errorf("recorded\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

func with(d audit.Decision, method, tool, rpcID, outcome string, status int, version, request, grant string) audit.Decision {
	d.Method, d.Tool, d.JSONRPCID, d.Outcome, d.Status = method, tool, rpcID, outcome, status
	d.PolicyVersion, d.RequestID, d.GrantID = version, request, grant
	return d
}

// TestRefusedBatchRecordedInItsSession: a refused batch records one row
// per message, in the session, with the version of the policy that
// refused it.
func TestRefusedBatchRecordedInItsSession(t *testing.T) {
	c := newCore(t)
	r := c.a.Check(context.Background(), post("alice", batch(call(20, "read"), call(21, "nuke")), "mcp-session-id", "sess-b"))
	if r.Outcome != OutcomeDeny {
		t.Fatalf("batch: %s", r.Outcome)
	}
	ds := c.audit.take()
	if len(ds) != 2 {
		t.Fatalf("%d rows, want 2: %+v", len(ds), ds)
	}
	for i, d := range ds {
		if d.SessionID != "sess-b" || d.PolicyVersion != "v1" || d.Outcome != "deny" || d.Principal != "alice" {
			t.Errorf("row %d: %+v", i, d)
		}
	}
	if ds[1].DecisionID != ds[0].DecisionID+".1" {
		t.Errorf("decision ids %q, %q", ds[0].DecisionID, ds[1].DecisionID)
	}
}
