package peers

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestEverythingAnswersGoClient(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 45*time.Second)
	e, err := StartEverything(ctx, EverythingOptions{})
	if err != nil {
		t.Fatalf("StartEverything: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	// loopback.mjs pins the server, which takes only PORT, to 127.0.0.1.
	if diff := cmp.Diff([]string{"0100007F"}, listenAddrs(t, e.Port())); diff != "" {
		t.Errorf("server-everything listens on (-want +got, hex from /proc/net):\n%s", diff)
	}

	cs, err := ConnectGoClient(ctx, e.URL(), "")
	if err != nil {
		t.Fatalf("ConnectGoClient: %v\n%s", err, e.Output())
	}
	defer cs.Close()
	if got := cs.InitializeResult().ServerInfo.Name; got != "mcp-servers/everything" {
		t.Errorf("server name = %q, want mcp-servers/everything", got)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("ListTools: %v", err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	for _, want := range []string{"echo", "get-sum", "trigger-long-running-operation"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools %v lack %q", names, want)
		}
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "through the gateway"}})
	if err != nil {
		t.Fatalf("CallTool echo: %v", err)
	}
	want := []mcp.Content{&mcp.TextContent{Text: "Echo: through the gateway"}}
	if diff := cmp.Diff(want, res.Content); diff != "" {
		t.Errorf("echo content (-want +got):\n%s", diff)
	}

	// The TypeScript SDK client talks to the same server.
	results, err := RunTSClient(ctx, e.URL(), "", []Step{CallTool("echo", map[string]any{"message": "from TypeScript"})})
	if err != nil {
		t.Fatalf("RunTSClient: %v", err)
	}
	if len(results) != 2 || !results[1].OK {
		t.Fatalf("TS client results = %v, want connect and echo", results)
	}
	if got, err := results[1].Text(); err != nil || got != "Echo: from TypeScript" {
		t.Errorf("TS client echo = %q (%v), want \"Echo: from TypeScript\"", got, err)
	}
}
