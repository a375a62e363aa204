package envoydriver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Driver is a running listener with its configuration.
type Driver struct {
	log    *slog.Logger
	scopes scopeCache
	cur    atomic.Pointer[compiled]
	// live is the scope table every stream reads, whatever configuration
	// it started with: Envoy updates SRDS scopes in place on each worker
	// (source/common/router/scoped_rds.cc addOrUpdateScopes →
	// ScopedRdsConfigSubscription::applyConfigUpdate, which mutates each
	// worker's ScopedConfigImpl), so a scope pushed while a call is held
	// is visible when the call re-selects its scope after
	// clear_route_cache, unlike a RouteConfiguration, snapped per request.
	live atomic.Pointer[scopeTable]
	// version is the Envoy release played (Options.EnvoyVersion).
	version envoyVersion
	// breakers holds each cluster's circuit breaker counters by name,
	// across updates (circuitbreaker.go).
	breakers breakerRegistry
	pool     connPool
	tr       transports
	ln       net.Listener
	srv      *http.Server
	port     string
	done     chan struct{}
}

// New compiles cfg and starts serving HTTP/1.1 on 127.0.0.1 at the
// listener's port (0 picks a free port; see Addr).
func New(cfg Config, opts Options) (*Driver, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "envoydriver")
	v, err := parseEnvoyVersion(opts.EnvoyVersion)
	if err != nil {
		return nil, fmt.Errorf("envoydriver: %w", err)
	}
	d := &Driver{log: log, done: make(chan struct{}), version: v}
	c, err := compile(cfg, log, &d.scopes)
	if err != nil {
		return nil, fmt.Errorf("envoydriver: %w", err)
	}
	d.bind(c)
	d.live.Store(c.scopes)
	_, port, _ := net.SplitHostPort(c.addr)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return nil, fmt.Errorf("envoydriver: listen on port %s: %w", port, err)
	}
	d.ln = ln
	_, d.port, _ = net.SplitHostPort(ln.Addr().String())
	d.cur.Store(c)
	d.srv = &http.Server{
		Handler:           d,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(d.done)
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve", "err", err)
		}
	}()
	log.Info("listening", "addr", ln.Addr().String())
	return d, nil
}

// Addr is the bound listener address, host:port.
func (d *Driver) Addr() string { return d.ln.Addr().String() }

// Update swaps in a new configuration atomically. Requests already in
// flight keep the configuration they started with. The listener address
// cannot change (a port of 0 or the bound port is accepted).
func (d *Driver) Update(cfg Config) error {
	c, err := d.prepare(cfg)
	if err != nil {
		return err
	}
	d.install(c)
	return nil
}

// prepare compiles an update without applying it.
func (d *Driver) prepare(cfg Config) (*compiled, error) {
	c, err := compile(cfg, d.log, &d.scopes)
	if err != nil {
		return nil, fmt.Errorf("envoydriver: %w", err)
	}
	if _, p, _ := net.SplitHostPort(c.addr); p != "0" && p != d.port {
		return nil, fmt.Errorf("envoydriver: listener port %s differs from the bound port %s; the listener address cannot change", p, d.port)
	}
	d.bind(c)
	return c, nil
}

// bind ties a compiled generation to the driver's shared state: the live
// scope table and the clusters' circuit breakers.
func (d *Driver) bind(c *compiled) {
	c.live = &d.live
	c.version = d.version
	for _, cl := range c.clusters {
		cl.breaker.counters = d.breakers.get(cl.name)
	}
}

// install makes a prepared generation the one new requests start with,
// and its scopes the ones every request selects from.
func (d *Driver) install(c *compiled) {
	d.live.Store(c.scopes)
	d.cur.Store(c)
}

// Close stops the listener, aborts open connections and closes gRPC and
// upstream connections.
func (d *Driver) Close() error {
	err := d.srv.Close()
	<-d.done
	d.pool.close()
	d.tr.close()
	return err
}

// ServeHTTP runs one request through the HTTP connection manager.
func (d *Driver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cfg := d.cur.Load()
	s := newStream(cfg, &d.pool, d.log, w, r)
	defer s.finish()
	// Reading the request body after response headers went out is normal
	// for a proxy (the upstream may answer early).
	_ = http.NewResponseController(w).EnableFullDuplex()

	path, redirect, reject := cfg.hcm.paths.apply(r.RequestURI)
	s.reqHeaders = cfg.hcm.requestHeaders(r, path, d.port)
	applyEarlyMutations(cfg.hcm.early, s.reqHeaders)
	// conn_manager_impl.cc decodeHeaders: "gRPC requests are rejected if
	// Envoy is configured to redirect post-normalization"; both answers
	// carry details path_normalization_failed.
	if redirect && strings.HasPrefix(s.reqHeaders.value("content-type"), "application/grpc") {
		redirect, reject = false, true
	}
	switch {
	case reject:
		s.respond(&localReply{status: http.StatusBadRequest, details: "path_normalization_failed"})
		return
	case redirect:
		loc := &headerMap{}
		loc.set("location", path)
		s.respond(&localReply{status: http.StatusTemporaryRedirect, headers: loc, details: "path_normalization_failed"})
		return
	}
	s.requestID = s.reqHeaders.value("x-request-id")
	var body bodySource
	if r.Body == nil || r.Body == http.NoBody {
		s.downstreamDone.Store(true)
	} else {
		r.Body = &eofNotifier{ReadCloser: r.Body, done: &s.downstreamDone}
		var trailers func() *headerMap
		if cfg.hcm.enableTrailers {
			trailers = func() *headerMap { return fromHTTPHeader(r.Trailer) }
		}
		body = newReaderSource(r.Body, trailers, func(n int) { s.bytesReceived.Add(int64(n)) })
	}
	s.createFilterChain()
	h := s.reqHeaders
	for _, f := range s.filters {
		var err error
		if body, err = f.decodeHeaders(h, body); err != nil {
			drain(s.ctx, body)
			s.respond(err)
			return
		}
	}
	resp, err := s.proxy(h, body, &d.tr)
	if err != nil {
		s.respond(err)
		return
	}
	s.encode(resp)
}

// createFilterChain instantiates the HCM's filters for this request.
// http_connection_manager.proto HttpFilter.disabled: "If true, the filter
// is disabled by default and must be explicitly enabled by setting per
// filter configuration in the route configuration"; the route resolved at
// this point decides (FilterChainOptions::filterDisabled).
func (s *stream) createFilterChain() {
	rt := s.route()
	for _, ff := range s.cfg.filters {
		disabled := ff.disabled
		if d, ok := rt.filterDisabled(ff.name); ok {
			disabled = d
		}
		if disabled {
			continue
		}
		switch ff.kind {
		case kindExtAuthz:
			s.filters = append(s.filters, &extAuthz{cfg: ff.authz, name: ff.name, s: s})
		case kindExtProc:
			s.filters = append(s.filters, newExtProc(s, ff))
		}
	}
}

// finish releases the stream: filters first, then the contexts.
func (s *stream) finish() {
	for _, f := range s.filters {
		f.onDestroy()
	}
	s.cancel()
}

var _ http.Handler = (*Driver)(nil)
