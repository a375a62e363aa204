package rego

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/policy"
)

func TestDecisionCacheEligibility(t *testing.T) {
	const head = "package airlock\n\n"
	cases := []struct {
		name   string
		rego   string
		query  string
		dir    string // instead of rego
		on     bool
		reason string
		reads  []string // top.field the key must cover
		unread []string // top.field the key must leave out
	}{
		{name: "shipped default policy", dir: shippedPolicies, on: true,
			reads:  []string{"principal.subject", "principal.groups", "mcp.tool", "target.name", "grants.id", "mcp.name", "mcp.name_normalized", "mcp.name_words", "mcp.name_suspicious"},
			unread: []string{"mcp.arguments", "mcp.id", "principal.claims", "request.headers"}},
		{name: "shipped business-hours example reads the clock", dir: shippedPolicies, query: "data.airlock.examples.business_hours.decision",
			reason: "input.time"},
		{name: "object.get keeps it cacheable", on: true, reads: []string{"mcp.tool"},
			rego: `decision := {"outcome": "allow", "reason": object.get(input, ["mcp", "tool"], "")}`},
		{name: "input.time", rego: `decision := {"outcome": "allow", "reason": sprintf("%v", [input.time.now])}`, reason: "reads input.time"},
		{name: "whole input", rego: "decision := {\"outcome\": \"allow\", \"reason\": sprintf(\"%v\", [input])}", reason: "whole input"},
		{name: "computed key", rego: "decision := {\"outcome\": \"allow\", \"reason\": r} if { some k; r := sprintf(\"%v\", [input[k]]) }", reason: "computed key"},
		{name: "clock built-in", rego: `decision := {"outcome": "allow", "reason": sprintf("%d", [time.now_ns()])}`, reason: "non-deterministic built-in time.now_ns"},
		{name: "input import", on: true, reads: []string{"principal.claims", "principal.user"},
			rego: "import input.principal as p\n\ndecision := {\"outcome\": \"allow\", \"reason\": p.subject}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir
			if dir == "" {
				dir = t.TempDir()
				write(t, dir, "p.rego", head+tc.rego+"\n")
			}
			e, err := Load(dir, tc.query)
			if err != nil {
				t.Fatal(err)
			}
			st := e.CacheStats()
			if st.Enabled != tc.on || !strings.Contains(st.Reason, tc.reason) {
				t.Fatalf("cache enabled=%v reason=%q; want enabled=%v reason containing %q", st.Enabled, st.Reason, tc.on, tc.reason)
			}
			for _, r := range tc.reads {
				top, field, _ := strings.Cut(r, ".")
				if !e.deps.reads(top, field) {
					t.Errorf("key does not cover input.%s (deps %+v)", r, e.deps)
				}
			}
			for _, r := range tc.unread {
				top, field, _ := strings.Cut(r, ".")
				if e.deps.reads(top, field) {
					t.Errorf("key covers input.%s, which the policy never reads", r)
				}
			}
		})
	}
}

// TestDecisionCacheIsExact checks that a cached engine decides exactly as
// an uncached one over many varied inputs, including inputs that differ
// only in fields the policy reads (tool, arguments, groups, grants) and in
// fields it does not (request headers, id).
func TestDecisionCacheIsExact(t *testing.T) {
	cached, err := Load(shippedPolicies, "")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Load(shippedPolicies, "")
	if err != nil {
		t.Fatal(err)
	}
	plain.cache = nil
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	now := time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC)
	for i := range 600 {
		sub := pick("alice", "bob")
		tool := pick("get_issue", "delete_issue", "drop_table", "search", "repoDelete", "DELETE_all", "d\u0435lete", "del\u200bete", "summarize")
		args := json.RawMessage(pick(`{"id":1}`, `{"id":2}`, ``))
		in := &policy.Input{
			Principal: &identity.Principal{Subject: sub, Groups: []string{pick("eng", "sre")}},
			Target:    policy.TargetInput{Name: pick("jira", "github")},
			MCP:       policy.MessageInput{Method: pick("tools/call", "tools/list", "prompts/get", "secrets/list", "completion/complete", "resources/read", "notifications/x"), Kind: "request", ID: json.RawMessage(fmt.Sprint(i)), Tool: tool, Prompt: pick(tool, ""), URI: pick("", "file:///x/"+tool), Arguments: args},
			Request:   policy.RequestInput{Method: "POST", Headers: map[string]string{"x-request-id": fmt.Sprint(i)}},
			Time:      now,
		}
		if rng.IntN(2) == 0 {
			g := policy.GrantInput{ID: "g" + fmt.Sprint(rng.IntN(3)), Target: in.Target.Name, Tool: pick("delete_issue", "drop_table"), Principal: pick("alice", "bob"), Expiry: now.Add(time.Hour)}
			if rng.IntN(2) == 0 {
				g.Arguments = json.RawMessage(`{"id":1}`)
			}
			in.Grants = []policy.GrantInput{g}
		}
		want, err1 := plain.Evaluate(context.Background(), in)
		got, err2 := cached.Evaluate(context.Background(), in)
		if err1 != nil || err2 != nil {
			t.Fatalf("errors: %v / %v", err1, err2)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("input %d: cached decision differs (-uncached +cached):\n%s", i, diff)
		}
	}
	st := cached.CacheStats()
	if st.Hits == 0 || st.Misses == 0 {
		t.Errorf("the cache was not exercised: %+v", st)
	}
}

