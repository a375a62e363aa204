package envoydriver

import (
	"fmt"
	"sort"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// filterKind names the HTTP filters the driver implements.
type filterKind int

const (
	kindExtAuthz filterKind = iota + 1
	kindExtProc
	kindRouter
)

// perFilterConfig is one typed_per_filter_config entry for a filter at one
// level (route configuration, virtual host or route).
type perFilterConfig struct {
	// disabled comes from a config.route.v3.FilterConfig wrapper.
	// route_components.proto FilterConfig.disabled: "If true, the filter is
	// disabled in the route or virtual host and the config will be ignored".
	disabled bool
	authz    *extauthzv3.ExtAuthzPerRoute
	proc     *extprocv3.ExtProcPerRoute
}

// compilePerFilter unpacks a typed_per_filter_config map. Entries for names
// that are not filters of this HTTP connection manager are ignored (Envoy
// only consults them by filter name). where names the level for errors.
func compilePerFilter(m map[string]*anypb.Any, filters map[string]filterKind, where string) (map[string]*perFilterConfig, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]*perFilterConfig, len(m))
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		kind, ok := filters[name]
		if !ok {
			continue
		}
		pc, err := unpackPerFilter(m[name], kind)
		if err != nil {
			return nil, fmt.Errorf("%s typed_per_filter_config[%q]: %w", where, name, err)
		}
		out[name] = pc
	}
	return out, nil
}

func unpackPerFilter(a *anypb.Any, kind filterKind) (*perFilterConfig, error) {
	pc := &perFilterConfig{}
	if a.MessageIs((*routev3.FilterConfig)(nil)) {
		fc := &routev3.FilterConfig{}
		if err := a.UnmarshalTo(fc); err != nil {
			return nil, err
		}
		pc.disabled = fc.GetDisabled()
		if fc.GetConfig() == nil {
			return pc, nil
		}
		a = fc.GetConfig()
	}
	switch kind {
	case kindExtAuthz:
		pc.authz = &extauthzv3.ExtAuthzPerRoute{}
		if err := a.UnmarshalTo(pc.authz); err != nil {
			return nil, fmt.Errorf("want ExtAuthzPerRoute: %w", err)
		}
		if err := pc.authz.ValidateAll(); err != nil {
			return nil, err
		}
	case kindExtProc:
		pc.proc = &extprocv3.ExtProcPerRoute{}
		if err := a.UnmarshalTo(pc.proc); err != nil {
			return nil, fmt.Errorf("want ExtProcPerRoute: %w", err)
		}
		if err := pc.proc.ValidateAll(); err != nil {
			return nil, err
		}
		if err := checkExtProcPerRoute(pc.proc); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("the router filter takes no per-route config")
	}
	return pc, nil
}

// perFilterChain returns the per-filter configs for name from least to most
// specific (route configuration, virtual host, route), as Envoy's
// Http::Utility::getAllPerFilterConfig yields them for merging.
func (r *route) perFilterChain(name string) []*perFilterConfig {
	if r == nil {
		return nil
	}
	var out []*perFilterConfig
	for _, m := range []map[string]*perFilterConfig{r.vh.table.perFilter, r.vh.perFilter, r.perFilter} {
		if pc, ok := m[name]; ok {
			out = append(out, pc)
		}
	}
	return out
}

// filterDisabled follows PerFilterConfigs::disabled (source/common/router):
// the most specific level that configures the filter decides; a FilterConfig
// wrapper gives its disabled flag and any other config means enabled. ok is
// false when no level configures the filter.
func (r *route) filterDisabled(name string) (disabled, ok bool) {
	chain := r.perFilterChain(name)
	if len(chain) == 0 {
		return false, false
	}
	return chain[len(chain)-1].disabled, true
}
