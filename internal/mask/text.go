package mask

import (
	"bytes"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/airlock-mcp/airlock/internal/jsontext"
)

// This file holds the text scanner every detector runs in: one pass over
// the bytes, a table lookup per byte, and a detector only where a byte of
// the profile's trigger set occurs (see triggers). Each detector confirms
// its candidate by hand (prefixes, lengths, character classes, checksums)
// without regular expressions.

// match is one span to mask: s[s:e] becomes [MASKED:typ].
type match struct {
	s, e int
	typ  string
}

// Trigger kinds: what a byte may start (or anchor) in text.
const (
	trNone    uint8 = iota
	trA             // 'A': AKIA…, ASIA…, AIza…
	trUnder         // '_': ghp_…, github_pat_…, sk_live_…, whsec_…, hf_…, npm_…, dop_v1_…
	trDash          // '-': -----BEGIN, xoxb-…, sk-…, pypi-…
	trJ             // 'J': eyJ… (JWT)
	trColon         // ':': scheme://user:pass@, https://hooks.slack.com/…, NAME: value
	trEq            // '=': NAME=value
	trAt            // '@': e-mail
	trDigit         // '0'-'9': card numbers, phone numbers
	trPlus          // '+': +country phone numbers
	trParen         // '(': (ddd) ddd-dddd
	trB             // 'B', 'b': Bearer …, Basic …
	trBracket       // '[': an existing mask, skipped whole
)

// buildTriggers computes the trigger table of a profile from its
// detectors and rules.
func buildTriggers(p *Profile) (t [256]uint8) {
	set := func(k uint8, cs ...byte) {
		for _, c := range cs {
			t[c] = k
		}
	}
	if p.on(dAWSAccessKey | dGoogle) {
		set(trA, 'A')
	}
	if p.on(dGitHub | dStripe | dHuggingFace | dNPM | dDigitalOcean) {
		set(trUnder, '_')
	}
	if p.on(dSlack|dOpenAI|dAnthropic|dPrivateKey|dPyPI) || (p.on(dAssignment) && !p.keys.empty()) {
		set(trDash, '-') // also --password value, mysql -pSECRET
	}
	if p.on(dJWT) {
		set(trJ, 'J')
	}
	assign := p.on(dAWSSecretKey) || (p.on(dAssignment) && !p.keys.empty())
	if assign || p.on(dURLPassword|dSlackWebhook) {
		set(trColon, ':')
	}
	if assign {
		set(trEq, '=')
	}
	if p.on(dEmail) {
		set(trAt, '@')
	}
	if p.on(dCard | dPhone) {
		set(trDigit, '0', '1', '2', '3', '4', '5', '6', '7', '8', '9')
	}
	if p.on(dPhone) {
		set(trPlus, '+')
		set(trParen, '(')
	}
	if p.on(dBearer | dBasicAuth) {
		set(trB, 'B', 'b')
	}
	if p.det != 0 || len(p.patterns) > 0 {
		set(trBracket, '[')
	}
	return t
}

// Character classes.
const (
	cDigit = 1 << iota
	cUpper
	cLower
	cWord   // [A-Za-z0-9_]
	cB64URL // [A-Za-z0-9_-]
	cB64Std // [A-Za-z0-9+/]
	cTokPre // bytes that, before a token, mean it is not a token start: [A-Za-z0-9_+/]
	cName   // [A-Za-z0-9_.-]: names in NAME=value
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		var k uint8
		switch {
		case '0' <= b && b <= '9':
			k = cDigit | cWord | cB64URL | cB64Std | cTokPre | cName
		case 'A' <= b && b <= 'Z':
			k = cUpper | cWord | cB64URL | cB64Std | cTokPre | cName
		case 'a' <= b && b <= 'z':
			k = cLower | cWord | cB64URL | cB64Std | cTokPre | cName
		case b == '_':
			k = cWord | cB64URL | cTokPre | cName
		case b == '-':
			k = cB64URL | cName
		case b == '+' || b == '/':
			k = cB64Std | cTokPre
		case b == '.':
			k = cName
		}
		t[c] = k
	}
	return t
}()

