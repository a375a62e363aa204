package extauthz_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"

	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

func TestCheckAllowSwapsCredential(t *testing.T) {
	e := startEnv(t)
	tok := e.token(t, oidcissuer.Token{Groups: []string{"eng"}})
	for _, stringBody := range []bool{false, true} {
		req := envoyRequest{
			method: "POST", path: "/mcp/github", target: "github", stringBody: stringBody,
			headers: map[string]string{
				"authorization":        "Bearer " + tok,
				"mcp-protocol-version": "2025-06-18",
				"mcp-session-id":       "sess-1",
				"accept-encoding":      "gzip",
				"x-airlock-grant":      "forged-by-client",
			},
			body: toolCall(7, "search_issues", `{"q":"bug"}`),
		}
		resp, err := e.client.Check(context.Background(), req.proto())
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetStatus().GetCode() != int32(code.Code_OK) {
			t.Fatalf("status %v, denied %v", resp.GetStatus(), resp.GetDeniedResponse().GetBody())
		}
		ok := resp.GetOkResponse()
		set := headers(ok.GetHeaders())
		if set["authorization"] != "Bearer "+upstreamSecret {
			t.Error("upstream credential not set on authorization")
		}
		if set["x-airlock-principal"] != "00u1alice" || set["x-airlock-client-id"] != "0oa-agent" || set["x-airlock-target"] != "github" || set["x-airlock-decision-id"] == "" {
			t.Errorf("identity headers: %v", set)
		}
		if set["accept-encoding"] != "identity" {
			t.Errorf("upstream accept-encoding %q, want identity (masking reads plaintext)", set["accept-encoding"])
		}
		if !contains(ok.GetHeadersToRemove(), "x-airlock-grant") {
			t.Errorf("a client-sent x-airlock-grant must be removed, removes %v", ok.GetHeadersToRemove())
		}
		md := resp.GetDynamicMetadata().AsMap()
		for k, want := range map[string]any{"principal": "00u1alice", "target": "github", "masking_profile": "strict", "method": "tools/call", "tool": "search_issues", "session_id": "sess-1", "record": true} {
			if md[k] != want {
				t.Errorf("metadata %s = %v, want %v", k, md[k], want)
			}
		}
		if md["decision_id"] != set["x-airlock-decision-id"] {
			t.Error("decision id differs between header and metadata")
		}
	}
}

func TestCheckAllowWithoutCredentialDropsToken(t *testing.T) {
	e := startEnv(t)
	tok := e.token(t, oidcissuer.Token{Audience: []string{"https://gw.test/mcp/everything"}, Scopes: []string{}})
	req := envoyRequest{method: "POST", path: "/mcp/everything", target: "everything",
		headers: map[string]string{"authorization": "Bearer " + tok},
		body:    `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`}
	resp, err := e.client.Check(context.Background(), req.proto())
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetOkResponse() == nil {
		t.Fatalf("denied: %s", resp.GetDeniedResponse().GetBody())
	}
	if !contains(resp.GetOkResponse().GetHeadersToRemove(), "authorization") {
		t.Error("the agent's token must never travel upstream")
	}
	if _, set := headers(resp.GetOkResponse().GetHeaders())["authorization"]; set {
		t.Error("no credential configured, yet authorization is set")
	}
}

