package xds

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func loadTranslator(t testing.TB) *translator {
	t.Helper()
	cfg, err := config.Load("testdata/airlock.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := newTranslator(cfg, envoy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./xds -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the rendered output; run go test ./xds -update and review the diff", path)
	}
}

func TestGrantScopeGolden(t *testing.T) {
	tr := loadTranslator(t)
	g := Grant{ID: "gr_01HZX:7f", Target: "github", Tool: "create_issue", Expiry: t0.Add(15*time.Minute + 1500*time.Microsecond)}
	scope, err := tr.grantScope(g, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := envoy.ValidateDeep(scope); err != nil {
		t.Fatal(err)
	}
	out, err := envoy.YAML(scope)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "grant-scope.yaml", out)

	// Same input, same bytes, on the wire too.
	again, _ := tr.grantScope(g, t0)
	a, _ := proto.MarshalOptions{Deterministic: true}.Marshal(scope)
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(again)
	if !bytes.Equal(a, b) {
		t.Error("grant scope rendering is not deterministic")
	}
}

// TestGrantScopeShape pins what the issue asks of a grant's route.
func TestGrantScopeShape(t *testing.T) {
	tr := loadTranslator(t)
	scope, err := tr.grantScope(Grant{ID: "g1", Target: "everything", Expiry: t0.Add(90 * time.Second)}, t0)
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
	if h.GetName() != envoy.GrantHeader || h.GetStringMatch().GetExact() != "g1" {
		t.Errorf("grant route must match the grant header exactly: %v", h)
	}
	if got := r.GetRoute().GetTimeout().AsDuration(); got != 90*time.Second {
		t.Errorf("route timeout %v, want the 90s left on the grant", got)
	}
	if r.GetRoute().GetCluster() != "mcp_everything" || r.GetRoute().GetPrefixRewrite() != "/mcp" {
		t.Errorf("grant route action: %v", r.GetRoute())
	}
	md := r.GetMetadata().GetFilterMetadata()[MetadataNamespace].AsMap()
	if diff := cmp.Diff(map[string]any{"target": "everything", "grant_id": "g1", "expiry": "2026-03-01T12:01:30Z"}, md); diff != "" {
		t.Errorf("route metadata (-want +got):\n%s", diff)
	}
	if !strings.Contains(r.GetTypedPerFilterConfig()[envoy.ExtAuthzFilter].String(), "g1") {
		t.Error("ext_authz context_extensions must carry the grant id")
	}
	deny := scope.GetRouteConfiguration().GetVirtualHosts()[0].GetRoutes()[1]
	if deny.GetDirectResponse().GetStatus() != 403 {
		t.Errorf("a grant scope must refuse paths its grant does not open: %v", deny)
	}
}

func TestGrantScopeRejects(t *testing.T) {
	tr := loadTranslator(t)
	for _, tc := range []struct {
		name string
		g    Grant
		want string
	}{
		{"unknown target", Grant{ID: "g", Target: "nope", Expiry: t0.Add(time.Hour)}, `target "nope" is not configured`},
		{"expired", Grant{ID: "g", Target: "github", Expiry: t0}, "expired"},
		{"under a millisecond left", Grant{ID: "g", Target: "github", Expiry: t0.Add(999 * time.Microsecond)}, "expired"},
		{"empty id", Grant{Target: "github", Expiry: t0.Add(time.Hour)}, "1 to 128"},
		{"reserved id", Grant{ID: envoy.NoGrant, Target: "github", Expiry: t0.Add(time.Hour)}, "reserved"},
		{"bad character", Grant{ID: "a/b", Target: "github", Expiry: t0.Add(time.Hour)}, `character '/'`},
		{"header injection", Grant{ID: "a\r\nx: y", Target: "github", Expiry: t0.Add(time.Hour)}, "not allowed"},
		{"too long", Grant{ID: strings.Repeat("a", 129), Target: "github", Expiry: t0.Add(time.Hour)}, "1 to 128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tr.grantScope(tc.g, t0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if tc.want == "expired" && !errors.Is(err, ErrExpired) {
				t.Error("an expired grant must wrap ErrExpired")
			}
		})
	}
}

// FuzzGrantScope: every id validateID accepts renders a scope that passes
// Envoy's validation and is keyed by exactly that id; every id it refuses
// renders nothing.
func FuzzGrantScope(f *testing.F) {
	for _, s := range []string{"g1", "-", "", "gr_01HZX:7f", "a b", "é", "a\x00b", strings.Repeat("z", 128)} {
		f.Add(s)
	}
	tr := loadTranslator(f)
	f.Fuzz(func(t *testing.T, id string) {
		scope, err := tr.grantScope(Grant{ID: id, Target: "github", Expiry: t0.Add(time.Minute)}, t0)
		if validateID(id) != nil {
			if err == nil {
				t.Fatalf("id %q was refused by validateID but rendered", id)
			}
			return
		}
		if err != nil {
			t.Fatalf("id %q: %v", id, err)
		}
		if err := envoy.ValidateDeep(scope); err != nil {
			t.Fatalf("id %q: %v", id, err)
		}
		if scope.GetKey().GetFragments()[0].GetStringKey() != id || scope.GetName() != ScopeName(id) {
			t.Fatalf("id %q: scope %q keyed %v", id, scope.GetName(), scope.GetKey())
		}
	})
}

// BenchmarkGrantScope is the translation of one grant to its scope.
func BenchmarkGrantScope(b *testing.B) {
	tr := loadTranslator(b)
	g := Grant{ID: "gr_01HZX7f", Target: "github", Tool: "create_issue", Expiry: t0.Add(time.Hour)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.grantScope(g, t0); err != nil {
			b.Fatal(err)
		}
	}
}
