package xds

import (
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/test/envoydriver"
)

// TestADSBootstrapDrivesTheDataPath: what `airlock envoy bootstrap --ads`
// prints, read back as Envoy reads its bootstrap file, is all the data
// path needs: node, the ADS cluster and the API type; everything else
// arrives over ADS, grant routes included.
func TestADSBootstrapDrivesTheDataPath(t *testing.T) {
	for _, sotw := range []bool{false, true} {
		t.Run(map[bool]string{false: "delta", true: "sotw"}[sotw], func(t *testing.T) {
			g := startGatewayWith(t, func(addr string, opts envoydriver.ADSOptions) (*envoydriver.ADS, error) {
				b, err := envoy.ADSBootstrap(envoy.Node{ID: "gw-boot", Cluster: "airlock"}, addr, envoy.ADSOptions{SotW: sotw})
				if err != nil {
					return nil, err
				}
				y, err := envoy.YAML(b)
				if err != nil {
					return nil, err
				}
				parsed, err := envoy.ParseBootstrap(y)
				if err != nil {
					return nil, err
				}
				return envoydriver.ConnectBootstrap(parsed, opts)
			})
			if code, _ := g.call(t, "/mcp/github", nil); code != 200 {
				t.Fatalf("base route: %d", code)
			}
			if err := g.srv.UpsertGrant(Grant{ID: "boot-1", Target: "github", Expiry: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			g.waitResponse(t, "grant route", scopeChange(envoy.ScopeName("boot-1"), false))
			if code, _ := g.call(t, "/mcp/github", map[string]string{"x-test-grant": "boot-1"}); code != 200 || g.up.lastGrant() != "boot-1" {
				t.Fatalf("granted call: %d via %q", code, g.up.lastGrant())
			}
			g.srv.nodesMu.Lock()
			_, ok := g.srv.nodeRefs["gw-boot"]
			g.srv.nodesMu.Unlock()
			if !ok {
				t.Error("the node id of the bootstrap did not reach the server")
			}
			mode := map[bool]string{false: "delta", true: "sotw"}[sotw]
			if value(g.srv.metrics.streams.WithLabelValues(mode)) != 1 {
				t.Errorf("the bootstrap's api_type did not select %s", mode)
			}
		})
	}
}
