package envoydriver

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	procsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestExtProcModeOverride(t *testing.T) {
	skipResponse := &extprocv3.ProcessingMode{ResponseHeaderMode: skip}
	for _, tc := range []struct {
		name string
		mod  func(*extprocv3.ExternalProcessor)
		want []string
	}{
		{"honoured with allow_mode_override", func(c *extprocv3.ExternalProcessor) { c.AllowModeOverride = true },
			[]string{"request_headers(eos)"}},
		{"ignored without allow_mode_override", nil, []string{"request_headers(eos)", "response_headers"}},
		{"ignored when not in allowed_override_modes", func(c *extprocv3.ExternalProcessor) {
			c.AllowModeOverride = true
			c.AllowedOverrideModes = []*extprocv3.ProcessingMode{{ResponseHeaderMode: send, ResponseBodyMode: buffered}}
		}, []string{"request_headers(eos)", "response_headers"}},
		{"honoured when in allowed_override_modes", func(c *extprocv3.ExternalProcessor) {
			c.AllowModeOverride = true
			c.AllowedOverrideModes = []*extprocv3.ProcessingMode{{ResponseHeaderMode: skip}}
		}, []string{"request_headers(eos)"}},
		{"ignored with FULL_DUPLEX_STREAMED", func(c *extprocv3.ExternalProcessor) {
			c.AllowModeOverride = true
			c.ProcessingMode = &extprocv3.ProcessingMode{RequestBodyMode: duplex, RequestTrailerMode: send}
		}, []string{"request_headers(eos)", "response_headers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newProcEnv(t, serveEach(one(func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
				resp := echoResponse(r)
				if r.GetRequestHeaders() != nil {
					resp.ModeOverride = skipResponse
				}
				return resp
			})), nil, tc.mod, nil)
			if got := do(t, e.d, "GET", "/", "", nil); got.Status != 200 {
				t.Fatalf("status %d", got.Status)
			}
			if diff := cmp.Diff(tc.want, kinds(e.proc.received()[0])); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtProcPerRoute(t *testing.T) {
	perRoute := func(pr *extprocv3.ExtProcPerRoute) map[string]*anypb.Any {
		return map[string]*anypb.Any{"envoy.filters.http.ext_proc": mustAny(t, pr)}
	}
	off := prefixRoute("/off", "up")
	off.TypedPerFilterConfig = perRoute(&extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Disabled{Disabled: true}})
	buf := prefixRoute("/buffered", "up")
	buf.TypedPerFilterConfig = perRoute(&extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Overrides{Overrides: &extprocv3.ExtProcOverrides{
		ProcessingMode: &extprocv3.ProcessingMode{ResponseHeaderMode: skip, ResponseBodyMode: buffered}}}})
	e := newProcEnv(t, serveEach(one(echoResponse)), nil, nil, nil, off, buf, prefixRoute("/", "up"))
	do(t, e.d, "GET", "/off", "", nil)
	if n := len(e.proc.received()); n != 0 {
		t.Fatalf("disabled route opened %d streams", n)
	}
	do(t, e.d, "GET", "/buffered", "", nil)
	if diff := cmp.Diff([]string{"request_headers(eos)", "response_body(eos)"}, kinds(e.proc.received()[0])); diff != "" {
		t.Errorf("overridden mode messages (-want +got):\n%s", diff)
	}
}

func TestExtProcBufferLimit(t *testing.T) {
	big := strings.Repeat("x", 64)
	for _, tc := range []struct {
		name       string
		mode       *extprocv3.ProcessingMode
		reqBody    string
		wantStatus int
		wantBody   string
	}{
		{"BUFFERED request over the buffer limit: 413", &extprocv3.ProcessingMode{RequestBodyMode: buffered}, big, 413, "Payload Too Large"},
		{"BUFFERED response over the buffer limit: 500", &extprocv3.ProcessingMode{ResponseBodyMode: buffered}, "", 500, "Internal Server Error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("big") != "" {
					w.Write([]byte(big))
					return
				}
				w.Write([]byte("upstream ok"))
			})
			_, procAddr := newProc(t, serveEach(one(echoResponse)))
			l := listener(t, routeConfig(prefixRoute("/", "up")), procFilter(t, procConfigFor("proc", tc.mode)))
			l.PerConnectionBufferLimitBytes = wrapperspb.UInt32(16)
			d := startDriver(t, Config{Listener: l, Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr()), staticCluster("proc", procAddr)}})
			path := "/"
			if tc.reqBody == "" {
				path = "/?big=1"
			}
			got := do(t, d, "POST", path, tc.reqBody, nil)
			if got.Status != tc.wantStatus || got.Body != tc.wantBody {
				t.Fatalf("got %d %q, want %d %q", got.Status, got.Body, tc.wantStatus, tc.wantBody)
			}
			if tc.reqBody != "" && len(up.requests()) != 0 {
				t.Errorf("upstream saw the oversized request")
			}
		})
	}
}

