// Package identity verifies OAuth/OIDC bearer tokens (Okta custom
// authorization servers and any OIDC issuer) and maps their claims into a
// Principal. It owns discovery, JWKS caching and rotation, audience,
// expiry and algorithm checks, and a bounded cache of verified tokens.
package identity

import "time"

// Principal is who is calling, as the token says.
type Principal struct {
	Issuer string `json:"issuer"`
	// IssuerName is the name of the configured issuer that vouched for the token.
	IssuerName string         `json:"issuer_name,omitempty"`
	Subject    string         `json:"subject"`             // sub
	User       string         `json:"user,omitempty"`      // Okta uid, or the configured claim
	ClientID   string         `json:"client_id,omitempty"` // Okta cid: the agent's OAuth client
	Scopes     []string       `json:"scopes"`
	Groups     []string       `json:"groups"`
	Audience   []string       `json:"audience"`
	Expiry     time.Time      `json:"expiry"`
	TokenID    string         `json:"token_id,omitempty"` // jti
	Claims     map[string]any `json:"claims,omitempty"`   // all claims, for policy
}
