package mcp

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// post builds a POST with the given headers (name, value pairs).
func post(body string, headers ...string) *HTTPRequest {
	h := map[string]string{"content-type": "application/json"}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	return &HTTPRequest{Method: "POST", Path: "/mcp/demo", Headers: h, Body: []byte(body)}
}

// cmpCall compares Calls treating nil and empty raw JSON alike.
var cmpCall = cmpopts.EquateEmpty()

const meta2026 = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`

// methodCase is one message shape, written as a 2025-era client sends it.
type methodCase struct {
	name   string
	id     string // raw id; "" for notifications and responses handled in body
	method string
	params string // raw params without _meta; "" for none
	body   string // when set, the whole body (responses)
	want   Message
}

var methodCases = []methodCase{
	{name: "initialize", id: `1`, method: "initialize",
		params: `{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}`,
		want:   Message{Kind: KindRequest, Method: "initialize", ID: json.RawMessage(`1`)}},
	{name: "tools/list", id: `"list-1"`, method: "tools/list",
		want: Message{Kind: KindRequest, Method: "tools/list", ID: json.RawMessage(`"list-1"`)}},
	{name: "tools/call", id: `42`, method: "tools/call",
		params: `{"name":"get_weather","arguments":{"location":"Seattle, WA"}}`,
		want: Message{Kind: KindRequest, Method: "tools/call", ID: json.RawMessage(`42`), Tool: "get_weather",
			Arguments: json.RawMessage(`{"location":"Seattle, WA"}`)}},
	{name: "resources/read", id: `2`, method: "resources/read",
		params: `{"uri":"file:///projects/app/config.json"}`,
		want:   Message{Kind: KindRequest, Method: "resources/read", ID: json.RawMessage(`2`), URI: "file:///projects/app/config.json"}},
	{name: "prompts/get", id: `"p"`, method: "prompts/get",
		params: `{"name":"code_review","arguments":{"code":"x = 1"}}`,
		want: Message{Kind: KindRequest, Method: "prompts/get", ID: json.RawMessage(`"p"`), Prompt: "code_review",
			Arguments: json.RawMessage(`{"code":"x = 1"}`)}},
	{name: "notifications/initialized", method: "notifications/initialized",
		want: Message{Kind: KindNotification, Method: "notifications/initialized"}},
	{name: "ping", id: `3`, method: "ping",
		want: Message{Kind: KindRequest, Method: "ping", ID: json.RawMessage(`3`)}},
	{name: "server/discover", id: `4`, method: "server/discover",
		want: Message{Kind: KindRequest, Method: "server/discover", ID: json.RawMessage(`4`)}},
	{name: "client response", body: `{"jsonrpc":"2.0","id":7,"result":{"roots":[]}}`,
		want: Message{Kind: KindResponse, ID: json.RawMessage(`7`), Result: json.RawMessage(`{"roots":[]}`)}},
}

// build returns the request a client of version v sends for c ("" means no
// MCP-Protocol-Version header), and the expected message.
func (c methodCase) build(v string) (*HTTPRequest, Message) {
	want := c.want
	if c.body != "" {
		var hdr []string
		if v != "" {
			hdr = []string{"mcp-protocol-version", v}
		}
		return post(c.body, hdr...), want
	}
	params := c.params
	var hdr []string
	if v != "" {
		hdr = append(hdr, "mcp-protocol-version", v)
	}
	if v == Version20260728 {
		if c.id != "" { // requests carry the version in _meta
			if params == "" {
				params = "{" + meta2026 + "}"
			} else {
				params = "{" + meta2026 + "," + params[1:]
			}
		}
		hdr = append(hdr, "mcp-method", c.method)
		switch {
		case want.Tool != "":
			hdr = append(hdr, "mcp-name", want.Tool)
		case want.Prompt != "":
			hdr = append(hdr, "mcp-name", want.Prompt)
		case want.URI != "":
			hdr = append(hdr, "mcp-name", want.URI)
		}
	}
	body := `{"jsonrpc":"2.0",`
	if c.id != "" {
		body += `"id":` + c.id + `,`
	}
	body += `"method":"` + c.method + `"`
	if params != "" {
		body += `,"params":` + params
		want.Params = json.RawMessage(params)
	}
	return post(body+"}", hdr...), want
}

func TestParseHTTPVersionsAndMethods(t *testing.T) {
	versions := append([]string{""}, SupportedVersions()...)
	for _, v := range versions {
		for _, c := range methodCases {
			name := v
			if name == "" {
				name = "no-version-header"
			}
			t.Run(name+"/"+c.name, func(t *testing.T) {
				req, want := c.build(v)
				got, err := ParseHTTP(req)
				if v == Version20260728 && want.Kind == KindResponse {
					// 2026-07-28 clients answer input requests by retrying, never by POSTing a response.
					if err == nil || err.HTTPStatus != 400 || err.Code != CodeInvalidRequest || !strings.Contains(err.Message, "does not let a client POST a JSON-RPC response") {
						t.Fatalf("got (%v, %+v), want 400 -32600 response not allowed", got, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("ParseHTTP: %d %d %s", err.HTTPStatus, err.Code, err.Message)
				}
				wantVersion := v
				if v == "" {
					wantVersion = Version20250326
				}
				wantCall := &Call{HTTPMethod: "POST", ProtocolVersion: wantVersion, Messages: []Message{want}}
				if d := cmp.Diff(wantCall, got, cmpCall); d != "" {
					t.Errorf("Call (-want +got):\n%s", d)
				}
			})
		}
	}
}

func TestParseHTTPBodilessMethods(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		want    *Call
		wantErr *Error
	}{
		{name: "GET stream, no headers", method: "GET",
			want: &Call{HTTPMethod: "GET", ProtocolVersion: Version20250326}},
		{name: "GET resume with session", method: "GET",
			headers: map[string]string{"mcp-protocol-version": "2025-11-25", "mcp-session-id": "1868a90c-5f3d", "last-event-id": "ev-9"},
			want:    &Call{HTTPMethod: "GET", ProtocolVersion: Version20251125, SessionID: "1868a90c-5f3d"}},
		{name: "DELETE ends session", method: "DELETE",
			headers: map[string]string{"mcp-protocol-version": "2025-06-18", "mcp-session-id": "abc"},
			want:    &Call{HTTPMethod: "DELETE", ProtocolVersion: Version20250618, SessionID: "abc"}},
		{name: "GET under 2026-07-28", method: "GET",
			headers: map[string]string{"mcp-protocol-version": "2026-07-28"},
			wantErr: &Error{HTTPStatus: 405, Code: CodeInvalidRequest, Allow: "POST", Message: "HTTP GET is not part of protocol 2026-07-28"}},
		{name: "DELETE under 2026-07-28", method: "DELETE",
			headers: map[string]string{"mcp-protocol-version": "2026-07-28"},
			wantErr: &Error{HTTPStatus: 405, Code: CodeInvalidRequest, Allow: "POST", Message: "HTTP DELETE is not part of protocol 2026-07-28"}},
		{name: "PUT", method: "PUT",
			wantErr: &Error{HTTPStatus: 405, Code: CodeInvalidRequest, Allow: "GET, POST, DELETE", Message: `HTTP method "PUT" is not allowed`}},
		{name: "OPTIONS", method: "OPTIONS",
			wantErr: &Error{HTTPStatus: 405, Code: CodeInvalidRequest, Allow: "GET, POST, DELETE", Message: `HTTP method "OPTIONS" is not allowed`}},
		{name: "lower-case post", method: "post",
			wantErr: &Error{HTTPStatus: 405, Code: CodeInvalidRequest, Allow: "GET, POST, DELETE", Message: `HTTP method "post" is not allowed`}},
		{name: "GET unsupported version", method: "GET",
			headers: map[string]string{"mcp-protocol-version": "2099-01-01"},
			wantErr: &Error{HTTPStatus: 400, Code: CodeUnsupportedProtocolVersion, Message: `MCP-Protocol-Version "2099-01-01" is not supported`,
				Data: UnsupportedVersionData{Supported: SupportedVersions(), Requested: "2099-01-01"}}},
		{name: "GET bad session", method: "GET",
			headers: map[string]string{"mcp-session-id": "a b"},
			wantErr: &Error{HTTPStatus: 400, Code: CodeInvalidRequest, Message: "Mcp-Session-Id header must be visible ASCII (0x21-0x7E); byte 1 is not"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.headers
			if h == nil {
				h = map[string]string{}
			}
			got, err := ParseHTTP(&HTTPRequest{Method: tt.method, Path: "/mcp", Headers: h})
			checkErr(t, err, tt.wantErr)
			if d := cmp.Diff(tt.want, got, cmpCall); d != "" {
				t.Errorf("Call (-want +got):\n%s", d)
			}
		})
	}
}

// checkErr compares err with want: status, code, Allow, ID and Data
// exactly, and want.Message as a fragment of err.Message.
func checkErr(t *testing.T, err, want *Error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %d %d %s", err.HTTPStatus, err.Code, err.Message)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %d %d %q", want.HTTPStatus, want.Code, want.Message)
	}
	if err.HTTPStatus != want.HTTPStatus || err.Code != want.Code || !strings.Contains(err.Message, want.Message) {
		t.Fatalf("error = %d %d %q, want %d %d containing %q", err.HTTPStatus, err.Code, err.Message, want.HTTPStatus, want.Code, want.Message)
	}
	if string(err.ID) != string(want.ID) {
		t.Errorf("error ID = %s, want %s", err.ID, want.ID)
	}
	if err.Allow != want.Allow {
		t.Errorf("error Allow = %q, want %q", err.Allow, want.Allow)
	}
	if d := cmp.Diff(want.Data, err.Data); d != "" {
		t.Errorf("error Data (-want +got):\n%s", d)
	}
}