// TestExtProcPartialBody pins BUFFERED_PARTIAL: once more than the buffer
// limit is held, that much is sent (end_of_stream false) and the rest of the
// body passes unprocessed.
func TestExtProcPartialBody(t *testing.T) {
	gotPartial := make(chan struct{})
	e := newProcEnvWith(t, envOpts{handle: serveEach(one(func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
		if b := r.GetRequestBody(); b != nil {
			close(gotPartial)
			return bodyResp(true, replaceBodyWith(strings.ToUpper(string(b.GetBody()))), nil)
		}
		return echoResponse(r)
	})), mode: &extprocv3.ProcessingMode{RequestBodyMode: partial},
		listener: func(l *listenerv3.Listener) { l.PerConnectionBufferLimitBytes = wrapperspb.UInt32(16) }})
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("0123456789abcdefghij")) // 20 bytes: over the limit
		select {
		case <-gotPartial:
		case <-time.After(testTimeout):
		}
		pw.Write([]byte("-rest"))
		pw.Close()
	}()
	resp, err := client.Post("http://"+e.d.Addr()+"/", "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := e.up.last(t).Body; got != "0123456789ABCDEFGHIJ-rest" {
		t.Errorf("upstream body %q: want the first part processed, the rest unprocessed", got)
	}
	var msgs []string
	for _, r := range e.proc.received()[0] {
		if r.GetRequestBody() != nil {
			msgs = append(msgs, kind(r)+":"+string(r.GetRequestBody().GetBody()))
		}
	}
	if diff := cmp.Diff([]string{"request_body:0123456789abcdefghij"}, msgs); diff != "" {
		t.Errorf("body messages (-want +got):\n%s", diff)
	}
}

func TestExtProcContinueAndReplace(t *testing.T) {
	e := newProcEnv(t, serveEach(one(func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
		resp := echoResponse(r)
		if r.GetRequestHeaders() != nil {
			resp.GetRequestHeaders().Response = &procsvc.CommonResponse{Status: procsvc.CommonResponse_CONTINUE_AND_REPLACE,
				HeaderMutation: setHeaders("x-replaced", "1"), BodyMutation: replaceBodyWith("new body")}
		}
		return resp
	})), &extprocv3.ProcessingMode{RequestBodyMode: streamed}, nil, nil)
	if got := do(t, e.d, "POST", "/", "original", nil); got.Status != 200 {
		t.Fatalf("status %d", got.Status)
	}
	up := e.up.last(t)
	if up.Body != "new body" || up.Header.Get("X-Replaced") != "1" || up.ContentLength != -1 {
		t.Errorf("upstream body %q x-replaced %q content-length %d: want the replacement, chunked", up.Body, up.Header.Get("X-Replaced"), up.ContentLength)
	}
	if diff := cmp.Diff([]string{"request_headers", "response_headers"}, kinds(e.proc.received()[0])); diff != "" {
		t.Errorf("after CONTINUE_AND_REPLACE no request body goes to the processor (-want +got):\n%s", diff)
	}
}

func TestExtProcClearRouteCache(t *testing.T) {
	for _, tc := range []struct {
		name   string
		clear  bool
		action extprocv3.ExternalProcessor_RouteCacheAction
		want   string
	}{
		{"clear_route_cache re-matches", true, extprocv3.ExternalProcessor_DEFAULT, "granted"},
		{"without clear_route_cache the route stays", false, extprocv3.ExternalProcessor_DEFAULT, "base"},
		{"route_cache_action RETAIN ignores it", true, extprocv3.ExternalProcessor_RETAIN, "base"},
		{"route_cache_action CLEAR always clears", false, extprocv3.ExternalProcessor_CLEAR, "granted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			granted := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "granted") })
			grantRoute := prefixRoute("/", "granted")
			grantRoute.Match.Headers = []*routev3.HeaderMatcher{{Name: "x-grant", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}}
			e := newProcEnvWith(t, envOpts{handle: serveEach(one(func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
				resp := echoResponse(r)
				if r.GetRequestHeaders() != nil {
					resp.GetRequestHeaders().Response = &procsvc.CommonResponse{HeaderMutation: setHeaders("x-grant", "g"), ClearRouteCache: tc.clear}
				}
				return resp
			})), mod: func(c *extprocv3.ExternalProcessor) { c.RouteCacheAction = tc.action },
				upHandler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "base") },
				routes:    []*routev3.Route{grantRoute, prefixRoute("/", "up")},
				clusters:  []*clusterv3.Cluster{staticCluster("granted", granted.addr())}})
			if got := do(t, e.d, "GET", "/", "", nil); got.Body != tc.want {
				t.Errorf("routed to %q, want %q", got.Body, tc.want)
			}
		})
	}
}