func TestCheckDenials(t *testing.T) {
	e := startEnv(t)
	good := e.token(t, oidcissuer.Token{})
	cases := []struct {
		name      string
		req       envoyRequest
		status    int
		grpcCode  code.Code
		challenge []string // fragments of WWW-Authenticate
		rpcCode   int
		rpcID     string
		bodyHas   string
		told      []string // must not be in the challenge or the body
	}{
		{
			name:   "no token",
			req:    envoyRequest{method: "POST", path: "/mcp/github", target: "github", body: toolCall(21, "x", "{}")},
			status: 401, grpcCode: code.Code_UNAUTHENTICATED,
			challenge: []string{`resource_metadata="https://gw.test/.well-known/oauth-protected-resource/mcp/github"`, `scope="mcp.github"`},
			rpcCode:   -32011, rpcID: "21", bodyHas: "no bearer token",
		},
		{
			name:   "expired token",
			req:    envoyRequest{method: "POST", path: "/mcp/github", target: "github", body: toolCall("r-22", "x", "{}"), headers: map[string]string{"authorization": "Bearer " + e.token(t, oidcissuer.Token{IssuedAt: time.Now().Add(-2 * time.Hour), TTL: time.Hour})}},
			status: 401, grpcCode: code.Code_UNAUTHENTICATED,
			challenge: []string{`error="invalid_token"`, `error_description="the token has expired"`, "resource_metadata="},
			rpcCode:   -32011, rpcID: `"r-22"`, bodyHas: "expired",
		},
		{
			name:   "token for another resource",
			req:    envoyRequest{method: "POST", path: "/mcp/github", target: "github", body: toolCall(23, "x", "{}"), headers: map[string]string{"authorization": "Bearer " + e.token(t, oidcissuer.Token{Audience: []string{"https://gw.test/mcp/everything"}})}},
			status: 401, grpcCode: code.Code_UNAUTHENTICATED,
			challenge: []string{`error="invalid_token"`, `error_description="the token is not valid for this resource"`},
			rpcCode:   -32011, rpcID: "23", bodyHas: "the token is not valid for this resource",
			told: []string{"api://default", "mcp/everything", "audience", "issuer", "oauth2/default"},
		},
		{
			name:   "missing scope",
			req:    envoyRequest{method: "POST", path: "/mcp/github", target: "github", body: toolCall(24, "x", "{}"), headers: map[string]string{"authorization": "Bearer " + e.token(t, oidcissuer.Token{Scopes: []string{"openid"}})}},
			status: 403, grpcCode: code.Code_PERMISSION_DENIED,
			challenge: []string{`error="insufficient_scope"`, `scope="mcp.github"`},
			rpcCode:   -32013, rpcID: "24", bodyHas: "lacks scope mcp.github",
		},
		{
			name:   "policy deny keeps the request id",
			req:    envoyRequest{method: "POST", path: "/mcp/github", target: "github", body: toolCall("req-42", "format_disk", `{"disk":"/dev/sda"}`), headers: map[string]string{"authorization": "Bearer " + good}},
			status: 403, grpcCode: code.Code_PERMISSION_DENIED,
			rpcCode: -32013, rpcID: `"req-42"`, bodyHas: `tool \"format_disk\" on target \"github\" is denied`,
		},
		// Issue 15 ("links always work"): this env serves no inbox, so the
		// approval URL is no longer handed out (it answered 404); both
		// versions get airlock's error saying how the approval happens.
		// approval_link_test.go covers the inbox-on URL elicitation.
		{
			name:   "approval required (2025-03-26, inbox off: airlock's error naming the CLI)",
			req:    envoyRequest{method: "POST", path: "/mcp/github", target: "github", body: toolCall(9, "delete_repository", `{"repo":"a/b"}`), headers: map[string]string{"authorization": "Bearer " + good, "x-airlock-reason": "cleanup of a test repo"}},
			status: 200, grpcCode: code.Code_PERMISSION_DENIED,
			rpcCode: -32014, rpcID: "9", bodyHas: "airlock approve req_",
			told: []string{"http://", "https://"},
		},
		{
			name:   "approval required (2025-11-25, inbox off: no URL elicitation without a page)",
			req:    envoyRequest{method: "POST", path: "/mcp/github", target: "github", body: toolCall(10, "delete_repository", `{"repo":"a/c"}`), headers: map[string]string{"authorization": "Bearer " + good, "mcp-protocol-version": "2025-11-25", "x-airlock-reason": "cleanup"}},
			status: 200, grpcCode: code.Code_PERMISSION_DENIED,
			rpcCode: -32014, rpcID: "10", bodyHas: "/airlock/v1/requests/req_",
			told: []string{`"mode":"url"`, "http://", "https://"},
		},
		{
			name:   "approval required without the reason approvers need",
			req:    envoyRequest{method: "POST", path: "/mcp/github", target: "github", body: toolCall(11, "delete_repository", `{"repo":"a/d"}`), headers: map[string]string{"authorization": "Bearer " + good}},
			status: 403, grpcCode: code.Code_PERMISSION_DENIED,
			rpcCode: -32013, rpcID: "11", bodyHas: "io.airlock/reason",
		},
		{
			name:   "malformed JSON",
			req:    envoyRequest{method: "POST", path: "/mcp/github", target: "github", body: `{"jsonrpc":"2.0","id":1,`, headers: map[string]string{"authorization": "Bearer " + good}},
			status: 400, grpcCode: code.Code_INVALID_ARGUMENT,
			rpcCode: -32700,
		},
		{
			name:   "body cut by Envoy",
			req:    envoyRequest{method: "POST", path: "/mcp/github", target: "github", partial: true, body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"blob":"aaaa`, headers: map[string]string{"authorization": "Bearer " + good}},
			status: 413, grpcCode: code.Code_INVALID_ARGUMENT,
			rpcCode: -32600, bodyHas: "limit 1048576 bytes",
		},
		{
			name:   "2026-07-28 header does not match body",
			req:    envoyRequest{method: "POST", path: "/mcp/github", target: "github", body: toolCall(3, "delete_repository", "{}"), headers: map[string]string{"authorization": "Bearer " + good, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "search_issues"}},
			status: 400, grpcCode: code.Code_INVALID_ARGUMENT,
			rpcCode: -32020, rpcID: "3",
		},
		{
			name:   "batch after 2025-03-26",
			req:    envoyRequest{method: "POST", path: "/mcp/github", target: "github", body: "[" + toolCall(1, "a", "{}") + "]", headers: map[string]string{"authorization": "Bearer " + good, "mcp-protocol-version": "2025-11-25"}},
			status: 400, grpcCode: code.Code_INVALID_ARGUMENT,
			rpcCode: -32600,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.client.Check(context.Background(), tc.req.proto())
			if err != nil {
				t.Fatal(err)
			}
			d := resp.GetDeniedResponse()
			if d == nil {
				t.Fatalf("allowed; want %d", tc.status)
			}
			if int(d.GetStatus().GetCode()) != tc.status || resp.GetStatus().GetCode() != int32(tc.grpcCode) {
				t.Errorf("status %d / %v, want %d / %v", d.GetStatus().GetCode(), code.Code(resp.GetStatus().GetCode()), tc.status, tc.grpcCode)
			}
			h := headers(d.GetHeaders())
			for _, c := range tc.challenge {
				if !strings.Contains(h["www-authenticate"], c) {
					t.Errorf("www-authenticate %q lacks %q", h["www-authenticate"], c)
				}
			}
			if h["content-type"] != "application/json" || h["x-airlock-decision-id"] == "" {
				t.Errorf("denied headers %v", h)
			}
			var body rpcError
			if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil {
				t.Fatalf("denied body is not JSON-RPC: %v: %s", err, d.GetBody())
			}
			if body.JSONRPC != "2.0" || body.Error.Code != tc.rpcCode {
				t.Errorf("body %s, want code %d", d.GetBody(), tc.rpcCode)
			}
			if tc.rpcID != "" && string(body.ID) != tc.rpcID {
				t.Errorf("id %s, want %s", body.ID, tc.rpcID)
			}
			if tc.bodyHas != "" && !strings.Contains(d.GetBody(), tc.bodyHas) {
				t.Errorf("body %s lacks %q", d.GetBody(), tc.bodyHas)
			}
			for _, s := range tc.told {
				if strings.Contains(h["www-authenticate"]+d.GetBody(), s) {
					t.Errorf("the caller is told %q: %s / %s", s, h["www-authenticate"], d.GetBody())
				}
			}
			if strings.Contains(d.GetBody(), upstreamSecret) || strings.Contains(d.GetBody(), "eyJ") {
				t.Error("denied body leaks a credential or token")
			}
		})
	}
}

