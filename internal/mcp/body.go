package mcp

import "bytes"

// This file is the MCP side of the scanner: while scanning a POST body it
// records where the members policy needs sit (the message's
// jsonrpc/id/method/params/result/error, params' name/uri/arguments/ref,
// params.ref's type/name/uri and the _meta protocol version), so no second
// pass is needed, and it flags member
// names that differ from those only in letter case. Recorded values are
// spans into the body; nothing is copied.

// maxBatch bounds the messages of one batch array; real clients send a
// handful, and each message costs a policy decision.
const maxBatch = 1000

// metaVersionKey is the _meta member carrying a 2026-07-28 request's
// protocol version (schema/2026-07-28/schema.ts, RequestMetaObject).
const metaVersionKey = "io.modelcontextprotocol/protocolVersion"

var (
	messageMembers = []string{"jsonrpc", "id", "method", "params", "result", "error"}
	paramsMembers  = []string{"name", "uri", "arguments", "_meta", "ref"}
	metaMembers    = []string{metaVersionKey}
	refMembers     = []string{"type", "name", "uri"}
)

// level says which object the scanner is in, to know what to record.
type level uint8

const (
	levelAny level = iota
	levelMessage
	levelParams
	levelMeta
	levelRef // params.ref (completion/complete)
)

// span is s.b[s:e]; e == 0 means absent (no member value starts at byte 0).
type span struct{ s, e int32 } // int32: ParseHTTP refuses bodies over 2 GiB

func (p span) present() bool { return p.e > 0 }

// rawMsg is where one JSON-RPC message's members sit in the body.
type rawMsg struct {
	start                               int // offset of the message's '{'
	jsonrpc, id, method, params, result span
	err                                 span
	name, uri, args, metaVersion        span // members of params (and params._meta)
	ref, refType, refName, refURI       span // params.ref and its members
	notObject                           bool // a batch element that is not an object
}

// member scans the value of member key of an object at level lv, and
// records its span when policy needs it.
func (s *scanner) member(lv level, m *rawMsg, key []byte, keyOff int) bool {
	var dst *span
	next := levelAny
	switch lv {
	case levelMessage:
		switch string(key) {
		case "jsonrpc":
			dst = &m.jsonrpc
		case "id":
			dst = &m.id
		case "method":
			dst = &m.method
		case "params":
			dst, next = &m.params, levelParams
		case "result":
			dst = &m.result
		case "error":
			dst = &m.err
		default:
			s.caseVariant(key, keyOff, messageMembers, "")
		}
	case levelParams:
		switch string(key) {
		case "name":
			dst = &m.name
		case "uri":
			dst = &m.uri
		case "arguments":
			dst = &m.args
		case "_meta":
			next = levelMeta
		case "ref":
			dst, next = &m.ref, levelRef
		default:
			s.caseVariant(key, keyOff, paramsMembers, "params.")
		}
	case levelRef:
		switch string(key) {
		case "type":
			dst = &m.refType
		case "name":
			dst = &m.refName
		case "uri":
			dst = &m.refURI
		default:
			s.caseVariant(key, keyOff, refMembers, "params.ref.")
		}
	case levelMeta:
		if string(key) == metaVersionKey {
			dst = &m.metaVersion
		} else {
			s.caseVariant(key, keyOff, metaMembers, "params._meta.")
		}
	}
	start := s.i
	var ok bool
	if next != levelAny && s.i < len(s.b) && s.b[s.i] == '{' {
		ok = s.object(next, m)
	} else {
		ok = s.value()
	}
	if ok && dst != nil {
		*dst = span{int32(start), int32(s.i)}
	}
	return ok
}

// caseVariant notes a member name that differs from one the gateway reads
// only in letter case: a server decoding with case-insensitive matching
// would take it for that member while the gateway would not.
func (s *scanner) caseVariant(key []byte, off int, known []string, prefix string) {
	for _, k := range known {
		if bytes.EqualFold(key, []byte(k)) {
			s.structural("member name %s (byte %d) differs from %s only in letter case; member names are case-sensitive",
				quoteClip(string(key)), off, quoteClip(prefix+k))
			return
		}
	}
}

// body scans a whole POST body into s.one (a single message) or s.batch.
// It returns false on a syntax-level failure (s.err).
func (s *scanner) body(one *rawMsg, batch *[]rawMsg) (isBatch bool, ok bool) {
	s.skipWS()
	switch {
	case s.i < len(s.b) && s.b[s.i] == '{':
		one.start = s.i
		ok = s.object(levelMessage, one)
	case s.i < len(s.b) && s.b[s.i] == '[':
		isBatch = true
		ok = s.batch(batch)
	default:
		start := s.i
		if ok = s.value(); ok {
			s.structural("the body is a JSON %s, not a JSON-RPC message object (byte %d)", jsonType(s.b[start]), start)
		}
	}
	if !ok {
		return isBatch, false
	}
	s.skipWS()
	if s.i < len(s.b) {
		return isBatch, s.unexpected("the end of the body after the JSON value")
	}
	return isBatch, true
}

func (s *scanner) batch(out *[]rawMsg) bool {
	if !s.enter() {
		return false
	}
	s.skipWS()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		s.depth--
		return true
	}
	for {
		s.skipWS()
		if len(*out) == maxBatch {
			return s.fail(kindBatch, s.i, "a batch may hold at most %d messages", maxBatch)
		}
		*out = append(*out, rawMsg{start: s.i})
		m := &(*out)[len(*out)-1]
		if s.i < len(s.b) && s.b[s.i] == '{' {
			if !s.object(levelMessage, m) {
				return false
			}
		} else {
			m.notObject = true
			if !s.value() {
				return false
			}
		}
		if more, ok := s.nextElement("a batch element"); !more {
			return ok
		}
	}
}
