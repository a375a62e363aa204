package xds

import (
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/config"
)

// Keys airlock puts in route metadata (filter_metadata "airlock") and in
// ext_authz context_extensions.
const (
	MetadataNamespace = "airlock"
	ContextTarget     = "airlock_target"
	ContextGrant      = "airlock_grant"
)

// translator turns the model into Envoy resources. It holds only what the
// configuration says; it is rebuilt on every configuration change.
type translator struct {
	cfg     *config.Config
	targets map[string]config.Target
	base    *envoy.Dynamic
}

func newTranslator(cfg *config.Config, opts envoy.Options) (*translator, error) {
	base, err := envoy.BuildDynamic(cfg, opts)
	if err != nil {
		return nil, err
	}
	t := &translator{cfg: cfg, targets: make(map[string]config.Target, len(cfg.Targets)), base: base}
	for _, tg := range cfg.Targets {
		t.targets[tg.Name] = tg
	}
	return t, nil
}

// grantScope renders the scope a grant's requests are routed in: keyed by
// the grant id (the x-airlock-grant value ext_authz sets), holding one
// route to the target — matched by the grant header and exactly the
// target's MCP endpoint, carrying the grant in its metadata and
// context_extensions, its timeout ending no later than the grant — and a
// 403 for any other path. now fixes the timeout, so the output depends
// only on (g, now, configuration).
func (t *translator) grantScope(g Grant, now time.Time) (*routev3.ScopedRouteConfiguration, error) {
	if err := validateID(g.ID); err != nil {
		return nil, err
	}
	tg, ok := t.targets[g.Target]
	if !ok {
		return nil, fmt.Errorf("grant %s: target %q is not configured", g.ID, g.Target)
	}
	left := g.Expiry.Sub(now).Truncate(time.Millisecond)
	if left < time.Millisecond {
		return nil, fmt.Errorf("grant %s (expiry %s): %w", g.ID, g.Expiry.UTC().Format(time.RFC3339Nano), ErrExpired)
	}
	action := envoy.TargetRouteAction(tg)
	// RouteAction.timeout covers the whole exchange (an SSE stream
	// included) from when the request was received; 0 would mean none.
	action.Timeout = durationpb.New(left)

	md := map[string]*structpb.Value{
		"target":   structpb.NewStringValue(tg.Name),
		"grant_id": structpb.NewStringValue(g.ID),
		"expiry":   structpb.NewStringValue(g.Expiry.UTC().Format(time.RFC3339Nano)),
	}
	if g.Tool != "" {
		md["tool"] = structpb.NewStringValue(g.Tool)
	}
	// Exactly the target's MCP endpoint, as on the base route.
	match := envoy.TargetMatch(tg)
	match.Headers = []*routev3.HeaderMatcher{{
		Name: envoy.GrantHeader,
		HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Exact{Exact: g.ID},
		}},
	}}
	name := ScopeName(g.ID)
	rc := &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "grant",
			Domains: []string{"*"},
			Routes: []*routev3.Route{
				{
					Name:                "grant-" + g.ID,
					Match:               match,
					Action:              &routev3.Route_Route{Route: action},
					RequestHeadersToAdd: envoy.TargetRequestHeaders(),
					Metadata:            &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{MetadataNamespace: {Fields: md}}},
					TypedPerFilterConfig: map[string]*anypb.Any{
						envoy.ExtAuthzFilter: mustAny(&extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{
							CheckSettings: &extauthzv3.CheckSettings{ContextExtensions: map[string]string{
								ContextTarget: tg.Name,
								ContextGrant:  g.ID,
							}},
						}}),
					},
				},
				{
					// The grant does not open this path (ext_authz only sets
					// grants of the request's own target, so this is a bug
					// elsewhere): refuse rather than fall through.
					Name:  "grant-" + g.ID + "-uncovered",
					Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
					Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
						Status: 403,
						Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: envoy.NoGrantRouteBody}},
					}},
					ResponseHeadersToAdd: []*corev3.HeaderValueOption{envoy.JSONContentType()},
				},
			},
		}},
	}
	return &routev3.ScopedRouteConfiguration{
		Name:               name,
		Key:                envoy.ScopeKey(g.ID),
		RouteConfiguration: rc,
	}, nil
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
