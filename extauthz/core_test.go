package extauthz

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/internal/policy"
)

func TestEndpointPathOnly(t *testing.T) {
	c := newCore(t)
	paths := []struct {
		path string
		ok   bool
	}{
		{"/mcp/demo", true},
		{"/mcp/demo/", false},
		{"/mcp/demo/admin/secrets", false},
		{"/mcp/demo/admin/users/42/delete", false},
		{"/mcp/demo?x=1", false},
		{"/mcp/demo?", false},
		{"/mcp/demo#frag", false},
		{"/mcp/%64emo", false},
		{"/mcp/demo%2Fadmin", false},
		{"/mcp/demo%2fadmin", false},
		{"/mcp/demo/../demo", false},
		{"/mcp/x/../demo", false},
		{"/mcp/./demo", false},
		{"/mcp/demo/.", false},
		{"//mcp/demo", false},
		{"/mcp//demo", false},
		{"/MCP/demo", false},
		{"/mcp/demo;x", false},
		{"/mcp/demo%00", false},
		{"", false},
	}
	for _, p := range paths {
		for _, named := range []bool{true, false} {
			for _, method := range []string{"POST", "GET", "DELETE"} {
				t.Run(fmt.Sprintf("%s %q named=%v", method, p.path, named), func(t *testing.T) {
					req := post("alice", call(5, "read"), "mcp-session-id", "s-path")
					req.Method, req.Path = method, p.path
					if method != "POST" {
						req.Body = nil
					}
					if !named {
						req.ContextExtensions = nil
					}
					before := c.verifier.calls
					r := c.a.Check(context.Background(), req)
					if p.ok {
						if r.Outcome != OutcomeAllow {
							t.Fatalf("outcome %s: %s", r.Outcome, r.Body)
						}
						return
					}
					if r.Outcome == OutcomeAllow || r.Status != 404 {
						t.Fatalf("outcome %s status %d, want 404", r.Outcome, r.Status)
					}
					if c.verifier.calls != before {
						t.Error("a path that is no endpoint reached token verification")
					}
					e := oneError(t, r.Body)
					wantID := "null"
					if method == "POST" {
						wantID = "5"
					}
					if string(e.ID) != wantID || e.Error.Code != -32600 || strings.Contains(string(r.Body), "demo") {
						t.Errorf("body %s, want id %s, code -32600, no target named", r.Body, wantID)
					}
				})
			}
		}
	}
}

func TestAllowAsksForPlaintext(t *testing.T) {
	c := newCore(t)
	req := post("alice", call(1, "read"), "accept-encoding", "gzip, br")
	r := c.a.Check(context.Background(), req)
	if r.Outcome != OutcomeAllow {
		t.Fatalf("outcome %s", r.Outcome)
	}
	ok := toCheckResponse(r).GetOkResponse()
	n := 0
	for _, h := range ok.GetHeaders() {
		if h.GetHeader().GetKey() == "accept-encoding" {
			n++
			if h.GetHeader().GetValue() != "identity" || h.GetAppendAction().String() != "OVERWRITE_IF_EXISTS_OR_ADD" {
				t.Errorf("accept-encoding set to %q (%s)", h.GetHeader().GetValue(), h.GetAppendAction())
			}
		}
	}
	if n != 1 {
		t.Fatalf("accept-encoding set %d times, want once: %v", n, ok.GetHeaders())
	}
}

func TestDenialsCarryTheRequestID(t *testing.T) {
	c := newCore(t)
	cases := []struct {
		name   string
		req    *Request
		status int
		id     string
	}{
		{"no token", post("", call("n-1", "read")), 401, `"n-1"`},
		{"expired token", post("expired", call(41, "read")), 401, "41"},
		{"insufficient scope", post("noscope", call(42, "read")), 403, "42"},
		{"foreign Origin", post("alice", call(43, "read"), "origin", "https://evil.example.com"), 403, "43"},
		{"charset other than UTF-8", post("alice", call(44, "read"), "content-type", "application/json; charset=utf-7"), 415, "44"},
		{"not JSON", post("alice", call(45, "read"), "content-type", "text/plain"), 415, "45"},
		{"content coding", post("alice", call(46, "read"), "content-encoding", "gzip"), 415, "46"},
		{"policy deny", post("alice", call(47, "nuke")), 403, "47"},
		// A body Envoy cut at the limit: the id its head shows.
		{"body cut at the limit", func() *Request {
			r := post("alice", call(48, "read"))
			r.Truncated = true
			r.Body = r.Body[:len(r.Body)-5]
			return r
		}(), 413, "48"},
		{"body cut inside its id", func() *Request {
			r := post("alice", call(48, "read"))
			r.Truncated = true
			r.Body = r.Body[:bytes.Index(r.Body, []byte(`48`))+1]
			return r
		}(), 413, "null"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.a.Check(context.Background(), tc.req)
			if r.Status != tc.status || r.Outcome == OutcomeAllow {
				t.Fatalf("status %d outcome %s, want %d", r.Status, r.Outcome, tc.status)
			}
			if e := oneError(t, r.Body); string(e.ID) != tc.id {
				t.Errorf("id %s, want %s: %s", e.ID, tc.id, r.Body)
			}
		})
	}
}

