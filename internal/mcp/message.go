package mcp

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/airlock-mcp/airlock/internal/jsontext"
)

// clipLen bounds how much of a client-supplied value an error message quotes.
const clipLen = 64

// quoteClip quotes s for an error message, cut to clipLen bytes (on a rune
// boundary) with its full length noted.
func quoteClip(s string) string {
	if len(s) <= clipLen {
		return strconv.Quote(s)
	}
	cut := clipLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "... (" + strconv.Itoa(len(s)) + " bytes)"
}

func invalid(status, code int, id []byte, format string, args ...any) *Error {
	return &Error{HTTPStatus: status, Code: code, ID: id, Message: fmt.Sprintf(format, args...)}
}

// idKind is the JSON type of an id member.
type idKind uint8

const (
	idAbsent idKind = iota
	idNull
	idString
	idNumber
	idOther
)

func (s *scanner) idOf(m *rawMsg) (idKind, []byte) {
	if !m.id.present() {
		return idAbsent, nil
	}
	raw := s.b[m.id.s:m.id.e]
	switch c := raw[0]; {
	case c == '"':
		return idString, raw
	case c == '-' || isDigit(c):
		return idNumber, raw
	case c == 'n':
		return idNull, nil
	default:
		return idOther, nil
	}
}

// validID returns m's id when it is a string or a number (else nil), for
// error responses.
func (s *scanner) validID(m *rawMsg) []byte {
	if k, raw := s.idOf(m); k == idString || k == idNumber {
		return raw
	}
	return nil
}

// text returns the decoded content of the string at sp, without copying
// when it has no escapes; ok is false when the value is not a string.
func (s *scanner) text(sp span) (b []byte, ok bool) {
	if !sp.present() || s.b[sp.s] != '"' {
		return nil, false
	}
	raw := s.b[sp.s+1 : sp.e-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw, true
	}
	return jsontext.AppendUnescaped(nil, raw), true
}

// raw returns the bytes at sp, or nil when absent or null.
func (s *scanner) raw(sp span) []byte {
	if !sp.present() || s.b[sp.s] == 'n' {
		return nil
	}
	return s.b[sp.s:sp.e]
}

func (s *scanner) isObject(sp span) bool { return sp.present() && s.b[sp.s] == '{' }

