package mcp

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// This file holds the HTTP-level rules that make a request have one
// reading: the body is UTF-8 JSON with no content or transfer coding the
// gateway does not undo, the HTTP method is the request's own, and GET and
// DELETE carry no body. A server (or framework) that honours a charset, a
// Content-Encoding or a method-override header would otherwise act on
// bytes or a method the gateway never decided on.

// Method-override headers some frameworks (e.g. Express's method-override,
// Rails, Laravel, Spring's HiddenHttpMethodFilter) honour.
// Keys are lower-case, as the headers map has them.
var overrideHeaders = [...]struct{ key, name string }{
	{"x-http-method-override", "X-HTTP-Method-Override"},
	{"x-http-method", "X-HTTP-Method"},
	{"x-method-override", "X-Method-Override"},
}

// methodOverride refuses a request carrying any method-override header,
// whatever its value.
func methodOverride(h map[string]string) *Error {
	for _, o := range overrideHeaders {
		if _, ok := h[o.key]; ok {
			return &Error{HTTPStatus: 400, Code: CodeInvalidRequest,
				Message: o.name + " header is not allowed: the gateway decides on the request's own HTTP method, and a server honouring the header would run another"}
		}
	}
	return nil
}

// postEncoding checks the headers that say how a POST body is encoded:
// Content-Type (see contentTypeProblem), Content-Encoding (absent or
// identity) and Transfer-Encoding (absent or chunked, which Envoy has
// already undone). Failures are 415.
func postEncoding(h map[string]string) *Error {
	ct, ok := h["content-type"]
	if !ok {
		return &Error{HTTPStatus: 415, Code: CodeInvalidRequest,
			Message: "Content-Type header is missing; an MCP POST body must be sent as application/json"}
	}
	if why := contentTypeProblem(ct); why != "" {
		return &Error{HTTPStatus: 415, Code: CodeInvalidRequest, Message: why}
	}
	if ce, ok := h["content-encoding"]; ok && !strings.EqualFold(trimOWS(ce), "identity") {
		return &Error{HTTPStatus: 415, Code: CodeInvalidRequest,
			Message: "Content-Encoding " + quoteClip(ce) + " is not supported; an MCP POST body must not be encoded (identity only), so that the gateway checks the bytes the server reads"}
	}
	if te, ok := h["transfer-encoding"]; ok && !strings.EqualFold(trimOWS(te), "chunked") {
		return &Error{HTTPStatus: 415, Code: CodeInvalidRequest,
			Message: "Transfer-Encoding " + quoteClip(te) + " is not supported; only chunked is accepted"}
	}
	return nil
}

// bodyLength refuses a POST whose Content-Length is not the number of body
// bytes the gateway received (the body was not cut, see truncated): the
// server would read other bytes than the gateway checked, or the gateway
// got no body at all (Envoy's with_request_body missing).
func bodyLength(r *HTTPRequest) *Error {
	cl, ok := r.Headers["content-length"]
	if !ok {
		return nil // chunked, or HTTP/2 without one: the body is what Envoy buffered
	}
	v := trimOWS(cl)
	var n int64
	digits := 0
	for ; digits < len(v) && isDigit(v[digits]); digits++ {
		if n <= math.MaxInt32 { // beyond that it cannot match a body the gateway takes
			n = n*10 + int64(v[digits]-'0')
		}
	}
	if digits == 0 || digits != len(v) {
		return &Error{HTTPStatus: 400, Code: CodeInvalidRequest,
			Message: "Content-Length " + quoteClip(cl) + " is not one decimal length"}
	}
	if n != int64(len(r.Body)) {
		return &Error{HTTPStatus: 400, Code: CodeInvalidRequest,
			Message: "Content-Length " + quoteClip(cl) + " does not match the " + strconv.Itoa(len(r.Body)) + " body bytes the gateway received; the call cannot be checked"}
	}
	return nil
}

