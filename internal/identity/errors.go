package identity

import (
	"errors"
	"fmt"
)

// Reason classifies why a token was rejected. The values are stable: they
// go into denial responses, metrics and audit records.
type Reason string

// The reasons a token is rejected.
const (
	ReasonMissingToken         Reason = "missing_token"
	ReasonMalformed            Reason = "malformed"
	ReasonUnknownIssuer        Reason = "unknown_issuer"
	ReasonUnsupportedAlgorithm Reason = "unsupported_algorithm"
	ReasonBadSignature         Reason = "bad_signature"
	ReasonExpired              Reason = "expired"
	ReasonNotYetValid          Reason = "not_yet_valid"
	ReasonWrongAudience        Reason = "wrong_audience"
	ReasonIssuerUnavailable    Reason = "issuer_unavailable"
	ReasonInvalidClaims        Reason = "invalid_claims"
)

// Error is a rejected token. Detail says precisely what failed, for the
// agent and for a human; it never contains the token itself.
type Error struct {
	Reason Reason
	Detail string
}

func (e *Error) Error() string { return "token rejected (" + string(e.Reason) + "): " + e.Detail }

// ReasonOf returns the Reason of an *Error in err's chain, or "" if there is none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func errorf(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// maxQuoted bounds how much of an unverified, attacker-controlled value
// (an iss, a kid) is echoed into a Detail.
const maxQuoted = 128

// quote renders an untrusted string for a Detail: quoted, escaped and cut to
// maxQuoted bytes.
func quote(s string) string {
	if len(s) > maxQuoted {
		return fmt.Sprintf("%q…", s[:maxQuoted])
	}
	return fmt.Sprintf("%q", s)
}
