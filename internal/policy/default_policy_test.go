package policy

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
	call := func(mutate func(*Input)) *Input {
		in := &Input{
			Principal: alice,
			Target:    TargetInput{Name: "jira", Resource: "https://airlock.example.com/mcp/jira"},
			MCP:       MessageInput{Method: "tools/call", Kind: "request", ID: json.RawMessage(`1`), Tool: "get_issue", ProtocolVersion: "2025-11-25"},
			Request:   RequestInput{Method: "POST", Path: "/mcp/jira"},
			Time:      now,
		}
		if mutate != nil {
			mutate(in)
		}
		return in
	}
	approval := &Approval{ApproverGroups: []string{"airlock-approvers"}, Threshold: 1, GrantDuration: 15 * time.Minute, ReasonRequired: true, BreakGlassGroups: []string{}}
	tests := []struct {
		name string
		in   *Input
		want Decision
	}{
		{
			name: "ordinary tool allowed",
			in:   call(nil),
			want: Decision{Outcome: "allow", Reason: `tool "get_issue" allowed on target "jira"`},
		},
		{
			name: "high-risk tool held",
			in:   call(func(in *Input) { in.MCP.Tool = "delete_issue" }),
			want: Decision{Outcome: "approval_required", Reason: `tool "delete_issue" on target "jira" requires approval (pattern "delete*" in rules["*"].tools.require_approval)`, Approval: approval},
		},
		{
			name: "grant lets it through",
			in: call(func(in *Input) {
				in.MCP.Tool = "delete_issue"
				in.Grants = []GrantInput{{ID: "g-7", Target: "jira", Tool: "delete_issue", Principal: "00u1abcd", Expiry: now.Add(time.Minute)}}
			}),
			want: Decision{Outcome: "allow", Grant: "g-7", Reason: `tool "delete_issue" on target "jira" allowed by grant "g-7"`},
		},
		{
			name: "another user's grant does not apply",
			in: call(func(in *Input) {
				in.MCP.Tool = "delete_issue"
				in.Grants = []GrantInput{{ID: "g-10", Target: "jira", Tool: "delete_issue", Principal: "00u9other", Expiry: now.Add(time.Minute)}}
			}),
			want: Decision{Outcome: "approval_required", Reason: `tool "delete_issue" on target "jira" requires approval (pattern "delete*" in rules["*"].tools.require_approval)`, Approval: approval},
		},
		{
			name: "no principal",
			in:   call(func(in *Input) { in.Principal = nil }),
			want: Decision{Outcome: "deny", Reason: "the request has no authenticated principal"},
		},
		{
			name: "initialize",
			in:   call(func(in *Input) { in.MCP.Method, in.MCP.Tool = "initialize", "" }),
			want: Decision{Outcome: "allow", Reason: `protocol method "initialize" on target "jira"`},
		},
		{
			name: "notification",
			in:   call(func(in *Input) { in.MCP = MessageInput{Method: "notifications/initialized", Kind: "notification"} }),
			want: Decision{Outcome: "allow", Reason: `protocol method "notifications/initialized" on target "jira"`},
		},
		{
			name: "client response",
			in:   call(func(in *Input) { in.MCP = MessageInput{Kind: "response", ID: json.RawMessage(`"srv-1"`)} }),
			want: Decision{Outcome: "allow", Reason: "client response to a server request"},
		},
		{
			name: "GET opens the server stream",
			in: call(func(in *Input) {
				in.MCP = MessageInput{}
				in.Request.Method = "GET"
			}),
			want: Decision{Outcome: "allow", Reason: `GET on the MCP endpoint of target "jira"`},
		},
		{
			name: "unknown method",
			in:   call(func(in *Input) { in.MCP.Method = "sampling/createMessage" }),
			want: Decision{Outcome: "deny", Reason: `method "sampling/createMessage" is not allowed through airlock (target "jira")`},
		},
		{
			name: "resource read",
			in:   call(func(in *Input) { in.MCP.Method, in.MCP.Tool, in.MCP.URI = "resources/read", "", "file:///docs/a.md" }),
			want: Decision{Outcome: "allow", Reason: `resource "file:///docs/a.md" allowed on target "jira"`},
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

// TestExampleQueries loads the shipped directory with each example's query,
// as an operator selecting it would.
func TestExampleQueries(t *testing.T) {
	in := &Input{
		Principal: &identity.Principal{Subject: "u", Groups: []string{"support"}},
		Target:    TargetInput{Name: "wiki"},
		MCP:       MessageInput{Method: "tools/call", Kind: "request", Tool: "update_page"},
		Request:   RequestInput{Method: "POST"},
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
	in := &Input{
		Principal: &identity.Principal{Subject: "u"},
		Target:    TargetInput{Name: "jira"},
		MCP:       MessageInput{Method: "tools/call", Kind: "request", Tool: "get_issue"},
	}
	d, err := e.Evaluate(context.Background(), in)
	if err == nil {
		t.Fatalf("got %+v, want an evaluation error", d)
	}
	if !strings.Contains(err.Error(), "glob.match") || !strings.Contains(err.Error(), filepath.Join(dir, "airlock", "decision.rego")+":") {
		t.Errorf("error %v, want a glob.match error located in decision.rego", err)
	}
}
