package envoydriver

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// defaultRouteTimeout is route_components.proto RouteAction.timeout: "If not
// specified, the default is 15s".
const defaultRouteTimeout = 15 * time.Second

// routeTable is a compiled RouteConfiguration.
type routeTable struct {
	name       string
	exact      map[string]*vhost
	suffix     []wildcardHost // longest first
	prefix     []wildcardHost // longest first
	star       *vhost
	ignorePort bool
	perFilter  map[string]*perFilterConfig
	headers    headerOps
}

type wildcardHost struct {
	part string // domain without the '*'
	vh   *vhost
}

type vhost struct {
	name      string
	table     *routeTable
	routes    []*route
	perFilter map[string]*perFilterConfig
	headers   headerOps
}

// route is a compiled route.v3.Route.
type route struct {
	name          string
	vh            *vhost
	kind          string // prefix, path, regex, separated
	pattern       string
	re            *regexp.Regexp
	caseSensitive bool
	headers       []*headerMatcher
	query         []*queryMatcher

	cluster         string
	clusterHeader   string
	notFoundStatus  int
	prefixRewrite   string
	regexRewrite    *regexp.Regexp
	regexSubst      string
	timeout         time.Duration
	hostLiteral     string
	autoHostRewrite bool
	appendXFH       bool
	direct          *directResponse

	perFilter map[string]*perFilterConfig
	metadata  *corev3.Metadata
	hdrOps    headerOps
}

type directResponse struct {
	status int
	body   string
}

// compileRouteTable compiles a RouteConfiguration for an HTTP connection
// manager whose filters are named in filters.
func compileRouteTable(rc *routev3.RouteConfiguration, filters map[string]filterKind) (*routeTable, error) {
	if err := rc.ValidateAll(); err != nil {
		return nil, fmt.Errorf("route configuration %q: %w", rc.GetName(), err)
	}
	if rc.GetVhds() != nil {
		return nil, fmt.Errorf("route configuration %q: vhds is not supported", rc.GetName())
	}
	t := &routeTable{name: rc.GetName(), exact: map[string]*vhost{}, ignorePort: rc.GetIgnorePortInHostMatching()}
	var err error
	where := fmt.Sprintf("route configuration %q", rc.GetName())
	if t.perFilter, err = compilePerFilter(rc.GetTypedPerFilterConfig(), filters, where); err != nil {
		return nil, err
	}
	if t.headers, err = compileHeaderOps(rc.GetRequestHeadersToAdd(), rc.GetRequestHeadersToRemove(),
		rc.GetResponseHeadersToAdd(), rc.GetResponseHeadersToRemove()); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	for i, v := range rc.GetVirtualHosts() {
		vh, err := compileVhost(t, v, filters)
		if err != nil {
			return nil, fmt.Errorf("%s virtual_hosts[%d] %q: %w", where, i, v.GetName(), err)
		}
		for _, d := range v.GetDomains() {
			if err := t.addDomain(strings.ToLower(d), vh); err != nil {
				return nil, fmt.Errorf("%s virtual_hosts[%d] %q: %w", where, i, v.GetName(), err)
			}
		}
	}
	// route.proto VirtualHost.domains: "The longest wildcards match first."
	sort.SliceStable(t.suffix, func(i, j int) bool { return len(t.suffix[i].part) > len(t.suffix[j].part) })
	sort.SliceStable(t.prefix, func(i, j int) bool { return len(t.prefix[i].part) > len(t.prefix[j].part) })
	return t, nil
}

