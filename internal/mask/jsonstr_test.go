package mask

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/airlock-mcp/airlock/internal/jsontext"
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

// rawVariants encodes s as the content of a JSON string in the ways other
// encoders write it: appendQuoted's way, and with \/, \u escapes (upper and
// lower case hex) for any byte or character, surrogate pairs, and unpaired
// surrogates (which decode to U+FFFD).
func rawVariant(r *rand.Rand, s []byte) []byte {
	const hex = "0123456789abcdef"
	const HEX = "0123456789ABCDEF"
	var out []byte
	u4 := func(v rune, h string) {
		out = append(out, '\\', 'u', h[v>>12&0xf], h[v>>8&0xf], h[v>>4&0xf], h[v&0xf])
	}
	for len(s) > 0 {
		c, n := utf8.DecodeRune(s)
		h := hex
		if r.IntN(2) == 0 {
			h = HEX
		}
		switch k := r.IntN(8); {
		case k == 0 && c == '/':
			out = append(out, '\\', '/')
		case k == 1 && c != utf8.RuneError && c < 0x10000:
			u4(c, h)
		case k == 2 && c >= 0x10000:
			r1, r2 := utf16.EncodeRune(c)
			u4(r1, h)
			u4(r2, h)
		case k == 3:
			u4(0xd800+rune(r.IntN(0x800)), h) // unpaired surrogate
			out = appendEscaped(out, s[:n])
		default:
			out = appendEscaped(out, s[:n])
		}
		s = s[n:]
	}
	return out
}

// TestAppendEditedRawSameAsBefore checks that writing a string back from
// its raw bytes gives what re-encoding its edited value gave before.
func TestAppendEditedRawSameAsBefore(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 15))
	reps := [][]byte{[]byte("[MASKED:jwt]"), []byte(`{"a":"[MASKED:x]"}`), []byte("\n\x01\"\\/é"), nil}
	inputs := encoderInputs()
	for _, s := range inputs[:len(inputs)/2] {
		inputs = append(inputs, append([]byte("é😀/\x01 "), s...))
	}
	fallbacks := 0
	for k, s := range inputs {
		s = s[:min(len(s), 2048)] // the adversarial inputs' heads do
		for range 4 {
			raw := rawVariant(r, s)
			if !json.Valid(append(append([]byte{'"'}, raw...), '"')) {
				t.Fatalf("input %d: bad test encoding %q", k, raw)
			}
			text, escs, short := appendUnescaped(nil, raw, nil)
			var spans []span
			var rep, edited []byte
			last := 0
			for at := 0; at < len(text) && r.IntN(3) > 0; {
				st := at + r.IntN(len(text)-at+1)
				e := st + r.IntN(min(len(text)-st, 8)+1)
				x := reps[r.IntN(len(reps))]
				spans = append(spans, span{st, e, len(rep), len(rep) + len(x)})
				rep = append(rep, x...)
				edited = append(append(edited, text[last:st]...), x...)
				last, at = e, max(e, st+1)
			}
			edited = append(edited, text[last:]...)
			want := appendQuotedRef([]byte("x"), edited)
			// Both ways: offsets mapped through the list of escapes
			// (when they are all short), and raw walked.
			for _, short := range []bool{short, false} {
				got, ok := appendEditedRaw([]byte("x"), raw, rep, spans, escs, short)
				if !ok {
					fallbacks++
					if short || string(got) != "x" {
						t.Fatalf("input %d: %q written on failure (short %v)", k, got, short)
					}
					continue
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("input %d, raw %q, spans %v, short %v: %q, before %q", k, raw, spans, short, got, want)
				}
			}
		}
	}
	t.Logf("%d of %d fell back to re-encoding (a change inside a \\u escape)", fallbacks, 8*len(inputs))
}

// TestMaskJSONCopyRawSameAsReencoding runs the fuzz seeds and the
// adversarial inputs through every fuzz profile with strings written back
// from their raw bytes and by re-encoding: the output must not differ.
func TestMaskJSONCopyRawSameAsReencoding(t *testing.T) {
	docs := jsonSeeds()
	for _, s := range adversarial {
		docs = append(docs, `{"a":`+string(appendQuoted(nil, []byte(s)))+`}`)
	}
	r := rand.New(rand.NewPCG(13, 16))
	for _, d := range docs[:len(docs)] {
		var v any
		if json.Unmarshal([]byte(d), &v) == nil {
			// The same document, nested in a string, with its string
			// written with other escapes.
			docs = append(docs, `{"t":"`+string(rawVariant(r, []byte(d)))+`"}`)
		}
	}
	profiles := fuzzProfiles(t)
	defer func() { copyRaw = true }()
	for k, d := range docs {
		for _, p := range profiles {
			copyRaw = true
			got, gc, gerr := p.MaskJSON([]byte(d))
			got = bytes.Clone(got)
			copyRaw = false
			want, wc, werr := p.MaskJSON([]byte(d))
			if !bytes.Equal(got, want) || (gerr == nil) != (werr == nil) || len(gc) != len(wc) {
				t.Fatalf("doc %d, profile %s: from raw %q (%v), re-encoded %q (%v)", k, p.Name(), got, gerr, want, werr)
			}
		}
	}
}

// TestAppendUnescapedSameAsJSONText checks the walker's decoder against
// jsontext.AppendUnescaped on strings encoded every which way.
func TestAppendUnescapedSameAsJSONText(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 17))
	for k, s := range encoderInputs() {
		for range 2 {
			raw := rawVariant(r, s)
			want := jsontext.AppendUnescaped([]byte("x"), raw)
			got, escs, short := appendUnescaped([]byte("x"), raw, nil)
			if !bytes.Equal(got, want) {
				t.Fatalf("input %d, raw %q: %q, jsontext %q", k, raw, got, want)
			}
			// Short escapes each take two bytes for one, so as many
			// are listed as the value is shorter than raw; \u or \/
			// make it not short.
			if short && len(escs) != len(raw)-(len(got)-1) {
				t.Fatalf("input %d, raw %q: %d escapes listed", k, raw, len(escs))
			}
			if !short && !bytes.Contains(raw, []byte(`\/`)) && !bytes.Contains(raw, []byte(`\u`)) {
				t.Fatalf("input %d, raw %q: not short", k, raw)
			}
		}
	}
}

// TestSpansLay checks the guard that keeps a change written without its
// span from being dropped when a string holding JSON is written back.
func TestSpansLay(t *testing.T) {
	// text "ab SECRET cd" (12 bytes) -> out "ab [MASKED:x] cd" (16 bytes)
	ok := []span{{3, 9, 3, 13}}
	if !spansLay(12, 16, ok) || !spansLay(12, 12, nil) {
		t.Fatal("spans that account for the output refused")
	}
	for _, c := range []struct {
		out   int
		spans []span
	}{
		{16, nil},                   // a change without its span
		{20, ok},                    // more output than the spans give
		{16, []span{{3, 9, 4, 14}}}, // an unchanged run longer in out
		{19, []span{{3, 9, 3, 13}, {2, 3, 13, 16}}}, // spans out of order
	} {
		if spansLay(12, c.out, c.spans) {
			t.Errorf("out %d, spans %v: accepted", c.out, c.spans)
		}
	}
}
