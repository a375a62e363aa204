package extproc

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// A response body over the response limit (limits.max_response_bytes)
// reaches the agent as a 502 JSON-RPC error by its request's id, naming the
// limit — never Envoy's plain 500, never unmasked: refused at the headers
// when content-length says so, at the body when it grows past the limit
// (whole or in chunks), or when Envoy's BUFFERED_PARTIAL buffer fills up
// before the end. A body at the limit passes, masked.
func TestResponseOverTheLimitIsAJSONRPCError(t *testing.T) {
	const limit = 2048
	under := `{"jsonrpc":"2.0","id":7,"result":{"k":"` + awsKey + `","pad":"` + strings.Repeat("a", 1500) + `"}}`
	atLimit := under + strings.Repeat(" ", limit-len(under))
	over := strings.Repeat("y", limit+1)
	type chunk struct {
		body string
		eos  bool
	}
	for _, tc := range []struct {
		name     string
		mode     procmodev3.ProcessingMode_BodySendMode
		trust    bool
		ct, cl   string
		chunks   []chunk
		atHeader bool // refused at the response headers
		refused  bool
	}{
		{name: "content-length over the limit", mode: procmodev3.ProcessingMode_STREAMED, trust: true, ct: "application/json", cl: strconv.Itoa(limit + 1), atHeader: true, refused: true},
		{name: "text content-length over the limit", mode: procmodev3.ProcessingMode_STREAMED, ct: "text/plain", cl: "99999999", atHeader: true, refused: true},
		{name: "content-length at the limit", mode: procmodev3.ProcessingMode_STREAMED, trust: true, ct: "application/json", cl: strconv.Itoa(limit), chunks: []chunk{{atLimit, true}}},
		{name: "no content-length, whole body over", mode: procmodev3.ProcessingMode_STREAMED, trust: true, ct: "application/json", chunks: []chunk{{over, true}}, refused: true},
		{name: "no content-length, chunks grow over (override ignored)", mode: procmodev3.ProcessingMode_STREAMED, ct: "application/json", chunks: []chunk{{over[:1500], false}, {over[1500:], true}}, refused: true},
		{name: "Envoy's buffer full before the end (BUFFERED_PARTIAL)", mode: procmodev3.ProcessingMode_STREAMED, trust: true, ct: "application/json", chunks: []chunk{{over, false}}, refused: true},
		{name: "under the limit", mode: procmodev3.ProcessingMode_STREAMED, trust: true, ct: "application/json", chunks: []chunk{{under, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startWith(t, func(o *Options) { o.MaxBodyBytes, o.ModeOverride = limit, tc.trust })
			x := e.open(t, tc.mode)
			x.requestPhases(meta, toolCall)
			h := []string{":status", "200", "content-type", tc.ct}
			if tc.cl != "" {
				h = append(h, "content-length", tc.cl)
			}
			x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(h...)}})
			r := x.recv()
			if tc.atHeader {
				checkTooLarge(t, e, r)
				return
			}
			if r.GetResponseHeaders() == nil {
				t.Fatalf("headers: got %v", r)
			}
			if tc.trust && r.GetModeOverride().GetResponseBodyMode() != procmodev3.ProcessingMode_BUFFERED_PARTIAL {
				t.Errorf("mode_override %v, want BUFFERED_PARTIAL (an overflow reaches airlock, not Envoy's 500)", r.GetModeOverride())
			}
			var out string
			for i, c := range tc.chunks {
				x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(c.body), EndOfStream: c.eos}}})
				r = x.recv()
				if tc.refused && i == len(tc.chunks)-1 {
					checkTooLarge(t, e, r)
					return
				}
				out += string(r.GetResponseBody().GetResponse().GetBodyMutation().GetBody())
			}
			if strings.Contains(out, awsKey) || !strings.Contains(out, "[MASKED:aws_access_key]") {
				t.Errorf("body %q: want it masked", out)
			}
		})
	}
}

func checkTooLarge(t *testing.T, e *env, r *extprocv3.ProcessingResponse) {
	t.Helper()
	if diff := cmp.Diff([]string{"7"}, refusedIDs(t, r, 502, "limits.max_response_bytes")); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if d := r.GetImmediateResponse().GetDetails(); d != "airlock_response_too_large" {
		t.Errorf("details %q", d)
	}
	if len(e.rec.msgs) == 0 || e.rec.msgs[len(e.rec.msgs)-1].Direction != "error" {
		t.Error("no audit error record for the refusal")
	}
}

// A request body larger than the response limit (limits.max_request_bytes
// above limits.max_response_bytes) is still read for its id, so a
// withheld response answers it by id.
func TestLargeRequestKeepsItsIDForTheRefusal(t *testing.T) {
	const limit = 2048
	e := startWith(t, func(o *Options) { o.MaxBodyBytes, o.MaxRequestBytes, o.ModeOverride = limit, 8192, true })
	x := e.open(t, procmodev3.ProcessingMode_STREAMED)
	req := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{"pad":"` + strings.Repeat("p", 4000) + `"}}}`
	x.requestPhases(meta, req)
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", "application/json", "content-length", "99999")}})
	checkTooLarge(t, e, x.recv())
}
