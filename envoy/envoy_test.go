package envoy

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"net"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"

	"github.com/airlock-mcp/airlock/internal/wire"
)

func TestBuildShapesTheDataPath(t *testing.T) {
	res, err := Build(loadConfig(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := res.Listener.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	authz := &extauthzv3.ExtAuthz{}
	if err := hcm.HttpFilters[0].GetTypedConfig().UnmarshalTo(authz); err != nil {
		t.Fatal(err)
	}
	if authz.FailureModeAllow {
		t.Error("ext_authz must fail closed")
	}
	// A body over the limit reaches airlock cut, flagged partial, so that
	// airlock answers 413 with the request's id (and refuses it).
	if !authz.WithRequestBody.GetAllowPartialMessage() {
		t.Error("ext_authz must send the head of an over-size body so airlock can answer with its id")
	}
	// With partial bodies ext_authz does not raise the stream's buffer
	// limit: the listener's must hold a whole body up to the limit.
	if got, want := res.Listener.GetPerConnectionBufferLimitBytes().GetValue(), authz.WithRequestBody.GetMaxRequestBytes(); got < want {
		t.Errorf("per_connection_buffer_limit_bytes %d is below max_request_bytes %d", got, want)
	}
	if got := authz.GetGrpcService().GetTimeout().AsDuration(); got <= 25e9 {
		t.Errorf("ext_authz timeout %v does not exceed the 25s approval hold window", got)
	}
	if !authz.ClearRouteCache {
		t.Error("clear_route_cache must be on for per-grant routes")
	}
	var names0 []string
	for _, f := range hcm.HttpFilters {
		names0 = append(names0, f.Name)
	}
	if got := strings.Join(names0, ","); got != "envoy.filters.http.ext_authz,envoy.filters.http.ext_proc,envoy.filters.http.router" {
		t.Errorf("filter chain %s: ext_proc must run after ext_authz, before the router", got)
	}
	proc := &extprocv3.ExternalProcessor{}
	if err := hcm.HttpFilters[1].GetTypedConfig().UnmarshalTo(proc); err != nil {
		t.Fatal(err)
	}
	if proc.FailureModeAllow || !proc.AllowModeOverride || proc.GetProcessingMode().GetResponseBodyMode() != extprocv3.ProcessingMode_STREAMED ||
		proc.GetMetadataOptions().GetForwardingNamespaces().GetUntyped()[0] != wire.AuthzNamespace {
		t.Errorf("ext_proc config: %v", proc)
	}
	vh := hcm.GetRouteConfig().VirtualHosts[0]
	var names []string
	for _, r := range vh.Routes {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, ","); got != "protected-resource-metadata,airlock-api-and-inbox,target-github,target-everything,not-found" {
		t.Errorf("routes = %s", got)
	}
	gh := vh.Routes[2]
	// Exactly the MCP endpoint, rewritten to exactly the upstream's.
	if gh.GetMatch().GetPath() != "/mcp/github" || gh.GetRoute().GetPrefixRewrite() != "/mcp/" || gh.GetRoute().GetHostRewriteLiteral() != "api.githubcopilot.example" {
		t.Errorf("github route: %v", gh)
	}
	for _, r := range vh.Routes {
		if r.GetRoute() == nil {
			continue
		}
		if r.GetMatch().GetPrefix() != "" && r.GetRoute().GetCluster() != ClusterHTTP || r.GetMatch().GetPathSeparatedPrefix() != "" {
			t.Errorf("route %s forwards more than one path to an MCP upstream: %v", r.Name, r.GetMatch())
		}
	}
	if h := gh.GetRequestHeadersToAdd(); len(h) != 1 || h[0].GetHeader().GetKey() != "accept-encoding" || h[0].GetHeader().GetValue() != "identity" ||
		h[0].GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
		t.Errorf("a target route must force accept-encoding: identity, got %v", h)
	}
	if !hcm.GetNormalizePath().GetValue() || !hcm.GetMergeSlashes() || hcm.GetPathWithEscapedSlashesAction() != hcmv3.HttpConnectionManager_REJECT_REQUEST {
		t.Error("paths must be normalized, slashes merged and escaped slashes refused")
	}
	last := vh.Routes[len(vh.Routes)-1]
	if last.GetDirectResponse().GetStatus() != 404 || last.GetRoute() != nil {
		t.Errorf("the last route must answer 404 itself, got %v", last)
	}
	per := &extauthzv3.ExtAuthzPerRoute{}
	if err := gh.TypedPerFilterConfig[ExtAuthzFilter].UnmarshalTo(per); err != nil {
		t.Fatal(err)
	}
	if per.GetCheckSettings().GetContextExtensions()[wire.ContextTarget] != "github" {
		t.Error("target route must name its target to ext_authz")
	}
	var tls bool
	for _, c := range res.Clusters {
		if c.Name == TargetClusterPref+"github" {
			tls = c.TransportSocket != nil
		}
	}
	if !tls {
		t.Error("an https upstream must get a TLS transport socket")
	}
}

func TestValidateDeepDescendsIntoAny(t *testing.T) {
	res, err := Build(loadConfig(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Break the ext_authz config inside two layers of Any: max_request_bytes must be > 0.
	hcm := &hcmv3.HttpConnectionManager{}
	_ = res.Listener.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(hcm)
	authz := &extauthzv3.ExtAuthz{}
	_ = hcm.HttpFilters[0].GetTypedConfig().UnmarshalTo(authz)
	authz.WithRequestBody.MaxRequestBytes = 0
	hcm.HttpFilters[0].GetTypedConfig().Value, _ = proto.Marshal(authz)
	res.Listener.FilterChains[0].Filters[0].GetTypedConfig().Value, _ = proto.Marshal(hcm)

	if err := res.Listener.ValidateAll(); err != nil {
		t.Fatalf("plain ValidateAll should not see inside Any, but said %v", err)
	}
	err = ValidateDeep(res.Listener)
	if err == nil || !strings.Contains(err.Error(), "MaxRequestBytes") {
		t.Fatalf("ValidateDeep = %v, want the max_request_bytes violation", err)
	}
}

func TestParseBootstrapRejectsBrokenConfig(t *testing.T) {
	for name, src := range map[string]string{
		"unknown field": "static_resources: {listenerz: []}\n",
		"bad duration":  "static_resources:\n  clusters:\n  - name: x\n    connect_timeout: soon\n",
		"invalid":       "static_resources:\n  clusters:\n  - name: \"\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseBootstrap([]byte(src)); err == nil {
				t.Fatal("accepted a broken bootstrap")
			}
		})
	}
}

