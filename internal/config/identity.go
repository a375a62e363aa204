package config

import "time"

// Issuer is one trusted OAuth/OIDC authorization server (airlock.yaml's
// issuers:). Package identity verifies tokens with it.
type Issuer struct {
	Name string `yaml:"name"`
	// URL is the issuer identifier, e.g. https://example.okta.com/oauth2/default.
	URL string `yaml:"url"`
	// DiscoveryURL overrides where discovery is fetched from (default URL + /.well-known/openid-configuration).
	DiscoveryURL string `yaml:"discovery_url"`
	// JWKSURL skips discovery and uses this key set directly.
	JWKSURL string `yaml:"jwks_url"`
	// Audiences are issuer-level audiences (e.g. Okta's api://default),
	// accepted besides a target's resource URI only on targets that opt in
	// (accept_issuer_audiences, with scopes_required): a token for them is
	// not bound to one MCP server. Never accepted by the approvals API.
	Audiences []string `yaml:"audiences"`
	// Algorithms allowed for signatures. Default RS256, ES256. "none" and HS* are refused.
	Algorithms []string `yaml:"algorithms"`
	// ClockSkew tolerated on exp/nbf/iat. Default 30s, at most 5m.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// JWKSRefreshMinInterval rate-limits refetches caused by unknown key ids. Default 30s.
	JWKSRefreshMinInterval time.Duration `yaml:"jwks_refresh_min_interval"`
	Claims                 ClaimNames    `yaml:"claims"`
}

// ClaimNames maps token claims to principal fields. Defaults follow Okta.
type ClaimNames struct {
	Subject  string `yaml:"subject"`   // default sub
	User     string `yaml:"user"`      // default uid
	ClientID string `yaml:"client_id"` // default cid (falls back to azp, client_id)
	Scopes   string `yaml:"scopes"`    // default scp (array or space-separated string; falls back to scope)
	Groups   string `yaml:"groups"`    // default groups
}
