package envoydriver

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
)

type namedResource interface{ GetName() string }

type validator interface{ ValidateAll() error }

// apply decodes, validates and applies one response. An error means NACK:
// nothing of the response is applied (Envoy rejects a SotW response as a
// whole; for delta it may keep the valid part of a scoped-routes or
// clusters update — this client is stricter and keeps none).
func (a *ADS) apply(ts *typeState, r *adsResponse, rep *ADSResponse) error {
	decoded := make(map[string]proto.Message, len(r.resources))
	changed := make(map[string]proto.Message, len(r.resources))
	bodies := make(map[string]string, len(r.resources))
	versions := make(map[string]string, len(r.resources))
	for i, res := range r.resources {
		if got := res.any.GetTypeUrl(); got != r.typeURL {
			return fmt.Errorf("resource %d has type %s in a %s response", i, got, r.typeURL)
		}
		// A resource sent again unchanged (every SotW response repeats the
		// whole set) is the one already held: Envoy skips unchanged
		// scopes and clusters the same way, by comparing their hash.
		if name, ok := ts.byBody[string(res.any.GetValue())]; ok && (res.name == "" || res.name == name) {
			if _, dup := decoded[name]; dup {
				return fmt.Errorf("%s %q appears twice in one response", r.typeURL, name)
			}
			decoded[name], bodies[name], versions[name] = ts.resources[name], string(res.any.GetValue()), res.version
			rep.Updated = append(rep.Updated, name)
			continue
		}
		m, ok := newResource(r.typeURL)
		if !ok {
			return fmt.Errorf("resource type %s is not supported by envoydriver", r.typeURL)
		}
		if err := res.any.UnmarshalTo(m); err != nil {
			return fmt.Errorf("resource %d: %w", i, err)
		}
		name := m.(namedResource).GetName()
		if res.name != "" && res.name != name {
			return fmt.Errorf("resource %q holds a %s named %q", res.name, r.typeURL, name)
		}
		if err := m.(validator).ValidateAll(); err != nil {
			return fmt.Errorf("%s %q: %w", r.typeURL, name, err)
		}
		if _, dup := decoded[name]; dup {
			return fmt.Errorf("%s %q appears twice in one response", r.typeURL, name)
		}
		decoded[name], changed[name], bodies[name] = m, m, string(res.any.GetValue())
		versions[name] = res.version
		rep.Updated = append(rep.Updated, name)
	}
	full := !a.opts.Delta && sotwFullState(r.typeURL)
	var removed []string
	if full {
		for name := range ts.resources {
			if _, ok := decoded[name]; !ok {
				removed = append(removed, name)
			}
		}
	} else {
		for _, name := range r.removed {
			if _, ok := ts.resources[name]; ok {
				removed = append(removed, name)
			}
		}
	}
	rep.Removed = removed

	if a.opts.NoListener && (r.typeURL == typeScopedURL || r.typeURL == typeRouteURL) {
		// One change, one resource: validate what changed against the
		// current listener and keep the rest as it is.
		if err := a.checkAlone(r.typeURL, changed); err != nil {
			return err
		}
		a.commit(ts, r, decoded, versions, removed, full)
		a.commitBodies(ts, bodies, removed, full)
		a.maybeReady(nil)
		return nil
	}
	next := make(map[string]proto.Message, len(ts.resources)+len(decoded))
	if !full {
		for k, v := range ts.resources {
			next[k] = v
		}
	}
	for _, k := range removed {
		delete(next, k)
	}
	for k, v := range decoded {
		next[k] = v
	}
	cfg, complete, err := a.config(r.typeURL, next)
	if err != nil {
		return err
	}
	if complete {
		if err := a.run1(cfg); err != nil {
			return err
		}
	}
	ts.resources = next
	a.commitMeta(ts, r, versions, removed, full)
	a.commitBodies(ts, bodies, removed, full)
	if a.opts.NoListener {
		a.maybeReady(nil)
	}
	return nil
}

func (a *ADS) commit(ts *typeState, r *adsResponse, decoded map[string]proto.Message, versions map[string]string, removed []string, full bool) {
	if full {
		ts.resources = decoded
	} else {
		for _, k := range removed {
			delete(ts.resources, k)
		}
		for k, v := range decoded {
			ts.resources[k] = v
		}
	}
	a.commitMeta(ts, r, versions, removed, full)
}

// commitBodies keeps the encoding of each held resource, to recognise it
// when it is sent again.
func (a *ADS) commitBodies(ts *typeState, bodies map[string]string, removed []string, full bool) {
	if full {
		ts.byBody = make(map[string]string, len(bodies))
		ts.bodies = bodies
	} else {
		for _, k := range removed {
			delete(ts.byBody, ts.bodies[k])
			delete(ts.bodies, k)
		}
		for k, b := range bodies {
			delete(ts.byBody, ts.bodies[k])
			ts.bodies[k] = b
		}
	}
	for k, b := range bodies {
		ts.byBody[b] = k
	}
}

func (a *ADS) commitMeta(ts *typeState, r *adsResponse, versions map[string]string, removed []string, full bool) {
	if full {
		ts.versions = versions
	} else {
		for _, k := range removed {
			delete(ts.versions, k)
		}
		for k, v := range versions {
			ts.versions[k] = v
		}
	}
	ts.version = r.version
	ts.received = true
}

