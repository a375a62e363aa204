package peers

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestGoServerWithGoClient(t *testing.T) {
	t.Parallel()
	for _, stateless := range []bool{false, true} {
		name := map[bool]string{false: "stateful", true: "stateless"}[stateless]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 20*time.Second)
			s := startGoServer(t, GoServerOptions{Stateless: stateless})

			var mu sync.Mutex
			var progress []float64
			cs, err := ConnectGoClientWith(ctx, s.URL(), "agent-token", GoClientOptions{Client: &mcp.ClientOptions{
				ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
					mu.Lock()
					progress = append(progress, req.Params.Progress)
					mu.Unlock()
				},
			}})
			if err != nil {
				t.Fatalf("ConnectGoClientWith: %v", err)
			}
			defer cs.Close()

			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatalf("ListTools: %v", err)
			}
			var names []string
			for _, tool := range tools.Tools {
				names = append(names, tool.Name)
			}
			slices.Sort(names)
			wantNames := []string{ToolCountSlowly, ToolDeleteRepository, ToolEcho, ToolGetSecretConfig, ToolSearchIssues}
			if diff := cmp.Diff(wantNames, names); diff != "" {
				t.Errorf("tools (-want +got):\n%s", diff)
			}

			params := &mcp.CallToolParams{Name: ToolCountSlowly, Arguments: map[string]any{"count": 3, "delay_ms": 20}}
			params.SetProgressToken("count-1")
			res, err := cs.CallTool(ctx, params)
			if err != nil {
				t.Fatalf("CallTool count_slowly: %v", err)
			}
			if diff := cmp.Diff([]mcp.Content{&mcp.TextContent{Text: "1 2 3"}}, res.Content); diff != "" {
				t.Errorf("count_slowly content (-want +got):\n%s", diff)
			}
			// The SDK hands notifications to the handler concurrently with the
			// result, so the last one may land just after CallTool returns.
			var gotProgress []float64
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				mu.Lock()
				gotProgress = slices.Clone(progress)
				mu.Unlock()
				if len(gotProgress) >= 3 || time.Now().After(deadline) {
					break
				}
			}
			slices.Sort(gotProgress)
			if diff := cmp.Diff([]float64{1, 2, 3}, gotProgress); diff != "" {
				t.Errorf("progress (-want +got):\n%s", diff)
			}

			var calls []string
			for _, c := range s.ToolCalls() {
				calls = append(calls, c.Name+" "+string(c.Arguments))
			}
			if diff := cmp.Diff([]string{`count_slowly {"count":3,"delay_ms":20}`}, calls); diff != "" {
				t.Errorf("recorded tool calls (-want +got):\n%s", diff)
			}
			for _, r := range s.Requests() {
				if got := r.Authorization(); got != "Bearer agent-token" {
					t.Errorf("%s %s carried Authorization %q, want the client's bearer token", r.Method, r.Path, got)
				}
			}
		})
	}
}

