package mask

// The JSON walker's values other than objects and arrays: validation-only
// skipping, literals, numbers (card numbers among them) and strings (text,
// or JSON held in a string).

// skip validates the value at w.i without masking anything in it.
func (w *walker) skip() bool {
	if w.i >= len(w.src) {
		return w.fail(w.i, "expected a value")
	}
	switch c := w.src[w.i]; c {
	case '{', '[':
		if w.depth++; w.depth > maxDepth {
			return w.fail(w.i, "nested too deeply")
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		w.i++
		w.ws()
		if w.i < len(w.src) && w.src[w.i] == closer {
			w.i++
			w.depth--
			return true
		}
		for {
			if c == '{' {
				if w.i >= len(w.src) || w.src[w.i] != '"' {
					return w.fail(w.i, "expected a member name")
				}
				if _, _, ok := w.scanString(); !ok {
					return false
				}
				if !w.colon() {
					return false
				}
			}
			if !w.skip() {
				return false
			}
			w.ws()
			if w.i >= len(w.src) {
				return w.fail(w.i, "unterminated object or array")
			}
			switch w.src[w.i] {
			case ',':
				w.i++
				w.ws()
			case closer:
				w.i++
				w.depth--
				return true
			default:
				return w.fail(w.i, "expected ',' or the end of an object or array")
			}
		}
	case '"':
		_, _, ok := w.scanString()
		return ok
	case 't':
		return w.literal("true")
	case 'f':
		return w.literal("false")
	case 'n':
		return w.literal("null")
	default:
		if c == '-' || isDigit(c) {
			return w.number(false)
		}
		return w.fail(w.i, "expected a value")
	}
}

func (w *walker) literal(lit string) bool {
	if !hasPrefix(w.src, w.i, lit) {
		return w.fail(w.i, "invalid literal")
	}
	w.i += len(lit)
	return true
}

// memberValue masks a member's value; card says the member's name is a
// card/PAN name, so that a number in it (or in an array in it) is looked
// at as a card number. Objects below reset it member by member.
func (w *walker) memberValue(child uint64, pd int, card bool) bool {
	prev := w.card
	w.card = card
	ok := w.value(child, pd+1, false)
	w.card = prev
	return ok
}

// number scans a number. With detect (the member's name says card/PAN:
// see cardName) an integer that is a payment card number is masked: as
// the string "[MASKED:card_number]", or as 0 when the profile's
// number_mask is "zero". Any other number — ids, IMEIs, timestamps, even
// Luhn-valid ones with a card prefix — keeps its bytes: a number's name,
// not its digits, says it is a card.
func (w *walker) number(detect bool) bool {
	s, i := w.src, w.i
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && isDigit(s[i]):
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return w.fail(i, "invalid number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return w.fail(i, "invalid number: no digit after '.'")
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return w.fail(i, "invalid number: no digit in the exponent")
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	start := w.i
	w.i = i
	if detect && i-start >= 13 && i-start <= 19 && w.p.on(dCard) && s[start] != '-' {
		var d [19]byte
		for k, c := range s[start:i] {
			if !isDigit(c) {
				return true
			}
			d[k] = c - '0'
		}
		if cardNumber(d[:i-start]) {
			w.flushTo(start)
			w.out = w.appendNumberOrMask(w.out, s[start:i], "card_number")
			w.edited(i)
			w.st.tally = append(w.st.tally, "card_number")
		}
	}
	return true
}

// appendNumberOrMask appends what the masked value v becomes: the mask of
// typ as a JSON string, except for a number when the profile keeps
// numbers numbers (number_mask: zero), which becomes 0.
func (w *walker) appendNumberOrMask(dst, v []byte, typ string) []byte {
	if w.p.numZero && (v[0] == '-' || isDigit(v[0])) {
		return append(dst, '0')
	}
	dst = append(dst, '"')
	dst = appendMask(dst, typ)
	return append(dst, '"')
}

// stringValue masks the string value at w.i: as JSON when it holds a JSON
// object or array, else as text.
func (w *walker) stringValue(live uint64, pd int) bool {
	start := w.i
	raw, esc, ok := w.scanString()
	if !ok {
		return false
	}
	if !w.scan && !w.rules {
		return true
	}
	text := raw
	if esc {
		w.decode(raw)
		text = w.st.dec[w.level]
	}
	if w.level < maxNest && looksJSON(text) {
		if changed, inner, ok := w.nested(text, live, pd); ok {
			if changed {
				w.flushTo(start)
				ok = false
				if spans := w.st.spans[w.level+1]; copyRaw && spansLay(len(text), len(inner), spans) {
					w.out, ok = w.appendEditedRaw(w.out, raw, esc, inner, spans)
				}
				if !ok {
					w.out = appendQuoted(w.out, inner)
				}
				w.edited(w.i)
			}
			return true
		}
	}
	w.textString(start, w.i, text, esc)
	return true
}

// textString masks what the detectors find in the string src[start:end]
// whose value is text (decoded when esc).
func (w *walker) textString(start, end int, text []byte, esc bool) {
	if !w.scan {
		return
	}
	ms := w.p.scanText(text, w.st.ms[:0], false)
	w.st.ms = ms[:0]
	if len(ms) == 0 {
		return
	}
	w.flushTo(start)
	if esc {
		w.out = w.appendMaskedRaw(w.out, w.src[start+1:end-1], text, ms)
	} else {
		w.out = append(w.out, '"')
		w.out = applyMatches(w.out, text, ms)
		w.out = append(w.out, '"')
	}
	w.edited(end)
	for _, m := range ms {
		w.st.tally = append(w.st.tally, m.typ)
	}
}

// looksJSON reports whether text, trimmed, starts and ends like an
// object, an array or a string (a JSON-encoded string can hide a secret
// behind escapes).
func looksJSON(text []byte) bool {
	i, j := 0, len(text)
	for i < j && isSpace(text[i]) {
		i++
	}
	for j > i && isSpace(text[j-1]) {
		j--
	}
	return j-i >= 2 && ((text[i] == '{' && text[j-1] == '}') || (text[i] == '[' && text[j-1] == ']') || (text[i] == '"' && text[j-1] == '"'))
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// nested masks text, a string's content, as a JSON document one level
// down, with the path rules still live there. ok is false when text is not
// JSON; whatever was counted is then taken back.
func (w *walker) nested(text []byte, live uint64, pd int) (changed bool, out []byte, ok bool) {
	mark := len(w.st.tally)
	nw := walker{p: w.p, st: w.st, src: text, level: w.level + 1, depth: w.depth, scan: w.scan, rules: w.rules}
	w.st.spans[nw.level] = w.st.spans[nw.level][:0]
	nw.ws()
	if !nw.value(live, pd, false) {
		w.st.tally = w.st.tally[:mark]
		return false, nil, false
	}
	if nw.ws(); nw.i != len(text) {
		w.st.tally = w.st.tally[:mark]
		return false, nil, false
	}
	if !nw.dirty {
		return false, nil, true
	}
	out = append(nw.out, text[nw.last:]...)
	w.st.outs[nw.level] = out[:0]
	return true, out, true
}

// copyRaw lets a masked string be written back from its raw bytes
// (appendEditedRaw). Tests turn it off to compare with the output of
// re-encoding the masked value, which it must match byte for byte.
var copyRaw = true

// appendMaskedRaw writes the string raw (escaped; decoded: text) back
// with the matches ms masked: from raw where it can (appendEditedRaw),
// else by re-encoding the masked text.
func (w *walker) appendMaskedRaw(dst, raw, text []byte, ms []match) []byte {
	spans, rep := w.st.mspan[:0], w.st.rep[:0]
	for _, m := range ms {
		rs := len(rep)
		rep = appendMask(rep, m.typ)
		spans = append(spans, span{m.s, m.e, rs, len(rep)})
	}
	w.st.mspan, w.st.rep = spans[:0], rep[:0]
	if copyRaw {
		if out, ok := w.appendEditedRaw(dst, raw, true, rep, spans); ok {
			return out
		}
	}
	return appendMaskedQuoted(dst, text, ms)
}

// decode decodes the string raw (holding escapes) into the level's
// buffer, noting where its escapes are, for appendEditedRaw.
func (w *walker) decode(raw []byte) {
	st := w.st
	st.dec[w.level], st.escs[w.level], st.short[w.level] = appendUnescaped(st.dec[w.level][:0], raw, st.escs[w.level][:0])
}

// appendEditedRaw is appendEditedRaw for the string raw, which esc says
// holds escapes: then it is the string last decoded at the walker's level.
func (w *walker) appendEditedRaw(dst, raw []byte, esc bool, rep []byte, spans []span) ([]byte, bool) {
	if !esc {
		return appendEditedRaw(dst, raw, rep, spans, nil, true)
	}
	return appendEditedRaw(dst, raw, rep, spans, w.st.escs[w.level], w.st.short[w.level])
}

// spansLay reports whether spans account for all of out, the masked
// output of a text of n bytes: each unchanged run of text as long in out
// as in text, in order, the replacements between them. A change written
// without its span (a new masking path that sets w.last itself instead
// of calling edited) then falls back to re-encoding the whole output
// rather than being left out.
func spansLay(n, out int, spans []span) bool {
	e, re := 0, 0
	for _, sp := range spans {
		if sp.s < e || sp.e < sp.s || sp.rs-re != sp.s-e || sp.re < sp.rs {
			return false
		}
		e, re = sp.e, sp.re
	}
	return out-re == n-e
}
