package envoydriver

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	procsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type procEnv struct {
	d    *Driver
	up   *upstream
	proc *procServer
}

const (
	send     = extprocv3.ProcessingMode_SEND
	skip     = extprocv3.ProcessingMode_SKIP
	none     = extprocv3.ProcessingMode_NONE
	streamed = extprocv3.ProcessingMode_STREAMED
	buffered = extprocv3.ProcessingMode_BUFFERED
	partial  = extprocv3.ProcessingMode_BUFFERED_PARTIAL
	duplex   = extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED
)

func procConfigFor(cluster string, mode *extprocv3.ProcessingMode) *extprocv3.ExternalProcessor {
	return &extprocv3.ExternalProcessor{GrpcService: grpcService(cluster, 0), ProcessingMode: mode, MessageTimeout: durationpb.New(2 * time.Second)}
}

// newProcEnv runs an upstream (upHandler, nil for the default) behind the
// ext_proc filter with the given mode; mod edits the filter config.
func newProcEnv(t *testing.T, handle func(*procStream) error, mode *extprocv3.ProcessingMode, mod func(*extprocv3.ExternalProcessor), upHandler http.HandlerFunc, routes ...*routev3.Route) *procEnv {
	t.Helper()
	return newProcEnvWith(t, envOpts{handle: handle, mode: mode, mod: mod, upHandler: upHandler, routes: routes})
}

type envOpts struct {
	handle    func(*procStream) error
	mode      *extprocv3.ProcessingMode
	mod       func(*extprocv3.ExternalProcessor)
	upHandler http.HandlerFunc
	routes    []*routev3.Route
	listener  func(*listenerv3.Listener)
	clusters  []*clusterv3.Cluster
}

func newProcEnvWith(t *testing.T, o envOpts) *procEnv {
	t.Helper()
	e := &procEnv{up: newUpstream(t, o.upHandler)}
	var addr string
	e.proc, addr = newProc(t, o.handle)
	c := procConfigFor("proc", o.mode)
	if o.mod != nil {
		o.mod(c)
	}
	routes := o.routes
	if len(routes) == 0 {
		routes = []*routev3.Route{prefixRoute("/", "up")}
	}
	l := listener(t, routeConfig(routes...), procFilter(t, c))
	if o.listener != nil {
		o.listener(l)
	}
	e.d = startDriver(t, Config{Listener: l,
		Clusters: append([]*clusterv3.Cluster{staticCluster("up", e.up.addr()), staticCluster("proc", addr)}, o.clusters...)})
	return e
}

func kinds(reqs []*procsvc.ProcessingRequest) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = kind(r)
	}
	return out
}

// streamedEcho answers every message with CONTINUE; in FULL_DUPLEX_STREAMED
// it echoes body chunks as streamed responses.
func streamedEcho(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
	if b := r.GetResponseBody(); b != nil {
		return &procsvc.ProcessingResponse{Response: &procsvc.ProcessingResponse_ResponseBody{ResponseBody: &procsvc.BodyResponse{Response: &procsvc.CommonResponse{
			BodyMutation: &procsvc.BodyMutation{Mutation: &procsvc.BodyMutation_StreamedResponse{StreamedResponse: &procsvc.StreamedBodyResponse{Body: b.GetBody(), EndOfStream: b.GetEndOfStream()}}}}}}}
	}
	if b := r.GetRequestBody(); b != nil {
		return &procsvc.ProcessingResponse{Response: &procsvc.ProcessingResponse_RequestBody{RequestBody: &procsvc.BodyResponse{Response: &procsvc.CommonResponse{
			BodyMutation: &procsvc.BodyMutation{Mutation: &procsvc.BodyMutation_StreamedResponse{StreamedResponse: &procsvc.StreamedBodyResponse{Body: b.GetBody(), EndOfStream: b.GetEndOfStream()}}}}}}}
	}
	return echoResponse(r)
}

