package envoy

import (
	"testing"

	"github.com/airlock-mcp/airlock/internal/config"
)

// The listener's buffer limit is each stream's, both ways (bufferLimit):
// it must hold a whole request and a whole response body up to their
// limits, never below Envoy's default.
func TestBufferLimitHoldsBothBodies(t *testing.T) {
	for _, tc := range []struct {
		name      string
		req, resp int
		want      uint32
	}{
		{"defaults: the response limit", 1 << 20, 8 << 20, 8 << 20},
		{"request larger", 16 << 20, 8 << 20, 16 << 20},
		{"both small: Envoy's default", 64 << 10, 128 << 10, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loadConfig(t)
			cfg.Limits.MaxRequestBytes, cfg.Limits.MaxResponseBytes, cfg.Masking.MaxBodyBytes = tc.req, tc.resp, tc.resp
			for _, ads := range []bool{false, true} {
				var got uint32
				if ads {
					d, err := BuildDynamic(cfg, Bound{})
					if err != nil {
						t.Fatal(err)
					}
					got = d.Listener.GetPerConnectionBufferLimitBytes().GetValue()
				} else {
					r, err := Build(cfg, Bound{})
					if err != nil {
						t.Fatal(err)
					}
					got = r.Listener.GetPerConnectionBufferLimitBytes().GetValue()
				}
				if got != tc.want {
					t.Errorf("ads=%v: per_connection_buffer_limit_bytes %d, want %d", ads, got, tc.want)
				}
			}
		})
	}
}

// Every generated cluster, and the bootstrap's ADS cluster, has a default-
// priority circuit breaker sized from the limits, with remaining_* exported.
func TestEveryClusterHasBreakers(t *testing.T) {
	cfg := loadConfig(t)
	cfg.Limits.MaxHeldCalls, cfg.Limits.MaxStreams = 100, 5000
	r, err := Build(cfg, Bound{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint32{ClusterAuthz: 100 + config.AuthzQuickChecks, ClusterProc: 5000, ClusterHTTP: 5000}
	seen := map[string]bool{}
	for _, c := range r.Clusters {
		n, ok := want[c.Name]
		if !ok && len(c.Name) > len(TargetClusterPref) && c.Name[:len(TargetClusterPref)] == TargetClusterPref {
			n, ok = 5000, true
		}
		if !ok {
			t.Errorf("cluster %s: no expected breaker size", c.Name)
			continue
		}
		seen[c.Name] = true
		th := c.GetCircuitBreakers().GetThresholds()
		if len(th) != 1 {
			t.Fatalf("cluster %s: %d thresholds, want 1", c.Name, len(th))
		}
		b := th[0]
		if b.GetMaxRequests().GetValue() != n || b.GetMaxPendingRequests().GetValue() != n || b.GetMaxConnections().GetValue() != n {
			t.Errorf("cluster %s: breaker %v, want %d requests, pending and connections", c.Name, b, n)
		}
		if b.GetMaxRetries().GetValue() != envoyDefaultRetries || !b.GetTrackRemaining() {
			t.Errorf("cluster %s: retries %d track_remaining %v", c.Name, b.GetMaxRetries().GetValue(), b.GetTrackRemaining())
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("no cluster %s rendered", name)
		}
	}
	if len(seen) <= len(want) {
		t.Error("no target cluster checked")
	}
	b, err := ADSBootstrap(Node{ID: "n", Cluster: "c"}, "127.0.0.1:18000", ADSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	th := b.GetStaticResources().GetClusters()[0].GetCircuitBreakers().GetThresholds()
	if len(th) != 1 || th[0].GetMaxRequests().GetValue() != envoyDefaultBreaker || !th[0].GetTrackRemaining() {
		t.Errorf("ADS cluster breaker %v", th)
	}
}