func TestGoServerToolResults(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	s := startGoServer(t, GoServerOptions{})
	cs, err := ConnectGoClient(ctx, s.URL(), "")
	if err != nil {
		t.Fatalf("ConnectGoClient: %v", err)
	}
	defer cs.Close()

	tests := []struct {
		tool    string
		args    map[string]any
		want    []string // text contents
		isError bool
	}{
		{ToolEcho, map[string]any{"text": "hello"}, []string{"hello"}, false},
		{ToolDeleteRepository, map[string]any{"repo": "acme/widgets"}, []string{"repository acme/widgets deleted"}, false},
		{ToolGetSecretConfig, nil, []string{SecretConfigEnvText, SecretConfigJSONText}, false},
		{ToolDeleteRepository, map[string]any{"repo": ""}, []string{"repo is required"}, true},
	}
	for _, tc := range tests {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
		if err != nil {
			t.Fatalf("CallTool %s: %v", tc.tool, err)
		}
		var got []string
		for _, c := range res.Content {
			got = append(got, c.(*mcp.TextContent).Text)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s %v content (-want +got):\n%s", tc.tool, tc.args, diff)
		}
		if res.IsError != tc.isError {
			t.Errorf("%s %v isError = %v, want %v", tc.tool, tc.args, res.IsError, tc.isError)
		}
	}

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: ToolSearchIssues, Arguments: map[string]any{"query": "token", "limit": 2}})
	if err != nil {
		t.Fatalf("CallTool search_issues: %v", err)
	}
	var found searchOut
	if err := json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &found); err != nil {
		t.Fatalf("search_issues text is not the issues JSON: %v", err)
	}
	wantIssues := searchOut{Issues: []Issue{
		{Number: 101, Title: "Login fails with expired token", State: "open", Repo: "acme/widgets"},
		{Number: 103, Title: "Token refresh races with logout", State: "open", Repo: "acme/widgets"},
	}}
	if diff := cmp.Diff(wantIssues, found); diff != "" {
		t.Errorf("search_issues (-want +got):\n%s", diff)
	}
	structured, err := json.Marshal(res.StructuredContent)
	if err != nil || !strings.Contains(string(structured), `"number":103`) {
		t.Errorf("search_issues structuredContent = %s, want the issues", structured)
	}

	var doc struct {
		Database struct{ Password string } `json:"database"`
		SMTP     struct{ Password string } `json:"smtp"`
	}
	if err := json.Unmarshal([]byte(SecretConfigJSONText), &doc); err != nil {
		t.Fatalf("SecretConfigJSONText is not JSON: %v", err)
	}
	if doc.Database.Password != FakeDBPassword || doc.SMTP.Password != FakeSMTPPassword {
		t.Errorf("SecretConfigJSONText passwords = %q, %q", doc.Database.Password, doc.SMTP.Password)
	}
	for _, secret := range FakeSecrets {
		if !strings.Contains(SecretConfigEnvText+SecretConfigJSONText, secret) {
			t.Errorf("get_secret_config does not return fake secret %.8s...", secret)
		}
	}

	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: ResourceSecrets})
	if err != nil {
		t.Fatalf("ReadResource %s: %v", ResourceSecrets, err)
	}
	if len(rr.Contents) != 2 || rr.Contents[0].Text != SecretConfigEnvText || rr.Contents[1].Text != SecretConfigJSONText {
		t.Errorf("ReadResource %s returned %d contents, not the secret config", ResourceSecrets, len(rr.Contents))
	}
	pr, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: PromptTriage, Arguments: map[string]string{"number": "7"}})
	if err != nil {
		t.Fatalf("GetPrompt: %v", err)
	}
	if got := pr.Messages[0].Content.(*mcp.TextContent).Text; !strings.HasPrefix(got, "Triage issue #7:") {
		t.Errorf("prompt text = %q", got)
	}
}

// TestGoServerStreamsSSE checks on the wire that count_slowly's answer is an
// SSE stream: one event per progress notification, then the result.
func TestGoServerStreamsSSE(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	s := startGoServer(t, GoServerOptions{Stateless: true})
	client := BearerHTTPClient("tok")
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"count_slowly",` +
		`"arguments":{"count":4,"delay_ms":10},"_meta":{"progressToken":"p1"}}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST tools/call: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST tools/call answered %s %q: %s", resp.Status, resp.Header.Get("Content-Type"), b)
	}
	var methods []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var msg struct {
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal([]byte(data), &msg); err != nil {
			t.Fatalf("SSE data %q: %v", data, err)
		}
		if msg.Result != nil {
			methods = append(methods, "result")
		} else {
			methods = append(methods, msg.Method)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading SSE: %v", err)
	}
	p := "notifications/progress"
	if diff := cmp.Diff([]string{p, p, p, p, "result"}, methods); diff != "" {
		t.Errorf("SSE events (-want +got):\n%s", diff)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].JSONRPCMethod() != "tools/call" || string(reqs[0].Body) != body || reqs[0].Authorization() != "Bearer tok" {
		t.Errorf("recorded requests = %+v, want the one tools/call with its body and token", reqs)
	}
}

func TestGoServerRequireBearer(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	s := startGoServer(t, GoServerOptions{RequireBearer: "upstream-credential"})
	if cs, err := ConnectGoClient(ctx, s.URL(), "agent-token"); err == nil {
		cs.Close()
		t.Fatal("connect with the agent's token succeeded, want 401 from the upstream")
	}
	cs, err := ConnectGoClient(ctx, s.URL(), "upstream-credential")
	if err != nil {
		t.Fatalf("connect with the upstream credential: %v", err)
	}
	cs.Close()
	reqs := s.Requests()
	if len(reqs) < 2 || reqs[0].Authorization() != "Bearer agent-token" || reqs[len(reqs)-1].Authorization() != "Bearer upstream-credential" {
		t.Errorf("recorded %d requests; want the refused one first and the accepted ones after", len(reqs))
	}
	s.Reset()
	if n := len(s.Requests()) + len(s.ToolCalls()); n != 0 {
		t.Errorf("after Reset, %d records remain", n)
	}
}