func TestExtProcPhaseOrder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   *extprocv3.ProcessingMode
		method string
		body   string
		echo   func(*procsvc.ProcessingRequest) *procsvc.ProcessingResponse
		want   []string
	}{
		{"default sends headers only", nil, "GET", "", echoResponse, []string{"request_headers(eos)", "response_headers"}},
		{"default with a request body", nil, "POST", "abc", echoResponse, []string{"request_headers", "response_headers"}},
		{"request STREAMED", &extprocv3.ProcessingMode{RequestBodyMode: streamed}, "POST", "abc", echoResponse,
			[]string{"request_headers", "request_body(eos)", "response_headers"}},
		{"request BUFFERED", &extprocv3.ProcessingMode{RequestBodyMode: buffered}, "POST", "abc", echoResponse,
			[]string{"request_headers", "request_body(eos)", "response_headers"}},
		{"request BUFFERED_PARTIAL", &extprocv3.ProcessingMode{RequestBodyMode: partial}, "POST", "abc", echoResponse,
			[]string{"request_headers", "request_body(eos)", "response_headers"}},
		{"request headers SKIP, BUFFERED body", &extprocv3.ProcessingMode{RequestHeaderMode: skip, RequestBodyMode: buffered}, "POST", "abc", echoResponse,
			[]string{"request_body(eos)", "response_headers"}},
		{"response BUFFERED", &extprocv3.ProcessingMode{ResponseBodyMode: buffered}, "GET", "", echoResponse,
			[]string{"request_headers(eos)", "response_headers", "response_body(eos)"}},
		{"response STREAMED", &extprocv3.ProcessingMode{ResponseBodyMode: streamed}, "GET", "", echoResponse,
			[]string{"request_headers(eos)", "response_headers", "response_body(eos)"}},
		{"response FULL_DUPLEX_STREAMED", &extprocv3.ProcessingMode{ResponseBodyMode: duplex, ResponseTrailerMode: send}, "GET", "", streamedEcho,
			[]string{"request_headers(eos)", "response_headers", "response_body(eos)"}},
		{"response headers SKIP", &extprocv3.ProcessingMode{ResponseHeaderMode: skip}, "GET", "", echoResponse, []string{"request_headers(eos)"}},
		{"trailer SEND without trailers sends none", &extprocv3.ProcessingMode{RequestTrailerMode: send, ResponseTrailerMode: send}, "GET", "", echoResponse,
			[]string{"request_headers(eos)", "response_headers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newProcEnv(t, serveEach(one(tc.echo)), tc.mode, nil, nil)
			got := do(t, e.d, tc.method, "/", tc.body, nil)
			if got.Status != 200 || got.Body != "upstream ok" {
				t.Fatalf("got %d %q", got.Status, got.Body)
			}
			streams := e.proc.received()
			if len(streams) != 1 {
				t.Fatalf("%d ext_proc streams, want one per request", len(streams))
			}
			if diff := cmp.Diff(tc.want, kinds(streams[0])); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			for i, r := range streams[0] {
				if (r.GetProtocolConfig() != nil) != (i == 0) {
					t.Errorf("message %d protocol_config = %v; it belongs in the first message only", i, r.GetProtocolConfig())
				}
			}
			if pc := streams[0][0].GetProtocolConfig(); pc.GetRequestBodyMode() != tc.mode.GetRequestBodyMode() || pc.GetResponseBodyMode() != tc.mode.GetResponseBodyMode() {
				t.Errorf("protocol_config %v does not match the processing mode", pc)
			}
			if e.up.last(t).Body != tc.body {
				t.Errorf("upstream body %q, want %q", e.up.last(t).Body, tc.body)
			}
			// closeStreamMaybeGraceful: the driver half-closes the stream.
			if err := e.proc.endOf(t, 0); err != io.EOF {
				t.Errorf("processor stream ended with %v, want io.EOF (half-close)", err)
			}
		})
	}
}

