package approvals

import "github.com/airlock-mcp/airlock/internal/config"

// Paths the handler serves. Mount the Handler on "/airlock/" (and, for the
// default grants.approval_url, on "GET /requests/"). Defined in package
// config, whose validation of inbox.redirect_url needs CallbackPath.
const (
	APIPrefix   = config.APIPrefix
	InboxPrefix = config.InboxPrefix
	// CallbackPath is where the OIDC provider sends the browser back; the
	// inbox's redirect_url must end with it.
	CallbackPath = config.CallbackPath
)

// APIConfig is the api section of airlock.yaml, InboxConfig the inbox
// section (how approvers sign in to the web inbox; off while Issuer is
// empty), InboxClaims the ID token claims an approver is known by. They
// are defined and validated in package config; errors are
// *config.FieldError naming the field from the top of airlock.yaml
// (api.audience, inbox.redirect_url).
type (
	APIConfig   = config.API
	InboxConfig = config.Inbox
	InboxClaims = config.InboxClaims
)

// Target is what the handler needs to know about one MCP target: its
// name, the resource and path policy sees, and the masking profile its
// arguments are shown through.
type Target struct {
	Name           string
	Resource       string
	PathPrefix     string
	ScopesRequired []string
	MaskingProfile string
}
