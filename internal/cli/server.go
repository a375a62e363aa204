package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/audit"
	auditch "github.com/airlock-mcp/airlock/internal/audit/clickhouse"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/serve"
)

// The server verbs read airlock.yaml; they run in-process what the
// packages below them provide.

func configFlag(fs *pflag.FlagSet) *string {
	return fs.String("config", "airlock.yaml", "path to airlock.yaml")
}

func serveCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "serve --config airlock.yaml",
		Short:   "run ext_authz, ext_proc, xDS, the HTTP API and policy reload",
		GroupID: groupServer,
		Args:    noArgs,
	}
	path := configFlag(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmdServe(cmd.Context(), *path, env.Stderr) }
	return cmd
}

func validateCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "validate --config airlock.yaml [--skip-credentials]",
		Short:   "check the config, the policies, credentials, TLS files and listen addresses, and the Envoy config, then exit",
		GroupID: groupServer,
		Args:    noArgs,
	}
	path := configFlag(cmd.Flags())
	noCreds := cmd.Flags().Bool("skip-credentials", false, "do not check that upstream credentials and webhook URLs and keys can be read (e.g. in CI without secrets)")
	cmd.RunE = func(*cobra.Command, []string) error { return cmdValidate(env.Stdout, *path, *noCreds) }
	return cmd
}

func envoyBootstrapCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bootstrap --config airlock.yaml [--node-id ID] [--node-cluster C] [--static] [--sotw]",
		Short: "print the Envoy bootstrap: ADS from airlock (default), or --static with everything inline",
		Args:  noArgs,
	}
	fs := cmd.Flags()
	f := &bootstrapFlags{}
	fs.StringVar(&f.path, "config", "airlock.yaml", "path to airlock.yaml")
	fs.StringVar(&f.nodeID, "node-id", "airlock-gateway", "Envoy node id")
	fs.StringVar(&f.nodeCluster, "node-cluster", "airlock", "Envoy node cluster")
	fs.StringVar(&f.listen, "listen", "", "address Envoy accepts agents on (default: 0.0.0.0 and public_url's port)")
	fs.BoolVar(&f.static, "static", false, "print a self-contained bootstrap (no control plane; no per-grant routes)")
	fs.StringVar(&f.xdsAddr, "xds-address", "", "host:port where Envoy reaches airlock's ADS (default listen.xds)")
	fs.BoolVar(&f.sotw, "sotw", false, "state-of-the-world ADS instead of incremental (delta)")
	cmd.RunE = func(*cobra.Command, []string) error { return cmdEnvoyBootstrap(f, env.Stdout) }
	return cmd
}

func sessionsCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "sessions --config airlock.yaml [--principal P] [--client C] [--target T] [--tool T] [--outcome O] [--since 24h|7d] [--limit N] [--output table|json]",
		Short:   "list recorded MCP sessions (ClickHouse or the embedded store)",
		GroupID: groupAudit,
		Args:    noArgs,
	}
	fs := cmd.Flags()
	path := configFlag(fs)
	principal := fs.String("principal", "", "only this user (token subject)")
	client := fs.String("client", "", "only this agent (OAuth client id)")
	target := fs.String("target", "", "only this target")
	tool := fs.String("tool", "", "only sessions that called this tool (or resource URI, or prompt)")
	outcome := fs.String("outcome", "", "only sessions with a call decided so (allow, deny, approval_required, unauthenticated, forbidden, invalid, error)")
	since := window(24 * time.Hour)
	fs.Var(&since, "since", "sessions active in this past window (Go duration, or days: 7d)")
	limit := fs.Int("limit", 50, "at most this many sessions")
	output := outputFlag(fs)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		f := audit.SessionFilter{Principal: *principal, ClientID: *client, Target: *target, Tool: *tool, Outcome: *outcome,
			Since: env.Now().Add(-time.Duration(since)), Limit: *limit}
		return cmdSessions(cmd.Context(), *path, f, *output, env.Stdout)
	}
	return cmd
}

func replayCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "replay --config airlock.yaml [--payloads] [--outcome O] [--tool T] [--since 7d] [--output table|json] SESSION",
		Short:   "tell a session as it happened: messages, decisions, holds, approvals, grants",
		GroupID: groupAudit,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{msg: fmt.Sprintf("wants one SESSION, got %d argument(s)", len(args))}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	path := configFlag(fs)
	payloads := fs.Bool("payloads", false, "print each message's (masked) payload")
	outcome := fs.String("outcome", "", "only calls decided so (allow, deny, approval_required, unauthenticated, forbidden, invalid, error)")
	tool := fs.String("tool", "", "only calls of this tool (or resource URI, or prompt)")
	var since window
	fs.Var(&since, "since", "only what happened in this past window (Go duration, or days: 7d)")
	output := outputFlag(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		f := audit.ReplayFilter{Outcome: *outcome, Tool: *tool}
		if since > 0 {
			f.Since = env.Now().Add(-time.Duration(since))
		}
		return cmdReplay(cmd.Context(), *path, args[0], f, replayOut{payloads: *payloads, json: *output == "json"}, env.Stdout)
	}
	return cmd
}