func TestExtProcHeadersAsSent(t *testing.T) {
	e := newProcEnv(t, serveEach(one(echoResponse)), nil, nil, nil)
	do(t, e.d, "GET", "/a?b=c", "", map[string]string{"X-Custom": "v1", "Host": "gw.test"})
	msgs := e.proc.received()[0]
	var got []*corev3.HeaderValue
	for _, hv := range msgs[0].GetRequestHeaders().GetHeaders().GetHeaders() {
		if hv.GetKey() != "x-request-id" {
			got = append(got, hv)
		}
	}
	raw := func(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} }
	want := []*corev3.HeaderValue{raw(":authority", "gw.test"), raw(":path", "/a?b=c"), raw(":method", "GET"), raw(":scheme", "http"),
		raw("user-agent", "Go-http-client/1.1"), raw("x-custom", "v1"), raw("x-forwarded-proto", "http")}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("request_headers (-want +got):\n%s", diff)
	}
	var status string
	for _, hv := range msgs[1].GetResponseHeaders().GetHeaders().GetHeaders() {
		if hv.GetKey() == ":status" {
			status = string(hv.GetRawValue())
		}
	}
	if status != "200" {
		t.Errorf("response_headers :status = %q", status)
	}
}

func setHeaders(kv ...string) *procsvc.HeaderMutation {
	m := &procsvc.HeaderMutation{}
	for i := 0; i < len(kv); i += 2 {
		m.SetHeaders = append(m.SetHeaders, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])}})
	}
	return m
}

func TestExtProcHeaderMutation(t *testing.T) {
	e := newProcEnv(t, serveEach(one(func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
		resp := echoResponse(r)
		switch {
		case r.GetRequestHeaders() != nil:
			m := setHeaders("x-added", "1", "host", "evil", ":authority", "evil", "x-envoy-foo", "1", ":path", "/rewritten", "x-empty-value", "")
			m.SetHeaders = append(m.SetHeaders, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-value-field", Value: "ignored"}})
			m.RemoveHeaders = []string{"x-remove", ":method"}
			resp.GetRequestHeaders().Response.HeaderMutation = m
		case r.GetResponseHeaders() != nil:
			m := setHeaders("x-resp", "r", ":status", "201")
			m.SetHeaders = append(m.SetHeaders, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-multi", RawValue: []byte("2")}, Append: wrapperspb.Bool(true)})
			resp.GetResponseHeaders().Response.HeaderMutation = m
		}
		return resp
	})), nil, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Multi", "1")
		w.Write([]byte("ok"))
	})
	got := do(t, e.d, "GET", "/orig", "", map[string]string{"X-Remove": "1"})
	if got.Status != 201 || got.Header.Get("X-Resp") != "r" || strings.Join(got.Header.Values("X-Multi"), "|") != "1|2" {
		t.Errorf("response %d headers %v: want 201 with x-resp and x-multi 1|2", got.Status, got.Header)
	}
	up := e.up.last(t)
	gotUp := map[string]string{"path": up.Path, "method": up.Method, "host": up.Host, "x-added": up.Header.Get("X-Added"),
		"x-remove": up.Header.Get("X-Remove"), "x-envoy-foo": up.Header.Get("X-Envoy-Foo"), "x-value-field": up.Header.Get("X-Value-Field")}
	want := map[string]string{"path": "/rewritten", "method": "GET", "host": e.d.Addr(), "x-added": "1", "x-remove": "", "x-envoy-foo": "", "x-value-field": ""}
	if diff := cmp.Diff(want, gotUp); diff != "" {
		t.Errorf("upstream request (-want +got):\n%s", diff)
	}
	if _, ok := up.Header["X-Value-Field"]; !ok {
		t.Error("a set_headers entry with only value (no raw_value) should set an empty header, as Envoy reads raw_value")
	}
}

func bodyResp(request bool, m *procsvc.BodyMutation, hm *procsvc.HeaderMutation) *procsvc.ProcessingResponse {
	br := &procsvc.BodyResponse{Response: &procsvc.CommonResponse{BodyMutation: m, HeaderMutation: hm}}
	if request {
		return &procsvc.ProcessingResponse{Response: &procsvc.ProcessingResponse_RequestBody{RequestBody: br}}
	}
	return &procsvc.ProcessingResponse{Response: &procsvc.ProcessingResponse_ResponseBody{ResponseBody: br}}
}

func replaceBodyWith(s string) *procsvc.BodyMutation {
	return &procsvc.BodyMutation{Mutation: &procsvc.BodyMutation_Body{Body: []byte(s)}}
}

