package config

import (
	"errors"
	"net/url"
	"os"
	"strings"
	"time"
)

// Grants is the grants section of airlock.yaml: just-in-time access (the
// request/grant store, the hold window, the approval page). Package
// grants runs it.
type Grants struct {
	// Store is where requests and grants live: "file" (the default: a
	// crash-safe log in Dir, for one airlock process) or "postgres"
	// (shared by every replica: see Postgres and docs/ha.md).
	Store string `yaml:"store"`
	// Dir is the FileStore directory (relative paths are relative to the
	// configuration file). Default "data/grants". Used with store: file.
	Dir string `yaml:"dir"`
	// Postgres is the shared store, used with store: postgres.
	Postgres GrantsPostgres `yaml:"postgres"`
	// PendingTTL is how long a request waits for approvers before it
	// expires. Default 10m; 10s to 7 days; more than HoldWindow.
	PendingTTL time.Duration `yaml:"pending_ttl"`
	// HoldWindow is how long a call is held waiting for an approval
	// before the agent is told to come back (JSON-RPC -32042 with the
	// approval URL). Default 25s; 0 answers at once; at most 5m. Envoy's
	// ext_authz timeout must be longer.
	HoldWindow time.Duration `yaml:"hold_window"`
	// SingleUseTTL is how long a single-use grant waits for its call when
	// policy gives it no duration. Default 15m; 10s to 24h.
	SingleUseTTL time.Duration `yaml:"single_use_ttl"`
	// MaxPendingPerPrincipal caps the pending requests one subject may
	// have; more is refused (ErrTooManyPending). Default 20.
	MaxPendingPerPrincipal int `yaml:"max_pending_per_principal"`
	// ApprovalURL is the base of the approval page: a request's page is
	// ApprovalURL + "/" + its id. In airlock.yaml it defaults to the
	// inbox's page (public_url + /airlock/inbox/requests) when the inbox
	// is on and to empty (no page, no URL handed out) when it is off.
	ApprovalURL string `yaml:"approval_url"`
	// Retention is how long requests and grants are kept after they end
	// (the audit log keeps every step for longer). Default 168h; at least 1m.
	Retention time.Duration `yaml:"retention"`
}

// Grant store kinds (Grants.Store).
const (
	GrantStoreFile     = "file"
	GrantStorePostgres = "postgres"
)

// GrantsPostgres is the PostgreSQL grant store replicas share.
type GrantsPostgres struct {
	// DSNEnv names the environment variable holding the connection
	// string (a postgres:// URL or key=value pairs). The DSN holds a
	// password, so it is never written in airlock.yaml itself. Required
	// with store: postgres.
	DSNEnv string `yaml:"dsn_env"`
	// MaxConns caps each replica's connection pool (default 10; 1 to
	// 1000), besides one connection that LISTENs for changes.
	MaxConns int `yaml:"max_conns"`
}

// GrantsDefaults returns the grants configuration used when nothing is set.
func GrantsDefaults() Grants {
	return Grants{
		Store:                  GrantStoreFile,
		Dir:                    "data/grants",
		Postgres:               GrantsPostgres{MaxConns: 10},
		PendingTTL:             10 * time.Minute,
		HoldWindow:             25 * time.Second,
		SingleUseTTL:           15 * time.Minute,
		MaxPendingPerPrincipal: 20,
		ApprovalURL:            "http://127.0.0.1:8080/requests",
		Retention:              7 * 24 * time.Hour,
	}
}

// Validate checks every field and returns all problems joined, each a
// *FieldError under grants.
func (c *Grants) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldErr("grants."+field, format, args...))
	}
	switch c.Store {
	case GrantStoreFile:
		if c.Dir == "" {
			bad("dir", "is empty: the grant store needs a directory")
		}
	case GrantStorePostgres:
		switch env := c.Postgres.DSNEnv; {
		case env == "":
			bad("postgres.dsn_env", "is empty: name the environment variable that holds the PostgreSQL DSN")
		case strings.ContainsAny(env, ":/@= "):
			bad("postgres.dsn_env", "names an environment variable, not the DSN itself (a DSN holds a password: keep it out of this file)")
		case !envRE.MatchString(env):
			bad("postgres.dsn_env", "%q is not an environment variable name (letters, digits and _, not starting with a digit)", env)
		}
	default:
		bad("store", "%q is not one of file, postgres", c.Store)
	}
	if c.Postgres.MaxConns < 1 || c.Postgres.MaxConns > 1000 {
		bad("postgres.max_conns", "%d is outside 1..1000", c.Postgres.MaxConns)
	}
	switch {
	case c.PendingTTL < 10*time.Second || c.PendingTTL > 7*24*time.Hour:
		bad("pending_ttl", "%s is outside 10s..168h", c.PendingTTL)
	case c.PendingTTL <= c.HoldWindow:
		bad("pending_ttl", "%s must be longer than hold_window (%s): a held call would outlive its request", c.PendingTTL, c.HoldWindow)
	}
	if c.HoldWindow < 0 || c.HoldWindow > 5*time.Minute {
		bad("hold_window", "%s is outside 0s..5m", c.HoldWindow)
	}
	if c.SingleUseTTL < 10*time.Second || c.SingleUseTTL > 24*time.Hour {
		bad("single_use_ttl", "%s is outside 10s..24h", c.SingleUseTTL)
	}
	if c.MaxPendingPerPrincipal < 1 {
		bad("max_pending_per_principal", "%d: want at least 1", c.MaxPendingPerPrincipal)
	}
	// Empty: no approval page is served; agents are told to use the CLI or API.
	if c.ApprovalURL != "" {
		if u, err := url.Parse(c.ApprovalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("approval_url", "%q is not an absolute http(s) URL", c.ApprovalURL)
		} else if u.RawQuery != "" || u.Fragment != "" {
			bad("approval_url", "%q: a base URL takes no query or fragment (the request id is appended as a path segment)", c.ApprovalURL)
		}
	}
	if c.Retention < time.Minute {
		bad("retention", "%s: want at least 1m", c.Retention)
	}
	return errors.Join(errs...)
}

// PostgresDSN reads the DSN from the environment variable dsn_env names.
// Its error names the variable, never a value.
func (c *Grants) PostgresDSN() (string, error) {
	dsn := os.Getenv(c.Postgres.DSNEnv)
	if strings.TrimSpace(dsn) == "" {
		return "", fieldErr("grants.postgres.dsn_env", "environment variable %s is unset or empty: it must hold the PostgreSQL DSN", c.Postgres.DSNEnv)
	}
	return dsn, nil
}

// checkSharedSessions: replicas on a shared grant store sit behind one
// load balancer, so an approver's sign-in must be good on every replica:
// the inbox's session key must be shared, not made up per process.
func (c *Config) checkSharedSessions() error {
	if c.Grants.Store == GrantStorePostgres && c.Inbox.Enabled() && c.Inbox.SessionKeyEnv == "" {
		return fieldErr("inbox.session_key_env", "is required with grants.store: postgres (replicas share sign-ins: each would otherwise seal sessions with its own random key)")
	}
	return nil
}

// RequestURL is the approval page of request id.
// Empty when no page is served (approval_url empty: the inbox is off).
func (c *Grants) RequestURL(id string) string {
	if c.ApprovalURL == "" {
		return ""
	}
	return strings.TrimRight(c.ApprovalURL, "/") + "/" + url.PathEscape(id)
}
