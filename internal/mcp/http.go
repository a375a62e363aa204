package mcp

import (
	"math"
	"strconv"
	"strings"
)

// HTTPRequest is an HTTP request to an MCP endpoint as Envoy's ext_authz
// CheckRequest describes it (attributes.request.http).
type HTTPRequest struct {
	Method string // HTTP method, e.g. "POST"
	// Path is the request path with its query. ParseHTTP does not read it
	// (routing is Envoy's); it is here so callers pass the request whole.
	Path string
	// Headers are keyed by lower-case name, as the CheckRequest headers map
	// gives them (repeated headers comma-joined by Envoy).
	Headers map[string]string
	Body    []byte
	// Truncated is true when Envoy cut the body at max_request_bytes
	// (x-envoy-auth-partial-body: true). ParseHTTP also reads that header
	// itself, so a caller that forgets still fails closed.
	Truncated bool
}

// Allowed HTTP methods on an MCP endpoint, for the Allow header of a 405.
const (
	allowAll  = "GET, POST, DELETE"
	allowPost = "POST"
)

// ParseHTTP reads the MCP call out of an HTTP request to an MCP endpoint,
// for every protocol version airlock supports (see SupportedVersions). It
// gives one reading or none: anything it cannot read exactly as the MCP
// server will (whatever charset, coding or method override the server or
// its framework honours) is an *Error carrying the HTTP status and JSON-RPC
// error to answer with.
//
// What it checks, per the Streamable HTTP transport of each version:
//   - HTTP method: POST carries messages; GET (server stream, resume) and
//     DELETE (end session) give a Call without messages; anything else is
//     405. Under 2026-07-28, which has no GET stream and no sessions, GET
//     and DELETE are 405 too. GET and DELETE must not carry a body (a
//     non-empty body, a Content-Length other than 0 or a Transfer-Encoding
//     is 400), and DELETE needs Mcp-Session-Id (else 400).
//   - Method-override headers (X-HTTP-Method-Override, X-HTTP-Method,
//     X-Method-Override) are 400 on every method, whatever their value.
//   - MCP-Protocol-Version: absent means 2025-03-26; an unsupported value is
//     400 with UNSUPPORTED_PROTOCOL_VERSION (-32022) listing the supported ones.
//   - Mcp-Session-Id: when present it must be visible ASCII (0x21-0x7E)
//     without a comma (Envoy joins a repeated header with commas, and a
//     server reads the first), else 400. Under 2026-07-28, which has no
//     sessions, it must be absent (400).
//   - POST encoding, 415 unless: Content-Type is present and is
//     application/json with no parameter or only charset=utf-8 (any case,
//     quoted or not; see contentTypeProblem), Content-Encoding is absent or
//     identity, and Transfer-Encoding is absent or chunked. A body Envoy
//     truncated is 413; a Content-Length other than the length of the body
//     received is 400.
//   - The body: one JSON-RPC 2.0 message (request, notification or
//     response); a batch array only under 2024-11-05 and 2025-03-26, with 1
//     to 1000 messages, all requests and notifications or all responses, and
//     no initialize (2025-03-26 lifecycle). Invalid JSON is -32700 with the
//     byte offset; a wrong JSON-RPC shape -32600 (also a notifications/*
//     method with an id); bad params of tools/call, prompts/get,
//     resources/read|subscribe|unsubscribe and completion/complete (its
//     params.ref) requests -32602.
//     Duplicate member names (also ones equal up to letter case), invalid
//     UTF-8 and unpaired surrogates are rejected anywhere in the body, and
//     member names the gateway reads must have exactly their case: a server
//     whose JSON decoder treats those differently could otherwise act on a
//     value the gateway never saw (see scan.go).
//   - Mirrored headers (2026-07-28 standard request headers): Mcp-Method
//     must equal the method, Mcp-Name params.name (tools/call, prompts/get)
//     or params.uri (resources/read), after decoding the =?base64?...?=
//     form. Under 2026-07-28 both are required (Mcp-Method on every POST,
//     Mcp-Name on those three methods) and a request's
//     params._meta["io.modelcontextprotocol/protocolVersion"] must equal the
//     header. Under every version a mirrored header that is present must
//     match, Mcp-Name is refused on messages it is not defined for, and a
//     body _meta protocol version needs a matching header.
//     Failures are 400 with HeaderMismatch (-32020).
//     Under 2026-07-28 a client may not POST a JSON-RPC response.
//
// Every error carries the request's id when the body is one message with a
// string or number id (the id PeekID reads), also for errors about headers;
// an error about one element of a batch carries that element's id; a body
// that was truncated or cannot be read gives none (null).
//
// The returned Call's raw fields (ID, Params, Arguments, Result, RPCError)
// share memory with r.Body; r.Body must not be modified while they are used.
func ParseHTTP(r *HTTPRequest) (*Call, *Error) {
	var call *Call
	var err *Error
	switch r.Method {
	case "POST":
		return parsePost(r)
	case "GET", "DELETE":
		call, err = parseBodiless(r)
	default:
		err = &Error{HTTPStatus: 405, Code: CodeInvalidRequest, Allow: allowAll,
			Message: "HTTP method " + quoteClip(r.Method) + " is not allowed on an MCP endpoint; use POST, GET or DELETE"}
	}
	if err != nil {
		return nil, withPeekedID(r, err)
	}
	return call, nil
}