// message turns the members recorded in m into a Message, checking the
// JSON-RPC 2.0 shape. where prefixes error messages ("" or "batch element 2: ").
func (s *scanner) message(m *rawMsg, where string) (Message, *Error) {
	var msg Message
	if m.notObject {
		return msg, invalid(400, CodeInvalidRequest, nil, "%sthe element at byte %d is a JSON %s, not a JSON-RPC message object",
			where, m.start, jsonType(s.b[m.start]))
	}
	id := s.validID(m)
	if v, ok := s.text(m.jsonrpc); !ok || string(v) != "2.0" {
		got := "it is missing"
		if ok {
			got = "got " + quoteClip(string(v))
		} else if m.jsonrpc.present() {
			got = "got a JSON " + jsonType(s.b[m.jsonrpc.s])
		}
		return msg, invalid(400, CodeInvalidRequest, id, `%s"jsonrpc" must be "2.0"; %s`, where, got)
	}
	kind, _ := s.idOf(m)
	switch {
	case m.method.present():
		method, ok := s.text(m.method)
		if !ok {
			return msg, invalid(400, CodeInvalidRequest, id, `%s"method" must be a string, not a JSON %s`, where, jsonType(s.b[m.method.s]))
		}
		if len(method) == 0 {
			return msg, invalid(400, CodeInvalidRequest, id, `%s"method" is empty`, where)
		}
		msg.Method = internMethod(method)
		if m.id.present() && strings.HasPrefix(msg.Method, "notifications/") {
			return msg, invalid(400, CodeInvalidRequest, id, `%sa notification must not have an id; %s carries one`, where, quoteClip(msg.Method))
		}
		if m.result.present() || m.err.present() {
			return msg, invalid(400, CodeInvalidRequest, id, `%sa message with "method" must not carry "result" or "error"`, where)
		}
		switch kind {
		case idAbsent:
			msg.Kind = KindNotification
		case idString, idNumber:
			msg.Kind, msg.ID = KindRequest, id
		case idNull:
			return msg, invalid(400, CodeInvalidRequest, nil, `%sthe id of request %s must be a string or a number, not null`, where, quoteClip(msg.Method))
		default:
			return msg, invalid(400, CodeInvalidRequest, nil, `%sthe id of request %s must be a string or a number, not a JSON %s`,
				where, quoteClip(msg.Method), jsonType(s.b[m.id.s]))
		}
		if m.params.present() && !s.isObject(m.params) && s.b[m.params.s] != 'n' {
			return msg, invalid(400, CodeInvalidParams, id, `%s"params" of %s must be an object, not a JSON %s`,
				where, quoteClip(msg.Method), jsonType(s.b[m.params.s]))
		}
		msg.Params = s.raw(m.params)
		if msg.Kind == KindRequest {
			if err := s.requestParams(m, &msg, where); err != nil {
				return msg, err
			}
		}
	case m.result.present() || m.err.present():
		msg.Kind = KindResponse
		if m.result.present() && m.err.present() {
			return msg, invalid(400, CodeInvalidRequest, id, `%sa response carries "result" or "error", not both`, where)
		}
		if m.params.present() {
			return msg, invalid(400, CodeInvalidRequest, id, `%sa response must not carry "params"`, where)
		}
		if m.result.present() {
			if kind != idString && kind != idNumber {
				return msg, invalid(400, CodeInvalidRequest, nil, `%sa result response needs an id that is a string or a number`, where)
			}
			if !s.isObject(m.result) {
				return msg, invalid(400, CodeInvalidRequest, id, `%s"result" must be an object, not a JSON %s`, where, jsonType(s.b[m.result.s]))
			}
			msg.Result = s.raw(m.result)
		} else {
			if kind == idOther {
				return msg, invalid(400, CodeInvalidRequest, nil, `%sthe id of an error response must be a string, a number or null`, where)
			}
			if !s.isObject(m.err) {
				return msg, invalid(400, CodeInvalidRequest, id, `%s"error" must be an object, not a JSON %s`, where, jsonType(s.b[m.err.s]))
			}
			msg.RPCError = s.raw(m.err)
		}
		msg.ID = id
	case m.id.present():
		return msg, invalid(400, CodeInvalidRequest, id, `%sthe message has an "id" but no "method", "result" or "error"`, where)
	default:
		return msg, invalid(400, CodeInvalidRequest, nil, `%sthe message has no "method", "result" or "error"`, where)
	}
	return msg, nil
}

// requestParams reads what policy needs from the params of the requests
// that name a tool, a prompt or a resource.
func (s *scanner) requestParams(m *rawMsg, msg *Message, where string) *Error {
	var field string
	var sp span
	var dst *string
	switch targetOf(msg.Method) { // subject.go: the one table of what a method acts on
	case targetTool:
		field, sp, dst = "name", m.name, &msg.Tool
	case targetPrompt:
		field, sp, dst = "name", m.name, &msg.Prompt
	case targetResource:
		field, sp, dst = "uri", m.uri, &msg.URI
	case targetRef:
		return s.completionRef(m, msg, where)
	default:
		return nil
	}
	if !s.isObject(m.params) {
		return invalid(400, CodeInvalidParams, msg.ID, `%s%s needs "params" with a string %q`, where, msg.Method, field)
	}
	v, ok := s.text(sp)
	switch {
	case !sp.present():
		return invalid(400, CodeInvalidParams, msg.ID, `%s%s needs params.%s`, where, msg.Method, field)
	case !ok:
		return invalid(400, CodeInvalidParams, msg.ID, `%sparams.%s of %s must be a string, not a JSON %s`, where, field, msg.Method, jsonType(s.b[sp.s]))
	case len(v) == 0:
		return invalid(400, CodeInvalidParams, msg.ID, `%sparams.%s of %s is empty`, where, field, msg.Method)
	}
	*dst = string(v)
	if field == "name" && m.args.present() {
		if !s.isObject(m.args) && s.b[m.args.s] != 'n' {
			return invalid(400, CodeInvalidParams, msg.ID, `%sparams.arguments of %s must be an object, not a JSON %s`,
				where, msg.Method, jsonType(s.b[m.args.s]))
		}
		msg.Arguments = s.raw(m.args)
	}
	return nil
}

