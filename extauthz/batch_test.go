package extauthz

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/mcp"
	"github.com/airlock-mcp/airlock/internal/policy"
)

func TestBatchWithGrantCoveredCallIsRefusedAndGrantKept(t *testing.T) {
	c := newCore(t)
	c.approvals.grants = []policy.GrantInput{{ID: "grt_1", Target: "demo", Tool: "danger", SingleUse: true, Principal: "alice"}}
	// The reproduction: [ping, <approved call>] sent three times.
	for i := range 3 {
		r := c.a.Check(context.Background(), post("alice", batch(ping, call(2, "danger"))))
		if r.Outcome != OutcomeDeny || r.Status != 403 {
			t.Fatalf("attempt %d: outcome %s status %d, want the batch refused", i, r.Outcome, r.Status)
		}
		want := []idErr{
			{"1", mcp.CodeForbidden, reasonBatchNotSent},
			{"2", mcp.CodeApprovalRequired, reasonBatchNeedsAlone},
		}
		if diff := cmp.Diff(want, batchErrors(t, r.Body)); diff != "" {
			t.Errorf("attempt %d: errors (-want +got):\n%s", i, diff)
		}
		recs := c.audit.take()
		var got [][4]string
		for _, d := range recs {
			got = append(got, [4]string{d.DecisionID, d.Method + " " + d.Tool, d.JSONRPCID, d.Outcome})
		}
		wantRecs := [][4]string{
			{r.DecisionID, "ping ", "1", "deny"},
			{r.DecisionID + ".1", "tools/call danger", "2", "deny"},
		}
		if diff := cmp.Diff(wantRecs, got); diff != "" {
			t.Errorf("attempt %d: audit records (-want +got):\n%s", i, diff)
		}
		if recs[1].Reason != reasonBatchNeedsAlone || recs[1].GrantID != "" {
			t.Errorf("audit of the gated message: reason %q grant %q", recs[1].Reason, recs[1].GrantID)
		}
	}
	if len(c.approvals.consumed) != 0 || c.approvals.holds != 0 {
		t.Fatalf("a batch used a grant (%v) or was held (%d)", c.approvals.consumed, c.approvals.holds)
	}
	// The grant is still there for the call sent alone, once.
	r := c.a.Check(context.Background(), post("alice", call(2, "danger")))
	if r.Outcome != OutcomeAllow || r.Metadata.Grant != "grt_1" || c.approvals.consumed["grt_1"] != 1 {
		t.Fatalf("the call alone: outcome %s, grant %v, consumed %v", r.Outcome, r.Metadata.Grant, c.approvals.consumed)
	}
	// Grants are looked up for the (issuer, subject) pair, and never for a batch.
	if len(c.approvals.askedFor) != 1 || c.approvals.askedFor[0].Issuer != testIssuer || c.approvals.askedFor[0].Subject != "alice" {
		t.Errorf("grants asked for %+v", c.approvals.askedFor)
	}
}

