package mcp

import (
	"bytes"
	"encoding/json"
)

// ReadRecorded reads one JSON-RPC message as the audit trail records it:
// leniently (it may be masked, cut, or a server's message in either
// direction) and for description only, never for a decision — decisions
// read requests with ParseHTTP. Kind, Method, ID (nil when absent or
// null), Tool, Prompt or URI by the same table as ParseHTTP, and Result or
// RPCError are filled as far as the bytes allow; what cannot be read is
// left empty.
func ReadRecorded(msg []byte) Message { return readRecorded(msg, false) }

// ReadValidRecorded is ReadRecorded for a message already known to be
// valid JSON — one that mask.Profile.MaskJSON accepted or returned
// (FuzzMaskJSON holds MaskJSON to json.Valid's verdict on both) — without
// the json.Valid scan over it. ID, Result and RPCError point into msg
// instead of being copies: msg must not change while they are in use.
// Were msg not valid after all, ReadValidRecorded still returns (what it
// could read), never panics.
func ReadValidRecorded(msg []byte) Message { return readRecorded(msg, true) }

func readRecorded(msg []byte, valid bool) Message {
	var r recordedShape
	if (valid || json.Valid(msg)) && decodeRecordedSafe(msg, &r) {
		if !valid {
			// ReadRecorded's results are copies, as json.Unmarshal's are.
			r.ID, r.Result, r.Error = clone(r.ID), clone(r.Result), clone(r.Error)
		}
	} else {
		r = recordedShape{}
		_ = json.Unmarshal(msg, &r) // partial reads are what is recorded
	}
	m := Message{Method: r.Method, Result: r.Result, RPCError: r.Error}
	if len(r.ID) > 0 && !bytes.Equal(r.ID, []byte("null")) {
		m.ID = r.ID
	}
	switch {
	case m.Method != "" && m.ID != nil:
		m.Kind = KindRequest
	case m.Method != "":
		m.Kind = KindNotification
	default:
		m.Kind = KindResponse
	}
	if m.Kind != KindRequest {
		return m
	}
	switch targetOf(m.Method) {
	case targetTool:
		m.Tool = r.Params.Name
	case targetPrompt:
		m.Prompt = r.Params.Name
	case targetResource:
		m.URI = r.Params.URI
	case targetRef:
		switch r.Params.Ref.Type {
		case "ref/prompt":
			m.Prompt = r.Params.Ref.Name
		case "ref/resource":
			m.URI = r.Params.Ref.URI
		}
	}
	return m
}

// clone copies a raw value (nil stays nil, as json.RawMessage's
// UnmarshalJSON leaves it).
func clone(b json.RawMessage) json.RawMessage {
	if b == nil {
		return nil
	}
	return append(json.RawMessage{}, b...)
}

// decodeRecordedSafe is decodeRecorded that gives up, instead of
// panicking, on bytes that are not valid JSON after all (it reads past
// their end): ReadValidRecorded trusts its caller's word.
func decodeRecordedSafe(msg []byte, r *recordedShape) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return decodeRecorded(msg, r)
}

// decodeRecorded fills r from msg as json.Unmarshal(msg, r) does, in one
// pass without reflection, for the messages ext_proc records (a tool's
// result is several KiB that json.Unmarshal scans twice and decodes
// field by field only to copy it). It reads only what it can read exactly
// like json.Unmarshal: lower-case ASCII keys, strings without escapes or
// non-ASCII bytes, objects where the shape has objects. On anything else
// — a key json.Unmarshal would match case-insensitively, an escape, a type
// mismatch — it gives up and the caller runs json.Unmarshal. msg must be
// valid JSON (json.Valid).
func decodeRecorded(msg []byte, r *recordedShape) bool {
	d := recDecoder{b: msg}
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return false
	}
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "method":
			return d.method(&r.Method)
		case "id":
			r.ID = d.raw()
		case "result":
			r.Result = d.raw()
		case "error":
			r.Error = d.raw()
		case "params":
			if d.null() {
				return true
			}
			if d.b[d.i] != '{' {
				return false
			}
			p := &r.Params
			return d.object(func(key []byte) bool {
				switch string(key) {
				case "name":
					return d.str(&p.Name)
				case "uri":
					return d.str(&p.URI)
				case "ref":
					if d.null() {
						return true
					}
					if d.b[d.i] != '{' {
						return false
					}
					return d.object(func(key []byte) bool {
						switch string(key) {
						case "type":
							return d.str(&p.Ref.Type)
						case "name":
							return d.str(&p.Ref.Name)
						case "uri":
							return d.str(&p.Ref.URI)
						}
						d.skip()
						return true
					})
				}
				d.skip()
				return true
			})
		default:
			d.skip()
		}
		return true
	})
}

