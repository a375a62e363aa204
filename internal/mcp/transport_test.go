package mcp

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const pingBody = `{"jsonrpc":"2.0","id":7,"method":"ping"}`

var pingCall = &Call{HTTPMethod: "POST", ProtocolVersion: Version20250326, Messages: []Message{{Kind: KindRequest, Method: "ping", ID: json.RawMessage(`7`)}}}

func e415(id, fragment string) *Error {
	e := &Error{HTTPStatus: 415, Code: CodeInvalidRequest, Message: fragment}
	if id != "" {
		e.ID = json.RawMessage(id)
	}
	return e
}

// TestContentType: a POST body is application/json with no parameter or
// charset=utf-8 only; anything a server could decode differently is 415
// with the request's id.
func TestContentType(t *testing.T) {
	tests := []struct {
		ct   string
		want *Error // nil: accepted
	}{
		{"application/json", nil},
		{"Application/JSON", nil},
		{" \tapplication/json \t", nil},
		{"application/json;charset=utf-8", nil},
		{"application/json; charset=utf-8", nil},
		{"application/json ; charset=UTF-8", nil},
		{`application/json; charset="UTF-8"`, nil},
		{`application/json;CHARSET="utf-8"`, nil},
		{"application/json; charset=Utf-8 \t", nil},

		{"application/json; charset=utf-7", e415("7", `Content-Type charset "utf-7" is not supported; an MCP POST body must be UTF-8`)},
		{`application/json; charset="utf-7"`, e415("7", `charset "utf-7" is not supported`)},
		{"application/json; charset=utf-16", e415("7", `charset "utf-16" is not supported`)},
		{"application/json; charset=utf-16le", e415("7", `charset "utf-16le" is not supported`)},
		{"application/json; charset=latin1", e415("7", `charset "latin1" is not supported`)},
		{"application/json; charset=iso-8859-1", e415("7", `charset "iso-8859-1" is not supported`)},
		{"application/json; charset=utf8", e415("7", `charset "utf8" is not supported`)},
		{`application/json; charset=""`, e415("7", `charset "" is not supported`)},
		{"application/json; charset=utf-8; foo=bar", e415("7", `Content-Type parameter "foo" is not allowed`)},
		{"application/json; foo=bar", e415("7", `Content-Type parameter "foo" is not allowed`)},
		{"application/json; boundary=x; charset=utf-8", e415("7", `Content-Type parameter "boundary" is not allowed`)},
		{"application/json; charset=utf-8; charset=utf-8", e415("7", "repeats the charset parameter")},
		{"application/json; charset=utf-8; charset=utf-7", e415("7", "repeats the charset parameter")},
		{"application/json;", e415("7", "malformed parameter (a parameter name must follow ';')")},
		{"application/json; charset=utf-8;", e415("7", "malformed parameter (a parameter name must follow ';')")},
		{"application/json; charset", e415("7", "'=' must follow the parameter name directly")},
		{"application/json; charset = utf-8", e415("7", "'=' must follow the parameter name directly")},
		{"application/json; charset=", e415("7", `the value of "charset" is empty or not a token`)},
		{`application/json; charset="utf-8`, e415("7", "unterminated quoted string")},
		{`application/json; charset="utf\-8"`, e415("7", "escapes in a quoted value are not accepted")},
		{`application/json; charset="utf-8"x`, e415("7", `unexpected text after the value of "charset"`)},
		{"application/json; charset=utf-8 utf-7", e415("7", `unexpected text after the value of "charset"`)},
		{"application/json; charset=utf-8, text/plain", e415("7", `unexpected text after the value of "charset"`)},
		{"application/json, text/plain", e415("7", `Content-Type "application/json, text/plain" is not supported; an MCP POST body must be application/json`)},
		{"application/json,application/json", e415("7", "is not supported")},
		{"text/plain", e415("7", `Content-Type "text/plain" is not supported`)},
		{"application/json-patch+json", e415("7", "is not supported")},
		{"application/x-www-form-urlencoded", e415("7", "is not supported")},
		{"", e415("7", `Content-Type "" is not supported`)},
	}
	for _, tt := range tests {
		t.Run(tt.ct, func(t *testing.T) {
			got, err := ParseHTTP(post(pingBody, "content-type", tt.ct))
			checkErr(t, err, tt.want)
			if tt.want == nil {
				if d := cmp.Diff(pingCall, got, cmpCall); d != "" {
					t.Errorf("Call (-want +got):\n%s", d)
				}
			}
		})
	}
}

