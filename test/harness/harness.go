// Package harness starts airlock end to end as users run it, on loopback:
// a real OIDC issuer, real MCP servers (the Go SDK server and, on request,
// the npm server-everything, the TypeScript SDK server and compressing Go
// servers), airlock's services over real gRPC and HTTP, and the data path
// (real Envoy when an envoy binary is on PATH, else the local stand-in
// test/envoydriver) configured with the static bootstrap airlock renders
// or, with Options.ADS, fed over ADS by airlock's xDS server. The
// end-to-end tests and `make demo` both use it.
package harness

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/serve"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
	"github.com/airlock-mcp/airlock/test/peers"
)

//go:embed policy_data.yaml
var policyData []byte

// UpstreamSecret is the Go MCP server's own credential: airlock injects
// it, and the server refuses anything else.
const UpstreamSecret = "upstream-credential-7f3a9c"

// Options shape the stack.
type Options struct {
	Logger *slog.Logger
	// Everything also starts the npm MCP server-everything as target "everything".
	Everything bool
	// KeepWorkDir leaves WorkDir (airlock.yaml, the grant store and the
	// recording) in place on Close, so `airlock sessions`/`replay` can read
	// it afterwards (make demo).
	KeepWorkDir bool
	// ExtraConfig, given the gateway's base URL, returns airlock.yaml
	// sections appended to the generated config (make demo's inbox).
	ExtraConfig func(baseURL string) string
	// MaxRequestBytes is airlock's (and Envoy's) body limit (default 1 MiB).
	MaxRequestBytes int
	// MaxResponseBytes is limits.max_response_bytes (default airlock's, 8 MiB).
	MaxResponseBytes int
	// TokenTTL of minted tokens (default 1h).
	TokenTTL time.Duration
	// HoldWindow and PendingTTL of access requests (defaults: airlock's,
	// 25s and 10m).
	HoldWindow, PendingTTL time.Duration
	// AirlockBinary, when set, runs airlock as its own process
	// (`airlock serve --config …`, JSON logs to AirlockLog) instead of in
	// this process.
	AirlockBinary string
	AirlockLog    io.Writer
	// OIDCProvider also starts the certified npm oidc-provider as a second
	// trusted issuer, with the client AgentClientID / AgentClientSecret.
	OIDCProvider bool
	// EnvoyVersion is the Envoy release the stand-in plays ("" = its
	// default, the newest); ignored with a real Envoy. Releases differ in
	// what airlock can rely on (1.34–1.36 do not run ext_proc on local
	// replies), so the suites run at the floor as well as the newest.
	EnvoyVersion string
	// ADS feeds the data path over ADS from airlock's xDS listener, as
	// production does (`airlock envoy bootstrap --ads`), instead of a
	// static bootstrap; grant routes then come and go as grants do.
	ADS bool
	// TSServer also starts the TypeScript SDK server (test/node/tsserver.mjs,
	// which decodes bodies by their charset and Content-Encoding) as targets
	// "tsserver" (stateful, SSE) and "tsstateless" (no sessions, JSON).
	TSServer bool
	// GzipServers also starts two Go servers that compress their answers:
	// "gzipjson" (JSON, gzip when the request accepts it) and "gzipsse"
	// (SSE, gzip always, whatever the request accepts).
	GzipServers bool
	// NoScopeTarget adds target "noscope" (the stateless Go JSON server
	// of "jsonapi") without scopes_required.
	NoScopeTarget bool
	// IssuerAudiences are the okta issuer's own audiences (accepted in
	// addition to each target's resource URI; Okta's api://default).
	IssuerAudiences []string
	// SecondIssuer also starts a second token issuer (test/oidcissuer at
	// /oauth2/second), trusted as "second", minting any subject — the same
	// subject as an okta one included (see Stack.Token2).
	SecondIssuer bool
	// ListenTLS, when set, makes airlock's gRPC listeners (ext_authz,
	// ext_proc, ADS) take mutual TLS only (listen.tls), and the data path
	// reach them with the client certificate it names.
	ListenTLS *config.ListenTLS
	// PolicyData are more policy data files, by path under the policy
	// directory (e.g. "airlock/rules/tsserver/data.yaml" holds
	// data.airlock.rules.tsserver).
	PolicyData map[string]string
	// ClickHouse, when set (host:port of a native-protocol listener),
	// sends the audit rows to ClickHouse database ClickHouseDatabase
	// (default airlock), flushing every 50ms, instead of keeping them in
	// the embedded store.
	ClickHouse, ClickHouseDatabase string
}

