package mcp

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/airlock-mcp/airlock/internal/jsontext"
)

// This file holds a single-pass validating JSON scanner for one POST body.
// It is hand-written rather than encoding/json because a gateway must read
// a body exactly as the server behind it will, and encoding/json (v1) does
// not: it takes the last of two duplicate member names without a word,
// matches member names to struct fields case-insensitively (so "Method"
// fills Method), and silently replaces invalid UTF-8 and unpaired
// surrogates with U+FFFD. Each of those lets a client show the gateway one
// call and the server another. encoding/json/v2, which rejects duplicates,
// is still behind GOEXPERIMENT=jsonv2 in Go 1.26.
//
// The scanner therefore rejects, anywhere in the body:
//   - two member names of one object that are equal, or equal under Unicode
//     case folding (the matching rule of encoding/json v1 struct fields),
//     so neither "last wins" nor "first wins" nor case-insensitive decoding
//     can see a value the gateway did not;
//   - invalid UTF-8 and \u escapes that are unpaired UTF-16 surrogates;
//   - nesting deeper than maxDepth.
//
// body.go records, during the same pass, what policy needs (see there).

// maxDepth bounds object/array nesting; deeper bodies are rejected.
const maxDepth = 1000

// foldSetThreshold is the member count after which an object's names are
// checked for duplicates through a map instead of pairwise.
const foldSetThreshold = 16

// errKind classifies scan failures (the fuzz tests compare kinds with
// encoding/json's verdict).
type errKind uint8

const (
	kindSyntax    errKind = iota + 1 // not JSON
	kindDuplicate                    // duplicate member names
	kindEncoding                     // invalid UTF-8 or unpaired surrogate
	kindDepth                        // nested too deep
	kindBatch                        // batch longer than maxBatch (valid JSON, refused)
)

// scanError is a scan failure at a byte offset.
type scanError struct {
	kind errKind
	off  int
	msg  string
}

// keyRef locates one member name: s.b[s:e], or s.esc[s:e] for a name that
// had escapes and was decoded.
type keyRef struct {
	s, e    int32
	decoded bool
}

// scanner holds no pointers to its caller's frame, so it stays on the stack.
type scanner struct {
	b     []byte
	i     int
	depth int
	// Names of the members of every open object, innermost last: the first
	// len(keyArr) in keyArr, the rest in more.
	nkeys  int
	keyArr [32]keyRef
	more   []keyRef
	esc    []byte     // decoded names that had escapes
	err    *scanError // first syntax-level failure; ends the scan
	sem    string     // first structural problem (not a syntax error); scan goes on
}

func (s *scanner) init(b []byte) { s.b = b }

func (s *scanner) key(i int) []byte {
	var k keyRef
	if i < len(s.keyArr) {
		k = s.keyArr[i]
	} else {
		k = s.more[i-len(s.keyArr)]
	}
	if k.decoded {
		return s.esc[k.s:k.e]
	}
	return s.b[k.s:k.e]
}

func (s *scanner) pushKey(k keyRef) {
	if s.nkeys < len(s.keyArr) {
		s.keyArr[s.nkeys] = k
	} else {
		s.more = append(s.more[:s.nkeys-len(s.keyArr)], k)
	}
	s.nkeys++
}

func (s *scanner) fail(k errKind, off int, format string, args ...any) bool {
	if s.err == nil {
		s.err = &scanError{kind: k, off: off, msg: fmt.Sprintf(format, args...)}
	}
	return false
}

// unexpected reports the byte at s.i (or the end of input) while looking for what.
func (s *scanner) unexpected(what string) bool {
	if s.i >= len(s.b) {
		return s.fail(kindSyntax, s.i, "unexpected end of input, expected %s", what)
	}
	return s.fail(kindSyntax, s.i, "unexpected %s, expected %s", describeByte(s.b[s.i]), what)
}

func (s *scanner) structural(format string, args ...any) {
	if s.sem == "" {
		s.sem = fmt.Sprintf(format, args...)
	}
}

func describeByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("character %q", rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func (s *scanner) skipWS() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans one JSON value starting at s.i (no leading whitespace).
func (s *scanner) value() bool {
	if s.i >= len(s.b) {
		return s.unexpected("a value")
	}
	switch c := s.b[s.i]; c {
	case '{':
		return s.object(levelAny, nil)
	case '[':
		return s.array()
	case '"':
		_, _, ok := s.str()
		return ok
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || isDigit(c) {
			return s.number()
		}
		return s.unexpected("the beginning of a value")
	}
}

func (s *scanner) enter() bool {
	s.depth++
	if s.depth > maxDepth {
		return s.fail(kindDepth, s.i, "objects and arrays nest deeper than %d levels", maxDepth)
	}
	s.i++
	return true
}

// object scans an object at s.i. m receives the members of a message
// (levelMessage) or of its params (levelParams, levelMeta, levelRef); it is
// nil at levelAny.
func (s *scanner) object(lv level, m *rawMsg) bool {
	if !s.enter() {
		return false
	}
	base := s.nkeys
	var set map[string]struct{}
	s.skipWS()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		s.skipWS()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.unexpected("a string member name")
		}
		keyOff := s.i
		key, esc, ok := s.str()
		if !ok {
			return false
		}
		ref := keyRef{s: int32(keyOff + 1), e: int32(keyOff + 1 + len(key))}
		if esc {
			start := len(s.esc)
			s.esc = jsontext.AppendUnescaped(s.esc, key)
			ref = keyRef{s: int32(start), e: int32(len(s.esc)), decoded: true}
			key = s.esc[start:]
		}
		if !s.addKey(base, &set, key, keyOff) {
			return false
		}
		s.pushKey(ref)
		s.skipWS()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.unexpected("':' after a member name")
		}
		s.i++
		s.skipWS()
		if !s.member(lv, m, key, keyOff) {
			return false
		}
		s.skipWS()
		if s.i < len(s.b) {
			switch s.b[s.i] {
			case ',':
				s.i++
				continue
			case '}':
				s.i++
				s.nkeys = base
				s.depth--
				return true
			}
		}
		return s.unexpected("',' or '}' after an object member")
	}
}

