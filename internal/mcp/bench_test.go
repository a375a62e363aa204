package mcp

import (
	"strings"
	"testing"
)

// A tools/call as Claude Desktop-style clients send it: a few arguments, a
// progress token, and (2026-07-28) the per-request _meta.
const benchArgs = `"arguments":{"query":"SELECT id, email, created_at FROM users WHERE created_at > $1 ORDER BY created_at DESC LIMIT 50",` +
	`"params":["2026-01-01T00:00:00Z"],"database":"analytics","options":{"timeout_ms":30000,"read_only":true,"explain":false}}`

func BenchmarkParseHTTP(b *testing.B) {
	cases := []struct {
		name string
		req  *HTTPRequest
	}{
		{"2025-11-25/tools-call", post(`{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"run_sql",`+benchArgs+`,"_meta":{"progressToken":"p-17"}}}`,
			v25, "2025-11-25", "mcp-session-id", "6f1c2a3e-9b7d-4e2f-a1c3-5d8e9f0a1b2c", "accept", "application/json, text/event-stream",
			"authorization", "Bearer x", ":path", "/mcp/analytics", ":method", "POST")},
		{"2026-07-28/tools-call", post(`{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"run_sql",`+benchArgs+
			`,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"ExampleClient","version":"1.0.0"},"io.modelcontextprotocol/clientCapabilities":{}}}}`,
			v25, "2026-07-28", "mcp-method", "tools/call", "mcp-name", "run_sql", "accept", "application/json, text/event-stream",
			"authorization", "Bearer x", ":path", "/mcp/analytics", ":method", "POST")},
		{"2025-03-26/batch-of-3", post(`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a",` + benchArgs + `}},` +
			`{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///etc/app.conf"}},{"jsonrpc":"2.0","method":"notifications/initialized"}]`)},
		{"2025-11-25/tools-call-64KiB-arguments", post(`{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/tmp/x","content":"`+
			strings.Repeat("lorem ipsum dolor sit amet, ", 64<<10/28)+`"}}}`, v25, "2025-11-25")},
	}
	for _, c := range cases {
		if _, err := ParseHTTP(c.req); err != nil {
			b.Fatalf("%s: %s", c.name, err.Message)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.req.Body)))
			for b.Loop() {
				if _, err := ParseHTTP(c.req); err != nil {
					b.Fatal(err.Message)
				}
			}
		})
	}
}