// addDomain follows route_components.proto VirtualHost.domains: exact names,
// "*.foo.com"/"*-bar.foo.com" suffix wildcards, "foo.*"/"foo-*" prefix
// wildcards and "*"; "A domain must be unique across all virtual hosts or the
// config will fail to load."
func (t *routeTable) addDomain(d string, vh *vhost) error {
	dup := func() error { return fmt.Errorf("domain %q is not unique across virtual hosts", d) }
	switch {
	case d == "*":
		if t.star != nil {
			return dup()
		}
		t.star = vh
	case strings.HasPrefix(d, "*"):
		for _, w := range t.suffix {
			if w.part == d[1:] {
				return dup()
			}
		}
		t.suffix = append(t.suffix, wildcardHost{d[1:], vh})
	case strings.HasSuffix(d, "*"):
		for _, w := range t.prefix {
			if w.part == d[:len(d)-1] {
				return dup()
			}
		}
		t.prefix = append(t.prefix, wildcardHost{d[:len(d)-1], vh})
	default:
		if _, ok := t.exact[d]; ok {
			return dup()
		}
		t.exact[d] = vh
	}
	return nil
}

func compileVhost(t *routeTable, v *routev3.VirtualHost, filters map[string]filterKind) (*vhost, error) {
	if v.GetMatcher() != nil {
		return nil, fmt.Errorf("matcher is not supported")
	}
	if v.GetRequireTls() != routev3.VirtualHost_NONE {
		return nil, fmt.Errorf("require_tls is not supported")
	}
	vh := &vhost{name: v.GetName(), table: t}
	var err error
	if vh.perFilter, err = compilePerFilter(v.GetTypedPerFilterConfig(), filters, "virtual host"); err != nil {
		return nil, err
	}
	if vh.headers, err = compileHeaderOps(v.GetRequestHeadersToAdd(), v.GetRequestHeadersToRemove(),
		v.GetResponseHeadersToAdd(), v.GetResponseHeadersToRemove()); err != nil {
		return nil, err
	}
	for i, r := range v.GetRoutes() {
		cr, err := compileRoute(vh, r, filters)
		if err != nil {
			return nil, fmt.Errorf("routes[%d] %q: %w", i, r.GetName(), err)
		}
		vh.routes = append(vh.routes, cr)
	}
	return vh, nil
}

func compileRoute(vh *vhost, r *routev3.Route, filters map[string]filterKind) (*route, error) {
	cr := &route{name: r.GetName(), vh: vh, metadata: r.GetMetadata(), timeout: defaultRouteTimeout}
	if err := cr.compileMatch(r.GetMatch()); err != nil {
		return nil, fmt.Errorf("match: %w", err)
	}
	var err error
	if cr.perFilter, err = compilePerFilter(r.GetTypedPerFilterConfig(), filters, "route"); err != nil {
		return nil, err
	}
	if cr.hdrOps, err = compileHeaderOps(r.GetRequestHeadersToAdd(), r.GetRequestHeadersToRemove(),
		r.GetResponseHeadersToAdd(), r.GetResponseHeadersToRemove()); err != nil {
		return nil, err
	}
	switch a := r.GetAction().(type) {
	case *routev3.Route_Route:
		err = cr.compileAction(a.Route)
	case *routev3.Route_DirectResponse:
		cr.direct, err = compileDirect(a.DirectResponse)
	default:
		err = fmt.Errorf("action %T is not supported", a)
	}
	return cr, err
}

