package mcp

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestErrorResponse(t *testing.T) {
	tests := []struct {
		name    string
		id      json.RawMessage
		code    int
		message string
		data    any
		want    string
	}{
		{"number id", json.RawMessage(`7`), CodeInvalidParams, "tools/call needs params.name", nil,
			`{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"tools/call needs params.name"}}`},
		{"string id", json.RawMessage(`"a\"b"`), CodeHeaderMismatch, "m", nil,
			`{"jsonrpc":"2.0","id":"a\"b","error":{"code":-32020,"message":"m"}}`},
		{"unknown id", nil, CodeParseError, "invalid JSON at byte 3", nil,
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"invalid JSON at byte 3"}}`},
		{"object id becomes null", json.RawMessage(`{"x":1}`), CodeInvalidRequest, "m", nil,
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"m"}}`},
		{"injected id becomes null", json.RawMessage(`1,"error":{}`), CodeInvalidRequest, "m", nil,
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"m"}}`},
		{"id with trailing space becomes null", json.RawMessage(`1 `), CodeInvalidRequest, "m", nil,
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"m"}}`},
		{"data", json.RawMessage(`1`), CodeUnsupportedProtocolVersion, "unsupported",
			UnsupportedVersionData{Supported: []string{"2026-07-28"}, Requested: "1900-01-01"},
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"unsupported","data":{"supported":["2026-07-28"],"requested":"1900-01-01"}}}`},
		{"data that cannot be marshalled is dropped", json.RawMessage(`1`), CodeInternalError, "m", func() {},
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"m"}}`},
		{"message escaped", json.RawMessage(`1`), CodeInvalidRequest, "a \"quoted\" <tag>\n", nil,
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"a \"quoted\" \u003ctag\u003e\n"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ErrorResponse(tt.id, tt.code, tt.message, tt.data)
			if d := cmp.Diff(tt.want, string(got)); d != "" {
				t.Errorf("ErrorResponse (-want +got):\n%s", d)
			}
		})
	}
}

func TestErrorResponseMethod(t *testing.T) {
	_, err := ParseHTTP(post(`{"jsonrpc":"2.0","id":"q","method":"ping"}`, v25, "1900-01-01"))
	if err == nil {
		t.Fatal("want an unsupported version error")
	}
	var got struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int                    `json:"code"`
			Message string                 `json:"message"`
			Data    UnsupportedVersionData `json:"data"`
		} `json:"error"`
	}
	if uerr := json.Unmarshal(err.Response(), &got); uerr != nil {
		t.Fatalf("Response is not JSON: %v", uerr)
	}
	if got.JSONRPC != "2.0" || string(got.ID) != `"q"` || got.Error.Code != -32022 || got.Error.Message != err.Message {
		t.Errorf("Response = %+v", got)
	}
	want := UnsupportedVersionData{Supported: []string{"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}, Requested: "1900-01-01"}
	if d := cmp.Diff(want, got.Error.Data); d != "" {
		t.Errorf("data (-want +got):\n%s", d)
	}
}

func TestURLElicitationRequired(t *testing.T) {
	got := URLElicitationRequired(json.RawMessage(`2`), "Approval is required to call deploy; open the link, then retry.",
		"https://airlock.example.com/approve/req-123", "req-123")
	// The example of the 2025-11-25 elicitation spec, with our values.
	want := `{"jsonrpc":"2.0","id":2,"error":{"code":-32042,"message":"Approval is required to call deploy; open the link, then retry.",` +
		`"data":{"elicitations":[{"mode":"url","elicitationId":"req-123","url":"https://airlock.example.com/approve/req-123",` +
		`"message":"Approval is required to call deploy; open the link, then retry."}]}}}`
	if d := cmp.Diff(want, string(got)); d != "" {
		t.Errorf("URLElicitationRequired (-want +got):\n%s", d)
	}
	// Unknown id: null, as JSON-RPC requires.
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(URLElicitationRequired(nil, "m", "https://x", "e"), &v); err != nil || string(v.ID) != "null" {
		t.Errorf("id = %s (%v), want null", v.ID, err)
	}
}
