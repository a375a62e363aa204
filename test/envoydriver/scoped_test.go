package envoydriver

import (
	"context"
	"strings"
	"testing"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestScopeFragment(t *testing.T) {
	for _, tc := range []struct {
		name   string
		b      fragmentBuilder
		h      *headerMap
		want   string
		wantOK bool
	}{
		{"whole value", fragmentBuilder{name: "x-k", useIndex: true}, hdr("x-k", "a;b"), "a;b", true},
		{"absent header is a null fragment", fragmentBuilder{name: "x-k", useIndex: true}, hdr("x-o", "a"), "", false},
		{"empty value is a fragment", fragmentBuilder{name: "x-k", useIndex: true}, hdr("x-k", ""), "", true},
		{"first of repeated headers", fragmentBuilder{name: "x-k", useIndex: true}, hdr("x-k", "one", "x-k", "two"), "one", true},
		{"index", fragmentBuilder{name: "x-k", sep: ";", useIndex: true, index: 1}, hdr("x-k", "a;b;c"), "b", true},
		{"index past the elements", fragmentBuilder{name: "x-k", sep: ";", useIndex: true, index: 3}, hdr("x-k", "a;b;c"), "", false},
		{"element by key", fragmentBuilder{name: "x-k", sep: ";", kvSep: "=", kvKey: "b"}, hdr("x-k", "a=1;b=2"), "2", true},
		{"element without separator has an empty value", fragmentBuilder{name: "x-k", sep: ";", kvSep: "=", kvKey: "b"}, hdr("x-k", "a=1;b"), "", true},
		{"no element with the key", fragmentBuilder{name: "x-k", sep: ";", kvSep: "=", kvKey: "z"}, hdr("x-k", "a=1"), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.b.fragment(tc.h)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("fragment = %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func scope(name, key string, rc *routev3.RouteConfiguration) *routev3.ScopedRouteConfiguration {
	return &routev3.ScopedRouteConfiguration{Name: name, RouteConfiguration: rc,
		Key: &routev3.ScopedRouteConfiguration_Key{Fragments: []*routev3.ScopedRouteConfiguration_Key_Fragment{{
			Type: &routev3.ScopedRouteConfiguration_Key_Fragment_StringKey{StringKey: key}}}}}
}

func namedRC(name string, routes ...*routev3.Route) *routev3.RouteConfiguration {
	rc := routeConfig(routes...)
	rc.Name = name
	return rc
}

// scopedListener routes by the x-scope header (forced to "base" before
// routing), runs ext_authz with clear_route_cache, and maps "no route"
// with x-scope present to a 403.
func scopedListener(t *testing.T, sr *hcmv3.ScopedRoutes, authzCluster string) *listenerv3.Listener {
	l := listener(t, nil, authzFilter(t, &extauthzv3.ExtAuthz{
		Services:            &extauthzv3.ExtAuthz_GrpcService{GrpcService: grpcService(authzCluster, 0)},
		TransportApiVersion: corev3.ApiVersion_V3,
		ClearRouteCache:     true,
		DisallowedHeaders: &matcherv3.ListStringMatcher{Patterns: []*matcherv3.StringMatcher{
			{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "x-scope"}}}},
	}))
	hcm := &hcmv3.HttpConnectionManager{}
	if err := l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_ScopedRoutes{ScopedRoutes: sr}
	hcm.EarlyHeaderMutationExtensions = []*corev3.TypedExtensionConfig{{
		Name: "envoy.http.early_header_mutation.header_mutation",
		TypedConfig: mustAny(t, &headermutationv3.HeaderMutation{Mutations: []*mutationv3.HeaderMutation{
			{Action: &mutationv3.HeaderMutation_Remove{Remove: "X-Drop"}},
			{Action: &mutationv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{
				Header: &corev3.HeaderValue{Key: "x-scope", Value: "base"}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}}},
		}}),
	}}
	hcm.LocalReplyConfig = &hcmv3.LocalReplyConfig{Mappers: []*hcmv3.ResponseMapper{{
		Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_AndFilter{AndFilter: &accesslogv3.AndFilter{Filters: []*accesslogv3.AccessLogFilter{
			{FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: []string{"NR"}}}},
			{FilterSpecifier: &accesslogv3.AccessLogFilter_HeaderFilter{HeaderFilter: &accesslogv3.HeaderFilter{
				Header: &routev3.HeaderMatcher{Name: "x-scope", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}}}},
		}}}},
		StatusCode: wrapperspb.UInt32(403),
		Body:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "no scope"}},
	}}}
	l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm)}
	return l
}

