package extauthz

import (
	"context"
	"errors"
	"strings"

	"github.com/airlock-mcp/airlock/internal/identity"
)

// IssuerAudienceVerifier is a Verifier that can also accept the token
// issuer's own audiences (identity.Verifier's VerifyFor). Only a target
// with accept_issuer_audiences asks for them; with a Verifier that cannot,
// such a target accepts its resource URI alone (fail closed).
type IssuerAudienceVerifier interface {
	VerifyFor(ctx context.Context, raw string, audiences []string, issuerAudiences bool) (*identity.Principal, error)
}

// verify checks the token for target t: its resource URI, and the
// issuer-level audiences only when t opts in.
func (a *Authorizer) verify(ctx context.Context, t *target, raw string) (*identity.Principal, error) {
	if t.issuerAudiences {
		if v, ok := a.verifier.(IssuerAudienceVerifier); ok {
			return v.VerifyFor(ctx, raw, t.audiences, true)
		}
	}
	return a.verifier.Verify(ctx, raw, t.audiences)
}

// publicReason is the coarse reason a rejected token's caller is told;
// the verifier's precise one (safeReason) goes to the log and the audit.
func publicReason(err error) string {
	switch identity.ReasonOf(err) {
	case identity.ReasonMissingToken:
		return "no bearer token in the Authorization header"
	case identity.ReasonMalformed:
		return "the token is malformed"
	case identity.ReasonExpired:
		return "the token has expired"
	case identity.ReasonNotYetValid:
		return "the token is not yet valid"
	case identity.ReasonBadSignature, identity.ReasonUnsupportedAlgorithm:
		return "the token's signature could not be verified"
	case identity.ReasonIssuerUnavailable:
		return "the token could not be verified now; retry later"
	default: // unknown issuer, wrong audience, invalid claims, anything new
		return reasonNotForResource
	}
}

// safeReason is the verifier's explanation, which identity guarantees holds
// no token material.
func safeReason(err error) string {
	var ie *identity.Error
	if errors.As(err, &ie) {
		return ie.Error()
	}
	return "the token could not be verified"
}

func bearer(h string) (string, bool) {
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(p):])
	return tok, tok != ""
}

func missingScopes(required, have []string) []string {
	var missing []string
	for _, r := range required {
		found := false
		for _, h := range have {
			if h == r {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, r)
		}
	}
	return missing
}
