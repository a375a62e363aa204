package grants

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/airlock-mcp/airlock/internal/policy"
)

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
// as JSON are equal as bytes (see policy.CanonicalArguments, which it is,
// with this package's ErrInvalid).
func CanonicalArguments(raw []byte) ([]byte, error) {
	c, err := policy.CanonicalArguments(raw)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalid)
	}
	return c, nil
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
