package envoy

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// Names of the base route configuration.
const (
	RouteConfigName = "airlock"
	VirtualHostName = "airlock"
)

// routes are the base routes: airlock's HTTP service (when on), a route
// per target, and a 404 for every other path.
func (m *Model) routes() *routev3.RouteConfiguration {
	vh := &routev3.VirtualHost{Name: VirtualHostName, Domains: []string{"*"}}
	if m.Services.HTTP != "" {
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
				TypedPerFilterConfig: m.notMCP(),
			})
		}
	}
	for _, t := range m.Targets {
		vh.Routes = append(vh.Routes, m.targetRoute(t))
	}
	vh.Routes = append(vh.Routes, &routev3.Route{
		Name:  "not-found",
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
			Status: 404,
			Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: `{"error":"no MCP target at this path"}`}},
		}},
		TypedPerFilterConfig: m.notMCP(),
	})
	return &routev3.RouteConfiguration{Name: RouteConfigName, VirtualHosts: []*routev3.VirtualHost{vh}}
}

// targetRoute sends exactly the target's MCP endpoint to the upstream's
// MCP endpoint, and tells the filters which target the route is for.
func (m *Model) targetRoute(t Target) *routev3.Route {
	return &routev3.Route{
		Name:                "target-" + t.Name,
		Match:               t.match(),
		Action:              &routev3.Route_Route{Route: t.action()},
		RequestHeadersToAdd: targetRequestHeaders(),
		Metadata: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
			wire.RouteNamespace: {Fields: map[string]*structpb.Value{wire.RouteTarget: structpb.NewStringValue(t.Name)}},
		}},
		TypedPerFilterConfig: m.targetFilterConfig(t, ""),
	}
}

// match matches exactly the target's MCP endpoint (path_prefix, the
// query string aside, after the connection manager normalized the path):
// a target exposes its MCP endpoint and nothing below it. Any other path —
// /mcp/<name>/admin, /mcp/<name>/ — matches no target route and gets the
// base routes' 404, which runs neither ext_authz nor ext_proc and never
// reaches the upstream (route_components.proto RouteMatch.path: "the route
// is an exact path rule meaning that the path must exactly match the :path
// header once the query string is removed"). The target's base route and
// every grant's route use it.
func (t Target) match() *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: t.Path}}
}

// targetRequestHeaders are the request headers every target route sets:
// accept-encoding is forced to identity (all of the agent's values
// replaced), so the upstream answers in plaintext that ext_proc can mask.
// ext_proc still refuses any response with a content-encoding (defence in
// depth); ext_authz sets the same header.
func targetRequestHeaders() []*corev3.HeaderValueOption {
	return []*corev3.HeaderValueOption{{
		Header:       &corev3.HeaderValue{Key: "accept-encoding", Value: "identity"},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}}
}

// action forwards to the target's cluster, rewriting the gateway path to
// the upstream's path (prefix_rewrite on an exact path match replaces the
// whole path: "the matched prefix (or path) should be swapped with this
// value"; the query string is kept) and the host to the upstream's. The
// target's base route and every grant's route use it.
func (t Target) action() *routev3.RouteAction {
	upath := t.Upstream.Path
	if upath == "" {
		upath = "/"
	}
	return &routev3.RouteAction{
		ClusterSpecifier:     &routev3.RouteAction_Cluster{Cluster: TargetClusterPref + t.Name},
		PrefixRewrite:        upath,
		HostRewriteSpecifier: &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: t.Upstream.Host},
		// MCP responses may be long SSE streams: no overall deadline (idle timeout applies).
		Timeout: durationpb.New(0),
	}
}