func (cr *route) compileMatch(m *routev3.RouteMatch) error {
	// route_components.proto RouteMatch.case_sensitive: "Indicates that
	// prefix/path matching should be case sensitive. The default is true.
	// Ignored for safe_regex matching."
	cr.caseSensitive = m.GetCaseSensitive() == nil || m.GetCaseSensitive().GetValue()
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		cr.kind, cr.pattern = "prefix", p.Prefix
	case *routev3.RouteMatch_Path:
		cr.kind, cr.pattern = "path", p.Path
	case *routev3.RouteMatch_PathSeparatedPrefix:
		cr.kind, cr.pattern = "separated", p.PathSeparatedPrefix
	case *routev3.RouteMatch_SafeRegex:
		re, err := compileRegex(p.SafeRegex)
		if err != nil {
			return err
		}
		cr.kind, cr.re = "regex", re
	default:
		return fmt.Errorf("path specifier %T is not supported", p)
	}
	if !cr.caseSensitive {
		cr.pattern = strings.ToLower(cr.pattern)
	}
	switch {
	case m.GetRuntimeFraction() != nil:
		return fmt.Errorf("runtime_fraction is not supported")
	case m.GetGrpc() != nil:
		return fmt.Errorf("grpc is not supported")
	case m.GetTlsContext() != nil:
		return fmt.Errorf("tls_context is not supported")
	case len(m.GetDynamicMetadata()) > 0:
		return fmt.Errorf("dynamic_metadata is not supported")
	case len(m.GetFilterState()) > 0:
		return fmt.Errorf("filter_state is not supported")
	case len(m.GetCookies()) > 0:
		return fmt.Errorf("cookies is not supported")
	}
	for i, h := range m.GetHeaders() {
		hm, err := compileHeaderMatcher(h)
		if err != nil {
			return fmt.Errorf("headers[%d]: %w", i, err)
		}
		cr.headers = append(cr.headers, hm)
	}
	for i, q := range m.GetQueryParameters() {
		qm, err := compileQueryMatcher(q)
		if err != nil {
			return fmt.Errorf("query_parameters[%d]: %w", i, err)
		}
		cr.query = append(cr.query, qm)
	}
	return nil
}

func (cr *route) compileAction(a *routev3.RouteAction) error {
	switch c := a.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		cr.cluster = c.Cluster
	case *routev3.RouteAction_ClusterHeader:
		cr.clusterHeader = strings.ToLower(c.ClusterHeader)
	default:
		return fmt.Errorf("cluster specifier %T is not supported", c)
	}
	// RouteAction.cluster_not_found_response_code: SERVICE_UNAVAILABLE (503)
	// by default, NOT_FOUND (404) or INTERNAL_SERVER_ERROR (500).
	switch a.GetClusterNotFoundResponseCode() {
	case routev3.RouteAction_NOT_FOUND:
		cr.notFoundStatus = 404
	case routev3.RouteAction_INTERNAL_SERVER_ERROR:
		cr.notFoundStatus = 500
	default:
		cr.notFoundStatus = 503
	}
	cr.prefixRewrite = a.GetPrefixRewrite()
	if cr.prefixRewrite != "" && cr.kind == "regex" {
		return fmt.Errorf("prefix_rewrite cannot be used with a safe_regex match")
	}
	if rr := a.GetRegexRewrite(); rr != nil {
		re, err := regexp.Compile(rr.GetPattern().GetRegex())
		if err != nil {
			return fmt.Errorf("regex_rewrite: %w", err)
		}
		cr.regexRewrite = re
		// regex.proto RegexMatchAndSubstitute.substitution uses \N for
		// capture groups (RE2::GlobalReplace); Go spells them ${N}.
		cr.regexSubst = regexp.MustCompile(`\\(\d)`).ReplaceAllString(rr.GetSubstitution(), `$${$1}`)
	}
	if a.Timeout != nil {
		cr.timeout = a.GetTimeout().AsDuration()
	}
	switch h := a.GetHostRewriteSpecifier().(type) {
	case nil:
	case *routev3.RouteAction_HostRewriteLiteral:
		cr.hostLiteral = h.HostRewriteLiteral
	case *routev3.RouteAction_AutoHostRewrite:
		cr.autoHostRewrite = h.AutoHostRewrite.GetValue()
	default:
		return fmt.Errorf("host rewrite %T is not supported", h)
	}
	cr.appendXFH = a.GetAppendXForwardedHost()
	switch {
	case a.GetRetryPolicy() != nil || a.GetRetryPolicyTypedConfig() != nil:
		return fmt.Errorf("retry_policy is not supported")
	case len(a.GetUpgradeConfigs()) > 0:
		return fmt.Errorf("upgrade_configs is not supported")
	case a.GetPathRewritePolicy() != nil || a.GetPathRewrite() != "":
		return fmt.Errorf("path rewrite policies are not supported")
	}
	return nil
}

