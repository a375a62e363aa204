// Package envoy renders the Envoy configuration airlock needs: the HTTP
// listener with the ext_authz and ext_proc filters, a route for exactly
// each MCP target's endpoint (anything else is a 404 no filter sees) and a
// cluster per target, and clusters for airlock's own services. The same
// resources feed the static bootstrap (`airlock envoy bootstrap --static`),
// the end-to-end harness, and the xDS server. Every resource is checked with
// ValidateAll, including the typed_config inside each Any, and no target's
// responses may bypass ext_proc (checkResponseBodyModes).
package envoy

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/airlock-mcp/airlock/internal/config"
)

// Names of the resources airlock produces.
const (
	ListenerName      = "airlock"
	RouteConfigName   = "airlock"
	VirtualHostName   = "airlock"
	ClusterAuthz      = "airlock_authz"
	ClusterHTTP       = "airlock_http"
	ExtAuthzFilter    = "envoy.filters.http.ext_authz"
	RouterFilter      = "envoy.filters.http.router"
	TargetClusterPref = "mcp_"
	// AuthzTimeout is how long Envoy waits for Check. It must exceed the
	// approval hold window (25 s by default) so a held call can still be
	// allowed once a human approves it.
	AuthzTimeout = 30 * time.Second
)

// Options shape the rendered resources.
type Options struct {
	// ListenAddress is where Envoy accepts agents' HTTP (default from public_url's port on 0.0.0.0).
	ListenAddress string
}

// Resources is the whole data-path configuration.
type Resources struct {
	Listener *listenerv3.Listener
	Routes   *routev3.RouteConfiguration
	Clusters []*clusterv3.Cluster
}

// Build renders the resources for cfg. Same input, same output.
func Build(cfg *config.Config, opts Options) (*Resources, error) {
	addr := opts.ListenAddress
	if addr == "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("public_url: %w", err)
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		addr = net.JoinHostPort("0.0.0.0", port)
	}
	lis, err := listener(cfg, addr)
	if err != nil {
		return nil, err
	}
	r := &Resources{Listener: lis, Routes: routes(cfg)}
	authz, err := cluster(ClusterAuthz, "http://"+cfg.Listen.Authz, true)
	if err != nil {
		return nil, fmt.Errorf("listen.authz: %w", err)
	}
	r.Clusters = append(r.Clusters, authz)
	if cfg.Listen.Proc != "" {
		c, err := cluster(ClusterProc, "http://"+cfg.Listen.Proc, true)
		if err != nil {
			return nil, fmt.Errorf("listen.proc: %w", err)
		}
		r.Clusters = append(r.Clusters, c)
	}
	if cfg.Listen.HTTP != "" {
		c, err := cluster(ClusterHTTP, "http://"+cfg.Listen.HTTP, false)
		if err != nil {
			return nil, fmt.Errorf("listen.http: %w", err)
		}
		r.Clusters = append(r.Clusters, c)
	}
	for _, t := range cfg.Targets {
		c, err := cluster(TargetClusterPref+t.Name, t.Upstream, false)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		r.Clusters = append(r.Clusters, c)
	}
	if err := secureAirlockClusters(cfg, r.Clusters); err != nil { // mutual TLS to airlock (envoy/tls.go)
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// mustAny packs m deterministically (map entries sorted), so the same
// input gives the same bytes.
func mustAny(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true})
	if err != nil {
		panic(err) // only for messages built here, which always marshal
	}
	return a
}

func listener(cfg *config.Config, addr string) (*listenerv3.Listener, error) {
	hcm := connectionManager(cfg, extAuthz(cfg))
	hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: routes(cfg)}
	return listenerWith(cfg, addr, hcm)
}

// extAuthz is the ext_authz filter config airlock needs.
func extAuthz(cfg *config.Config) *extauthzv3.ExtAuthz {
	return &extauthzv3.ExtAuthz{
		Services: &extauthzv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: ClusterAuthz}},
			Timeout:         durationpb.New(authzTimeout(cfg)),
		}},
		TransportApiVersion: corev3.ApiVersion_V3,
		// Fail closed: if airlock cannot be reached, nothing passes.
		FailureModeAllow: false,
		// The MCP call is in the body. Past the limit Envoy sends the first
		// max_request_bytes with x-envoy-auth-partial-body: true
		// (allow_partial_message), and airlock refuses the call with a 413
		// JSON-RPC error carrying the request's id: a call is never judged
		// on part of its body (mcp.ParseHTTP refuses every cut body).
		WithRequestBody: &extauthzv3.BufferSettings{
			MaxRequestBytes:     uint32(cfg.Limits.MaxRequestBytes),
			PackAsBytes:         true,
			AllowPartialMessage: true,
		},
		// ext_authz sets x-airlock-grant on granted calls; re-match so the per-grant route is chosen.
		ClearRouteCache: true,
	}
}

