package identity

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// maxTokenBytes bounds what is parsed at all. Okta access tokens are 1–2 KB;
// Envoy's default header limit is 60 KiB.
const maxTokenBytes = 64 << 10

// peeked is what is read from a token before its signature is checked:
// enough to choose the issuer, its keys and its algorithm allow-list, and
// nothing else is trusted from it.
type peeked struct {
	alg string
	kid string
	iss string
}

// peek parses a compact JWS (RFC 7515 section 7.1) without verifying it.
// It accepts only the compact form with exactly three base64url segments:
// go-jose's ParseSigned would also take the JSON serialization and strip
// whitespace, which a bearer token never needs. Errors have Reason
// malformed, or invalid_claims when the payload is a JSON object whose iss
// is missing or not a string.
func peek(raw string) (peeked, *Error) {
	if len(raw) > maxTokenBytes {
		return peeked{}, errorf(ReasonMalformed, "token is %d bytes, more than the %d accepted", len(raw), maxTokenBytes)
	}
	dots := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '.':
			dots++
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return peeked{}, errorf(ReasonMalformed, "token has a character outside the base64url alphabet at byte %d: not a compact JWT", i)
		}
	}
	switch dots {
	case 2:
	case 4:
		return peeked{}, errorf(ReasonMalformed, "token has 5 segments: encrypted tokens (JWE) are not accepted, only signed JWTs")
	default:
		return peeked{}, errorf(ReasonMalformed, "token has %d segments, a signed JWT has 3", dots+1)
	}
	h64, rest, _ := strings.Cut(raw, ".")
	p64, _, _ := strings.Cut(rest, ".")

	hb, err := base64.RawURLEncoding.DecodeString(h64)
	if err != nil {
		return peeked{}, errorf(ReasonMalformed, "token header is not base64url: %v", err)
	}
	if !isJSONObject(hb) {
		return peeked{}, errorf(ReasonMalformed, "token header is not a JSON object")
	}
	var h struct {
		Alg *string `json:"alg"`
		Kid *string `json:"kid"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return peeked{}, errorf(ReasonMalformed, "token header: %v", err)
	}
	if h.Alg == nil || *h.Alg == "" {
		return peeked{}, errorf(ReasonMalformed, "token header has no alg")
	}
	p := peeked{alg: *h.Alg}
	if h.Kid != nil {
		p.kid = *h.Kid
	}

	pb, err := base64.RawURLEncoding.DecodeString(p64)
	if err != nil {
		return peeked{}, errorf(ReasonMalformed, "token payload is not base64url: %v", err)
	}
	if !isJSONObject(pb) {
		return peeked{}, errorf(ReasonMalformed, "token payload is not a JSON object")
	}
	var c struct {
		Iss json.RawMessage `json:"iss"`
	}
	if err := json.Unmarshal(pb, &c); err != nil {
		return peeked{}, errorf(ReasonMalformed, "token payload: %v", err)
	}
	if c.Iss == nil {
		return peeked{}, errorf(ReasonInvalidClaims, "token has no iss claim")
	}
	if err := json.Unmarshal(c.Iss, &p.iss); err != nil || p.iss == "" {
		return peeked{}, errorf(ReasonInvalidClaims, "token iss claim is not a non-empty string")
	}
	return p, nil
}

// isJSONObject reports whether b starts like a JSON object; json.Unmarshal
// checks the rest (it would accept a bare null as an empty struct).
func isJSONObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}
