package rego

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// sampleInput is a realistic tools/call as the gateway builds it.
func sampleInput(now time.Time) *policy.Input {
	return &policy.Input{
		Principal: &identity.Principal{
			Issuer:   "https://example.okta.com/oauth2/default",
			Subject:  "00u1abcd",
			User:     "alice@example.com",
			ClientID: "0oa-agent",
			Scopes:   []string{"mcp:tools", "openid"},
			Groups:   []string{"eng", "airlock-users"},
			Audience: []string{"https://airlock.example.com/mcp/jira"},
			Expiry:   now.Add(time.Hour),
			TokenID:  "jti-123",
			Claims: map[string]any{
				"sub": "00u1abcd", "cid": "0oa-agent", "ver": json.Number("1"),
				"groups": []any{"eng", "airlock-users"}, "amr": []any{"pwd", "mfa"},
			},
		},
		Target: policy.TargetInput{Name: "jira", Resource: "https://airlock.example.com/mcp/jira", ScopesRequired: []string{"mcp:tools"}},
		MCP: policy.MessageInput{
			Method:          "tools/call",
			Kind:            "request",
			ID:              json.RawMessage(`42`),
			Tool:            "delete_issue",
			Arguments:       json.RawMessage(`{"key":"PROJ-123","cascade":true,"reason":"duplicate of PROJ-99","labels":["dup","cleanup"],"n":1.5}`),
			ProtocolVersion: "2025-11-25",
			SessionID:       "3f6c0a9e-5b7d-4c1e-9a2b-8d7e6f5a4b3c",
		},
		Request: policy.RequestInput{
			Method: "POST",
			Path:   "/mcp/jira",
			Host:   "airlock.example.com",
			Headers: map[string]string{
				"content-type":         "application/json",
				"accept":               "application/json, text/event-stream",
				"mcp-protocol-version": "2025-11-25",
				"mcp-session-id":       "3f6c0a9e-5b7d-4c1e-9a2b-8d7e6f5a4b3c",
				"user-agent":           "agent/1.0",
			},
		},
		Grants: []policy.GrantInput{
			{ID: "g-old", Target: "jira", Tool: "delete_issue", Principal: "00u1abcd", Expiry: now.Add(-time.Minute)},
			{ID: "g-other", Target: "jira", Tool: "delete_project", Principal: "00u1abcd", Expiry: now.Add(time.Hour)},
			{ID: "g-1", Target: "jira", Tool: "delete_issue", Principal: "00u1abcd", Expiry: now.Add(10 * time.Minute),
				Arguments: json.RawMessage(`{"labels":["dup","cleanup"],"n":1.5,"key":"PROJ-123","reason":"duplicate of PROJ-99","cascade":true}`)},
		},
		Time: now,
	}
}

// jsonInput is the input document written the slow way: a JSON-shaped Go
// map, as rego.EvalInput would see it. It is the schema of
// policies/README.md in Go, kept independent of InputValue.
func jsonInput(in *policy.Input, now time.Time) map[string]any {
	if !in.Time.IsZero() {
		now = in.Time
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	ns := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixNano()
	}
	raw := func(r json.RawMessage) any {
		if len(r) == 0 {
			return nil
		}
		return r
	}
	strs := func(ss []string) []string {
		if ss == nil {
			return []string{}
		}
		return ss
	}
	var principal any
	if p := in.Principal; p != nil {
		claims := p.Claims
		if claims == nil {
			claims = map[string]any{}
		}
		principal = map[string]any{
			"issuer": p.Issuer, "subject": p.Subject, "user": p.User, "client_id": p.ClientID,
			"scopes": strs(p.Scopes), "groups": strs(p.Groups), "audience": strs(p.Audience),
			"expiry": ts(p.Expiry), "token_id": p.TokenID, "claims": claims,
		}
	}
	grants := []any{}
	for _, g := range in.Grants {
		grants = append(grants, map[string]any{
			"id": g.ID, "target": g.Target, "tool": g.Tool, "resource": g.Resource,
			"arguments": raw(g.Arguments), "single_use": g.SingleUse,
			"expiry": ts(g.Expiry), "expiry_ns": ns(g.Expiry), "principal": g.Principal,
		})
	}
	headers := in.Request.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	name, uri := in.MCP.ItemName()
	f := policy.Facts(name, uri)
	return map[string]any{
		"principal": principal,
		"target": map[string]any{
			"name": in.Target.Name, "resource": in.Target.Resource,
			"scopes_required": strs(in.Target.ScopesRequired),
		},
		"mcp": map[string]any{
			"method": in.MCP.Method, "kind": in.MCP.Kind, "id": raw(in.MCP.ID),
			"tool": in.MCP.Tool, "prompt": in.MCP.Prompt, "uri": in.MCP.URI,
			"arguments": raw(in.MCP.Arguments), "protocol_version": in.MCP.ProtocolVersion,
			"session_id": in.MCP.SessionID, "batch": in.MCP.Batch,
			"name": name, "name_normalized": f.Normalized, "name_words": f.Words,
			"name_suspicious": f.Suspicious,
		},
		"request": map[string]any{
			"method": in.Request.Method, "path": in.Request.Path, "host": in.Request.Host,
			"headers": headers,
		},
		"grants": grants,
		"time":   map[string]any{"now": ts(now), "unix_ns": ns(now)},
	}
}

