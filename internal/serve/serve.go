// Package serve wires airlock's services together from a configuration and
// runs them: ext_authz (gRPC), the HTTP server (metadata, health, metrics),
// and policy reloading. cmd/airlock calls Run; tests and the demo start the
// same wiring in-process with Start.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/extauthz"
	"github.com/airlock-mcp/airlock/extproc"
	"github.com/airlock-mcp/airlock/internal/approvals"
	"github.com/airlock-mcp/airlock/internal/audit"
	auditch "github.com/airlock-mcp/airlock/internal/audit/clickhouse"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/meta"
	"github.com/airlock-mcp/airlock/internal/mtls"
	"github.com/airlock-mcp/airlock/internal/notify"
	"github.com/airlock-mcp/airlock/internal/policy/rego"
	"github.com/airlock-mcp/airlock/xds"
)

// Gateway is a running set of airlock services.
type Gateway struct {
	Config     *config.Config
	Authorizer *extauthz.Authorizer
	Policy     *rego.Store
	Grants     *grants.Service
	Audit      audit.Recorder
	HTTP       *meta.Server
	Registry   *prometheus.Registry

	Processor *extproc.Processor
	XDS       *xds.Server
	// TLS serves the gRPC listeners' certificates (listen.tls); nil when
	// they are plaintext (loopback, or listen.insecure).
	TLS *mtls.Server

	AuthzAddr net.Addr // where ext_authz listens (resolved, e.g. after port 0); nil when off
	ProcAddr  net.Addr // ext_proc
	XDSAddr   net.Addr // ADS
	HTTPAddr  net.Addr

	log     *slog.Logger
	creds   credentials.TransportCredentials // nil: plaintext
	grpcs   []*grpc.Server
	closers []func() error // after the servers stop, in order
	httpSrv *http.Server
	cancel  context.CancelFunc
	done    chan struct{}
	errc    chan error
}

// Options for Start.
type Options struct {
	Logger     *slog.Logger
	HTTPClient *http.Client // for issuer discovery and JWKS
}

