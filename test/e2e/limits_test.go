package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/test/harness"
)

// An MCP server's answer over limits.max_response_bytes reaches the agent
// as a JSON-RPC error carrying its request's id — through the data path,
// from a real server — never as Envoy's plain-text 500 and never unmasked.
// Envoy's stream buffer is sized from the larger body limit and ext_proc
// reads JSON BUFFERED_PARTIAL, so airlock sees the overflow (envoy.md,
// "Limits"). An answer under the limit passes.
func TestResponseOverTheLimitAnswersByID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const limit = 64 << 10
	s, err := harness.Start(ctx, harness.Options{ADS: true, MaxResponseBytes: limit,
		// One SSE event may not exceed the response limit (validate says so).
		ExtraConfig: func(string) string { return "masking: {max_event_bytes: 16384}\n" }})
	if err != nil {
		t.Fatalf("cannot start the stack: %v", err)
	}
	defer s.Close()
	tok, err := s.Token("00u-limits", "jsonapi")
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{"MCP-Protocol-Version": "2025-06-18"}
	echo := func(id int, n int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":%q}}}`, id, strings.Repeat("a", n))
	}
	for _, tc := range []struct {
		name   string
		id, n  int
		status int
	}{
		{"under the limit", 41, 1 << 10, 200},
		{"over the limit", 42, 2 * limit, 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, s.TargetURL("jsonapi"), tok, headers, echo(tc.id, tc.n))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tc.status, body)
			}
			var msg struct {
				ID     int             `json:"id"`
				Result json.RawMessage `json:"result"`
				Error  *struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &msg); err != nil {
				t.Fatalf("the answer is not one JSON-RPC message (%v): %.300s", err, body)
			}
			if msg.ID != tc.id {
				t.Errorf("answer id %d, want the request's %d", msg.ID, tc.id)
			}
			switch tc.status {
			case 200:
				if msg.Error != nil || !strings.Contains(string(msg.Result), strings.Repeat("a", tc.n)) {
					t.Errorf("under the limit: %.300s", body)
				}
			default:
				if msg.Error == nil || !strings.Contains(msg.Error.Message, "limits.max_response_bytes") {
					t.Errorf("over the limit: want a JSON-RPC error naming limits.max_response_bytes, got %.300s", body)
				}
			}
		})
	}
}
