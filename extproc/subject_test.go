package extproc

import (
	"testing"

	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// TestRecordedSubject: the audit events' tool column holds what the call
// acts on — for resources/read the resource URI, as docs/analytics.md
// promises (it held "" when extproc read only params.name) — on the
// request and on its response.
func TestRecordedSubject(t *testing.T) {
	const uri = "file:///srv/reports/q3.md"
	for _, tc := range []struct {
		name, method, request, subject string
	}{
		{"resources/read", "resources/read", `{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{"uri":"` + uri + `"}}`, uri},
		{"prompts/get", "prompts/get", `{"jsonrpc":"2.0","id":7,"method":"prompts/get","params":{"name":"summarize"}}`, "summarize"},
		{"completion ref", "completion/complete", `{"jsonrpc":"2.0","id":7,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///{p}"},"argument":{"name":"p","value":"q"}}}`, "file:///{p}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t)
			x := e.open(t, procmodev3.ProcessingMode_STREAMED)
			x.requestPhases(meta, tc.request)
			x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", "application/json")}})
			x.recv()
			body := `{"jsonrpc":"2.0","id":7,"result":{"contents":[{"uri":"` + uri + `","text":"ok"}]}}`
			x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}})
			x.recv()
			x.stream.CloseSend()
			e.rec.mu.Lock()
			defer e.rec.mu.Unlock()
			if len(e.rec.msgs) != 2 {
				t.Fatalf("recorded %d messages, want request and response", len(e.rec.msgs))
			}
			for _, m := range e.rec.msgs {
				if m.Method != tc.method || m.Tool != tc.subject {
					t.Errorf("%s record: method %q tool %q, want %q %q", m.Direction, m.Method, m.Tool, tc.method, tc.subject)
				}
			}
		})
	}
}
