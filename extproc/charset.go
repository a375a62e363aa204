package extproc

import (
	"bytes"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A response body is masked as UTF-8 text. Bodies in UTF-16 (with or
// without a byte-order mark, little- or big-endian) are decoded first and
// the masked result encoded back the same way, mark included, so the
// client reads what it would have read, masked; a UTF-8 byte-order mark
// is kept in front of the masked body. The bytes decide, not the
// content-type's charset: a label can be wrong, and the bytes are what
// the client reads; the label decides only where the bytes cannot (UTF-16
// without a mark that starts with a non-ASCII character). What airlock
// cannot read as text it is sure of — UTF-32 (by its mark, its label, or
// two NUL bytes at the start), or ASCII bytes under a UTF-16 label, which
// a client may read either way — is refused with a JSON-RPC error, never
// passed on unread.

// charset is how a body's text is encoded.
type charset uint8

const (
	csUTF8    charset = iota
	csUTF8BOM         // UTF-8 after a byte-order mark
	csUTF16LE
	csUTF16BE
	csUTF16LEBOM // after a byte-order mark
	csUTF16BEBOM
)

var (
	bomUTF8    = []byte{0xef, 0xbb, 0xbf}
	bomUTF16LE = []byte{0xff, 0xfe}
	bomUTF16BE = []byte{0xfe, 0xff}
)

// sniffLen is how many bytes sniffCharset needs to decide (fewer only at
// the end of the body).
const sniffLen = 4

// sniffCharset decides a body's encoding from its first bytes (all of
// them when the body is shorter than sniffLen) and the content-type's
// charset parameter. why is set when the body must be refused.
func sniffCharset(b []byte, label string) (cs charset, why string) {
	label = strings.ToLower(strings.TrimSpace(label))
	switch {
	case bytes.HasPrefix(b, []byte{0xff, 0xfe, 0, 0}), bytes.HasPrefix(b, []byte{0, 0, 0xfe, 0xff}):
		return 0, "it is encoded in UTF-32, which airlock does not read"
	case bytes.HasPrefix(b, bomUTF8):
		cs = csUTF8BOM
	case bytes.HasPrefix(b, bomUTF16LE):
		cs = csUTF16LEBOM
	case bytes.HasPrefix(b, bomUTF16BE):
		cs = csUTF16BEBOM
	case len(b) >= 2 && b[0] == 0 && b[1] == 0:
		return 0, "it starts with NUL bytes (UTF-32 or binary), which airlock does not read as text"
	case len(b) >= 2 && b[0] != 0 && b[1] == 0:
		cs = csUTF16LE
	case len(b) >= 2 && b[0] == 0 && b[1] != 0:
		cs = csUTF16BE
	}
	switch {
	case strings.HasPrefix(label, "utf-32"), strings.HasPrefix(label, "utf32"), strings.HasPrefix(label, "ucs-4"):
		return 0, "its charset is " + printable(label) + ", which airlock does not read"
	case (strings.HasPrefix(label, "utf-16") || strings.HasPrefix(label, "utf16") || strings.HasPrefix(label, "ucs-2")) &&
		cs == csUTF8 && len(b) >= 2:
		if b[0] < 0x80 && b[1] < 0x80 {
			// ASCII bytes under a UTF-16 label: the client may read
			// them either way, and airlock would mask only one.
			return 0, "its charset is " + printable(label) + " but its bytes read as UTF-8"
		}
		// No mark and no ASCII to tell by: the label's byte order
		// (big-endian when it names none, RFC 2781).
		if strings.HasSuffix(label, "le") {
			return csUTF16LE, ""
		}
		return csUTF16BE, ""
	}
	return cs, ""
}

func (cs charset) utf16() bool { return cs >= csUTF16LE }

// bigEndian reports whether a UTF-16 charset is big-endian.
func (cs charset) bigEndian() bool { return cs == csUTF16BE || cs == csUTF16BEBOM }

// decoder turns a UTF-16 body into UTF-8, chunk by chunk: an odd byte or
// the first half of a surrogate pair at the end of a chunk waits for the
// next.
type decoder struct {
	be    bool
	carry []byte
}

func (d *decoder) unit(b []byte) uint16 {
	if d.be {
		return uint16(b[0])<<8 | uint16(b[1])
	}
	return uint16(b[1])<<8 | uint16(b[0])
}

// decode appends the UTF-8 of src (after what was carried) to dst.
func (d *decoder) decode(dst, src []byte) []byte {
	if len(d.carry) > 0 {
		src = append(d.carry, src...)
		d.carry = nil
	}
	i := 0
	for ; i+1 < len(src); i += 2 {
		u := d.unit(src[i:])
		switch {
		case utf16.IsSurrogate(rune(u)) && u < 0xdc00:
			if i+3 >= len(src) {
				d.carry = append(d.carry[:0], src[i:]...)
				return dst
			}
			if r := utf16.DecodeRune(rune(u), rune(d.unit(src[i+2:]))); r != utf8.RuneError {
				dst = utf8.AppendRune(dst, r)
				i += 2
				continue
			}
			dst = utf8.AppendRune(dst, utf8.RuneError)
		case utf16.IsSurrogate(rune(u)):
			dst = utf8.AppendRune(dst, utf8.RuneError)
		default:
			dst = utf8.AppendRune(dst, rune(u))
		}
	}
	if i < len(src) {
		d.carry = append(d.carry[:0], src[i:]...)
	}
	return dst
}

// flush ends the body: a byte or half pair left over becomes U+FFFD.
func (d *decoder) flush(dst []byte) []byte {
	if len(d.carry) > 0 {
		d.carry = nil
		dst = utf8.AppendRune(dst, utf8.RuneError)
	}
	return dst
}

// encodeUTF16 appends s (UTF-8; invalid bytes become U+FFFD) as UTF-16.
func encodeUTF16(dst, s []byte, be bool) []byte {
	put := func(u uint16) {
		if be {
			dst = append(dst, byte(u>>8), byte(u))
		} else {
			dst = append(dst, byte(u), byte(u>>8))
		}
	}
	for len(s) > 0 {
		r, n := utf8.DecodeRune(s)
		s = s[n:]
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			put(uint16(r1))
			put(uint16(r2))
			continue
		}
		put(uint16(r))
	}
	return dst
}

// decodeWhole is a whole body as UTF-8 text without a byte-order mark.
func decodeWhole(b []byte, cs charset) []byte {
	switch cs {
	case csUTF8BOM:
		return b[len(bomUTF8):]
	case csUTF16LEBOM, csUTF16BEBOM:
		b = b[2:]
		fallthrough
	case csUTF16LE, csUTF16BE:
		d := decoder{be: cs.bigEndian()}
		out := d.decode(make([]byte, 0, len(b)), b)
		return d.flush(out)
	}
	return b
}

// encodeWhole encodes masked UTF-8 text (from decodeWhole) back as the
// body was.
func encodeWhole(text []byte, cs charset) []byte {
	switch cs {
	case csUTF8BOM:
		return append(append(make([]byte, 0, len(text)+3), bomUTF8...), text...)
	case csUTF16LEBOM:
		return encodeUTF16(append(make([]byte, 0, 2*len(text)+2), bomUTF16LE...), text, false)
	case csUTF16BEBOM:
		return encodeUTF16(append(make([]byte, 0, 2*len(text)+2), bomUTF16BE...), text, true)
	case csUTF16LE, csUTF16BE:
		return encodeUTF16(make([]byte, 0, 2*len(text)), text, cs.bigEndian())
	}
	return text
}
