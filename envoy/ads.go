package envoy

import (
	"errors"
	"fmt"
	"net"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/airlock-mcp/airlock/internal/config"
)

// The data path Envoy receives over ADS (see docs/xds.md). Routing is
// scoped by the grant header: every request starts in the base scope
// (GrantHeader = NoGrant, forced before routing), and ext_authz moves a
// granted call into its grant's scope by setting GrantHeader to the grant
// id. A grant scope exists exactly while the grant is live.
const (
	// ClusterXDS is the bootstrap's static cluster for airlock's ADS server.
	ClusterXDS = "airlock_xds"
	// GrantHeader carries the grant id ext_authz chose; it is the scope key.
	GrantHeader = "x-airlock-grant"
	// NoGrant is the scope key of the base scope: the value GrantHeader has
	// on every request before ext_authz runs, and after it for calls no
	// grant allowed.
	NoGrant = "-"
	// ScopedRoutesName names the listener's scoped route configuration set.
	ScopedRoutesName = "airlock"
	// BaseScopeName is the ScopedRouteConfiguration of the base routes.
	BaseScopeName = "airlock"
	// EarlyHeaderMutation is the extension that forces GrantHeader.
	EarlyHeaderMutation = "envoy.http.early_header_mutation.header_mutation"
	// NoGrantRouteBody is the 403 body Envoy sends itself when a request
	// names a grant whose route does not exist (revoked, expired) or does
	// not cover the request's path.
	NoGrantRouteBody = `{"error":"no live grant route for this request"}`
)

// Dynamic is the data path as served over ADS: a listener whose routes are
// scoped by GrantHeader, the base scope, and the clusters. Grant scopes are
// added by the xds package.
type Dynamic struct {
	Listener  *listenerv3.Listener
	BaseScope *routev3.ScopedRouteConfiguration
	Clusters  []*clusterv3.Cluster
}

// BuildDynamic renders the ADS data path for cfg. Same input, same output.
func BuildDynamic(cfg *config.Config, opts Options) (*Dynamic, error) {
	static, err := Build(cfg, opts)
	if err != nil {
		return nil, err
	}
	addr := static.Listener.GetAddress().GetSocketAddress()
	authz := extAuthz(cfg)
	// ext_authz never sees GrantHeader: the value it would see is the
	// forced NoGrant, and airlock removes every x-airlock-* header it is
	// shown. Hidden, it stays NoGrant unless ext_authz sets a grant id.
	authz.DisallowedHeaders = &matcherv3.ListStringMatcher{Patterns: []*matcherv3.StringMatcher{
		{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: GrantHeader}},
	}}
	hcm := connectionManager(cfg, authz)
	hcm.EarlyHeaderMutationExtensions = []*corev3.TypedExtensionConfig{{
		Name: EarlyHeaderMutation,
		// A client can never choose a grant: whatever it sent, every
		// request is routed in the base scope until ext_authz says otherwise.
		TypedConfig: mustAny(&headermutationv3.HeaderMutation{Mutations: []*mutationv3.HeaderMutation{{
			Action: &mutationv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{
				Header:       &corev3.HeaderValue{Key: GrantHeader, Value: NoGrant},
				AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
			}},
		}}}),
	}}
	ads := adsSource()
	hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_ScopedRoutes{ScopedRoutes: &hcmv3.ScopedRoutes{
		Name: ScopedRoutesName,
		ScopeKeyBuilder: &hcmv3.ScopedRoutes_ScopeKeyBuilder{Fragments: []*hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder{{
			Type: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_{
				HeaderValueExtractor: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor{
					Name:        GrantHeader,
					ExtractType: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_Index{Index: 0},
				},
			},
		}}},
		RdsConfigSource: ads,
		ConfigSpecifier: &hcmv3.ScopedRoutes_ScopedRds{ScopedRds: &hcmv3.ScopedRds{ScopedRdsConfigSource: ads}},
	}}
	// No scope for the key (the grant ended): the router answers 404 "NR";
	// make that Envoy's own 403.
	hcm.LocalReplyConfig = &hcmv3.LocalReplyConfig{Mappers: []*hcmv3.ResponseMapper{noGrantRouteMapper()}}
	lis, err := listenerWith(cfg, net.JoinHostPort(addr.GetAddress(), fmt.Sprint(addr.GetPortValue())), hcm)
	if err != nil {
		return nil, err
	}
	base := proto.Clone(static.Routes).(*routev3.RouteConfiguration)
	// The forced NoGrant is routing state, not something upstreams should see.
	base.RequestHeadersToRemove = append(base.RequestHeadersToRemove, GrantHeader)
	d := &Dynamic{
		Listener: lis,
		BaseScope: &routev3.ScopedRouteConfiguration{
			Name:               BaseScopeName,
			Key:                ScopeKey(NoGrant),
			RouteConfiguration: base,
		},
		Clusters: static.Clusters,
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// ScopeKey is the scope key for a GrantHeader value.
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
					Header: &routev3.HeaderMatcher{Name: GrantHeader, HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}},
				}}},
			},
		}}},
		StatusCode:   wrapperspb.UInt32(403),
		Body:         &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: NoGrantRouteBody}},
		HeadersToAdd: []*corev3.HeaderValueOption{JSONContentType()},
	}
}

