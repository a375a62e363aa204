package envoydriver

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestRouterLocalReplies(t *testing.T) {
	up := newUpstream(t, nil)
	// A port nothing listens on, for the connect failure.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	direct := &routev3.Route{
		Match:                &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/direct"}},
		Action:               &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 418, Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "teapot"}}}},
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-direct", Value: "yes"}}},
	}
	notFound := prefixRoute("/nf404", "missing")
	notFound.GetRoute().ClusterNotFoundResponseCode = routev3.RouteAction_NOT_FOUND
	rc := routeConfig(direct, prefixRoute("/dead", "dead"), prefixRoute("/missing", "missing"), notFound, prefixRoute("/up", "up"))
	rc.VirtualHosts[0].Domains = []string{"known.test"}
	d := startDriver(t, Config{Listener: listener(t, rc), Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr()), staticCluster("dead", dead)}})

	for _, tc := range []struct {
		name, path, host string
		want             result
	}{
		{"no virtual host is NR 404", "/up", "other.test", result{Status: 404}},
		{"no route is NR 404", "/nothing", "known.test", result{Status: 404}},
		{"direct_response", "/direct", "known.test", result{Status: 418, Body: "teapot"}},
		{"connect failure is 503", "/dead", "known.test", result{Status: 503, Body: "upstream connect error or disconnect/reset before headers. reset reason: connection failure"}},
		{"cluster not found is 503", "/missing", "known.test", result{Status: 503}},
		{"cluster_not_found_response_code", "/nf404", "known.test", result{Status: 404}},
		{"proxied", "/up", "known.test", result{Status: 200, Body: "upstream ok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := do(t, d, "GET", tc.path, "", map[string]string{"Host": tc.host})
			if diff := cmp.Diff(tc.want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Header" }, cmp.Ignore())); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			if got.Header.Get("Server") != "envoy" {
				t.Errorf("server header = %q, want envoy", got.Header.Get("Server"))
			}
			if tc.path == "/direct" && got.Header.Get("X-Direct") != "yes" {
				t.Errorf("direct response lacks the route's response_headers_to_add: %v", got.Header)
			}
		})
	}
}

func TestRouterUpstreamRequest(t *testing.T) {
	up := newUpstream(t, nil)
	rt := prefixRoute("/mcp/github", "up")
	ra := rt.GetRoute()
	ra.PrefixRewrite = "/api"
	ra.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: "github.internal"}
	ra.Timeout = durationpb.New(3 * time.Second)
	rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-route", Value: "r1"}}}
	rt.RequestHeadersToRemove = []string{"x-drop"}
	d := startDriver(t, Config{Listener: listener(t, routeConfig(rt)), Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr())}})

	got := do(t, d, "POST", "/mcp/github/tools?x=1", `{"a":1}`, map[string]string{"X-Drop": "1", "Host": "gw.test"})
	if got.Status != 200 {
		t.Fatalf("status %d, body %q", got.Status, got.Body)
	}
	if got.Header.Get("X-Envoy-Upstream-Service-Time") == "" {
		t.Errorf("response lacks x-envoy-upstream-service-time: %v", got.Header)
	}
	r := up.last(t)
	want := map[string]string{
		"X-Envoy-Original-Path":          "/mcp/github/tools?x=1",
		"X-Envoy-Expected-Rq-Timeout-Ms": "3000",
		"X-Forwarded-Proto":              "http",
		"X-Route":                        "r1",
		"X-Drop":                         "",
		"User-Agent":                     "Go-http-client/1.1",
	}
	gotH := map[string]string{}
	for k := range want {
		gotH[k] = r.Header.Get(k)
	}
	if diff := cmp.Diff(want, gotH); diff != "" {
		t.Errorf("upstream headers (-want +got):\n%s", diff)
	}
	if r.Path != "/api/tools?x=1" || r.Host != "github.internal" || r.Body != `{"a":1}` {
		t.Errorf("upstream got %s %s host %s body %q", r.Method, r.Path, r.Host, r.Body)
	}
	if len(r.Header.Get("X-Request-Id")) != 36 {
		t.Errorf("x-request-id %q is not a generated UUID", r.Header.Get("X-Request-Id"))
	}
}

func TestRouteTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	rt := prefixRoute("/", "up")
	rt.GetRoute().Timeout = durationpb.New(50 * time.Millisecond)
	d := startDriver(t, Config{Listener: listener(t, routeConfig(rt)), Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr())}})
	got := do(t, d, "GET", "/", "", nil)
	if got.Status != http.StatusGatewayTimeout || got.Body != "upstream request timeout" {
		t.Errorf("got %d %q, want 504 upstream request timeout", got.Status, got.Body)
	}
}

// TestStreamingChunkByChunk pins that the router flushes each upstream
// chunk: the upstream writes the second event only after the client has
// read the first, so any buffering would deadlock the test.
func TestStreamingChunkByChunk(t *testing.T) {
	gotFirst := make(chan struct{})
	up := newUpstream(t, sseUpstream(gotFirst))
	d := startDriver(t, Config{Listener: listener(t, routeConfig(prefixRoute("/", "up"))), Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr())}})
	events := streamEvents(t, d, gotFirst)
	want := []string{"data: one\n\n", "data: two\n\n", "data: three\n\n"}
	if diff := cmp.Diff(want, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// sseUpstream writes three SSE events, the second only once gotFirst is
// closed.
func sseUpstream(gotFirst <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		io.WriteString(w, "data: one\n\n")
		fl.Flush()
		select {
		case <-gotFirst:
		case <-time.After(testTimeout):
			return
		}
		io.WriteString(w, "data: two\n\n")
		fl.Flush()
		io.WriteString(w, "data: three\n\n")
		fl.Flush()
	}
}

// streamEvents reads the SSE stream, closing gotFirst when the first event
// arrives.
func streamEvents(t *testing.T, d *Driver, gotFirst chan struct{}) []string {
	t.Helper()
	resp, err := client.Get("http://" + d.Addr() + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ch := make(chan string)
	go readEvents(resp.Body, ch)
	var events []string
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return events
			}
			if len(events) == 0 {
				close(gotFirst)
			}
			events = append(events, ev)
		case <-time.After(testTimeout):
			t.Fatalf("stream stalled after %d events %q: the first event was not delivered before the upstream wrote the next", len(events), events)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	up := "127.0.0.1:1"
	for _, tc := range []struct {
		name string
		cfg  func() Config
		want string
	}{
		{"unknown filter", func() Config {
			l := listener(t, routeConfig(), &hcmv3.HttpFilter{Name: "envoy.filters.http.lua", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &corev3.HeaderValue{Key: "x"})}})
			return Config{Listener: l}
		}, `http_filters[0] "envoy.filters.http.lua": filter type "type.googleapis.com/envoy.config.core.v3.HeaderValue" is not supported`},
		{"missing rds", func() Config { return Config{Listener: listener(t, nil)} }, `rds route_config_name "routes" is not in Config.Routes`},
		{"unknown grpc cluster", func() Config {
			return Config{Listener: listener(t, routeConfig(), authzFilter(t, authzConfigFor("nope")))}
		}, `grpc_service envoy_grpc cluster "nope" is not defined`},
		{"duplicate cluster", func() Config {
			return Config{Listener: listener(t, routeConfig()), Clusters: []*clusterv3.Cluster{staticCluster("a", up), staticCluster("a", up)}}
		}, `cluster "a" is defined twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg(), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestRDSAndBootstrap(t *testing.T) {
	up := newUpstream(t, nil)
	cfg := Config{Listener: listener(t, nil), Routes: map[string]*routev3.RouteConfiguration{"routes": routeConfig(prefixRoute("/", "up"))},
		Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr())}}
	d := startDriver(t, cfg)
	if got := do(t, d, "GET", "/", "", nil); got.Status != 200 {
		t.Fatalf("rds route: status %d", got.Status)
	}
	b, err := FromBootstrap(&bootstrapv3.Bootstrap{StaticResources: &bootstrapv3.Bootstrap_StaticResources{
		Listeners: []*listenerv3.Listener{cfg.Listener}, Clusters: cfg.Clusters}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Listener.GetName() != "ingress" || len(b.Clusters) != 1 {
		t.Errorf("FromBootstrap = %v", b)
	}
}
