package extproc

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// FuzzErrorBody: whatever the request body, the error a withheld response
// becomes is valid JSON-RPC — one error object, or an array for a batch —
// echoing only ids that are JSON strings or numbers, and the message
// (which never quotes the body) intact.
func FuzzErrorBody(f *testing.F) {
	for _, s := range []string{
		toolCall, `[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":"x","method":"b"}]`,
		`{"id":{"a":1},"method":"m"}`, `{"id":null,"method":"m"}`, `[]`, `[1,2]`, `not json`, ``,
		`{"id":"\u0000\"","method":"m"}`, `{"id":1e999,"method":"m"}`, `[{"id":true,"method":"m"}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s := &Stream{}
		s.noteRequestIDs(body)
		out := s.errorBody("withheld \"x\"")
		var v any
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil || dec.More() {
			t.Fatalf("error body %q is not JSON: %v", out, err)
		}
		objs, ok := v.([]any)
		if !ok {
			objs = []any{v}
		}
		for _, o := range objs {
			m := o.(map[string]any)
			switch m["id"].(type) {
			case nil, string, json.Number:
			default:
				t.Fatalf("id %v of type %T echoed", m["id"], m["id"])
			}
			if m["error"].(map[string]any)["message"] != "withheld \"x\"" {
				t.Fatalf("message changed: %v", m["error"])
			}
		}
	})
}

// FuzzContentEncoding: a content-encoding naming any coding but identity
// is never taken for plaintext.
func FuzzContentEncoding(f *testing.F) {
	for _, s := range []string{"gzip", "identity", "Identity", " identity , gzip", "br", "", ",", "x-gzip", "identity;q=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "content-encoding", RawValue: []byte(v)}}}}
		plain := true
		for _, c := range strings.Split(v, ",") {
			c = strings.ToLower(strings.TrimSpace(c))
			if c != "" && c != "identity" {
				plain = false
			}
		}
		if got := contentEncoding(h); (got == "") != plain {
			t.Fatalf("content-encoding %q read as %q", v, got)
		}
	})
}

// FuzzNoteRequestIDs: the request's ids are what json.Unmarshal of each
// message into {id, method} finds (the oracle: how they were read before
// mcp.ReadRecorded read them), in order.
func FuzzNoteRequestIDs(f *testing.F) {
	for _, s := range []string{
		toolCall, `[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":"x","method":"b"},{"id":2}]`,
		`{"id":{"a":1},"method":"m"}`, `{"id":null,"method":"m"}`, `{"ID":3,"Method":"m"}`, `{"id":4,"method":5}`,
		`{"id":"a\"b","method":"m","params":"s"}`, `[]`, `[1,2]`, `not json`, ``, `{"id":1,"method":"m"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var want []string
		if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 {
			for _, raw := range messages(trimmed) {
				var m struct {
					ID     json.RawMessage `json:"id"`
					Method string          `json:"method"`
				}
				if json.Unmarshal(raw, &m) != nil || m.Method == "" || !validID(m.ID) {
					continue
				}
				want = append(want, string(m.ID))
			}
		}
		s := &Stream{}
		s.noteRequestIDs(body)
		var got []string
		for _, id := range s.reqIDs {
			got = append(got, string(id))
		}
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") || len(got) != len(want) {
			t.Fatalf("%q: ids %q, want %q", body, got, want)
		}
	})
}
