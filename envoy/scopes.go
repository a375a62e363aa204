package envoy

import (
	"errors"
	"fmt"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// The data path Envoy receives over ADS (see docs/xds.md) is routed by
// scope, keyed by wire.HeaderGrant: every request starts in the base
// scope (wire.NoGrant, forced before routing by earlyHeaderMutations),
// and ext_authz moves a granted call into its grant's scope by setting
// the header to the grant id. A grant scope exists exactly while the
// grant is live.
const (
	// ScopedRoutesName names the listener's scoped route configuration set.
	ScopedRoutesName = "airlock"
	// BaseScopeName is the ScopedRouteConfiguration of the base routes.
	BaseScopeName = "airlock"
	// NoGrantRouteBody is the 403 body Envoy sends itself when a request
	// names a grant whose route does not exist (revoked, expired) or does
	// not cover the request's path.
	NoGrantRouteBody = `{"error":"no live grant route for this request"}`
)

// scopeRouting makes hcm route by scope: the scope key is the first
// wire.HeaderGrant value, and scopes arrive over ADS. No scope for the
// key (the grant ended) makes the router answer 404 "NR", which
// noGrantRouteMapper turns into Envoy's own 403.
func (m *Model) scopeRouting(hcm *hcmv3.HttpConnectionManager) {
	hcm.EarlyHeaderMutationExtensions = earlyHeaderMutations()
	ads := adsSource()
	hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_ScopedRoutes{ScopedRoutes: &hcmv3.ScopedRoutes{
		Name: ScopedRoutesName,
		ScopeKeyBuilder: &hcmv3.ScopedRoutes_ScopeKeyBuilder{Fragments: []*hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder{{
			Type: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_{
				HeaderValueExtractor: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor{
					Name:        wire.HeaderGrant,
					ExtractType: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_Index{Index: 0},
				},
			},
		}}},
		RdsConfigSource: ads,
		ConfigSpecifier: &hcmv3.ScopedRoutes_ScopedRds{ScopedRds: &hcmv3.ScopedRds{ScopedRdsConfigSource: ads}},
	}}
	hcm.LocalReplyConfig = &hcmv3.LocalReplyConfig{Mappers: []*hcmv3.ResponseMapper{noGrantRouteMapper()}}
}

// baseScope holds the base routes, keyed by wire.NoGrant.
func (m *Model) baseScope() *routev3.ScopedRouteConfiguration {
	rc := m.routes()
	// The forced NoGrant is routing state, not something upstreams should see.
	rc.RequestHeadersToRemove = append(rc.RequestHeadersToRemove, wire.HeaderGrant)
	rc.ValidateClusters = lateClusters()
	return &routev3.ScopedRouteConfiguration{Name: BaseScopeName, Key: ScopeKey(wire.NoGrant), RouteConfiguration: rc}
}

// lateClusters is validate_clusters for the route configurations carried
// inline in scopes. Envoy builds those with a static route config provider
// (scoped_rds.cc), whose default is to validate: a scope naming a cluster
// that has not arrived yet would reject the whole SRDS update (NACK). Over
// ADS clusters and scopes travel on separate streams of one connection in
// no fixed order (a new target's cluster and the scopes routing to it
// change together), so the scopes load regardless and a route whose
// cluster is still missing answers 503 (cluster_not_found) until it
// arrives: closed either way, with no NACK and retry in between.
func lateClusters() *wrapperspb.BoolValue { return wrapperspb.Bool(false) }

// ScopeKey is the scope key for a wire.HeaderGrant value.
func ScopeKey(grantHeader string) *routev3.ScopedRouteConfiguration_Key {
	return &routev3.ScopedRouteConfiguration_Key{Fragments: []*routev3.ScopedRouteConfiguration_Key_Fragment{{
		Type: &routev3.ScopedRouteConfiguration_Key_Fragment_StringKey{StringKey: grantHeader},
	}}}
}

// noGrantRouteMapper turns "no route" (response flag NR, which with scoped
// routes means no scope has the request's grant id) into a 403.
func noGrantRouteMapper() *hcmv3.ResponseMapper {
	return &hcmv3.ResponseMapper{
		Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_AndFilter{AndFilter: &accesslogv3.AndFilter{
			Filters: []*accesslogv3.AccessLogFilter{
				{FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: []string{"NR"}}}},
				{FilterSpecifier: &accesslogv3.AccessLogFilter_HeaderFilter{HeaderFilter: &accesslogv3.HeaderFilter{
					Header: &routev3.HeaderMatcher{Name: wire.HeaderGrant, HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}},
				}}},
			},
		}}},
		StatusCode:   wrapperspb.UInt32(403),
		Body:         &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: NoGrantRouteBody}},
		HeadersToAdd: []*corev3.HeaderValueOption{jsonContentType()},
	}
}

