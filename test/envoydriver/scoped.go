package envoydriver

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// scopeTable is compiled scoped routing (http_connection_manager.proto
// ScopedRoutes, route/v3/scoped_route.proto): a key built from request
// headers selects one RouteConfiguration.
type scopeTable struct {
	fragments []fragmentBuilder
	byKey     map[string]*routeTable
	// srds names the SRDS subscription the scopes came from (the
	// ScopedRoutes name and key builder), "" for an inline
	// scoped_route_configurations_list. Envoy shares one SRDS provider
	// between connection managers with the same scoped_routes config
	// (ScopedRoutesConfigProviderManager) and updates its scopes in place;
	// inline scopes belong to their connection manager.
	srds string
}

// fragmentBuilder is ScopedRoutes.ScopeKeyBuilder.FragmentBuilder with a
// HeaderValueExtractor, following Envoy's scoped_config_impl.cc
// HeaderValueExtractorImpl::computeFragment.
type fragmentBuilder struct {
	name     string
	sep      string
	index    int
	useIndex bool
	kvSep    string
	kvKey    string
}

// fragment extracts one key fragment. ok is false for Envoy's null
// fragment: the header is absent, the index is past the elements, or no
// element has the key. "If the header appears multiple times only the
// first value is used" (HeaderValueExtractor.name).
func (b fragmentBuilder) fragment(h *headerMap) (string, bool) {
	v, ok := h.get(b.name)
	if !ok {
		return "", false
	}
	elements := []string{v}
	if b.sep != "" {
		elements = strings.Split(v, b.sep)
	}
	if b.useIndex {
		if b.index < len(elements) {
			return elements[b.index], true
		}
		return "", false
	}
	for _, e := range elements {
		k, val, _ := strings.Cut(e, b.kvSep)
		if k == b.kvKey {
			return val, true
		}
	}
	return "", false
}

// keyString joins fragments; a NUL cannot occur in a header value.
func keyString(fragments []string) string { return strings.Join(fragments, "\x00") }

// find follows ConnectionManagerImpl::ActiveStream::snapScopedRouteConfig:
// a null fragment makes a null key, and a null key or a key no scope has
// yields no route configuration (Router::NullConfigImpl), so every request
// gets "no route" (404, response flag NR). Envoy re-selects the scope
// whenever the route cache is cleared ("re-select scope as well in case
// the scope key header has been changed by a filter").
func (t *scopeTable) find(h *headerMap) *routeTable {
	if t == nil {
		return nil
	}
	parts := make([]string, len(t.fragments))
	for i, b := range t.fragments {
		f, ok := b.fragment(h)
		if !ok {
			return nil
		}
		parts[i] = f
	}
	return t.byKey[keyString(parts)]
}

// scopeCache keeps compiled scopes across updates, keyed by the
// ScopedRouteConfiguration message, so an update that changes one scope
// compiles one scope. Messages handed to New or Update must not be
// modified afterwards (the same rule holds for the other resources).
type scopeCache struct {
	mu      sync.Mutex
	filters string // the filter kinds the entries were compiled against
	m       map[*routev3.ScopedRouteConfiguration]*routeTable
}

func filterFingerprint(filters map[string]filterKind) string {
	var b strings.Builder
	for _, name := range sortedKeys(filters) {
		fmt.Fprintf(&b, "%s=%d;", name, filters[name])
	}
	return b.String()
}

func compileKeyBuilder(kb *hcmv3.ScopedRoutes_ScopeKeyBuilder) ([]fragmentBuilder, error) {
	var out []fragmentBuilder
	for i, f := range kb.GetFragments() {
		hv := f.GetHeaderValueExtractor()
		if hv == nil {
			return nil, fmt.Errorf("scope_key_builder.fragments[%d]: only header_value_extractor is supported", i)
		}
		b := fragmentBuilder{name: strings.ToLower(hv.GetName()), sep: hv.GetElementSeparator()}
		switch e := hv.GetExtractType().(type) {
		case *hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_Index:
			// HeaderValueExtractorImpl: "Index > 0 for empty string element separator."
			if e.Index != 0 && b.sep == "" {
				return nil, fmt.Errorf("scope_key_builder.fragments[%d]: index %d needs an element_separator", i, e.Index)
			}
			b.useIndex, b.index = true, int(e.Index)
		case *hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_Element:
			b.kvSep, b.kvKey = e.Element.GetSeparator(), e.Element.GetKey()
		default:
			return nil, fmt.Errorf("scope_key_builder.fragments[%d]: extract_type is not set", i)
		}
		out = append(out, b)
	}
	return out, nil
}

