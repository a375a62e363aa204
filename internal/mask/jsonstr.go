package mask

import (
	"encoding/binary"

	"github.com/airlock-mcp/airlock/internal/jsontext"
)

// String scanning, decoding and encoding for the JSON walker.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special reports whether one of the 8 bytes in x is '"', '\\' or a
// control byte (< 0x20): the bytes a JSON string cannot hold as they are.
func special(x uint64) bool {
	q := x ^ (ones * '"')
	b := x ^ (ones * '\\')
	return ((q-ones)&^q|(b-ones)&^b|(x-ones*0x20)&^x)&highs != 0
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
		for i+8 <= len(s) && !special(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
		}
		for i < len(s) && strPlain[s[i]] {
			i++
		}
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
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	last := 0
	for i := 0; i < len(s); i++ {
		for i+8 <= len(s) && !special(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[last:i]...)
		switch c {
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
	dst = append(dst, s[last:]...)
	return append(dst, '"')
}
