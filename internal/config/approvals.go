package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Paths the approvals handler serves. Mount it on "/airlock/" (and, for
// the default grants.approval_url, on "GET /requests/"). They are here
// because validation needs CallbackPath; package approvals re-exports them.
const (
	APIPrefix   = "/airlock/v1/"
	InboxPrefix = "/airlock/inbox/"
	// CallbackPath is where the OIDC provider sends the browser back; the
	// inbox's redirect_url must end with it.
	CallbackPath = InboxPrefix + "callback"
	// AuditPrefix is where the auditors' console is served, next to the
	// inbox and signed in through it.
	AuditPrefix = "/airlock/audit/"
)

// API is the api section of airlock.yaml: the approvals API's tokens.
type API struct {
	// Audience is the aud that API bearer tokens must carry, and the only
	// one accepted: never a target's resource URI nor an issuer-level
	// audience (issuers[].audiences). Default public_url + "/airlock".
	Audience string `yaml:"audience"`
	// ApproverScopes, when set, must all be in an API token's scopes:
	// give them only to the OAuth clients people use (the CLI), never to
	// agents.
	ApproverScopes []string `yaml:"approver_scopes"`
	// ClientIDs, when set, are the OAuth clients whose tokens the API
	// accepts (the token's client id claim must be one of them).
	ClientIDs []string `yaml:"client_ids"`
}

// AudienceFor is the configured audience, or the default for publicURL.
func (c *API) AudienceFor(publicURL string) string {
	if c.Audience != "" {
		return c.Audience
	}
	return strings.TrimRight(publicURL, "/") + "/airlock"
}

// Validate checks the api section; errors are *FieldError under api.
func (c *API) Validate() error {
	var errs []error
	if c.Audience != "" && strings.TrimSpace(c.Audience) != c.Audience {
		errs = append(errs, fieldErr("api.audience", "%q has surrounding white space", c.Audience))
	}
	for _, f := range []struct {
		field string
		list  []string
	}{{"approver_scopes", c.ApproverScopes}, {"client_ids", c.ClientIDs}} {
		for i, v := range f.list {
			if v == "" || strings.ContainsAny(v, " \t\r\n") {
				errs = append(errs, fieldErr(fmt.Sprintf("api.%s[%d]", f.field, i), "%q is empty or holds white space", v))
			}
		}
	}
	return errors.Join(errs...)
}

// Inbox is the inbox section of airlock.yaml: how approvers sign in to
// the web inbox. The inbox is off while Issuer is empty.
type Inbox struct {
	// Issuer is the OIDC issuer approvers sign in with, e.g.
	// https://example.okta.com (the org server, whose ID tokens carry groups)
	// or a custom authorization server.
	Issuer string `yaml:"issuer"`
	// ClientID is the inbox's OIDC application (a web app with PKCE).
	ClientID string `yaml:"client_id"`
	// ClientSecretEnv names the environment variable holding the client
	// secret; empty for a public client (PKCE only).
	ClientSecretEnv string `yaml:"client_secret_env"`
	// RedirectURL is the callback registered with the provider: the
	// inbox's public origin + /airlock/inbox/callback. Its origin is also
	// the only Origin accepted on the inbox's POSTs.
	RedirectURL string `yaml:"redirect_url"`
	// Scopes asked for. Default openid, profile, email, groups.
	Scopes []string `yaml:"scopes"`
	// Claims names the ID token claims an approver is known by.
	Claims InboxClaims `yaml:"claims"`
	// SessionTTL is how long a sign-in lasts (default 8h; 5m to 24h, and
	// never past the ID token's own expiry plus this).
	SessionTTL time.Duration `yaml:"session_ttl"`
	// SessionKeyEnv names an environment variable holding the key that
	// seals session cookies (base64 of 32 random bytes), so sessions
	// survive restarts and work across replicas. Empty: a random key per
	// process (everyone signs in again after a restart).
	SessionKeyEnv string `yaml:"session_key_env"`
	// AuditorGroups are the groups (from the ID token's groups claim)
	// whose members may read the auditors' console under /airlock/audit/:
	// every recorded session, not only the requests they approve. Being
	// an approver does not make one an auditor. Empty: the console is off.
	AuditorGroups []string `yaml:"auditor_groups"`
}

// InboxClaims maps ID token claims to the approver's identity. The
// subject must be the same value API tokens carry in their subject claim
// for the same person, or approvals made in the inbox and through the API
// count as two people (see docs/api.md for Okta).
type InboxClaims struct {
	Subject string `yaml:"subject"` // default sub
	User    string `yaml:"user"`    // default preferred_username (falls back to email)
	Groups  string `yaml:"groups"`  // default groups
}

// Enabled reports whether the inbox is configured.
func (c *Inbox) Enabled() bool { return c.Issuer != "" }

// ConsoleEnabled reports whether the auditors' console is served: it signs
// in through the inbox, and someone must be allowed to read it.
func (c *Inbox) ConsoleEnabled() bool { return c.Enabled() && len(c.AuditorGroups) > 0 }

// WithDefaults returns c with its empty fields filled.
func (c Inbox) WithDefaults() Inbox {
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"openid", "profile", "email", "groups"}
	}
	if c.Claims.Subject == "" {
		c.Claims.Subject = "sub"
	}
	if c.Claims.User == "" {
		c.Claims.User = "preferred_username"
	}
	if c.Claims.Groups == "" {
		c.Claims.Groups = "groups"
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 8 * time.Hour
	}
	return c
}

// Validate checks the inbox section; an empty section (inbox off) is
// valid. Errors are *FieldError under inbox.
func (c *Inbox) Validate() error {
	if !c.Enabled() {
		if c.ClientID != "" || c.RedirectURL != "" {
			return fieldErr("inbox.issuer", "is empty but client_id or redirect_url is set: name the OIDC issuer approvers sign in with")
		}
		if len(c.AuditorGroups) > 0 {
			return fieldErr("inbox.auditor_groups", "is set but the inbox is off: auditors sign in to the console through the inbox, so set inbox.issuer, client_id and redirect_url")
		}
		return nil
	}
	d := c.WithDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldErr("inbox."+field, format, args...))
	}
	for i, g := range c.AuditorGroups {
		if g == "" || strings.TrimSpace(g) != g {
			bad(fmt.Sprintf("auditor_groups[%d]", i), "%q is empty or has surrounding white space: name a group as the ID token's groups claim spells it", g)
		}
	}
	if _, err := absoluteURL(c.Issuer); err != nil {
		bad("issuer", "%v", err)
	}
	if c.ClientID == "" {
		bad("client_id", "is empty: register the inbox as an OIDC web application and put its client id here")
	}
	if u, err := absoluteURL(c.RedirectURL); err != nil {
		bad("redirect_url", "%v", err)
	} else if u.Path != CallbackPath || u.RawQuery != "" || u.Fragment != "" {
		bad("redirect_url", "%q must be the inbox's origin followed by %s exactly", c.RedirectURL, CallbackPath)
	}
	if d.SessionTTL < 5*time.Minute || d.SessionTTL > 24*time.Hour {
		bad("session_ttl", "%s is outside 5m..24h", d.SessionTTL)
	}
	hasOpenID := false
	for _, s := range d.Scopes {
		hasOpenID = hasOpenID || s == "openid"
	}
	if !hasOpenID {
		bad("scopes", "%v lacks openid: without it there is no ID token to sign in with", d.Scopes)
	}
	return errors.Join(errs...)
}

func absoluteURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return u, nil
}
