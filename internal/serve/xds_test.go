package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/grants/grantstest"
	"github.com/airlock-mcp/airlock/xds"
)

// firstScopes connects a delta ADS client to addr, sending initial
// versions, and returns its first scoped-routes response.
func firstScopes(t *testing.T, addr string, initial map[string]string) *discovery.DeltaDiscoveryResponse {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&discovery.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "gw-1"}, TypeUrl: resource.ScopedRouteType, InitialResourceVersions: initial}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestXDSServesLoadedGrants: Start loads the live grants before xDS
// serves, so the first answer to an Envoy — before and after a restart
// on the same grant store — holds every grant's scope and removes none;
// the xDS status is on the HTTP listener.
func TestXDSServesLoadedGrants(t *testing.T) {
	const n = 2000
	cfg := testConfig(t, `  {authz: "127.0.0.1:0", proc: "", xds: "127.0.0.1:0", http: "127.0.0.1:0"}`, "")
	grantstest.WriteLive(t, cfg.Grants.Dir, n, "github", "https://example.okta.com/oauth2/default")

	g, err := Start(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := firstScopes(t, g.XDSAddr.String(), nil)
	versions := map[string]string{}
	for _, res := range r.GetResources() {
		versions[res.GetName()] = res.GetVersion()
	}
	if len(versions) != n+1 {
		t.Fatalf("first response right after Start holds %d scopes, want %d grants and the base scope", len(versions), n)
	}

	resp, err := http.Get("http://" + g.HTTPAddr.String() + xds.StatusPath)
	if err != nil {
		t.Fatal(err)
	}
	var status xds.Status
	err = json.NewDecoder(resp.Body).Decode(&status)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || status.GrantRoutes != n || status.MinEnvoyVersion != xds.MinEnvoyVersion {
		t.Fatalf("GET %s: %d %+v (%v)", xds.StatusPath, resp.StatusCode, status, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.Stop(ctx)
	cfg.Listen.XDS = g.XDSAddr.String() // the same port, as a restarted airlock
	g2 := start(t, cfg)
	r = firstScopes(t, g2.XDSAddr.String(), versions)
	for _, name := range r.GetRemovedResources() {
		t.Errorf("after the restart the reconnecting Envoy was told to remove %s", name)
	}
	if _, ok := versions[envoy.ScopeName("gr_00042")]; !ok {
		t.Fatalf("grant gr_00042 had no scope")
	}
}
