package envoydriver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync/atomic"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// Config is the Envoy configuration the driver runs: one listener whose
// filter chain holds an HttpConnectionManager, the route configurations its
// rds names, and the clusters its routes and gRPC services name.
type Config struct {
	// Listener is the one listener served. Its address picks the port (0
	// lets the system choose; see Driver.Addr).
	Listener *listenerv3.Listener
	// Routes holds RouteConfigurations by name for an HCM using rds.
	Routes map[string]*routev3.RouteConfiguration
	// Clusters are the upstream and gRPC service clusters.
	Clusters []*clusterv3.Cluster
	// Scopes are the ScopedRouteConfigurations for an HCM using
	// scoped_routes with scoped_rds (SRDS). A scope's routes are inline or
	// named in Routes.
	Scopes []*routev3.ScopedRouteConfiguration
}

// Options tunes the driver.
type Options struct {
	// Logger receives the driver's logs; nil discards them.
	Logger *slog.Logger
	// EnvoyVersion is the Envoy release played, "1.37.0" when empty
	// (DefaultEnvoyVersion); behaviour that differs between releases
	// follows it (doc.go lists which).
	EnvoyVersion string
}

// FromBootstrap takes a Bootstrap's static_resources: at most one listener,
// and its clusters. Dynamic resources (ADS) are left to the caller, who feeds
// them through Driver.Update.
func FromBootstrap(b *bootstrapv3.Bootstrap) (Config, error) {
	sr := b.GetStaticResources()
	var cfg Config
	switch n := len(sr.GetListeners()); {
	case n == 1:
		cfg.Listener = sr.GetListeners()[0]
	case n > 1:
		return cfg, fmt.Errorf("bootstrap static_resources has %d listeners; envoydriver serves one", n)
	}
	cfg.Clusters = sr.GetClusters()
	if len(sr.GetSecrets()) > 0 {
		return cfg, errors.New("bootstrap static_resources.secrets: TLS is not supported")
	}
	return cfg, nil
}

// Type URLs of the HTTP filters the driver implements.
var (
	typeExtAuthz = "type.googleapis.com/" + string((&extauthzv3.ExtAuthz{}).ProtoReflect().Descriptor().FullName())
	typeExtProc  = "type.googleapis.com/" + string((&extprocv3.ExternalProcessor{}).ProtoReflect().Descriptor().FullName())
	typeRouter   = "type.googleapis.com/" + string((&routerv3.Router{}).ProtoReflect().Descriptor().FullName())
	typeHCM      = "type.googleapis.com/" + string((&hcmv3.HttpConnectionManager{}).ProtoReflect().Descriptor().FullName())
)

// compiled is one immutable, validated configuration generation.
type compiled struct {
	addr        string
	bufferLimit int
	hcm         hcmSettings
	filters     []*filterFactory // HCM order, router excluded
	router      routerSettings
	routes      *routeTable
	scopes      *scopeTable // scoped_routes instead of routes
	// live is the driver's current scope table (see Driver.live); streams
	// select scopes from it, not from scopes.
	live     *atomic.Pointer[scopeTable]
	clusters map[string]*cluster
	version  envoyVersion
}

// filterFactory is one configured HTTP filter.
type filterFactory struct {
	name     string
	kind     filterKind
	disabled bool // HttpFilter.disabled
	authz    *authzConfig
	proc     *procConfig
}

type routerSettings struct {
	suppressEnvoyHeaders bool
}

// defaultBufferLimit is listener.proto per_connection_buffer_limit_bytes:
// "Soft limit on size of the listener's new connection read and write
// buffers. If unspecified, an implementation defined default is applied
// (1MiB)."
const defaultBufferLimit = 1 << 20