// The OAuth client the oidc-provider issuer knows (client_credentials).
const (
	AgentClientID     = "mcp-agent"
	AgentClientSecret = "agent-secret-for-tests"
)

// Stack is a running airlock with its peers.
type Stack struct {
	Issuer *oidcissuer.Issuer
	// Issuer2 is the second issuer (Options.SecondIssuer).
	Issuer2  *oidcissuer.Issuer
	GoServer *peers.GoServer
	// JSONServer is the same Go SDK server answering with application/json
	// instead of SSE, as target "jsonapi".
	JSONServer *peers.GoServer
	Everything *peers.Everything
	OIDC       *peers.OIDCProvider
	// TSServer serves targets "tsserver" and "tsstateless" (Options.TSServer).
	TSServer *peers.TSServer
	// GzipJSON and GzipSSE serve targets "gzipjson" and "gzipsse"
	// (Options.GzipServers).
	GzipJSON, GzipSSE *peers.GoServer
	Gateway           *serve.Gateway // nil when airlock runs as a process
	Config            *config.Config
	// AuthzAddr, ProcAddr and HTTPAddr are where airlock's ext_authz,
	// ext_proc and HTTP listen; XDSAddr its ADS server (Options.ADS).
	AuthzAddr, ProcAddr, HTTPAddr, XDSAddr string
	DataPath                               DataPath
	// BaseURL is where agents reach the gateway (the data path's listener).
	BaseURL string
	WorkDir string
	// ADSResponses counts what the stand-in's ADS client received
	// (Options.ADS without a real Envoy); nil otherwise.
	ADSResponses *ADSCounter

	log     *slog.Logger
	closers []func() error
}

