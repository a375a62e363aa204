package config

import (
	"errors"
	"net/url"
	"strings"
	"time"
)

// Grants is the grants section of airlock.yaml: just-in-time access (the
// request/grant store, the hold window, the approval page). Package
// grants runs it.
type Grants struct {
	// Dir is the FileStore directory (relative paths are relative to the
	// configuration file). Default "data/grants".
	Dir string `yaml:"dir"`
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

// GrantsDefaults returns the grants configuration used when nothing is set.
func GrantsDefaults() Grants {
	return Grants{
		Dir:                    "data/grants",
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
	if c.Dir == "" {
		bad("dir", "is empty: the grant store needs a directory")
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

// RequestURL is the approval page of request id.
// Empty when no page is served (approval_url empty: the inbox is off).
func (c *Grants) RequestURL(id string) string {
	if c.ApprovalURL == "" {
		return ""
	}
	return strings.TrimRight(c.ApprovalURL, "/") + "/" + url.PathEscape(id)
}
