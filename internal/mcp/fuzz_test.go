package mcp

import (
	"bytes"
	"encoding/json"
	"mime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/jsontext"
)

// wire writes m back as a JSON-RPC message.
func wire(m Message) []byte {
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0"`)
	if m.ID != nil {
		b.WriteString(`,"id":`)
		b.Write(m.ID)
	}
	if m.Method != "" {
		b.WriteString(`,"method":`)
		b.WriteString(mustJSON(m.Method))
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"params", m.Params}, {"result", m.Result}, {"error", m.RPCError}} {
		if f.raw != nil {
			b.WriteString(`,"` + f.name + `":`)
			b.Write(f.raw)
		}
	}
	b.WriteString("}")
	return b.Bytes()
}

// wireCall writes c's messages back as a POST body.
func wireCall(c *Call) []byte {
	if !c.Batch {
		return wire(c.Messages[0])
	}
	parts := make([][]byte, len(c.Messages))
	for i, m := range c.Messages {
		parts[i] = wire(m)
	}
	return append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']')
}

func addSeeds(f *testing.F) {
	const allHeaders = 1 | 2 | 4 | 8
	for _, v := range SupportedVersions() {
		for _, c := range methodCases {
			req, _ := c.build(v)
			h := req.Headers
			f.Add(req.Body, h[v25], h["mcp-method"], h["mcp-name"], "session-1", "", uint8(allHeaders))
		}
	}
	seeds := []string{
		`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":[1,2,{"y":null}]}}},{"jsonrpc":"2.0","method":"notifications/initialized"}]`,
		`[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","error":{"code":1,"message":"m"}}]`,
		`{"jsonrpc":"2.0","id":"\u0041","method":"tools\/call","params":{"name":"\ud83d\ude00","arguments":null}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","Name":"b"}}`,
		`{"jsonrpc":"2.0","id":1,"Method":"tools/call"}`,
		`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///x"}}`,
		`{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"x"}}`,
		`[]`, `[1]`, `{}`, `"x"`, `{"a":1,"a":2}`, `{"jsonrpc":"2.0","id":1`, "\xff", `[[[[[[]]]]]]`,
		`{"jsonrpc":"2.0","id":1,"method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":""}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///{x}"}}}`,
		`{"jsonrpc":"2.0","id":4,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p","uri":"u"}}}`,
		`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"+AGQ-elete_all"}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), "", "", "", "", "", uint8(0))
		f.Add([]byte(s), "2025-03-26", "tools/call", "a", "s", "", uint8(1|2|4))
	}
	for _, ct := range []string{"application/json; charset=utf-7", `application/json; charset="UTF-8"`, "application/json;charset=utf-8; foo=bar",
		"application/json, text/plain", "application/json; charset=utf-16", "text/plain", ""} {
		f.Add([]byte(seeds[0]), "", "", "", "", ct, uint8(128))
	}
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`), "", "", "", "", "", uint8(1<<4))   // GET with a body
	f.Add([]byte{}, "2025-11-25", "", "", "s", "", uint8(1|8|1<<4))                              // GET
	f.Add([]byte{}, "2025-06-18", "", "", "", "", uint8(1|2<<4))                                 // DELETE without a session
	f.Add([]byte(`{}`), "2026-07-28", "", "", "", "", uint8(1|1<<4))                             // GET
	f.Add([]byte(`{}`), "2025-06-18", "", "", "s", "", uint8(1|8|2<<4))                          // DELETE
	f.Add([]byte(`{"jsonrpc":"2.0","id":"x","method":"ping"}`), "", "", "", "", "", uint8(3<<4)) // other method
	f.Add([]byte(`{}`), "", "", "", "", "", uint8(64))                                           // truncated
}

