// Command airlock is the airlock gateway's single binary: `serve` runs the
// services Envoy talks to, and the other subcommands are the operator CLI.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/audit"
	auditch "github.com/airlock-mcp/airlock/internal/audit/clickhouse"
	"github.com/airlock-mcp/airlock/internal/cli"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/policy"
	"github.com/airlock-mcp/airlock/internal/serve"
)

const usage = `airlock — just-in-time, policy-checked access from AI agents to MCP servers, behind Envoy.

Usage:
  airlock serve     --config airlock.yaml   run ext_authz, the HTTP API and policy reload
  airlock validate  --config airlock.yaml   check the config, the policies, credentials, TLS files and
                                            listen addresses, and the Envoy config, then exit
  airlock sessions  --config airlock.yaml [--principal P] [--target T] [--since 24h] [--limit N]
                                            list recorded MCP sessions (ClickHouse or the embedded store)
  airlock replay    --config airlock.yaml [--payloads] SESSION
                                            print a session's messages in order, as they happened
  airlock envoy bootstrap --config airlock.yaml [--node-id ID] [--node-cluster C] [--static] [--sotw]
                                            print the Envoy bootstrap: ADS from airlock (default),
                                            or --static with everything inline
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(args[1:], stderr)
	case "validate":
		err = cmdValidate(args[1:], stdout)
	case "envoy":
		err = cmdEnvoy(args[1:], stdout)
	case "requests", "request", "approve", "deny", "cancel", "grants", "revoke", "watch":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return cli.Run(ctx, args, cli.Env{Stdout: stdout, Stderr: stderr})
	case "sessions":
		err = cmdSessions(args[1:], stdout)
	case "replay":
		err = cmdReplay(args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage+cli.Usage())
		return 0
	default:
		fmt.Fprintf(stderr, "airlock: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "airlock %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "airlock.yaml", "path to airlock.yaml")
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	o := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

func cmdServe(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve.Run(ctx, cfg, serve.Options{Logger: newLogger(cfg, stderr)})
}

func cmdValidate(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	path := configFlag(fs)
	noCreds := fs.Bool("skip-credentials", false, "do not check that upstream credentials can be read (e.g. in CI without secrets)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	var errs []error
	eng, err := policy.Load(cfg.Policy.Dir, cfg.Policy.Query)
	if err != nil {
		errs = append(errs, err)
	}
	if !*noCreds {
		for _, t := range cfg.Targets {
			if _, err := t.Credential.Resolve(); err != nil {
				errs = append(errs, fmt.Errorf("targets %s: %w", t.Name, err))
			}
		}
	}
	// The gRPC transport as serve will set it up: TLS files loaded, or
	// every plaintext listener on loopback (host names resolved).
	grpcTransport := "plaintext on loopback"
	if _, err := serve.Transport(context.Background(), cfg, nil); err != nil {
		errs = append(errs, err)
	} else if cfg.Listen.TLS.Enabled() {
		grpcTransport = "mutual TLS"
	} else if cfg.Listen.Insecure {
		grpcTransport = "plaintext (listen.insecure)"
	}
	if cfg.Listen.TLS.Enabled() && !cfg.Listen.TLS.Envoy.Configured() {
		// Envoy is configured elsewhere (Istio, Envoy Gateway): airlock
		// cannot render a configuration that reaches its listeners.
		fmt.Fprintf(stdout, "%s: Envoy config not checked: listen.tls is set without listen.tls.envoy\n", *path)
	} else if _, err := envoy.Build(cfg, envoy.Options{}); err != nil {
		errs = append(errs, fmt.Errorf("envoy config: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if names := cfg.Unmasked(); len(names) > 0 {
		fmt.Fprintf(stdout, "%s: warning: listen.proc is empty, so responses of %s are neither masked nor recorded (set listen.proc, or masking_profile: off to say so)\n", *path, strings.Join(names, ", "))
	}
	fmt.Fprintf(stdout, "%s: ok (%d issuers, %d targets, policy %s version %s, gRPC listeners %s)\n", *path, len(cfg.Issuers), len(cfg.Targets), cfg.Policy.Dir, eng.Version(), grpcTransport)
	return nil
}

func cmdEnvoy(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "bootstrap" {
		return errors.New("usage: airlock envoy bootstrap --config airlock.yaml")
	}
	fs := flag.NewFlagSet("envoy bootstrap", flag.ContinueOnError)
	path := configFlag(fs)
	nodeID := fs.String("node-id", "airlock-gateway", "Envoy node id")
	nodeCluster := fs.String("node-cluster", "airlock", "Envoy node cluster")
	listen := fs.String("listen", "", "address Envoy accepts agents on (default: 0.0.0.0 and public_url's port)")
	static := fs.Bool("static", false, "print a self-contained bootstrap (no control plane; no per-grant routes)")
	xdsAddr := fs.String("xds-address", "", "host:port where Envoy reaches airlock's ADS (default listen.xds)")
	sotw := fs.Bool("sotw", false, "state-of-the-world ADS instead of incremental (delta)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	node := envoy.Node{ID: *nodeID, Cluster: *nodeCluster}
	var b *bootstrapv3.Bootstrap
	if *static {
		res, err := envoy.Build(cfg, envoy.Options{ListenAddress: *listen})
		if err != nil {
			return err
		}
		if b, err = envoy.StaticBootstrap(res, node); err != nil {
			return err
		}
	} else {
		addr := *xdsAddr
		if addr == "" {
			addr = cfg.Listen.XDS
		}
		if addr == "" {
			return errors.New("ADS needs --xds-address or listen.xds (or use --static)")
		}
		// Report config errors here, not as NACKs later.
		if _, err := envoy.BuildDynamic(cfg, envoy.Options{ListenAddress: *listen}); err != nil {
			return err
		}
		if b, err = envoy.ADSBootstrap(node, addr, envoy.ADSOptions{SotW: *sotw}); err != nil {
			return err
		}
		// With listen.tls, Envoy reaches ADS with its client certificate.
		if err := envoy.SecureADSBootstrap(b, cfg); err != nil {
			return err
		}
	}
	out, err := envoy.YAML(b)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

func openAudit(path string) (audit.StoreCloser, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return auditch.OpenStore(context.Background(), cfg.Audit, audit.Options{})
}

func cmdSessions(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sessions", flag.ContinueOnError)
	path := configFlag(fs)
	principal := fs.String("principal", "", "only this user (token subject)")
	target := fs.String("target", "", "only this target")
	since := fs.Duration("since", 24*time.Hour, "sessions active in this past window")
	limit := fs.Int("limit", 50, "at most this many sessions")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := openAudit(*path)
	if err != nil {
		return err
	}
	defer st.Close()
	sums, err := st.Sessions(context.Background(), audit.SessionFilter{Principal: *principal, Target: *target, Since: time.Now().Add(-*since), Limit: *limit})
	if err != nil {
		return err
	}
	return audit.WriteSessions(stdout, sums)
}

func cmdReplay(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	path := configFlag(fs)
	payloads := fs.Bool("payloads", false, "print each message's (masked) payload")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: airlock replay --config airlock.yaml [--payloads] SESSION")
	}
	st, err := openAudit(*path)
	if err != nil {
		return err
	}
	defer st.Close()
	evs, err := st.Replay(context.Background(), fs.Arg(0))
	if err != nil {
		return err
	}
	return audit.WriteTimeline(stdout, evs, audit.TimelineOptions{Payloads: *payloads})
}