func outputFlag(fs *pflag.FlagSet) *string {
	return fs.StringP("output", "o", "table", "table or json")
}

func checkOutput(o string) error {
	if o != "table" && o != "json" {
		return usageError{msg: fmt.Sprintf("--output %q: want table or json", o)}
	}
	return nil
}

// window is a past time window: a Go duration ("36h", "90m") or whole
// days ("7d"), which time.ParseDuration lacks and auditors think in.
type window time.Duration

func (w *window) String() string {
	d := time.Duration(*w)
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func (w *window) Set(s string) error {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return fmt.Errorf("%q: want a duration such as 36h or a number of days such as 7d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d < 0 {
			return fmt.Errorf("%q: want a duration such as 36h or a number of days such as 7d", s)
		}
	}
	*w = window(d)
	return nil
}

func (w *window) Type() string { return "window" }

// noArgs is cobra.NoArgs as a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{msg: fmt.Sprintf("takes no arguments, got %q", args)}
	}
	return nil
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

func cmdServe(ctx context.Context, path string, stderr io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	return serve.Run(ctx, cfg, serve.Options{Logger: newLogger(cfg, stderr)})
}

func cmdValidate(stdout io.Writer, path string, noCreds bool) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	chk, err := serve.Check(context.Background(), cfg, serve.CheckOptions{SkipCredentials: noCreds})
	if err != nil {
		return err
	}
	for _, n := range chk.Notes {
		fmt.Fprintf(stdout, "%s: %s\n", path, n)
	}
	if names := cfg.Unmasked(); len(names) > 0 {
		fmt.Fprintf(stdout, "%s: warning: listen.proc is empty, so responses of %s are neither masked nor recorded (set listen.proc, or masking_profile: off to say so)\n", path, strings.Join(names, ", "))
	}
	fmt.Fprintf(stdout, "%s: ok (%d issuers, %d targets, policy %s version %s, gRPC listeners %s)\n", path, len(cfg.Issuers), len(cfg.Targets), cfg.Policy.Dir, chk.PolicyVersion, chk.GRPCTransport)
	return nil
}

// bootstrapFlags are the flags of `airlock envoy bootstrap`.
type bootstrapFlags struct {
	path, nodeID, nodeCluster, listen, xdsAddr string
	static, sotw                               bool
}

func cmdEnvoyBootstrap(f *bootstrapFlags, stdout io.Writer) error {
	cfg, err := config.Load(f.path)
	if err != nil {
		return err
	}
	node := envoy.Node{ID: f.nodeID, Cluster: f.nodeCluster}
	var b *bootstrapv3.Bootstrap
	if f.static {
		res, err := envoy.Build(cfg, envoy.Options{ListenAddress: f.listen})
		if err != nil {
			return err
		}
		if b, err = envoy.StaticBootstrap(res, node); err != nil {
			return err
		}
	} else {
		addr := f.xdsAddr
		if addr == "" {
			addr = cfg.Listen.XDS
		}
		if addr == "" {
			return errors.New("ADS needs --xds-address or listen.xds (or use --static)")
		}
		// Report config errors here, not as NACKs later.
		if _, err := envoy.BuildDynamic(cfg, envoy.Options{ListenAddress: f.listen}); err != nil {
			return err
		}
		if b, err = envoy.ADSBootstrap(node, addr, envoy.ADSOptions{SotW: f.sotw}); err != nil {
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

func openAudit(ctx context.Context, path string) (audit.StoreCloser, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return auditch.OpenStore(ctx, cfg.Audit, audit.Options{})
}

func cmdSessions(ctx context.Context, path string, filter audit.SessionFilter, output string, stdout io.Writer) error {
	st, err := openAudit(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	sums, err := st.Sessions(ctx, filter)
	if err != nil {
		return err
	}
	if output == "json" {
		if sums == nil {
			sums = []audit.SessionSummary{}
		}
		return writeJSON(stdout, sums)
	}
	return audit.WriteSessions(stdout, sums)
}

type replayOut struct{ payloads, json bool }

func cmdReplay(ctx context.Context, path, session string, f audit.ReplayFilter, out replayOut, stdout io.Writer) error {
	st, err := openAudit(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := st.Replay(ctx, session)
	if errors.Is(err, audit.ErrNoSession) {
		return fmt.Errorf("no session %q is recorded (airlock sessions --since 30d lists them; retention may have deleted it)", session)
	}
	if err != nil {
		return err
	}
	r := audit.Story(t, f)
	if out.json {
		if r.Steps == nil {
			r.Steps = []audit.Step{}
		}
		return writeJSON(stdout, r)
	}
	return audit.WriteReplay(stdout, r, audit.ReplayOptions{Payloads: out.payloads})
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
