package envoydriver

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/go-cmp/cmp"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func authzConfigFor(cluster string) *extauthzv3.ExtAuthz {
	return &extauthzv3.ExtAuthz{
		Services:            &extauthzv3.ExtAuthz_GrpcService{GrpcService: grpcService(cluster, time.Second)},
		TransportApiVersion: corev3.ApiVersion_V3,
	}
}

func okResponse(ok *authv3.OkHttpResponse) *authv3.CheckResponse {
	return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.OK)}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok}}
}

func allow(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return okResponse(&authv3.OkHttpResponse{}), nil
}

type authzEnv struct {
	d     *Driver
	up    *upstream
	authz *authzServer
}

// newAuthzEnv runs upstream "up" behind the ext_authz filter; mod edits the
// filter config, routes default to "/" → up.
func newAuthzEnv(t *testing.T, check func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error), mod func(*extauthzv3.ExtAuthz), routes ...*routev3.Route) *authzEnv {
	t.Helper()
	e := &authzEnv{up: newUpstream(t, nil)}
	var addr string
	e.authz, addr = newAuthz(t, check)
	c := authzConfigFor("authz")
	if mod != nil {
		mod(c)
	}
	if len(routes) == 0 {
		routes = []*routev3.Route{prefixRoute("/", "up")}
	}
	e.d = startDriver(t, Config{
		Listener: listener(t, routeConfig(routes...), authzFilter(t, c)),
		Clusters: []*clusterv3.Cluster{staticCluster("up", e.up.addr()), staticCluster("authz", addr)},
	})
	return e
}

func withBody(max uint32, partial, packBytes bool) func(*extauthzv3.ExtAuthz) {
	return func(c *extauthzv3.ExtAuthz) {
		c.WithRequestBody = &extauthzv3.BufferSettings{MaxRequestBytes: max, AllowPartialMessage: partial, PackAsBytes: packBytes}
	}
}

func perRouteAuthz(t *testing.T, pr *extauthzv3.ExtAuthzPerRoute) map[string]*anypb.Any {
	return map[string]*anypb.Any{"envoy.filters.http.ext_authz": mustAny(t, pr)}
}