// connectionManager is the HTTP connection manager without its route
// specifier: the static listener carries the routes inline, the ADS
// listener names its scoped routes.
func connectionManager(cfg *config.Config, authz *extauthzv3.ExtAuthz) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix: "airlock",
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		// Targets are chosen by path: normalize it before any route or policy
		// sees it, and refuse (400) a path with an escaped slash (%2F, %5C)
		// outright rather than redirect: no second reading of a path.
		NormalizePath:                wrapperspb.Bool(true),
		MergeSlashes:                 true,
		PathWithEscapedSlashesAction: hcmv3.HttpConnectionManager_REJECT_REQUEST,
		// SSE streams stay open; no whole-stream timeout, but idle ones end.
		StreamIdleTimeout: durationpb.New(5 * time.Minute),
		HttpFilters:       httpFilters(cfg, authz),
	}
}

// httpFilters is the HTTP filter chain, in order. This is the one place to
// add filters: ext_proc (masking and capture) belongs between ext_authz and
// the router, so it sees only calls ext_authz allowed; both listeners (the
// static one and the one served over ADS) pick it up from here.
func httpFilters(cfg *config.Config, authz *extauthzv3.ExtAuthz) []*hcmv3.HttpFilter {
	fs := []*hcmv3.HttpFilter{{Name: ExtAuthzFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(authz)}}}
	if cfg.Listen.Proc != "" {
		fs = append(fs, &hcmv3.HttpFilter{Name: ExtProcFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(extProc(cfg))}})
	}
	return append(fs, &hcmv3.HttpFilter{Name: RouterFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})}})
}

// authzTimeout is Envoy's wait for Check: longer than the approval hold
// window, so a held call can still be allowed once a human approves it.
func authzTimeout(cfg *config.Config) time.Duration {
	return max(AuthzTimeout, cfg.Grants.HoldWindow+5*time.Second)
}

// defaultBufferLimit is Envoy's per_connection_buffer_limit_bytes when
// unset (listener.proto).
const defaultBufferLimit = 1 << 20

// bufferLimit is the listener's per_connection_buffer_limit_bytes: room for
// a whole request body up to limits.max_request_bytes. ext_authz raises a
// stream's decoder buffer limit to max_request_bytes only without
// allow_partial_message (ext_authz.cc); airlock sends partial bodies (to
// answer an over-size call with its id), so the listener's limit must hold
// the largest body airlock accepts, or ext_proc's buffering of it would
// hit Envoy's 413 first.
func bufferLimit(cfg *config.Config) uint32 {
	return uint32(max(defaultBufferLimit, cfg.Limits.MaxRequestBytes))
}

// listenerWith wraps an HTTP connection manager in a listener on addr.
func listenerWith(cfg *config.Config, addr string, hcm *hcmv3.HttpConnectionManager) (*listenerv3.Listener, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: bad port", addr)
	}
	return &listenerv3.Listener{
		Name:                          ListenerName,
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(bufferLimit(cfg)),
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
		}}},
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{
				Name:       "envoy.filters.network.http_connection_manager",
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)},
			}},
		}},
	}, nil
}

func routes(cfg *config.Config) *routev3.RouteConfiguration {
	vh := &routev3.VirtualHost{Name: VirtualHostName, Domains: []string{"*"}}
	if cfg.Listen.HTTP != "" {
		// RFC 9728 metadata is public: clients fetch it before they hold a
		// token. The approvals API and inbox authenticate their own callers.
		for _, r := range []struct{ name, prefix string }{
			{"protected-resource-metadata", "/.well-known/oauth-protected-resource"},
			{"airlock-api-and-inbox", "/airlock/"},
		} {
			vh.Routes = append(vh.Routes, &routev3.Route{
				Name:  r.name,
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: r.prefix}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: ClusterHTTP},
					Timeout:          durationpb.New(0), // the API's event stream stays open
				}},
				TypedPerFilterConfig: notMCP(),
			})
		}
	}
	for _, t := range cfg.Targets {
		vh.Routes = append(vh.Routes, targetRoute(t))
	}
	vh.Routes = append(vh.Routes, &routev3.Route{
		Name:  "not-found",
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
			Status: 404,
			Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: `{"error":"no MCP target at this path"}`}},
		}},
		TypedPerFilterConfig: notMCP(),
	})
	return &routev3.RouteConfiguration{Name: RouteConfigName, VirtualHosts: []*routev3.VirtualHost{vh}}
}

