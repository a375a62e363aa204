// Package cli is airlock's one front door: every verb of the airlock
// binary, server and operator, is a row of the command table in root.go,
// and help, usage lines, shell completion and exit codes are generated
// from that table (github.com/spf13/cobra). The server verbs (serve,
// validate, envoy bootstrap, sessions, replay) call internal/serve, envoy
// and internal/audit; the access verbs (requests, request, approve, deny,
// cancel, grants, revoke, watch) go through the approvals HTTP API
// (internal/approvals) with an OIDC bearer token, print tables for people
// and, with --output json, the API's JSON for scripts. cmd/airlock only
// calls Main; nothing else imports this package.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Env is what a command runs with; zero fields take the process's.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Now            func() time.Time
	HTTPClient     *http.Client
}

func (e *Env) defaults() {
	if e.Stdin == nil {
		e.Stdin = os.Stdin
	}
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

// command is one access verb: what the approvals API call needs beyond
// the common flags. accessCommand turns it into a row of the table.
type command struct {
	summary string
	usage   string // after the command name
	run     func(ctx context.Context, c *cmdContext) error
	flags   func(fs *pflag.FlagSet, c *cmdContext)
	args    int // positional arguments wanted: -1 at most one
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
	// scope and scopeFor narrow what approve grants (--scope, --for).
	scope    string
	scopeFor time.Duration
	limit    int
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