func TestCheckRequestAsSent(t *testing.T) {
	rt := prefixRoute("/", "up")
	rt.TypedPerFilterConfig = perRouteAuthz(t, &extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{
		CheckSettings: &extauthzv3.CheckSettings{ContextExtensions: map[string]string{"target": "route", "grant": "g1"}}}})
	rt.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		"airlock": {Fields: map[string]*structpb.Value{"target": structpb.NewStringValue("github")}},
		"other":   {Fields: map[string]*structpb.Value{"x": structpb.NewStringValue("y")}},
	}}
	e := &authzEnv{up: newUpstream(t, nil)}
	var addr string
	e.authz, addr = newAuthz(t, allow)
	c := authzConfigFor("authz")
	withBody(100, false, false)(c)
	c.RouteMetadataContextNamespaces = []string{"airlock"}
	rc := routeConfig(rt)
	rc.VirtualHosts[0].TypedPerFilterConfig = perRouteAuthz(t, &extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{
		CheckSettings: &extauthzv3.CheckSettings{ContextExtensions: map[string]string{"target": "vhost", "vh": "1"}}}})
	e.d = startDriver(t, Config{Listener: listener(t, rc, authzFilter(t, c)),
		Clusters: []*clusterv3.Cluster{staticCluster("up", e.up.addr()), staticCluster("authz", addr)}})

	req, _ := http.NewRequest("POST", "http://"+e.d.Addr()+"/mcp/x?y=1", strings.NewReader("héllo"))
	req.Host = "gw.test"
	req.Header.Add("X-Dup", "a")
	req.Header.Add("X-Dup", "b")
	req.Header.Set("X-Envoy-Auth-Partial-Body", "spoofed")
	req.Header.Set("Authorization", "Bearer t")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	reqs := e.authz.requests()
	if len(reqs) != 1 {
		t.Fatalf("authz got %d checks", len(reqs))
	}
	a := reqs[0].GetAttributes()
	h := a.GetRequest().GetHttp()
	if len(h.GetHeaders()["x-request-id"]) != 36 || h.GetId() == "" {
		t.Errorf("x-request-id %q / id %q not set", h.GetHeaders()["x-request-id"], h.GetId())
	}
	_, port, _ := net.SplitHostPort(e.d.Addr())
	want := &authv3.AttributeContext_HttpRequest{
		Method: "POST", Path: "/mcp/x?y=1", Host: "gw.test", Scheme: "http", Protocol: "HTTP/1.1",
		Size: int64(len("héllo")), Body: "héllo",
		Headers: map[string]string{
			":authority": "gw.test", ":path": "/mcp/x?y=1", ":method": "POST", ":scheme": "http",
			"authorization": "Bearer t", "content-length": "6", "user-agent": "Go-http-client/1.1",
			"x-dup": "a,b", "x-forwarded-proto": "http", "x-envoy-auth-partial-body": "false",
			"x-request-id": h.GetHeaders()["x-request-id"],
		},
	}
	if diff := cmp.Diff(want, h, protocmp.Transform(), protocmp.IgnoreFields(&authv3.AttributeContext_HttpRequest{}, "id")); diff != "" {
		t.Errorf("CheckRequest http (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"target": "route", "grant": "g1", "vh": "1"}, a.GetContextExtensions()); diff != "" {
		t.Errorf("context_extensions merged vhost→route (-want +got):\n%s", diff)
	}
	wantMeta := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"airlock": rt.Metadata.FilterMetadata["airlock"]}}
	if diff := cmp.Diff(wantMeta, a.GetRouteMetadataContext(), protocmp.Transform()); diff != "" {
		t.Errorf("route_metadata_context (-want +got):\n%s", diff)
	}
	if a.GetSource().GetAddress().GetSocketAddress().GetAddress() != "127.0.0.1" ||
		a.GetDestination().GetAddress().GetSocketAddress().GetPortValue() == 0 ||
		port == "" {
		t.Errorf("peers: source %v destination %v", a.GetSource(), a.GetDestination())
	}
	if a.GetRequest().GetTime() == nil {
		t.Error("request.time not set")
	}
}

func TestAuthzRequestBody(t *testing.T) {
	body := "0123456789abcdefghij" // 20 bytes
	for _, tc := range []struct {
		name        string
		mod         func(*extauthzv3.ExtAuthz)
		wantStatus  int
		wantChecks  int
		wantBody    string
		wantRaw     string
		wantPartial string
	}{
		{"over max_request_bytes is 413 without a check", withBody(8, false, false), 413, 0, "", "", ""},
		{"413 has precedence over failure_mode_allow", func(c *extauthzv3.ExtAuthz) {
			withBody(8, false, false)(c)
			c.FailureModeAllow = true
		}, 413, 0, "", "", ""},
		{"exactly max_request_bytes fits", withBody(20, false, false), 200, 1, body, "", "false"},
		{"allow_partial_message sends the first bytes", withBody(8, true, false), 200, 1, body[:8], "", "true"},
		{"pack_as_bytes uses raw_body", withBody(100, false, true), 200, 1, "", body, "false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newAuthzEnv(t, allow, tc.mod)
			got := do(t, e.d, "POST", "/", body, nil)
			if got.Status != tc.wantStatus {
				t.Fatalf("status %d (%q), want %d", got.Status, got.Body, tc.wantStatus)
			}
			reqs := e.authz.requests()
			if len(reqs) != tc.wantChecks {
				t.Fatalf("%d checks, want %d", len(reqs), tc.wantChecks)
			}
			if tc.wantStatus == 413 {
				if got.Body != "Payload Too Large" || len(e.up.requests()) != 0 {
					t.Errorf("413 body %q, upstream requests %d", got.Body, len(e.up.requests()))
				}
				return
			}
			h := reqs[0].GetAttributes().GetRequest().GetHttp()
			if h.GetBody() != tc.wantBody || string(h.GetRawBody()) != tc.wantRaw || h.GetHeaders()["x-envoy-auth-partial-body"] != tc.wantPartial {
				t.Errorf("check body %q raw %q partial %q, want %q %q %q", h.GetBody(), h.GetRawBody(), h.GetHeaders()["x-envoy-auth-partial-body"], tc.wantBody, tc.wantRaw, tc.wantPartial)
			}
			if up := e.up.last(t); up.Body != body {
				t.Errorf("upstream body %q, want the whole body %q", up.Body, body)
			}
		})
	}
	t.Run("no body, no partial header", func(t *testing.T) {
		e := newAuthzEnv(t, allow, withBody(8, false, false))
		do(t, e.d, "GET", "/", "", nil)
		h := e.authz.requests()[0].GetAttributes().GetRequest().GetHttp()
		if _, ok := h.GetHeaders()["x-envoy-auth-partial-body"]; ok || h.GetBody() != "" {
			t.Errorf("headers-only request: partial header present=%v body %q", ok, h.GetBody())
		}
	})
}

