package envoy

import (
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/airlock-mcp/airlock/internal/wire"
)

const (
	// ExtAuthzFilter is the ext_authz HTTP filter. Its name is the
	// namespace Envoy stores ext_authz's dynamic metadata under, which
	// ext_proc is forwarded.
	ExtAuthzFilter = wire.AuthzNamespace
	// AuthzTimeout is the least Envoy waits for Check. It must exceed the
	// approval hold window (25 s by default) so a held call can still be
	// allowed once a human approves it (Model.AuthzTimeout).
	AuthzTimeout = 30 * time.Second
)

// extAuthzConfig is the ext_authz filter config airlock needs.
func extAuthzConfig(m *Model, ads bool) proto.Message {
	c := &extauthzv3.ExtAuthz{
		Services: &extauthzv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: ClusterAuthz}},
			Timeout:         durationpb.New(m.AuthzTimeout),
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
			MaxRequestBytes:     m.MaxRequestBytes,
			PackAsBytes:         true,
			AllowPartialMessage: true,
		},
		// ext_authz sets wire.HeaderGrant on granted calls; re-match so the per-grant route is chosen.
		ClearRouteCache: true,
	}
	if ads {
		// ext_authz never sees wire.HeaderGrant: the value it would see is
		// the forced wire.NoGrant, and airlock removes every x-airlock-*
		// header it is shown. Hidden, it stays NoGrant unless ext_authz
		// sets a grant id.
		c.DisallowedHeaders = &matcherv3.ListStringMatcher{Patterns: []*matcherv3.StringMatcher{
			{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: wire.HeaderGrant}},
		}}
	}
	return c
}

func extAuthzOff() proto.Message {
	return &extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true}}
}

// extAuthzTarget tells ext_authz which target a route is for
// (wire.ContextTarget) and, on a grant's route, which grant
// (wire.ContextGrant).
func extAuthzTarget(t Target, grant string) proto.Message {
	ext := map[string]string{wire.ContextTarget: t.Name}
	if grant != "" {
		ext[wire.ContextGrant] = grant
	}
	return &extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{
		CheckSettings: &extauthzv3.CheckSettings{ContextExtensions: ext},
	}}
}
