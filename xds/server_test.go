package xds

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/test/envoydriver"
)

func scopesResponse(r envoydriver.ADSResponse) bool { return r.TypeURL == resource.ScopedRouteType }

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// TestSetGrantsSendsTheDifference: a resync sends only what changed, one
// resource per changed grant (delta).
func TestSetGrantsSendsTheDifference(t *testing.T) {
	g := startGateway(t, true)
	exp := time.Now().Add(time.Hour)
	if err := g.srv.SetGrants([]Grant{{ID: "a", Target: "github", Expiry: exp}, {ID: "b", Target: "github", Expiry: exp}}); err != nil {
		t.Fatal(err)
	}
	r := g.waitResponse(t, "first resync", scopeChange("grant/a", false))
	if diff := cmp.Diff([]string{"grant/a", "grant/b"}, sorted(r.Updated)); diff != "" {
		t.Errorf("first resync (-want +got):\n%s", diff)
	}
	err := g.srv.SetGrants([]Grant{
		{ID: "b", Target: "github", Expiry: exp},                        // unchanged
		{ID: "c", Target: "everything", Expiry: exp},                    // new
		{ID: "d", Target: "nope", Expiry: exp},                          // unroutable
		{ID: "e", Target: "github", Expiry: time.Now().Add(-time.Hour)}, // expired
	})
	if err == nil || !strings.Contains(err.Error(), `target "nope"`) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("SetGrants error %v must report each grant it could not route", err)
	}
	r = g.waitResponse(t, "second resync", scopeChange("grant/c", false))
	if diff := cmp.Diff([]string{"grant/c"}, r.Updated); diff != "" {
		t.Errorf("second resync updated (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"grant/a"}, r.Removed); diff != "" {
		t.Errorf("second resync removed (-want +got):\n%s", diff)
	}
	var ids []string
	for _, gr := range g.srv.Grants() {
		ids = append(ids, gr.ID)
	}
	if diff := cmp.Diff([]string{"b", "c"}, ids); diff != "" {
		t.Errorf("Grants (-want +got):\n%s", diff)
	}
	if got := value(g.srv.metrics.grantRoutes); got != 2 {
		t.Errorf("airlock_xds_grant_routes = %v, want 2", got)
	}
	// Re-issuing an unchanged grant sends nothing; the next response is
	// the next real change.
	if err := g.srv.UpsertGrant(Grant{ID: "b", Target: "github", Expiry: exp}); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.RemoveGrant("c"); err != nil {
		t.Fatal(err)
	}
	r = g.waitResponse(t, "the removal", func(r envoydriver.ADSResponse) bool {
		return scopesResponse(r) && (len(r.Removed) > 0 || contains(r.Updated, "grant/b"))
	})
	if len(r.Updated) != 0 || !cmp.Equal(r.Removed, []string{"grant/c"}) {
		t.Errorf("an unchanged upsert was sent: %+v", r)
	}
	if err := g.srv.RemoveGrant("bad/id"); err == nil {
		t.Error("RemoveGrant accepted an id no grant can have")
	}
	if err := g.srv.RemoveGrant("never-issued"); err != nil {
		t.Errorf("removing an unknown grant: %v", err)
	}
}

// TestExpiryWithdrawsTheRoute: a grant's route goes away at its expiry
// even if nobody removes it.
func TestExpiryWithdrawsTheRoute(t *testing.T) {
	g := startGateway(t, true)
	if err := g.srv.UpsertGrant(Grant{ID: "short", Target: "github", Expiry: time.Now().Add(300 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.UpsertGrant(Grant{ID: "long", Target: "github", Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	g.waitResponse(t, "the short grant's route", scopeChange(envoy.ScopeName("short"), false))
	g.waitResponse(t, "expiry of the short grant", scopeChange(envoy.ScopeName("short"), true))
	if code, _ := g.call(t, "/mcp/github", map[string]string{"x-test-grant": "short"}); code != 403 {
		t.Errorf("call on an expired grant: %d, want 403", code)
	}
	if code, _ := g.call(t, "/mcp/github", map[string]string{"x-test-grant": "long"}); code != 200 {
		t.Errorf("call on a live grant: %d, want 200", code)
	}
	if !strings.Contains(g.logs.String(), "grant expired, route withdrawn") {
		t.Error("expiry is not logged")
	}
	// An expired grant is refused and, if it had a route, loses it.
	err := g.srv.UpsertGrant(Grant{ID: "long", Target: "github", Expiry: time.Now().Add(-time.Second)})
	if err == nil {
		t.Fatal("an expired grant was accepted")
	}
	g.waitResponse(t, "the expired re-issue", scopeChange(envoy.ScopeName("long"), true))
}

// TestSetModelReroutes: a configuration change reaches every node, and a
// grant whose target is gone loses its route.
func TestSetModelReroutes(t *testing.T) {
	g := startGateway(t, true)
	exp := time.Now().Add(time.Hour)
	for _, gr := range []Grant{{ID: "gh", Target: "github", Expiry: exp}, {ID: "ev", Target: "everything", Expiry: exp}} {
		if err := g.srv.UpsertGrant(gr); err != nil {
			t.Fatal(err)
		}
	}
	g.waitResponse(t, "grant ev", scopeChange(envoy.ScopeName("ev"), false))
	cfg := testConfig(t, "127.0.0.1:1", g.up.srv.Listener.Addr().String())
	cfg.Targets = cfg.Targets[:1] // everything is gone
	// Keep ext_authz where it is.
	cfg.Listen.Authz = g.srv.model.Services.Authz
	if err := g.srv.SetModel(testModel(t, cfg)); err != nil {
		t.Fatal(err)
	}
	g.waitResponse(t, "clusters without everything", func(r envoydriver.ADSResponse) bool {
		return r.TypeURL == resource.ClusterType && cmp.Equal(r.Removed, []string{"mcp_everything"})
	})
	g.waitResponse(t, "grant ev withdrawn", scopeChange(envoy.ScopeName("ev"), true))
	if code, _ := g.call(t, "/mcp/github", map[string]string{"x-test-grant": "gh"}); code != 200 {
		t.Errorf("grant of a remaining target after reload: %d", code)
	}
	if code, _ := g.call(t, "/mcp/everything", nil); code != 404 {
		t.Errorf("removed target after reload: %d, want 404", code)
	}
}

// TestNodes: every node of a fleet gets the grant routes; a node's
// snapshot is dropped with its last stream; a stream without a node id is
// refused.
func TestNodes(t *testing.T) {
	g := startGateway(t, true)
	second, err := envoydriver.ConnectADS(g.xds, envoydriver.ADSOptions{Node: &corev3.Node{Id: "gw-2"}, NoListener: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := second.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	g.srv.nodesMu.Lock()
	nodes := len(g.srv.nodeRefs)
	g.srv.nodesMu.Unlock()
	if nodes != 2 {
		t.Fatalf("%d nodes hold snapshots, want 2", nodes)
	}
	second.Close()
	waitFor(t, "gw-2's snapshot to be dropped", func() bool {
		g.srv.nodesMu.Lock()
		defer g.srv.nodesMu.Unlock()
		_, ok := g.srv.nodeRefs["gw-2"]
		return !ok && len(g.srv.nodeRefs) == 1
	})
	if _, err := g.srv.nodes.GetSnapshot("gw-2"); err == nil {
		t.Error("a departed node's snapshot is still held")
	}

	conn, err := grpc.NewClient("passthrough:///"+g.xds, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resource.ListenerType}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err == nil || !strings.Contains(err.Error(), "node.id") {
		t.Errorf("a stream without a node id got %v, want it refused", err)
	}
}
