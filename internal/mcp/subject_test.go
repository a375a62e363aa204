package mcp

import (
	"testing"
)

// subjectCases are one request per method that acts on something, with
// what it acts on.
var subjectCases = []struct {
	body, method, subject string
}{
	{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues","arguments":{}}}`, "tools/call", "search_issues"},
	{`{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"summarize"}}`, "prompts/get", "summarize"},
	{`{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"file:///etc/motd"}}`, "resources/read", "file:///etc/motd"},
	{`{"jsonrpc":"2.0","id":4,"method":"resources/subscribe","params":{"uri":"db://orders"}}`, "resources/subscribe", "db://orders"},
	{`{"jsonrpc":"2.0","id":5,"method":"resources/unsubscribe","params":{"uri":"db://orders"}}`, "resources/unsubscribe", "db://orders"},
	{`{"jsonrpc":"2.0","id":6,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"summarize"},"argument":{"name":"a","value":"b"}}}`, "completion/complete", "summarize"},
	{`{"jsonrpc":"2.0","id":7,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///{path}"},"argument":{"name":"path","value":"x"}}}`, "completion/complete", "file:///{path}"},
	{`{"jsonrpc":"2.0","id":8,"method":"tools/list"}`, "tools/list", ""},
}

// TestSubjectStrictAndRecorded: the parser ext_authz decides with and the
// lenient reader the audit trail records with name every request's
// subject alike, for every method that has one.
func TestSubjectStrictAndRecorded(t *testing.T) {
	for _, tc := range subjectCases {
		t.Run(tc.method, func(t *testing.T) {
			call, perr := ParseHTTP(&HTTPRequest{Method: "POST", Headers: map[string]string{
				"content-type": "application/json", "accept": "application/json, text/event-stream", "mcp-protocol-version": Version20250618,
			}, Body: []byte(tc.body)})
			if perr != nil {
				t.Fatal(perr.Message)
			}
			if got := call.Messages[0].Subject(); got != tc.subject {
				t.Errorf("parsed: Subject() = %q, want %q", got, tc.subject)
			}
			r := ReadRecorded([]byte(tc.body))
			if r.Kind != KindRequest || r.Method != tc.method || r.Subject() != tc.subject {
				t.Errorf("recorded: %s %s subject %q, want request %s subject %q", r.Kind, r.Method, r.Subject(), tc.method, tc.subject)
			}
			if HasSubject(tc.method) != (tc.subject != "") {
				t.Errorf("HasSubject(%s) = %v", tc.method, HasSubject(tc.method))
			}
		})
	}
}

// TestReadRecordedShapes: responses, errors and notifications are told
// apart, a null id is no id, and unreadable bytes give an empty message
// rather than a failure (they are still recorded).
func TestReadRecordedShapes(t *testing.T) {
	for _, tc := range []struct {
		body   string
		kind   Kind
		id     string
		method string
		isErr  bool
	}{
		{`{"jsonrpc":"2.0","id":"a","result":{}}`, KindResponse, `"a"`, "", false},
		{`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"x"}}`, KindResponse, "", "", true},
		{`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}`, KindNotification, "", "notifications/progress", false},
		{`{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"x"}}`, KindNotification, "", "tools/call", false},
		{`not json [MASKED:aws_access_key]`, KindResponse, "", "", false},
	} {
		r := ReadRecorded([]byte(tc.body))
		if r.Kind != tc.kind || string(r.ID) != tc.id || r.Method != tc.method || (len(r.RPCError) > 0) != tc.isErr || r.Subject() != "" {
			t.Errorf("%s: got kind %s id %q method %q error %q subject %q", tc.body, r.Kind, r.ID, r.Method, r.RPCError, r.Subject())
		}
	}
}