// TestRefusesUnmaskableBodyModes: a data path where a target's responses
// could pass ext_proc unseen does not render (validate).
func TestRefusesUnmaskableBodyModes(t *testing.T) {
	perRoute := func(pr *extprocv3.ExtProcPerRoute) func(*Resources) {
		return func(r *Resources) {
			for _, rt := range r.Routes.VirtualHosts[0].Routes {
				if rt.Name == "target-everything" {
					rt.TypedPerFilterConfig[ExtProcFilter] = mustAny(pr)
				}
			}
		}
	}
	mode := func(m extprocv3.ProcessingMode_BodySendMode) *extprocv3.ExtProcPerRoute {
		return &extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Overrides{Overrides: &extprocv3.ExtProcOverrides{
			ProcessingMode: &extprocv3.ProcessingMode{ResponseBodyMode: m}}}}
	}
	filterMode := func(m extprocv3.ProcessingMode_BodySendMode) func(*Resources) {
		return func(r *Resources) {
			hcm := &hcmv3.HttpConnectionManager{}
			_ = r.Listener.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(hcm)
			proc := &extprocv3.ExternalProcessor{}
			_ = hcm.HttpFilters[1].GetTypedConfig().UnmarshalTo(proc)
			proc.ProcessingMode.ResponseBodyMode = m
			hcm.HttpFilters[1].ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(proc)}
			r.Listener.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)}
		}
	}
	for _, tc := range []struct {
		name string
		mod  func(*Resources)
		want string // "" = valid
	}{
		{"as rendered", func(*Resources) {}, ""},
		{"route NONE", perRoute(mode(extprocv3.ProcessingMode_NONE)), "response_body_mode NONE"},
		{"route BUFFERED_PARTIAL", perRoute(mode(extprocv3.ProcessingMode_BUFFERED_PARTIAL)), "response_body_mode BUFFERED_PARTIAL"},
		{"route BUFFERED", perRoute(mode(extprocv3.ProcessingMode_BUFFERED)), ""},
		{"route FULL_DUPLEX_STREAMED", perRoute(&extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Overrides{Overrides: &extprocv3.ExtProcOverrides{
			ProcessingMode: &extprocv3.ProcessingMode{ResponseBodyMode: extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED, ResponseTrailerMode: extprocv3.ProcessingMode_SEND}}}}), ""},
		{"ext_proc disabled on a target", perRoute(&extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Disabled{Disabled: true}}), "ext_proc is disabled on a target route"},
		{"filter NONE", filterMode(extprocv3.ProcessingMode_NONE), "route target-github: ext_proc response_body_mode NONE"},
		{"filter BUFFERED_PARTIAL", filterMode(extprocv3.ProcessingMode_BUFFERED_PARTIAL), "route target-everything: ext_proc response_body_mode BUFFERED_PARTIAL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Build(loadConfig(t), Options{})
			if err != nil {
				t.Fatal(err)
			}
			tc.mod(res)
			err = res.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// listen.advertise puts airlock's services, as Envoy dials them, at the
// advertised host with the listen ports (an Envoy Deployment reaching
// airlock's Service), in the static and the ADS configuration alike.
func TestAdvertisedServices(t *testing.T) {
	cfg := loadConfig(t)
	cfg.Listen.Advertise = "airlock.airlock-system.svc.cluster.local"
	m, err := NewModel(cfg, Bound{Authz: "[::]:9001", Proc: "0.0.0.0:9002"})
	if err != nil {
		t.Fatal(err)
	}
	want := Services{
		Authz: "airlock.airlock-system.svc.cluster.local:9001",
		Proc:  "airlock.airlock-system.svc.cluster.local:9002",
		HTTP:  "airlock.airlock-system.svc.cluster.local:" + portOfAddr(t, cfg.Listen.HTTP),
	}
	if m.Services != want {
		t.Fatalf("services %+v, want %+v", m.Services, want)
	}
	res, err := Build(cfg, Bound{Authz: "[::]:9001", Proc: "0.0.0.0:9002"})
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, c := range res.Clusters {
		for _, e := range c.GetLoadAssignment().GetEndpoints() {
			for _, le := range e.GetLbEndpoints() {
				if le.GetEndpoint().GetAddress().GetSocketAddress().GetAddress() == cfg.Listen.Advertise {
					found++
				}
			}
		}
	}
	if found != 3 {
		t.Errorf("%d clusters dial the advertised host, want airlock_authz, airlock_proc and airlock_http", found)
	}
}

func portOfAddr(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// An empty Any is a valid per-route FilterConfig.config (the filter is
// turned on with its listener config; Envoy Gateway renders it so) and an
// error anywhere else.
func TestValidateDeepEmptyAny(t *testing.T) {
	fc, err := anypb.New(&routev3.FilterConfig{Config: &anypb.Any{}})
	if err != nil {
		t.Fatal(err)
	}
	ok := &routev3.Route{Name: "r", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action:               &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 200}},
		TypedPerFilterConfig: map[string]*anypb.Any{"envoy.filters.http.ext_proc": fc}}
	if err := ValidateDeep(ok); err != nil {
		t.Fatalf("empty FilterConfig.config refused: %v", err)
	}
	bad := proto.Clone(ok).(*routev3.Route)
	bad.TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.ext_proc": {}}
	if err := ValidateDeep(bad); err == nil || !strings.Contains(err.Error(), "cannot unpack") {
		t.Fatalf("an empty typed_per_filter_config: %v, want it refused", err)
	}
}