// withPeekedID gives err the id of r's body (see PeekID; PeekIDPrefix
// when the body was cut), and returns it.
func withPeekedID(r *HTTPRequest, err *Error) *Error {
	if err.ID == nil {
		if truncated(r) {
			err.ID = PeekIDPrefix(r.Body)
		} else {
			err.ID = PeekID(r.Body)
		}
	}
	return err
}

func truncated(r *HTTPRequest) bool {
	return r.Truncated || r.Headers["x-envoy-auth-partial-body"] == "true"
}

func parseBodiless(r *HTTPRequest) (*Call, *Error) {
	if err := methodOverride(r.Headers); err != nil {
		return nil, err
	}
	version, _, err := protocolVersion(r.Headers)
	if err != nil {
		return nil, err
	}
	if version == Version20260728 {
		return nil, &Error{HTTPStatus: 405, Code: CodeInvalidRequest, Allow: allowPost,
			Message: "HTTP " + r.Method + " is not part of protocol 2026-07-28 (no GET stream, no sessions); send a POST"}
	}
	if err := bodiless(r); err != nil {
		return nil, err
	}
	session, err := sessionID(r.Headers)
	if err != nil {
		return nil, err
	}
	if session == "" && r.Method == "DELETE" {
		return nil, &Error{HTTPStatus: 400, Code: CodeInvalidRequest,
			Message: "HTTP DELETE on an MCP endpoint ends a session and needs the Mcp-Session-Id header"}
	}
	return &Call{HTTPMethod: r.Method, ProtocolVersion: version, SessionID: session}, nil
}

// callOne holds a single-message Call and its message in one allocation.
type callOne struct {
	call Call
	msg  [1]Message
}

func parsePost(r *HTTPRequest) (*Call, *Error) {
	h := r.Headers
	err := methodOverride(h)
	if err == nil {
		err = postEncoding(h)
	}
	if err != nil {
		return nil, withPeekedID(r, err)
	}
	if truncated(r) {
		return nil, &Error{HTTPStatus: 413, Code: CodeInvalidRequest, ID: PeekIDPrefix(r.Body),
			Message: "request body was cut at the gateway limit; the call cannot be checked (send a smaller request or raise the gateway's max_request_bytes)"}
	}
	if len(r.Body) > math.MaxInt32 { // the scanner keeps offsets as int32
		return nil, &Error{HTTPStatus: 413, Code: CodeInvalidRequest,
			Message: "request body is larger than 2 GiB; the call cannot be checked"}
	}
	if err := bodyLength(r); err != nil {
		return nil, withPeekedID(r, err)
	}
	if blank(r.Body) {
		return nil, &Error{HTTPStatus: 400, Code: CodeParseError,
			Message: "request body is empty; a POST must carry a JSON-RPC message"}
	}

	var s scanner
	s.init(r.Body)
	var one rawMsg
	var batch []rawMsg
	isBatch, ok := s.body(&one, &batch)
	if !ok {
		if s.err.kind == kindBatch {
			return nil, &Error{HTTPStatus: 400, Code: CodeInvalidRequest, Message: s.err.msg + " (element " + strconv.Itoa(maxBatch) + " starts at byte " + strconv.Itoa(s.err.off) + ")"}
		}
		return nil, &Error{HTTPStatus: 400, Code: CodeParseError, Message: s.parseErrorMessage()}
	}
	if isBatch {
		return parseBatch(&s, h, batch)
	}
	// From here on every error carries the message's id (PeekID's reading).
	id := s.validID(&one)
	call, err := parseOne(&s, h, &one, id)
	if err != nil {
		if err.ID == nil {
			err.ID = id
		}
		return nil, err
	}
	return call, nil
}

// postContext reads the headers every POST message is checked against.
func postContext(s *scanner, h map[string]string) (headerCheck, string, *Error) {
	version, sent, err := protocolVersion(h)
	if err != nil {
		return headerCheck{}, "", err
	}
	if s.sem != "" {
		return headerCheck{}, "", &Error{HTTPStatus: 400, Code: CodeInvalidRequest, Message: s.sem}
	}
	session := ""
	if version != Version20260728 {
		if session, err = sessionID(h); err != nil {
			return headerCheck{}, "", err
		}
	} else if _, ok := h["mcp-session-id"]; ok {
		// A server that also speaks older versions could still act on the
		// session the header names, one airlock would not have checked.
		return headerCheck{}, "", &Error{HTTPStatus: 400, Code: CodeInvalidRequest,
			Message: "Mcp-Session-Id is not part of protocol 2026-07-28 (no sessions); leave it out"}
	}
	return headerCheck{h: h, version: version, versionSent: sent}, session, nil
}

