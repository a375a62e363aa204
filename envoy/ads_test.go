package envoy

import (
	"bytes"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
)

func dynamicYAML(t *testing.T, d *Dynamic) []byte {
	t.Helper()
	var out bytes.Buffer
	docs := []struct {
		name string
		m    proto.Message
	}{{"listener", d.Listener}, {"base scope", d.BaseScope}}
	for _, c := range d.Clusters {
		docs = append(docs, struct {
			name string
			m    proto.Message
		}{"cluster", c})
	}
	for _, doc := range docs {
		y, err := YAML(doc.m)
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString("# " + doc.name + "\n")
		out.Write(y)
		out.WriteString("---\n")
	}
	return out.Bytes()
}

func TestDynamicGolden(t *testing.T) {
	d, err := BuildDynamic(loadConfig(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := dynamicYAML(t, d)
	golden(t, "ads-dynamic.yaml", out)
	d2, _ := BuildDynamic(loadConfig(t), Options{})
	if !bytes.Equal(out, dynamicYAML(t, d2)) {
		t.Error("rendering is not deterministic")
	}
}

func TestADSBootstrapGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		opts ADSOptions
		api  corev3.ApiConfigSource_ApiType
	}{
		{"ads-bootstrap.yaml", ADSOptions{}, corev3.ApiConfigSource_DELTA_GRPC},
		{"ads-bootstrap-sotw.yaml", ADSOptions{SotW: true}, corev3.ApiConfigSource_GRPC},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := ADSBootstrap(Node{ID: "gw-1", Cluster: "airlock"}, "airlock.example:18000", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			out, err := YAML(b)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.file, out)
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
	if app.GetHeader().GetKey() != GrantHeader || app.GetHeader().GetValue() != NoGrant || app.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
		t.Errorf("early header mutation must overwrite %s with %q: %v", GrantHeader, NoGrant, app)
	}
	sr := hcm.GetScopedRoutes()
	if got := sr.GetScopeKeyBuilder().GetFragments()[0].GetHeaderValueExtractor().GetName(); got != GrantHeader {
		t.Errorf("scope key header = %q", got)
	}
	if sr.GetScopedRds().GetScopedRdsConfigSource().GetAds() == nil {
		t.Error("scopes must come over ADS")
	}
	authz := &extauthzv3.ExtAuthz{}
	if err := hcm.HttpFilters[0].GetTypedConfig().UnmarshalTo(authz); err != nil {
		t.Fatal(err)
	}
	if !authz.ClearRouteCache || authz.GetDisallowedHeaders().GetPatterns()[0].GetExact() != GrantHeader {
		t.Errorf("ext_authz must clear the route cache and not be shown %s: %v", GrantHeader, authz)
	}
	m := hcm.GetLocalReplyConfig().GetMappers()[0]
	and := m.GetFilter().GetAndFilter().GetFilters()
	if len(and) != 2 || !cmp.Equal(and[0].GetResponseFlagFilter().GetFlags(), []string{"NR"}) ||
		and[1].GetHeaderFilter().GetHeader().GetName() != GrantHeader || m.GetStatusCode().GetValue() != 403 {
		t.Errorf("local reply mapper: %v", m)
	}
	if d.BaseScope.GetKey().GetFragments()[0].GetStringKey() != NoGrant {
		t.Error("the base scope must be keyed by NoGrant")
	}
	if !strings.Contains(strings.Join(d.BaseScope.GetRouteConfiguration().GetRequestHeadersToRemove(), ","), GrantHeader) {
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
