package identity

import "github.com/airlock-mcp/airlock/internal/config"

// Issuer and ClaimNames are airlock.yaml's issuers: entries, defined in
// package config; New verifies tokens with them.
type (
	Issuer     = config.Issuer
	ClaimNames = config.ClaimNames
)
