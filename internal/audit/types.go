package audit

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Direction says what kind of MCP message an Event is.
type Direction string

// The directions of an Event.
const (
	DirRequest      Direction = "request"      // client → server JSON-RPC request
	DirResponse     Direction = "response"     // server → client JSON-RPC result
	DirNotification Direction = "notification" // JSON-RPC notification, either way
	DirSSEEvent     Direction = "sse_event"    // one event of a server-sent event stream
	DirError        Direction = "error"        // JSON-RPC error, or a local reply by the gateway
)

// Record is one row to record: *Event, *Decision, *RequestEvent or
// *GrantEvent. Sink.Record fills an empty id and a zero time in place and
// copies the rest; the caller may reuse the value once Record returns.
type Record interface {
	kind() kind
}

// kind tags a row in the spool and names its table.
type kind uint8

const (
	kindEvent kind = iota + 1
	kindDecision
	kindRequest
	kindGrant
	numKinds = int(kindGrant) + 1
)

var kindNames = [...]string{kindEvent: "event", kindDecision: "decision", kindRequest: "request", kindGrant: "grant"}

// Kind is the exported name of a row's kind, for backends that keep one
// table per kind (internal/audit/clickhouse).
type Kind = kind

// The kinds of rows, and one more than the largest (for arrays by kind).
const (
	KindEvent    = kindEvent
	KindDecision = kindDecision
	KindRequest  = kindRequest
	KindGrant    = kindGrant
	NumKinds     = numKinds
)

// KindOf returns r's kind.
func KindOf(r Record) Kind { return r.kind() }

func (k kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// Event is one MCP message of a session, already masked: a request with
// its arguments, a result, a notification, an error or one SSE event.
type Event struct {
	// EventID is unique per message (a random UUID filled by Record when
	// empty); it is the de-duplication key.
	EventID string    `json:"event_id"`
	Time    time.Time `json:"time"` // when the message passed; now when zero
	// SessionID is the MCP session (Mcp-Session-Id, or the id the gateway
	// gave a stateless exchange).
	SessionID string    `json:"session_id"`
	Principal string    `json:"principal"` // the user the agent acts for
	ClientID  string    `json:"client_id"` // the agent's OAuth client id
	Issuer    string    `json:"issuer"`    // the token's issuer
	Target    string    `json:"target"`    // the MCP server (target name)
	Direction Direction `json:"direction"`
	Method    string    `json:"method"` // JSON-RPC method ("tools/call"); for a response, the request's
	Tool      string    `json:"tool"`   // tool name, resource URI or prompt name the method acts on
	// JSONRPCID is the message id as JSON text: `7` or `"abc"`; empty for notifications.
	JSONRPCID  string `json:"jsonrpc_id"`
	DecisionID string `json:"decision_id"` // the ext_authz decision that let the exchange through
	GrantID    string `json:"grant_id"`    // the just-in-time grant used, if any
	Status     int    `json:"status"`      // HTTP status of the exchange
	// Outcome is what happened to the message: allow, deny, approval_required, error, …
	Outcome   string  `json:"outcome"`
	LatencyMS float64 `json:"latency_ms"` // request → response time, on responses
	// Masked counts the values masked in Payload by mask type ("aws_access_key": 2).
	Masked map[string]int `json:"masked,omitempty"`
	// Payload is the masked message JSON, cut to the configured maximum.
	Payload   string `json:"payload"`
	Truncated bool   `json:"truncated"` // Payload was cut
	Bytes     int64  `json:"bytes"`     // size of the whole message; len(Payload) when zero
}

// Decision is one ext_authz decision.
type Decision struct {
	DecisionID    string    `json:"decision_id"` // random UUID filled when empty
	Time          time.Time `json:"time"`
	SessionID     string    `json:"session_id"`
	Principal     string    `json:"principal"`
	ClientID      string    `json:"client_id"`
	Issuer        string    `json:"issuer"`
	Target        string    `json:"target"`
	Method        string    `json:"method"`
	Tool          string    `json:"tool"`
	JSONRPCID     string    `json:"jsonrpc_id"`
	Outcome       string    `json:"outcome"` // allow, deny, approval_required, …
	Reason        string    `json:"reason"`  // why, for the operator (for 401/403 more precise than the agent is told)
	PolicyVersion string    `json:"policy_version"`
	GrantID       string    `json:"grant_id"`
	RequestID     string    `json:"request_id"` // the access request opened, if any
	Status        int       `json:"status"`     // HTTP status answered
	LatencyUS     int64     `json:"latency_us"` // time to decide
	// TraceID is the W3C trace id of the request (from the span, or the
	// traceparent/x-b3 headers Envoy sent); "" when it carried none.
	TraceID string `json:"trace_id"`
}

// RequestEvent is one transition of an access request (a call held for a
// human): created, approved, denied, expired, cancelled, …
type RequestEvent struct {
	EventID    string    `json:"event_id"` // random UUID filled when empty
	Time       time.Time `json:"time"`
	RequestID  string    `json:"request_id"`
	FromState  string    `json:"from_state"` // empty when created
	ToState    string    `json:"to_state"`   // pending, approved, denied, expired, …
	Actor      string    `json:"actor"`      // who caused the transition (requester, approver, "system")
	Principal  string    `json:"principal"`  // who asked for access
	ClientID   string    `json:"client_id"`
	Target     string    `json:"target"`
	Method     string    `json:"method"`
	Tool       string    `json:"tool"`
	Reason     string    `json:"reason"`
	DecisionID string    `json:"decision_id"` // the decision that opened the request
	GrantID    string    `json:"grant_id"`    // the grant issued on approval

	// Seq orders the rows of one request: it grows with every step, also
	// across airlock restarts, and the row that ended the request has the
	// largest, so the request's state is the to_state of its largest Seq.
	// time_ns cannot say that: a vote and the approval it completes are
	// one step and share their time.
	Seq uint64 `json:"seq"`
}

// GrantEvent is one transition of a just-in-time grant: issued, used,
// consumed, expired, revoked, …
type GrantEvent struct {
	EventID    string    `json:"event_id"` // random UUID filled when empty
	Time       time.Time `json:"time"`
	GrantID    string    `json:"grant_id"`
	Transition string    `json:"transition"`
	Actor      string    `json:"actor"`
	Principal  string    `json:"principal"` // the grantee
	ClientID   string    `json:"client_id"`
	Target     string    `json:"target"`
	Tools      []string  `json:"tools,omitempty"`
	RequestID  string    `json:"request_id"`
	ExpiresAt  time.Time `json:"expires_at"`
	UsesLeft   int64     `json:"uses_left"` // -1: unlimited
	Reason     string    `json:"reason"`

	// Seq orders the rows of one grant as RequestEvent.Seq does a
	// request's: the transition that ended the grant has the largest.
	Seq uint64 `json:"seq"`
}

func (*Event) kind() kind        { return kindEvent }
func (*Decision) kind() kind     { return kindDecision }
func (*RequestEvent) kind() kind { return kindRequest }
func (*GrantEvent) kind() kind   { return kindGrant }

// NewID returns a random (version 4) UUID in its canonical text form.
func NewID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
