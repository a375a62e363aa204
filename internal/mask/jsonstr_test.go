package mask

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// appendQuotedRef is the JSON string encoder as it was before it jumped
// from escape to escape (a byte at a time after each word holding one).
// The encoder in use must give exactly its bytes: masked output does not
// change with the speed-up.
func appendQuotedRef(dst, s []byte) []byte {
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

// encoderInputs are the strings the encoders are compared on: the fuzz
// seeds (raw, and decoded where they are a JSON string or hold some), the
// adversarial inputs, every byte alone, and random strings dense in bytes
// that need escaping.
func encoderInputs() [][]byte {
	var in [][]byte
	var strs func(v any)
	strs = func(v any) {
		switch v := v.(type) {
		case string:
			in = append(in, []byte(v))
		case []any:
			for _, e := range v {
				strs(e)
			}
		case map[string]any:
			for k, e := range v {
				in = append(in, []byte(k))
				strs(e)
			}
		}
	}
	for _, s := range jsonSeeds() {
		in = append(in, []byte(s))
		var v any
		if json.Unmarshal([]byte(s), &v) == nil {
			strs(v)
		}
	}
	for _, s := range adversarial {
		in = append(in, []byte(s))
	}
	for c := range 256 {
		in = append(in, []byte{byte(c)}, []byte{'a', 'b', 'c', 'd', 'e', 'f', 'g', byte(c), 'h'})
	}
	r := rand.New(rand.NewPCG(13, 13))
	alphabet := []byte("ab\"\\\n\r\t\b\f\x00\x01\x1f\x7f\x80\xc3\xa9\xff /u")
	for range 2000 {
		s := make([]byte, r.IntN(40))
		for k := range s {
			s[k] = alphabet[r.IntN(len(alphabet))]
		}
		in = append(in, s)
	}
	return in
}

func TestAppendQuotedSameAsBefore(t *testing.T) {
	for k, s := range encoderInputs() {
		want := appendQuotedRef([]byte("x"), s)
		if got := appendQuoted([]byte("x"), s); !bytes.Equal(got, want) {
			t.Fatalf("input %d (%d bytes): appendQuoted %q, before %q", k, len(s), got, want)
		}
	}
}

// TestAppendMaskedQuotedSameAsBefore checks that masking a string with
// escapes writes what decoding, masking and re-encoding it wrote before.
func TestAppendMaskedQuotedSameAsBefore(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	types := []string{"jwt", "field:password", `field:a"b`, "field:x\ny", "aws_access_key"}
	for k, s := range encoderInputs() {
		for range 4 {
			var ms []match
			for at := 0; at < len(s); {
				st := at + r.IntN(len(s)-at+1)
				e := st + r.IntN(len(s)-st+1)
				if st == len(s) {
					break
				}
				ms = append(ms, match{s: st, e: e, typ: types[r.IntN(len(types))]})
				at = max(e, st+1)
			}
			want := appendQuotedRef([]byte("x"), applyMatches(nil, s, ms))
			if got := appendMaskedQuoted([]byte("x"), s, ms); !bytes.Equal(got, want) {
				t.Fatalf("input %d, matches %v: %q, before %q", k, ms, got, want)
			}
		}
	}
}
