package envoy

import (
	"iter"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// httpFilter is one row of the HTTP filter table.
type httpFilter struct {
	name string
	// in reports whether the model's chain has the filter; nil: always.
	in func(m *Model) bool
	// config is the filter's typed_config; ads is true for the listener
	// served over ADS, false for the static one.
	config func(m *Model, ads bool) proto.Message
	// off turns the filter off on a route that carries no MCP traffic
	// (the HTTP service's routes, the 404); nil: it stays on there.
	off func() proto.Message
	// target is the filter's per-route config on a target's routes: its
	// base route (grant "") and each grant's route; nil: none.
	target func(t Target, grant string) proto.Message
}

// httpFilters is the HTTP filter chain, in order, and the one place to
// add a filter: a row here and the filter's own file. The chain of both
// listeners (static and ADS), the disables on routes that carry no MCP
// traffic and the per-route config of target and grant routes all derive
// from it. ext_proc (masking and capture) sits between ext_authz and the
// router, so it sees only calls ext_authz allowed.
var httpFilters = []httpFilter{
	{name: ExtAuthzFilter, config: extAuthzConfig, off: extAuthzOff, target: extAuthzTarget},
	{name: ExtProcFilter, in: hasExtProc, config: extProcConfig, off: extProcOff},
	{name: RouterFilter, config: routerConfig},
}

// filters are the rows of m's chain, in order.
func (m *Model) filters() iter.Seq[httpFilter] {
	return func(yield func(httpFilter) bool) {
		for _, f := range httpFilters {
			if (f.in == nil || f.in(m)) && !yield(f) {
				return
			}
		}
	}
}

// httpFilterChain is the connection manager's http_filters.
func (m *Model) httpFilterChain(ads bool) []*hcmv3.HttpFilter {
	var out []*hcmv3.HttpFilter
	for f := range m.filters() {
		out = append(out, &hcmv3.HttpFilter{Name: f.name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(f.config(m, ads))}})
	}
	return out
}

// notMCP turns airlock's filters off on a route that carries no MCP traffic.
func (m *Model) notMCP() map[string]*anypb.Any {
	out := map[string]*anypb.Any{}
	for f := range m.filters() {
		if f.off != nil {
			out[f.name] = mustAny(f.off())
		}
	}
	return out
}

// targetFilterConfig is the per-route config of t's base route (grant "")
// or of a grant's route.
func (m *Model) targetFilterConfig(t Target, grant string) map[string]*anypb.Any {
	out := map[string]*anypb.Any{}
	for f := range m.filters() {
		if f.target != nil {
			out[f.name] = mustAny(f.target(t, grant))
		}
	}
	return out
}