// jsonContentType is the response header option of airlock's own JSON
// replies (the 403s for a missing grant route).
func jsonContentType() *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: "content-type", Value: "application/json"},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// Grant is a live just-in-time grant as far as routing is concerned: which
// target it opens, until when. Whether a call is covered (tool, arguments,
// single use) is ext_authz's decision; the route only has to exist while
// the grant does.
type Grant struct {
	// ID is the grant id ext_authz puts in wire.HeaderGrant.
	ID string
	// Target is the name of the MCP target it opens.
	Target string
	// Tool is the tool the grant covers, if it names one (route metadata only).
	Tool string
	// Expiry is when the grant ends; its route is withdrawn then.
	Expiry time.Time
}

// maxGrantID bounds a grant id (it travels in a header and a resource name).
const maxGrantID = 128

// ErrExpired is returned for a grant whose expiry has passed.
var ErrExpired = errors.New("grant has expired")

// ValidateGrantID checks that id can be a header value, a scope key and
// part of a resource name: 1–128 characters of [A-Za-z0-9._:~-], and not
// the base scope's key.
func ValidateGrantID(id string) error {
	if id == "" || len(id) > maxGrantID {
		return fmt.Errorf("grant id must be 1 to %d characters, got %d", maxGrantID, len(id))
	}
	if id == wire.NoGrant {
		return fmt.Errorf("grant id %q is reserved for calls without a grant", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '~' || c == '-'
		if !ok {
			return fmt.Errorf("grant id %q: character %q at %d is not allowed (use letters, digits and . _ : ~ -)", id, c, i)
		}
	}
	return nil
}

// ScopeName is the name of a grant's ScopedRouteConfiguration (and of the
// RouteConfiguration inside it).
func ScopeName(grantID string) string { return "grant/" + grantID }

// GrantScope renders the scope a grant's requests are routed in: keyed by
// the grant id (the wire.HeaderGrant value ext_authz sets), holding one
// route to the target — matched by the grant header and exactly the
// target's MCP endpoint, carrying the grant in its metadata and
// context_extensions, its timeout ending no later than the grant — and a
// 403 for any other path. now fixes the timeout, so the output depends
// only on (m, g, now).
func (m *Model) GrantScope(g Grant, now time.Time) (*routev3.ScopedRouteConfiguration, error) {
	if err := ValidateGrantID(g.ID); err != nil {
		return nil, err
	}
	tg, ok := m.target(g.Target)
	if !ok {
		return nil, fmt.Errorf("grant %s: target %q is not configured", g.ID, g.Target)
	}
	left := g.Expiry.Sub(now).Truncate(time.Millisecond)
	if left < time.Millisecond {
		return nil, fmt.Errorf("grant %s (expiry %s): %w", g.ID, g.Expiry.UTC().Format(time.RFC3339Nano), ErrExpired)
	}
	action := tg.action()
	// RouteAction.timeout covers the whole exchange (an SSE stream
	// included) from when the request was received; 0 would mean none.
	action.Timeout = durationpb.New(left)

	md := map[string]*structpb.Value{
		wire.RouteTarget:  structpb.NewStringValue(tg.Name),
		wire.RouteGrantID: structpb.NewStringValue(g.ID),
		wire.RouteExpiry:  structpb.NewStringValue(g.Expiry.UTC().Format(time.RFC3339Nano)),
	}
	if g.Tool != "" {
		md[wire.RouteTool] = structpb.NewStringValue(g.Tool)
	}
	// Exactly the target's MCP endpoint, as on the base route.
	match := tg.match()
	match.Headers = []*routev3.HeaderMatcher{{
		Name: wire.HeaderGrant,
		HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Exact{Exact: g.ID},
		}},
	}}
	name := ScopeName(g.ID)
	rc := &routev3.RouteConfiguration{
		Name:             name,
		ValidateClusters: lateClusters(),
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "grant",
			Domains: []string{"*"},
			Routes: []*routev3.Route{
				{
					Name:                 "grant-" + g.ID,
					Match:                match,
					Action:               &routev3.Route_Route{Route: action},
					RequestHeadersToAdd:  targetRequestHeaders(),
					Metadata:             &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{wire.RouteNamespace: {Fields: md}}},
					TypedPerFilterConfig: m.targetFilterConfig(tg, g.ID),
				},
				{
					// The grant does not open this path (ext_authz only sets
					// grants of the request's own target, so this is a bug
					// elsewhere): refuse rather than fall through.
					Name:  "grant-" + g.ID + "-uncovered",
					Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
					Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
						Status: 403,
						Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: NoGrantRouteBody}},
					}},
					ResponseHeadersToAdd: []*corev3.HeaderValueOption{jsonContentType()},
				},
			},
		}},
	}
	return &routev3.ScopedRouteConfiguration{Name: name, Key: ScopeKey(g.ID), RouteConfiguration: rc}, nil
}