func compile(cfg Config, log *slog.Logger, sc *scopeCache) (*compiled, error) {
	l := cfg.Listener
	if l == nil {
		return nil, errors.New("config has no listener")
	}
	if err := l.ValidateAll(); err != nil {
		return nil, fmt.Errorf("listener %q: %w", l.GetName(), err)
	}
	c := &compiled{bufferLimit: defaultBufferLimit, clusters: map[string]*cluster{}}
	if v := l.GetPerConnectionBufferLimitBytes(); v != nil {
		c.bufferLimit = int(v.GetValue())
	}
	sa := l.GetAddress().GetSocketAddress()
	if sa == nil {
		return nil, fmt.Errorf("listener %q: address must be a socket_address", l.GetName())
	}
	addr, err := socketAddr(sa)
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", l.GetName(), err)
	}
	c.addr = addr
	for _, cl := range cfg.Clusters {
		cc, err := compileCluster(cl)
		if err != nil {
			return nil, err
		}
		if _, dup := c.clusters[cc.name]; dup {
			return nil, fmt.Errorf("cluster %q is defined twice", cc.name)
		}
		c.clusters[cc.name] = cc
	}
	hcm, err := listenerHCM(l)
	if err != nil {
		return nil, err
	}
	if c.hcm, err = compileHCMSettings(hcm); err != nil {
		return nil, err
	}
	kinds, err := c.compileFilters(hcm, log)
	if err != nil {
		return nil, err
	}
	switch rs := hcm.GetRouteSpecifier().(type) {
	case *hcmv3.HttpConnectionManager_RouteConfig:
		c.routes, err = compileRouteTable(rs.RouteConfig, kinds)
	case *hcmv3.HttpConnectionManager_Rds:
		name := rs.Rds.GetRouteConfigName()
		rc, ok := cfg.Routes[name]
		if !ok {
			return nil, fmt.Errorf("http_connection_manager rds route_config_name %q is not in Config.Routes", name)
		}
		c.routes, err = compileRouteTable(rc, kinds)
	case *hcmv3.HttpConnectionManager_ScopedRoutes:
		c.scopes, err = compileScopes(rs.ScopedRoutes, cfg, kinds, sc)
	default:
		err = fmt.Errorf("http_connection_manager route specifier %T is not supported", rs)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// listenerHCM finds the HttpConnectionManager of the listener's one filter
// chain.
func listenerHCM(l *listenerv3.Listener) (*hcmv3.HttpConnectionManager, error) {
	chains := l.GetFilterChains()
	if l.GetDefaultFilterChain() != nil {
		chains = append(chains, l.GetDefaultFilterChain())
	}
	if len(chains) != 1 {
		return nil, fmt.Errorf("listener %q has %d filter chains; envoydriver serves exactly one", l.GetName(), len(chains))
	}
	fc := chains[0]
	if fc.GetTransportSocket() != nil {
		return nil, fmt.Errorf("listener %q: transport_socket (TLS) is not supported", l.GetName())
	}
	if len(fc.GetFilters()) != 1 {
		return nil, fmt.Errorf("listener %q: the filter chain must hold exactly one network filter, the http_connection_manager", l.GetName())
	}
	tc := fc.GetFilters()[0].GetTypedConfig()
	if tc.GetTypeUrl() != typeHCM {
		return nil, fmt.Errorf("listener %q: network filter %q has type %q, want %s", l.GetName(), fc.GetFilters()[0].GetName(), tc.GetTypeUrl(), typeHCM)
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := tc.UnmarshalTo(hcm); err != nil {
		return nil, fmt.Errorf("listener %q: http_connection_manager: %w", l.GetName(), err)
	}
	if err := hcm.ValidateAll(); err != nil {
		return nil, fmt.Errorf("listener %q: http_connection_manager: %w", l.GetName(), err)
	}
	return hcm, nil
}

// compileFilters follows http_connection_manager.proto http_filters: filters
// run in order; the router must be the last (terminal) filter; an unknown
// filter is a configuration error unless HttpFilter.is_optional ("the
// client may ignore this filter if it does not support it"). It returns the
// filter names by kind for per-route config lookups.
func (c *compiled) compileFilters(hcm *hcmv3.HttpConnectionManager, log *slog.Logger) (map[string]filterKind, error) {
	kinds := map[string]filterKind{}
	hfs := hcm.GetHttpFilters()
	for i, hf := range hfs {
		where := fmt.Sprintf("http_filters[%d] %q", i, hf.GetName())
		if hf.GetConfigDiscovery() != nil {
			return nil, fmt.Errorf("%s: config_discovery is not supported", where)
		}
		if _, dup := kinds[hf.GetName()]; dup {
			return nil, fmt.Errorf("%s: filter name is used twice", where)
		}
		tc := hf.GetTypedConfig()
		ff := &filterFactory{name: hf.GetName(), disabled: hf.GetDisabled()}
		var err error
		switch tc.GetTypeUrl() {
		case typeExtAuthz:
			ff.kind = kindExtAuthz
			ff.authz, err = compileExtAuthz(tc, c)
		case typeExtProc:
			ff.kind = kindExtProc
			ff.proc, err = compileExtProc(tc, c)
		case typeRouter:
			ff.kind = kindRouter
			err = c.compileRouter(tc)
			if err == nil && i != len(hfs)-1 {
				err = errors.New("the router is a terminal filter and must be the last http filter")
			}
		default:
			if hf.GetIsOptional() {
				log.Warn("skipping optional http filter of unsupported type", "filter", hf.GetName(), "type", tc.GetTypeUrl())
				continue
			}
			err = fmt.Errorf("filter type %q is not supported by envoydriver (supported: ext_authz, ext_proc, router)", tc.GetTypeUrl())
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		kinds[hf.GetName()] = ff.kind
		if ff.kind != kindRouter {
			c.filters = append(c.filters, ff)
		}
	}
	if len(hfs) == 0 || kinds[hfs[len(hfs)-1].GetName()] != kindRouter {
		return nil, errors.New("http_connection_manager: the last http filter must be envoy.filters.http.router")
	}
	return kinds, nil
}

func (c *compiled) compileRouter(tc *anypb.Any) error {
	r := &routerv3.Router{}
	if err := tc.UnmarshalTo(r); err != nil {
		return err
	}
	if err := r.ValidateAll(); err != nil {
		return err
	}
	if len(r.GetUpstreamHttpFilters()) > 0 {
		return errors.New("upstream_http_filters is not supported")
	}
	c.router.suppressEnvoyHeaders = r.GetSuppressEnvoyHeaders()
	return nil
}

// clusterNames lists the configured clusters, sorted, for error messages.
func (c *compiled) clusterNames() []string {
	out := make([]string, 0, len(c.clusters))
	for n := range c.clusters {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// sameListener reports whether two generations bind the same address.
func (c *compiled) sameListener(o *compiled) bool {
	h1, p1, _ := net.SplitHostPort(c.addr)
	h2, p2, _ := net.SplitHostPort(o.addr)
	return h1 == h2 && (p1 == p2 || p2 == "0")
}