func hvo(k, v string, appendV *bool, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	o := &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, AppendAction: action}
	if appendV != nil {
		o.Append = wrapperspb.Bool(*appendV)
	}
	return o
}

func TestAuthzOkMutations(t *testing.T) {
	yes, no := true, false
	e := newAuthzEnv(t, func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return okResponse(&authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{
				hvo("x-new", "n", nil, 0),
				hvo("x-exist", "replaced", nil, 0),
				hvo("x-false", "f", &no, 0),
				hvo("x-app", "b", &yes, 0),
				hvo("x-keep", "ignored", nil, corev3.HeaderValueOption_ADD_IF_ABSENT),
				hvo("x-added", "added", nil, corev3.HeaderValueOption_ADD_IF_ABSENT),
				hvo("x-none", "nope", nil, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
				hvo("x-over", "over", nil, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
			},
			HeadersToRemove:         []string{"authorization", ":path", "host"},
			ResponseHeadersToAdd:    []*corev3.HeaderValueOption{hvo("x-resp", "r", nil, 0)},
			QueryParametersToSet:    []*corev3.QueryParameter{{Key: "b", Value: "3"}},
			QueryParametersToRemove: []string{"drop"},
		}), nil
	}, nil)
	got := do(t, e.d, "GET", "/p?a=1&drop=2", "", map[string]string{
		"X-Exist": "old", "X-False": "old", "X-App": "a", "X-Keep": "kept", "X-Over": "old", "Authorization": "Bearer secret-token",
	})
	if got.Status != 200 || got.Header.Get("X-Resp") != "r" {
		t.Fatalf("status %d, x-resp %q", got.Status, got.Header.Get("X-Resp"))
	}
	up := e.up.last(t)
	want := map[string][]string{
		"X-New": {"n"}, "X-Exist": {"replaced"}, "X-False": {"f"}, "X-App": {"a,b"}, "X-Keep": {"kept"},
		"X-Added": {"added"}, "X-None": nil, "X-Over": {"over"}, "Authorization": nil,
	}
	gotH := map[string][]string{}
	for k := range want {
		gotH[k] = up.Header.Values(k)
	}
	if diff := cmp.Diff(want, gotH); diff != "" {
		t.Errorf("upstream headers (-want +got):\n%s", diff)
	}
	if up.Path != "/p?a=1&b=3" || up.Host != e.d.Addr() {
		t.Errorf("upstream path %q host %q: query mutation or pseudo-header removal wrong", up.Path, up.Host)
	}
}

