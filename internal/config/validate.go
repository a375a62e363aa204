package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$`)

// Algorithms airlock accepts for token signatures. HMAC and "none" are never
// accepted: a gateway verifying with public keys must not let a token choose
// a symmetric algorithm.
var allowedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// applyDefaults fills derived and per-item defaults after decoding.
func (c *Config) applyDefaults() {
	// One response limit under two names: whichever is set fills the
	// other; neither: the default. Both set and different is left for
	// Validate to refuse.
	switch l, m := &c.Limits.MaxResponseBytes, &c.Masking.MaxBodyBytes; {
	case *l == 0 && *m == 0:
		*l, *m = DefaultMaxResponseBytes, DefaultMaxResponseBytes
	case *l == 0:
		*l = *m
	case *m == 0:
		*m = *l
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	c.Telemetry.Tracing.applyDefaults()
	c.DecisionLog.applyDefaults()
	if len(c.AllowedOrigins) == 0 {
		if u, err := url.Parse(c.PublicURL); err == nil && u.Host != "" {
			c.AllowedOrigins = []string{u.Scheme + "://" + u.Host}
		}
	}
	for i := range c.Issuers {
		is := &c.Issuers[i]
		if len(is.Algorithms) == 0 {
			is.Algorithms = []string{"RS256", "ES256"}
		}
		if is.ClockSkew == 0 {
			is.ClockSkew = 30 * time.Second
		}
		if is.JWKSRefreshMinInterval == 0 {
			is.JWKSRefreshMinInterval = 30 * time.Second
		}
		cl := &is.Claims
		cl.Subject = or(cl.Subject, "sub")
		cl.User = or(cl.User, "uid")
		cl.ClientID = or(cl.ClientID, "cid")
		cl.Scopes = or(cl.Scopes, "scp")
		cl.Groups = or(cl.Groups, "groups")
	}
	// Approval pages are served by airlock's inbox, reached through the
	// gateway. With the inbox off no page is served, so no URL is handed
	// out: a link that answers 404 sends an agent's user nowhere, and the
	// agent is told to have the request approved with the CLI or API.
	if c.Grants.ApprovalURL == GrantsDefaults().ApprovalURL {
		c.Grants.ApprovalURL = ""
		if c.Inbox.Enabled() {
			c.Grants.ApprovalURL = c.PublicURL + InboxPrefix + "requests"
		}
	}
	c.Notifications.ApplyDefaults()
	for i := range c.Targets {
		t := &c.Targets[i]
		if t.PathPrefix == "" && t.Name != "" {
			t.PathPrefix = "/mcp/" + t.Name
		}
		if t.Resource == "" {
			t.Resource = c.PublicURL + t.PathPrefix
		}
		if t.Credential.Header == "" {
			t.Credential.Header = "authorization"
		}
		t.Credential.Header = strings.ToLower(t.Credential.Header)
		if t.MaskingProfile == "" {
			t.MaskingProfile = "default"
		}
	}
}

func or(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// Validate checks the whole configuration and returns every problem found,
// joined, each a *FieldError. It checks what the configuration alone
// tells; what needs airlock's parts (policy compiles, masking profiles
// compile, credentials and TLS files load, Envoy's configuration renders)
// is serve.Check's.
func (c *Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(checkURL("public_url", c.PublicURL))
	for i, o := range c.AllowedOrigins {
		u, err := url.Parse(strings.Replace(o, ":*", "", 1))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			add(fieldErr(fmt.Sprintf("allowed_origins[%d]", i), "%q is not an origin such as https://app.example.com or http://localhost:*", o))
		}
	}
	for k, v := range map[string]string{"listen.authz": c.Listen.Authz, "listen.proc": c.Listen.Proc, "listen.xds": c.Listen.XDS, "listen.http": c.Listen.HTTP} {
		if v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(v); err != nil {
			add(fieldErr(k, "%q is not host:port", v))
		}
	}
	if a := c.Listen.Advertise; a != "" && !validHost(a) {
		add(fieldErr("listen.advertise", "%q is not a host name or IP address (no port: the ports are authz's, proc's and http's)", a))
	}
	errs = append(errs, c.checkListenTLS()...)
	if len(c.Issuers) == 0 {
		add(fieldErr("issuers", "at least one issuer is required: airlock verifies every caller's token"))
	}
	issuerNames := map[string]bool{}
	for i, is := range c.Issuers {
		p := fmt.Sprintf("issuers[%d]", i)
		if !nameRE.MatchString(is.Name) {
			add(fieldErr(p+".name", "%q must be lower-case letters, digits, - or _", is.Name))
		} else if issuerNames[is.Name] {
			add(fieldErr(p+".name", "duplicate issuer name %q", is.Name))
		}
		issuerNames[is.Name] = true
		add(checkURL(p+".url", is.URL))
		if is.DiscoveryURL != "" {
			add(checkURL(p+".discovery_url", is.DiscoveryURL))
		}
		if is.JWKSURL != "" {
			add(checkURL(p+".jwks_url", is.JWKSURL))
		}
		for j, a := range is.Algorithms {
			if !slices.Contains(allowedAlgorithms, a) {
				add(fieldErr(fmt.Sprintf("%s.algorithms[%d]", p, j), "algorithm %q is not allowed; use one of %s", a, strings.Join(allowedAlgorithms, ", ")))
			}
		}
		if is.ClockSkew < 0 || is.ClockSkew > 5*time.Minute {
			add(fieldErr(p+".clock_skew", "%s is outside 0s..5m", is.ClockSkew))
		}
		if is.JWKSRefreshMinInterval < time.Second {
			add(fieldErr(p+".jwks_refresh_min_interval", "%s is below 1s; unknown key ids would let callers hammer the issuer", is.JWKSRefreshMinInterval))
		}
	}
	if len(c.Targets) == 0 {
		add(fieldErr("targets", "at least one MCP target is required"))
	}
	targetNames, prefixes := map[string]bool{}, map[string]string{}
	for i, t := range c.Targets {
		p := fmt.Sprintf("targets[%d]", i)
		if !nameRE.MatchString(t.Name) {
			add(fieldErr(p+".name", "%q must be lower-case letters, digits, - or _", t.Name))
		} else if targetNames[t.Name] {
			add(fieldErr(p+".name", "duplicate target name %q", t.Name))
		}
		targetNames[t.Name] = true
		if !strings.HasPrefix(t.PathPrefix, "/") || strings.ContainsAny(t.PathPrefix, "?# ") || strings.HasSuffix(t.PathPrefix, "/") {
			add(fieldErr(p+".path_prefix", "%q must start with / and not end with / or hold ?, # or spaces", t.PathPrefix))
		} else if other, dup := prefixes[t.PathPrefix]; dup {
			add(fieldErr(p+".path_prefix", "%q is already used by target %q", t.PathPrefix, other))
		}
		prefixes[t.PathPrefix] = t.Name
		add(checkURL(p+".upstream", t.Upstream))
		add(checkURL(p+".resource", t.Resource))
		for j, n := range t.Issuers {
			if !issuerNames[n] {
				add(fieldErr(fmt.Sprintf("%s.issuers[%d]", p, j), "no issuer named %q", n))
			}
		}
		add(t.Credential.check(p + ".credential"))
	}
	errs = append(errs, c.checkAudiences()...)
	errs = append(errs, c.checkLimits()...)
	for _, err := range []error{c.Grants.Validate(), c.checkSharedSessions(), c.API.Validate(), c.Inbox.Validate(), c.Audit.Validate(), c.Notifications.Validate(), c.Telemetry.Validate(), c.DecisionLog.Validate()} {
		errs = append(errs, unjoin(err)...)
	}
	if c.Policy.Dir == "" {
		add(fieldErr("policy.dir", "a policy directory is required"))
	} else if st, err := os.Stat(c.Policy.Dir); err != nil || !st.IsDir() {
		add(fieldErr("policy.dir", "%q is not a readable directory", c.Policy.Dir))
	}
	if !strings.HasPrefix(c.Policy.Query, "data.") {
		add(fieldErr("policy.query", "%q must be a data reference such as data.airlock.decision", c.Policy.Query))
	}
	if c.Policy.ReloadInterval < 0 {
		add(fieldErr("policy.reload_interval", "must not be negative"))
	}
	if c.Limits.TokenCacheSize < 0 {
		add(fieldErr("limits.token_cache_size", "must not be negative"))
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		add(fieldErr("log.level", "%q is not one of debug, info, warn, error", c.Log.Level))
	}
	if !slices.Contains([]string{"json", "text"}, c.Log.Format) {
		add(fieldErr("log.format", "%q is not one of json, text", c.Log.Format))
	}
	return errors.Join(errs...)
}

func checkURL(path, v string) error {
	if v == "" {
		return fieldErr(path, "is required")
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fieldErr(path, "%q is not an absolute http(s) URL", v)
	}
	return nil
}

func (c Credential) check(path string) error {
	switch {
	case c.Env != "" && c.File != "":
		return fieldErr(path, "set env or file, not both")
	case strings.ContainsAny(c.Header, " :\r\n"):
		return fieldErr(path+".header", "%q is not a valid header name", c.Header)
	}
	return nil
}

// Resolve returns the credential's header value (prefix + secret), or "" when
// no credential is configured. The error never contains the secret.
func (c Credential) Resolve() (string, error) {
	var secret string
	switch {
	case c.Env != "":
		v, ok := os.LookupEnv(c.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("credential: environment variable %s is not set", c.Env)
		}
		secret = v
	case c.File != "":
		b, err := os.ReadFile(c.File)
		if err != nil {
			return "", fmt.Errorf("credential: %w", err)
		}
		secret = strings.TrimRight(string(b), "\r\n")
		if secret == "" {
			return "", fmt.Errorf("credential: file %s is empty", c.File)
		}
	default:
		return "", nil
	}
	if strings.ContainsAny(secret, "\r\n") {
		return "", fmt.Errorf("credential from %s holds a line break", or(c.Env, c.File))
	}
	return c.Prefix + secret, nil
}

// MetadataPath is where the target's RFC 9728 Protected Resource Metadata
// is served on the gateway: the well-known prefix inserted before the
// resource URI's path.
func (t Target) MetadataPath() string {
	const wk = "/.well-known/oauth-protected-resource"
	u, err := url.Parse(t.Resource)
	if err != nil {
		return wk
	}
	return wk + strings.TrimRight(u.Path, "/")
}

// unjoin splits an errors.Join result into its parts.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Ranges of the limits (checkLimits).
const (
	minBodyBytes  = 1024
	maxBodyBytes  = 64 << 20 // Envoy buffers a whole body in memory per stream
	maxHeldCalls  = 1 << 20
	minStreams    = 16
	maxStreamsCap = 1 << 20
	minHeapTarget = 16 << 20 // smaller is Go's default collector for any airlock
	maxHeapTarget = 1 << 40
)

// checkLimits refuses body and concurrency limits out of range or out of
// step with each other (docs/envoy.md, "Limits"): every buffer on a
// body's way is derived from them, so an incoherent pair would let one
// layer refuse, with Envoy's plain-text error, what another accepts.
func (c *Config) checkLimits() []error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fieldErr(path, format, args...)) }
	l := c.Limits
	if l.MaxRequestBytes < minBodyBytes || l.MaxRequestBytes > maxBodyBytes {
		add("limits.max_request_bytes", "%d is outside %d..%d", l.MaxRequestBytes, minBodyBytes, maxBodyBytes)
	}
	if l.MaxResponseBytes != c.Masking.MaxBodyBytes && c.Masking.MaxBodyBytes != 0 {
		add("limits.max_response_bytes", "%d disagrees with masking.max_body_bytes (its old name) %d: set one of them", l.MaxResponseBytes, c.Masking.MaxBodyBytes)
	} else if l.MaxResponseBytes < minBodyBytes || l.MaxResponseBytes > maxBodyBytes {
		add("limits.max_response_bytes", "%d is outside %d..%d", l.MaxResponseBytes, minBodyBytes, maxBodyBytes)
	}
	switch ev := c.Masking.MaxEventBytes; {
	case ev < minBodyBytes:
		add("masking.max_event_bytes", "%d must be at least %d", ev, minBodyBytes)
	case ev > l.MaxResponseBytes && l.MaxResponseBytes >= minBodyBytes:
		add("masking.max_event_bytes", "%d is over limits.max_response_bytes (%d): one SSE event cannot be larger than the largest response airlock masks", ev, l.MaxResponseBytes)
	}
	if l.MaxHeldCalls < 1 || l.MaxHeldCalls > maxHeldCalls {
		add("limits.max_held_calls", "%d is outside 1..%d", l.MaxHeldCalls, maxHeldCalls)
	}
	if l.MaxStreams < minStreams || l.MaxStreams > maxStreamsCap {
		add("limits.max_streams", "%d is outside %d..%d", l.MaxStreams, minStreams, maxStreamsCap)
	}
	if t := l.HeapTargetBytes; t != 0 && (t < minHeapTarget || t > maxHeapTarget) {
		add("limits.heap_target_bytes", "%d is outside %d..%d (or 0: no target)", t, minHeapTarget, maxHeapTarget)
	}
	return errs
}

// validHost reports whether h is an IP address or a DNS name (RFC 1123
// labels), without a port.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 || h == "" {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