func scopeBuilder() *hcmv3.ScopedRoutes_ScopeKeyBuilder {
	return &hcmv3.ScopedRoutes_ScopeKeyBuilder{Fragments: []*hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder{{
		Type: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_{
			HeaderValueExtractor: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor{
				Name: "x-scope", ExtractType: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_Index{}}},
	}}}
}

func scopedRDS() *hcmv3.ScopedRoutes {
	ads := &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
	return &hcmv3.ScopedRoutes{Name: "s", ScopeKeyBuilder: scopeBuilder(), RdsConfigSource: ads,
		ConfigSpecifier: &hcmv3.ScopedRoutes_ScopedRds{ScopedRds: &hcmv3.ScopedRds{ScopedRdsConfigSource: ads}}}
}

// scopeAuthz allows every call and moves it to the scope named by the
// request's x-want header, as airlock's ext_authz moves a granted call.
func scopeAuthz(t *testing.T) (*authzServer, string) {
	return newAuthz(t, func(_ context.Context, r *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		ok := &authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-checked", Value: "1"}}}}
		if w := r.GetAttributes().GetRequest().GetHttp().GetHeaders()["x-want"]; w != "" {
			ok.Headers = append(ok.Headers, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-scope", Value: w}})
		}
		return &authv3.CheckResponse{Status: &status.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok}}, nil
	})
}

// TestScopedRouting: the forced key routes every request in the base
// scope first (a client's own x-scope does not count), ext_authz's header
// re-selects the scope after clear_route_cache, and a key without a scope
// is "no route", which the local reply mapper turns into a 403.
func TestScopedRouting(t *testing.T) {
	a := newUpstream(t, nil)
	b := newUpstream(t, nil)
	authz, authzAddr := scopeAuthz(t)
	clusters := []*clusterv3.Cluster{staticCluster("a", a.addr()), staticCluster("b", b.addr()), staticCluster("authz", authzAddr)}
	cfg := Config{
		Listener: scopedListener(t, scopedRDS(), "authz"),
		Clusters: clusters,
		Routes:   map[string]*routev3.RouteConfiguration{"rc-b": namedRC("rc-b", prefixRoute("/", "b"))},
		Scopes: []*routev3.ScopedRouteConfiguration{
			scope("base", "base", namedRC("rc-a", prefixRoute("/", "a"))),
			scope("s1", "s1", nil),
		},
	}
	cfg.Scopes[1].RouteConfigurationName = "rc-b"
	d := startDriver(t, cfg)

	if got := do(t, d, "GET", "/x", "", map[string]string{"x-drop": "1"}); got.Status != 200 || len(a.requests()) != 1 {
		t.Fatalf("base scope: %d", got.Status)
	}
	if _, dropped := a.last(t).Header["X-Drop"]; dropped {
		t.Error("the early header mutation did not remove x-drop")
	}
	if got := do(t, d, "GET", "/x", "", map[string]string{"x-want": "s1"}); got.Status != 200 || len(b.requests()) != 1 {
		t.Fatalf("scope chosen by ext_authz: %d (b saw %d)", got.Status, len(b.requests()))
	}
	if got := do(t, d, "GET", "/x", "", map[string]string{"x-want": "s9"}); got.Status != 403 || got.Body != "no scope" {
		t.Fatalf("key without a scope: %d %q", got.Status, got.Body)
	}
	// The client's own key is overwritten before routing, and ext_authz is
	// not shown it.
	if got := do(t, d, "GET", "/x", "", map[string]string{"x-scope": "s1"}); got.Status != 200 || len(a.requests()) != 2 {
		t.Fatalf("client-chosen scope: %d", got.Status)
	}
	reqs := authz.requests()
	if _, shown := reqs[len(reqs)-1].GetAttributes().GetRequest().GetHttp().GetHeaders()["x-scope"]; shown {
		t.Error("ext_authz was shown a disallowed header")
	}
}