func TestAuthzClearRouteCache(t *testing.T) {
	for _, tc := range []struct {
		name  string
		clear bool
		want  string
	}{
		{"clear_route_cache re-matches", true, "granted"},
		{"without clear_route_cache the first route stays", false, "base"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			granted := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "granted") })
			base := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "base") })
			grantRoute := prefixRoute("/", "granted")
			grantRoute.Match.Headers = []*routev3.HeaderMatcher{{Name: "x-airlock-grant", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
				StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "g1"}}}}}
			_, addr := newAuthz(t, func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				return okResponse(&authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{hvo("x-airlock-grant", "g1", nil, 0)}}), nil
			})
			c := authzConfigFor("authz")
			c.ClearRouteCache = tc.clear
			d := startDriver(t, Config{Listener: listener(t, routeConfig(grantRoute, prefixRoute("/", "base")), authzFilter(t, c)),
				Clusters: []*clusterv3.Cluster{staticCluster("granted", granted.addr()), staticCluster("base", base.addr()), staticCluster("authz", addr)}})
			if got := do(t, d, "GET", "/mcp", "", nil); got.Body != tc.want {
				t.Errorf("routed to %q, want %q", got.Body, tc.want)
			}
		})
	}
}

func denied(code typev3.StatusCode, body string, headers ...*corev3.HeaderValueOption) func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status: &typev3.HttpStatus{Code: code}, Body: body, Headers: headers}}}, nil
	}
}

func TestAuthzOutcomes(t *testing.T) {
	slow := func(ctx context.Context, _ *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	grpcErr := func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return nil, status.Error(codes.Internal, "boom")
	}
	errResp := func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.Unavailable)},
			HttpResponse: &authv3.CheckResponse_ErrorResponse{ErrorResponse: &authv3.DeniedHttpResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable}, Body: "policy down"}}}, nil
	}
	fma := func(c *extauthzv3.ExtAuthz) { c.FailureModeAllow = true; c.FailureModeAllowHeaderAdd = true }
	timeout := func(c *extauthzv3.ExtAuthz) { c.GetGrpcService().Timeout = durationpb.New(20 * time.Millisecond) }
	for _, tc := range []struct {
		name      string
		check     func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error)
		mod       func(*extauthzv3.ExtAuthz)
		want      result
		wantHdr   map[string][]string
		wantFMAUp bool
	}{
		{"denied with status, headers and body", denied(typev3.StatusCode_Unauthorized, `{"error":"no"}`,
			hvo("www-authenticate", `Bearer resource_metadata="x"`, nil, 0), hvo("set-cookie", "a=1", &[]bool{true}[0], 0), hvo("set-cookie", "b=2", &[]bool{true}[0], 0),
			hvo("content-type", "application/json", nil, 0)),
			nil, result{Status: 401, Body: `{"error":"no"}`},
			map[string][]string{"Www-Authenticate": {`Bearer resource_metadata="x"`}, "Set-Cookie": {"a=1", "b=2"}, "Content-Type": {"application/json"}}, false},
		{"denied without denied_response is 403", func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
			return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)}}, nil
		}, nil, result{Status: 403}, nil, false},
		{"gRPC error is status_on_error 403", grpcErr, nil, result{Status: 403}, nil, false},
		{"status_on_error", grpcErr, func(c *extauthzv3.ExtAuthz) {
			c.StatusOnError = &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable}
		},
			result{Status: 503}, nil, false},
		{"timeout is an error: 403", slow, timeout, result{Status: 403}, nil, false},
		{"timeout with failure_mode_allow continues", slow, func(c *extauthzv3.ExtAuthz) { timeout(c); fma(c) }, result{Status: 200, Body: "upstream ok"}, nil, true},
		{"gRPC error with failure_mode_allow continues", grpcErr, fma, result{Status: 200, Body: "upstream ok"}, nil, true},
		{"error_response takes its status and body", errResp, nil, result{Status: 503, Body: "policy down"}, nil, false},
		{"error_response honours failure_mode_allow", errResp, fma, result{Status: 200, Body: "upstream ok"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newAuthzEnv(t, tc.check, tc.mod)
			got := do(t, e.d, "GET", "/", "", nil)
			if diff := cmp.Diff(tc.want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Header" }, cmp.Ignore())); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			for k, v := range tc.wantHdr {
				if diff := cmp.Diff(v, got.Header.Values(k)); diff != "" {
					t.Errorf("header %s (-want +got):\n%s", k, diff)
				}
			}
			ups := e.up.requests()
			if tc.want.Status != 200 {
				if len(ups) != 0 {
					t.Errorf("upstream was called %d times on a rejected request", len(ups))
				}
				return
			}
			if got := ups[0].Header.Get("X-Envoy-Auth-Failure-Mode-Allowed"); (got == "true") != tc.wantFMAUp {
				t.Errorf("x-envoy-auth-failure-mode-allowed = %q", got)
			}
		})
	}
	t.Run("unreachable authz is 403", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		dead := ln.Addr().String()
		ln.Close()
		up := newUpstream(t, nil)
		d := startDriver(t, Config{Listener: listener(t, routeConfig(prefixRoute("/", "up")), authzFilter(t, authzConfigFor("authz"))),
			Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr()), staticCluster("authz", dead)}})
		if got := do(t, d, "GET", "/", "", nil); got.Status != 403 {
			t.Errorf("status %d, want 403", got.Status)
		}
	})
}

