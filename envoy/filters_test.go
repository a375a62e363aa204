package envoy

import (
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// TestFilterTableDrivesChainAndRoutes: the connection manager's chain
// (static and ADS), the disables on routes without MCP traffic and the
// per-route config of target routes all follow the one table, with and
// without ext_proc.
func TestFilterTableDrivesChainAndRoutes(t *testing.T) {
	for _, tc := range []struct {
		config string
		chain  []string
	}{
		{"airlock.yaml", []string{ExtAuthzFilter, ExtProcFilter, RouterFilter}},
		{"minimal.yaml", []string{ExtAuthzFilter, RouterFilter}},
	} {
		t.Run(tc.config, func(t *testing.T) {
			m := loadModel(t, tc.config)
			var off, onTarget []string
			for f := range m.filters() {
				if f.off != nil {
					off = append(off, f.name)
				}
				if f.target != nil {
					onTarget = append(onTarget, f.name)
				}
			}
			for _, ads := range []bool{false, true} {
				var got []string
				for _, f := range m.connectionManager(ads).GetHttpFilters() {
					got = append(got, f.GetName())
				}
				if diff := cmp.Diff(tc.chain, got); diff != "" {
					t.Errorf("ads=%v: chain (-want +got):\n%s", ads, diff)
				}
			}
			for _, r := range m.routes().GetVirtualHosts()[0].GetRoutes() {
				want := off
				if r.GetMetadata().GetFilterMetadata()[wire.RouteNamespace] != nil {
					want = onTarget
				}
				got := slices.Sorted(maps.Keys(r.GetTypedPerFilterConfig()))
				if diff := cmp.Diff(slices.Sorted(slices.Values(want)), got); diff != "" {
					t.Errorf("route %s: per-filter config (-want +got):\n%s", r.GetName(), diff)
				}
			}
		})
	}
}
