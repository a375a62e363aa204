package peers

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTSClientAgainstGoServer(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 45*time.Second)
	s := startGoServer(t, GoServerOptions{})
	steps := []Step{
		ListTools(),
		CallTool(ToolEcho, map[string]any{"text": "hi from TypeScript"}),
		CallToolWithProgress(ToolCountSlowly, map[string]any{"count": 3, "delay_ms": 20}),
		CallTool(ToolGetSecretConfig, nil),
		ReadResource(ResourceReadme),
		ListPrompts(),
		GetPrompt(PromptTriage, map[string]string{"number": "42"}),
		CallTool("no_such_tool", nil),
		{Op: "request", Method: "tools/list", Params: map[string]any{}},
	}
	results, err := RunTSClient(ctx, s.URL(), "ts-agent-token", steps)
	if err != nil {
		t.Fatalf("RunTSClient: %v", err)
	}
	var summary []string
	for _, r := range results {
		summary = append(summary, r.Op+" "+map[bool]string{true: "ok", false: "failed"}[r.OK])
	}
	want := []string{"connect ok", "listTools ok", "callTool ok", "callTool ok", "callTool ok", "readResource ok",
		"listPrompts ok", "getPrompt ok", "callTool failed", "request ok"}
	if diff := cmp.Diff(want, summary); diff != "" {
		t.Fatalf("steps (-want +got):\n%s\nresults: %v", diff, results)
	}

	var conn struct {
		ServerInfo      struct{ Name string } `json:"serverInfo"`
		ProtocolVersion string                `json:"protocolVersion"`
		SessionID       string                `json:"sessionId"`
	}
	if err := results[0].Decode(&conn); err != nil {
		t.Fatal(err)
	}
	if conn.ServerInfo.Name != "airlock-test-server" || conn.ProtocolVersion != "2025-11-25" || conn.SessionID == "" {
		t.Errorf("connect result = %+v, want airlock-test-server, 2025-11-25 and a session", conn)
	}
	var tools struct{ Tools []struct{ Name string } }
	if err := results[1].Decode(&tools); err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != 5 {
		t.Errorf("listTools returned %d tools, want 5", len(tools.Tools))
	}
	texts := map[int]string{2: "hi from TypeScript", 3: "1 2 3", 4: SecretConfigEnvText + "\n" + SecretConfigJSONText}
	for i, want := range texts {
		got, err := results[i].Text()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("step %d text = %q, want %q", i, got, want)
		}
	}
	var progress []float64
	for _, p := range results[3].Progress {
		var n struct{ Progress float64 }
		if err := json.Unmarshal(p, &n); err != nil {
			t.Fatal(err)
		}
		progress = append(progress, n.Progress)
	}
	if diff := cmp.Diff([]float64{1, 2, 3}, progress); diff != "" {
		t.Errorf("count_slowly progress (-want +got):\n%s", diff)
	}
	if e := results[8].Error; e.Name != "McpError" || e.Code != -32602 || !strings.Contains(e.Message, `unknown tool "no_such_tool"`) {
		t.Errorf("calling an unknown tool: error %+v, want McpError -32602 unknown tool", e)
	}

	reqs := s.Requests()
	if len(reqs) < len(steps) {
		t.Fatalf("the server recorded %d requests for %d steps", len(reqs), len(steps))
	}
	for _, r := range reqs {
		if got := r.Authorization(); got != "Bearer ts-agent-token" {
			t.Errorf("%s %s (%s) carried Authorization %q, want the client's bearer token", r.Method, r.Path, r.JSONRPCMethod(), got)
		}
	}
}

func TestTSClientReportsHTTPErrors(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 45*time.Second)
	s := startGoServer(t, GoServerOptions{RequireBearer: "upstream-credential"})
	results, err := RunTSClient(ctx, s.URL(), "agent-token", []Step{ListTools()})
	if err != nil {
		t.Fatalf("RunTSClient: %v", err)
	}
	if len(results) != 1 || results[0].OK || results[0].Error == nil {
		t.Fatalf("results = %+v, want one failed connect", results)
	}
	e := results[0].Error
	if e.HTTP == nil {
		t.Fatalf("connect error %+v has no HTTP answer", e)
	}
	got := []any{e.Name, e.Code, e.HTTP.Status, e.HTTP.Method, e.HTTP.WWWAuthenticate, strings.TrimSpace(e.HTTP.Body)}
	want := []any{"StreamableHTTPError", 401, 401, "POST", `Bearer error="invalid_token"`, "upstream credential missing or wrong"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("connect error (-want +got):\n%s", diff)
	}
	if !strings.Contains(e.Message, "upstream credential missing or wrong") {
		t.Errorf("message %q lacks the body text", e.Message)
	}
}
