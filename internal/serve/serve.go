// Package serve wires airlock's services together from a configuration and
// runs them: ext_authz (gRPC), the HTTP server (metadata, health, metrics),
// and policy reloading. cmd/airlock calls Run; tests and the demo start the
// same wiring in-process with Start.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

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
	"github.com/airlock-mcp/airlock/internal/decisionlog"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/grants/pgstore"
	"github.com/airlock-mcp/airlock/internal/grpcwire"
	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/meta"
	"github.com/airlock-mcp/airlock/internal/mtls"
	"github.com/airlock-mcp/airlock/internal/notify"
	"github.com/airlock-mcp/airlock/internal/policy/rego"
	"github.com/airlock-mcp/airlock/internal/slackapp"
	"github.com/airlock-mcp/airlock/internal/telemetry"
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

	// Tracer is the tracer provider (zero when tracing is off);
	// Decisions the decision log (nil when off).
	Tracer    *telemetry.Provider
	Decisions *decisionlog.Logger

	AuthzAddr net.Addr // where ext_authz listens (resolved, e.g. after port 0); nil when off
	ProcAddr  net.Addr // ext_proc
	XDSAddr   net.Addr // ADS
	HTTPAddr  net.Addr

	log   *slog.Logger
	opts  Options
	creds credentials.TransportCredentials // nil: plaintext
	// grpcMetrics are the gRPC server metrics (grpc_server_*) of every
	// gRPC service airlock serves, by grpc_service and grpc_method.
	grpcMetrics *grpcMetrics
	life        lifecycle // what Start brought up, stopped in reverse
	errc        chan error
}

// Options for Start.
type Options struct {
	Logger     *slog.Logger
	HTTPClient *http.Client // for issuer discovery and JWKS
	// Telemetry is for tests: an exporter in place of the configured
	// OTLP one (turns tracing on).
	Telemetry telemetry.Options
	// DecisionLogStdout is the decision log's stdout sink (tests);
	// os.Stdout when nil.
	DecisionLogStdout io.Writer
}

// Start builds every configured service, binds its listener and serves in
// the background. It fails, having started nothing (or stopped what it
// had started), if the configuration, a credential or the policy is
// broken, or a later component cannot start.
//
// Components start in one order, each added to the gateway's lifecycle as
// soon as it runs; Stop (and a failed Start) stops them in reverse:
//
//	audit → telemetry → http → notify → grants → decision_log → ext_authz → ext_proc → xDS → workers
//
// (telemetry and decision_log only when configured: the tracer provider
// flushes the last spans after every traced service stopped, the
// decision log writes what is queued once ext_authz took its last Check)
// so at Stop the workers and xDS go first, held and in-flight calls drain
// while the grant service still answers them, the grant service then ends
// the approval event streams the HTTP server is holding, the HTTP server
// shuts down, and the audit recorder closes last, after every recording
// component. xDS serves only once the live grants are loaded into it
// (xds.StartFollow): an Envoy reconnecting to a restarted airlock keeps
// every grant's route instead of being told to remove them.
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
	g := &Gateway{Config: cfg, Policy: store, Registry: reg, log: log, opts: opts, errc: make(chan error, 8), grpcMetrics: newGRPCMetrics()}
	reg.MustRegister(g.grpcMetrics)
	g.life.log = log
	if chk.TLS != nil {
		g.TLS, g.creds = chk.TLS, chk.TLS.Credentials()
		reg.MustRegister(certCollector{tls: chk.TLS, envoyCert: cfg.Listen.TLS.Envoy.CertFile})
	}
	if err := g.start(ctx, ver); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = g.life.close(cctx)
		return nil, err
	}
	g.HTTP.SetReady(true)
	log.Info("airlock serving", "authz", addrString(g.AuthzAddr), "proc", addrString(g.ProcAddr), "xds", addrString(g.XDSAddr), "http", addrString(g.HTTPAddr),
		"grpc_transport", transportName(g.TLS), "targets", len(cfg.Targets), "policy_version", store.Current().Version(),
		"components", g.life.names())
	return g, nil
}

