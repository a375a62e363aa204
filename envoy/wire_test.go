package envoy

import (
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// TestRenderedCarriesTheWireKeys: what envoy/ renders carries the keys
// the other side of the wire reads (internal/wire): ext_authz learns a
// route's target (and grant) from its context_extensions, ext_proc is
// forwarded ext_authz's metadata namespace, and the ADS listener starts
// every request in the base scope. A key renamed in one place only fails
// here, not silently in production.
func TestRenderedCarriesTheWireKeys(t *testing.T) {
	m := loadModel(t, "airlock.yaml")
	res, err := m.Static()
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.Dynamic()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rc   *routev3.RouteConfiguration
		hcm  *hcmv3.HttpConnectionManager
	}{
		{"static", res.Routes, unpackHCM(t, res.Listener.FilterChains[0].Filters[0].GetTypedConfig())},
		{"ADS base scope", d.BaseScope.GetRouteConfiguration(), unpackHCM(t, d.Listener.FilterChains[0].Filters[0].GetTypedConfig())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]bool{}
			for _, r := range tc.rc.GetVirtualHosts()[0].GetRoutes() {
				name := r.GetMetadata().GetFilterMetadata()[wire.RouteNamespace].GetFields()[wire.RouteTarget].GetStringValue()
				if name == "" {
					continue
				}
				seen[name] = true
				ext := checkSettings(t, r)
				if diff := cmp.Diff(map[string]string{wire.ContextTarget: name}, ext); diff != "" {
					t.Errorf("route %s context_extensions (-want +got):\n%s", r.GetName(), diff)
				}
			}
			for _, tg := range m.Targets {
				if !seen[tg.Name] {
					t.Errorf("no route names target %s in %s.%s", tg.Name, wire.RouteNamespace, wire.RouteTarget)
				}
			}
			// Envoy stores ext_authz's dynamic metadata under the filter's
			// name: that is the namespace ext_proc is forwarded.
			var authzNamed bool
			var forwarded []string
			for _, f := range tc.hcm.GetHttpFilters() {
				authzNamed = authzNamed || f.GetName() == wire.AuthzNamespace && f.GetTypedConfig().MessageIs(&extauthzv3.ExtAuthz{})
				if f.GetName() != ExtProcFilter {
					continue
				}
				proc := &extprocv3.ExternalProcessor{}
				if err := f.GetTypedConfig().UnmarshalTo(proc); err != nil {
					t.Fatal(err)
				}
				forwarded = proc.GetMetadataOptions().GetForwardingNamespaces().GetUntyped()
			}
			if !authzNamed {
				t.Errorf("no ext_authz filter named %q", wire.AuthzNamespace)
			}
			if !cmp.Equal(forwarded, []string{wire.AuthzNamespace}) {
				t.Errorf("ext_proc is forwarded %v, want ext_authz's namespace %q", forwarded, wire.AuthzNamespace)
			}
		})
	}

	// The ADS listener forces wire.HeaderGrant to wire.NoGrant before routing.
	hcm := unpackHCM(t, d.Listener.FilterChains[0].Filters[0].GetTypedConfig())
	if len(hcm.GetEarlyHeaderMutationExtensions()) != 1 {
		t.Fatalf("early header mutations: %v", hcm.GetEarlyHeaderMutationExtensions())
	}
	ehm := &headermutationv3.HeaderMutation{}
	if err := hcm.GetEarlyHeaderMutationExtensions()[0].GetTypedConfig().UnmarshalTo(ehm); err != nil {
		t.Fatal(err)
	}
	app := ehm.GetMutations()[0].GetAppend()
	if app.GetHeader().GetKey() != wire.HeaderGrant || app.GetHeader().GetValue() != wire.NoGrant ||
		app.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
		t.Errorf("early header mutation must overwrite %s with %q: %v", wire.HeaderGrant, wire.NoGrant, app)
	}
	if got := d.BaseScope.GetKey().GetFragments()[0].GetStringKey(); got != wire.NoGrant {
		t.Errorf("base scope key %q, want %q", got, wire.NoGrant)
	}

	// A grant's route names its target and its grant.
	for _, tg := range m.Targets {
		scope, err := m.GrantScope(Grant{ID: "g-" + tg.Name, Target: tg.Name, Expiry: t0.Add(time.Hour)}, t0)
		if err != nil {
			t.Fatal(err)
		}
		r := scope.GetRouteConfiguration().GetVirtualHosts()[0].GetRoutes()[0]
		want := map[string]string{wire.ContextTarget: tg.Name, wire.ContextGrant: "g-" + tg.Name}
		if diff := cmp.Diff(want, checkSettings(t, r)); diff != "" {
			t.Errorf("grant route %s context_extensions (-want +got):\n%s", r.GetName(), diff)
		}
		if got := r.GetMetadata().GetFilterMetadata()[wire.RouteNamespace].GetFields()[wire.RouteTarget].GetStringValue(); got != tg.Name {
			t.Errorf("grant route %s metadata names target %q", r.GetName(), got)
		}
		if got := scope.GetKey().GetFragments()[0].GetStringKey(); got != "g-"+tg.Name {
			t.Errorf("grant scope key %q", got)
		}
	}
}

func unpackHCM(t *testing.T, a *anypb.Any) *hcmv3.HttpConnectionManager {
	t.Helper()
	hcm := &hcmv3.HttpConnectionManager{}
	if err := a.UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	return hcm
}

// checkSettings are the ext_authz context_extensions of a route.
func checkSettings(t *testing.T, r *routev3.Route) map[string]string {
	t.Helper()
	per := &extauthzv3.ExtAuthzPerRoute{}
	if err := r.GetTypedPerFilterConfig()[ExtAuthzFilter].UnmarshalTo(per); err != nil {
		t.Fatalf("route %s: %v", r.GetName(), err)
	}
	return per.GetCheckSettings().GetContextExtensions()
}