// notMCP turns airlock's filters off on a route that carries no MCP traffic.
func notMCP() map[string]*anypb.Any {
	return map[string]*anypb.Any{
		ExtAuthzFilter: mustAny(&extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true}}),
		ExtProcFilter:  mustAny(&extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Disabled{Disabled: true}}),
	}
}

// targetRoute sends exactly the target's MCP endpoint to the upstream's
// MCP endpoint, and tells ext_authz which target the route is for.
func targetRoute(t config.Target) *routev3.Route {
	return &routev3.Route{
		Name:                "target-" + t.Name,
		Match:               TargetMatch(t),
		Action:              &routev3.Route_Route{Route: TargetRouteAction(t)},
		RequestHeadersToAdd: TargetRequestHeaders(),
		Metadata: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
			"airlock": {Fields: map[string]*structpb.Value{"target": structpb.NewStringValue(t.Name)}},
		}},
		TypedPerFilterConfig: map[string]*anypb.Any{
			ExtAuthzFilter: mustAny(&extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{
				CheckSettings: &extauthzv3.CheckSettings{ContextExtensions: map[string]string{"airlock_target": t.Name}},
			}}),
		},
	}
}

// TargetMatch matches exactly the target's MCP endpoint (path_prefix, the
// query string aside, after the connection manager normalized the path):
// a target exposes its MCP endpoint and nothing below it. Any other path —
// /mcp/<name>/admin, /mcp/<name>/ — matches no target route and gets the
// base routes' 404, which runs neither ext_authz nor ext_proc and never
// reaches the upstream (route_components.proto RouteMatch.path: "the route
// is an exact path rule meaning that the path must exactly match the :path
// header once the query string is removed"). The target's base route and
// every per-grant route use it.
func TargetMatch(t config.Target) *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: t.PathPrefix}}
}

// TargetRequestHeaders are the request headers every target route sets:
// accept-encoding is forced to identity (all of the agent's values
// replaced), so the upstream answers in plaintext that ext_proc can mask.
// ext_proc still refuses any response with a content-encoding (defence in
// depth); ext_authz sets the same header.
func TargetRequestHeaders() []*corev3.HeaderValueOption {
	return []*corev3.HeaderValueOption{{
		Header:       &corev3.HeaderValue{Key: "accept-encoding", Value: "identity"},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}}
}

// TargetRouteAction forwards to the target's cluster, rewriting the gateway
// path to the upstream's path (prefix_rewrite on an exact path match
// replaces the whole path: "the matched prefix (or path) should be swapped
// with this value"; the query string is kept) and the host to the
// upstream's. The target's base route and every per-grant route use it.
func TargetRouteAction(t config.Target) *routev3.RouteAction {
	u, _ := url.Parse(t.Upstream) // validated by config
	upath := u.Path
	if upath == "" {
		upath = "/"
	}
	return &routev3.RouteAction{
		ClusterSpecifier:     &routev3.RouteAction_Cluster{Cluster: TargetClusterPref + t.Name},
		PrefixRewrite:        upath,
		HostRewriteSpecifier: &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: u.Host},
		// MCP responses may be long SSE streams: no overall deadline (idle timeout applies).
		Timeout: durationpb.New(0),
	}
}

// cluster is a STRICT_DNS cluster for one URL; grpc clusters speak HTTP/2.
func cluster(name, rawURL string, grpc bool) (*clusterv3.Cluster, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	host, portStr := u.Hostname(), u.Port()
	if portStr == "" {
		portStr = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("%q: bad port", rawURL)
	}
	c := &clusterv3.Cluster{
		Name:                 name,
		ConnectTimeout:       durationpb.New(2 * time.Second),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS},
		DnsLookupFamily:      clusterv3.Cluster_V4_PREFERRED,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
						Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
					}}},
				}},
			}}}},
		},
	}
	if grpc {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(&httpv3.HttpProtocolOptions{
				UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
				}},
			}),
		}
	}
	if u.Scheme == "https" {
		c.TransportSocket = &corev3.TransportSocket{
			Name: "envoy.transport_sockets.tls",
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(&tlsv3.UpstreamTlsContext{
				Sni: host,
				CommonTlsContext: &tlsv3.CommonTlsContext{ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{
					ValidationContext: &tlsv3.CertificateValidationContext{
						TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/etc/ssl/certs/ca-certificates.crt"}},
						MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
							SanType: tlsv3.SubjectAltNameMatcher_DNS,
							Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: host}},
						}},
					},
				}},
			})},
		}
	}
	return c, nil
}