// start brings up the components in order, adding each to g.life.
func (g *Gateway) start(ctx context.Context, ver *identity.Verifier) error {
	cfg, log, reg := g.Config, g.log, g.Registry
	rec, err := auditch.Open(ctx, cfg.Audit, audit.Options{Logger: log.With("component", "audit"), Registerer: reg})
	if err != nil {
		return err
	}
	g.Audit = rec
	g.life.add("audit", func(ctx context.Context) error {
		// What is not shipped stays spooled for the next start.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return rec.Close(actx)
	})

	// Tracing: off (the default) is a nil *tracing.Tracing, no SDK.
	topts := g.opts.Telemetry
	if topts.Logger == nil {
		topts.Logger = log.With("component", "telemetry")
	}
	if g.Tracer, err = telemetry.New(ctx, cfg.Telemetry.Tracing, topts); err != nil {
		return err
	}
	if g.Tracer.Tracing != nil {
		tp := g.Tracer
		g.life.add("telemetry", func(ctx context.Context) error {
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return tp.Shutdown(tctx)
		})
	}
	tr := g.Tracer.Tracing

	// The HTTP server (probes, metrics, metadata; the approvals API and
	// inbox once mounted below) is up early and stops late: it must
	// outlive the grant service, which ends the event streams it holds.
	g.HTTP = meta.New(cfg, meta.Options{Gatherer: reg, Logger: log.With("component", "http")})
	if cfg.Listen.HTTP != "" {
		l, err := net.Listen("tcp", cfg.Listen.HTTP)
		if err != nil {
			return fmt.Errorf("listen.http: %w", err)
		}
		g.HTTPAddr = l.Addr()
		srv := &http.Server{Handler: g.HTTP, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				g.errc <- err
			}
		}()
		g.life.add("http", srv.Shutdown)
	}

	sender, err := notify.New(cfg.Notifications, notify.Options{
		Logger: log.With("component", "notify"), ApprovalURL: cfg.Grants.RequestURL,
		SlackButtons: cfg.Notifications.SlackApp != nil,
	})
	if err != nil {
		return err
	}
	g.life.add("notify", func(context.Context) error { sender.Close(); return nil })
	reg.MustRegister(sender.Collector())

	profiles, err := mask.NewSet(cfg.Masking.Profiles)
	if err != nil {
		return err
	}
	byTarget := make(map[string]string, len(cfg.Targets))
	for _, t := range cfg.Targets {
		byTarget[t.Name] = t.MaskingProfile
	}
	// The grant service masks arguments and reasons as they enter, so the
	// store, audit, logs, webhooks and the agent only see them masked.
	gmask, err := grants.ProfilesOf(profiles, byTarget)
	if err != nil {
		return err
	}
	gstore, err := pgstore.OpenConfigured(ctx, cfg.Grants, true, log.With("component", "grants"))
	if err != nil {
		return err
	}
	svc, err := grants.New(gstore, cfg.Grants, grants.Options{
		Notifier: sender, Auditor: grantAuditor{sink: rec, log: log}, Logger: log.With("component", "grants"), Mask: gmask,
		Metrics: grants.NewMetrics(reg),
	})
	if err != nil {
		_ = gstore.Close()
		return err
	}
	g.Grants = svc
	g.life.add("grants", func(context.Context) error { return svc.Close() }) // closes the store too

	// The decision log masks with the targets' profiles, as the grant
	// service does.
	if g.Decisions, err = decisionlog.New(cfg.DecisionLog, decisionlog.Options{
		Logger: log.With("component", "decision_log"), Registerer: reg, Profiles: gmask, Query: cfg.Policy.Query,
		ID: instanceID(), Version: telemetry.Version(), Stdout: g.opts.DecisionLogStdout,
	}); err != nil {
		return err
	}
	if dl := g.Decisions; dl != nil {
		g.life.add("decision_log", func(ctx context.Context) error {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return dl.Close(dctx)
		})
	}

	authz, err := extauthz.New(cfg, extauthz.Options{
		Verifier: ver, Policy: g.Policy, Approvals: svc, Audit: rec,
		Logger: log.With("component", "extauthz"), Metrics: extauthz.NewMetrics(reg),
		Tracing: tr, Decisions: g.Decisions,
	})
	if err != nil {
		return err
	}
	g.Authorizer = authz
	var ts []approvals.Target
	for _, t := range cfg.Targets {
		ts = append(ts, approvals.Target{Name: t.Name, Resource: t.Resource, PathPrefix: t.PathPrefix,
			ScopesRequired: t.ScopesRequired, MaskingProfile: t.MaskingProfile})
	}
	ah, err := approvals.New(approvals.Options{
		Grants: svc, Verifier: ver, Policy: g.Policy, API: cfg.API, PublicURL: cfg.PublicURL,
		Inbox: cfg.Inbox, Audit: rec, Targets: ts, Profiles: profiles, Logger: log.With("component", "approvals"),
	})
	if err != nil {
		return err
	}
	g.HTTP.Handle("/airlock/", ah)
	if sa := cfg.Notifications.SlackApp; sa != nil {
		sh, err := slackapp.New(slackapp.Options{Config: *sa, Grants: svc, Logger: log.With("component", "slackapp")})
		if err != nil {
			return err
		}
		g.HTTP.Handle(slackapp.Path, sh)
	}
	g.Processor = extproc.New(extproc.Options{
		Profiles: profiles, Recorder: rec, Logger: log.With("component", "extproc"), Registry: reg,
		MaxEventBytes: cfg.Masking.MaxEventBytes, MaxBodyBytes: cfg.ResponseLimit(), MaxStreams: cfg.Limits.MaxStreams,
		MaxRequestBytes: cfg.Limits.MaxRequestBytes, Targets: targetNames(cfg),
		// The Envoy config airlock renders (envoy.extProcConfig) honours
		// mode_override, so a JSON body is read BUFFERED_PARTIAL and one
		// over the response limit is answered by id (extproc planBody).
		ModeOverride: true,
		Tracing:      tr,
	})

	if g.AuthzAddr, err = g.serveGRPC("ext_authz", "listen.authz", cfg.Listen.Authz, AuthzMaxRecvMsgSize(cfg), nil, func(s *grpc.Server) {
		extauthz.Register(s, &extauthz.Server{A: authz}) // needs grpcwire's codec, which serveGRPC gives ext_authz
	}); err != nil {
		return err
	}
	if g.ProcAddr, err = g.serveGRPC("ext_proc", "listen.proc", cfg.Listen.Proc, ProcMaxRecvMsgSize(cfg), nil, func(s *grpc.Server) {
		extprocv3.RegisterExternalProcessorServer(s, &extproc.Server{P: g.Processor})
	}); err != nil {
		return err
	}
	stopFollow := func() {}
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
			return err
		}
		x, err := xds.New(model, xds.Options{Logger: log.With("component", "xds"), Registerer: reg, Tracing: tr})
		if err != nil {
			return err
		}
		g.XDS = x
		authz.SetGrantRoutes(x)
		// Routes follow grants: issued → a route in every Envoy; ended →
		// gone. The live grants are loaded before xDS serves, so an Envoy
		// reconnecting after a restart keeps every grant's route.
		fctx, fcancel := context.WithCancel(context.WithoutCancel(ctx))
		followed, err := xds.StartFollow(fctx, svc, x, xds.FollowOptions{Logger: log.With("component", "xds")})
		if err != nil {
			fcancel()
			x.Close()
			return err
		}
		stopFollow = func() { fcancel(); <-followed }
		// ADS streams never end on their own: close them before the
		// graceful stop, which would otherwise wait them out.
		if g.XDSAddr, err = g.serveGRPC("xds", "listen.xds", cfg.Listen.XDS, 0, x.Close, x.Register); err != nil {
			stopFollow()
			x.Close()
			return err
		}
		g.HTTP.Handle("GET "+xds.StatusPath, x.StatusHandler())
	}

	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var workers sync.WaitGroup
	if cfg.Policy.ReloadInterval > 0 {
		workers.Go(func() { g.Policy.Watch(wctx, cfg.Policy.ReloadInterval) })
	}
	g.life.add("workers", func(context.Context) error { cancel(); stopFollow(); workers.Wait(); return nil })
	return nil
}