func is(c byte, k uint8) bool { return class[c]&k != 0 }

// run returns the end of the run of bytes of class k starting at i.
func run(s []byte, i int, k uint8) int {
	for i < len(s) && class[s[i]]&k != 0 {
		i++
	}
	return i
}

// runMax is run, looking at no more than n bytes.
func runMax(s []byte, i int, k uint8, n int) int {
	lim := min(len(s), i+n)
	for i < lim && class[s[i]]&k != 0 {
		i++
	}
	return i
}

// startOK reports whether a token may start at i: not before floor (the
// end of the previous match) and not inside a longer token.
func startOK(s []byte, i, floor int) bool {
	return i >= floor && (i == 0 || class[s[i-1]]&cTokPre == 0)
}

// endOK reports whether a token ending at e is not followed by more of
// the same token.
func endOK(s []byte, e int, k uint8) bool { return e >= len(s) || class[s[e]]&k == 0 }

func hasPrefix(s []byte, i int, p string) bool {
	return i >= 0 && len(s)-i >= len(p) && string(s[i:i+len(p)]) == p
}

// hasPrefixFold is hasPrefix ignoring ASCII case; p is lower case.
func hasPrefixFold(s []byte, i int, p string) bool {
	if i < 0 || len(s)-i < len(p) {
		return false
	}
	for j := 0; j < len(p); j++ {
		c := s[i+j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[j] {
			return false
		}
	}
	return true
}

// scanText appends to ms the spans of s the profile masks, in order and
// not overlapping. noAssign turns the NAME=value detector off (it is on
// for the top-level scan only, so a value is scanned at most once more).
func (p *Profile) scanText(s []byte, ms []match, noAssign bool) []match {
	trig := &p.trig
	floor, i, n := 0, 0, len(s)
	first := len(ms)
	for {
		for i+4 <= n {
			b := s[i : i+4 : i+4]
			if trig[b[0]]|trig[b[1]]|trig[b[2]]|trig[b[3]] != 0 {
				break
			}
			i += 4
		}
		for i < n && trig[s[i]] == 0 {
			i++
		}
		if i >= n {
			break
		}
		if quickReject(s, i, trig[s[i]]) {
			i++
			continue
		}
		before := len(ms)
		var next int
		switch trig[s[i]] {
		case trA:
			ms, next = p.fireA(s, i, floor, ms)
		case trUnder:
			if underMay(s, i) {
				ms, next = p.fireUnder(s, i, floor, ms)
			}
		case trDash:
			if dashMay(s, i) {
				ms, next = p.fireDash(s, i, floor, ms)
			}
		case trJ:
			ms, next = p.fireJ(s, i, floor, ms)
		case trColon:
			if hasPrefix(s, i+1, "//") {
				if p.on(dSlackWebhook) {
					var ok bool
					if ms, next, ok = p.slackWebhook(s, i, floor, ms); ok {
						break
					}
				}
				if p.on(dURLPassword) {
					ms, next = p.urlPassword(s, i, floor, ms)
					break
				}
			}
			ms, next = p.fireAssign(s, i, floor, ms, noAssign)
		case trEq:
			ms, next = p.fireAssign(s, i, floor, ms, noAssign)
		case trAt:
			ms, next = email(s, i, floor, ms)
		case trDigit:
			ms, next = p.fireDigit(s, i, floor, ms)
		case trPlus:
			ms, next = phonePlus(s, i, floor, ms)
		case trParen:
			ms, next = phoneParen(s, i, floor, ms)
		case trB:
			ms, next = p.fireB(s, i, floor, ms)
		case trBracket:
			next = p.skipMask(s, i)
		}
		if len(ms) > before {
			floor = ms[len(ms)-1].e
			next = max(next, floor)
		}
		i = max(next, i+1)
	}
	if len(ms) > first && p.on(dAWSSecretKey) && p.on(dAWSAccessKey) {
		// Without an access key id among the matches there is nothing
		// to look near; most scans (a member name, a short value) find
		// nothing at all and skip the call.
		ms = p.awsNearKeyIDs(s, ms, first)
	}
	if len(p.patterns) > 0 {
		ms = p.scanPatterns(s, ms, first)
	}
	return ms
}

// awsNear is how far from an AWS access key id a secret access key is
// looked for: the next lines of a credentials file, CSV or table.
const awsNear = 200

// awsNearKeyIDs adds to ms[first:] the AWS secret access keys near the
// access key ids found in s: 40 characters of [A-Za-z0-9/+] standing
// alone, of mixed case and digits (so a git SHA, hex, never is), within
// awsNear bytes before or after the id.
//
// A run of [A-Za-z0-9/+] cannot hold a mask (masks hold '[', ':', ']'),
// so existing masks need no check; windows are scanned left to right
// from where the last one stopped, so each byte is looked at once.
func (p *Profile) awsNearKeyIDs(s []byte, ms []match, first int) []match {
	var add []match
	done := 0
	for _, id := range ms[first:] {
		if id.typ != "aws_access_key" {
			continue
		}
		i, hi := max(done, id.s-awsNear), min(len(s), id.e+awsNear)
		for i < hi {
			if !is(s[i], cB64Std) {
				i++
				continue
			}
			e := run(s, i, cB64Std)
			if e-i == 40 && (i == 0 || (!awsSecretNeighbour(s[i-1]) && s[i-1] != '.')) && (e == len(s) || !awsSecretNeighbour(s[e])) &&
				mixed(s[i:e]) {
				add = append(add, match{i, e, "aws_secret_key"})
			}
			i = e
		}
		done = max(done, i)
	}
	return mergeMatches(ms, first, add)
}

// mergeMatches merges add (sorted, not overlapping) into ms[first:]
// (likewise), leaving out those of add that overlap a match there.
func mergeMatches(ms []match, first int, add []match) []match {
	if len(add) == 0 {
		return ms
	}
	old := ms[first:]
	merged := make([]match, 0, len(old)+len(add))
	k := 0
	for _, a := range add {
		for k < len(old) && old[k].e <= a.s {
			merged = append(merged, old[k])
			k++
		}
		if k < len(old) && old[k].s < a.e {
			continue // overlaps old[k]
		}
		if n := len(merged); n > 0 && merged[n-1].e > a.s {
			continue
		}
		merged = append(merged, a)
	}
	merged = append(merged, old[k:]...)
	return append(ms[:first], merged...)
}

// awsSecretNeighbour reports whether c, next to a 40-character run, makes
// it part of something longer (a base64 blob, an identifier, a path).
func awsSecretNeighbour(c byte) bool {
	return is(c, cB64Std) || c == '_' || c == '-' || c == '='
}

// maskEnd returns the end of a mask this profile writes ("[MASKED:"
// + one of its types + "]") at s[i:], or -1. Only known types count, so
// text cannot shield a secret by wrapping it in "[MASKED:" … "]".
func (p *Profile) maskEnd(s []byte, i int) int {
	if !hasPrefix(s, i, maskPrefix) {
		return -1
	}
	j := i + len(maskPrefix)
	k := bytes.IndexByte(s[j:min(len(s), j+p.maxType+1)], ']')
	if k < 0 || !p.known[string(s[j:j+k])] {
		return -1
	}
	return j + k + 1
}

// quickReject reports, from the byte after a trigger, that no detector
// can start there: most triggers in prose are ordinary letters and end
// here, without a call.
func quickReject(s []byte, i int, t uint8) bool {
	if i+1 >= len(s) {
		return t != trDigit && t != trColon && t != trEq
	}
	c := s[i+1]
	switch t {
	case trA:
		return c != 'K' && c != 'S' && c != 'I'
	case trB:
		c |= 0x20
		return c != 'e' && c != 'a'
	case trJ:
		return i < 2 || s[i-1] != 'y'
	case trBracket:
		return c != 'M'
	}
	return false
}

// underMay reports whether fireUnder can find a token at the '_' s[i]:
// every token it knows has a lower-case prefix right before the '_'
// (ghp_, github_pat_, sk_, whsec_, hf_, npm_, dop_), unlike UPPER_CASE
// names. It is apart from quickReject, which must stay small enough to
// be inlined.
func underMay(s []byte, i int) bool { return i > 0 && class[s[i-1]]&cLower != 0 }

// dashMay reports whether fireDash can find something at the '-' s[i]:
// it looks at "--" (-----BEGIN, --name), -p and -u options, and at what
// ends right before the '-' (pypi, xox[abposr], xapp, sk). The dashes of
// dates, uuids and most kebab-case words have none of those around them.
func dashMay(s []byte, i int) bool {
	if i+1 < len(s) && (s[i+1] == '-' || s[i+1] == 'p' || s[i+1] == 'u') {
		return true
	}
	return i > 0 && dashPrev[s[i-1]]
}

var dashPrev = func() (t [256]bool) {
	for _, c := range []byte("iabposrk") {
		t[c] = true
	}
	return t
}()

// skipMask returns the end of a mask at i, or i+1.
func (p *Profile) skipMask(s []byte, i int) int {
	if e := p.maskEnd(s, i); e > 0 {
		return e
	}
	return i + 1
}

// isMask reports whether v is exactly one mask.
func (p *Profile) isMask(v []byte) bool { return p.maskEnd(v, 0) == len(v) }

// containsMask reports whether b holds a mask.
func (p *Profile) containsMask(b []byte) bool {
	for off := 0; ; off++ {
		k := bytes.Index(b[off:], []byte(maskPrefix))
		if k < 0 {
			return false
		}
		off += k
		if p.maskEnd(b, off) > 0 {
			return true
		}
	}
}

// scanPatterns adds the matches of the profile's own patterns to
// ms[first:], leaving out those that overlap a match already there or an
// existing mask.
func (p *Profile) scanPatterns(s []byte, ms []match, first int) []match {
	for _, pt := range p.patterns {
		off := 0
		for off < len(s) {
			loc := pt.re.FindIndex(s[off:])
			if loc == nil {
				break
			}
			a, b := off+loc[0], off+loc[1]
			if b == a {
				off = b + 1
				continue
			}
			off = b
			if overlaps(ms[first:], a, b) || p.overlapsMask(s, a, b) {
				continue
			}
			at, _ := slices.BinarySearchFunc(ms[first:], a, func(m match, a int) int { return m.s - a })
			ms = slices.Insert(ms, first+at, match{a, b, pt.typ})
		}
	}
	return ms
}

func overlaps(ms []match, a, b int) bool {
	for _, m := range ms {
		if m.s < b && a < m.e {
			return true
		}
	}
	return false
}

// overlapsMask reports whether s[a:b] overlaps a mask already in s.
func (p *Profile) overlapsMask(s []byte, a, b int) bool {
	for off := 0; ; {
		k := bytes.Index(s[off:], []byte(maskPrefix))
		if k < 0 {
			return false
		}
		ms := off + k
		me := p.maskEnd(s, ms)
		if me > 0 && ms < b && a < me {
			return true
		}
		off = ms + 1
	}
}

// applyMatches appends s to dst with every match replaced by its mask.
func applyMatches(dst, s []byte, ms []match) []byte {
	last := 0
	for _, m := range ms {
		dst = append(dst, s[last:m.s]...)
		dst = appendMask(dst, m.typ)
		last = m.e
	}
	return append(dst, s[last:]...)
}

// MaskText masks secrets in text that is not JSON (an SSE data field that
// does not parse, a log line, a body not labelled JSON). It returns s
// itself, and no counts, when nothing is masked. Field rules apply to
// NAME=value and NAME: value pairs in the text (see ProfileConfig.Keys);
// paths do not apply. Text holding JSON string escapes that can hide a
// secret (\u0041, \/) is scanned decoded too, and what is found there is
// masked in the original bytes, escapes and all, so JSON text stays JSON.
func (p *Profile) MaskText(s []byte) ([]byte, Counts) {
	st := getState()
	defer putState(st)
	ms := p.scanText(s, st.ms[:0], false)
	if p.det != 0 && hidingEscape(s) {
		ms = p.scanEscaped(s, ms)
	}
	st.ms = ms[:0]
	if len(ms) == 0 {
		return s, nil
	}
	out := applyMatches(make([]byte, 0, len(s)+16*len(ms)), s, ms)
	var c Counts
	for _, m := range ms {
		c.Add(m.typ, 1)
	}
	return out, c
}

// hidingEscape reports whether s holds a JSON escape that can hide a
// secret from the detectors: \uXXXX or \/.
func hidingEscape(s []byte) bool {
	for i := 0; ; {
		k := bytes.IndexByte(s[i:], '\\')
		if k < 0 || i+k+1 >= len(s) {
			return false
		}
		i += k + 1
		switch s[i] {
		case '/':
			return true
		case 'u':
			if _, ok := jsontext.Hex4(s, i+1); ok {
				return true
			}
		case '\\':
			i++ // an escaped backslash: what follows is not an escape
		}
	}
}

// escState is the scratch space of scanEscaped, pooled.
type escState struct {
	dec []byte
	off []int // off[k]: where in the original the escape giving dec[k] starts
	ms  []match
}

var escPool = sync.Pool{New: func() any { return new(escState) }}

// scanEscaped scans s with its JSON string escapes decoded and adds to ms
// (sorted, not overlapping) what is found there and not already in ms,
// each match widened to whole escapes of s.
func (p *Profile) scanEscaped(s []byte, ms []match) []match {
	es := escPool.Get().(*escState)
	defer func() {
		if cap(es.dec) <= poolKeep {
			escPool.Put(es)
		}
	}()
	dec, off := es.dec[:0], es.off[:0]
	var rb [utf8.UTFMax]byte
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			dec = append(dec, c)
			off = append(off, i)
			i++
			continue
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			dec = append(dec, unescapeByte(e))
			off = append(off, i)
			i += 2
		case 'u':
			r, ok := jsontext.Hex4(s, i+2)
			if !ok {
				dec = append(dec, c)
				off = append(off, i)
				i++
				continue
			}
			n := 6
			if 0xD800 <= r && r < 0xDC00 && hasPrefix(s, i+6, "\\u") {
				if r2, ok := jsontext.Hex4(s, i+8); ok && 0xDC00 <= r2 && r2 < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
					n = 12
				}
			}
			if 0xD800 <= r && r < 0xE000 {
				r = utf8.RuneError
			}
			for _, b := range rb[:utf8.EncodeRune(rb[:], r)] {
				dec = append(dec, b)
				off = append(off, i)
			}
			i += n
		default:
			dec = append(dec, c)
			off = append(off, i)
			i++
		}
	}
	off = append(off, len(s))
	es.dec, es.off = dec, off
	found := p.scanText(dec, es.ms[:0], false)
	es.ms = found[:0]
	// Masks in s are masks in the decoded text too, where the scan skips
	// them: no match found there overlaps one.
	add := found[:0]
	for _, m := range found {
		if a, b := off[m.s], off[m.e]; a < b {
			add = append(add, match{a, b, m.typ})
		}
	}
	return mergeMatches(ms, 0, add)
}

// unescapeByte is the byte a one-character JSON escape \e stands for.
func unescapeByte(e byte) byte {
	switch e {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return e
}
