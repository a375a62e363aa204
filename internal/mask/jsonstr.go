package mask

import (
	"encoding/binary"
	"math/bits"
	"slices"

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