func FuzzParseHTTP(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte, version, mcpMethod, mcpName, session, contentType string, flags uint8) {
		h := map[string]string{"content-type": "application/json"}
		if flags&128 != 0 {
			h["content-type"] = contentType
		}
		if flags&1 != 0 {
			h[v25] = version
		}
		if flags&2 != 0 {
			h["mcp-method"] = mcpMethod
		}
		if flags&4 != 0 {
			h["mcp-name"] = mcpName
		}
		if flags&8 != 0 {
			h["mcp-session-id"] = session
		}
		method := [...]string{"POST", "GET", "DELETE", "PATCH"}[flags>>4&3]
		req := &HTTPRequest{Method: method, Headers: h, Body: body, Truncated: flags&64 != 0}

		call, err := ParseHTTP(req)
		if err != nil {
			if call != nil {
				t.Fatalf("both a Call and an error: %+v", err)
			}
			if err.HTTPStatus < 400 || err.HTTPStatus > 499 {
				t.Fatalf("HTTPStatus %d is not 4xx: %s", err.HTTPStatus, err.Message)
			}
			if err.Message == "" || err.Code == 0 {
				t.Fatalf("error without message or code: %+v", err)
			}
			if resp := err.Response(); !json.Valid(resp) {
				t.Fatalf("error response is not JSON: %s", resp)
			}
			// An error about a body that is one message carries exactly
			// the id PeekID reads (PeekIDPrefix when the body was cut).
			if peek := PeekID(body); !truncated(req) && !isArray(body) && string(err.ID) != string(peek) {
				t.Fatalf("error id %s, PeekID %s: %s", err.ID, peek, err.Message)
			}
			if peek := PeekIDPrefix(body); truncated(req) && string(err.ID) != string(peek) {
				t.Fatalf("error on a truncated body has id %s, PeekIDPrefix %s", err.ID, peek)
			}
			return
		}
		if call == nil {
			t.Fatal("nil Call and nil error")
		}
		if method != "POST" {
			if len(call.Messages) != 0 || call.HTTPMethod != method {
				t.Fatalf("%s Call = %+v", method, call)
			}
			return
		}
		if len(call.Messages) == 0 {
			t.Fatal("POST Call without messages")
		}
		if !call.Batch && string(call.Messages[0].ID) != string(PeekID(body)) && call.Messages[0].Kind == KindRequest {
			t.Fatalf("request id %s, PeekID %s", call.Messages[0].ID, PeekID(body))
		}
		for _, m := range call.Messages {
			checkMessage(t, m)
		}

		again, err := ParseHTTP(&HTTPRequest{Method: "POST", Headers: h, Body: wireCall(call)})
		if err != nil {
			t.Fatalf("re-marshalled call does not parse: %d %s\nbody: %s", err.HTTPStatus, err.Message, wireCall(call))
		}
		if d := cmp.Diff(call, again, cmpCall); d != "" {
			t.Fatalf("re-marshalled call differs (-first +again):\n%s", d)
		}
	})
}

// checkMessage asserts what any accepted message must satisfy.
func checkMessage(t *testing.T, m Message) {
	t.Helper()
	switch m.Kind {
	case KindRequest:
		if m.ID == nil || m.Method == "" {
			t.Fatalf("request without id or method: %+v", m)
		}
	case KindNotification:
		if m.ID != nil || m.Method == "" {
			t.Fatalf("notification with id or without method: %+v", m)
		}
	case KindResponse:
		if m.Method != "" || (m.Result == nil) == (m.RPCError == nil) {
			t.Fatalf("malformed response: %+v", m)
		}
	default:
		t.Fatalf("kind %q", m.Kind)
	}
	for _, raw := range []json.RawMessage{m.ID, m.Params, m.Arguments, m.Result, m.RPCError} {
		if raw != nil && !json.Valid(raw) {
			t.Fatalf("raw member is not JSON: %s", raw)
		}
	}
	if m.Kind == KindRequest {
		if strings.HasPrefix(m.Method, "notifications/") {
			t.Fatalf("a notifications/ method with an id was accepted: %+v", m)
		}
		if (m.Method == "tools/call") != (m.Tool != "") || (m.Method == "prompts/get") && m.Prompt == "" {
			t.Fatalf("tool/prompt not set for %q: %+v", m.Method, m)
		}
		if m.Prompt != "" && m.Method != "prompts/get" && m.Method != "completion/complete" {
			t.Fatalf("prompt set for %q: %+v", m.Method, m)
		}
		if m.Method == "completion/complete" && (m.Prompt == "") == (m.URI == "") {
			t.Fatalf("completion/complete needs exactly one of prompt and uri: %+v", m)
		}
		if m.Arguments != nil && m.Arguments[0] != '{' {
			t.Fatalf("arguments not an object: %s", m.Arguments)
		}
	}
}

