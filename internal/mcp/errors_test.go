package mcp

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func e400(code int, id, fragment string) *Error {
	e := &Error{HTTPStatus: 400, Code: code, Message: fragment}
	if id != "" {
		e.ID = json.RawMessage(id)
	}
	return e
}

const v25 = "mcp-protocol-version"

func TestParseHTTPErrors(t *testing.T) {
	deep := strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) // the message object is level 1
	tooDeep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	longVersion := strings.Repeat("9", 300)
	tests := []struct {
		name string
		req  *HTTPRequest
		want *Error
	}{
		// HTTP level.
		{"content-type text/plain", post(`{}`, "content-type", "text/plain"),
			&Error{HTTPStatus: 415, Code: CodeInvalidRequest, Message: `Content-Type "text/plain" is not supported; an MCP POST body must be application/json`}},
		{"content-type json-ish", post(`{}`, "content-type", "application/json-patch+json"),
			&Error{HTTPStatus: 415, Code: CodeInvalidRequest, Message: `Content-Type "application/json-patch+json"`}},
		{"content-type empty", post(`{}`, "content-type", ""),
			&Error{HTTPStatus: 415, Code: CodeInvalidRequest, Message: `Content-Type "" is not supported`}},
		{"truncated body", &HTTPRequest{Method: "POST", Headers: map[string]string{"content-type": "application/json"}, Body: []byte(`{"jsonrpc":"2.0","id":1,"met`), Truncated: true},
			&Error{HTTPStatus: 413, Code: CodeInvalidRequest, ID: json.RawMessage(`1`), Message: "request body was cut at the gateway limit; the call cannot be checked"}},
		{"partial-body header", post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, "x-envoy-auth-partial-body", "true"),
			&Error{HTTPStatus: 413, Code: CodeInvalidRequest, ID: json.RawMessage(`1`), Message: "request body was cut at the gateway limit"}},
		{"empty body", post(``), e400(CodeParseError, "", "request body is empty")},
		{"session id under 2026-07-28", post(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{`+meta2026+`}}`,
			v25, "2026-07-28", "mcp-method", "tools/list", "mcp-session-id", "victims-session"),
			&Error{HTTPStatus: 400, Code: CodeInvalidRequest, ID: json.RawMessage(`1`), Message: "Mcp-Session-Id is not part of protocol 2026-07-28"}},
		{"whitespace body", post(" \r\n\t "), e400(CodeParseError, "", "request body is empty")},
		{"unsupported version", post(`{"jsonrpc":"2.0","id":5,"method":"ping"}`, v25, "2025-13-01"),
			&Error{HTTPStatus: 400, Code: CodeUnsupportedProtocolVersion, ID: json.RawMessage(`5`),
				Message: `MCP-Protocol-Version "2025-13-01" is not supported; supported versions: 2026-07-28, 2025-11-25, 2025-06-18, 2025-03-26, 2024-11-05`,
				Data:    UnsupportedVersionData{Supported: SupportedVersions(), Requested: "2025-13-01"}}},
		{"long unsupported version is clipped", post(`{"jsonrpc":"2.0","id":5,"method":"ping"}`, v25, longVersion),
			&Error{HTTPStatus: 400, Code: CodeUnsupportedProtocolVersion, ID: json.RawMessage(`5`),
				Message: `MCP-Protocol-Version "` + longVersion[:64] + `"... (300 bytes) is not supported`,
				Data:    UnsupportedVersionData{Supported: SupportedVersions(), Requested: longVersion[:64]}}},
		{"empty version", post(`{"jsonrpc":"2.0","method":"ping","id":"x"}`, v25, ""),
			&Error{HTTPStatus: 400, Code: CodeUnsupportedProtocolVersion, ID: json.RawMessage(`"x"`), Message: `MCP-Protocol-Version "" is not supported`,
				Data: UnsupportedVersionData{Supported: SupportedVersions(), Requested: ""}}},
		{"empty session id", post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, "mcp-session-id", ""),
			e400(CodeInvalidRequest, "1", "Mcp-Session-Id header is empty")},
		{"session id with space", post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, "mcp-session-id", "abc def"),
			e400(CodeInvalidRequest, "1", "Mcp-Session-Id header must be visible ASCII (0x21-0x7E); byte 3 is not")},
		{"session id non-ASCII", post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, "mcp-session-id", "abcé"),
			e400(CodeInvalidRequest, "1", "byte 3 is not")},

		// JSON syntax: -32700 with the byte offset.
		{"unterminated object", post(`{"jsonrpc":"2.0",`), e400(CodeParseError, "", "invalid JSON at byte 17: unexpected end of input, expected a string member name")},
		{"trailing comma", post(`{"jsonrpc":"2.0","id":1,"method":"ping",}`), e400(CodeParseError, "", "invalid JSON at byte 40: unexpected character '}', expected a string member name")},
		{"trailing data", post(`{"jsonrpc":"2.0","id":1,"method":"ping"} {}`), e400(CodeParseError, "", "invalid JSON at byte 41: unexpected character '{', expected the end of the body")},
		{"byte order mark", post("\xef\xbb\xbf{}"), e400(CodeParseError, "", "invalid JSON at byte 0: unexpected byte 0xef")},
		{"single quotes", post(`{'jsonrpc':'2.0'}`), e400(CodeParseError, "", "invalid JSON at byte 1: unexpected character '\\'', expected a string member name")},
		{"bad literal", post(`{"jsonrpc":"2.0","id":tru}`), e400(CodeParseError, "", `invalid JSON at byte 25: unexpected character '}', expected "true"`)},
		{"leading zero", post(`{"jsonrpc":"2.0","id":01,"method":"ping"}`), e400(CodeParseError, "", "invalid JSON at byte 23: unexpected character '1', expected ',' or '}'")},
		{"bare minus", post(`{"jsonrpc":"2.0","id":-,"method":"ping"}`), e400(CodeParseError, "", "invalid JSON at byte 23: unexpected character ',', expected a digit")},
		{"control character in string", post("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"pi\nng\"}"), e400(CodeParseError, "", "invalid JSON at byte 36: control byte 0x0a in string")},
		{"bad escape", post(`{"jsonrpc":"2.0","id":1,"method":"p\x"}`), e400(CodeParseError, "", `invalid JSON at byte 35: invalid escape \character 'x'`)},
		{"bad unicode escape", post(`{"jsonrpc":"2.0","id":1,"method":"p\u12"}`), e400(CodeParseError, "", `invalid JSON at byte 35: invalid \u escape`)},
		{"invalid UTF-8", post("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"t\",\"arguments\":{\"q\":\"\xff\"}}}"),
			e400(CodeParseError, "", "invalid JSON at byte 85: invalid UTF-8 in string")},
		{"UTF-8 encoded surrogate", post("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\xed\xa0\x80\"}"), e400(CodeParseError, "", "invalid UTF-8 in string")},
		{"unpaired high surrogate", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a\ud800b"}}`),
			e400(CodeParseError, "", `invalid JSON at byte 65: \u escape is an unpaired UTF-16 surrogate`)},
		{"unpaired low surrogate", post(`{"jsonrpc":"2.0","id":1,"method":"a\udc00"}`), e400(CodeParseError, "", "unpaired UTF-16 surrogate")},
		{"reversed surrogate pair", post(`{"jsonrpc":"2.0","id":1,"method":"a\udc00\ud800"}`), e400(CodeParseError, "", "unpaired UTF-16 surrogate")},
		{"nesting too deep", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":` + tooDeep + `}}}`),
			e400(CodeParseError, "", "objects and arrays nest deeper than 1000 levels")},
		{"nesting at the limit is fine but params must be an object", post(`{"jsonrpc":"2.0","id":1,"method":"m","params":` + deep + `}`),
			e400(CodeInvalidParams, "1", `"params" of "m" must be an object, not a JSON array`)},

		// Duplicate member names: -32700, anywhere in the body.
		{"duplicate method", post(`{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"rm"}}`),
			e400(CodeParseError, "", `invalid JSON at byte 46: duplicate member name "method"`)},
		{"duplicate id", post(`{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`), e400(CodeParseError, "", `duplicate member name "id"`)},
		{"duplicate params.name", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","name":"rm_rf"}}`),
			e400(CodeParseError, "", `duplicate member name "name"`)},
		{"duplicate through escape", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","n\u0061me":"rm_rf"}}`),
			e400(CodeParseError, "", `duplicate member name "name"`)},
		{"case-variant duplicate in params", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","Name":"rm_rf"}}`),
			e400(CodeParseError, "", `member names "name" and "Name" differ only in letter case`)},
		{"case-variant duplicate in arguments", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"path":"/tmp","PATH":"/etc"}}}`),
			e400(CodeParseError, "", `member names "path" and "PATH" differ only in letter case`)},
		{"Kelvin sign folds to k", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"k":1,"\u212a":2}}}`),
			e400(CodeParseError, "", "member names \"k\" and \"\u212a\" differ only in letter case")},
		{"duplicate deep in result", post(`{"jsonrpc":"2.0","id":1,"result":{"a":[{"x":1,"x":2}]}}`), e400(CodeParseError, "", `duplicate member name "x"`)},

		// Member names the gateway reads are case-sensitive: -32600.
		{"Method instead of method", post(`{"jsonrpc":"2.0","id":1,"Method":"tools/call","result":{}}`),
			e400(CodeInvalidRequest, "1", `member name "Method" (byte 24) differs from "method" only in letter case; member names are case-sensitive`)},
		{"ID instead of id", post(`{"jsonrpc":"2.0","ID":1,"method":"tools/call","params":{"name":"t"}}`),
			e400(CodeInvalidRequest, "", `member name "ID" (byte 17) differs from "id" only in letter case`)},
		{"Params instead of params", post(`{"jsonrpc":"2.0","id":1,"method":"tools/list","Params":{"name":"t"}}`),
			e400(CodeInvalidRequest, "1", `differs from "params" only in letter case`)},
		{"Name instead of params.name", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"t"}}`),
			e400(CodeInvalidRequest, "1", `member name "Name" (byte 56) differs from "params.name" only in letter case`)},
		{"escaped case variant", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"\u004eame":"t"}}`),
			e400(CodeInvalidRequest, "1", `member name "Name" (byte 56) differs from "params.name"`)},
		{"case variant of the _meta version", post(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolversion":"2026-07-28"}}}`),
			e400(CodeInvalidRequest, "1", `differs from "params._meta.io.modelcontextprotocol/protocolVersion" only in letter case`)},

		// JSON-RPC shape: -32600.
		{"top-level number", post(`42`), e400(CodeInvalidRequest, "", "the body is a JSON number, not a JSON-RPC message object (byte 0)")},
		{"top-level null", post(` null`), e400(CodeInvalidRequest, "", "the body is a JSON null, not a JSON-RPC message object (byte 1)")},
		{"jsonrpc missing", post(`{"id":1,"method":"ping"}`), e400(CodeInvalidRequest, "1", `"jsonrpc" must be "2.0"; it is missing`)},
		{"jsonrpc 1.0", post(`{"jsonrpc":"1.0","id":1,"method":"ping"}`), e400(CodeInvalidRequest, "1", `"jsonrpc" must be "2.0"; got "1.0"`)},
		{"jsonrpc number", post(`{"jsonrpc":2.0,"id":1,"method":"ping"}`), e400(CodeInvalidRequest, "1", `"jsonrpc" must be "2.0"; got a JSON number`)},
		{"method number", post(`{"jsonrpc":"2.0","id":1,"method":7}`), e400(CodeInvalidRequest, "1", `"method" must be a string, not a JSON number`)},
		{"method empty", post(`{"jsonrpc":"2.0","id":1,"method":""}`), e400(CodeInvalidRequest, "1", `"method" is empty`)},
		{"method with result", post(`{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}`), e400(CodeInvalidRequest, "1", `a message with "method" must not carry "result" or "error"`)},
		{"request id null", post(`{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"t"}}`),
			e400(CodeInvalidRequest, "", `the id of request "tools/call" must be a string or a number, not null`)},
		{"request id object", post(`{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`), e400(CodeInvalidRequest, "", `the id of request "ping" must be a string or a number, not a JSON object`)},
		{"request id bool", post(`{"jsonrpc":"2.0","id":true,"method":"ping"}`), e400(CodeInvalidRequest, "", "not a JSON boolean")},
		{"params array", post(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[1]}`), e400(CodeInvalidParams, "1", `"params" of "tools/list" must be an object, not a JSON array`)},
		{"params string in notification", post(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":"x"}`),
			e400(CodeInvalidParams, "", `"params" of "notifications/cancelled" must be an object, not a JSON string`)},
		{"response with result and error", post(`{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}`),
			e400(CodeInvalidRequest, "1", `a response carries "result" or "error", not both`)},
		{"response with params", post(`{"jsonrpc":"2.0","id":1,"result":{},"params":{}}`), e400(CodeInvalidRequest, "1", `a response must not carry "params"`)},
		{"result without id", post(`{"jsonrpc":"2.0","result":{}}`), e400(CodeInvalidRequest, "", "a result response needs an id that is a string or a number")},
		{"result with null id", post(`{"jsonrpc":"2.0","id":null,"result":{}}`), e400(CodeInvalidRequest, "", "a result response needs an id")},
		{"result not an object", post(`{"jsonrpc":"2.0","id":1,"result":[]}`), e400(CodeInvalidRequest, "1", `"result" must be an object, not a JSON array`)},
		{"error not an object", post(`{"jsonrpc":"2.0","id":1,"error":"boom"}`), e400(CodeInvalidRequest, "1", `"error" must be an object, not a JSON string`)},
		{"error response id array", post(`{"jsonrpc":"2.0","id":[1],"error":{"code":1,"message":"m"}}`), e400(CodeInvalidRequest, "", "the id of an error response must be a string, a number or null")},
		{"id only", post(`{"jsonrpc":"2.0","id":1}`), e400(CodeInvalidRequest, "1", `the message has an "id" but no "method", "result" or "error"`)},
		{"nothing", post(`{"jsonrpc":"2.0"}`), e400(CodeInvalidRequest, "", `the message has no "method", "result" or "error"`)},

		// Params of the calls policy reads: -32602 with the id.
		{"tools/call without params", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`), e400(CodeInvalidParams, "1", `tools/call needs "params" with a string "name"`)},
		{"tools/call params null", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}`), e400(CodeInvalidParams, "1", `tools/call needs "params" with a string "name"`)},
		{"tools/call without name", post(`{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"arguments":{}}}`), e400(CodeInvalidParams, `"c1"`, "tools/call needs params.name")},
		{"tools/call name number", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":3}}`), e400(CodeInvalidParams, "1", "params.name of tools/call must be a string, not a JSON number")},
		{"tools/call name empty", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":""}}`), e400(CodeInvalidParams, "1", "params.name of tools/call is empty")},
		{"tools/call arguments array", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":[1]}}`),
			e400(CodeInvalidParams, "1", "params.arguments of tools/call must be an object, not a JSON array")},
		{"tools/call arguments string", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":"{}"}}`),
			e400(CodeInvalidParams, "1", "params.arguments of tools/call must be an object, not a JSON string")},
		{"prompts/get without name", post(`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{}}`), e400(CodeInvalidParams, "1", "prompts/get needs params.name")},
		{"prompts/get arguments number", post(`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":1}}`),
			e400(CodeInvalidParams, "1", "params.arguments of prompts/get must be an object")},
		{"resources/read without uri", post(`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"x"}}`), e400(CodeInvalidParams, "1", "resources/read needs params.uri")},
		{"resources/subscribe without params", post(`{"jsonrpc":"2.0","id":1,"method":"resources/subscribe"}`), e400(CodeInvalidParams, "1", `resources/subscribe needs "params" with a string "uri"`)},
		{"resources/unsubscribe uri number", post(`{"jsonrpc":"2.0","id":1,"method":"resources/unsubscribe","params":{"uri":1}}`),
			e400(CodeInvalidParams, "1", "params.uri of resources/unsubscribe must be a string")},

		// Batches.
		{"batch under 2025-06-18", post(`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, v25, "2025-06-18"),
			e400(CodeInvalidRequest, "", "the body is a JSON-RPC batch array, which protocol 2025-06-18 does not allow")},
		{"batch under 2025-11-25", post(`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, v25, "2025-11-25"),
			e400(CodeInvalidRequest, "", "which protocol 2025-11-25 does not allow")},
		{"batch under 2026-07-28", post(`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, v25, "2026-07-28", "mcp-method", "ping"),
			e400(CodeInvalidRequest, "", "which protocol 2026-07-28 does not allow")},
		{"empty batch", post(`[]`), e400(CodeInvalidRequest, "", "empty JSON-RPC batch array")},
		{"empty batch with whitespace", post(" [ \n ] ", v25, "2024-11-05"), e400(CodeInvalidRequest, "", "empty JSON-RPC batch array")},
		{"batch element not an object", post(`[{"jsonrpc":"2.0","id":1,"method":"ping"}, 7]`),
			e400(CodeInvalidRequest, "", "batch element 1: the element at byte 43 is a JSON number, not a JSON-RPC message object")},
		{"batch element bad jsonrpc", post(`[{"jsonrpc":"2.0","method":"notifications/initialized"},{"id":2,"method":"ping"}]`),
			e400(CodeInvalidRequest, "2", `batch element 1: "jsonrpc" must be "2.0"`)},
		{"batch element missing tool name", post(`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{}}]`),
			e400(CodeInvalidParams, "9", "batch element 1: tools/call needs params.name")},
		{"initialize in a batch", post(`[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}]`),
			e400(CodeInvalidRequest, "1", "batch element 0: initialize must not be part of a JSON-RPC batch")},
		{"batch mixing requests and responses", post(`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"result":{}}]`),
			e400(CodeInvalidRequest, "", "a batch holds either requests and notifications or responses, not both")},
		{"duplicate inside a batch element", post(`[{"jsonrpc":"2.0","id":1,"method":"ping","id":2}]`), e400(CodeParseError, "", `duplicate member name "id"`)},
		{"batch too long", post("[" + strings.Repeat(`{"jsonrpc":"2.0","method":"n"},`, maxBatch) + `{"jsonrpc":"2.0","method":"n"}]`),
			e400(CodeInvalidRequest, "", "a batch may hold at most 1000 messages (element 1000 starts at byte 31001)")},
		{"unterminated batch", post(`[{"jsonrpc":"2.0","id":1,"method":"ping"}`), e400(CodeParseError, "", "invalid JSON at byte 41: unexpected end of input, expected ',' or ']' after a batch element")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHTTP(tt.req)
			checkErr(t, err, tt.want)
			if got != nil {
				t.Errorf("Call = %+v, want nil with an error", got)
			}
		})
	}
}

// Requests at the edges of the rules that must pass.
func TestParseHTTPAccepts(t *testing.T) {
	limitBatch := make([]Message, maxBatch)
	for i := range limitBatch {
		limitBatch[i] = Message{Kind: KindNotification, Method: "n"}
	}
	tests := []struct {
		name string
		req  *HTTPRequest
		want *Call
	}{
		{"content-type with charset", post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, "content-type", "application/json; charset=utf-8"),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20250326, Messages: []Message{{Kind: KindRequest, Method: "ping", ID: json.RawMessage(`1`)}}}},
		{"content-type upper case", post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, "content-type", " Application/JSON "),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20250326, Messages: []Message{{Kind: KindRequest, Method: "ping", ID: json.RawMessage(`1`)}}}},
		{"partial-body header false", post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, "x-envoy-auth-partial-body", "false"),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20250326, Messages: []Message{{Kind: KindRequest, Method: "ping", ID: json.RawMessage(`1`)}}}},
		{"session id kept", post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, v25, "2025-11-25", "mcp-session-id", "s-1~!"),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20251125, SessionID: "s-1~!", Messages: []Message{{Kind: KindRequest, Method: "ping", ID: json.RawMessage(`1`)}}}},
		{"escapes decoded, raw kept", post(` {"jsonrpc":"2\u002e0", "id" : "a\"b", "method":"tools\/call","params":{"name":"get\u005fw\u00e9ather \ud83c\udf24","arguments":null}} `),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20250326, Messages: []Message{{Kind: KindRequest, Method: "tools/call", ID: json.RawMessage(`"a\"b"`),
				Tool: "get_wéather 🌤", Params: json.RawMessage(`{"name":"get\u005fw\u00e9ather \ud83c\udf24","arguments":null}`)}}}},
		{"notification with null params", post(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":null}`),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20250326, Messages: []Message{{Kind: KindNotification, Method: "notifications/cancelled"}}}},
		{"error response with null id", post(`{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"nope"}}`),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20250326, Messages: []Message{{Kind: KindResponse, RPCError: json.RawMessage(`{"code":-32601,"message":"nope"}`)}}}},
		{"error response with id", post(`{"jsonrpc":"2.0","id":"e","error":{"code":1,"message":"m"}}`),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20250326, Messages: []Message{{Kind: KindResponse, ID: json.RawMessage(`"e"`), RPCError: json.RawMessage(`{"code":1,"message":"m"}`)}}}},
		{"unknown members ignored", post(`{"jsonrpc":"2.0","id":-1.5e3,"method":"tools/call","params":{"name":"t","task":{"ttl":1},"_meta":{"progressToken":1}},"x-ext":true}`),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20250326, Messages: []Message{{Kind: KindRequest, Method: "tools/call", ID: json.RawMessage(`-1.5e3`), Tool: "t",
				Params: json.RawMessage(`{"name":"t","task":{"ttl":1},"_meta":{"progressToken":1}}`)}}}},
		{"same name in different objects", post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"name":"n","o":{"name":"m"}}}}`),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20250326, Messages: []Message{{Kind: KindRequest, Method: "tools/call", ID: json.RawMessage(`1`), Tool: "t",
				Arguments: json.RawMessage(`{"name":"n","o":{"name":"m"}}`), Params: json.RawMessage(`{"name":"t","arguments":{"name":"n","o":{"name":"m"}}}`)}}}},
		{"resources/subscribe uri", post(`{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"db://t"}}`),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20250326, Messages: []Message{{Kind: KindRequest, Method: "resources/subscribe", ID: json.RawMessage(`1`), URI: "db://t",
				Params: json.RawMessage(`{"uri":"db://t"}`)}}}},
		{"unknown method kept", post(`{"jsonrpc":"2.0","id":1,"method":"x/custom"}`),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20250326, Messages: []Message{{Kind: KindRequest, Method: "x/custom", ID: json.RawMessage(`1`)}}}},
		{"batch of requests and notifications", post(`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}]`),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20250326, Batch: true, Messages: []Message{
				{Kind: KindRequest, Method: "tools/call", ID: json.RawMessage(`1`), Tool: "a", Params: json.RawMessage(`{"name":"a"}`)},
				{Kind: KindNotification, Method: "notifications/progress", Params: json.RawMessage(`{"progressToken":1,"progress":1}`)}}}},
		{"batch of responses under 2024-11-05", post(`[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":2,"error":{"code":1,"message":"m"}}]`, v25, "2024-11-05"),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20241105, Batch: true, Messages: []Message{
				{Kind: KindResponse, ID: json.RawMessage(`1`), Result: json.RawMessage(`{}`)},
				{Kind: KindResponse, ID: json.RawMessage(`2`), RPCError: json.RawMessage(`{"code":1,"message":"m"}`)}}}},
		{"batch at the size limit", post("[" + strings.Repeat(`{"jsonrpc":"2.0","method":"n"},`, maxBatch-1) + `{"jsonrpc":"2.0","method":"n"}]`),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20250326, Batch: true, Messages: limitBatch}},
		{"batch under explicit 2025-03-26", post(`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, v25, "2025-03-26"),
			&Call{HTTPMethod: "POST", ProtocolVersion: Version20250326, Batch: true, Messages: []Message{{Kind: KindRequest, Method: "ping", ID: json.RawMessage(`1`)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHTTP(tt.req)
			checkErr(t, err, nil)
			if d := cmp.Diff(tt.want, got, cmpCall); d != "" {
				t.Errorf("Call (-want +got):\n%s", d)
			}
		})
	}
}