// viaJSON converts x to an AST value by a JSON round trip.
func viaJSON(t testing.TB, x any) ast.Value {
	t.Helper()
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := util.UnmarshalJSON(b, &v); err != nil {
		t.Fatal(err)
	}
	av, err := ast.InterfaceToValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return av
}

func TestInputValueMatchesJSONSchema(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	tests := map[string]*policy.Input{
		"full tools/call": sampleInput(now),
		"empty":           {},
		"no principal, GET stream": {
			Request: policy.RequestInput{Method: "GET", Path: "/mcp/jira"},
			MCP:     policy.MessageInput{ProtocolVersion: "2025-06-18", SessionID: "s"},
		},
		"resource read with string id": {
			Principal: &identity.Principal{Subject: "u"},
			MCP:       policy.MessageInput{Method: "resources/read", Kind: "request", ID: json.RawMessage(`"abc"`), URI: "file:///x"},
		},
		"batch notification with big number": {
			MCP: policy.MessageInput{Method: "notifications/progress", Kind: "notification", Batch: true,
				Arguments: json.RawMessage(`{"progress": 12345678901234567890123}`)},
		},
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := InputValue(in, now)
			if err != nil {
				t.Fatal(err)
			}
			want := viaJSON(t, jsonInput(in, now))
			if got.Compare(want) != 0 {
				t.Errorf("InputValue() differs from the JSON schema:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestInputValueDropsCredentialHeaders(t *testing.T) {
	in := &policy.Input{Request: policy.RequestInput{Headers: map[string]string{
		"authorization":       "Bearer secret-token",
		"Proxy-Authorization": "Basic c2VjcmV0",
		"cookie":              "session=secret",
		"accept":              "application/json",
	}}}
	v, err := InputValue(in, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Find(ast.MustParseRef("x.request.headers")[1:])
	if err != nil {
		t.Fatal(err)
	}
	want := ast.MustParseTerm(`{"accept": "application/json"}`).Value
	if got.Compare(want) != 0 {
		t.Errorf("headers %v, want only %v", got, want)
	}
}

func TestInputValueUsesNowWhenTimeIsZero(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	v, err := InputValue(&policy.Input{}, now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Find(ast.MustParseRef("x.time.now")[1:])
	if err != nil {
		t.Fatal(err)
	}
	if got.Compare(ast.String("2026-01-02T03:04:05Z")) != 0 {
		t.Errorf("time.now = %v", got)
	}
}

// FuzzInputValue checks that the direct AST input equals the JSON round
// trip for any arguments, and that malformed JSON is an error, not a panic.
func FuzzInputValue(f *testing.F) {
	for _, s := range []string{
		`{"key":"PROJ-1"}`, `{}`, `[]`, `null`, `1e400`, `-0`, `"\u0000"`, `{"a":{"b":[1,2,{"c":null}]}}`,
		`{"a":1,"a":2}`, `{"a":`, ``, `  {"x": true}  `, `{"x": 1} {}`, `"\ud800"`, `123456789012345678901234567890`,
	} {
		f.Add(s, "tools/call", "tool_x")
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	f.Fuzz(func(t *testing.T, args, method, tool string) {
		if !utf8.ValidString(method) || !utf8.ValidString(tool) {
			// encoding/json would replace the bad bytes; the direct path
			// keeps them. Either is safe; they are just not comparable.
			return
		}
		in := &policy.Input{MCP: policy.MessageInput{Method: method, Tool: tool, Arguments: json.RawMessage(args)}}
		got, err := InputValue(in, now)
		var x any
		jerr := util.UnmarshalJSON([]byte(args), &x)
		if args != "" && jerr != nil {
			if err == nil {
				t.Fatalf("arguments %q are not JSON but InputValue() accepted them", args)
			}
			return
		}
		if err != nil {
			// Valid JSON that OPA cannot represent (e.g. a number too big
			// for it) must be an error, which the caller turns into a deny.
			return
		}
		m := jsonInput(in, now)
		if args != "" {
			m["mcp"].(map[string]any)["arguments"] = x
		}
		want, err := ast.InterfaceToValue(roundTrip(t, m))
		if err != nil {
			t.Fatal(err)
		}
		if got.Compare(want) != 0 {
			t.Fatalf("InputValue() differs from the JSON round trip:\n got %v\nwant %v", got, want)
		}
	})
}

func roundTrip(t *testing.T, x any) any {
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := util.UnmarshalJSON(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}
