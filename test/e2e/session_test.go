package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/airlock-mcp/airlock/test/harness"
	"github.com/airlock-mcp/airlock/test/peers"
)

// An agent with a good token initializes, lists tools and calls one; the
// MCP server sees airlock's credential for it, never the agent's token.
func TestGoClientSessionSwapsCredential(t *testing.T) {
	stack.GoServer.Reset()
	tok := token(t, "00u-alice", "github")
	ctx := ctxT(t, 30*time.Second)
	cs, err := peers.ConnectGoClient(ctx, stack.TargetURL("github"), tok)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) < 3 {
		t.Fatalf("tools/list returned %d tools", len(tools.Tools))
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "through airlock"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "through airlock") {
		t.Fatalf("echo result %+v", res)
	}
	reqs := stack.GoServer.Requests()
	if len(reqs) < 3 {
		t.Fatalf("upstream saw %d requests", len(reqs))
	}
	var methods []string
	for _, r := range reqs {
		if got := r.Authorization(); got != "Bearer "+harness.UpstreamSecret {
			t.Errorf("upstream %s %s carried Authorization %q, want the server credential", r.Method, r.JSONRPCMethod(), redact(got))
		}
		for name, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(v, tok) {
					t.Errorf("the agent's token reached the upstream in %s", name)
				}
			}
		}
		if r.Header.Get("X-Airlock-Principal") != "00u-alice" || r.Header.Get("X-Airlock-Client-Id") != "0oa-agent" {
			t.Errorf("identity headers missing upstream: %v", r.Header)
		}
		methods = append(methods, r.JSONRPCMethod())
	}
	joined := strings.Join(methods, ",")
	for _, m := range []string{"tools/list", "tools/call"} {
		if !strings.Contains(joined, m) {
			t.Errorf("upstream never saw %s (saw %s)", m, joined)
		}
	}
}

func TestTypeScriptClientSession(t *testing.T) {
	tok := token(t, "00u-bob", "github")
	res, err := peers.RunTSClient(ctxT(t, 60*time.Second), stack.TargetURL("github"), tok, []peers.Step{
		peers.ListTools(),
		peers.CallTool("search_issues", map[string]any{"query": "token"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.OK {
			t.Fatalf("step %d (%s) failed: %s", r.Step, r.Op, r)
		}
	}
	if !strings.Contains(string(res[1].Result), `"search_issues"`) {
		t.Errorf("tools/list through airlock lacks search_issues: %s", res[1].Result)
	}
	if !strings.Contains(string(res[2].Result), "Login fails with expired token") {
		t.Errorf("search result: %s", res[2].Result)
	}
}

// A token from the certified npm oidc-provider (client_credentials with an
// RFC 8707 resource) works through airlock like an Okta one.
func TestOIDCProviderToken(t *testing.T) {
	ctx := ctxT(t, 60*time.Second)
	tok, err := stack.OIDC.ClientCredentialsToken(ctx, harness.AgentClientID, harness.AgentClientSecret, stack.TargetURL("everything"), []string{"mcp.read"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := peers.RunTSClient(ctx, stack.TargetURL("everything"), tok, []peers.Step{
		peers.CallTool("echo", map[string]any{"message": "hello from oidc-provider"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || !res[1].OK || !strings.Contains(string(res[1].Result), "hello from oidc-provider") {
		t.Fatalf("echo via server-everything: %v", res)
	}
	// The same token is not good for another target (audience binding).
	res, err = peers.RunTSClient(ctx, stack.TargetURL("github"), tok, []peers.Step{peers.ListTools()})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].OK || res[0].Error == nil || res[0].Error.HTTP == nil || res[0].Error.HTTP.Status != 401 {
		t.Fatalf("a token for another resource must get 401: %v", res)
	}
}

// A denied tool comes back to the agent as a JSON-RPC error with the reason.
func TestDeniedToolGetsReason(t *testing.T) {
	tok := token(t, "00u-alice", "everything")
	ctx := ctxT(t, 30*time.Second)
	cs, err := peers.ConnectGoClient(ctx, stack.TargetURL("everything"), tok)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-env", Arguments: map[string]any{}})
	if err == nil {
		t.Fatal("get-env went through")
	}
	for _, want := range []string{"Forbidden", `tool "get-env" on target "everything" is denied by pattern "get-env"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// The TypeScript client sees the JSON-RPC body with the request's id.
	res, err := peers.RunTSClient(ctx, stack.TargetURL("everything"), tok, []peers.Step{peers.CallTool("get-env", map[string]any{})})
	if err != nil {
		t.Fatal(err)
	}
	e := res[1].Error
	if res[1].OK || e == nil || e.HTTP == nil || e.HTTP.Status != 403 {
		t.Fatalf("TS client: %v", res)
	}
	var body struct {
		ID    json.RawMessage `json:"id"`
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(e.HTTP.Body), &body); err != nil {
		t.Fatalf("403 body is not JSON-RPC: %q", e.HTTP.Body)
	}
	if body.Error.Code != -32013 || string(body.ID) == "null" || !strings.Contains(body.Error.Message, "denied") {
		t.Errorf("denial body %+v", body)
	}
}

func TestApprovalRequiredAnswersWithReason(t *testing.T) {
	tok := token(t, "00u-alice", "github")
	ctx := ctxT(t, 30*time.Second)
	cs, err := peers.ConnectGoClient(ctx, stack.TargetURL("github"), tok)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	stack.GoServer.Reset()
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "delete_repository", Arguments: map[string]any{"repo": "acme/prod"}})
	if err == nil || !strings.Contains(err.Error(), "requires approval") {
		t.Fatalf("delete_repository: %v", err)
	}
	for _, c := range stack.GoServer.ToolCalls() {
		if c.Name == "delete_repository" {
			t.Fatal("a call held for approval reached the server")
		}
	}
}

func redact(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

// server-everything's long-running operation streams progress over SSE to
// the TypeScript client through airlock, each notification in order.
func TestLongRunningOperationProgress(t *testing.T) {
	tok := token(t, "00u-alice", "everything")
	res, err := peers.RunTSClient(ctxT(t, 60*time.Second), stack.TargetURL("everything"), tok, []peers.Step{
		peers.CallToolWithProgress("trigger-long-running-operation", map[string]any{"duration": 1, "steps": 4}),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := res[1]
	if !r.OK || !strings.Contains(string(r.Result), "Long running operation completed") {
		t.Fatalf("result %v", r)
	}
	if len(r.Progress) != 4 {
		t.Fatalf("got %d progress notifications, want 4: %s", len(r.Progress), r.Progress)
	}
	for i, p := range r.Progress {
		var n struct{ Progress float64 }
		if err := json.Unmarshal(p, &n); err != nil || int(n.Progress) != i+1 {
			t.Errorf("progress %d = %s", i, p)
		}
	}
}