func compileDirect(d *routev3.DirectResponseAction) (*directResponse, error) {
	dr := &directResponse{status: int(d.GetStatus())}
	switch b := d.GetBody().GetSpecifier().(type) {
	case nil:
	case *corev3.DataSource_InlineString:
		dr.body = b.InlineString
	case *corev3.DataSource_InlineBytes:
		dr.body = string(b.InlineBytes)
	default:
		return nil, fmt.Errorf("direct_response body %T is not supported", b)
	}
	if d.GetBodyFormat() != nil {
		return nil, fmt.Errorf("direct_response body_format is not supported")
	}
	return dr, nil
}

// findVhost follows route_components.proto VirtualHost.domains search order:
// exact, then suffix wildcards, then prefix wildcards (longest first), then
// "*". A wildcard never matches the empty string.
func (t *routeTable) findVhost(host string) *vhost {
	host = strings.ToLower(host)
	if t.ignorePort {
		// route.proto RouteConfiguration.ignore_port_in_host_matching.
		host = stripPort(host)
	}
	if vh, ok := t.exact[host]; ok {
		return vh
	}
	for _, w := range t.suffix {
		if len(host) > len(w.part) && strings.HasSuffix(host, w.part) {
			return w.vh
		}
	}
	for _, w := range t.prefix {
		if len(host) > len(w.part) && strings.HasPrefix(host, w.part) {
			return w.vh
		}
	}
	return t.star
}

// match selects the route for the request headers, or nil (Envoy's "NR").
func (t *routeTable) match(h *headerMap) *route {
	if t == nil {
		return nil
	}
	vh := t.findVhost(h.value(":authority"))
	if vh == nil {
		return nil
	}
	full := h.value(":path")
	path, rawQuery, _ := strings.Cut(full, "?")
	var query url.Values
	for _, r := range vh.routes {
		if !r.matchPath(path) {
			continue
		}
		if !matchAllHeaders(r.headers, h) {
			continue
		}
		if len(r.query) > 0 {
			if query == nil {
				query, _ = url.ParseQuery(rawQuery)
			}
			if !matchAllQuery(r.query, query) {
				continue
			}
		}
		return r
	}
	return nil
}

func matchAllHeaders(ms []*headerMatcher, h *headerMap) bool {
	for _, m := range ms {
		if !m.match(h) {
			return false
		}
	}
	return true
}

func matchAllQuery(ms []*queryMatcher, q url.Values) bool {
	for _, m := range ms {
		if !m.match(q) {
			return false
		}
	}
	return true
}

// matchPath follows RouteMatch path_specifier on the path without the query
// string: prefix, exact path, safe_regex (must match the whole path) and
// path_separated_prefix (the prefix must be followed by '/' or the end).
func (r *route) matchPath(path string) bool {
	if r.kind == "regex" {
		return r.re.MatchString(path)
	}
	p := path
	if !r.caseSensitive {
		p = strings.ToLower(p)
	}
	switch r.kind {
	case "prefix":
		return strings.HasPrefix(p, r.pattern)
	case "path":
		return p == r.pattern
	case "separated":
		return p == r.pattern || strings.HasPrefix(p, r.pattern+"/")
	}
	return false
}

// rewritePath follows RouteAction.prefix_rewrite ("the matched prefix (or
// path) should be swapped with this value", query string kept) and
// regex_rewrite (applied to the path without the query string). changed is
// false when no rewrite is configured.
func (r *route) rewritePath(full string) (string, bool) {
	path, rawQuery, hasQuery := strings.Cut(full, "?")
	switch {
	case r.prefixRewrite != "":
		n := len(r.pattern)
		if n > len(path) {
			n = len(path)
		}
		path = r.prefixRewrite + path[n:]
	case r.regexRewrite != nil:
		path = r.regexRewrite.ReplaceAllString(path, r.regexSubst)
	default:
		return full, false
	}
	if hasQuery {
		return path + "?" + rawQuery, true
	}
	return path, true
}

func stripPort(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.LastIndex(host, "]"); i >= 0 {
			return host[:i+1]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}