// completionRef reads params.ref of a completion/complete request into
// msg.Prompt (a "ref/prompt" reference's name) or msg.URI (a
// "ref/resource" reference's uri, a resource URI or URI template), so that
// policy applies the rules of the prompt or resource the completion is
// about. A ref of neither type, one without its name or uri, or one that
// carries the other type's member (a server could read either) is -32602.
func (s *scanner) completionRef(m *rawMsg, msg *Message, where string) *Error {
	const method = "completion/complete"
	if !s.isObject(m.params) || !s.isObject(m.ref) {
		got := "it is missing"
		if m.ref.present() {
			got = "it is a JSON " + jsonType(s.b[m.ref.s])
		}
		return invalid(400, CodeInvalidParams, msg.ID, `%s%s needs params.ref, an object with "type" "ref/prompt" or "ref/resource"; %s`, where, method, got)
	}
	typ, ok := s.text(m.refType)
	var field string
	var sp, other span
	var dst *string
	switch {
	case ok && string(typ) == "ref/prompt":
		field, sp, other, dst = "name", m.refName, m.refURI, &msg.Prompt
	case ok && string(typ) == "ref/resource":
		field, sp, other, dst = "uri", m.refURI, m.refName, &msg.URI
	case ok:
		return invalid(400, CodeInvalidParams, msg.ID, `%sparams.ref.type of %s must be "ref/prompt" or "ref/resource", not %s`, where, method, quoteClip(string(typ)))
	case m.refType.present():
		return invalid(400, CodeInvalidParams, msg.ID, `%sparams.ref.type of %s must be a string, not a JSON %s`, where, method, jsonType(s.b[m.refType.s]))
	default:
		return invalid(400, CodeInvalidParams, msg.ID, `%s%s needs params.ref.type ("ref/prompt" or "ref/resource")`, where, method)
	}
	v, ok := s.text(sp)
	switch {
	case !sp.present():
		return invalid(400, CodeInvalidParams, msg.ID, `%sa %s reference of %s needs params.ref.%s`, where, typ, method, field)
	case !ok:
		return invalid(400, CodeInvalidParams, msg.ID, `%sparams.ref.%s of %s must be a string, not a JSON %s`, where, field, method, jsonType(s.b[sp.s]))
	case len(v) == 0:
		return invalid(400, CodeInvalidParams, msg.ID, `%sparams.ref.%s of %s is empty`, where, field, method)
	case other.present():
		otherField := "uri"
		if field == "uri" {
			otherField = "name"
		}
		return invalid(400, CodeInvalidParams, msg.ID, `%sa %s reference of %s must not carry params.ref.%s`, where, typ, method, otherField)
	}
	*dst = string(v)
	return nil
}

// internMethod returns a constant for the methods of any supported MCP
// version so that parsing them does not allocate.
func internMethod(b []byte) string {
	switch string(b) {
	case "initialize":
		return "initialize"
	case "ping":
		return "ping"
	case "server/discover":
		return "server/discover"
	case "tools/list":
		return "tools/list"
	case "tools/call":
		return "tools/call"
	case "resources/list":
		return "resources/list"
	case "resources/templates/list":
		return "resources/templates/list"
	case "resources/read":
		return "resources/read"
	case "resources/subscribe":
		return "resources/subscribe"
	case "resources/unsubscribe":
		return "resources/unsubscribe"
	case "prompts/list":
		return "prompts/list"
	case "prompts/get":
		return "prompts/get"
	case "completion/complete":
		return "completion/complete"
	case "logging/setLevel":
		return "logging/setLevel"
	case "subscriptions/listen":
		return "subscriptions/listen"
	case "tasks/get":
		return "tasks/get"
	case "tasks/list":
		return "tasks/list"
	case "tasks/result":
		return "tasks/result"
	case "tasks/cancel":
		return "tasks/cancel"
	case "notifications/initialized":
		return "notifications/initialized"
	case "notifications/cancelled":
		return "notifications/cancelled"
	case "notifications/progress":
		return "notifications/progress"
	case "notifications/roots/list_changed":
		return "notifications/roots/list_changed"
	case "notifications/tasks/status":
		return "notifications/tasks/status"
	}
	return string(b)
}
