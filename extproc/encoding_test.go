package extproc

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/google/go-cmp/cmp"
)

const (
	streamed = procmodev3.ProcessingMode_STREAMED
	buffered = procmodev3.ProcessingMode_BUFFERED
	partial  = procmodev3.ProcessingMode_BUFFERED_PARTIAL
	duplex   = procmodev3.ProcessingMode_FULL_DUPLEX_STREAMED
	noBody   = procmodev3.ProcessingMode_NONE
)

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

// rpcError is what the agent gets when a response is withheld.
type rpcError struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// refusedIDs checks r is an immediate response with status and a JSON-RPC
// error body (an array for a batch), and returns the ids it answers.
func refusedIDs(t *testing.T, r *extprocv3.ProcessingResponse, status int, wantIn string) []string {
	t.Helper()
	ir := r.GetImmediateResponse()
	if ir == nil || int(ir.GetStatus().GetCode()) != status {
		t.Fatalf("want an immediate %d, got %v", status, r)
	}
	var errs []rpcError
	body := ir.GetBody()
	if bytes.HasPrefix(body, []byte("[")) {
		if err := json.Unmarshal(body, &errs); err != nil {
			t.Fatalf("error body %s: %v", body, err)
		}
	} else {
		var one rpcError
		if err := json.Unmarshal(body, &one); err != nil {
			t.Fatalf("error body %s: %v", body, err)
		}
		errs = append(errs, one)
	}
	var ids []string
	for _, e := range errs {
		if e.JSONRPC != "2.0" || e.Error.Code != -32603 || !strings.Contains(e.Error.Message, wantIn) {
			t.Errorf("error %+v: want a JSON-RPC -32603 error saying %q", e, wantIn)
		}
		ids = append(ids, string(e.ID))
	}
	return ids
}

// TestCompressedResponseRefused: a response with any content-encoding but
// identity is withheld — JSON (buffered), SSE (streamed) and text alike —
// and the agent gets a JSON-RPC error by the request's id; the audit has
// an "error" record saying why. Never a byte of the body reaches the agent.
func TestCompressedResponseRefused(t *testing.T) {
	e := start(t)
	for _, tc := range []struct {
		name, ct, ce, req string
		wantIDs           []string
	}{
		{"gzip JSON", "application/json", "gzip", toolCall, []string{"7"}},
		{"br JSON", "application/json", "br", toolCall, []string{"7"}},
		{"gzip SSE", "text/event-stream", "gzip", toolCall, []string{"7"}},
		{"br SSE", "text/event-stream; charset=utf-8", "br", toolCall, []string{"7"}},
		{"deflate text", "text/plain", "deflate", toolCall, []string{"7"}},
		{"listed with identity", "application/json", "identity, gzip", toolCall, []string{"7"}},
		{"upper case", "application/json", "GZIP", toolCall, []string{"7"}},
		{"string id", "application/json", "zstd", `{"jsonrpc":"2.0","id":"a-1","method":"tools/list"}`, []string{`"a-1"`}},
		{"batch", "application/json", "gzip", `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`, []string{"1", "2"}},
		{"unreadable request", "application/json", "gzip", `not json`, []string{"null"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.rec.msgs = nil
			x := e.open(t, streamed)
			x.requestPhases(meta, tc.req)
			x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", tc.ct, "content-encoding", tc.ce)}})
			r := x.recv()
			if diff := cmp.Diff(tc.wantIDs, refusedIDs(t, r, 502, "compressed")); diff != "" {
				t.Errorf("ids answered (-want +got):\n%s", diff)
			}
			if r.GetImmediateResponse().GetDetails() != "airlock_response_encoding_refused" {
				t.Errorf("details %q", r.GetImmediateResponse().GetDetails())
			}
			var got []string
			for _, m := range e.rec.msgs {
				if m.Direction == "error" {
					got = append(got, m.JSONRPCID)
					if m.Status != 502 || !strings.Contains(m.Payload, "compressed") || m.Principal != "00u-alice" || m.DecisionID != "d-1" {
						t.Errorf("audit record %+v", m)
					}
				}
			}
			want := tc.wantIDs
			if want[0] == "null" {
				want = []string{""}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("audit error records by id (-want +got):\n%s", diff)
			}
		})
	}

	// The body itself never gets through, even if Envoy sends it anyway
	// (the stream is failed: every later chunk is refused too).
	e.rec.msgs = nil
	x := e.open(t, streamed)
	x.requestPhases(meta, toolCall)
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", "text/event-stream", "content-encoding", "gzip")}})
	x.recv()
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: gzipped(t, "data: "+awsKey+"\n\n")}}})
	if r := x.recv(); r.GetImmediateResponse() == nil || r.GetResponseBody() != nil {
		t.Fatalf("a chunk after the refusal got %v", r)
	}
	x.stream.CloseSend()
	x.stream.Recv()
	if n := len(e.rec.errors()); n != 1 {
		t.Errorf("%d error records for one refused exchange, want 1", n)
	}

	// identity is no encoding: masked as usual.
	x = e.open(t, streamed)
	x.requestPhases(meta, toolCall)
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", "application/json", "content-encoding", "Identity")}})
	if r := x.recv(); r.GetImmediateResponse() != nil {
		t.Fatalf("identity refused: %v", r)
	}
	// A response without a body has nothing to decode.
	x = e.open(t, streamed)
	x.requestPhases(meta, toolCall)
	h := headers(":status", "202", "content-encoding", "gzip")
	h.EndOfStream = true
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: h}})
	if r := x.recv(); r.GetResponseHeaders() == nil {
		t.Fatalf("a bodiless response was refused: %v", r)
	}
}

