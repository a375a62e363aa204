package peers

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkGoServerEcho measures one tools/call round trip to the Go server
// (stateless, SSE answer, request recorded): the upstream's own share of a
// gateway benchmark.
func BenchmarkGoServerEcho(b *testing.B) {
	s, err := StartGoServer(b.Context(), GoServerOptions{Stateless: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	client := BearerHTTPClient("bench-token")
	const body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}`
	b.ReportAllocs()
	for b.Loop() {
		req, err := http.NewRequestWithContext(b.Context(), http.MethodPost, s.URL(), strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(out), `"text":"hello"`) {
			b.Fatalf("echo answered %d %q: %v", resp.StatusCode, out, err)
		}
	}
}