// JSONContentType is the response header option of airlock's own JSON
// replies (the 403s for a missing grant route).
func JSONContentType() *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: "content-type", Value: "application/json"},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

// Validate checks every resource deeply, and that no target's responses
// can bypass masking (checkResponseBodyModes).
func (d *Dynamic) Validate() error {
	var errs []error
	for _, m := range []proto.Message{d.Listener, d.BaseScope} {
		if err := ValidateDeep(m); err != nil {
			errs = append(errs, err)
		}
	}
	if err := checkResponseBodyModes(d.Listener, d.BaseScope.GetRouteConfiguration()); err != nil {
		errs = append(errs, err)
	}
	for _, c := range d.Clusters {
		if err := ValidateDeep(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ADSOptions shape the ADS bootstrap.
type ADSOptions struct {
	// SotW selects state-of-the-world ADS (api_type GRPC) instead of the
	// default incremental ADS (DELTA_GRPC). With SotW every grant change
	// resends every grant scope; see docs/xds.md.
	SotW bool
}

// ADSBootstrap is the small bootstrap that points Envoy at airlock's ADS
// server at xdsAddress (host:port): node identity, admin on loopback, the
// ADS cluster, and LDS/CDS over ADS. Everything else arrives over ADS.
func ADSBootstrap(node Node, xdsAddress string, opts ADSOptions) (*bootstrapv3.Bootstrap, error) {
	if node.ID == "" || node.Cluster == "" {
		return nil, errors.New("ADS bootstrap: node id and node cluster must both be set")
	}
	if _, _, err := net.SplitHostPort(xdsAddress); err != nil {
		return nil, fmt.Errorf("ADS bootstrap: xds address %q must be host:port: %w", xdsAddress, err)
	}
	xds, err := cluster(ClusterXDS, "http://"+xdsAddress, true)
	if err != nil {
		return nil, fmt.Errorf("ADS bootstrap: xds address %q: %w", xdsAddress, err)
	}
	// Notice a dead control plane (or a silently dropped connection) and reconnect.
	xds.TypedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] = mustAny(&httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{
				ConnectionKeepalive: &corev3.KeepaliveSettings{Interval: durationpb.New(30 * time.Second), Timeout: durationpb.New(5 * time.Second)},
			}},
		}},
	})
	api := corev3.ApiConfigSource_DELTA_GRPC
	if opts.SotW {
		api = corev3.ApiConfigSource_GRPC
	}
	b := &bootstrapv3.Bootstrap{
		Node:  &corev3.Node{Id: node.ID, Cluster: node.Cluster},
		Admin: admin(),
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:             api,
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{{
					TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: ClusterXDS}},
				}},
				SetNodeOnFirstMessageOnly: true,
			},
			LdsConfig: adsSource(),
			CdsConfig: adsSource(),
		},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{Clusters: []*clusterv3.Cluster{xds}},
	}
	if err := ValidateDeep(b); err != nil {
		return nil, fmt.Errorf("bootstrap does not validate: %w", err)
	}
	return b, nil
}
