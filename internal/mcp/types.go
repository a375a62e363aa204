// Package mcp reads MCP (Model Context Protocol) traffic as a gateway sees it:
// JSON-RPC 2.0 messages carried over Streamable HTTP (and the older HTTP+SSE
// transport), for every protocol version airlock supports. It never executes
// anything; it only says what a message is and what it asks for.
package mcp

import "encoding/json"

// Protocol versions airlock understands.
const (
	Version20241105 = "2024-11-05" // HTTP+SSE transport; JSON-RPC batches allowed
	Version20250326 = "2025-03-26" // JSON-RPC batches allowed; the default when MCP-Protocol-Version is absent
	Version20250618 = "2025-06-18"
	Version20251125 = "2025-11-25"
	Version20260728 = "2026-07-28" // stateless; Mcp-Method / Mcp-Name headers required
)

// Kind is the JSON-RPC shape of one message.
type Kind string

const (
	KindRequest      Kind = "request"
	KindNotification Kind = "notification"
	KindResponse     Kind = "response" // a result or an error sent by the client (answers to server requests)
)

// Message is one JSON-RPC message, reduced to what policy needs.
type Message struct {
	Kind   Kind   `json:"kind"`
	Method string `json:"method,omitempty"`
	// ID is the raw JSON-RPC id (number or string) exactly as sent; nil for
	// notifications and for error responses whose id is null or absent.
	ID json.RawMessage `json:"id,omitempty"`
	// Tool is params.name of a tools/call request, Prompt params.name of a
	// prompts/get request, URI params.uri of a resources/read, resources/subscribe
	// or resources/unsubscribe request. For a completion/complete request,
	// Prompt is params.ref.name of a "ref/prompt" reference and URI
	// params.ref.uri of a "ref/resource" one (a resource URI or URI
	// template), so that the completion follows the rules of what it
	// completes; exactly one of them is set.
	Tool      string          `json:"tool,omitempty"`
	Prompt    string          `json:"prompt,omitempty"`
	URI       string          `json:"uri,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"` // params.arguments of tools/call and prompts/get, raw JSON object; nil when absent or null
	Params    json.RawMessage `json:"-"`                   // whole params, raw; nil when absent or null
	// Result and RPCError are the result or error member of a response, raw.
	Result   json.RawMessage `json:"-"`
	RPCError json.RawMessage `json:"-"`
}

// Call is an HTTP exchange on an MCP endpoint as read from the request alone.
type Call struct {
	HTTPMethod      string    `json:"http_method"`      // POST, GET or DELETE
	ProtocolVersion string    `json:"protocol_version"` // from MCP-Protocol-Version, defaulted per spec
	SessionID       string    `json:"session_id,omitempty"`
	Batch           bool      `json:"batch,omitempty"`
	Messages        []Message `json:"messages,omitempty"` // empty for GET/DELETE
}

// Error is a parse failure with what a client must be told.
type Error struct {
	HTTPStatus int    // 400, 405, 413, 415
	Code       int    // JSON-RPC error code (-32700 parse, -32600 invalid request, -32020 header mismatch ...)
	Message    string // says what was wrong and where; never includes secrets
	// ID is the id of the offending request when it is known, else nil
	// (ErrorResponse then writes null).
	ID json.RawMessage
	// Data is the JSON-RPC error data member, or nil. For
	// CodeUnsupportedProtocolVersion it is an UnsupportedVersionData.
	Data any
	// Allow is, for a 405, the value the response's Allow header must carry.
	Allow string
}

// UnsupportedVersionData is the data member of an
// UnsupportedProtocolVersionError (schema/2026-07-28/schema.ts).
type UnsupportedVersionData struct {
	Supported []string `json:"supported"`
	Requested string   `json:"requested"`
}

func (e *Error) Error() string { return e.Message }

// JSON-RPC and MCP error codes used by the gateway.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
	CodeHeaderMismatch = -32020 // 2026-07-28: Mcp-Method/Mcp-Name header vs body
	// CodeUnsupportedProtocolVersion is UNSUPPORTED_PROTOCOL_VERSION from the
	// 2026-07-28 schema; airlock uses it for every version it does not know.
	CodeUnsupportedProtocolVersion = -32022
	// CodeURLElicitationNeeded is URL_ELICITATION_REQUIRED. It exists in
	// 2025-11-25 only: 2026-07-28 keeps it reserved and never reuses it.
	CodeURLElicitationNeeded = -32042

	// airlock's own refusals, in the range the MCP spec leaves to
	// implementations (-32000..-32019), clear of the codes the SDKs keep
	// for themselves: the TypeScript SDK's ConnectionClosed (-32000) and
	// RequestTimeout (-32001); the Go SDK's jsonrpc2 unknown (-32001),
	// client closing (-32003), server closing (-32004) and rejected
	// (-32005); and the spec's resource-not-found (-32002). (airlock used
	// -32001/-32003/-32004 before: a Go SDK client read an approval-required
	// answer as "server is closing" and dropped its message.)
	CodeUnauthorized     = -32011
	CodeForbidden        = -32013
	CodeApprovalRequired = -32014
)

// supportedVersions is newest first, as UnsupportedProtocolVersionError lists them.
var supportedVersions = [...]string{Version20260728, Version20251125, Version20250618, Version20250326, Version20241105}

// SupportedVersions returns the protocol versions airlock accepts, newest first.
func SupportedVersions() []string {
	out := supportedVersions
	return out[:]
}

// knownVersion returns the package constant equal to v, so a Call never
// keeps the caller's header string alive.
func knownVersion(v string) (string, bool) {
	for _, s := range supportedVersions {
		if s == v {
			return s, true
		}
	}
	return "", false
}

// batchAllowed reports whether a POST body may be a JSON-RPC batch array
// under version v: only 2024-11-05 and 2025-03-26 (batching was removed in
// 2025-06-18, changelog major #1).
func batchAllowed(v string) bool { return v == Version20241105 || v == Version20250326 }

// ClientNotification reports whether method is a notification the schema
// of protocol version defines for a client to send to a server (the
// ClientNotification union of schema/<version>/schema.ts):
//
//   - 2024-11-05, 2025-03-26, 2025-06-18: notifications/cancelled,
//     notifications/progress, notifications/initialized,
//     notifications/roots/list_changed;
//   - 2025-11-25: those and notifications/tasks/status;
//   - 2026-07-28: notifications/cancelled only.
//
// It is false for an unknown version and for every other name. ParseHTTP
// accepts any notification name (which ones pass is policy's choice) but
// never one that carries an id.
func ClientNotification(version, method string) bool {
	switch method {
	case "notifications/cancelled":
		_, ok := knownVersion(version)
		return ok
	case "notifications/progress", "notifications/initialized", "notifications/roots/list_changed":
		return version == Version20241105 || version == Version20250326 || version == Version20250618 || version == Version20251125
	case "notifications/tasks/status":
		return version == Version20251125
	}
	return false
}
