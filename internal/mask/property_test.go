package mask

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// Property tests over generated documents: masking valid JSON gives valid
// JSON of the same shape, masking again changes nothing, and no
// standalone secret survives.

// standaloneSecrets are joined into generated strings with ", " around
// them, where every detector must find them.
var standaloneSecrets = []string{fakeAWSKeyID, fakeGitHub, fakeJWT, fakeSlack, fakeStripe, fakeGoogle, fakeOpenAI,
	fakeAnthropic, "4111111111111111", "5555 5555 5555 4444"}

var fragments = []string{
	"hello", "world", "the build failed", "12", "2025-01-02T03:04:05Z", "a-b", "x_y", "sk-", "ghp_", "eyJ", "AKIA", "-----",
	"Bearer", "Basic", "password=", "token:", "postgres://app:", "@db", "://", "[MASKED:", "]", "é", "😀", "\n", "\t", `"`, `\`,
	"/", "<b>", "{", "}", "[", "]", "null", "123e4567-e89b-12d3-a456-426614174000", "3f786850e387550fdab836ed7e6dc881de23001b",
	"\x01", "\u2028", "AWS_SECRET_ACCESS_KEY=", fakeAWSSecret, "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----",
}

var genKeys = []string{"password", "token", "id", "method", "jsonrpc", "text", "content", "result", "Client-Secret", "api_key",
	"name", "value", "items", "credentials", "SecretAccessKey", fakeAWSKeyID, "é", ""}

type kv struct {
	k string
	v any
}

// genString builds text from fragments and secrets.
func genString(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(6) {
		if r.IntN(4) == 0 {
			b.WriteString(", " + standaloneSecrets[r.IntN(len(standaloneSecrets))] + ", ")
		} else {
			b.WriteString(fragments[r.IntN(len(fragments))])
		}
	}
	return b.String()
}

func genValue(r *rand.Rand, depth int) any {
	k := r.IntN(10)
	if depth <= 0 && k < 4 {
		k += 4
	}
	switch k {
	case 0, 1:
		var obj []kv
		for range r.IntN(5) {
			obj = append(obj, kv{genKeys[r.IntN(len(genKeys))], genValue(r, depth-1)})
		}
		return obj
	case 2:
		var arr []any
		for range r.IntN(5) {
			arr = append(arr, genValue(r, depth-1))
		}
		if arr == nil {
			arr = []any{}
		}
		return arr
	case 3: // JSON in a string
		return string(encodeGen(r, genValue(r, depth-1)))
	case 4:
		return []any{json.Number("-12.5e3"), json.Number("0"), json.Number("4111111111111111")}[r.IntN(3)]
	case 5:
		return []any{true, false, nil}[r.IntN(3)]
	default:
		return genString(r)
	}
}

// encodeGen writes v as JSON, escaping some characters that need no
// escape and adding whitespace, as servers may.
func encodeGen(r *rand.Rand, v any) []byte {
	var b bytes.Buffer
	var enc func(v any)
	ws := func() {
		if r.IntN(5) == 0 {
			b.WriteString([]string{" ", "\n", "\t", "\r\n  "}[r.IntN(4)])
		}
	}
	str := func(s string) {
		b.WriteByte('"')
		for _, c := range s {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteRune(c)
			case c < 0x20:
				fmt.Fprintf(&b, `\u%04x`, c)
			case c == '/' && r.IntN(2) == 0:
				b.WriteString(`\/`)
			case c < 0x80 && r.IntN(8) == 0:
				fmt.Fprintf(&b, `\u%04X`, c)
			case c >= 0x10000 && r.IntN(2) == 0:
				fmt.Fprintf(&b, `\u%04x\u%04x`, 0xD800+((c-0x10000)>>10), 0xDC00+((c-0x10000)&0x3FF))
			default:
				b.WriteRune(c)
			}
		}
		b.WriteByte('"')
	}
	enc = func(v any) {
		ws()
		switch v := v.(type) {
		case []kv:
			b.WriteByte('{')
			for i, m := range v {
				if i > 0 {
					b.WriteByte(',')
				}
				ws()
				str(m.k)
				ws()
				b.WriteByte(':')
				enc(m.v)
			}
			ws()
			b.WriteByte('}')
		case []any:
			b.WriteByte('[')
			for i, e := range v {
				if i > 0 {
					b.WriteByte(',')
				}
				enc(e)
			}
			ws()
			b.WriteByte(']')
		case string:
			str(v)
		case json.Number:
			b.WriteString(string(v))
		case bool:
			fmt.Fprint(&b, v)
		case nil:
			b.WriteString("null")
		}
		ws()
	}
	enc(v)
	return b.Bytes()
}

// genDocument is a JSON-RPC response around a generated result, a batch of
// them, or a bare generated value.
func genDocument(r *rand.Rand) []byte {
	msg := func() []kv {
		return []kv{{"jsonrpc", "2.0"}, {"id", json.Number(fmt.Sprint(r.IntN(100)))}, {"result", genValue(r, 4)}}
	}
	switch r.IntN(4) {
	case 0:
		return encodeGen(r, []any{msg(), msg()})
	case 1:
		return encodeGen(r, genValue(r, 4))
	default:
		return encodeGen(r, msg())
	}
}

// sameShape compares the token streams of in and out: equal, except that
// a value (of any kind) may have become a string with a mask in it.
func sameShape(in, out []byte) error {
	di, do := json.NewDecoder(bytes.NewReader(in)), json.NewDecoder(bytes.NewReader(out))
	di.UseNumber()
	do.UseNumber()
	for {
		ti, erri := di.Token()
		to, erro := do.Token()
		if errors.Is(erri, io.EOF) && errors.Is(erro, io.EOF) {
			return nil
		}
		if erri != nil || erro != nil {
			return fmt.Errorf("token error: in %v, out %v", erri, erro)
		}
		if ti == to {
			continue
		}
		s, isStr := to.(string)
		if !isStr || !strings.Contains(s, maskPrefix) {
			return fmt.Errorf("token %v became %v", ti, to)
		}
		if d, ok := ti.(json.Delim); ok && (d == '{' || d == '[') {
			for level := 1; level > 0; {
				t, err := di.Token()
				if err != nil {
					return err
				}
				if d, ok := t.(json.Delim); ok {
					if d == '{' || d == '[' {
						level++
					} else {
						level--
					}
				}
			}
		}
	}
}

// decodedStrings returns every string in a JSON document, and in JSON
// held by its strings, decoded.
func decodedStrings(doc []byte) []string {
	var v any
	if json.Unmarshal(doc, &v) != nil {
		return nil
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				out = append(out, k)
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case string:
			// A string that holds JSON is checked by its strings: a
			// number in it stays a number (a Luhn-valid one included:
			// only a card/PAN member name makes a number a card), so
			// its digits may show in the string's text.
			if json.Valid([]byte(v)) && looksJSON([]byte(v)) {
				out = append(out, decodedStrings([]byte(v))...)
			} else {
				out = append(out, v)
			}
		}
	}
	walk(v)
	return out
}

func TestPropertyMaskJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	paths := mustCompile(t, ProfileConfig{Name: "paths", Extends: StrictProfile, Paths: []string{"$.result.*.credentials", "$.result[1]", "$.*.text"}})
	profiles := []*Profile{Default(), profileNamed(t, StrictProfile), paths}
	for i := range 3000 {
		doc := genDocument(r)
		if !json.Valid(doc) {
			t.Fatalf("generator made invalid JSON: %q", doc)
		}
		p := profiles[i%len(profiles)]
		out, _, err := p.MaskJSON(doc)
		if err != nil {
			t.Fatalf("doc %d: %v", i, err)
		}
		if !json.Valid(out) {
			t.Fatalf("doc %d: output is not valid JSON", i)
		}
		if err := sameShape(doc, out); err != nil {
			t.Fatalf("doc %d: %v", i, err)
		}
		again, c2, err := p.MaskJSON(out)
		if err != nil || !bytes.Equal(again, out) || len(c2) != 0 {
			t.Fatalf("doc %d: not idempotent (counts %v, err %v)", i, c2, err)
		}
		for _, s := range decodedStrings(out) {
			for j, secret := range standaloneSecrets {
				if strings.Contains(s, secret) {
					t.Fatalf("doc %d: secret %d survived masking", i, j)
				}
			}
		}
	}
}

func TestPropertyMaskText(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, p := range []*Profile{Default(), profileNamed(t, StrictProfile)} {
		for i := range 3000 {
			text := []byte(genString(r) + genString(r))
			out, _ := p.MaskText(text)
			again, c2 := p.MaskText(out)
			if !bytes.Equal(again, out) || len(c2) != 0 {
				t.Fatalf("%s text %d: not idempotent (counts %v)", p.Name(), i, c2)
			}
			for j, secret := range standaloneSecrets {
				if bytes.Contains(out, []byte(secret)) {
					t.Fatalf("%s text %d: secret %d survived masking", p.Name(), i, j)
				}
			}
		}
	}
}