func TestExtProcBodyMutation(t *testing.T) {
	upper := func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
		switch {
		case r.GetRequestBody() != nil:
			return bodyResp(true, replaceBodyWith(strings.ToUpper(string(r.GetRequestBody().GetBody()))), nil)
		case r.GetResponseBody() != nil:
			return bodyResp(false, replaceBodyWith(strings.ToUpper(string(r.GetResponseBody().GetBody()))), nil)
		}
		return echoResponse(r)
	}
	for _, tc := range []struct {
		name         string
		mode         *extprocv3.ProcessingMode
		respond      func(*procsvc.ProcessingRequest) *procsvc.ProcessingResponse
		wantStatus   int
		wantBody     string
		wantUpBody   string
		wantUpCL     int64 // -1: chunked
		wantChunked  bool
		wantClientCL string
	}{
		{name: "BUFFERED request body with a mismatched content-length is rejected", mode: &extprocv3.ProcessingMode{RequestBodyMode: buffered},
			respond: func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
				if r.GetRequestBody() != nil {
					return bodyResp(true, replaceBodyWith("REPLACED!"), nil)
				}
				return echoResponse(r)
			}, wantStatus: 500},
		{name: "BUFFERED request body with its content-length fixed", mode: &extprocv3.ProcessingMode{RequestBodyMode: buffered},
			respond: func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
				if r.GetRequestBody() != nil {
					return bodyResp(true, replaceBodyWith("REPLACED!"), setHeaders("content-length", "9"))
				}
				return echoResponse(r)
			}, wantStatus: 200, wantBody: "upstream ok", wantUpBody: "REPLACED!", wantUpCL: 9, wantClientCL: "11"},
		{name: "STREAMED request body drops content-length (chunked upstream)", mode: &extprocv3.ProcessingMode{RequestBodyMode: streamed},
			respond: upper, wantStatus: 200, wantBody: "upstream ok", wantUpBody: "HELLO", wantUpCL: -1, wantClientCL: "11"},
		{name: "BUFFERED request headers SKIP drops content-length", mode: &extprocv3.ProcessingMode{RequestHeaderMode: skip, RequestBodyMode: buffered},
			respond: upper, wantStatus: 200, wantBody: "upstream ok", wantUpBody: "HELLO", wantUpCL: -1, wantClientCL: "11"},
		{name: "STREAMED response body is chunked downstream", mode: &extprocv3.ProcessingMode{ResponseBodyMode: streamed},
			respond: upper, wantStatus: 200, wantBody: "UPSTREAM OK", wantUpBody: "hello", wantUpCL: 5, wantChunked: true},
		{name: "BUFFERED response keeps content-length when unchanged", mode: &extprocv3.ProcessingMode{ResponseBodyMode: buffered},
			respond: echoResponse, wantStatus: 200, wantBody: "upstream ok", wantUpBody: "hello", wantUpCL: 5, wantClientCL: "11"},
		{name: "clear_body on BUFFERED_PARTIAL response", mode: &extprocv3.ProcessingMode{ResponseBodyMode: partial},
			respond: func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
				if r.GetResponseBody() != nil {
					return bodyResp(false, &procsvc.BodyMutation{Mutation: &procsvc.BodyMutation_ClearBody{ClearBody: true}}, nil)
				}
				return echoResponse(r)
			}, wantStatus: 200, wantBody: "", wantUpBody: "hello", wantUpCL: 5, wantChunked: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newProcEnv(t, serveEach(one(tc.respond)), tc.mode, nil, nil)
			got := do(t, e.d, "POST", "/", "hello", nil)
			if got.Status != tc.wantStatus {
				t.Fatalf("status %d (%q), want %d", got.Status, got.Body, tc.wantStatus)
			}
			if tc.wantStatus != 200 {
				if n := len(e.up.requests()); n != 0 {
					t.Errorf("upstream saw %d requests after a rejected mutation", n)
				}
				return
			}
			up := e.up.last(t)
			if got.Body != tc.wantBody || up.Body != tc.wantUpBody || up.ContentLength != tc.wantUpCL {
				t.Errorf("client body %q, upstream body %q content-length %d; want %q, %q, %d", got.Body, up.Body, up.ContentLength, tc.wantBody, tc.wantUpBody, tc.wantUpCL)
			}
			chunked := got.Header.Get("X-Test-Chunked") == "chunked"
			if chunked != tc.wantChunked || got.Header.Get("Content-Length") != tc.wantClientCL {
				t.Errorf("client framing: chunked=%v content-length=%q, want chunked=%v content-length=%q", chunked, got.Header.Get("Content-Length"), tc.wantChunked, tc.wantClientCL)
			}
		})
	}
}

