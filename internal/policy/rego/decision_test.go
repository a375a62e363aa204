package rego

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/airlock-mcp/airlock/internal/policy"
)

// FuzzDecodeDecision checks that any value a policy can produce either
// decodes into a decision that keeps the invariants callers rely on, or is
// an error; never a panic.
func FuzzDecodeDecision(f *testing.F) {
	for _, s := range []string{
		`{"outcome":"allow"}`,
		`{"outcome":"deny","reason":"no"}`,
		`{"outcome":"allow","grant":"g","masking_profile":"p","record":false}`,
		`{"outcome":"approval_required","approval":{"approver_groups":["a"],"grant_duration":"15m","threshold":2,"single_use":false,"reason_required":true,"break_glass_groups":["b"]}}`,
		`{"outcome":"approval_required","approval":{"approver_groups":["a"],"single_use":true}}`,
		`{"outcome":"approval_required","approval":{"approver_groups":["a"],"grant_duration":"0s"}}`,
		`{"outcome":"approval_required","approval":{"approver_groups":[],"threshold":1e30}}`,
		`{"outcome":"deny","grant":"g"}`,
		`{"outcome":1}`, `[]`, `null`, `"allow"`, `{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var x any
		if err := util.UnmarshalJSON([]byte(s), &x); err != nil {
			return
		}
		v, err := ast.InterfaceToValue(x)
		if err != nil {
			return
		}
		d, err := decodeDecision(v)
		if err != nil {
			return
		}
		if d.Reason == "" {
			t.Errorf("%s: decoded with an empty reason", s)
		}
		switch d.Outcome {
		case policy.OutcomeAllow, policy.OutcomeDeny:
			if d.Approval != nil {
				t.Errorf("%s: %s with approval details", s, d.Outcome)
			}
		case policy.OutcomeApprovalRequired:
			a := d.Approval
			if a == nil || len(a.ApproverGroups) == 0 || a.Threshold < 1 || a.GrantDuration < 0 || (a.GrantDuration == 0 && !a.SingleUse) {
				t.Errorf("%s: approval %+v breaks an invariant", s, a)
			}
		default:
			t.Errorf("%s: decoded outcome %q", s, d.Outcome)
		}
		if d.Grant != "" && d.Outcome != policy.OutcomeAllow {
			t.Errorf("%s: grant on %s", s, d.Outcome)
		}
	})
}

// passThrough is a policy whose decision is whatever the call's arguments
// carry under "decision", so that any decision value can be tested.
const passThrough = `package airlock

decision := input.mcp.arguments.decision
`

func TestEvaluateDecodesDecision(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "airlock/decision.rego", passThrough)
	e := mustLoad(t, dir)
	tests := []struct {
		name     string
		decision string // JSON
		want     policy.Decision
	}{
		{
			name:     "minimal allow",
			decision: `{"outcome": "allow"}`,
			want:     policy.Decision{Outcome: "allow", Reason: "allowed by policy", Record: true},
		},
		{
			name:     "allow with grant, profile and no recording",
			decision: `{"outcome": "allow", "reason": "granted", "grant": "g-1", "masking_profile": "strict", "record": false}`,
			want:     policy.Decision{Outcome: "allow", Reason: "granted", Grant: "g-1", MaskingProfile: "strict", Record: false},
		},
		{
			name:     "deny without reason gets one",
			decision: `{"outcome": "deny"}`,
			want:     policy.Decision{Outcome: "deny", Reason: "denied by policy", Record: true},
		},
		{
			name:     "deny ignores approval details",
			decision: `{"outcome": "deny", "reason": "no", "approval": {"approver_groups": ["x"]}}`,
			want:     policy.Decision{Outcome: "deny", Reason: "no", Record: true},
		},
		{
			name: "approval with every field",
			decision: `{"outcome": "approval_required", "reason": "risky", "masking_profile": "default",
				"approval": {"approver_groups": ["sec", "ops"], "threshold": 2, "grant_duration": "1h30m",
				"single_use": false, "reason_required": true, "break_glass_groups": ["oncall"]}}`,
			want: policy.Decision{Outcome: "approval_required", Reason: "risky", MaskingProfile: "default", Record: true,
				Approval: &policy.Approval{ApproverGroups: []string{"sec", "ops"}, Threshold: 2, GrantDuration: 90 * time.Minute,
					ReasonRequired: true, BreakGlassGroups: []string{"oncall"}}},
		},
		{
			name:     "approval defaults: threshold 1, zero duration is single use",
			decision: `{"outcome": "approval_required", "approval": {"approver_groups": ["sec"], "grant_duration": "0s"}}`,
			want: policy.Decision{Outcome: "approval_required", Reason: "approval required by policy", Record: true,
				Approval: &policy.Approval{ApproverGroups: []string{"sec"}, Threshold: 1, SingleUse: true}},
		},
		{
			name:     "single use without duration",
			decision: `{"outcome": "approval_required", "approval": {"approver_groups": ["sec"], "single_use": true}}`,
			want: policy.Decision{Outcome: "approval_required", Reason: "approval required by policy", Record: true,
				Approval: &policy.Approval{ApproverGroups: []string{"sec"}, Threshold: 1, SingleUse: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.Evaluate(context.Background(), decisionInput(tt.decision))
			if err != nil {
				t.Fatal(err)
			}
			tt.want.PolicyVersion = e.Version()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEvaluateApproverGroupsFromSet(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p.rego", `package airlock

decision := {"outcome": "approval_required", "approval": {"approver_groups": {"b", "a"}, "grant_duration": "5m"}}
`)
	d, err := mustLoad(t, dir).Evaluate(context.Background(), &policy.Input{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, d.Approval.ApproverGroups); diff != "" {
		t.Errorf("approver groups (-want +got):\n%s", diff)
	}
}

func TestEvaluateRejectsMalformedDecisions(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "airlock/decision.rego", passThrough)
	e := mustLoad(t, dir)
	tests := []struct {
		name     string
		decision string
		want     string
	}{
		{"not an object", `"allow"`, "decision is string, want an object"},
		{"array", `["allow"]`, "decision is array, want an object"},
		{"no outcome", `{"reason": "x"}`, "decision has no outcome"},
		{"unknown outcome", `{"outcome": "maybe"}`, `unknown outcome "maybe"`},
		{"outcome in capitals", `{"outcome": "ALLOW"}`, `unknown outcome "ALLOW"`},
		{"outcome not a string", `{"outcome": true}`, "decision.outcome is boolean, want a string"},
		{"reason not a string", `{"outcome": "deny", "reason": 3}`, "decision.reason is number, want a string"},
		{"record not a boolean", `{"outcome": "allow", "record": "yes"}`, "decision.record is string, want a boolean"},
		{"grant not a string", `{"outcome": "allow", "grant": 1}`, "decision.grant is number"},
		{"masking profile not a string", `{"outcome": "allow", "masking_profile": null}`, "decision.masking_profile is null"},
		{"unknown field", `{"outcome": "allow", "masking_profiel": "x"}`, `unknown field "masking_profiel"`},
		{"grant on a deny", `{"outcome": "deny", "grant": "g1"}`, `names grant "g1" but its outcome is deny`},
		{"approval without details", `{"outcome": "approval_required", "reason": "x"}`, "has no approval object"},
		{"approval not an object", `{"outcome": "approval_required", "approval": true}`, "decision.approval is boolean"},
		{"approval without approvers", `{"outcome": "approval_required", "approval": {"grant_duration": "5m"}}`, "approver_groups is empty"},
		{"approval with empty approvers", `{"outcome": "approval_required", "approval": {"approver_groups": [], "grant_duration": "5m"}}`, "approver_groups is empty"},
		{"approver not a string", `{"outcome": "approval_required", "approval": {"approver_groups": ["a", 1], "grant_duration": "5m"}}`, "approval.approver_groups[1] is number"},
		{"approvers not a list", `{"outcome": "approval_required", "approval": {"approver_groups": "a", "grant_duration": "5m"}}`, "want an array of strings"},
		{"threshold zero", `{"outcome": "approval_required", "approval": {"approver_groups": ["a"], "threshold": 0, "grant_duration": "5m"}}`, "threshold is 0, want at least 1"},
		{"threshold fraction", `{"outcome": "approval_required", "approval": {"approver_groups": ["a"], "threshold": 1.5, "grant_duration": "5m"}}`, "threshold is 1.5, want an integer"},
		{"duration not a duration", `{"outcome": "approval_required", "approval": {"approver_groups": ["a"], "grant_duration": "soon"}}`, `grant_duration "soon"`},
		{"duration a number", `{"outcome": "approval_required", "approval": {"approver_groups": ["a"], "grant_duration": 900}}`, "grant_duration is number"},
		{"negative duration", `{"outcome": "approval_required", "approval": {"approver_groups": ["a"], "grant_duration": "-5m"}}`, "is negative"},
		{"neither duration nor single use", `{"outcome": "approval_required", "approval": {"approver_groups": ["a"]}}`, "neither grant_duration nor single_use"},
		{"unknown approval field", `{"outcome": "approval_required", "approval": {"approver_groups": ["a"], "grant_duration": "5m", "approvers": ["b"]}}`, `approval has unknown field "approvers"`},
		{"reason_required not a boolean", `{"outcome": "approval_required", "approval": {"approver_groups": ["a"], "grant_duration": "5m", "reason_required": "yes"}}`, "reason_required is string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Evaluate(context.Background(), decisionInput(tt.decision))
			if err == nil {
				t.Fatalf("got %+v, want an error", d)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not contain %q:\n%v", tt.want, err)
			}
			if d.Outcome != "" {
				t.Errorf("error came with outcome %q; callers must not be tempted to use it", d.Outcome)
			}
		})
	}
}

// decisionInput carries decision (JSON) to the passThrough policy.
func decisionInput(decision string) *policy.Input {
	return &policy.Input{MCP: policy.MessageInput{
		Method:    "tools/call",
		Kind:      "request",
		Tool:      "t",
		Arguments: json.RawMessage(`{"decision": ` + decision + `}`),
	}}
}
