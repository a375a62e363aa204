package mcp

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestNotificationRules: a notifications/* message never carries an id
// (a server would answer it as a request the gateway took for a
// notification), and ClientNotification lists the names each version's
// schema defines for client to server.
func TestNotificationRules(t *testing.T) {
	tests := []struct {
		name string
		req  *HTTPRequest
		want *Error // nil: accepted
	}{
		{"initialized", post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), nil},
		{"unknown notification name parses", post(`{"jsonrpc":"2.0","method":"notifications/whatever"}`), nil},
		{"initialized with number id", post(`{"jsonrpc":"2.0","id":1,"method":"notifications/initialized"}`),
			e400(CodeInvalidRequest, "1", `a notification must not have an id; "notifications/initialized" carries one`)},
		{"cancelled with string id", post(`{"jsonrpc":"2.0","id":"n","method":"notifications/cancelled","params":{"requestId":1}}`),
			e400(CodeInvalidRequest, `"n"`, `a notification must not have an id; "notifications/cancelled" carries one`)},
		{"unknown notification with id", post(`{"jsonrpc":"2.0","id":5,"method":"notifications/tools/call"}`),
			e400(CodeInvalidRequest, "5", "a notification must not have an id")},
		{"notification with null id", post(`{"jsonrpc":"2.0","id":null,"method":"notifications/initialized"}`),
			e400(CodeInvalidRequest, "", "a notification must not have an id")},
		{"escaped notification name with id", post(`{"jsonrpc":"2.0","id":2,"method":"notifications\/progress"}`),
			e400(CodeInvalidRequest, "2", `"notifications/progress" carries one`)},
		{"notification with id in a batch", post(`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"notifications/initialized"}]`),
			e400(CodeInvalidRequest, "2", "batch element 1: a notification must not have an id")},
		{"notification with id under 2026-07-28", modern(`{"jsonrpc":"2.0","id":3,"method":"notifications/cancelled","params":{`+meta2026+`}}`, "mcp-method", "notifications/cancelled"),
			e400(CodeInvalidRequest, "3", "a notification must not have an id")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHTTP(tt.req)
			checkErr(t, err, tt.want)
			if tt.want == nil && (got == nil || got.Messages[0].Kind != KindNotification) {
				t.Fatalf("Call = %+v, want a notification", got)
			}
		})
	}

	names := []string{"notifications/cancelled", "notifications/progress", "notifications/initialized",
		"notifications/roots/list_changed", "notifications/tasks/status", "notifications/message",
		"notifications/tools/list_changed", "notifications/elicitation/complete", "notifications/Cancelled", "tools/call", ""}
	want := map[string][]string{
		Version20241105: names[:4],
		Version20250326: names[:4],
		Version20250618: names[:4],
		Version20251125: names[:5],
		Version20260728: names[:1],
		"2099-01-01":    nil,
		"":              nil,
	}
	for version, defined := range want {
		var got []string
		for _, n := range names {
			if ClientNotification(version, n) {
				got = append(got, n)
			}
		}
		if d := cmp.Diff(defined, got); d != "" {
			t.Errorf("ClientNotification(%q, ...) (-want +got):\n%s", version, d)
		}
	}
}

// TestCompletionRef: completion/complete exposes the prompt or resource it
// completes, and a request whose ref cannot be read one way is -32602.
func TestCompletionRef(t *testing.T) {
	complete := func(ref string) string {
		return `{"jsonrpc":"2.0","id":8,"method":"completion/complete","params":{"ref":` + ref + `,"argument":{"name":"a","value":"b"}}}`
	}
	req := func(ref string) Message {
		p := `{"ref":` + ref + `,"argument":{"name":"a","value":"b"}}`
		return Message{Kind: KindRequest, Method: "completion/complete", ID: json.RawMessage(`8`), Params: json.RawMessage(p)}
	}
	withPrompt := func(m Message, p string) Message { m.Prompt = p; return m }
	withURI := func(m Message, u string) Message { m.URI = u; return m }
	const (
		promptRef   = `{"type":"ref/prompt","name":"code_review"}`
		titledRef   = `{"type":"ref/prompt","name":"code_review","title":"Review"}`
		escapedRef  = `{"type":"ref\/prompt","name":"code\u005freview"}`
		resourceRef = `{"type":"ref/resource","uri":"file:///{path}"}`
	)
	tests := []struct {
		name string
		req  *HTTPRequest
		want Message
		err  *Error
	}{
		{"prompt ref", post(complete(promptRef)), withPrompt(req(promptRef), "code_review"), nil},
		{"prompt ref with title", post(complete(titledRef)), withPrompt(req(titledRef), "code_review"), nil},
		{"escaped prompt ref", post(complete(escapedRef)), withPrompt(req(escapedRef), "code_review"), nil},
		{"resource template ref", post(complete(resourceRef)), withURI(req(resourceRef), "file:///{path}"), nil},
		{"member order does not matter", post(`{"params":{"argument":{"name":"a","value":"b"},"ref":{"name":"p","type":"ref/prompt"}},"method":"completion/complete","id":8,"jsonrpc":"2.0"}`),
			Message{Kind: KindRequest, Method: "completion/complete", ID: json.RawMessage(`8`), Prompt: "p",
				Params: json.RawMessage(`{"argument":{"name":"a","value":"b"},"ref":{"name":"p","type":"ref/prompt"}}`)}, nil},

		{"no params", post(`{"jsonrpc":"2.0","id":8,"method":"completion/complete"}`), Message{},
			e400(CodeInvalidParams, "8", `completion/complete needs params.ref, an object with "type" "ref/prompt" or "ref/resource"; it is missing`)},
		{"no ref", post(`{"jsonrpc":"2.0","id":8,"method":"completion/complete","params":{"argument":{"name":"a","value":"b"}}}`), Message{},
			e400(CodeInvalidParams, "8", "completion/complete needs params.ref")},
		{"ref is a string", post(complete(`"ref/prompt"`)), Message{}, e400(CodeInvalidParams, "8", "needs params.ref, an object with \"type\" \"ref/prompt\" or \"ref/resource\"; it is a JSON string")},
		{"ref is null", post(complete(`null`)), Message{}, e400(CodeInvalidParams, "8", "it is a JSON null")},
		{"no type", post(complete(`{"name":"p"}`)), Message{}, e400(CodeInvalidParams, "8", `completion/complete needs params.ref.type ("ref/prompt" or "ref/resource")`)},
		{"type number", post(complete(`{"type":1,"name":"p"}`)), Message{}, e400(CodeInvalidParams, "8", "params.ref.type of completion/complete must be a string, not a JSON number")},
		{"unknown type", post(complete(`{"type":"ref/tool","name":"delete_all"}`)), Message{},
			e400(CodeInvalidParams, "8", `params.ref.type of completion/complete must be "ref/prompt" or "ref/resource", not "ref/tool"`)},
		{"type case", post(complete(`{"type":"Ref/Prompt","name":"p"}`)), Message{}, e400(CodeInvalidParams, "8", `not "Ref/Prompt"`)},
		{"prompt ref without name", post(complete(`{"type":"ref/prompt","uri":"x"}`)), Message{},
			e400(CodeInvalidParams, "8", "a ref/prompt reference of completion/complete needs params.ref.name")},
		{"prompt ref name number", post(complete(`{"type":"ref/prompt","name":7}`)), Message{},
			e400(CodeInvalidParams, "8", "params.ref.name of completion/complete must be a string, not a JSON number")},
		{"prompt ref empty name", post(complete(`{"type":"ref/prompt","name":""}`)), Message{}, e400(CodeInvalidParams, "8", "params.ref.name of completion/complete is empty")},
		{"prompt ref with uri too", post(complete(`{"type":"ref/prompt","name":"p","uri":"file:///x"}`)), Message{},
			e400(CodeInvalidParams, "8", "a ref/prompt reference of completion/complete must not carry params.ref.uri")},
		{"resource ref without uri", post(complete(`{"type":"ref/resource","name":"x"}`)), Message{},
			e400(CodeInvalidParams, "8", "a ref/resource reference of completion/complete needs params.ref.uri")},
		{"resource ref with name too", post(complete(`{"type":"ref/resource","uri":"file:///x","name":"p"}`)), Message{},
			e400(CodeInvalidParams, "8", "a ref/resource reference of completion/complete must not carry params.ref.name")},
		{"duplicate name in ref", post(complete(`{"type":"ref/prompt","name":"a","name":"b"}`)), Message{}, e400(CodeParseError, "", `duplicate member name "name"`)},
		{"case variant in ref", post(complete(`{"type":"ref/prompt","name":"a","Name":"b"}`)), Message{},
			e400(CodeParseError, "", `member names "name" and "Name" differ only in letter case`)},
		{"case variant instead of name", post(complete(`{"type":"ref/prompt","NAME":"b"}`)), Message{},
			e400(CodeInvalidRequest, "8", `differs from "params.ref.name" only in letter case`)},
		{"Ref instead of ref", post(`{"jsonrpc":"2.0","id":8,"method":"completion/complete","params":{"Ref":{"type":"ref/prompt","name":"p"}}}`), Message{},
			e400(CodeInvalidRequest, "8", `differs from "params.ref" only in letter case`)},
		{"bad ref in a batch", post(`[{"jsonrpc":"2.0","id":1,"method":"ping"},` + complete(`{"type":"ref/x"}`) + `]`), Message{},
			e400(CodeInvalidParams, "8", `batch element 1: params.ref.type of completion/complete must be "ref/prompt" or "ref/resource"`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHTTP(tt.req)
			checkErr(t, err, tt.err)
			if tt.err != nil {
				return
			}
			if d := cmp.Diff([]Message{tt.want}, got.Messages, cmpCall); d != "" {
				t.Errorf("Messages (-want +got):\n%s", d)
			}
		})
	}
}
