package envoydriver

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	procsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// upperResponse uppercases response bodies and asks, on the response
// headers, for mode_override (when override is set).
func upperResponse(override *extprocv3.ProcessingMode) func(*procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
	return func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
		switch {
		case r.GetResponseHeaders() != nil:
			resp := echoResponse(r)
			resp.ModeOverride = override
			return resp
		case r.GetResponseBody() != nil:
			return bodyResp(false, replaceBodyWith(strings.ToUpper(string(r.GetResponseBody().GetBody()))), nil)
		}
		return echoResponse(r)
	}
}

// TestExtProcResponseBodyModeOverride pins what airlock's processor relies
// on when Envoy would not send it the response body (response_body_mode
// NONE): a mode_override on the response headers switches the encoding
// state to BUFFERED only with allow_mode_override (and, if set, an
// allowed_override_modes entry) — ext_proc.cc Filter::onReceiveMessage;
// otherwise the body passes unprocessed. protocol_config carries the mode
// after per-route overrides (Filter::encodeProtocolConfig reads
// encoding_state_.bodyMode() after mergePerRouteConfig).
func TestExtProcResponseBodyModeOverride(t *testing.T) {
	toBuffered := &extprocv3.ProcessingMode{ResponseBodyMode: buffered}
	for _, tc := range []struct {
		name     string
		mod      func(*extprocv3.ExternalProcessor)
		perRoute *extprocv3.ProcessingMode
		wantBody string
		wantMsgs []string
		wantPC   extprocv3.ProcessingMode_BodySendMode
	}{
		{"honoured with allow_mode_override", func(c *extprocv3.ExternalProcessor) { c.AllowModeOverride = true },
			nil, "UPSTREAM OK", []string{"request_headers(eos)", "response_headers", "response_body(eos)"}, extprocv3.ProcessingMode_NONE},
		{"ignored without allow_mode_override: the body passes unprocessed", nil,
			nil, "upstream ok", []string{"request_headers(eos)", "response_headers"}, extprocv3.ProcessingMode_NONE},
		{"ignored when allowed_override_modes does not list it", func(c *extprocv3.ExternalProcessor) {
			c.AllowModeOverride = true
			c.AllowedOverrideModes = []*extprocv3.ProcessingMode{{ResponseHeaderMode: send, ResponseBodyMode: streamed}}
		}, nil, "upstream ok", []string{"request_headers(eos)", "response_headers"}, extprocv3.ProcessingMode_NONE},
		{"ignored with send_body_without_waiting_for_header_response", func(c *extprocv3.ExternalProcessor) {
			c.AllowModeOverride = true
			c.SendBodyWithoutWaitingForHeaderResponse = true
		}, nil, "upstream ok", []string{"request_headers(eos)", "response_headers"}, extprocv3.ProcessingMode_NONE},
		{"protocol_config says the per-route mode", func(c *extprocv3.ExternalProcessor) {
			c.ProcessingMode = &extprocv3.ProcessingMode{ResponseBodyMode: streamed}
		}, &extprocv3.ProcessingMode{ResponseBodyMode: extprocv3.ProcessingMode_NONE}, "upstream ok",
			[]string{"request_headers(eos)", "response_headers"}, extprocv3.ProcessingMode_NONE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := prefixRoute("/", "up")
			if tc.perRoute != nil {
				rt.TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.ext_proc": mustAny(t, &extprocv3.ExtProcPerRoute{
					Override: &extprocv3.ExtProcPerRoute_Overrides{Overrides: &extprocv3.ExtProcOverrides{ProcessingMode: tc.perRoute}}})}
			}
			e := newProcEnv(t, serveEach(one(upperResponse(toBuffered))), &extprocv3.ProcessingMode{}, tc.mod, nil, rt)
			got := do(t, e.d, "GET", "/", "", nil)
			if got.Status != 200 || got.Body != tc.wantBody {
				t.Errorf("agent got %d %q, want %q", got.Status, got.Body, tc.wantBody)
			}
			msgs := e.proc.received()[0]
			if diff := cmp.Diff(tc.wantMsgs, kinds(msgs)); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if pc := msgs[0].GetProtocolConfig(); pc == nil || pc.GetResponseBodyMode() != tc.wantPC {
				t.Errorf("protocol_config %v, want response_body_mode %v", pc, tc.wantPC)
			}
		})
	}
}

// TestExtProcPartialResponseBody pins BUFFERED_PARTIAL on the response
// (ext_proc.cc handleDataBufferedPartialMode): once the queue is over the
// buffer limit, what is held goes to the processor with end_of_stream
// false, and everything after it passes unprocessed
// (partialBodyProcessed) — the tail airlock must not let through. The
// response headers wait for that body response, so an immediate_response
// to it is the agent's whole answer.
func TestExtProcPartialResponseBody(t *testing.T) {
	for _, immediate := range []bool{false, true} {
		name := map[bool]string{false: "tail passes unprocessed", true: "immediate_response withholds it all"}[immediate]
		t.Run(name, func(t *testing.T) {
			sawPartial := make(chan struct{})
			var mu sync.Mutex
			var bodies []string
			handle := serveEach(one(func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
				b := r.GetResponseBody()
				if b == nil {
					return echoResponse(r)
				}
				mu.Lock()
				bodies = append(bodies, kind(r)+":"+string(b.GetBody()))
				mu.Unlock()
				close(sawPartial)
				if immediate {
					return &procsvc.ProcessingResponse{Response: &procsvc.ProcessingResponse_ImmediateResponse{ImmediateResponse: &procsvc.ImmediateResponse{
						Status: &typev3.HttpStatus{Code: typev3.StatusCode_BadGateway}, Body: []byte("withheld")}}}
				}
				return bodyResp(false, replaceBodyWith(strings.ToUpper(string(b.GetBody()))), nil)
			}))
			e := newProcEnvWith(t, envOpts{handle: handle, mode: &extprocv3.ProcessingMode{ResponseBodyMode: extprocv3.ProcessingMode_BUFFERED_PARTIAL},
				listener: func(l *listenerv3.Listener) { l.PerConnectionBufferLimitBytes = wrapperspb.UInt32(16) },
				upHandler: func(w http.ResponseWriter, r *http.Request) {
					w.Write([]byte("0123456789abcdefghij")) // 20 bytes: over the limit
					w.(http.Flusher).Flush()
					select {
					case <-sawPartial:
					case <-time.After(testTimeout):
					}
					w.Write([]byte("-secret-tail"))
				}})
			got := do(t, e.d, "GET", "/", "", nil)
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff([]string{"response_body:0123456789abcdefghij"}, bodies); diff != "" {
				t.Errorf("body messages (-want +got):\n%s", diff)
			}
			want := result{Status: 200, Body: "0123456789ABCDEFGHIJ-secret-tail"}
			if immediate {
				want = result{Status: 502, Body: "withheld"}
			}
			if got.Status != want.Status || got.Body != want.Body {
				t.Errorf("agent got %d %q, want %d %q", got.Status, got.Body, want.Status, want.Body)
			}
		})
	}
}
