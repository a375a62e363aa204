package envoy

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/airlock-mcp/airlock/internal/wire"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestGrantScopeDeterministic(t *testing.T) {
	m := loadModel(t, "airlock.yaml")
	g := Grant{ID: "gr_01HZX:7f", Target: "github", Tool: "create_issue", Expiry: t0.Add(15*time.Minute + 1500*time.Microsecond)}
	scope, err := m.GrantScope(g, t0)
	if err != nil {
		t.Fatal(err)
	}
	// Same input, same bytes, on the wire too.
	again, _ := m.GrantScope(g, t0)
	a, _ := proto.MarshalOptions{Deterministic: true}.Marshal(scope)
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(again)
	if !bytes.Equal(a, b) {
		t.Error("grant scope rendering is not deterministic")
	}
}

// TestGrantScopeShape pins what the issue asks of a grant's route.
func TestGrantScopeShape(t *testing.T) {
	m := loadModel(t, "airlock.yaml")
	scope, err := m.GrantScope(Grant{ID: "g1", Target: "everything", Expiry: t0.Add(90 * time.Second)}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := scope.GetKey().GetFragments()[0].GetStringKey(); got != "g1" {
		t.Errorf("scope key %q, want the grant id", got)
	}
	r := scope.GetRouteConfiguration().GetVirtualHosts()[0].GetRoutes()[0]
	if r.GetMatch().GetPath() != "/mcp/everything" {
		t.Errorf("grant route is not exactly the target's MCP endpoint: %v", r.GetMatch())
	}
	if h := r.GetRequestHeadersToAdd(); len(h) != 1 || h[0].GetHeader().GetKey() != "accept-encoding" || h[0].GetHeader().GetValue() != "identity" {
		t.Errorf("grant route must force accept-encoding: identity, got %v", h)
	}
	h := r.GetMatch().GetHeaders()[0]
	if h.GetName() != wire.HeaderGrant || h.GetStringMatch().GetExact() != "g1" {
		t.Errorf("grant route must match the grant header exactly: %v", h)
	}
	if got := r.GetRoute().GetTimeout().AsDuration(); got != 90*time.Second {
		t.Errorf("route timeout %v, want the 90s left on the grant", got)
	}
	if r.GetRoute().GetCluster() != "mcp_everything" || r.GetRoute().GetPrefixRewrite() != "/mcp" {
		t.Errorf("grant route action: %v", r.GetRoute())
	}
	md := r.GetMetadata().GetFilterMetadata()[wire.RouteNamespace].AsMap()
	if diff := cmp.Diff(map[string]any{"target": "everything", "grant_id": "g1", "expiry": "2026-03-01T12:01:30Z"}, md); diff != "" {
		t.Errorf("route metadata (-want +got):\n%s", diff)
	}
	if !strings.Contains(r.GetTypedPerFilterConfig()[ExtAuthzFilter].String(), "g1") {
		t.Error("ext_authz context_extensions must carry the grant id")
	}
	// A scope must load even when it reaches Envoy before its cluster does
	// (a new target): Envoy's default for inline scopes is to validate.
	if v := scope.GetRouteConfiguration().GetValidateClusters(); v == nil || v.GetValue() {
		t.Errorf("grant scope validate_clusters = %v, want false", v)
	}
	dyn, err := m.Dynamic()
	if err != nil {
		t.Fatal(err)
	}
	if v := dyn.BaseScope.GetRouteConfiguration().GetValidateClusters(); v == nil || v.GetValue() {
		t.Errorf("base scope validate_clusters = %v, want false", v)
	}
	deny := scope.GetRouteConfiguration().GetVirtualHosts()[0].GetRoutes()[1]
	if deny.GetDirectResponse().GetStatus() != 403 {
		t.Errorf("a grant scope must refuse paths its grant does not open: %v", deny)
	}
}

func TestGrantScopeRejects(t *testing.T) {
	m := loadModel(t, "airlock.yaml")
	for _, tc := range []struct {
		name string
		g    Grant
		want string
	}{
		{"unknown target", Grant{ID: "g", Target: "nope", Expiry: t0.Add(time.Hour)}, `target "nope" is not configured`},
		{"expired", Grant{ID: "g", Target: "github", Expiry: t0}, "expired"},
		{"under a millisecond left", Grant{ID: "g", Target: "github", Expiry: t0.Add(999 * time.Microsecond)}, "expired"},
		{"empty id", Grant{Target: "github", Expiry: t0.Add(time.Hour)}, "1 to 128"},
		{"reserved id", Grant{ID: wire.NoGrant, Target: "github", Expiry: t0.Add(time.Hour)}, "reserved"},
		{"bad character", Grant{ID: "a/b", Target: "github", Expiry: t0.Add(time.Hour)}, `character '/'`},
		{"header injection", Grant{ID: "a\r\nx: y", Target: "github", Expiry: t0.Add(time.Hour)}, "not allowed"},
		{"too long", Grant{ID: strings.Repeat("a", 129), Target: "github", Expiry: t0.Add(time.Hour)}, "1 to 128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.GrantScope(tc.g, t0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if tc.want == "expired" && !errors.Is(err, ErrExpired) {
				t.Error("an expired grant must wrap ErrExpired")
			}
		})
	}
}

// FuzzGrantScope: every id ValidateGrantID accepts renders a scope that
// passes Envoy's validation and is keyed by exactly that id; every id it
// refuses renders nothing.
func FuzzGrantScope(f *testing.F) {
	for _, s := range []string{"g1", "-", "", "gr_01HZX:7f", "a b", "é", "a\x00b", strings.Repeat("z", 128)} {
		f.Add(s)
	}
	m := loadModel(f, "airlock.yaml")
	f.Fuzz(func(t *testing.T, id string) {
		scope, err := m.GrantScope(Grant{ID: id, Target: "github", Expiry: t0.Add(time.Minute)}, t0)
		if ValidateGrantID(id) != nil {
			if err == nil {
				t.Fatalf("id %q was refused by ValidateGrantID but rendered", id)
			}
			return
		}
		if err != nil {
			t.Fatalf("id %q: %v", id, err)
		}
		if err := ValidateDeep(scope); err != nil {
			t.Fatalf("id %q: %v", id, err)
		}
		if scope.GetKey().GetFragments()[0].GetStringKey() != id || scope.GetName() != ScopeName(id) {
			t.Fatalf("id %q: scope %q keyed %v", id, scope.GetName(), scope.GetKey())
		}
	})
}

// BenchmarkGrantScope is the rendering of one grant's scope.
func BenchmarkGrantScope(b *testing.B) {
	m := loadModel(b, "airlock.yaml")
	g := Grant{ID: "gr_01HZX7f", Target: "github", Tool: "create_issue", Expiry: t0.Add(time.Hour)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.GrantScope(g, t0); err != nil {
			b.Fatal(err)
		}
	}
}