// Start brings everything up; on error nothing is left running.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	s := &Stack{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if s.WorkDir, err = os.MkdirTemp("", "airlock-e2e-"); err != nil {
		return nil, err
	}
	if !opts.KeepWorkDir {
		s.closers = append(s.closers, func() error { return os.RemoveAll(s.WorkDir) })
	}

	if s.Issuer, err = oidcissuer.New(oidcissuer.Options{Path: "/oauth2/default", TokenTTL: opts.TokenTTL}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Issuer.Close)
	if opts.SecondIssuer {
		if s.Issuer2, err = oidcissuer.New(oidcissuer.Options{Path: "/oauth2/second", TokenTTL: opts.TokenTTL}); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, s.Issuer2.Close)
	}
	if s.GoServer, err = peers.StartGoServer(ctx, peers.GoServerOptions{RequireBearer: UpstreamSecret}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.GoServer.Close)
	if s.JSONServer, err = peers.StartGoServer(ctx, peers.GoServerOptions{RequireBearer: UpstreamSecret, JSONResponse: true, Stateless: true}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.JSONServer.Close)
	if opts.Everything {
		if s.Everything, err = peers.StartEverything(ctx, peers.EverythingOptions{}); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, s.Everything.Close)
	}

	if opts.TSServer {
		if s.TSServer, err = peers.StartTSServer(ctx, peers.TSServerOptions{RequireBearer: UpstreamSecret}); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, s.TSServer.Close)
	}
	if opts.GzipServers {
		if s.GzipJSON, err = peers.StartGoServer(ctx, peers.GoServerOptions{RequireBearer: UpstreamSecret, JSONResponse: true, Stateless: true, Gzip: peers.GzipIfAccepted}); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, s.GzipJSON.Close)
		if s.GzipSSE, err = peers.StartGoServer(ctx, peers.GoServerOptions{RequireBearer: UpstreamSecret, Stateless: true, Gzip: peers.GzipAlways}); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, s.GzipSSE.Close)
	}

	if opts.OIDCProvider {
		if s.OIDC, err = peers.StartOIDCProvider(ctx, peers.OIDCOptions{Clients: []peers.OIDCClient{{
			ID: AgentClientID, Secret: AgentClientSecret, UID: "00u-agent-owner", Groups: []string{"engineering"},
		}}}); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, s.OIDC.Close)
	}

	port, err := freePort()
	if err != nil {
		return nil, err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	s.BaseURL = "http://" + listen
	if opts.AirlockBinary != "" {
		err = s.startProcess(ctx, opts)
	} else {
		err = s.startInProcess(ctx, opts, log)
	}
	if err != nil {
		return nil, err
	}
	if opts.ADS {
		// Everything but the ADS cluster arrives over ADS; the listener
		// binds public_url's port.
		b, err := envoy.ADSBootstrap(envoy.Node{ID: "airlock-e2e", Cluster: "airlock"}, s.XDSAddr, envoy.ADSOptions{})
		if err != nil {
			return nil, err
		}
		if err := envoy.SecureADSBootstrap(b, s.Config); err != nil {
			return nil, err
		}
		s.ADSResponses = &ADSCounter{}
		if s.DataPath, err = startADSDataPath(ctx, b, listen, s.WorkDir, log, s.ADSResponses, opts.EnvoyVersion); err != nil {
			return nil, err
		}
		if _, real := s.DataPath.(envoyProc); real {
			s.ADSResponses = nil
		}
	} else {
		// Envoy's clusters point at the ports airlock actually bound.
		res, err := envoy.Build(s.Config, envoy.Bound{ListenAddress: listen, Authz: s.AuthzAddr, Proc: s.ProcAddr, HTTP: s.HTTPAddr})
		if err != nil {
			return nil, err
		}
		b, err := envoy.StaticBootstrap(res, envoy.Node{ID: "airlock-e2e", Cluster: "airlock"})
		if err != nil {
			return nil, err
		}
		if s.DataPath, err = startDataPath(ctx, b, listen, s.WorkDir, opts.EnvoyVersion); err != nil {
			return nil, err
		}
	}
	s.closers = append(s.closers, s.DataPath.Close)
	return s, nil
}

