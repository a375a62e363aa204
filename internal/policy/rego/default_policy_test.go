package rego

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// TestDefaultPolicy evaluates the shipped policies/ through the engine with
// inputs built in Go, so that the Go input schema and the Rego agree.
func TestDefaultPolicy(t *testing.T) {
	e, err := Load(shippedPolicies, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC)
	alice := &identity.Principal{Subject: "00u1abcd", Groups: []string{"eng"}}
	call := func(mutate func(*policy.Input)) *policy.Input {
		in := &policy.Input{
			Principal: alice,
			Target:    policy.TargetInput{Name: "jira", Resource: "https://airlock.example.com/mcp/jira"},
			MCP:       policy.MessageInput{Method: "tools/call", Kind: "request", ID: json.RawMessage(`1`), Tool: "get_issue", ProtocolVersion: "2025-11-25"},
			Request:   policy.RequestInput{Method: "POST", Path: "/mcp/jira"},
			Time:      now,
		}
		if mutate != nil {
			mutate(in)
		}
		return in
	}
	// Issue 15: the shipped default is this exact call, once (it was the
	// tool with any arguments for 15m, wider than the approver was shown).
	approval := &policy.Approval{ApproverGroups: []string{"airlock-approvers"}, Threshold: 1, SingleUse: true, PinArguments: true, ReasonRequired: true, BreakGlassGroups: []string{}}
	tests := []struct {
		name string
		in   *policy.Input
		want policy.Decision
	}{
		{
			name: "ordinary tool allowed",
			in:   call(nil),
			want: policy.Decision{Outcome: "allow", Reason: `tool "get_issue" allowed on target "jira"`},
		},
		{
			name: "the quick start's server-everything: its long-running operation is held",
			in: call(func(in *policy.Input) {
				in.Target = policy.TargetInput{Name: "everything", Resource: "http://127.0.0.1:10000/mcp/everything"}
				in.MCP.Tool = "trigger-long-running-operation"
			}),
			want: policy.Decision{Outcome: "approval_required", Reason: `tool "trigger-long-running-operation" on target "everything" requires approval (pattern "trigger-long-running-operation" in rules["everything"].tools.require_approval)`, Approval: approval},
		},
		{
			name: "the quick start's server-everything: other tools pass",
			in: call(func(in *policy.Input) {
				in.Target = policy.TargetInput{Name: "everything", Resource: "http://127.0.0.1:10000/mcp/everything"}
				in.MCP.Tool = "echo"
			}),
			want: policy.Decision{Outcome: "allow", Reason: `tool "echo" allowed on target "everything"`},
		},
		{
			name: "high-risk tool held",
			in:   call(func(in *policy.Input) { in.MCP.Tool = "delete_issue" }),
			want: policy.Decision{Outcome: "approval_required", Reason: `tool "delete_issue" on target "jira" requires approval (pattern "delete*" in rules["*"].tools.require_approval)`, Approval: approval},
		},
		{
			name: "grant lets it through",
			in: call(func(in *policy.Input) {
				in.MCP.Tool = "delete_issue"
				in.Grants = []policy.GrantInput{{ID: "g-7", Target: "jira", Tool: "delete_issue", Principal: "00u1abcd", Expiry: now.Add(time.Minute)}}
			}),
			want: policy.Decision{Outcome: "allow", Grant: "g-7", Reason: `tool "delete_issue" on target "jira" allowed by grant "g-7"`},
		},
		{
			name: "another user's grant does not apply",
			in: call(func(in *policy.Input) {
				in.MCP.Tool = "delete_issue"
				in.Grants = []policy.GrantInput{{ID: "g-10", Target: "jira", Tool: "delete_issue", Principal: "00u9other", Expiry: now.Add(time.Minute)}}
			}),
			want: policy.Decision{Outcome: "approval_required", Reason: `tool "delete_issue" on target "jira" requires approval (pattern "delete*" in rules["*"].tools.require_approval)`, Approval: approval},
		},
		{
			name: "no principal",
			in:   call(func(in *policy.Input) { in.Principal = nil }),
			want: policy.Decision{Outcome: "deny", Reason: "the request has no authenticated principal"},
		},
		{
			name: "initialize",
			in:   call(func(in *policy.Input) { in.MCP.Method, in.MCP.Tool = "initialize", "" }),
			want: policy.Decision{Outcome: "allow", Reason: `protocol method "initialize" on target "jira"`},
		},
		{
			name: "notification",
			in: call(func(in *policy.Input) {
				in.MCP = policy.MessageInput{Method: "notifications/initialized", Kind: "notification"}
			}),
			want: policy.Decision{Outcome: "allow", Reason: `protocol method "notifications/initialized" on target "jira"`},
		},
		{
			name: "client response",
			in:   call(func(in *policy.Input) { in.MCP = policy.MessageInput{Kind: "response", ID: json.RawMessage(`"srv-1"`)} }),
			want: policy.Decision{Outcome: "allow", Reason: "client response to a server request"},
		},
		{
			name: "GET opens the server stream",
			in: call(func(in *policy.Input) {
				in.MCP = policy.MessageInput{}
				in.Request.Method = "GET"
			}),
			want: policy.Decision{Outcome: "allow", Reason: `GET on the MCP endpoint of target "jira"`},
		},
		{
			name: "unknown method",
			in:   call(func(in *policy.Input) { in.MCP.Method = "sampling/createMessage" }),
			want: policy.Decision{Outcome: "deny", Reason: `method "sampling/createMessage" is not allowed through airlock (target "jira")`},
		},
		{
			name: "resource read",
			in: call(func(in *policy.Input) {
				in.MCP.Method, in.MCP.Tool, in.MCP.URI = "resources/read", "", "file:///docs/a.md"
			}),
			want: policy.Decision{Outcome: "allow", Reason: `resource "file:///docs/a.md" allowed on target "jira"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.Evaluate(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.MaskingProfile = "default"
			tt.want.Record = true
			tt.want.PolicyVersion = e.Version()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDefaultPolicyNames runs names in every style through the input
// builder and the shipped policy and data.yaml, as the gateway does.
func TestDefaultPolicyNames(t *testing.T) {
	e, err := Load(shippedPolicies, "")
	if err != nil {
		t.Fatal(err)
	}
	alice := &identity.Principal{Subject: "00u1abcd", Groups: []string{"eng"}}
	eval := func(m policy.MessageInput) policy.Decision {
		t.Helper()
		m.Kind = "request"
		d, err := e.Evaluate(context.Background(), &policy.Input{Principal: alice, Target: policy.TargetInput{Name: "jira"}, MCP: m, Request: policy.RequestInput{Method: "POST"}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	held := []string{
		"delete_all", "DELETE_all", "deleteAll", "DeleteAll", "removeUser", "repoDelete",
		"repo-delete", "repo.delete", "repo/delete", "repo:delete", "ＤＥＬＥＴＥ_all", "ｄelete",
		"HTTPDelete", "𝐝𝐞𝐥𝐞𝐭𝐞_all", "dropTable", "DROP TABLE", "runShellCommand", "execSQL",
		"sendPayment", "send_payment", "force-push", "killProcess", "RevokeToken", "factoryReset",
		"deleteall", "deleted_items_count", // caught by the shipped "delete*" glob, not by the words
	}
	for _, name := range held {
		if d := eval(policy.MessageInput{Method: "tools/call", Tool: name}); d.Outcome != policy.OutcomeApprovalRequired {
			t.Errorf("tool %q: %s (%s), want approval_required", name, d.Outcome, d.Reason)
		}
	}
	for _, name := range []string{"get_issue", "listRuns", "search", "send_email", "getFormatter", "create_issue"} {
		if d := eval(policy.MessageInput{Method: "tools/call", Tool: name}); d.Outcome != policy.OutcomeAllow {
			t.Errorf("tool %q: %s (%s), want allow", name, d.Outcome, d.Reason)
		}
	}
	reasons := []struct {
		m    policy.MessageInput
		want policy.Decision
	}{
		{policy.MessageInput{Method: "tools/call", Tool: "repoDelete"},
			policy.Decision{Outcome: policy.OutcomeApprovalRequired, Reason: `tool "repoDelete" on target "jira" requires approval ("delete" is in rules["*"].tools.destructive_verbs)`}},
		{policy.MessageInput{Method: "tools/call", Tool: "DELETE_all"},
			policy.Decision{Outcome: policy.OutcomeApprovalRequired, Reason: `tool "DELETE_all" on target "jira" requires approval (pattern "delete*" in rules["*"].tools.require_approval)`}},
		{policy.MessageInput{Method: "tools/call", Tool: "d\u0435lete_all"},
			policy.Decision{Outcome: policy.OutcomeDeny, Reason: "tool \"d\u0435lete_all\" on target \"jira\" is denied because of its name: mixed scripts Latin+Cyrillic"}},
		{policy.MessageInput{Method: "tools/call", Tool: "get\u200b_issue"},
			policy.Decision{Outcome: policy.OutcomeDeny, Reason: `tool "get\u200b_issue" on target "jira" is denied because of its name: zero-width character U+200B`}},
		{policy.MessageInput{Method: "tools/call", Tool: "get_issue\u202e"},
			policy.Decision{Outcome: policy.OutcomeDeny, Reason: `tool "get_issue\u202e" on target "jira" is denied because of its name: bidi control U+202E`}},
		{policy.MessageInput{Method: "tools/call", Tool: "get_issue\n"},
			policy.Decision{Outcome: policy.OutcomeDeny, Reason: `tool "get_issue\n" on target "jira" is denied because of its name: control character U+000A`}},
		{policy.MessageInput{Method: "resources/read", URI: "file:///docs/a%E2%80%8Eb"},
			policy.Decision{Outcome: policy.OutcomeDeny, Reason: `resource "file:///docs/a%E2%80%8Eb" on target "jira" is denied because of its name: bidi control U+200E (percent-encoded)`}},
		{policy.MessageInput{Method: "prompts/get", Prompt: "summ\u00adary"},
			policy.Decision{Outcome: policy.OutcomeDeny, Reason: `prompt "summ\u00adary" on target "jira" is denied because of its name: invisible character U+00AD`}},
		{policy.MessageInput{Method: "notifications/tools/call"},
			policy.Decision{Outcome: policy.OutcomeDeny, Reason: `method "notifications/tools/call" is not allowed through airlock (target "jira")`}},
		{policy.MessageInput{Method: "notifications/cancelled"},
			policy.Decision{Outcome: policy.OutcomeAllow, Reason: `protocol method "notifications/cancelled" on target "jira"`}},
		{policy.MessageInput{Method: "completion/complete", Prompt: "triage"},
			policy.Decision{Outcome: policy.OutcomeAllow, Reason: `prompt "triage" allowed on target "jira"`}},
		{policy.MessageInput{Method: "completion/complete", Prompt: "tri\u200bage"},
			policy.Decision{Outcome: policy.OutcomeDeny, Reason: `prompt "tri\u200bage" on target "jira" is denied because of its name: zero-width character U+200B`}},
		{policy.MessageInput{Method: "completion/complete"},
			policy.Decision{Outcome: policy.OutcomeDeny, Reason: `completion/complete on target "jira" names no prompt or resource (params.ref)`}},
	}
	for _, tc := range reasons {
		got := eval(tc.m)
		tc.want.MaskingProfile, tc.want.Record, tc.want.PolicyVersion = "default", true, e.Version()
		if tc.want.Outcome == policy.OutcomeApprovalRequired {
			tc.want.Approval = got.Approval
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%+v (-want +got):\n%s", tc.m, diff)
		}
	}
}

// TestDefaultPolicyCompletionFollowsPrompt: completion/complete of a denied
// prompt is denied, and of a resource that needs approval is denied too.
func TestDefaultPolicyCompletionFollowsPrompt(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(shippedPolicies, "airlock", "decision.rego"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write(t, dir, "airlock/decision.rego", string(src))
	write(t, dir, "data.yaml", `airlock:
  rules:
    "*":
      tools: {allow: ["*"]}
      prompts: {allow: ["*"], deny: ["admin_*"]}
      resources: {allow: ["*"], require_approval: ["db://payroll/*"]}
      approval: {approver_groups: [approvers]}
`)
	e := mustLoad(t, dir)
	tests := []struct {
		m       policy.MessageInput
		outcome string
		reason  string
	}{
		{policy.MessageInput{Method: "completion/complete", Prompt: "admin_console"}, policy.OutcomeDeny,
			`prompt "admin_console" on target "t" is denied by pattern "admin_*" in rules["*"].prompts.deny`},
		{policy.MessageInput{Method: "completion/complete", Prompt: "ADMIN_console"}, policy.OutcomeDeny,
			`prompt "ADMIN_console" on target "t" is denied by pattern "admin_*" in rules["*"].prompts.deny`},
		{policy.MessageInput{Method: "prompts/get", Prompt: "admin_console"}, policy.OutcomeDeny,
			`prompt "admin_console" on target "t" is denied by pattern "admin_*" in rules["*"].prompts.deny`},
		{policy.MessageInput{Method: "completion/complete", URI: "db://payroll/{year}"}, policy.OutcomeDeny,
			`completion/complete for resource is denied: resource "db://payroll/{year}" on target "t" requires approval (pattern "db://payroll/*" in rules["*"].resources.require_approval)`},
		{policy.MessageInput{Method: "resources/read", URI: "db://payroll/2026"}, policy.OutcomeApprovalRequired,
			`resource "db://payroll/2026" on target "t" requires approval (pattern "db://payroll/*" in rules["*"].resources.require_approval)`},
		{policy.MessageInput{Method: "completion/complete", Prompt: "summary"}, policy.OutcomeAllow, `prompt "summary" allowed on target "t"`},
	}
	for _, tc := range tests {
		tc.m.Kind = "request"
		d, err := e.Evaluate(context.Background(), &policy.Input{Principal: &identity.Principal{Subject: "u"}, Target: policy.TargetInput{Name: "t"}, MCP: tc.m})
		if err != nil {
			t.Fatal(err)
		}
		if d.Outcome != tc.outcome || d.Reason != tc.reason {
			t.Errorf("%+v: %s %q, want %s %q", tc.m, d.Outcome, d.Reason, tc.outcome, tc.reason)
		}
	}
}

// TestExampleQueries loads the shipped directory with each example's query,
// as an operator selecting it would.
func TestExampleQueries(t *testing.T) {
	in := &policy.Input{
		Principal: &identity.Principal{Subject: "u", Groups: []string{"support"}},
		Target:    policy.TargetInput{Name: "wiki"},
		MCP:       policy.MessageInput{Method: "tools/call", Kind: "request", Tool: "update_page"},
		Request:   policy.RequestInput{Method: "POST"},
		Time:      time.Date(2026, 1, 10, 23, 0, 0, 0, time.UTC), // a Saturday night
	}
	tests := map[string]string{
		"data.airlock.examples.readonly.decision":       "deny",
		"data.airlock.examples.business_hours.decision": "approval_required",
		"data.airlock.examples.group_scoped.decision":   "deny",
		"data.airlock.decision":                         "allow",
	}
	for query, want := range tests {
		e, err := Load(shippedPolicies, query)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		d, err := e.Evaluate(context.Background(), in)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		if d.Outcome != want {
			t.Errorf("%s: outcome %s (%s), want %s", query, d.Outcome, d.Reason, want)
		}
	}
}

// TestDefaultPolicyBadPatternFailsClosed: a glob that does not compile in
// data.yaml makes evaluation an error (the caller denies), not a rule that
// silently never matches.
func TestDefaultPolicyBadPatternFailsClosed(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(shippedPolicies, "airlock", "decision.rego"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write(t, dir, "airlock/decision.rego", string(src))
	write(t, dir, "data.yaml", "airlock:\n  rules:\n    \"*\":\n      tools:\n        allow: [\"*\"]\n        deny: [\"[unclosed\"]\n")
	e := mustLoad(t, dir)
	in := &policy.Input{
		Principal: &identity.Principal{Subject: "u"},
		Target:    policy.TargetInput{Name: "jira"},
		MCP:       policy.MessageInput{Method: "tools/call", Kind: "request", Tool: "get_issue"},
	}
	d, err := e.Evaluate(context.Background(), in)
	if err == nil {
		t.Fatalf("got %+v, want an evaluation error", d)
	}
	if !strings.Contains(err.Error(), "glob.match") || !strings.Contains(err.Error(), filepath.Join(dir, "airlock", "decision.rego")+":") {
		t.Errorf("error %v, want a glob.match error located in decision.rego", err)
	}
}