// TestPostEncoding: the headers that say how the body is encoded, the
// method-override headers, and that every such refusal carries the id
// when the body can be read.
func TestPostEncoding(t *testing.T) {
	noCT := func(body string) *HTTPRequest {
		return &HTTPRequest{Method: "POST", Headers: map[string]string{}, Body: []byte(body)}
	}
	tests := []struct {
		name string
		req  *HTTPRequest
		want *Error // nil: accepted
	}{
		{"content-encoding identity", post(pingBody, "content-encoding", "identity"), nil},
		{"content-encoding IDENTITY", post(pingBody, "content-encoding", " IDENTITY "), nil},
		{"transfer-encoding chunked", post(pingBody, "transfer-encoding", "chunked"), nil},
		{"transfer-encoding Chunked", post(pingBody, "transfer-encoding", "Chunked"), nil},

		{"missing content-type", noCT(pingBody), e415("7", "Content-Type header is missing; an MCP POST body must be sent as application/json")},
		{"missing content-type, string id", noCT(`{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"name":"t"}}`), e415(`"a-1"`, "Content-Type header is missing")},
		{"missing content-type, unreadable body", noCT(`{"jsonrpc":"2.0","id":7,`), e415("", "Content-Type header is missing")},
		{"missing content-type, batch", noCT(`[` + pingBody + `]`), e415("", "Content-Type header is missing")},
		{"content-encoding gzip", post(pingBody, "content-encoding", "gzip"),
			e415("7", `Content-Encoding "gzip" is not supported; an MCP POST body must not be encoded (identity only)`)},
		{"content-encoding br", post(pingBody, "content-encoding", "br"), e415("7", `Content-Encoding "br" is not supported`)},
		{"content-encoding deflate", post(pingBody, "content-encoding", "deflate"), e415("7", `Content-Encoding "deflate" is not supported`)},
		{"content-encoding list", post(pingBody, "content-encoding", "identity, gzip"), e415("7", `Content-Encoding "identity, gzip" is not supported`)},
		{"content-encoding empty", post(pingBody, "content-encoding", ""), e415("7", `Content-Encoding "" is not supported`)},
		{"transfer-encoding gzip, chunked", post(pingBody, "transfer-encoding", "gzip, chunked"),
			e415("7", `Transfer-Encoding "gzip, chunked" is not supported; only chunked is accepted`)},
		{"transfer-encoding identity", post(pingBody, "transfer-encoding", "identity"), e415("7", `Transfer-Encoding "identity" is not supported`)},
		{"utf-7 body keeps its id", post(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"+AGQ-elete_all"}}`, "content-type", "application/json; charset=utf-7"),
			e415("3", `charset "utf-7" is not supported`)},
		{"415 on a truncated body has the prefix's id", &HTTPRequest{Method: "POST", Headers: map[string]string{"content-type": "text/plain"}, Body: []byte(pingBody[:len(pingBody)-3]), Truncated: true},
			e415("7", "is not supported")},
		{"415 on a body cut inside its id has none", &HTTPRequest{Method: "POST", Headers: map[string]string{"content-type": "text/plain"}, Body: []byte(`{"jsonrpc":"2.0","id":7`), Truncated: true},
			e415("", "is not supported")},

		{"content-length matches", post(pingBody, "content-length", "40"), nil},
		{"content-length with whitespace", post(pingBody, "content-length", " 40 "), nil},
		{"content-length longer than the body", post(pingBody, "content-length", "41"),
			e400(CodeInvalidRequest, "7", `Content-Length "41" does not match the 40 body bytes the gateway received; the call cannot be checked`)},
		{"content-length shorter than the body", post(pingBody, "content-length", "39"), e400(CodeInvalidRequest, "7", `Content-Length "39" does not match the 40 body bytes`)},
		{"content-length without a body (with_request_body missing)", post("", "content-length", "40"),
			e400(CodeInvalidRequest, "", `Content-Length "40" does not match the 0 body bytes`)},
		{"content-length huge", post(pingBody, "content-length", "99999999999999999999999"), e400(CodeInvalidRequest, "7", "does not match the 40 body bytes")},
		{"content-length repeated", post(pingBody, "content-length", "40, 40"), e400(CodeInvalidRequest, "7", `Content-Length "40, 40" is not one decimal length`)},
		{"content-length signed", post(pingBody, "content-length", "+40"), e400(CodeInvalidRequest, "7", "is not one decimal length")},
		{"content-length empty", post(pingBody, "content-length", ""), e400(CodeInvalidRequest, "7", "is not one decimal length")},
		{"content-length of a cut body is not checked", &HTTPRequest{Method: "POST", Headers: map[string]string{"content-type": "application/json", "content-length": "99"},
			Body: []byte(pingBody[:20]), Truncated: true}, &Error{HTTPStatus: 413, Code: CodeInvalidRequest, Message: "request body was cut at the gateway limit"}},

		{"X-HTTP-Method-Override on POST", post(pingBody, "x-http-method-override", "DELETE"),
			e400(CodeInvalidRequest, "7", "X-HTTP-Method-Override header is not allowed: the gateway decides on the request's own HTTP method")},
		{"X-HTTP-Method on POST", post(pingBody, "x-http-method", "GET"), e400(CodeInvalidRequest, "7", "X-HTTP-Method header is not allowed")},
		{"X-Method-Override on POST", post(pingBody, "x-method-override", "PUT"), e400(CodeInvalidRequest, "7", "X-Method-Override header is not allowed")},
		{"empty override header", post(pingBody, "x-http-method-override", ""), e400(CodeInvalidRequest, "7", "X-HTTP-Method-Override header is not allowed")},
		{"override header with POST value", post(pingBody, "x-http-method-override", "POST"), e400(CodeInvalidRequest, "7", "X-HTTP-Method-Override header is not allowed")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHTTP(tt.req)
			checkErr(t, err, tt.want)
			if tt.want == nil {
				if d := cmp.Diff(pingCall, got, cmpCall); d != "" {
					t.Errorf("Call (-want +got):\n%s", d)
				}
			} else if got != nil {
				t.Errorf("Call = %+v, want nil with an error", got)
			}
		})
	}
}

// TestBodilessMethods: GET only opens the stream and DELETE only ends a
// session; neither carries a body or a method override.
func TestBodilessMethods(t *testing.T) {
	req := func(method, body string, headers ...string) *HTTPRequest {
		h := map[string]string{}
		for i := 0; i+1 < len(headers); i += 2 {
			h[headers[i]] = headers[i+1]
		}
		return &HTTPRequest{Method: method, Path: "/mcp", Headers: h, Body: []byte(body)}
	}
	const sid = "mcp-session-id"
	tests := []struct {
		name string
		req  *HTTPRequest
		want *Call
		err  *Error
	}{
		{"GET with content-length 0", req("GET", "", "content-length", "0", "accept", "text/event-stream"),
			&Call{HTTPMethod: "GET", ProtocolVersion: Version20250326}, nil},
		{"DELETE with session", req("DELETE", "", sid, "s1", "content-length", "0"),
			&Call{HTTPMethod: "DELETE", ProtocolVersion: Version20250326, SessionID: "s1"}, nil},

		{"GET with a body", req("GET", pingBody),
			nil, e400(CodeInvalidRequest, "7", "HTTP GET on an MCP endpoint only opens the server's SSE stream and must not carry a body; the request has a body")},
		{"GET with an unreadable body", req("GET", "x"), nil, e400(CodeInvalidRequest, "", "the request has a body")},
		{"GET with content-length", req("GET", "", "content-length", "12"), nil, e400(CodeInvalidRequest, "", `the request has Content-Length "12"`)},
		{"GET with transfer-encoding", req("GET", "", "transfer-encoding", "chunked"), nil, e400(CodeInvalidRequest, "", "the request has a Transfer-Encoding header")},
		{"GET with method override", req("GET", "", "x-http-method-override", "POST"), nil, e400(CodeInvalidRequest, "", "X-HTTP-Method-Override header is not allowed")},
		{"DELETE without session", req("DELETE", ""), nil,
			e400(CodeInvalidRequest, "", "HTTP DELETE on an MCP endpoint ends a session and needs the Mcp-Session-Id header")},
		{"DELETE with a body", req("DELETE", `{"jsonrpc":"2.0","id":"d","method":"tools/call","params":{"name":"x"}}`, sid, "s1"), nil,
			e400(CodeInvalidRequest, `"d"`, "HTTP DELETE on an MCP endpoint only ends a session and must not carry a body")},
		{"DELETE with content-length", req("DELETE", "", sid, "s1", "content-length", "5"), nil, e400(CodeInvalidRequest, "", `Content-Length "5"`)},
		{"two session headers joined by Envoy", req("DELETE", "", sid, "victim,mine"), nil,
			e400(CodeInvalidRequest, "", "Mcp-Session-Id must be sent once and hold no comma (byte 6)")},
		{"two session headers on GET", req("GET", "", sid, "a,b"), nil, e400(CodeInvalidRequest, "", "a repeated header names two sessions")},
		{"DELETE with X-Method-Override", req("DELETE", "", sid, "s1", "x-method-override", "POST"), nil, e400(CodeInvalidRequest, "", "X-Method-Override header is not allowed")},
		{"PUT carries the body's id", req("PUT", pingBody), nil,
			&Error{HTTPStatus: 405, Code: CodeInvalidRequest, Allow: "GET, POST, DELETE", ID: json.RawMessage(`7`), Message: `HTTP method "PUT" is not allowed`}},
		{"unsupported version on GET carries the body's id", req("GET", pingBody, v25, "1999-01-01"), nil,
			&Error{HTTPStatus: 400, Code: CodeUnsupportedProtocolVersion, ID: json.RawMessage(`7`), Message: `MCP-Protocol-Version "1999-01-01" is not supported`,
				Data: UnsupportedVersionData{Supported: SupportedVersions(), Requested: "1999-01-01"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHTTP(tt.req)
			checkErr(t, err, tt.err)
			if d := cmp.Diff(tt.want, got, cmpCall); d != "" {
				t.Errorf("Call (-want +got):\n%s", d)
			}
		})
	}
}

func TestPeekID(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // "" for nil
	}{
		{"number", pingBody, "7"},
		{"string", `{"jsonrpc":"2.0","id":"a\"b","method":"ping"}`, `"a\"b"`},
		{"negative float", ` {"id":-1.5e3} `, "-1.5e3"},
		{"id after params", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"t","arguments":{"id":9}},"id":4}`, "4"},
		{"no jsonrpc still has an id", `{"id":1,"method":"ping"}`, "1"},
		{"response id", `{"jsonrpc":"2.0","id":2,"result":{}}`, "2"},

		{"empty", ``, ""},
		{"whitespace", " \n", ""},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, ""},
		{"object id", `{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, ""},
		{"bool id", `{"id":true}`, ""},
		{"no id", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, ""},
		{"duplicate id", `{"jsonrpc":"2.0","id":1,"method":"ping","id":2}`, ""},
		{"case-variant id", `{"jsonrpc":"2.0","id":1,"ID":2,"method":"ping"}`, ""},
		{"escaped duplicate id", `{"jsonrpc":"2.0","id":1,"\u0069d":2,"method":"ping"}`, ""},
		{"only upper-case ID", `{"jsonrpc":"2.0","ID":1,"method":"ping"}`, ""},
		{"duplicate deep inside", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}`, ""},
		{"batch", `[` + pingBody + `]`, ""},
		{"truncated", `{"jsonrpc":"2.0","id":1,"method":"pi`, ""},
		{"trailing data", pingBody + `{}`, ""},
		{"BOM", "\xef\xbb\xbf" + pingBody, ""},
		{"invalid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}", ""},
		{"top-level string", `"x"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PeekID([]byte(tt.body))
			if string(got) != tt.want || (tt.want == "") != (got == nil) {
				t.Fatalf("PeekID = %q (nil %v), want %q", got, got == nil, tt.want)
			}
			// PeekID is the id ParseHTTP's errors carry for the body.
			if _, err := ParseHTTP(post(tt.body, "content-type", "text/plain")); err == nil || string(err.ID) != tt.want {
				t.Fatalf("ParseHTTP error = %+v, want one with id %q", err, tt.want)
			}
		})
	}
}

func TestPeekIDDoesNotAllocateForCommonBodies(t *testing.T) {
	body := []byte(`{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"run_sql",` + benchArgs + `}}`)
	if n := testing.AllocsPerRun(100, func() { PeekID(body) }); n != 0 {
		t.Errorf("PeekID allocates %v times per call", n)
	}
	if got := string(PeekID(body)); got != "17" {
		t.Fatalf("PeekID = %q, want 17", got)
	}
}
