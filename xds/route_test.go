package xds

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/wire"
)

// TestGrantRouteLifecycle is the per-grant route as Envoy sees it, over
// SotW and delta ADS: no grant → base route; grant issued → its route
// carries granted calls; revoked → Envoy's own 403; a client naming a
// grant itself gets nowhere.
func TestGrantRouteLifecycle(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(fmt.Sprintf("delta=%v", delta), func(t *testing.T) {
			g := startGateway(t, delta)

			// A call no grant allowed goes down the base route; the
			// routing sentinel does not reach the upstream.
			if code, body := g.call(t, "/mcp/github", nil); code != 200 || body != "upstream /mcp" {
				t.Fatalf("ungranted call: %d %q", code, body)
			}
			if got := g.up.lastGrant(); got != "" {
				t.Errorf("upstream saw x-airlock-grant %q on a base-route call", got)
			}

			// Before the grant exists, ext_authz naming it gets the route layer's 403.
			grant := map[string]string{"x-test-grant": "g-1"}
			if code, body := g.call(t, "/mcp/github", grant); code != 403 || body != envoy.NoGrantRouteBody {
				t.Fatalf("grant without route: %d %q", code, body)
			}

			// Approve: the grant's route appears and the granted call routes.
			if err := g.srv.UpsertGrant(Grant{ID: "g-1", Target: "github", Tool: "create_issue", Expiry: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			g.waitResponse(t, "grant g-1 route", scopeChange(envoy.ScopeName("g-1"), false))
			if code, body := g.call(t, "/mcp/github", grant); code != 200 || body != "upstream /mcp" {
				t.Fatalf("granted call: %d %q", code, body)
			}
			if got := g.up.lastGrant(); got != "g-1" {
				t.Errorf("upstream saw x-airlock-grant %q, want g-1", got)
			}
			// A grant opens exactly the target's MCP endpoint: a path below
			// it matches no route, so it never reaches ext_authz (which
			// would pick the grant) nor the upstream.
			seen := g.authz.count()
			for _, p := range []string{"/mcp/github/x", "/mcp/github/", "/mcp/github/admin/secrets"} {
				if code, body := g.call(t, p, grant); code != 404 || !strings.Contains(body, "no MCP target") {
					t.Errorf("granted call to %s: %d %q, want the base routes' 404", p, code, body)
				}
			}
			if g.authz.count() != seen {
				t.Error("a path below the target was shown to ext_authz")
			}
			// The grant opens its target only.
			if code, _ := g.call(t, "/mcp/everything", grant); code != 403 {
				t.Errorf("grant of github used on everything: %d, want 403", code)
			}

			// A client cannot choose a grant: its x-airlock-grant is replaced
			// before routing and never shown to ext_authz.
			if code, _ := g.call(t, "/mcp/github", map[string]string{wire.HeaderGrant: "g-1"}); code != 200 {
				t.Fatalf("forged header: %d", code)
			}
			if got := g.up.lastGrant(); got != "" {
				t.Errorf("a client-sent x-airlock-grant reached the upstream as %q", got)
			}
			if _, shown := g.authz.last()[wire.HeaderGrant]; shown {
				t.Error("ext_authz was shown x-airlock-grant")
			}

			// Revoke: the route disappears; the next granted call gets 403
			// from the route layer even though ext_authz still allows it.
			if err := g.srv.RemoveGrant("g-1"); err != nil {
				t.Fatal(err)
			}
			g.waitResponse(t, "grant g-1 removal", scopeChange(envoy.ScopeName("g-1"), true))
			if code, body := g.call(t, "/mcp/github", grant); code != 403 || body != envoy.NoGrantRouteBody {
				t.Fatalf("revoked grant: %d %q", code, body)
			}
			if code, _ := g.call(t, "/mcp/github", nil); code != 200 {
				t.Errorf("ungranted call after revoke: %d", code)
			}
		})
	}
}