// contentTypeProblem says why ct is not the Content-Type of an MCP POST
// body, or returns "" when it is: the media type application/json (any
// case, optional surrounding whitespace) with no parameter or exactly one
// charset parameter whose value is utf-8 (any case, a token or a quoted
// string without escapes). RFC 9110 section 8.3.1 syntax; anything else,
// including a second parameter, a repeated charset, an empty parameter
// ("application/json;") and whitespace around '=', is refused: a server
// honouring another charset (e.g. utf-7) would decode other characters
// than the gateway checked.
func contentTypeProblem(ct string) string {
	mt, params, hasParams := strings.Cut(ct, ";")
	if !strings.EqualFold(trimOWS(mt), "application/json") {
		return "Content-Type " + quoteClip(ct) + " is not supported; an MCP POST body must be application/json"
	}
	if !hasParams {
		return ""
	}
	malformed := func(what string) string {
		return "Content-Type " + quoteClip(ct) + " has a malformed parameter (" + what + "); only application/json or application/json; charset=utf-8 is accepted"
	}
	rest := ";" + params
	charsets := 0
	for rest != "" { // rest starts with ';'
		rest = trimLeftOWS(rest[1:])
		n := tokenLen(rest)
		if n == 0 {
			return malformed("a parameter name must follow ';'")
		}
		if n == len(rest) || rest[n] != '=' {
			return malformed("'=' must follow the parameter name directly")
		}
		name := rest[:n]
		rest = rest[n+1:]
		var value string
		if rest != "" && rest[0] == '"' {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return malformed("unterminated quoted string")
			}
			value = rest[1 : 1+end]
			if strings.IndexByte(value, '\\') >= 0 {
				return malformed("escapes in a quoted value are not accepted")
			}
			rest = rest[end+2:]
		} else {
			n := tokenLen(rest)
			if n == 0 {
				return malformed("the value of " + quoteClip(name) + " is empty or not a token")
			}
			value, rest = rest[:n], rest[n:]
		}
		rest = trimLeftOWS(rest)
		if rest != "" && rest[0] != ';' {
			return malformed("unexpected text after the value of " + quoteClip(name))
		}
		if !strings.EqualFold(name, "charset") {
			return "Content-Type parameter " + quoteClip(name) + " is not allowed; an MCP POST body is application/json with at most charset=utf-8"
		}
		if charsets++; charsets > 1 {
			return "Content-Type " + quoteClip(ct) + " repeats the charset parameter; give it once (charset=utf-8) or not at all"
		}
		if !strings.EqualFold(value, "utf-8") {
			return "Content-Type charset " + quoteClip(value) + " is not supported; an MCP POST body must be UTF-8 (charset=utf-8 or none), so that the gateway reads the characters the server decodes"
		}
	}
	return ""
}

// tokenLen returns the length of the RFC 9110 token at the start of s.
func tokenLen(s string) int {
	for i := 0; i < len(s); i++ {
		if !tokenByte[s[i]] {
			return i
		}
	}
	return len(s)
}

// tokenByte marks tchar (RFC 9110 section 5.6.2).
var tokenByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func trimLeftOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

func trimOWS(s string) string {
	s = trimLeftOWS(s)
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// bodiless refuses a GET or DELETE that carries a body or says it has one
// (a Content-Length other than 0, or a Transfer-Encoding): neither method
// has a body in MCP, and one the gateway does not check must not reach the
// server.
func bodiless(r *HTTPRequest) *Error {
	what := ""
	switch cl, hasCL := r.Headers["content-length"]; {
	case len(r.Body) != 0:
		what = "a body"
	case hasCL && trimOWS(cl) != "0":
		what = "Content-Length " + quoteClip(cl)
	default:
		if _, ok := r.Headers["transfer-encoding"]; ok {
			what = "a Transfer-Encoding header"
		}
	}
	if what == "" {
		return nil
	}
	use := "opens the server's SSE stream"
	if r.Method == "DELETE" {
		use = "ends a session"
	}
	return &Error{HTTPStatus: 400, Code: CodeInvalidRequest,
		Message: "HTTP " + r.Method + " on an MCP endpoint only " + use + " and must not carry a body; the request has " + what}
}

// PeekID returns the id of body when body is one JSON-RPC message object
// whose id is a JSON string or number, read with ParseHTTP's scanner (so
// duplicate member names, case-folded duplicates, invalid UTF-8, a BOM or
// trailing data make it nil); otherwise nil. It is the id ParseHTTP's
// errors carry for that body, for callers that refuse a request before
// parsing it (authentication, Origin, size) and still want to answer with
// the request's id. It does not check the rest of the message. A truncated
// body is not valid JSON and gives nil. The result shares memory with body.
func PeekID(body []byte) json.RawMessage {
	if len(body) > math.MaxInt32 {
		return nil
	}
	var s scanner
	s.init(body)
	s.skipWS()
	if s.i >= len(body) || body[s.i] != '{' {
		return nil // empty, a batch, or not an object
	}
	var one rawMsg
	var batch []rawMsg
	if isBatch, ok := s.body(&one, &batch); !ok || isBatch {
		return nil
	}
	if id := s.validID(&one); id != nil {
		return id
	}
	return nil
}

// PeekIDPrefix is PeekID for a body Envoy cut at its limit
// (allow_partial_message): the id of the one message object the prefix
// starts, when its id member (a string or number) ended before the cut and
// nothing before the cut is malformed; otherwise nil. Only the answer to
// an over-size request uses it: the call itself is never judged on a
// prefix (ParseHTTP refuses a cut body with 413). A prefix cannot show a
// duplicate id after the cut; echoing the first one in an error is
// harmless, as the request is refused either way.
func PeekIDPrefix(prefix []byte) json.RawMessage {
	if id := PeekID(prefix); id != nil {
		return id
	}
	if len(prefix) > math.MaxInt32 {
		return nil
	}
	var s scanner
	s.init(prefix)
	s.skipWS()
	if s.i >= len(prefix) || prefix[s.i] != '{' {
		return nil
	}
	var one rawMsg
	var batch []rawMsg
	if _, ok := s.body(&one, &batch); ok || s.err == nil || s.err.kind != kindSyntax || s.i < len(prefix) {
		return nil // complete (PeekID said no), or malformed before the cut
	}
	// The id's value must have ended before the cut: a number at the very
	// end may have lost digits.
	if !one.id.present() || int(one.id.e) >= len(prefix) {
		return nil
	}
	return s.validID(&one)
}
