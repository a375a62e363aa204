package envoy

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// TestADSBootstrap: the bootstrap selects the API type asked for, keeps
// admin on loopback and leaves listeners to ADS (its bytes are in the
// goldens); a node or address it cannot use is refused.
func TestADSBootstrap(t *testing.T) {
	for _, tc := range []struct {
		opts ADSOptions
		api  corev3.ApiConfigSource_ApiType
	}{
		{ADSOptions{}, corev3.ApiConfigSource_DELTA_GRPC},
		{ADSOptions{SotW: true}, corev3.ApiConfigSource_GRPC},
	} {
		t.Run(tc.api.String(), func(t *testing.T) {
			b, err := ADSBootstrap(Node{ID: "gw-1", Cluster: "airlock"}, "airlock.example:18000", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			out, err := YAML(b)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseBootstrap(out)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(b, back) {
				t.Error("bootstrap YAML does not parse back to the same proto")
			}
			if got := back.GetDynamicResources().GetAdsConfig().GetApiType(); got != tc.api {
				t.Errorf("api_type = %s, want %s", got, tc.api)
			}
			if back.GetAdmin().GetAddress().GetSocketAddress().GetAddress() != "127.0.0.1" {
				t.Error("admin must stay on loopback")
			}
			if back.GetStaticResources().GetListeners() != nil {
				t.Error("listeners must come over ADS, not the bootstrap")
			}
		})
	}
	if _, err := ADSBootstrap(Node{ID: "x"}, "a:1", ADSOptions{}); err == nil {
		t.Error("accepted a node without a cluster")
	}
	if _, err := ADSBootstrap(Node{ID: "x", Cluster: "c"}, "no-port", ADSOptions{}); err == nil {
		t.Error("accepted an xds address without a port")
	}
}

// TestDynamicShapesTheGrantRouting pins the pieces the per-grant routing
// stands on (docs/xds.md): the forced scope key, ext_authz not seeing it,
// scoped routes keyed on it, and the 403 for a missing scope.
func TestDynamicShapesTheGrantRouting(t *testing.T) {
	d, err := BuildDynamic(loadConfig(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := d.Listener.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	ehm := &headermutationv3.HeaderMutation{}
	if len(hcm.EarlyHeaderMutationExtensions) != 1 {
		t.Fatalf("early header mutations: %v", hcm.EarlyHeaderMutationExtensions)
	}
	if err := hcm.EarlyHeaderMutationExtensions[0].GetTypedConfig().UnmarshalTo(ehm); err != nil {
		t.Fatal(err)
	}
	app := ehm.GetMutations()[0].GetAppend()
	if app.GetHeader().GetKey() != wire.HeaderGrant || app.GetHeader().GetValue() != wire.NoGrant || app.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
		t.Errorf("early header mutation must overwrite %s with %q: %v", wire.HeaderGrant, wire.NoGrant, app)
	}
	sr := hcm.GetScopedRoutes()
	if got := sr.GetScopeKeyBuilder().GetFragments()[0].GetHeaderValueExtractor().GetName(); got != wire.HeaderGrant {
		t.Errorf("scope key header = %q", got)
	}
	if sr.GetScopedRds().GetScopedRdsConfigSource().GetAds() == nil {
		t.Error("scopes must come over ADS")
	}
	authz := &extauthzv3.ExtAuthz{}
	if err := hcm.HttpFilters[0].GetTypedConfig().UnmarshalTo(authz); err != nil {
		t.Fatal(err)
	}
	if !authz.ClearRouteCache || authz.GetDisallowedHeaders().GetPatterns()[0].GetExact() != wire.HeaderGrant {
		t.Errorf("ext_authz must clear the route cache and not be shown %s: %v", wire.HeaderGrant, authz)
	}
	m := hcm.GetLocalReplyConfig().GetMappers()[0]
	and := m.GetFilter().GetAndFilter().GetFilters()
	if len(and) != 2 || !cmp.Equal(and[0].GetResponseFlagFilter().GetFlags(), []string{"NR"}) ||
		and[1].GetHeaderFilter().GetHeader().GetName() != wire.HeaderGrant || m.GetStatusCode().GetValue() != 403 {
		t.Errorf("local reply mapper: %v", m)
	}
	if d.BaseScope.GetKey().GetFragments()[0].GetStringKey() != wire.NoGrant {
		t.Error("the base scope must be keyed by wire.NoGrant")
	}
	if !strings.Contains(strings.Join(d.BaseScope.GetRouteConfiguration().GetRequestHeadersToRemove(), ","), wire.HeaderGrant) {
		t.Error("base routes must not forward the routing sentinel upstream")
	}
	// The static listener is unchanged by all this: no scopes, no mutation.
	res, _ := Build(loadConfig(t), Options{})
	shcm := &hcmv3.HttpConnectionManager{}
	_ = res.Listener.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(shcm)
	if shcm.GetRouteConfig() == nil || len(shcm.EarlyHeaderMutationExtensions) > 0 {
		t.Error("the static listener must keep its inline routes")
	}
}
