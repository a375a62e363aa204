package xds

import (
	"fmt"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/test/envoydriver"
)

// inject publishes a scope as if it were a grant's, bypassing translation.
func (s *Server) inject(id string, scope *routev3.ScopedRouteConfiguration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants[id] = Grant{ID: id, Target: "github", Expiry: time.Now().Add(time.Hour)}
	s.publish(map[string]types.Resource{envoy.ScopeName(id): scope}, nil)
}

// TestNACK sends a resource Envoy must reject: the client NACKs it, the
// server logs the resource and Envoy's error and counts it, the previous
// configuration keeps serving, and the rejected version is not resent.
func TestNACK(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(fmt.Sprintf("delta=%v", delta), func(t *testing.T) {
			g := startGateway(t, delta)
			// A scope without a key fails ScopedRouteConfiguration validation
			// ("Key: value is required"), as in Envoy's MessageUtil::validate.
			bad := &routev3.ScopedRouteConfiguration{Name: envoy.ScopeName("bad"), RouteConfiguration: &routev3.RouteConfiguration{Name: "bad"}}
			g.srv.inject("bad", bad)
			r := g.waitResponse(t, "the NACK", func(r envoydriver.ADSResponse) bool { return r.Err != nil })
			if !strings.Contains(r.Err.Error(), "Key") {
				t.Errorf("NACK error %q does not say what was wrong", r.Err)
			}
			// The server sees the NACK when it reads the client's next request.
			waitFor(t, "the server to count the NACK", func() bool {
				return value(g.srv.metrics.nacks.WithLabelValues(resource.ScopedRouteType)) == 1 && strings.Contains(g.logs.String(), "xDS NACK")
			})
			logs := g.logs.String()
			if !strings.Contains(logs, "xDS NACK") || !strings.Contains(logs, envoy.ScopeName("bad")) || !strings.Contains(logs, "value is required") {
				t.Errorf("NACK log lacks the resource or Envoy's error:\n%s", logs)
			}
			// The previous configuration is still in force.
			if code, _ := g.call(t, "/mcp/github", nil); code != 200 {
				t.Fatalf("after NACK: %d", code)
			}
			// The next response is the next change, not a resend of the rejected one.
			if err := g.srv.RemoveGrant("bad"); err != nil {
				t.Fatal(err)
			}
			if err := g.srv.UpsertGrant(Grant{ID: "g-2", Target: "github", Expiry: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			next := g.waitResponse(t, "the next scoped routes response", func(r envoydriver.ADSResponse) bool {
				return r.TypeURL == resource.ScopedRouteType
			})
			if next.Err != nil {
				t.Fatalf("the rejected version was resent: %v", next.Err)
			}
			g.waitResponse(t, "grant g-2", scopeChange(envoy.ScopeName("g-2"), false))
			if code, _ := g.call(t, "/mcp/github", map[string]string{"x-test-grant": "g-2"}); code != 200 {
				t.Errorf("granted call after recovery: %d", code)
			}
			if got := value(g.srv.metrics.nacks.WithLabelValues(resource.ScopedRouteType)); got != 1 {
				t.Errorf("airlock_xds_nacks_total = %v after recovery, want 1", got)
			}
			mode := "sotw"
			if delta {
				mode = "delta"
			}
			if got := value(g.srv.metrics.streams.WithLabelValues(mode)); got != 1 {
				t.Errorf("airlock_xds_connected_streams{mode=%s} = %v, want 1", mode, got)
			}
			if got := value(g.srv.metrics.pushes.WithLabelValues(resource.ScopedRouteType, mode)); got < 3 {
				t.Errorf("airlock_xds_pushes_total = %v, want at least 3", got)
			}
			// Per node: the NACK, the ACKs, the last push, the node itself.
			scoped := map[string]string{"node": "gw-1", "type": "scoped_routes"}
			waitFor(t, "the node's series to show the recovery", func() bool {
				return gathered(t, g.reg, "airlock_xds_node_synced", scoped) == 1
			})
			for _, c := range []struct {
				name   string
				labels map[string]string
				check  func(float64) bool
				want   string
			}{
				{"airlock_xds_node_nacks_total", scoped, func(v float64) bool { return v == 1 }, "1"},
				{"airlock_xds_node_acks_total", scoped, func(v float64) bool { return v >= 1 }, ">= 1"},
				{"airlock_xds_node_acks_total", map[string]string{"node": "gw-1", "type": "listeners"}, func(v float64) bool { return v >= 1 }, ">= 1"},
				{"airlock_xds_node_last_push_timestamp_seconds", scoped, func(v float64) bool { return v > float64(time.Now().Add(-time.Hour).Unix()) }, "recent"},
				{"airlock_xds_node_info", map[string]string{"node": "gw-1", "cluster": "airlock", "mode": mode}, func(v float64) bool { return v == 1 }, "1"},
				{"airlock_xds_node_behind", scoped, func(v float64) bool { return v == 0 }, "0"},
			} {
				if v := gathered(t, g.reg, c.name, c.labels); !c.check(v) {
					t.Errorf("%s%v = %v, want %s", c.name, c.labels, v, c.want)
				}
			}
			if problems, err := testutil.GatherAndLint(g.reg); err != nil || len(problems) > 0 {
				t.Errorf("promlint: %v %v", problems, err)
			}
			// A node that leaves is gone from the next scrape.
			g.ads.Close()
			waitFor(t, "the node's series to go", func() bool {
				return gathered(t, g.reg, "airlock_xds_node_info", map[string]string{"node": "gw-1"}) == -1
			})
		})
	}
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// gathered is the value of the series of family name whose labels
// include labels, scraped from reg; -1 when there is none.
func gathered(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
			return -1
		}
	}
	return -1
}

// waitFor polls cond until it holds, failing after testTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
