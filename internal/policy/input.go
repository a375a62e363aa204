package policy

import (
	"encoding/json"
	"time"

	"github.com/airlock-mcp/airlock/internal/identity"
)

// Input is everything a policy sees about one MCP message. Rego reads it
// as input.principal, input.target, input.mcp, input.request, input.grants
// and input.time, with snake_case field names.
type Input struct {
	// Principal is the verified caller; nil when the request carries no
	// valid token (input.principal is then null).
	Principal *identity.Principal
	Target    TargetInput
	MCP       MessageInput
	Request   RequestInput
	// Grants are the caller's grants on the target, as the grant store has
	// them; the policy decides whether one covers this call.
	Grants []GrantInput
	// Time is the evaluation time; zero means time.Now(). It is exposed as
	// input.time.now (RFC 3339) and input.time.unix_ns, and is also the
	// clock of Rego's time.now_ns().
	Time time.Time
}

// TargetInput names the upstream MCP server the call is for.
type TargetInput struct {
	Name           string
	Resource       string   // the canonical resource URI (token audience)
	ScopesRequired []string // scopes the target's route requires
}

// MessageInput is one JSON-RPC message as the mcp package reads it.
type MessageInput struct {
	Method          string
	Kind            string          // "request", "notification" or "response"
	ID              json.RawMessage // raw JSON-RPC id; empty for notifications
	Tool            string          // params.name of tools/call
	Prompt          string          // params.name of prompts/get
	URI             string          // params.uri of resources/*
	Arguments       json.RawMessage // params.arguments, raw JSON; empty when absent
	ProtocolVersion string
	SessionID       string
	Batch           bool
}

// RequestInput is the HTTP request that carried the message. The caller
// removes Authorization (and any other credential header) before filling
// Headers; header names are lower case. As a second line of defence, the
// engine drops Authorization, Proxy-Authorization and Cookie when it builds
// the input document.
type RequestInput struct {
	Method  string
	Path    string
	Host    string
	Headers map[string]string
}

// GrantInput is one just-in-time grant of the caller.
type GrantInput struct {
	ID       string
	Target   string
	Tool     string
	Resource string
	// Arguments, when set, must equal the call's arguments exactly (as JSON
	// values) for the grant to apply.
	Arguments json.RawMessage
	// ArgumentsHash, when set, is ArgumentsHash of the exact arguments the
	// grant is limited to, and what CoveringGrants matches: the grant store
	// keeps no raw copy of a call's arguments (they may hold secrets), so
	// Arguments is then the masked copy, for reading only.
	ArgumentsHash string
	SingleUse     bool
	Expiry        time.Time
	Principal     string // subject of the principal the grant was issued to
}
