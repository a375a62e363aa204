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
