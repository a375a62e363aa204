package config

import "time"

// Config is the whole airlock.yaml.
type Config struct {
	// PublicURL is the base URL agents use to reach the gateway (the Envoy
	// listener). Target resource URIs default to PublicURL + target path.
	PublicURL string `yaml:"public_url"`
	// AllowedOrigins are the browser origins (Origin header) allowed to call
	// MCP targets; a request with any other Origin gets 403 (MCP transport
	// spec, DNS-rebinding protection). Entries are scheme://host[:port], and
	// the port may be "*". Default: public_url's origin. Requests without
	// an Origin header (agents are not browsers) are not affected.
	AllowedOrigins []string `yaml:"allowed_origins"`
	Listen         Listen   `yaml:"listen"`
	Issuers        []Issuer `yaml:"issuers"`
	Targets        []Target `yaml:"targets"`
	Policy         Policy   `yaml:"policy"`
	Masking        Masking  `yaml:"masking"`
	// Grants configures just-in-time access: the request/grant store, the
	// hold window, the approval page.
	Grants Grants `yaml:"grants"`
	// Notifications are the outgoing webhooks on request/grant events.
	Notifications Notifications `yaml:"notifications"`
	// API is the approvals API (its token audience); Inbox the approvers'
	// web inbox and its OIDC sign-in (off unless an issuer is set).
	API   API   `yaml:"api"`
	Inbox Inbox `yaml:"inbox"`
	// Audit is where every MCP message and decision is recorded: ClickHouse
	// through a local spool, or the embedded store when no ClickHouse is set.
	Audit  Audit  `yaml:"audit"`
	Limits Limits `yaml:"limits"`
	Log    Log    `yaml:"log"`
	// Telemetry is OpenTelemetry tracing (off by default).
	Telemetry Telemetry `yaml:"telemetry"`
	// DecisionLog emits each decision in OPA's decision-log shape (off by
	// default).
	DecisionLog DecisionLog `yaml:"decision_log"`

	// src is the file Parse read, kept so that checks made later (Locate)
	// can point at the line too.
	src source
}

// source is a parsed file's name and content.
type source struct {
	name string
	data []byte
}

// Listen holds the address of each service; an empty address turns it off.
type Listen struct {
	Authz string `yaml:"authz"` // ext_authz gRPC
	Proc  string `yaml:"proc"`  // ext_proc gRPC
	XDS   string `yaml:"xds"`   // ADS gRPC
	HTTP  string `yaml:"http"`  // API, Protected Resource Metadata, health, metrics
	// TLS is mutual TLS for the gRPC listeners (authz, proc, xds).
	TLS ListenTLS `yaml:"tls"`
	// Insecure lets a gRPC listener off loopback serve without TLS (when
	// something else, e.g. a mesh sidecar, authenticates callers).
	Insecure bool `yaml:"insecure"`
	// Advertise is the host Envoy reaches airlock's services at (a DNS
	// name such as airlock.airlock-system.svc.cluster.local, or an IP),
	// with the ports of authz, proc and http. Empty: the listen addresses
	// themselves, which only a co-located Envoy can use when airlock binds
	// 0.0.0.0.
	Advertise string `yaml:"advertise"`
}

// Target is one MCP server behind the gateway.
type Target struct {
	Name string `yaml:"name"`
	// PathPrefix is the gateway path of the MCP endpoint. Default /mcp/<name>.
	PathPrefix string `yaml:"path_prefix"`
	// Upstream is the MCP server URL airlock (through Envoy) forwards to.
	Upstream string `yaml:"upstream"`
	// Resource is the canonical resource URI tokens must be issued for (RFC 8707).
	// Default PublicURL + PathPrefix.
	Resource string `yaml:"resource"`
	// Issuers that may issue tokens for this target (names). Default: all.
	Issuers []string `yaml:"issuers"`
	// ScopesRequired must all be present in the token (403 insufficient_scope otherwise).
	ScopesRequired []string `yaml:"scopes_required"`
	// AcceptIssuerAudiences also admits tokens whose aud is one of the
	// issuer's own audiences (issuers[].audiences, e.g. Okta's
	// api://default) instead of Resource. Such a token is not bound to this
	// MCP server, so the target must set scopes_required (validate refuses
	// it otherwise). Default false: only Resource is accepted.
	AcceptIssuerAudiences bool       `yaml:"accept_issuer_audiences"`
	Credential            Credential `yaml:"credential"`
	// MaskingProfile names the default masking profile for responses.
	MaskingProfile string `yaml:"masking_profile"`
}

// Credential is the upstream server's own credential, injected instead of the agent's token.
type Credential struct {
	Header string `yaml:"header"` // default authorization
	Prefix string `yaml:"prefix"` // e.g. "Bearer "
	Env    string `yaml:"env"`    // read from this environment variable
	File   string `yaml:"file"`   // or from this file (trailing newline trimmed)
}