func parseOne(s *scanner, h map[string]string, one *rawMsg, id []byte) (*Call, *Error) {
	hc, session, err := postContext(s, h)
	if err != nil {
		return nil, err
	}
	msg, err := s.message(one, "")
	if err == nil {
		err = hc.check(s, one, &msg, "")
	}
	if err != nil {
		return nil, err
	}
	c := &callOne{}
	c.msg[0] = msg
	c.call = Call{HTTPMethod: "POST", ProtocolVersion: hc.version, SessionID: session, Messages: c.msg[:]}
	return &c.call, nil
}

// parseBatch checks a batch array. Errors about one element carry that
// element's id; errors about the whole batch carry none.
func parseBatch(s *scanner, h map[string]string, batch []rawMsg) (*Call, *Error) {
	hc, session, err := postContext(s, h)
	if err != nil {
		return nil, err
	}
	version := hc.version
	if !batchAllowed(version) {
		return nil, &Error{HTTPStatus: 400, Code: CodeInvalidRequest,
			Message: "the body is a JSON-RPC batch array, which protocol " + version + " does not allow (batches exist only in 2024-11-05 and 2025-03-26); send one message per POST"}
	}
	if len(batch) == 0 {
		return nil, &Error{HTTPStatus: 400, Code: CodeInvalidRequest, Message: "the body is an empty JSON-RPC batch array; a batch needs at least one message"}
	}
	msgs := make([]Message, len(batch))
	responses := 0
	for i := range batch {
		where := "batch element " + strconv.Itoa(i) + ": "
		msg, err := s.message(&batch[i], where)
		if err == nil {
			err = hc.check(s, &batch[i], &msg, where)
		}
		if err != nil {
			if err.ID == nil {
				err.ID = s.validID(&batch[i])
			}
			return nil, err
		}
		if msg.Method == "initialize" {
			return nil, invalid(400, CodeInvalidRequest, msg.ID, "%sinitialize must not be part of a JSON-RPC batch", where)
		}
		if msg.Kind == KindResponse {
			responses++
		}
		msgs[i] = msg
	}
	if responses != 0 && responses != len(msgs) {
		return nil, &Error{HTTPStatus: 400, Code: CodeInvalidRequest,
			Message: "a batch holds either requests and notifications or responses, not both"}
	}
	return &Call{HTTPMethod: "POST", ProtocolVersion: version, SessionID: session, Batch: true, Messages: msgs}, nil
}

// blank reports whether b is empty or JSON whitespace only.
func blank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

func (s *scanner) parseErrorMessage() string {
	return "invalid JSON at byte " + strconv.Itoa(s.err.off) + ": " + s.err.msg
}

// protocolVersion reads MCP-Protocol-Version; sent says whether the header
// was there.
func protocolVersion(h map[string]string) (version string, sent bool, err *Error) {
	v, ok := h["mcp-protocol-version"]
	if !ok {
		return Version20250326, false, nil
	}
	if known, ok := knownVersion(v); ok {
		return known, true, nil
	}
	requested := v
	if len(requested) > clipLen {
		requested = requested[:clipLen]
	}
	return "", true, &Error{HTTPStatus: 400, Code: CodeUnsupportedProtocolVersion,
		Message: "MCP-Protocol-Version " + quoteClip(v) + " is not supported; supported versions: " + strings.Join(SupportedVersions(), ", "),
		Data:    UnsupportedVersionData{Supported: SupportedVersions(), Requested: strings.ToValidUTF8(requested, "")}}
}

// sessionID reads Mcp-Session-Id, which must be visible ASCII. Its value is
// never put in an error: it is a bearer of the session.
func sessionID(h map[string]string) (string, *Error) {
	v, ok := h["mcp-session-id"]
	if !ok {
		return "", nil
	}
	if v == "" {
		return "", &Error{HTTPStatus: 400, Code: CodeInvalidRequest, Message: "Mcp-Session-Id header is empty"}
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x21 || c > 0x7e {
			return "", &Error{HTTPStatus: 400, Code: CodeInvalidRequest,
				Message: "Mcp-Session-Id header must be visible ASCII (0x21-0x7E); byte " + strconv.Itoa(i) + " is not"}
		}
		// Envoy joins repeated headers with commas, and a server reads the
		// first of them: "a,b" is two sessions to the two readers.
		if v[i] == ',' {
			return "", &Error{HTTPStatus: 400, Code: CodeInvalidRequest,
				Message: "Mcp-Session-Id must be sent once and hold no comma (byte " + strconv.Itoa(i) + "): a repeated header names two sessions"}
		}
	}
	return v, nil
}
