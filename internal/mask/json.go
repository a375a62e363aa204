package mask

import (
	"fmt"
	"sync"
)

// This file holds MaskJSON: one recursive pass over a JSON document that
// validates it (as json.Valid does), applies field rules to members and
// detectors to strings, and writes output only from the first change on.
// Until then nothing is copied; a document with nothing to mask comes
// back as the same slice, without allocating.

const (
	// maxDepth bounds nesting, as encoding/json does.
	maxDepth = 10000
	// maxNest bounds JSON held in strings held in JSON…: deeper strings
	// are masked as text.
	maxNest = 8
	// poolKeep is the largest buffer a pooled state keeps.
	poolKeep = 1 << 20
)

// SyntaxError is MaskJSON's answer to a document that is not JSON. It
// says where and what, never quoting the document.
type SyntaxError struct {
	Offset int    // byte offset of the problem
	Msg    string // what was wrong
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("mask: invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// state is the scratch space of one masking call, pooled.
type state struct {
	dec   [maxNest + 1][]byte  // decoded strings, per nesting level
	escs  [maxNest + 1][]int32 // where their escapes are (appendUnescaped)
	short [maxNest + 1]bool    // all those escapes are \" \\ \n \r \t \b \f
	outs  [maxNest + 1][]byte  // output of strings that hold JSON, per level
	spans [maxNest + 1][]span  // what changed in the output of strings that hold JSON, per level
	mspan []span               // the masks of one string, for appendEditedRaw
	rep   []byte               // their bytes
	ms    []match
	tally tally
}

var statePool = sync.Pool{New: func() any { return new(state) }}

func trimSpans(s []span) []span {
	if cap(s) > 4096 {
		return nil
	}
	return s[:0]
}

func getState() *state { return statePool.Get().(*state) }

func putState(st *state) {
	trim := func(b []byte) []byte {
		if cap(b) > poolKeep {
			return nil
		}
		return b[:0]
	}
	for i := range st.dec {
		st.dec[i] = trim(st.dec[i])
		st.outs[i] = trim(st.outs[i])
		st.spans[i] = trimSpans(st.spans[i])
		if cap(st.escs[i]) > 1<<16 {
			st.escs[i] = nil
		}
		st.escs[i] = st.escs[i][:0]
	}
	st.mspan = trimSpans(st.mspan)
	st.rep = trim(st.rep)
	if cap(st.ms) > 4096 {
		st.ms = nil
	}
	st.ms = st.ms[:0]
	st.tally = st.tally[:0]
	statePool.Put(st)
}

// walker masks one JSON text: the document, or a string's JSON content.
type walker struct {
	p     *Profile
	st    *state
	src   []byte
	i     int
	out   []byte // output so far, valid when dirty
	dirty bool
	last  int // src[last:] is not yet in out
	edS   int // where in src the change being written started
	edOut int // where in out it started
	level int // 0 for the document, n for JSON in a string at level n-1
	depth int
	scan  bool // detectors or patterns are on
	rules bool // key or path rules are on
	card  bool // the value is a member's whose name says card/PAN (cardName)

	errOff int
	errMsg string
}

// MaskJSON masks one JSON document (a JSON-RPC message or batch). Strings
// (member names too) are decoded, scanned by the profile's detectors and
// re-encoded when something is masked; integers that are card numbers
// become a string mask; members named by a key rule (non-empty strings and
// numbers) or a path rule (any value) become "[MASKED:field:<name>]"; a
// string whose content is itself JSON is masked as JSON and encoded back
// into the string. Field rules do not touch the "jsonrpc", "id" and
// "method" of a message, so the output stays a valid JSON-RPC answer to
// the same request.
//
// When nothing is masked, MaskJSON returns doc itself and nil Counts, and
// does not allocate; otherwise out and counts are new, the caller's alone
// (nothing in the package keeps or reuses them). A doc that is not JSON is an error (*SyntaxError):
// the caller must not pass it on unmasked.
func (p *Profile) MaskJSON(doc []byte) (out []byte, counts Counts, err error) {
	st := getState()
	defer putState(st)
	w := walker{p: p, st: st, src: doc, scan: p.det != 0 || len(p.patterns) > 0,
		rules: !p.keys.empty() || len(p.paths) > 0}
	if !w.document() {
		return nil, nil, &SyntaxError{Offset: w.errOff, Msg: w.errMsg}
	}
	if !w.dirty {
		return doc, nil, nil
	}
	return append(w.out, doc[w.last:]...), st.tally.counts(), nil
}

func (w *walker) fail(off int, msg string) bool {
	if w.errMsg == "" {
		w.errOff, w.errMsg = off, msg
	}
	return false
}

func (w *walker) ws() {
	s := w.src
	for w.i < len(s) {
		switch s[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// document masks the whole of w.src: one value, each element of a
// top-level array being a message of its own.
func (w *walker) document() bool {
	w.ws()
	if w.i >= len(w.src) {
		return w.fail(w.i, "no JSON value")
	}
	var ok bool
	if w.p.Off() {
		ok = w.skip()
	} else {
		ok = w.value(allPaths(len(w.p.paths)), 0, true)
	}
	if !ok {
		return false
	}
	w.ws()
	if w.i != len(w.src) {
		return w.fail(w.i, "data after the JSON value")
	}
	return true
}

// flushTo starts (or continues) the output up to src[:pos].
func (w *walker) flushTo(pos int) {
	if !w.dirty {
		w.dirty = true
		if w.level == 0 {
			w.out = make([]byte, 0, len(w.src)+64)
		} else {
			w.out = w.st.outs[w.level][:0]
		}
	}
	w.out = append(w.out, w.src[w.last:pos]...)
	w.edS, w.edOut = pos, len(w.out)
}

// edited ends the change begun by flushTo: src[edS:end] became what was
// written to out since. JSON held in a string (level > 0) keeps a list
// of its changes, for the string to be written back by copying what did
// not change (appendEditedRaw).
func (w *walker) edited(end int) {
	w.last = end
	if w.level > 0 {
		w.st.spans[w.level] = append(w.st.spans[w.level], span{w.edS, end, w.edOut, len(w.out)})
	}
}

// value masks the value at w.i. live holds the path rules still matching
// at path depth pd; msg is set for a JSON-RPC message object.
func (w *walker) value(live uint64, pd int, msg bool) bool {
	if w.i >= len(w.src) {
		return w.fail(w.i, "expected a value")
	}
	switch c := w.src[w.i]; c {
	case '{':
		return w.object(live, pd, msg)
	case '[':
		return w.array(live, pd)
	case '"':
		return w.stringValue(live, pd)
	case 't':
		return w.literal("true")
	case 'f':
		return w.literal("false")
	case 'n':
		return w.literal("null")
	default:
		if c == '-' || isDigit(c) {
			return w.number(w.card)
		}
		return w.fail(w.i, "expected a value")
	}
}

func (w *walker) colon() bool {
	w.ws()
	if w.i >= len(w.src) || w.src[w.i] != ':' {
		return w.fail(w.i, "expected ':' after a member name")
	}
	w.i++
	w.ws()
	return true
}

// envelope reports whether a message member is one masking leaves alone.
func envelope(key []byte) bool {
	switch string(key) {
	case "jsonrpc", "id", "method":
		return true
	}
	return false
}

func (w *walker) object(live uint64, pd int, msg bool) bool {
	if w.depth++; w.depth > maxDepth {
		return w.fail(w.i, "nested too deeply")
	}
	w.i++
	w.ws()
	if w.i < len(w.src) && w.src[w.i] == '}' {
		w.i++
		w.depth--
		return true
	}
	for {
		if w.i >= len(w.src) || w.src[w.i] != '"' {
			return w.fail(w.i, "expected a member name")
		}
		ks := w.i
		raw, esc, ok := w.scanString()
		if !ok {
			return false
		}
		ke := w.i
		key := raw
		if esc {
			w.decode(raw)
			key = w.st.dec[w.level]
		}
		if !w.colon() {
			return false
		}
		switch {
		case msg && envelope(key):
			// No field rules for "jsonrpc", "id" and "method" of a
			// message, and no paths: the response must still answer
			// its request. Detectors still run.
			w.textString(ks, ke, key, esc)
			ok = w.value(0, pd+1, false)
		default:
			ok = w.member(ks, ke, key, esc, live, pd)
		}
		if !ok {
			return false
		}
		w.ws()
		if w.i >= len(w.src) {
			return w.fail(w.i, "unterminated object")
		}
		switch w.src[w.i] {
		case ',':
			w.i++
			w.ws()
		case '}':
			w.i++
			w.depth--
			return true
		default:
			return w.fail(w.i, "expected ',' or '}' after an object member")
		}
	}
}

// member masks one member's value (at w.i) and, if a detector finds a
// secret in it, its name (src[ks:ke], decoded: key).
func (w *walker) member(ks, ke int, key []byte, esc bool, live uint64, pd int) bool {
	if w.i >= len(w.src) {
		return w.fail(w.i, "expected a value")
	}
	var child uint64
	var typ string
	if live != 0 {
		child, typ = stepName(w.p.paths, live, pd, key)
	}
	pathTyp := typ != ""
	c := w.src[w.i]
	card := (isDigit(c) || c == '[') && w.p.on(dCard) && cardName(key)
	if typ == "" && (c == '"' || c == '-' || isDigit(c)) {
		// The value's shape is asked first: it is one byte for most
		// values, where the name is a pass over the name.
		if w.p.on(dAWSSecretKey) && c == '"' && w.awsSecretValue() && awsSecretName(key, nil) {
			typ = "aws_secret_key"
		} else if t, ok := w.p.keys.lookup(key); ok {
			typ = t
		}
	}
	// The name is scanned after the rules have read it: masking it reuses
	// the decode buffer it may sit in.
	w.textString(ks, ke, key, esc)
	if typ != "" {
		return w.maskWhole(typ, pathTyp)
	}
	return w.memberValue(child, pd, card)
}

// awsSecretValue reports whether the string at w.i holds exactly 40
// base64 characters, the shape of an AWS secret access key.
func (w *walker) awsSecretValue() bool {
	s, i := w.src, w.i+1
	return i+41 <= len(s) && s[i+40] == '"' && run(s, i, cB64Std) == i+40
}

// maskWhole replaces the value at w.i with the mask of typ. A value that
// already is a mask stays; so do empty strings, null and booleans unless
// all is set (for path rules, which mask whatever is there).
func (w *walker) maskWhole(typ string, all bool) bool {
	start := w.i
	if !w.skip() {
		return false
	}
	v := w.src[start:w.i]
	if (v[0] == '"' && w.p.isMask(v[1:len(v)-1])) || (w.p.numZero && string(v) == "0") ||
		(!all && (string(v) == `""` || string(v) == "null" || string(v) == "true" || string(v) == "false")) {
		return true
	}
	w.flushTo(start)
	w.out = w.appendNumberOrMask(w.out, v, typ)
	w.edited(w.i)
	w.st.tally = append(w.st.tally, typ)
	return true
}

// array masks an array. At the top of the document each element is a
// message of a batch, where paths start again.
func (w *walker) array(live uint64, pd int) bool {
	if w.depth++; w.depth > maxDepth {
		return w.fail(w.i, "nested too deeply")
	}
	batch := w.level == 0 && w.depth == 1
	w.i++
	w.ws()
	if w.i < len(w.src) && w.src[w.i] == ']' {
		w.i++
		w.depth--
		return true
	}
	for idx := 0; ; idx++ {
		var ok bool
		if batch {
			ok = w.value(allPaths(len(w.p.paths)), 0, true)
		} else {
			var child uint64
			var typ string
			if live != 0 {
				child, typ = stepIndex(w.p.paths, live, pd, idx)
			}
			if typ != "" {
				ok = w.maskWhole(typ, true)
			} else {
				ok = w.value(child, pd+1, false)
			}
		}
		if !ok {
			return false
		}
		w.ws()
		if w.i >= len(w.src) {
			return w.fail(w.i, "unterminated array")
		}
		switch w.src[w.i] {
		case ',':
			w.i++
			w.ws()
		case ']':
			w.i++
			w.depth--
			return true
		default:
			return w.fail(w.i, "expected ',' or ']' after an array element")
		}
	}
}