func TestCheckBatchDeniesEveryRequest(t *testing.T) {
	e := startEnv(t)
	good := e.token(t, oidcissuer.Token{})
	body := "[" + toolCall(1, "search_issues", "{}") + "," + toolCall(2, "format_disk", "{}") + `,{"jsonrpc":"2.0","method":"notifications/progress","params":{}}]`
	req := envoyRequest{method: "POST", path: "/mcp/github", target: "github", body: body,
		headers: map[string]string{"authorization": "Bearer " + good, "mcp-protocol-version": "2025-03-26"}}
	resp, err := e.client.Check(context.Background(), req.proto())
	if err != nil {
		t.Fatal(err)
	}
	var out []rpcError
	if err := json.Unmarshal([]byte(resp.GetDeniedResponse().GetBody()), &out); err != nil {
		t.Fatalf("batch denial must be a JSON-RPC batch: %v %s", err, resp.GetDeniedResponse().GetBody())
	}
	if len(out) != 2 || string(out[0].ID) != "1" || string(out[1].ID) != "2" {
		t.Errorf("want an error per request (ids 1, 2), got %+v", out)
	}
}

func TestCheckStreamAndTargetResolution(t *testing.T) {
	e := startEnv(t)
	good := e.token(t, oidcissuer.Token{})
	cases := []struct {
		name   string
		req    envoyRequest
		status int // 0 = allowed
	}{
		{"GET opens the server stream", envoyRequest{method: "GET", path: "/mcp/github", target: "github", headers: map[string]string{"authorization": "Bearer " + good, "mcp-session-id": "s1"}}, 0},
		{"DELETE ends the session", envoyRequest{method: "DELETE", path: "/mcp/github", target: "github", headers: map[string]string{"authorization": "Bearer " + good, "mcp-session-id": "s1"}}, 0},
		{"target by path when the route names none", envoyRequest{method: "GET", path: "/mcp/github", headers: map[string]string{"authorization": "Bearer " + good}}, 0},
		{"no target at path", envoyRequest{method: "GET", path: "/mcp/githubx", headers: map[string]string{"authorization": "Bearer " + good}}, 404},
		{"no target below a target's path", envoyRequest{method: "GET", path: "/mcp/github/admin", headers: map[string]string{"authorization": "Bearer " + good}}, 404},
		{"nothing below the endpoint (GET)", envoyRequest{method: "GET", path: "/mcp/github/admin/secrets", target: "github", headers: map[string]string{"authorization": "Bearer " + good}}, 404},
		{"nothing below the endpoint (DELETE)", envoyRequest{method: "DELETE", path: "/mcp/github/repos/acme/prod", target: "github", headers: map[string]string{"authorization": "Bearer " + good, "mcp-session-id": "s2"}}, 404},
		{"nothing below the endpoint (POST)", envoyRequest{method: "POST", path: "/mcp/github/admin/users/42/delete", target: "github", headers: map[string]string{"authorization": "Bearer " + good}, body: toolCall(1, "search_issues", "{}")}, 404},
		{"no query on the endpoint", envoyRequest{method: "POST", path: "/mcp/github?x=1", target: "github", headers: map[string]string{"authorization": "Bearer " + good}, body: toolCall(1, "search_issues", "{}")}, 404},
		{"no encoded spelling of the endpoint", envoyRequest{method: "POST", path: "/mcp/%67ithub", target: "github", headers: map[string]string{"authorization": "Bearer " + good}, body: toolCall(1, "search_issues", "{}")}, 404},
		{"foreign Origin is refused (DNS rebinding)", envoyRequest{method: "GET", path: "/mcp/github", target: "github", headers: map[string]string{"authorization": "Bearer " + good, "origin": "http://evil.example.com"}}, 403},
		{"the gateway's own Origin passes", envoyRequest{method: "GET", path: "/mcp/github", target: "github", headers: map[string]string{"authorization": "Bearer " + good, "origin": "https://gw.test"}}, 0},
		{"PUT is not MCP", envoyRequest{method: "PUT", path: "/mcp/github", target: "github", headers: map[string]string{"authorization": "Bearer " + good}}, 405},
		{"2026-07-28 has no GET stream", envoyRequest{method: "GET", path: "/mcp/github", target: "github", headers: map[string]string{"authorization": "Bearer " + good, "mcp-protocol-version": "2026-07-28"}}, 405},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.client.Check(context.Background(), tc.req.proto())
			if err != nil {
				t.Fatal(err)
			}
			if tc.status == 0 {
				if resp.GetOkResponse() == nil {
					t.Fatalf("denied: %s", resp.GetDeniedResponse().GetBody())
				}
				return
			}
			if got := int(resp.GetDeniedResponse().GetStatus().GetCode()); got != tc.status {
				t.Errorf("status %d, want %d (%s)", got, tc.status, resp.GetDeniedResponse().GetBody())
			}
			if tc.status == 405 && headers(resp.GetDeniedResponse().GetHeaders())["allow"] == "" {
				t.Error("405 without an Allow header")
			}
		})
	}
}