func TestScopedConfigRejects(t *testing.T) {
	_, authzAddr := scopeAuthz(t)
	base := func() Config {
		return Config{Listener: scopedListener(t, scopedRDS(), "authz"), Clusters: []*clusterv3.Cluster{staticCluster("authz", authzAddr)},
			Scopes: []*routev3.ScopedRouteConfiguration{scope("base", "base", namedRC("rc"))}}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"key conflict", func(c *Config) { c.Scopes = append(c.Scopes, scope("other", "base", namedRC("rc2"))) }, "scope key conflict"},
		{"name twice", func(c *Config) { c.Scopes = append(c.Scopes, scope("base", "k2", namedRC("rc2"))) }, "defined twice"},
		{"missing named routes", func(c *Config) { c.Scopes[0].RouteConfiguration, c.Scopes[0].RouteConfigurationName = nil, "gone" }, `"gone" is not in Config.Routes`},
		{"no routes", func(c *Config) { c.Scopes[0].RouteConfiguration = nil }, "neither route_configuration"},
		{"on demand", func(c *Config) { c.Scopes[0].OnDemand = true }, "on_demand"},
		{"no key", func(c *Config) { c.Scopes[0].Key = nil }, "Key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.mutate(&cfg)
			_, err := New(cfg, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestLocalReplyMappers(t *testing.T) {
	flag := func(f string) *accesslogv3.AccessLogFilter {
		return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: []string{f}}}}
	}
	status := func(op accesslogv3.ComparisonFilter_Op, v uint32) *accesslogv3.AccessLogFilter {
		return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_StatusCodeFilter{StatusCodeFilter: &accesslogv3.StatusCodeFilter{
			Comparison: &accesslogv3.ComparisonFilter{Op: op, Value: &corev3.RuntimeUInt32{DefaultValue: v}}}}}
	}
	mappers, err := compileLocalReply(&hcmv3.LocalReplyConfig{Mappers: []*hcmv3.ResponseMapper{
		{Filter: flag("NR"), StatusCode: wrapperspb.UInt32(410), Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "gone"}},
			HeadersToAdd: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-mapped", Value: "1"}}}},
		{Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_OrFilter{OrFilter: &accesslogv3.OrFilter{
			Filters: []*accesslogv3.AccessLogFilter{status(accesslogv3.ComparisonFilter_GE, 500), flag("NR")}}}}, StatusCode: wrapperspb.UInt32(502)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		in         localReply
		wantStatus int
		wantBody   string
	}{
		{"first matching mapper wins", localReply{status: 404, details: "route_not_found"}, 410, "gone"},
		{"second mapper by status", localReply{status: 503, details: "cluster_not_found", body: "b"}, 502, "b"},
		{"no mapper matches", localReply{status: 403, details: "ext_authz_denied", body: "no"}, 403, "no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			got := rewriteLocalReply(mappers, hdr(":path", "/"), &in)
			if got.status != tc.wantStatus || got.body != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", got.status, got.body, tc.wantStatus, tc.wantBody)
			}
			if tc.wantStatus == 410 && got.headers.value("x-mapped") != "1" {
				t.Error("headers_to_add not applied")
			}
		})
	}
	for name, c := range map[string]*hcmv3.LocalReplyConfig{
		"unknown flag":   {Mappers: []*hcmv3.ResponseMapper{{Filter: flag("ZZ")}}},
		"no filter":      {Mappers: []*hcmv3.ResponseMapper{{Filter: &accesslogv3.AccessLogFilter{}}}},
		"body_format":    {BodyFormat: &corev3.SubstitutionFormatString{}},
		"runtime filter": {Mappers: []*hcmv3.ResponseMapper{{Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_RuntimeFilter{RuntimeFilter: &accesslogv3.RuntimeFilter{RuntimeKey: "k"}}}}}},
	} {
		if _, err := compileLocalReply(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestScopePushedWhileHeldIsVisible: SRDS scopes are updated in place on
// Envoy's workers (scoped_rds.cc applyConfigUpdate), so a scope pushed
// while ext_authz holds a call is the one the call re-selects after
// clear_route_cache — the grant route airlock pushes while a call waits
// for approval. Scopes that are part of the connection manager (an inline
// scoped_route_configurations_list) or of another SRDS subscription (the
// listener now names other scoped routes) come with a new connection
// manager, which a request in flight does not see.
func TestScopePushedWhileHeldIsVisible(t *testing.T) {
	inline := func(scopes ...*routev3.ScopedRouteConfiguration) *hcmv3.ScopedRoutes {
		return &hcmv3.ScopedRoutes{Name: "s", ScopeKeyBuilder: scopeBuilder(),
			ConfigSpecifier: &hcmv3.ScopedRoutes_ScopedRouteConfigurationsList{
				ScopedRouteConfigurationsList: &hcmv3.ScopedRouteConfigurationsList{ScopedRouteConfigurations: scopes}}}
	}
	renamed := scopedRDS()
	renamed.Name = "other"
	base := func() *routev3.ScopedRouteConfiguration {
		return scope("base", "base", namedRC("rc-a", prefixRoute("/", "a")))
	}
	s1 := func() *routev3.ScopedRouteConfiguration {
		return scope("s1", "s1", namedRC("rc-b", prefixRoute("/", "b")))
	}
	for _, tc := range []struct {
		name        string
		before      *hcmv3.ScopedRoutes
		after       *hcmv3.ScopedRoutes
		wantVisible bool
	}{
		{"SRDS scope pushed: visible", scopedRDS(), scopedRDS(), true},
		{"inline scopes replaced with the listener: not visible", inline(base()), inline(base(), s1()), false},
		{"another SRDS subscription: not visible", scopedRDS(), renamed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newUpstream(t, nil)
			b := newUpstream(t, nil)
			held, release := make(chan struct{}), make(chan struct{})
			_, authzAddr := newAuthz(t, func(_ context.Context, r *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				close(held)
				<-release
				ok := &authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-scope", Value: "s1"}}}}
				return &authv3.CheckResponse{Status: &status.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok}}, nil
			})
			cfg := Config{
				Listener: scopedListener(t, tc.before, "authz"),
				Clusters: []*clusterv3.Cluster{staticCluster("a", a.addr()), staticCluster("b", b.addr()), staticCluster("authz", authzAddr)},
				Scopes:   []*routev3.ScopedRouteConfiguration{base()},
			}
			d := startDriver(t, cfg)
			done := make(chan result, 1)
			go func() { done <- do(t, d, "GET", "/x", "", nil) }()
			select {
			case <-held:
			case <-time.After(testTimeout):
				t.Fatal("ext_authz never saw the call")
			}
			cfg.Listener = scopedListener(t, tc.after, "authz")
			cfg.Scopes = []*routev3.ScopedRouteConfiguration{base(), s1()}
			if err := d.Update(cfg); err != nil {
				t.Fatal(err)
			}
			close(release)
			got := <-done
			switch {
			case tc.wantVisible && (got.Status != 200 || len(b.requests()) != 1):
				t.Fatalf("the held call got %d %q; scope s1's upstream saw %d requests", got.Status, got.Body, len(b.requests()))
			case !tc.wantVisible && (got.Status != 403 || got.Body != "no scope"):
				t.Fatalf("the held call got %d %q, want the mapped 403 of its own scopes", got.Status, got.Body)
			}
		})
	}
}