func TestAuthzPerRouteDisabled(t *testing.T) {
	rt := prefixRoute("/public", "up")
	rt.TypedPerFilterConfig = perRouteAuthz(t, &extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true}})
	e := newAuthzEnv(t, denied(typev3.StatusCode_Forbidden, "no"), nil, rt, prefixRoute("/", "up"))
	if got := do(t, e.d, "GET", "/public", "", nil); got.Status != 200 {
		t.Errorf("disabled route: status %d", got.Status)
	}
	if got := do(t, e.d, "GET", "/private", "", nil); got.Status != 403 {
		t.Errorf("checked route: status %d", got.Status)
	}
	if n := len(e.authz.requests()); n != 1 {
		t.Errorf("%d checks, want 1", n)
	}
}

// TestFilterDisabledByDefault pins HttpFilter.disabled: the filter runs only
// on routes that configure it, and config.route.v3.FilterConfig.disabled
// turns it off again.
func TestFilterDisabledByDefault(t *testing.T) {
	enabled := prefixRoute("/enabled", "up")
	enabled.TypedPerFilterConfig = perRouteAuthz(t, &extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{
		CheckSettings: &extauthzv3.CheckSettings{ContextExtensions: map[string]string{"route": "enabled"}}}})
	off := prefixRoute("/off", "up")
	off.TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.ext_authz": mustAny(t, &routev3.FilterConfig{Disabled: true})}
	up := newUpstream(t, nil)
	authz, addr := newAuthz(t, denied(typev3.StatusCode_Forbidden, "no"))
	f := authzFilter(t, authzConfigFor("authz"))
	f.Disabled = true
	rc := routeConfig(enabled, off, prefixRoute("/", "up"))
	rc.VirtualHosts[0].TypedPerFilterConfig = perRouteAuthz(t, &extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{
		CheckSettings: &extauthzv3.CheckSettings{}}})
	rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{Name: "plain", Domains: []string{"plain.test"}, Routes: []*routev3.Route{prefixRoute("/", "up")}})
	d := startDriver(t, Config{Listener: listener(t, rc, f), Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr()), staticCluster("authz", addr)}})
	for _, tc := range []struct {
		path, host string
		want       int
	}{
		{"/enabled", "", 403},
		{"/other", "", 403}, // enabled by the virtual host's config
		{"/off", "", 200},   // FilterConfig.disabled on the route wins
		{"/", "plain.test", 200},
	} {
		hdrs := map[string]string{}
		if tc.host != "" {
			hdrs["Host"] = tc.host
		}
		if got := do(t, d, "GET", tc.path, "", hdrs); got.Status != tc.want {
			t.Errorf("%s%s: status %d, want %d", tc.host, tc.path, got.Status, tc.want)
		}
	}
	if n := len(authz.requests()); n != 2 {
		t.Errorf("%d checks, want 2", n)
	}
}