func TestUnauthenticatedLearnNoConfiguration(t *testing.T) {
	cases := []struct {
		token, public, detail string
	}{
		{"wrong-audience", "the token is not valid for this resource", testAudience},
		{"unknown-issuer", "the token is not valid for this resource", testIssuer},
		{"bad-signature", "the token's signature could not be verified", testIssuer},
		{"expired", "the token has expired", "2026-01-01"},
		{"alice-other-issuer", "the token is not valid for this resource", "https://other.example.com"},
	}
	for _, tc := range cases {
		t.Run(tc.token, func(t *testing.T) {
			c := newCore(t)
			if tc.token == "alice-other-issuer" {
				c.a.targets.byName["demo"].issuers = map[string]bool{testIssuer: true}
			}
			r := c.a.Check(context.Background(), post(tc.token, call(1, "read")))
			if r.Status != 401 {
				t.Fatalf("status %d", r.Status)
			}
			var challenge string
			for _, h := range r.ResponseHeaders {
				if h.Name == "www-authenticate" {
					challenge = h.Value
				}
			}
			told := challenge + string(r.Body)
			for _, secret := range []string{testIssuer, testAudience, "https://other.example.com", "evil.example.com", "target", "audience", "issuer"} {
				if strings.Contains(told, secret) {
					t.Errorf("the client is told %q:\n%s", secret, told)
				}
			}
			if !strings.Contains(challenge, `error_description="`+strings.ReplaceAll(tc.public, `"`, `'`)+`"`) ||
				!strings.Contains(string(r.Body), tc.public) {
				t.Errorf("challenge %s / body %s lack %q", challenge, r.Body, tc.public)
			}
			// The precise reason is in the log and the audit.
			if !strings.Contains(r.Reason, tc.detail) || !strings.Contains(c.log.String(), tc.detail) {
				t.Errorf("the decision log lacks the detail %q: reason %q", tc.detail, r.Reason)
			}
			if recs := c.audit.take(); len(recs) != 1 || !strings.Contains(recs[0].Reason, tc.detail) || recs[0].JSONRPCID != "1" {
				t.Errorf("audit %+v lacks the detail or the request id", recs)
			}
		})
	}
}

func TestInsufficientScopeNamesNoTarget(t *testing.T) {
	c := newCore(t)
	r := c.a.Check(context.Background(), post("noscope", call(1, "read")))
	if r.Status != 403 || strings.Contains(string(r.Body), "target demo") || !strings.Contains(string(r.Body), "mcp.demo") {
		t.Errorf("status %d body %s", r.Status, r.Body)
	}
	if !strings.Contains(r.Reason, "target demo") {
		t.Errorf("log reason %q lacks the target", r.Reason)
	}
}

func TestCompletionFollowsItsReference(t *testing.T) {
	c := newCore(t)
	for _, tc := range []struct {
		ref     string
		outcome Outcome
		seen    policy.MessageInput
	}{
		{`{"type":"ref/prompt","name":"secret"}`, OutcomeDeny, policy.MessageInput{Method: "completion/complete", Prompt: "secret"}},
		{`{"type":"ref/resource","uri":"file:///secret"}`, OutcomeDeny, policy.MessageInput{Method: "completion/complete", URI: "file:///secret"}},
		{`{"type":"ref/prompt","name":"hello"}`, OutcomeAllow, policy.MessageInput{Method: "completion/complete", Prompt: "hello"}},
	} {
		c.policy.seen = nil
		body := `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":` + tc.ref + `,"argument":{"name":"a","value":"b"}}}`
		r := c.a.Check(context.Background(), post("alice", body))
		if r.Outcome != tc.outcome {
			t.Errorf("%s: outcome %s, want %s", tc.ref, r.Outcome, tc.outcome)
		}
		if len(c.policy.seen) != 1 {
			t.Fatalf("%s: policy evaluated %d times", tc.ref, len(c.policy.seen))
		}
		got := c.policy.seen[0]
		if got.Method != tc.seen.Method || got.Prompt != tc.seen.Prompt || got.URI != tc.seen.URI {
			t.Errorf("%s: policy saw method %q prompt %q uri %q", tc.ref, got.Method, got.Prompt, got.URI)
		}
	}
}