// Issuer-level audiences (api://default) open only targets that opt in
// with accept_issuer_audiences (and so require scopes).
func TestCheckIssuerAudiencesOnlyWhereOptedIn(t *testing.T) {
	e := startEnv(t)
	issuerAud := []string{"api://default"}
	cases := []struct {
		name, target string
		token        oidcissuer.Token
		allowed      bool
	}{
		{"opted-in target takes the issuer's audience", "okta", oidcissuer.Token{Audience: issuerAud, Scopes: []string{"mcp.okta"}}, true},
		{"opted-in target takes its resource URI", "okta", oidcissuer.Token{Audience: []string{"https://gw.test/mcp/okta"}, Scopes: []string{"mcp.okta"}}, true},
		{"opted-in target still needs its scopes", "okta", oidcissuer.Token{Audience: issuerAud, Scopes: []string{"openid"}}, false},
		{"a target that did not opt in refuses it", "everything", oidcissuer.Token{Audience: issuerAud, Scopes: []string{"openid"}}, false},
		{"nor with scopes", "github", oidcissuer.Token{Audience: issuerAud, Scopes: []string{"mcp.github"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := envoyRequest{method: "POST", path: "/mcp/" + tc.target, target: tc.target,
				headers: map[string]string{"authorization": "Bearer " + e.token(t, tc.token)},
				body:    `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`}
			resp, err := e.client.Check(context.Background(), req.proto())
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.GetOkResponse() != nil; got != tc.allowed {
				t.Fatalf("allowed %v, want %v: %s", got, tc.allowed, resp.GetDeniedResponse().GetBody())
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