func immediate(code typev3.StatusCode, body string, hm *procsvc.HeaderMutation) *procsvc.ProcessingResponse {
	return &procsvc.ProcessingResponse{Response: &procsvc.ProcessingResponse_ImmediateResponse{ImmediateResponse: &procsvc.ImmediateResponse{
		Status: &typev3.HttpStatus{Code: code}, Body: []byte(body), Headers: hm, Details: "test"}}}
}

func TestExtProcImmediateResponse(t *testing.T) {
	for _, tc := range []struct {
		name         string
		mode         *extprocv3.ProcessingMode
		on           func(*procsvc.ProcessingRequest) bool
		disable      bool
		want         result
		wantUpstream int
	}{
		{"on request headers", nil, func(r *procsvc.ProcessingRequest) bool { return r.GetRequestHeaders() != nil }, false,
			result{Status: 403, Body: `{"denied":true}`}, 0},
		{"on request body", &extprocv3.ProcessingMode{RequestBodyMode: buffered}, func(r *procsvc.ProcessingRequest) bool { return r.GetRequestBody() != nil }, false,
			result{Status: 403, Body: `{"denied":true}`}, 0},
		{"on a streamed request body after the upstream request started", &extprocv3.ProcessingMode{RequestBodyMode: streamed},
			func(r *procsvc.ProcessingRequest) bool { return r.GetRequestBody() != nil }, false, result{Status: 403, Body: `{"denied":true}`}, -1},
		{"on response headers", nil, func(r *procsvc.ProcessingRequest) bool { return r.GetResponseHeaders() != nil }, false,
			result{Status: 403, Body: `{"denied":true}`}, 1},
		{"on buffered response body while headers are held", &extprocv3.ProcessingMode{ResponseBodyMode: buffered},
			func(r *procsvc.ProcessingRequest) bool { return r.GetResponseBody() != nil }, false, result{Status: 403, Body: `{"denied":true}`}, 1},
		{"disable_immediate_response makes it spurious", nil, func(r *procsvc.ProcessingRequest) bool { return r.GetRequestHeaders() != nil }, true,
			result{Status: 500}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newProcEnv(t, serveEach(one(func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
				if tc.on(r) {
					return immediate(typev3.StatusCode_Forbidden, `{"denied":true}`, setHeaders("content-type", "application/json", "x-reason", "policy"))
				}
				return echoResponse(r)
			})), tc.mode, func(c *extprocv3.ExternalProcessor) { c.DisableImmediateResponse = tc.disable }, nil)
			got := do(t, e.d, "POST", "/", "body", nil)
			if diff := cmp.Diff(tc.want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Header" }, cmp.Ignore())); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			if tc.want.Status == 403 && (got.Header.Get("Content-Type") != "application/json" || got.Header.Get("X-Reason") != "policy") {
				t.Errorf("immediate response headers not applied: %v", got.Header)
			}
			if n := len(e.up.requests()); tc.wantUpstream >= 0 && n != tc.wantUpstream {
				t.Errorf("upstream saw %d requests, want %d", n, tc.wantUpstream)
			}
		})
	}
}

// TestExtProcImmediateAfterHeadersResets pins that an immediate response
// arriving after the response headers went downstream (header mode SKIP)
// resets the stream: "If the response has already started, Envoy ... resets
// the stream".
func TestExtProcImmediateAfterHeadersResets(t *testing.T) {
	e := newProcEnv(t, serveEach(one(func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
		if r.GetResponseBody() != nil {
			return immediate(typev3.StatusCode_Forbidden, "late", nil)
		}
		return echoResponse(r)
	})), &extprocv3.ProcessingMode{ResponseHeaderMode: skip, ResponseBodyMode: buffered}, nil, nil)
	resp, err := client.Get("http://" + e.d.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || err == nil {
		t.Errorf("status %d body %q err %v: want the 200 headers, then a reset", resp.StatusCode, b, err)
	}
}