// TestBodyModes: in every response_body_mode Envoy may announce in
// protocol_config, every byte the agent gets has been masked, or the
// response is refused. The mode_override asked for, and what happens to
// the body, per mode, kind of body and whether the override is relied on.
func TestBodyModes(t *testing.T) {
	jsonBody := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"key ` + awsKey + `"}]}}`
	type step struct {
		body string
		eos  bool
	}
	for _, tc := range []struct {
		name       string
		mode       procmodev3.ProcessingMode_BodySendMode
		noProtocol bool
		trust      bool
		profile    string
		ct         string
		override   procmodev3.ProcessingMode_BodySendMode // NONE: none asked for
		headerFail bool                                   // refused at the headers
		chunks     []step                                 // what Envoy then sends
		bodyFail   bool                                   // refused at the last chunk
	}{
		{name: "STREAMED JSON asks for BUFFERED", mode: streamed, ct: "application/json", override: buffered, chunks: []step{{jsonBody, true}}},
		{name: "STREAMED JSON, override ignored: chunks gathered", mode: streamed, ct: "application/json", override: buffered, chunks: []step{{jsonBody[:20], false}, {jsonBody[20:], true}}},
		{name: "STREAMED JSON, override relied on: BUFFERED_PARTIAL", mode: streamed, trust: true, ct: "application/json", override: partial, chunks: []step{{jsonBody, true}}},
		{name: "STREAMED JSON over Envoy's buffer, override relied on", mode: streamed, trust: true, ct: "application/json", override: partial, chunks: []step{{jsonBody[:40], false}}, bodyFail: true},
		{name: "STREAMED SSE stays streamed", mode: streamed, ct: "text/event-stream", chunks: []step{{sseStream[:30], false}, {sseStream[30:], true}}},
		{name: "FULL_DUPLEX JSON: no override", mode: duplex, ct: "application/json", chunks: []step{{jsonBody, true}}},
		{name: "BUFFERED JSON", mode: buffered, ct: "application/json", chunks: []step{{jsonBody, true}}},
		{name: "BUFFERED SSE whole", mode: buffered, ct: "text/event-stream", chunks: []step{{sseStream, true}}},
		{name: "BUFFERED_PARTIAL JSON that fits", mode: partial, ct: "application/json", chunks: []step{{jsonBody, true}}},
		{name: "BUFFERED_PARTIAL JSON over the buffer", mode: partial, ct: "application/json", chunks: []step{{jsonBody[:40], false}}, bodyFail: true},
		{name: "BUFFERED_PARTIAL text over the buffer", mode: partial, ct: "text/plain", chunks: []step{{"x " + awsKey, false}}, bodyFail: true},
		{name: "BUFFERED_PARTIAL SSE over the buffer", mode: partial, ct: "text/event-stream", chunks: []step{{sseStream[:40], false}}, bodyFail: true},
		{name: "BUFFERED_PARTIAL SSE that fits", mode: partial, ct: "text/event-stream", chunks: []step{{sseStream, true}}},
		{name: "BUFFERED_PARTIAL SSE switched to STREAMED", mode: partial, trust: true, ct: "text/event-stream", override: streamed, chunks: []step{{sseStream[:40], false}, {sseStream[40:], true}}},
		{name: "NONE JSON refused", mode: noBody, ct: "application/json", headerFail: true},
		{name: "NONE SSE refused", mode: noBody, ct: "text/event-stream", headerFail: true},
		{name: "NONE text refused", mode: noBody, ct: "text/plain", headerFail: true},
		{name: "NONE JSON switched to BUFFERED", mode: noBody, trust: true, ct: "application/json", override: buffered, chunks: []step{{jsonBody, true}}},
		{name: "NONE SSE switched to STREAMED", mode: noBody, trust: true, ct: "text/event-stream", override: streamed, chunks: []step{{sseStream[:10], false}, {sseStream[10:], true}}},
		{name: "NONE with profile off passes", mode: noBody, profile: "off", ct: "application/json"},
		{name: "no protocol_config refused", noProtocol: true, ct: "application/json", headerFail: true},
		{name: "no protocol_config, override relied on", noProtocol: true, trust: true, ct: "application/json", override: buffered, chunks: []step{{jsonBody, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startWith(t, func(o *Options) { o.ModeOverride = tc.trust })
			x := e.open(t, tc.mode)
			x.noProtocol = tc.noProtocol
			m := meta
			if tc.profile != "" {
				m = map[string]any{"principal": "00u-alice", "decision_id": "d-1", "masking_profile": tc.profile}
			}
			x.requestPhases(m, toolCall)
			x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", tc.ct)}})
			hr := x.recv()
			if tc.headerFail {
				if diff := cmp.Diff([]string{"7"}, refusedIDs(t, hr, 502, "airlock refused")); diff != "" {
					t.Errorf("ids (-want +got):\n%s", diff)
				}
				if len(e.rec.msgs) == 0 || e.rec.msgs[len(e.rec.msgs)-1].Direction != "error" {
					t.Error("no audit error record for the refusal")
				}
				return
			}
			if got := hr.GetModeOverride().GetResponseBodyMode(); got != tc.override {
				t.Errorf("mode_override %v, want %v", got, tc.override)
			}
			if hr.GetResponseHeaders() == nil {
				t.Fatalf("got %v", hr)
			}
			var out strings.Builder
			for i, c := range tc.chunks {
				x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(c.body), EndOfStream: c.eos}}})
				if tc.mode == duplex && !c.eos {
					continue
				}
				r := x.recv()
				if tc.bodyFail && i == len(tc.chunks)-1 {
					if diff := cmp.Diff([]string{"7"}, refusedIDs(t, r, 502, "airlock refused the server's")); diff != "" {
						t.Errorf("ids (-want +got):\n%s", diff)
					}
					return
				}
				bm := r.GetResponseBody().GetResponse().GetBodyMutation()
				if r.GetResponseBody() == nil {
					t.Fatalf("chunk %d: got %v", i, r)
				}
				out.Write(bm.GetBody())
				out.Write(bm.GetStreamedResponse().GetBody())
			}
			if tc.bodyFail {
				t.Fatal("the response was not refused")
			}
			got := out.String()
			if strings.Contains(got, awsKey) || strings.Contains(got, ghToken) {
				t.Errorf("unmasked bytes reach the agent: %q", got)
			}
			if len(tc.chunks) > 0 && !strings.Contains(got, "[MASKED:") {
				t.Errorf("nothing masked: %q", got)
			}
		})
	}
}

// TestBufferedBodyGetsItsLength: a body masked whole in BUFFERED mode
// (announced, or asked for) carries a matching content-length, since
// Envoy keeps the upstream's in that mode.
func TestBufferedBodyGetsItsLength(t *testing.T) {
	for _, tc := range []struct {
		mode     procmodev3.ProcessingMode_BodySendMode
		ct, body string
	}{
		{buffered, "application/json", `{"jsonrpc":"2.0","id":7,"result":{"k":"` + awsKey + `"}}`},
		{streamed, "application/json", `{"jsonrpc":"2.0","id":7,"result":{"k":"` + awsKey + `"}}`},
		{partial, "application/json", `{"jsonrpc":"2.0","id":7,"result":{"k":"` + awsKey + `"}}`},
		{buffered, "text/event-stream", sseStream},
	} {
		mode, body := tc.mode, tc.body
		t.Run(mode.String()+" "+tc.ct, func(t *testing.T) {
			e := start(t)
			x := e.open(t, mode)
			x.requestPhases(meta, toolCall)
			x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", tc.ct, "content-length", fmt.Sprint(len(body)))}})
			x.recv()
			x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}})
			cr := x.recv().GetResponseBody().GetResponse()
			out := cr.GetBodyMutation().GetBody()
			set := cr.GetHeaderMutation().GetSetHeaders()
			if len(set) != 1 || set[0].GetHeader().GetKey() != "content-length" || string(set[0].GetHeader().GetRawValue()) != fmt.Sprint(len(out)) {
				t.Errorf("content-length %v for a %d-byte body", set, len(out))
			}
		})
	}
}

// TestPartialWithProfileOff: nothing to mask, so a BUFFERED_PARTIAL first
// part passes as it is (no override asked, not refused).
func TestPartialWithProfileOff(t *testing.T) {
	e := start(t)
	x := e.open(t, partial)
	x.requestPhases(map[string]any{"decision_id": "d-1", "masking_profile": "off"}, toolCall)
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", "application/json")}})
	if r := x.recv(); r.GetResponseHeaders() == nil {
		t.Fatalf("got %v", r)
	}
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(`{"jsonrpc":"2.0","id":7,"res`)}}})
	r := x.recv()
	if r.GetResponseBody() == nil || r.GetResponseBody().GetResponse().GetBodyMutation() != nil {
		t.Fatalf("the first part must pass unchanged, got %v", r)
	}
}
