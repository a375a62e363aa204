// Package cli is airlock's operator command line for just-in-time access:
// `airlock requests`, `request`, `approve`, `deny`, `cancel`, `grants`,
// `revoke` and `watch`. Every command goes through the approvals HTTP API
// (internal/approvals) with an OIDC bearer token, prints tables for people
// and, with --output json, the API's JSON for scripts. cmd/airlock only
// dispatches here.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

// Env is what a command runs with; zero fields take the process's.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Now            func() time.Time
	HTTPClient     *http.Client
}

func (e *Env) defaults() {
	if e.Stdout == nil {
		e.Stdout = os.Stdout
	}
	if e.Stderr == nil {
		e.Stderr = os.Stderr
	}
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.HTTPClient == nil {
		e.HTTPClient = &http.Client{} // requests are bounded by --timeout; watch is not
	}
}

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// command is one subcommand.
type command struct {
	summary string
	usage   string // after the command name
	run     func(ctx context.Context, c *cmdContext) error
	flags   func(fs *flag.FlagSet, c *cmdContext)
	args    int // positional arguments wanted: -1 any
}

var commands = map[string]*command{
	"requests": cmdRequests, "request": cmdRequest, "approve": cmdApprove, "deny": cmdDeny,
	"cancel": cmdCancel, "grants": cmdGrants, "revoke": cmdRevoke, "watch": cmdWatch,
}

// Commands are the subcommand names this package runs, for dispatch.
func Commands() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Usage is the help text of the approval commands.
func Usage() string {
	var b strings.Builder
	for _, n := range Commands() {
		c := commands[n]
		fmt.Fprintf(&b, "  airlock %-9s %-40s %s\n", n, c.usage, c.summary)
	}
	b.WriteString("\n  common flags: --server URL ($AIRLOCK_SERVER, default " + defaultServer + ")\n" +
		"                --token-file FILE ($AIRLOCK_TOKEN_FILE) or $AIRLOCK_TOKEN: an OIDC access token for the API audience\n" +
		"                --output table|json   --timeout 30s\n")
	return b.String()
}

const defaultServer = "http://127.0.0.1:8080"

// cmdContext is a parsed command line.
type cmdContext struct {
	env     *Env
	name    string
	args    []string
	server  string
	tokFile string
	output  string
	timeout time.Duration
	api     *client
	// command-specific flags
	state, target, cursor, reason, tool, resource, arguments string
	mine, breakGlass, all                                    bool
	limit                                                    int
}

// Run runs the approval command args[0] with its arguments and returns
// the exit code: 0 done, 1 failed (the message is on stderr), 2 usage.
func Run(ctx context.Context, args []string, env Env) int {
	env.defaults()
	if len(args) == 0 || commands[args[0]] == nil {
		fmt.Fprintf(env.Stderr, "airlock: want one of %s\n", strings.Join(Commands(), ", "))
		return ExitUsage
	}
	c := &cmdContext{env: &env, name: args[0]}
	cmd := commands[c.name]
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: airlock %s %s\n  %s\n\nflags:\n", c.name, cmd.usage, cmd.summary)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.server, "server", "", "airlock's HTTP address (default $AIRLOCK_SERVER or "+defaultServer+")")
	fs.StringVar(&c.tokFile, "token-file", "", "file holding the bearer token (default $AIRLOCK_TOKEN_FILE, else $AIRLOCK_TOKEN)")
	fs.StringVar(&c.output, "output", "table", "table or json")
	fs.StringVar(&c.output, "o", "table", "shorthand for --output")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "time limit of each API call")
	if cmd.flags != nil {
		cmd.flags(fs, c)
	}
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if (cmd.args >= 0 && len(pos) != cmd.args) || (cmd.args < 0 && len(pos) > 1) {
		fmt.Fprintf(env.Stderr, "usage: airlock %s %s\n", c.name, cmd.usage)
		return ExitUsage
	}
	if c.output != "table" && c.output != "json" {
		fmt.Fprintf(env.Stderr, "airlock %s: --output %q: want table or json\n", c.name, c.output)
		return ExitUsage
	}
	c.args = pos
	if err := c.connect(); err != nil {
		fmt.Fprintf(env.Stderr, "airlock %s: %v\n", c.name, err)
		return ExitError
	}
	if err := cmd.run(ctx, c); err != nil {
		what := c.name
		if len(pos) > 0 {
			what += " " + pos[0]
		}
		fmt.Fprintf(env.Stderr, "%s: %v\n", what, err)
		return ExitError
	}
	return ExitOK
}

// parseInterleaved lets flags follow positional arguments
// (`airlock approve req_x --reason ok`), as people type them.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// connect settles the server and the token.
func (c *cmdContext) connect() error {
	server := c.server
	if server == "" {
		server = c.env.Getenv("AIRLOCK_SERVER")
	}
	if server == "" {
		server = defaultServer
	}
	server = strings.TrimRight(server, "/")
	if !strings.HasPrefix(server, "http://") && !strings.HasPrefix(server, "https://") {
		return fmt.Errorf("--server %q: want an http:// or https:// URL", server)
	}
	tok, err := c.token()
	if err != nil {
		return err
	}
	c.api = &client{base: server, token: tok, http: c.env.HTTPClient}
	return nil
}

func (c *cmdContext) token() (string, error) {
	file := c.tokFile
	if file == "" {
		file = c.env.Getenv("AIRLOCK_TOKEN_FILE")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading the token: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("the token file %s is empty", file)
		}
		return tok, nil
	}
	if tok := strings.TrimSpace(c.env.Getenv("AIRLOCK_TOKEN")); tok != "" {
		return tok, nil
	}
	return "", errors.New("no token: pass --token-file FILE or set AIRLOCK_TOKEN to an OIDC access token for the airlock API audience (default <public_url>/airlock)")
}

// call is one API call bounded by --timeout.
func (c *cmdContext) call(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.api.do(ctx, method, path, body, out)
}