// config assembles the driver's Config from the held resources, with next
// in place of the resources of typeURL. complete is false while Envoy
// would still be warming: no clusters or listener yet, or the listener's
// scoped routes or named route configurations not received.
func (a *ADS) config(typeURL string, next map[string]proto.Message) (Config, bool, error) {
	of := func(t string) (map[string]proto.Message, bool) {
		if t == typeURL {
			return next, true
		}
		ts, ok := a.types[t]
		if !ok {
			return nil, false
		}
		return ts.resources, ts.received
	}
	var cfg Config
	lis, lok := of(typeListenerURL)
	cls, cok := of(typeClusterURL)
	switch {
	case len(lis) > 1:
		return cfg, false, fmt.Errorf("%d listeners; envoydriver serves one", len(lis))
	case len(lis) == 0 && a.Driver() != nil:
		return cfg, false, fmt.Errorf("an update removing the listener is not supported by envoydriver")
	case !lok || !cok || len(lis) == 0:
		return cfg, false, nil
	}
	for _, m := range lis {
		cfg.Listener = m.(*listenerv3.Listener)
	}
	for _, name := range sortedKeys(cls) {
		cfg.Clusters = append(cfg.Clusters, cls[name].(*clusterv3.Cluster))
	}
	hcm, err := listenerHCM(cfg.Listener)
	if err != nil {
		return cfg, false, err
	}
	// Envoy warms a listener until what its connection manager names has
	// arrived: the scopes for scoped_rds, the route configurations for rds
	// and for scopes that name theirs.
	need := map[string]bool{}
	if rds := hcm.GetRds(); rds != nil {
		need[rds.GetRouteConfigName()] = true
	}
	if sr := hcm.GetScopedRoutes(); sr != nil && sr.GetScopedRds() != nil {
		scopes, ok := of(typeScopedURL)
		if !ok {
			return cfg, false, nil
		}
		cfg.Scopes = make([]*routev3.ScopedRouteConfiguration, 0, len(scopes))
		for _, m := range scopes {
			s := m.(*routev3.ScopedRouteConfiguration)
			cfg.Scopes = append(cfg.Scopes, s)
			if n := s.GetRouteConfigurationName(); n != "" {
				need[n] = true
			}
		}
	}
	rcs, rok := of(typeRouteURL)
	if len(need) > 0 && !rok {
		return cfg, false, nil
	}
	cfg.Routes = make(map[string]*routev3.RouteConfiguration, len(rcs))
	for name, m := range rcs {
		cfg.Routes[name] = m.(*routev3.RouteConfiguration)
	}
	for name := range need {
		if _, ok := cfg.Routes[name]; !ok {
			return cfg, false, nil
		}
	}
	return cfg, true, nil
}

// run1 starts the driver on the first complete configuration and updates
// it afterwards. A configuration the driver refuses is NACKed.
func (a *ADS) run1(cfg Config) error {
	if a.opts.NoListener {
		_, err := compile(cfg, a.log, &a.check)
		return err
	}
	a.mu.Lock()
	d := a.driver
	a.mu.Unlock()
	if d != nil {
		// Compiled (and so validated) now to ACK or NACK; installed on
		// the driver after the ACK (applier).
		c, err := d.prepare(cfg)
		if err != nil {
			return err
		}
		a.staged = c
		return nil
	}
	d, err := New(cfg, Options{Logger: a.log, EnvoyVersion: a.version.String()})
	if err != nil {
		return err
	}
	a.maybeReady(d)
	return nil
}

// maybeReady releases WaitReady: with a driver once it started, with
// NoListener once the held configuration is complete.
func (a *ADS) maybeReady(d *Driver) {
	select {
	case <-a.ready:
		return
	default:
	}
	if a.opts.NoListener {
		if _, complete, err := a.config("", nil); err != nil || !complete {
			return
		}
	} else if d == nil {
		return
	}
	a.mu.Lock()
	a.driver = d
	a.mu.Unlock()
	close(a.ready)
}

// checkAlone validates changed route or scoped route configurations
// against the current listener's filters, as the full compile would.
func (a *ADS) checkAlone(typeURL string, decoded map[string]proto.Message) error {
	kinds, fragments, err := a.listenerFilters()
	if err != nil {
		return err
	}
	var routes map[string]*routev3.RouteConfiguration
	if rs, ok := a.types[typeRouteURL]; ok {
		routes = make(map[string]*routev3.RouteConfiguration, len(rs.resources))
		for n, m := range rs.resources {
			routes[n] = m.(*routev3.RouteConfiguration)
		}
	}
	for name, m := range decoded {
		switch typeURL {
		case typeScopedURL:
			if _, err := compileScope(m.(*routev3.ScopedRouteConfiguration), Config{Routes: routes}, kinds, fragments); err != nil {
				return err
			}
		case typeRouteURL:
			if _, err := compileRouteTable(m.(*routev3.RouteConfiguration), kinds); err != nil {
				return fmt.Errorf("route configuration %q: %w", name, err)
			}
		}
	}
	return nil
}

// listenerFilters names the HTTP filters of the held listener by kind, and
// how many fragments its scope keys have.
func (a *ADS) listenerFilters() (map[string]filterKind, int, error) {
	kinds := map[string]filterKind{}
	ls, ok := a.types[typeListenerURL]
	if !ok {
		return kinds, 0, nil
	}
	fragments := 0
	for _, m := range ls.resources {
		hcm, err := listenerHCM(m.(*listenerv3.Listener))
		if err != nil {
			return nil, 0, err
		}
		for _, hf := range hcm.GetHttpFilters() {
			switch hf.GetTypedConfig().GetTypeUrl() {
			case typeExtAuthz:
				kinds[hf.GetName()] = kindExtAuthz
			case typeExtProc:
				kinds[hf.GetName()] = kindExtProc
			case typeRouter:
				kinds[hf.GetName()] = kindRouter
			}
		}
		if sr, ok := hcm.GetRouteSpecifier().(*hcmv3.HttpConnectionManager_ScopedRoutes); ok {
			fragments = len(sr.ScopedRoutes.GetScopeKeyBuilder().GetFragments())
		}
	}
	return kinds, fragments, nil
}