func TestBatchRefusals(t *testing.T) {
	denied := "denied: tools/call nuke is denied"
	cases := []struct {
		name string
		body string
		want []idErr // nil: one error with a null id
	}{
		{"a denied call denies the batch", batch(ping, call(2, "nuke"), call("c", "read")),
			[]idErr{{"1", mcp.CodeForbidden, reasonBatchNotSent}, {"2", mcp.CodeForbidden, denied}, {`"c"`, mcp.CodeForbidden, reasonBatchNotSent}}},
		{"an approval-gated call is never held in a batch", batch(call(1, "read"), call(2, "danger")),
			[]idErr{{"1", mcp.CodeForbidden, reasonBatchNotSent}, {"2", mcp.CodeApprovalRequired, reasonBatchNeedsAlone}}},
		{"a denied and a gated call each say why", batch(call(1, "danger"), call(2, "nuke"), initialized),
			[]idErr{{"1", mcp.CodeApprovalRequired, reasonBatchNeedsAlone}, {"2", mcp.CodeForbidden, denied}}},
		{"a batch of one gated call", batch(call(7, "danger")),
			[]idErr{{"7", mcp.CodeApprovalRequired, reasonBatchNeedsAlone}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore(t)
			r := c.a.Check(context.Background(), post("alice", tc.body))
			if r.Outcome != OutcomeDeny || r.Status != 403 || r.Metadata != nil {
				t.Fatalf("outcome %s status %d metadata %v, want refused", r.Outcome, r.Status, r.Metadata)
			}
			if diff := cmp.Diff(tc.want, batchErrors(t, r.Body)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if c.approvals.holds != 0 {
				t.Error("a batch was held for approval")
			}
			// Every message is in the audit and in the decision log.
			n := strings.Count(tc.body, `"jsonrpc"`)
			if recs := c.audit.take(); len(recs) != n {
				t.Errorf("%d audit records for %d messages", len(recs), n)
			}
			if lines := strings.Count(c.log.String(), `"msg":"decision"`); lines != n {
				t.Errorf("%d decision log lines for %d messages:\n%s", lines, n, c.log)
			}
		})
	}
}

func TestBatchMaskedWithTwoProfilesIsRefused(t *testing.T) {
	c := newCore(t)
	c.policy.profile = map[string]string{"read": "strict"}
	r := c.a.Check(context.Background(), post("alice", batch(call(1, "read"), call(2, "other"))))
	if r.Outcome != OutcomeDeny {
		t.Fatalf("a batch masked with two profiles went through: %s", r.Outcome)
	}
	errs := batchErrors(t, r.Body)
	if len(errs) != 2 {
		t.Fatalf("errors %+v", errs)
	}
	for _, e := range errs {
		if !strings.Contains(e.Message, "different profiles") {
			t.Errorf("error %+v does not say why", e)
		}
	}
}

func TestBatchOfNotificationsRefusedWithNullID(t *testing.T) {
	c := newCore(t)
	r := c.a.Check(context.Background(), post("alice", batch(initialized, `{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`)))
	if r.Outcome != OutcomeDeny || r.Status != 403 {
		t.Fatalf("outcome %s status %d", r.Outcome, r.Status)
	}
	e := oneError(t, r.Body)
	if string(e.ID) != "null" || !strings.Contains(e.Error.Message, "message 1 (notifications/roots/list_changed)") {
		t.Errorf("body %s", r.Body)
	}
}

func TestBatchAllAllowedCarriesEveryMessage(t *testing.T) {
	c := newCore(t)
	body := batch(ping, call("b", "read"), initialized)
	r := c.a.Check(context.Background(), post("alice", body, "mcp-session-id", "sess-9"))
	if r.Outcome != OutcomeAllow {
		t.Fatalf("outcome %s: %s", r.Outcome, r.Body)
	}
	md := r.Metadata.Fields()
	want := map[string]any{
		"method": "ping", "batch": true,
		"methods": []any{"ping", "tools/call", "notifications/initialized"},
		"tools":   []any{"", "read", ""},
		"ids":     []any{"1", `"b"`, ""},
	}
	for k, v := range want {
		if diff := cmp.Diff(v, md[k]); diff != "" {
			t.Errorf("metadata %s (-want +got):\n%s", k, diff)
		}
	}
	// structpb must take the metadata (a []string would make it drop all).
	if resp := toCheckResponse(r); resp.GetDynamicMetadata() == nil || len(resp.GetDynamicMetadata().GetFields()["methods"].GetListValue().GetValues()) != 3 {
		t.Fatalf("dynamic metadata lost: %v", resp.GetDynamicMetadata())
	}
	recs := c.audit.take()
	var got []string
	for _, d := range recs {
		got = append(got, strings.Join([]string{d.DecisionID, d.Method, d.Tool, d.JSONRPCID, d.Outcome, d.SessionID}, "|"))
	}
	id := r.DecisionID
	wantRecs := []string{
		id + "|ping||1|allow|sess-9",
		id + ".1|tools/call|read|\"b\"|allow|sess-9",
		id + ".2|notifications/initialized|||allow|sess-9",
	}
	if diff := cmp.Diff(wantRecs, got); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	for _, m := range []string{`"method":"ping"`, `"tool":"read"`, `"method":"notifications/initialized"`} {
		if !strings.Contains(c.log.String(), m) {
			t.Errorf("decision log lacks %s:\n%s", m, c.log)
		}
	}
}

func TestSingleCallStillHeldAndGranted(t *testing.T) {
	c := newCore(t)
	r := c.a.Check(context.Background(), post("alice", call(3, "danger")))
	if r.Outcome != OutcomeApprovalRequired || c.approvals.holds != 1 {
		t.Fatalf("outcome %s holds %d, want held", r.Outcome, c.approvals.holds)
	}
	if e := oneError(t, r.Body); string(e.ID) != "3" {
		t.Errorf("pending answer id %s", e.ID)
	}
}