// compileScopes compiles the HCM's scoped routes: the inline
// scoped_route_configurations_list, or for scoped_rds the scopes of cfg.
// Each scope's RouteConfiguration is inline or named (cfg.Routes, as RDS).
// Like Envoy's SRDS it refuses two scopes with one key ("scope key
// conflict") and scopes loaded on demand (not supported here).
func compileScopes(sr *hcmv3.ScopedRoutes, cfg Config, filters map[string]filterKind, sc *scopeCache) (*scopeTable, error) {
	fb, err := compileKeyBuilder(sr.GetScopeKeyBuilder())
	if err != nil {
		return nil, fmt.Errorf("scoped_routes %q: %w", sr.GetName(), err)
	}
	scopes := cfg.Scopes
	if l := sr.GetScopedRouteConfigurationsList(); l != nil {
		scopes = l.GetScopedRouteConfigurations()
	}
	fp := filterFingerprint(filters)
	known := make(map[string]bool, len(cfg.Clusters))
	for _, c := range cfg.Clusters {
		known[c.GetName()] = true
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	old := sc.m
	if sc.filters != fp {
		old = nil
	}
	next := make(map[*routev3.ScopedRouteConfiguration]*routeTable, len(scopes))
	t := &scopeTable{fragments: fb, byKey: make(map[string]*routeTable, len(scopes))}
	if sr.GetScopedRds() != nil {
		t.srds = fmt.Sprintf("%s|%v", sr.GetName(), fb)
	}
	names := make(map[string]bool, len(scopes))
	owner := make(map[string]string, len(scopes))
	for _, s := range scopes {
		if names[s.GetName()] {
			return nil, fmt.Errorf("scoped route configuration %q is defined twice", s.GetName())
		}
		names[s.GetName()] = true
		// Only inline routes are cached: a named RouteConfiguration can
		// change under an unchanged scope.
		rt, ok := old[s]
		if !ok || s.GetRouteConfiguration() == nil {
			if rt, err = compileScope(s, cfg, filters, len(fb)); err != nil {
				return nil, err
			}
		}
		if rc := s.GetRouteConfiguration(); rc != nil {
			next[s] = rt
			if err := validateClusters(rc, rt, known); err != nil {
				return nil, fmt.Errorf("scoped route configuration %q: %w", s.GetName(), err)
			}
		}
		var parts []string
		for _, f := range s.GetKey().GetFragments() {
			parts = append(parts, f.GetStringKey())
		}
		k := keyString(parts)
		if first, dup := owner[k]; dup {
			return nil, fmt.Errorf("scope key conflict: scoped route configurations %q and %q have the same key", first, s.GetName())
		}
		owner[k] = s.GetName()
		t.byKey[k] = rt
	}
	sc.m, sc.filters = next, fp
	return t, nil
}

// compileScope compiles one ScopedRouteConfiguration's routes.
func compileScope(s *routev3.ScopedRouteConfiguration, cfg Config, filters map[string]filterKind, nFragments int) (*routeTable, error) {
	where := fmt.Sprintf("scoped route configuration %q", s.GetName())
	if err := s.ValidateAll(); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if s.GetOnDemand() {
		return nil, fmt.Errorf("%s: on_demand is not supported", where)
	}
	if n := len(s.GetKey().GetFragments()); n != nFragments {
		return nil, fmt.Errorf("%s: key has %d fragments, the scope key builder makes %d", where, n, nFragments)
	}
	for i, f := range s.GetKey().GetFragments() {
		if _, ok := f.GetType().(*routev3.ScopedRouteConfiguration_Key_Fragment_StringKey); !ok {
			return nil, fmt.Errorf("%s: key fragment %d must be a string_key", where, i)
		}
	}
	rc := s.GetRouteConfiguration()
	switch name := s.GetRouteConfigurationName(); {
	case rc != nil && name != "":
		return nil, fmt.Errorf("%s: route_configuration and route_configuration_name are both set", where)
	case rc == nil && name == "":
		return nil, fmt.Errorf("%s: neither route_configuration nor route_configuration_name is set", where)
	case rc == nil:
		var ok bool
		if rc, ok = cfg.Routes[name]; !ok {
			return nil, fmt.Errorf("%s: route configuration %q is not in Config.Routes", where, name)
		}
	}
	t, err := compileRouteTable(rc, filters)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return t, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// validateClusters follows Envoy's validate_clusters for a route
// configuration carried inline in a scope: Envoy builds it with a static
// route config provider (scoped_rds.cc; route_config_provider_manager.cc
// createStaticRouteConfigProvider), whose default is to validate
// (config_impl.cc ConfigImpl: validate_clusters defaults to true for
// static route tables), so a route naming a cluster Envoy does not have
// rejects the whole update ("route: unknown cluster"), which is NACKed.
// With validate_clusters false the table loads and such a route answers
// cluster_not_found_response_code at request time.
func validateClusters(rc *routev3.RouteConfiguration, t *routeTable, known map[string]bool) error {
	if v := rc.GetValidateClusters(); v != nil && !v.GetValue() {
		return nil
	}
	hosts := make([]*vhost, 0, len(t.exact)+len(t.suffix)+len(t.prefix)+1)
	for _, vh := range t.exact {
		hosts = append(hosts, vh)
	}
	for _, w := range t.suffix {
		hosts = append(hosts, w.vh)
	}
	for _, w := range t.prefix {
		hosts = append(hosts, w.vh)
	}
	if t.star != nil {
		hosts = append(hosts, t.star)
	}
	for _, vh := range hosts {
		for _, r := range vh.routes {
			if r.cluster != "" && !known[r.cluster] {
				return fmt.Errorf("route: unknown cluster '%s'", r.cluster)
			}
		}
	}
	return nil
}
