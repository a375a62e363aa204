package mask

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/airlock-mcp/airlock/internal/jsontext"
)

// String scanning, decoding and encoding for the JSON walker.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// specialBits flags, in the high bit of each of the 8 bytes in x (read
// little-endian), the bytes a JSON string cannot hold as they are: '"',
// '\\' and control bytes (< 0x20). Only the lowest flag is exact (a
// borrow can flag a byte above a flagged one), which is all a scan for
// the next such byte needs: bits.TrailingZeros64(m)/8 is its index.
func specialBits(x uint64) uint64 {
	q := x ^ (ones * '"')
	b := x ^ (ones * '\\')
	return ((q-ones)&^q | (b-ones)&^b | (x-ones*0x20)&^x) & highs
}

// special reports whether one of the 8 bytes in x is '"', '\\' or a
// control byte (< 0x20).
func special(x uint64) bool { return specialBits(x) != 0 }

// nextSpecial returns the index of the first byte at or after i in s that
// a JSON string cannot hold as it is, or len(s).
func nextSpecial(s []byte, i int) int {
	for ; i+8 <= len(s); i += 8 {
		if m := specialBits(binary.LittleEndian.Uint64(s[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(s) && strPlain[s[i]] {
		i++
	}
	return i
}

// strPlain marks the bytes a JSON string holds as they are.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString scans the string at w.i (a '"'), leaving w.i after it, and
// returns its raw content and whether that holds escapes. Like
// encoding/json it checks escapes and control bytes but not UTF-8.
func (w *walker) scanString() (raw []byte, esc bool, ok bool) {
	s := w.src
	start := w.i + 1
	i := start
	for {
		i = nextSpecial(s, i)
		if i >= len(s) {
			return nil, false, w.fail(len(s), "unterminated string")
		}
		switch s[i] {
		case '"':
			w.i = i + 1
			return s[start:i], esc, true
		case '\\':
			esc = true
			if i+1 >= len(s) {
				return nil, false, w.fail(i, "unterminated escape in string")
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := jsontext.Hex4(s, i+2); !ok {
					return nil, false, w.fail(i, "invalid \\u escape in string")
				}
				i += 6
			default:
				return nil, false, w.fail(i, "invalid escape in string")
			}
		default:
			return nil, false, w.fail(i, "control character in string (must be escaped)")
		}
	}
}

// appendQuoted appends s as a JSON string: '"', '\\' and control bytes
// escaped, everything else (non-ASCII included) as it is.
func appendQuoted(dst, s []byte) []byte {
	dst = slices.Grow(dst, len(s)+2)
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}

// appendEscaped appends s as the content of a JSON string, escaped as
// appendQuoted does. It jumps from one byte to escape to the next: a
// string holding JSON (a quote every few bytes) costs one word test per
// escape, not one per byte.
func appendEscaped(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	last := 0
	for i := nextSpecial(s, 0); i < len(s); i = nextSpecial(s, i+1) {
		dst = append(dst, s[last:i]...)
		switch c := s[i]; c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		last = i + 1
	}
	return append(dst, s[last:]...)
}

// appendMaskedQuoted appends text with the matches ms replaced by their
// masks, as a JSON string: what appendQuoted(applyMatches(text, ms))
// gives, written straight into dst without the intermediate copy.
func appendMaskedQuoted(dst, text []byte, ms []match) []byte {
	dst = slices.Grow(dst, len(text)+2)
	dst = append(dst, '"')
	last := 0
	for _, m := range ms {
		dst = appendEscaped(dst, text[last:m.s])
		mark := len(dst)
		dst = appendMask(dst, m.typ)
		if nextSpecial(dst, mark) < len(dst) {
			// A mask type (a pattern's or a key rule's name) holding
			// a quote or a control byte: escape it like the rest.
			mask := append([]byte(nil), dst[mark:]...)
			dst = appendEscaped(dst[:mark], mask)
		}
		last = m.e
	}
	dst = appendEscaped(dst, text[last:])
	return append(dst, '"')
}

// span is one change a masking pass made to a string's decoded value:
// its bytes [s:e] became rep[rs:re] (rep held by the caller).
type span struct{ s, e, rs, re int }

// appendEditedRaw appends as a JSON string the decoded value of raw (a
// string's content between its quotes, as scanString accepted it) with
// the spans (in order, not overlapping) replaced by their bytes in rep.
// It writes exactly what appendQuoted does given the edited value, but
// copies the unchanged runs of raw as they are wherever raw is already
// in appendQuoted's encoding (escapes \" \\ \n \r \t \b \f, and \u00xx
// for other control bytes), re-encoding only the edits and the escapes
// written otherwise (\/, \u0041, surrogate pairs…): a large string
// holding JSON is then one or two copies instead of a re-encoding byte
// by byte. ok is false, and dst as it was, when a span starts or ends
// inside the value of one \u escape (in the middle of a character).
//
// With short (see appendUnescaped; escs lists raw's escapes) every escape
// in raw is two bytes standing for one: the offsets of the spans map to
// raw by counting the escapes before them, and what lies between is
// copied without looking at it.
func appendEditedRaw(dst, raw, rep []byte, spans []span, escs []int32, short bool) (_ []byte, ok bool) {
	mark := len(dst)
	dst = slices.Grow(dst, len(raw)+2)
	dst = append(dst, '"')
	if short {
		from, k := 0, 0
		for _, sp := range spans {
			var s, e int
			s, k = rawMap(escs, k, sp.s)
			e, k = rawMap(escs, k, sp.e)
			dst = append(dst, raw[from:s]...)
			dst = appendEscaped(dst, rep[sp.rs:sp.re])
			from = e
		}
		dst = append(dst, raw[from:]...)
		return append(dst, '"'), true
	}
	r, d, from := 0, 0, 0
	for _, sp := range spans {
		if dst, r, d, from, ok = rawTo(dst, raw, r, d, from, sp.s, true); !ok {
			return dst[:mark], false
		}
		dst = append(dst, raw[from:r]...)
		dst = appendEscaped(dst, rep[sp.rs:sp.re])
		if dst, r, d, _, ok = rawTo(dst, raw, r, d, r, sp.e, false); !ok {
			return dst[:mark], false
		}
		from = r
	}
	dst, _, _, from, _ = rawTo(dst, raw, r, d, from, math.MaxInt, true)
	dst = append(dst, raw[from:]...)
	return append(dst, '"'), true
}

// rawMap maps offset p in a string's value to its raw bytes, when every
// escape is two bytes for one (escs: where their values lie, in order):
// p plus the number of escapes before it. k is where to start counting
// in escs (offsets come in order); it returns the new k.
func rawMap(escs []int32, k, p int) (int, int) {
	n, _ := slices.BinarySearch(escs[k:], int32(p))
	k += n
	return p + k, k
}

// rawTo moves through raw from r (where the decoded value is at offset
// d) to decoded offset stop or the end of raw. raw[from:r] is pending
// output, still to be copied as it is; with emit, an escape not in
// appendQuoted's encoding flushes it and is written re-encoded. It
// returns the new r, d and from; ok is false when stop falls inside the
// value of an escape.
func rawTo(dst, raw []byte, r, d, from, stop int, emit bool) (_ []byte, _, _, _ int, ok bool) {
	var buf, enc [8]byte
	for {
		j := nextBackslash(raw, r) - r
		if d+j >= stop {
			return dst, r + stop - d, stop, from, true
		}
		r, d = r+j, d+j
		if r == len(raw) {
			return dst, r, d, from, true
		}
		if c := raw[r+1]; c != 'u' && c != '/' {
			// \" \\ \n \r \t \b \f: one byte, written back the same.
			r, d = r+2, d+1
			continue
		}
		n, dec := unescapeOne(raw, r, &buf)
		if d+len(dec) > stop {
			return dst, r, d, from, false
		}
		if emit && (raw[r+1] == '/' || raw[r+1] == 'u' && !bytes.Equal(appendEscaped(enc[:0], dec), raw[r:r+n])) {
			dst = append(dst, raw[from:r]...)
			dst = appendEscaped(dst, dec)
			from = r + n
		}
		r, d = r+n, d+len(dec)
	}
}

// nextBackslash returns the index of the first '\\' at or after i in s,
// or len(s). Escapes in text come every few bytes: a word test or two
// finds most before bytes.IndexByte would have paid for its call.
func nextBackslash(s []byte, i int) int {
	for k := 0; k < 4 && i+8 <= len(s); k++ {
		x := binary.LittleEndian.Uint64(s[i:]) ^ (ones * '\\')
		if m := (x - ones) &^ x & highs; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	if j := bytes.IndexByte(s[i:], '\\'); j >= 0 {
		return i + j
	}
	return len(s)
}

// appendUnescaped appends the value of raw (a string's content as
// scanString accepted it) to dst: what jsontext.AppendUnescaped writes,
// found by word tests (see nextBackslash) and with the one-byte escapes
// decoded in line, as the walker decodes every string holding escapes.
//
// It also lists in escs where (as offsets in the value) the value of each
// escape lies, and reports whether all are one-byte escapes written as
// appendQuoted writes them (\" \\ \n \r \t \b \f; no \u, no \/):
// then offsets map to raw without walking it again (see rawMap).
func appendUnescaped(dst, raw []byte, escs []int32) (_ []byte, _ []int32, short bool) {
	var buf [8]byte
	short = true
	base := len(dst)
	dst = slices.Grow(dst, len(raw))
	for r := 0; r < len(raw); {
		j := nextBackslash(raw, r)
		dst = append(dst, raw[r:j]...)
		if j == len(raw) {
			break
		}
		c := raw[j+1]
		escs = append(escs, int32(len(dst)-base))
		switch c {
		case '/':
			short = false
		case 'u':
			short = false
			n, dec := unescapeOne(raw, j, &buf)
			dst = append(dst, dec...)
			r = j + n
			continue
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		default: // '"', '\\', '/' stand for themselves
		}
		dst = append(dst, c)
		r = j + 2
	}
	return dst, escs, short
}

// unescapeOne decodes the escape at raw[i] (a '\\' scanString accepted)
// as jsontext.AppendUnescaped does, a surrogate pair as one character and
// an unpaired surrogate as U+FFFD, returning its length in raw and its
// value.
func unescapeOne(raw []byte, i int, buf *[8]byte) (n int, dec []byte) {
	switch c := raw[i+1]; c {
	case 'b':
		buf[0] = '\b'
	case 'f':
		buf[0] = '\f'
	case 'n':
		buf[0] = '\n'
	case 'r':
		buf[0] = '\r'
	case 't':
		buf[0] = '\t'
	case 'u':
		r, _ := jsontext.Hex4(raw, i+2)
		n = 6
		if utf16.IsSurrogate(r) {
			d := utf8.RuneError
			if i+12 <= len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
				if r2, ok := jsontext.Hex4(raw, i+8); ok {
					if d = utf16.DecodeRune(r, r2); d != utf8.RuneError {
						n = 12
					}
				}
			}
			r = d
		}
		return n, utf8.AppendRune(buf[:0], r)
	default: // '"', '\\', '/'
		buf[0] = c
	}
	return 2, buf[:1]
}