// FuzzScan checks the scanner against encoding/json: whatever the scanner
// accepts encoding/json accepts and decodes to the same strings, and
// whatever encoding/json accepts the scanner rejects only for the reasons
// it adds (duplicates, encoding, depth), never for syntax.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		`{}`, `[1,2.5e-3,"x",true,false,null]`, `{"a":{"b":[{}]}}`, `"\u00e9\ud83d\ude00\n"`,
		`{"a":1,"A":2}`, `"\ud800"`, "\"\xff\"", `01`, `[1,]`, `{"a" : 1 , "b" : [ ] }`, `-0`, `1E+2`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := scanAll(b)
		valid := json.Valid(b)
		if err == nil && !valid {
			t.Fatalf("scanner accepted what encoding/json rejects: %q", b)
		}
		if err != nil && err.kind == kindSyntax && valid {
			t.Fatalf("scanner reports a syntax error (%s at %d) in valid JSON %q", err.msg, err.off, b)
		}
		if err != nil && (err.off < 0 || err.off > len(b)) {
			t.Fatalf("offset %d outside the input (%d bytes)", err.off, len(b))
		}
		if err == nil && len(b) > 0 {
			// Top-level strings decode exactly as encoding/json decodes them.
			var s scanner
			s.init(b)
			s.skipWS()
			if s.i < len(b) && b[s.i] == '"' {
				raw, _, _ := s.str()
				var want string
				if uerr := json.Unmarshal(b, &want); uerr != nil {
					t.Fatalf("encoding/json: %v", uerr)
				}
				if got := string(jsontext.AppendUnescaped(nil, raw)); got != want {
					t.Fatalf("decoded %q, encoding/json %q", got, want)
				}
			}
		}
	})
}

// isArray reports whether b's first non-whitespace byte is '['.
func isArray(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '['
}

// FuzzContentType checks the Content-Type rule against mime.ParseMediaType:
// whatever the gateway accepts, the standard parser reads as
// application/json with no parameter or a charset of utf-8, so no other
// parser's reading can name a charset or a parameter the gateway ignored.
func FuzzContentType(f *testing.F) {
	for _, ct := range []string{"application/json", "application/json;charset=utf-8", `application/json; charset="UTF-8"`,
		"application/json; charset=utf-7", "application/json; charset=utf-8; foo=bar", "application/json, text/plain",
		"application/json;", `application/json; charset="utf-8`, "APPLICATION/JSON ; CHARSET=UTF-8 ", "application/json; charset*=utf-8''x"} {
		f.Add(ct)
	}
	f.Fuzz(func(t *testing.T, ct string) {
		if contentTypeProblem(ct) != "" {
			return
		}
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			t.Fatalf("accepted %q, which mime.ParseMediaType refuses: %v", ct, err)
		}
		if mt != "application/json" {
			t.Fatalf("accepted %q, media type %q", ct, mt)
		}
		for k, v := range params {
			if k != "charset" || !strings.EqualFold(v, "utf-8") {
				t.Fatalf("accepted %q with parameter %s=%q", ct, k, v)
			}
		}
	})
}
