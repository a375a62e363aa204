package mcp

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// modern builds a 2026-07-28 POST; headers are added to MCP-Protocol-Version.
func modern(body string, headers ...string) *HTTPRequest {
	return post(body, append([]string{v25, Version20260728}, headers...)...)
}

func b64(s string) string { return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=" }

func TestMirroredHeaders(t *testing.T) {
	call := func(name string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{` + meta2026 + `,"name":` + strings.TrimSpace(mustJSON(name)) + `,"arguments":{}}}`
	}
	read := `{"jsonrpc":"2.0","id":"r","method":"resources/read","params":{"uri":"file:///a b/ü.txt",` + meta2026 + `}}`
	prompt := `{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"review",` + meta2026 + `}}`
	list := `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{` + meta2026 + `}}`
	notify := `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`
	long := strings.Repeat("x", 200)

	tests := []struct {
		name string
		req  *HTTPRequest
		want *Error // nil: accepted
	}{
		{"tools/call plain name", modern(call("get_weather"), "mcp-method", "tools/call", "mcp-name", "get_weather"), nil},
		{"tools/call name with space and tab", modern(call("a b\tc"), "mcp-method", "tools/call", "mcp-name", "a b\tc"), nil},
		{"tools/call base64 name", modern(call("天気"), "mcp-method", "tools/call", "mcp-name", b64("天気")), nil},
		{"tools/call base64 without padding", modern(call("ab"), "mcp-method", "tools/call", "mcp-name", "=?base64?YWI?="), nil},
		{"base64 of a plain name", modern(call("get_weather"), "mcp-method", "tools/call", "mcp-name", b64("get_weather")), nil},
		{"literal sentinel name must be encoded", modern(call("=?base64?literal?="), "mcp-method", "tools/call", "mcp-name", b64("=?base64?literal?=")), nil},
		{"resources/read uri", modern(read, "mcp-method", "resources/read", "mcp-name", b64("file:///a b/ü.txt")), nil},
		{"prompts/get", modern(prompt, "mcp-method", "prompts/get", "mcp-name", "review"), nil},
		{"tools/list needs no name", modern(list, "mcp-method", "tools/list"), nil},
		{"notification with method header", modern(notify, "mcp-method", "notifications/cancelled"), nil},

		{"missing Mcp-Method", modern(call("t"), "mcp-name", "t"),
			e400(CodeHeaderMismatch, "1", `Mcp-Method header is required under protocol 2026-07-28; it must equal the body method "tools/call"`)},
		{"Mcp-Method mismatch", modern(call("t"), "mcp-method", "tools/list", "mcp-name", "t"),
			e400(CodeHeaderMismatch, "1", `Mcp-Method header "tools/list" does not match the body method "tools/call"`)},
		{"Mcp-Method is case-sensitive", modern(call("t"), "mcp-method", "Tools/Call", "mcp-name", "t"),
			e400(CodeHeaderMismatch, "1", `Mcp-Method header "Tools/Call" does not match`)},
		{"Mcp-Method empty", modern(call("t"), "mcp-method", "", "mcp-name", "t"),
			e400(CodeHeaderMismatch, "1", `Mcp-Method header "" does not match the body method "tools/call"`)},
		{"Mcp-Method repeated (Envoy comma-joins)", modern(call("t"), "mcp-method", "tools/call,tools/call", "mcp-name", "t"),
			e400(CodeHeaderMismatch, "1", `Mcp-Method header "tools/call,tools/call" does not match`)},
		{"long Mcp-Method is clipped", modern(call("t"), "mcp-method", long, "mcp-name", "t"),
			e400(CodeHeaderMismatch, "1", `Mcp-Method header "`+long[:64]+`"... (200 bytes) does not match`)},
		{"notification without Mcp-Method", modern(notify),
			e400(CodeHeaderMismatch, "", `Mcp-Method header is required under protocol 2026-07-28; it must equal the body method "notifications/cancelled"`)},
		{"missing Mcp-Name for tools/call", modern(call("get_weather"), "mcp-method", "tools/call"),
			e400(CodeHeaderMismatch, "1", `Mcp-Name header is required for tools/call under protocol 2026-07-28; it must equal params.name "get_weather"`)},
		{"missing Mcp-Name for resources/read", modern(read, "mcp-method", "resources/read"),
			e400(CodeHeaderMismatch, `"r"`, `Mcp-Name header is required for resources/read under protocol 2026-07-28; it must equal params.uri "file:///a b/ü.txt"`)},
		{"missing Mcp-Name for prompts/get", modern(prompt, "mcp-method", "prompts/get"),
			e400(CodeHeaderMismatch, "2", `Mcp-Name header is required for prompts/get`)},
		{"Mcp-Name mismatch", modern(call("delete_everything"), "mcp-method", "tools/call", "mcp-name", "get_weather"),
			e400(CodeHeaderMismatch, "1", `Mcp-Name header "get_weather" does not match params.name "delete_everything"`)},
		{"Mcp-Name mismatch on uri", modern(read, "mcp-method", "resources/read", "mcp-name", "file:///other"),
			e400(CodeHeaderMismatch, `"r"`, `Mcp-Name header "file:///other" does not match params.uri "file:///a b/ü.txt"`)},
		{"Mcp-Name base64 mismatch", modern(call("a"), "mcp-method", "tools/call", "mcp-name", b64("b")),
			e400(CodeHeaderMismatch, "1", `Mcp-Name header (base64-decoded) "b" does not match params.name "a"`)},
		{"Mcp-Name sentinel not decoded when markers differ in case", modern(call("a"), "mcp-method", "tools/call", "mcp-name", "=?BASE64?YQ==?="),
			e400(CodeHeaderMismatch, "1", `Mcp-Name header "=?BASE64?YQ==?=" does not match params.name "a"`)},
		{"Mcp-Name bad base64", modern(call("a"), "mcp-method", "tools/call", "mcp-name", "=?base64?!!!?="),
			e400(CodeHeaderMismatch, "1", `Mcp-Name header "=?base64?!!!?=" is not valid base64 inside =?base64?...?=`)},
		{"Mcp-Name non-ASCII plain", modern(call("天気"), "mcp-method", "tools/call", "mcp-name", "天気"),
			e400(CodeHeaderMismatch, "1", `Mcp-Name header "天気" has a character outside visible ASCII at byte 0; such values must use the =?base64?...?= form`)},
		{"Mcp-Name with control character", modern(call("a\x01"), "mcp-method", "tools/call", "mcp-name", "a\x01"),
			e400(CodeHeaderMismatch, "1", `has a character outside visible ASCII at byte 1`)},
		{"Mcp-Name on tools/list", modern(list, "mcp-method", "tools/list", "mcp-name", "get_weather"),
			e400(CodeHeaderMismatch, "3", `Mcp-Name header is defined only for tools/call, resources/read and prompts/get requests, not for a request "tools/list"`)},
		{"Mcp-Name on a notification", modern(notify, "mcp-method", "notifications/cancelled", "mcp-name", "x"),
			e400(CodeHeaderMismatch, "", `not for a notification "notifications/cancelled"`)},

		{"request without _meta version", modern(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, "mcp-method", "tools/list"),
			e400(CodeHeaderMismatch, "1", `under protocol 2026-07-28 a request must carry params._meta["io.modelcontextprotocol/protocolVersion"] equal to the MCP-Protocol-Version header "2026-07-28"`)},
		{"request with _meta but no version", modern(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{}}}`, "mcp-method", "tools/list"),
			e400(CodeHeaderMismatch, "1", `a request must carry params._meta["io.modelcontextprotocol/protocolVersion"]`)},
		{"_meta version differs", modern(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25"}}}`, "mcp-method", "tools/list"),
			e400(CodeHeaderMismatch, "1", `MCP-Protocol-Version header "2026-07-28" does not match params._meta["io.modelcontextprotocol/protocolVersion"] "2025-11-25"`)},
		{"_meta version not a string", modern(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":20260728}}}`, "mcp-method", "tools/list"),
			e400(CodeHeaderMismatch, "1", `params._meta["io.modelcontextprotocol/protocolVersion"] must be a string, not a JSON number`)},
		{"_meta version under a legacy header", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t",`+meta2026+`}}`, v25, "2025-11-25"),
			e400(CodeHeaderMismatch, "1", `MCP-Protocol-Version header "2025-11-25" does not match params._meta["io.modelcontextprotocol/protocolVersion"] "2026-07-28"`)},
		{"_meta version without a header", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t",` + meta2026 + `}}`),
			e400(CodeHeaderMismatch, "1", `params._meta["io.modelcontextprotocol/protocolVersion"] is "2026-07-28" but the MCP-Protocol-Version header is missing`)},
		{"response under 2026-07-28", modern(`{"jsonrpc":"2.0","id":1,"result":{}}`),
			e400(CodeInvalidRequest, "1", "protocol 2026-07-28 does not let a client POST a JSON-RPC response")},

		// Under older versions the headers are optional, but checked when present.
		{"legacy without mirrored headers", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}`, v25, "2025-11-25"), nil},
		{"legacy with matching headers", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}`, v25, "2025-06-18", "mcp-method", "tools/call", "mcp-name", "t"), nil},
		{"legacy Mcp-Method mismatch", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}`, v25, "2025-06-18", "mcp-method", "tools/list"),
			e400(CodeHeaderMismatch, "1", `Mcp-Method header "tools/list" does not match the body method "tools/call"`)},
		{"legacy Mcp-Name mismatch", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rm"}}`, "mcp-name", "ls"),
			e400(CodeHeaderMismatch, "1", `Mcp-Name header "ls" does not match params.name "rm"`)},
		{"legacy Mcp-Name on resources/subscribe", post(`{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"a"}}`, "mcp-name", "a"),
			e400(CodeHeaderMismatch, "1", `not for a request "resources/subscribe"`)},
		{"legacy Mcp-Method on a response", post(`{"jsonrpc":"2.0","id":1,"result":{}}`, "mcp-method", "ping"),
			e400(CodeHeaderMismatch, "1", `Mcp-Method header "ping" is present but the body is a response, which has no method`)},
		{"legacy Mcp-Name on a response", post(`{"jsonrpc":"2.0","id":1,"result":{}}`, "mcp-name", "x"),
			e400(CodeHeaderMismatch, "1", `not for a response`)},
		{"batch checked element by element", post(`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`, "mcp-method", "ping"),
			e400(CodeHeaderMismatch, "2", `batch element 1: Mcp-Method header "ping" does not match the body method "tools/list"`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHTTP(tt.req)
			checkErr(t, err, tt.want)
			if tt.want == nil && (got == nil || len(got.Messages) != 1) {
				t.Fatalf("Call = %+v, want one message", got)
			}
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestDecodeMirrored(t *testing.T) {
	tests := []struct {
		in          string
		wantDecoded string
		wantEncoded bool
		wantProblem string
	}{
		{in: "plain"},
		{in: "with space\tand tab"},
		{in: "=?base64?SGVsbG8sIOS4lueVjA==?=", wantDecoded: "Hello, 世界", wantEncoded: true},
		{in: "=?base64?IHBhZGRlZCA=?=", wantDecoded: " padded ", wantEncoded: true},
		{in: "=?base64?bGluZTEKbGluZTI=?=", wantDecoded: "line1\nline2", wantEncoded: true},
		{in: "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=", wantDecoded: "=?base64?literal?=", wantEncoded: true},
		{in: "=?base64??=", wantDecoded: "", wantEncoded: true},
		{in: "=?base64?=", wantProblem: ""}, // too short for both markers: a plain value
		{in: "=?base64?YQ?=", wantDecoded: "a", wantEncoded: true},
		{in: "=?base64?Y\nQ==?=", wantEncoded: true, wantProblem: "is not valid base64 inside =?base64?...?="},
		{in: "=?base64?YQ=?=", wantEncoded: true, wantProblem: "is not valid base64 inside =?base64?...?="},
		{in: "=?base64?" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("long value ", 40))) + "?=", wantDecoded: strings.Repeat("long value ", 40), wantEncoded: true},
		{in: "tab\x7f", wantProblem: "has a character outside visible ASCII at byte 3; such values must use the =?base64?...?= form"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var buf [8]byte
			dec, enc, problem := decodeMirrored(tt.in, buf[:0])
			got := []any{string(dec), enc, problem}
			want := []any{tt.wantDecoded, tt.wantEncoded, tt.wantProblem}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("decodeMirrored(%q) (-want +got):\n%s", tt.in, d)
			}
		})
	}
}