// TestDecisionCacheKeysNameFacts: a policy that reads only the derived
// name fields (not mcp.tool, mcp.uri or mcp.method) is still keyed on the
// name they are derived from, and on whether it is a URI (whose words
// include the percent-decoded ones).
func TestDecisionCacheKeysNameFacts(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p.rego", `package airlock

decision := {"outcome": "allow", "reason": sprintf("%s|%s|%s|%s", [input.mcp.name, input.mcp.name_normalized, concat(",", input.mcp.name_words), input.mcp.name_suspicious])}
`)
	e, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if st := e.CacheStats(); !st.Enabled {
		t.Fatalf("cache off: %s", st.Reason)
	}
	for _, f := range []string{"tool", "uri", "prompt", "method"} {
		if e.deps.reads("mcp", f) {
			t.Fatalf("the test policy reads mcp.%s; it must read only the name facts", f)
		}
	}
	inputs := []struct {
		m    policy.MessageInput
		want string
	}{
		{policy.MessageInput{Method: "tools/call", Tool: "get_issue"}, "get_issue|get_issue|get,issue|"},
		{policy.MessageInput{Method: "tools/call", Tool: "repoDelete"}, "repoDelete|repodelete|repo,delete|"},
		{policy.MessageInput{Method: "tools/call", Tool: "d\u0435lete"}, "d\u0435lete|d\u0435lete|d\u0435lete|mixed scripts Latin+Cyrillic"},
		{policy.MessageInput{Method: "tools/call", Tool: "a%64"}, "a%64|a%64|a,64|"},
		{policy.MessageInput{Method: "resources/read", URI: "a%64"}, "a%64|a%64|a,64,ad|"},
		{policy.MessageInput{Method: "prompts/get", Prompt: "a%64", Tool: "x"}, "a%64|a%64|a,64|"},
		{policy.MessageInput{Method: "completion/complete", URI: "a%64"}, "a%64|a%64|a,64,ad|"},
		{policy.MessageInput{Method: "tools/call", Tool: "get_issue"}, "get_issue|get_issue|get,issue|"},
	}
	for round := range 2 { // the second round is served from the cache
		for _, tc := range inputs {
			d, err := e.Evaluate(context.Background(), &policy.Input{MCP: tc.m})
			if err != nil {
				t.Fatal(err)
			}
			if d.Reason != tc.want {
				t.Errorf("round %d, %+v: reason %q, want %q", round, tc.m, d.Reason, tc.want)
			}
		}
	}
	if st := e.CacheStats(); st.Hits < uint64(len(inputs)) {
		t.Errorf("the cache was not used: %+v", st)
	}
}

func TestDecisionCacheBounded(t *testing.T) {
	c := newDecisionCache(64)
	for i := range 1000 {
		var k [32]byte
		k[0], k[1], k[2] = byte(i), byte(i>>8), 7
		c.put(k, policy.Decision{Outcome: policy.OutcomeAllow})
	}
	n := 0
	for i := range c.shards {
		n += len(c.shards[i].m)
	}
	if n > 64 {
		t.Fatalf("cache holds %d decisions, bound 64", n)
	}
}