// instanceID is the decision log's labels.id: the host name (a pod's
// name), or "airlock".
func instanceID() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "airlock"
}

func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

// Err reports a service that stopped serving on its own.
func (g *Gateway) Err() <-chan error { return g.errc }

// Stop shuts every service down, in the reverse of the order Start
// brought them up (see Start), letting in-flight calls, held ones
// included, finish for up to the context's deadline.
func (g *Gateway) Stop(ctx context.Context) {
	g.HTTP.SetReady(false)
	_ = g.life.close(ctx) // each failure is logged with its component
}

// serveGRPC starts one gRPC service on addr ("" = off), each on its own
// port as Envoy's clusters expect, with keepalive, gRPC health, mutual
// TLS when listen.tls is set, and a receive limit (0: gRPC's 4 MiB), and
// adds it to the lifecycle: stopping it runs before (if not nil), then
// drains the calls in flight until ctx ends, then cuts the rest.
func (g *Gateway) serveGRPC(name, field, addr string, maxRecv int, before func(), register func(*grpc.Server)) (net.Addr, error) {
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
	if name == "ext_authz" || name == "ext_proc" {
		// Envoy's filters: the request path. Messages there may encode
		// and decode themselves (grpcwire); the rest stay protobuf's.
		opts = append(opts, grpc.NumStreamWorkers(streamWorkers), grpcwire.ServerOption())
	}
	if g.creds != nil {
		opts = append(opts, grpc.Creds(g.creds))
	}
	if maxRecv > 0 {
		opts = append(opts, grpc.MaxRecvMsgSize(maxRecv))
	}
	if m := g.grpcMetrics; m != nil {
		opts = append(opts, grpc.ChainUnaryInterceptor(m.UnaryServerInterceptor()), grpc.ChainStreamInterceptor(m.StreamServerInterceptor()))
	}
	s := grpc.NewServer(opts...)
	register(s)
	healthpb.RegisterHealthServer(s, health.NewServer())
	if m := g.grpcMetrics; m != nil {
		m.InitializeMetrics(s) // every method's series at 0, before its first call
	}
	go func() {
		if err := s.Serve(l); err != nil {
			g.errc <- fmt.Errorf("%s: %w", name, err)
		}
	}()
	g.life.add(name, func(ctx context.Context) error {
		if before != nil {
			before()
		}
		stopped := make(chan struct{})
		go func() { s.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			s.Stop()
		}
		return nil
	})
	return l.Addr(), nil
}

// streamWorkers is how many goroutines serve ext_authz calls and ext_proc
// streams. grpc-go otherwise starts a goroutine per call, whose stack then
// grows (and is copied) to the depth of a Check or of masking on every
// call; a worker keeps its grown stack. Calls beyond the workers (more
// Checks in flight than this, or long SSE streams holding them) still get
// their own goroutine: none waits for a worker.
const streamWorkers = 128

// Run starts the gateway and serves until ctx ends or a service fails.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	stopGC, gc := TuneGC(uint64(max(cfg.Limits.HeapTargetBytes, 0)))
	defer stopGC()
	if opts.Logger != nil {
		opts.Logger.Debug("garbage collector", "gc_percent", gc, "heap_target_bytes", cfg.Limits.HeapTargetBytes)
	}
	g, err := Start(ctx, cfg, opts)
	if err != nil {
		return err
	}
	// Starting (reading the grant store, compiling the policy) leaves
	// garbage several times what stays live, and the collection that
	// sees it sets the heap goal from it: collect once now and return it
	// to the OS, so the goal follows what serving keeps.
	debug.FreeOSMemory()
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
