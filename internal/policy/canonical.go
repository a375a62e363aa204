package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// ErrNotJSON is CanonicalArguments' error for input that is not one JSON
// value.
var ErrNotJSON = errors.New("not one valid JSON value")

// maxCanonicalExponent bounds the decimal exponent a number may have to be
// normalised exactly; a larger one (absurd in tool arguments) keeps its
// spelling, which can only keep two calls apart, never join them wrongly.
const maxCanonicalExponent = 400

// CanonicalArguments writes a JSON value in a form where two values equal
// as JSON (the way a grant's arguments are compared with a call's) are
// equal as bytes: object members sorted by name, no white space, strings
// re-escaped, numbers as exact rationals (1, 1.0 and 1e0 are one number).
// The output is for hashing, not for sending on. It lives here, beside
// CoveringGrants, because the grant store keeps only its hash
// (ArgumentsHash) and the match must use the very same form.
func CanonicalArguments(raw []byte) ([]byte, error) {
	if !json.Valid(raw) {
		return nil, fmt.Errorf("arguments: %w", ErrNotJSON)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("arguments: %v: %w", err, ErrNotJSON)
	}
	var b bytes.Buffer
	writeCanonical(&b, v)
	return b.Bytes(), nil
}

// HashCanonical is the digest a grant keeps of its exact arguments, from
// their canonical form: unpadded base64url of SHA-256.
func HashCanonical(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ArgumentsHash is HashCanonical of CanonicalArguments(raw); absent
// arguments (empty or white space) are a tool call's {}.
func ArgumentsHash(raw []byte) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	c, err := CanonicalArguments(raw)
	if err != nil {
		return "", err
	}
	return HashCanonical(c), nil
}

func writeCanonical(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case json.Number:
		b.WriteString(canonicalNumber(string(x)))
	case string:
		writeString(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			writeCanonical(b, x[k])
		}
		b.WriteByte('}')
	}
}

func writeString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a string always marshals
	b.Write(enc)
}

// canonicalNumber spells a JSON number as its exact rational value ("1",
// "-1/10"), unless its exponent is out of bounds.
func canonicalNumber(s string) string {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp := strings.TrimLeft(strings.TrimLeft(s[i+1:], "+-"), "0")
		if len(exp) > len(strconv.Itoa(maxCanonicalExponent)) {
			return "n:" + strings.ToLower(s)
		}
		if n, err := strconv.Atoi(exp); exp != "" && (err != nil || n > maxCanonicalExponent) {
			return "n:" + strings.ToLower(s)
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return "n:" + s
	}
	return r.RatString()
}