// Start builds every configured service, binds its listener and serves in
// the background. It fails, having started nothing, if the configuration,
// a credential or the policy is broken.
func Start(ctx context.Context, cfg *config.Config, opts Options) (*Gateway, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The same checks as airlock validate: what validate passes, serve
	// accepts.
	chk, err := Check(ctx, cfg, CheckOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	tlsSrv := chk.TLS
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	store, err := rego.NewStore(cfg.Policy.Dir, cfg.Policy.Query, log.With("component", "policy"))
	if err != nil {
		return nil, err
	}
	ver, err := identity.New(ctx, cfg.Issuers, identity.Options{
		HTTPClient: opts.HTTPClient, CacheSize: cfg.Limits.TokenCacheSize, Logger: log.With("component", "identity"),
	})
	if err != nil {
		return nil, err
	}
	reg.MustRegister(statsCollector{ver: ver, store: store})
	if names := cfg.Unmasked(); len(names) > 0 {
		log.Warn("listen.proc is empty: responses are neither masked nor recorded (no ext_proc)", "targets", names)
	}
	if st := store.Current().CacheStats(); !st.Enabled {
		log.Warn("policy decisions will not be cached", "why", st.Reason)
	}
	rec, err := auditch.Open(ctx, cfg.Audit, audit.Options{Logger: log.With("component", "audit"), Registerer: reg})
	if err != nil {
		return nil, err
	}
	closeAudit := func() error {
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return rec.Close(actx) // what is not shipped stays spooled for the next start
	}
	sender, err := notify.New(cfg.Notifications, notify.Options{
		Logger: log.With("component", "notify"), ApprovalURL: cfg.Grants.RequestURL,
	})
	if err != nil {
		return nil, err
	}
	gstore, err := grants.OpenFileStore(cfg.Grants.Dir, grants.FileStoreOptions{Logger: log.With("component", "grants")})
	if err != nil {
		sender.Close()
		closeAudit()
		return nil, err
	}
	svc, err := grants.New(gstore, cfg.Grants, grants.Options{
		Notifier: sender, Auditor: grantAuditor{sink: rec, log: log}, Logger: log.With("component", "grants"),
	})
	if err != nil {
		gstore.Close()
		sender.Close()
		closeAudit()
		return nil, err
	}
	authz, err := extauthz.New(cfg, extauthz.Options{
		Verifier: ver, Policy: store, Approvals: svc, Audit: rec,
		Logger: log.With("component", "extauthz"), Metrics: extauthz.NewMetrics(reg),
	})
	if err != nil {
		svc.Close()
		sender.Close()
		closeAudit()
		return nil, err
	}
	g := &Gateway{Config: cfg, Authorizer: authz, Policy: store, Grants: svc, Registry: reg, log: log, done: make(chan struct{}), errc: make(chan error, 8)}
	if tlsSrv != nil {
		g.TLS, g.creds = tlsSrv, tlsSrv.Credentials()
	}
	g.Audit = rec
	g.closers = append(g.closers, svc.Close, func() error { sender.Close(); return nil }, closeAudit)
	g.HTTP = meta.New(cfg, meta.Options{Gatherer: reg, Logger: log.With("component", "http")})
	var ts []approvals.Target
	for _, t := range cfg.Targets {
		ts = append(ts, approvals.Target{Name: t.Name, Resource: t.Resource, PathPrefix: t.PathPrefix,
			ScopesRequired: t.ScopesRequired, MaskingProfile: t.MaskingProfile})
	}

	fail := func(err error) (*Gateway, error) {
		g.stopGRPC()
		for _, c := range g.closers {
			_ = c()
		}
		return nil, err
	}
	profiles, err := mask.NewSet(cfg.Masking.Profiles)
	if err != nil {
		return fail(err)
	}
	ah, err := approvals.New(approvals.Options{
		Grants: svc, Verifier: ver, Policy: store, API: cfg.API, PublicURL: cfg.PublicURL,
		Inbox: cfg.Inbox, Targets: ts, Profiles: profiles, Logger: log.With("component", "approvals"),
	})
	if err != nil {
		return fail(err)
	}
	g.HTTP.Handle("/airlock/", ah)
	g.Processor = extproc.New(extproc.Options{
		Profiles: profiles, Recorder: rec, Logger: log.With("component", "extproc"), Registry: reg,
		MaxEventBytes: cfg.Masking.MaxEventBytes, MaxBodyBytes: cfg.Masking.MaxBodyBytes,
	})

	if g.AuthzAddr, err = g.serveGRPC("listen.authz", cfg.Listen.Authz, AuthzMaxRecvMsgSize(cfg), func(s *grpc.Server) {
		authv3.RegisterAuthorizationServer(s, &extauthz.Server{A: authz})
	}); err != nil {
		return fail(err)
	}
	if g.ProcAddr, err = g.serveGRPC("listen.proc", cfg.Listen.Proc, ProcMaxRecvMsgSize(cfg), func(s *grpc.Server) {
		extprocv3.RegisterExternalProcessorServer(s, &extproc.Server{P: g.Processor})
	}); err != nil {
		return fail(err)
	}
	if cfg.Listen.HTTP != "" {
		l, err := net.Listen("tcp", cfg.Listen.HTTP)
		if err != nil {
			return fail(fmt.Errorf("listen.http: %w", err))
		}
		g.HTTPAddr = l.Addr()
		g.httpSrv = &http.Server{Handler: g.HTTP, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := g.httpSrv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				g.errc <- err
			}
		}()
	}
	if cfg.Listen.XDS != "" {
		// Envoy's clusters for airlock's own services point at the
		// addresses actually bound (a config may ask for port 0).
		var bound envoy.Bound
		for _, a := range []struct {
			dst  *string
			addr net.Addr
		}{{&bound.Authz, g.AuthzAddr}, {&bound.Proc, g.ProcAddr}, {&bound.HTTP, g.HTTPAddr}} {
			if a.addr != nil {
				*a.dst = a.addr.String()
			}
		}
		model, err := envoy.NewModel(cfg, bound)
		if err != nil {
			return fail(err)
		}
		x, err := xds.New(model, xds.Options{Logger: log.With("component", "xds"), Registerer: reg})
		if err != nil {
			return fail(err)
		}
		g.XDS = x
		authz.SetGrantRoutes(x)
		g.closers = append(g.closers, func() error { x.Close(); return nil })
		if g.XDSAddr, err = g.serveGRPC("listen.xds", cfg.Listen.XDS, 0, x.Register); err != nil {
			return fail(err)
		}
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g.cancel = cancel
	if g.XDS != nil {
		// Routes follow grants: issued → a route in every Envoy; ended → gone.
		go xds.Follow(wctx, svc, g.XDS, xds.FollowOptions{Logger: log.With("component", "xds")})
	}
	go func() {
		defer close(g.done)
		if cfg.Policy.ReloadInterval > 0 {
			store.Watch(wctx, cfg.Policy.ReloadInterval)
		} else {
			<-wctx.Done()
		}
	}()
	g.HTTP.SetReady(true)
	log.Info("airlock serving", "authz", addrString(g.AuthzAddr), "proc", addrString(g.ProcAddr), "xds", addrString(g.XDSAddr), "http", addrString(g.HTTPAddr),
		"grpc_transport", transportName(g.TLS), "targets", len(cfg.Targets), "policy_version", store.Current().Version())
	return g, nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

// Err reports a service that stopped serving on its own.
func (g *Gateway) Err() <-chan error { return g.errc }

// Stop shuts every service down, letting in-flight calls finish for up to
// the context's deadline.
//
// Order: the gRPC services drain first (calls in flight, held ones
// included, finish), then the grant service and the rest close (which ends
// the approval event streams), then the HTTP server shuts down.
func (g *Gateway) Stop(ctx context.Context) {
	g.HTTP.SetReady(false)
	g.cancel()
	if g.XDS != nil {
		// ADS streams never end on their own; GracefulStop would wait them out.
		g.XDS.Close()
	}
	for _, s := range g.grpcs {
		stopped := make(chan struct{})
		go func() { s.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			s.Stop()
		}
	}
	<-g.done
	for _, c := range g.closers {
		if err := c(); err != nil {
			g.log.Error("shutdown", "error", err)
		}
	}
	if g.httpSrv != nil {
		_ = g.httpSrv.Shutdown(ctx)
	}
}

// serveGRPC starts one gRPC service on addr ("" = off), each on its own
// port as Envoy's clusters expect, with keepalive, gRPC health, mutual
// TLS when listen.tls is set, and a receive limit (0: gRPC's 4 MiB).
func (g *Gateway) serveGRPC(field, addr string, maxRecv int, register func(*grpc.Server)) (net.Addr, error) {
	if addr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	opts := []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
	if g.creds != nil {
		opts = append(opts, grpc.Creds(g.creds))
	}
	if maxRecv > 0 {
		opts = append(opts, grpc.MaxRecvMsgSize(maxRecv))
	}
	s := grpc.NewServer(opts...)
	register(s)
	healthpb.RegisterHealthServer(s, health.NewServer())
	g.grpcs = append(g.grpcs, s)
	go func() { g.errc <- s.Serve(l) }()
	return l.Addr(), nil
}

func (g *Gateway) stopGRPC() {
	for _, s := range g.grpcs {
		s.Stop()
	}
}

// Run starts the gateway and serves until ctx ends or a service fails.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	gc := tuneGC()
	if opts.Logger != nil {
		opts.Logger.Debug("garbage collector", "gc_percent", gc)
	}
	g, err := Start(ctx, cfg, opts)
	if err != nil {
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-g.errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g.Stop(sctx)
	return runErr
}