// addKey fails if key repeats, up to case, a member name of the innermost
// open object (whose names are keys base..nkeys-1); the caller then pushes it.
func (s *scanner) addKey(base int, set *map[string]struct{}, key []byte, off int) bool {
	n := s.nkeys - base
	if *set == nil && n < foldSetThreshold {
		for i := base; i < s.nkeys; i++ {
			if k := s.key(i); bytes.EqualFold(k, key) {
				return s.duplicate(k, key, off)
			}
		}
		return true
	}
	if *set == nil {
		*set = make(map[string]struct{}, 2*n)
		for i := base; i < s.nkeys; i++ {
			(*set)[string(appendFolded(nil, s.key(i)))] = struct{}{}
		}
	}
	var arr [64]byte
	f := appendFolded(arr[:0], key)
	if _, dup := (*set)[string(f)]; dup {
		for i := base; i < s.nkeys; i++ {
			if k := s.key(i); bytes.EqualFold(k, key) {
				return s.duplicate(k, key, off)
			}
		}
	}
	(*set)[string(f)] = struct{}{}
	return true
}

func (s *scanner) duplicate(first, again []byte, off int) bool {
	if bytes.Equal(first, again) {
		return s.fail(kindDuplicate, off, "duplicate member name %s", quoteClip(string(again)))
	}
	return s.fail(kindDuplicate, off, "member names %s and %s differ only in letter case",
		quoteClip(string(first)), quoteClip(string(again)))
}

func (s *scanner) array() bool {
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
		if !s.value() {
			return false
		}
		if more, ok := s.nextElement("an array element"); !more {
			return ok
		}
	}
}

// str scans a string at s.i (which is '"') and returns its raw content
// (without quotes) and whether it holds escapes.
func (s *scanner) str() (raw []byte, esc bool, ok bool) {
	b := s.b
	start := s.i
	i := start + 1
	for i < len(b) {
		c := b[i]
		if plainByte[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			s.i = i + 1
			return b[start+1 : i], esc, true
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				s.i = len(b)
				return nil, false, s.unexpected("an escape sequence")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				r, ok := jsontext.Hex4(b, i+2)
				if !ok {
					return nil, false, s.fail(kindSyntax, i, "invalid \\u escape in string")
				}
				if r >= 0xD800 && r <= 0xDFFF {
					if r <= 0xDBFF {
						if r2, ok := jsontext.Hex4(b, i+8); ok && b[i+6] == '\\' && b[i+7] == 'u' && r2 >= 0xDC00 && r2 <= 0xDFFF {
							i += 12
							continue
						}
					}
					return nil, false, s.fail(kindEncoding, i, "\\u escape is an unpaired UTF-16 surrogate")
				}
				i += 6
			default:
				return nil, false, s.fail(kindSyntax, i, "invalid escape \\%s in string", describeByte(b[i+1]))
			}
		case c < 0x20:
			return nil, false, s.fail(kindSyntax, i, "control %s in string (must be escaped)", describeByte(c))
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return nil, false, s.fail(kindEncoding, i, "invalid UTF-8 in string")
			}
			i += n
		}
	}
	s.i = len(b)
	return nil, false, s.unexpected("the closing '\"' of a string")
}

// plainByte marks the bytes a string may hold as they are: printable
// ASCII other than '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func (s *scanner) number() bool {
	b, i := s.b, s.i
	if b[i] == '-' {
		i++
	}
	digits := func() bool {
		if i >= len(b) || !isDigit(b[i]) {
			s.i = i
			return s.unexpected("a digit")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		return true
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if !digits() {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	s.i = i
	return true
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	for k := 0; k < len(lit); k++ {
		if s.i+k >= len(s.b) || s.b[s.i+k] != lit[k] {
			s.i += k
			return s.unexpected(fmt.Sprintf("%q", lit))
		}
	}
	return false // not reached
}

// jsonType names the type of the JSON value starting with c.
func jsonType(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// nextElement reads what follows an array element: ',' (more is true) or
// ']' (the array is done, ok true); anything else is an error (ok false).
func (s *scanner) nextElement(what string) (more, ok bool) {
	s.skipWS()
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case ',':
			s.i++
			return true, true
		case ']':
			s.i++
			s.depth--
			return false, true
		}
	}
	return false, s.unexpected("',' or ']' after " + what)
}