type recDecoder struct {
	b []byte
	i int
}

func (d *recDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// object reads the object at d.i, calling member with d.i at each value
// (whitespace skipped); member must consume the value.
func (d *recDecoder) object(member func(key []byte) bool) bool {
	d.i++ // {
	for {
		d.ws()
		if d.b[d.i] == '}' {
			d.i++
			return true
		}
		if d.b[d.i] == ',' {
			d.i++
			d.ws()
		}
		key, ok := d.plainString()
		if !ok || !plainKey(key) {
			return false
		}
		d.ws()
		d.i++ // :
		d.ws()
		if !member(key) {
			return false
		}
		d.ws()
	}
}

// plainKey: a key json.Unmarshal matches against the shape's field names
// only by its exact bytes: none of them fold to it case-insensitively
// unless it is itself lower-case ASCII.
func plainKey(k []byte) bool {
	upper := false
	for _, c := range k {
		upper = upper || 'A' <= c && c <= 'Z'
	}
	if !upper {
		// The field names are lower-case: k folds to one only by being it.
		return true
	}
	for _, f := range [...]string{"method", "id", "params", "result", "error", "name", "uri", "ref", "type"} {
		if len(k) == len(f) && string(k) != f && asciiEqualFold(k, f) {
			return false
		}
	}
	// json.Unmarshal's folding also maps ſ (U+017F) to s and the Kelvin sign
	// to k: a key with non-ASCII bytes was already refused by plainString.
	return true
}

// asciiEqualFold is strings.EqualFold for ASCII k (plainString's).
func asciiEqualFold(k []byte, f string) bool {
	for i := range len(k) {
		a, b := k[i], f[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// plainString reads a string with neither escapes nor non-ASCII bytes:
// its bytes, pointing into d.b.
func (d *recDecoder) plainString() ([]byte, bool) {
	if d.b[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	for j := start; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			return d.b[start:j], true
		case c == '\\' || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

// str stores a plain string value into *s; null leaves *s as it is, as
// json.Unmarshal does.
func (d *recDecoder) str(s *string) bool {
	if d.null() {
		return true
	}
	v, ok := d.plainString()
	if ok {
		*s = string(v)
	}
	return ok
}

// method is str for a method name: MCP's own are constants, not copies.
func (d *recDecoder) method(s *string) bool {
	if d.null() {
		return true
	}
	v, ok := d.plainString()
	if ok {
		*s = internMethod(v)
	}
	return ok
}

var null = []byte("null")

func (d *recDecoder) null() bool {
	if bytes.HasPrefix(d.b[d.i:], null) {
		d.i += 4
		return true
	}
	return false
}

// raw is the value at d.i (null included), pointing into d.b: the
// caller copies it where json.RawMessage's UnmarshalJSON would have.
func (d *recDecoder) raw() json.RawMessage {
	start := d.i
	d.skip()
	return d.b[start:d.i:d.i]
}

// skip moves past the (valid) value at d.i.
func (d *recDecoder) skip() {
	depth := 0
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch c {
		case '"':
			// To the closing quote: the next quote not escaped, i.e.
			// not after an odd run of backslashes (the opening quote
			// bounds the run).
			d.i++
			for d.i < len(d.b) {
				k := bytes.IndexByte(d.b[d.i:], '"')
				if k < 0 {
					d.i = len(d.b)
					break
				}
				d.i += k
				n := 0
				for d.b[d.i-1-n] == '\\' {
					n++
				}
				if n%2 == 0 {
					break
				}
				d.i++
			}
			d.i++
			if depth == 0 {
				return
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				d.i++
				return
			}
		case ',', ':', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return
			}
		default:
			if depth == 0 {
				// a number or literal: up to the next delimiter
				for d.i < len(d.b) {
					switch d.b[d.i] {
					case ',', '}', ']', ' ', '\t', '\n', '\r':
						return
					}
					d.i++
				}
				return
			}
		}
		d.i++
	}
}