// A route configuration inline in a scope is validated against the known
// clusters unless validate_clusters is false (config_impl.cc; a static
// provider defaults to validating): Envoy rejects the update, which its
// ADS client NACKs, when a route names a cluster it does not have yet.
func TestScopeValidateClusters(t *testing.T) {
	sr := &hcmv3.ScopedRoutes{Name: "s", ScopeKeyBuilder: &hcmv3.ScopedRoutes_ScopeKeyBuilder{
		Fragments: []*hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder{{
			Type: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_{
				HeaderValueExtractor: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor{
					Name: "x-scope", ExtractType: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_Index{Index: 0}}}}}}}
	known := &clusterv3.Cluster{Name: "known"}
	for _, tc := range []struct {
		name     string
		cluster  string
		validate *wrapperspb.BoolValue
		wantErr  string
	}{
		{"known cluster, default", "known", nil, ""},
		{"unknown cluster, default validates", "late", nil, "route: unknown cluster 'late'"},
		{"unknown cluster, validate_clusters true", "late", wrapperspb.Bool(true), "route: unknown cluster 'late'"},
		{"unknown cluster, validate_clusters false loads", "late", wrapperspb.Bool(false), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := namedRC("grant/1", prefixRoute("/", tc.cluster))
			rc.ValidateClusters = tc.validate
			cfg := Config{Clusters: []*clusterv3.Cluster{known}, Scopes: []*routev3.ScopedRouteConfiguration{scope("grant/1", "g1", rc)}}
			var sc scopeCache
			_, err := compileScopes(sr, cfg, nil, &sc)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("compile: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("compile: %v, want %q", err, tc.wantErr)
			}
		})
	}
}