// startInProcess runs airlock in this process on fixed loopback ports, so
// RestartAirlock can bring it back where the data path expects it.
func (s *Stack) startInProcess(ctx context.Context, opts Options, log *slog.Logger) (err error) {
	s.log = log.With("component", "airlock")
	for attempt := 1; ; attempt++ {
		addrs, err := freeAddrs(4)
		if err != nil {
			return err
		}
		xdsAddr := ""
		if opts.ADS {
			xdsAddr = addrs[3]
		}
		if s.Config, err = s.writeConfig(opts, addrs[0], addrs[1], addrs[2], xdsAddr, "debug"); err != nil {
			return err
		}
		if s.Gateway, err = serve.Start(ctx, s.Config, serve.Options{Logger: s.log}); err == nil {
			break
		}
		// The addresses are fixed in the config (a restart must find
		// the xDS server where it was), so another process may take one
		// between freeAddrs and the bind (the packages' tests run at
		// once): Start has stopped what it started; try other ports.
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 3 {
			return err
		}
	}
	s.closers = append(s.closers, func() error {
		if s.Gateway == nil {
			return nil
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Gateway.Stop(sctx)
		return nil
	})
	s.AuthzAddr, s.HTTPAddr = s.Gateway.AuthzAddr.String(), s.Gateway.HTTPAddr.String()
	s.ProcAddr = s.Gateway.ProcAddr.String()
	if s.Gateway.XDSAddr != nil {
		s.XDSAddr = s.Gateway.XDSAddr.String()
	}
	return nil
}

// RestartAirlock stops the in-process airlock and starts it again with
// the same configuration, addresses and state on disk (grant store,
// audit spool), as a rolling upgrade or a crash and restart does. The
// data path stays up: Envoy (or the stand-in) keeps its configuration
// and reconnects to ADS on its own.
func (s *Stack) RestartAirlock(ctx context.Context) error {
	if s.Gateway == nil {
		return errors.New("harness: RestartAirlock needs airlock in this process")
	}
	// Long-lived streams (an agent's SSE GET keeps an ext_proc stream
	// open) are drained for a moment and then cut, as at a deploy.
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	s.Gateway.Stop(sctx)
	cancel()
	s.Gateway = nil
	g, err := serve.Start(ctx, s.Config, serve.Options{Logger: s.log})
	if err != nil {
		return fmt.Errorf("harness: airlock did not start again: %w", err)
	}
	s.Gateway = g
	return nil
}

// freeAddrs reserves n distinct loopback addresses: each port is held
// until all are picked, then released for airlock to bind (a port another
// process takes in between fails the start loudly).
func freeAddrs(n int) ([]string, error) {
	out := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// startProcess runs `airlock serve` as users do and waits for /readyz.
func (s *Stack) startProcess(ctx context.Context, opts Options) (err error) {
	var ports [4]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	s.AuthzAddr, s.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	s.ProcAddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
	if opts.ADS {
		s.XDSAddr = fmt.Sprintf("127.0.0.1:%d", ports[3])
	}
	if s.Config, err = s.writeConfig(opts, s.AuthzAddr, s.HTTPAddr, s.ProcAddr, s.XDSAddr, "info"); err != nil {
		return err
	}
	cmd := exec.Command(opts.AirlockBinary, "serve", "--config", filepath.Join(s.WorkDir, "airlock.yaml"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logw := opts.AirlockLog
	if logw == nil {
		logw = io.Discard
	}
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start airlock: %w", err)
	}
	s.closers = append(s.closers, func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		return nil
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + s.HTTPAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			return fmt.Errorf("airlock serve did not become ready at %s: %v", s.HTTPAddr, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TargetURL is the gateway URL of a target's MCP endpoint.
func (s *Stack) TargetURL(name string) string { return s.BaseURL + "/mcp/" + name }

// Token mints an Okta-shaped access token for target (audience = its
// resource URI) with scope mcp.read, for the user sub acting through the
// agent client "0oa-agent".
func (s *Stack) Token(sub, target string, mutate ...func(*oidcissuer.Token)) (string, error) {
	t := oidcissuer.Token{
		Subject: sub, User: sub, ClientID: "0oa-agent",
		Scopes: []string{"mcp.read"}, Groups: []string{"engineering"},
		Audience: []string{s.TargetURL(target)},
	}
	for _, m := range mutate {
		m(&t)
	}
	return s.Issuer.Mint(t)
}

// Token2 is Token from the second issuer (Options.SecondIssuer).
func (s *Stack) Token2(sub, target string, mutate ...func(*oidcissuer.Token)) (string, error) {
	if s.Issuer2 == nil {
		return "", errors.New("harness: no second issuer (Options.SecondIssuer)")
	}
	t := oidcissuer.Token{
		Subject: sub, User: sub, ClientID: "0oa-agent",
		Scopes: []string{"mcp.read"}, Groups: []string{"engineering"},
		Audience: []string{s.TargetURL(target)},
	}
	for _, m := range mutate {
		m(&t)
	}
	return s.Issuer2.Mint(t)
}

// Close stops everything, last started first.
func (s *Stack) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	return errors.Join(errs...)
}
