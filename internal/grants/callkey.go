package grants

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// maxCanonicalExponent bounds the decimal exponent a number may have to be
// normalised exactly; a larger one (absurd in tool arguments) keeps its
// spelling, which can only keep two calls apart, never join them wrongly.
const maxCanonicalExponent = 400

// normalizeArguments checks raw is one JSON value and returns it compacted.
// For a tool call, absent or null arguments are {} (MCP's arguments member
// is an optional object: leaving it out means no arguments).
func normalizeArguments(kind Kind, raw json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		if kind == KindTool {
			return json.RawMessage(`{}`), nil
		}
		return nil, nil
	}
	if !json.Valid(trimmed) {
		return nil, fmt.Errorf("arguments are not valid JSON: %w", ErrInvalid)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, trimmed); err != nil {
		return nil, fmt.Errorf("arguments: %v: %w", err, ErrInvalid)
	}
	return b.Bytes(), nil
}

// CanonicalArguments writes a JSON value in a form where two values equal
// as JSON (the way policy compares a grant's arguments with a call's) are
// equal as bytes: object members sorted by name, no white space, strings
// re-escaped, numbers as exact rationals (1, 1.0 and 1e0 are one number).
// The output is for hashing, not for sending on.
func CanonicalArguments(raw []byte) ([]byte, error) {
	if !json.Valid(raw) {
		return nil, fmt.Errorf("arguments are not one valid JSON value: %w", ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("arguments are not valid JSON: %v: %w", err, ErrInvalid)
	}
	var b bytes.Buffer
	writeCanonical(&b, v)
	return b.Bytes(), nil
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

// callKey identifies a call for joining duplicates: same principal, agent
// client, target, tool or resource and canonical arguments.
func callKey(p Principal, target string, kind Kind, name string, canonicalArgs []byte) string {
	h := sha256.New()
	for _, part := range []string{p.Issuer, p.Subject, p.ClientID, target, string(kind), name} {
		// Length-prefixed, so no choice of strings can shift a boundary.
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	h.Write(canonicalArgs)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