// Policy says where the Rego decision policy lives.
type Policy struct {
	Dir            string        `yaml:"dir"`             // directory of .rego (and data .json/.yaml) files
	Query          string        `yaml:"query"`           // default data.airlock.decision
	ReloadInterval time.Duration `yaml:"reload_interval"` // default 2s; 0 disables reload
}

// Masking configures response masking (ext_proc).
type Masking struct {
	// Profiles are custom masking profiles, next to the built-ins
	// "default", "strict" and "off"; a target's masking_profile names one.
	Profiles []MaskingProfile `yaml:"profiles"`
	// MaxEventBytes bounds one SSE event. A bigger event is never passed
	// on: the client gets a JSON-RPC error event by the request's id
	// instead (and the audit trail an "error" record), and the stream
	// ends there. Default 1 MiB.
	MaxEventBytes int `yaml:"max_event_bytes"`
	// MaxBodyBytes is the old name of limits.max_response_bytes, kept so
	// existing files still load: set one of them (both only if equal).
	// After Parse both hold the response limit.
	MaxBodyBytes int `yaml:"max_body_bytes"`
}

// Limits bound what the gateway accepts. The body limits drive every
// buffer on the way (docs/envoy.md, "Limits"): Envoy's ext_authz
// max_request_bytes, the listener's per_connection_buffer_limit_bytes
// (the buffer Envoy uses for a request and for a response), and the
// receive limits of airlock's gRPC servers. The concurrency limits size
// the circuit breakers of every cluster Envoy is given.
type Limits struct {
	// MaxRequestBytes is the largest request body airlock reads; a bigger
	// one is refused with 413 and a JSON-RPC error by its id. Default 1 MiB.
	MaxRequestBytes int `yaml:"max_request_bytes"`
	// MaxResponseBytes is the largest response body (JSON or text) masked
	// whole; a bigger one reaches the agent as a JSON-RPC error by its
	// request's id, never unmasked. masking.max_body_bytes is its old
	// name. Default 8 MiB.
	MaxResponseBytes int `yaml:"max_response_bytes"`
	// MaxHeldCalls is how many calls may wait for an approval at once:
	// each keeps an ext_authz Check open up to grants.hold_window. It
	// sizes the airlock_authz circuit breaker (plus room for the Checks
	// answered at once, AuthzQuickChecks). Default 1024.
	MaxHeldCalls int `yaml:"max_held_calls"`
	// MaxStreams is how many MCP exchanges may be open at once, SSE
	// streams included: each keeps an ext_proc stream and an upstream
	// request open for its life. It sizes the circuit breakers of
	// airlock_proc, airlock_http and every target's cluster. Default 4096.
	MaxStreams     int `yaml:"max_streams"`
	TokenCacheSize int `yaml:"token_cache_size"` // verified tokens kept; default 10000
	// HeapTargetBytes is the heap size the garbage collector aims at:
	// while the live heap is small the heap may grow up to it (cheap
	// collections, GOGC up to 400); once the live heap passes two thirds
	// of it airlock collects at GOGC=50, never more often, so a large
	// live heap cannot make collections come back to back. Resident
	// memory is about this plus the binary's pages and the goroutine
	// stacks. 0 leaves GOGC at 400 without a target; setting the GOGC
	// environment variable overrides both. Default 48 MiB.
	HeapTargetBytes int64 `yaml:"heap_target_bytes"`
}

// AuthzQuickChecks is the room in the airlock_authz circuit breaker for
// Checks that are answered at once (not held): they last a millisecond
// or so, so a few hundred in flight is already thousands a second.
const AuthzQuickChecks = 1024

// Default limits (Defaults).
const (
	DefaultMaxRequestBytes  = 1 << 20
	DefaultMaxResponseBytes = 8 << 20
	DefaultMaxHeldCalls     = 1024
	DefaultMaxStreams       = 4096
	DefaultHeapTargetBytes  = 48 << 20
)

// ResponseLimit is the response body limit: limits.max_response_bytes, or
// masking.max_body_bytes (its old name) for a Config built without Parse.
func (c *Config) ResponseLimit() int {
	if c.Limits.MaxResponseBytes > 0 {
		return c.Limits.MaxResponseBytes
	}
	return c.Masking.MaxBodyBytes
}

// AuthzBreaker is the size of the airlock_authz circuit breaker: held
// calls plus the Checks answered at once.
func (l Limits) AuthzBreaker() int { return l.MaxHeldCalls + AuthzQuickChecks }

// Log configures the structured logger.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// Unmasked names the targets whose responses are meant to be masked and
// recorded (a masking profile other than "off") while listen.proc is
// empty: without ext_proc nothing is masked or recorded, whatever the
// profile says. serve and validate warn about them.
func (c *Config) Unmasked() []string {
	if c.Listen.Proc != "" {
		return nil
	}
	var names []string
	for _, t := range c.Targets {
		if t.MaskingProfile != "off" {
			names = append(names, t.Name)
		}
	}
	return names
}
