package grants

import (
	"context"
	"time"

	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// Identity: a person (or an agent client) is the pair (issuer, subject): a
// subject is unique only within its issuer, so the same sub from two
// issuers is two principals. Issuers compare canonically
// (identity.CanonicalIssuer: scheme and host case, default port and
// trailing slash do not matter).
//
// An empty issuer matches on the subject alone. Records written before
// airlock kept issuers on grants and decisions have none (a grant's is
// taken from its request when loaded), and so have actors built in process
// by callers that name none; every token-verified principal has one.

// samePrincipal reports whether (issA, subA) and (issB, subB) are one
// principal.
func samePrincipal(issA, subA, issB, subB string) bool {
	if subA == "" || subA != subB {
		return false
	}
	return issA == "" || issB == "" || identity.SameIssuer(issA, issB)
}

// principalKey indexes per-principal counts: the canonical issuer and the
// subject.
func principalKey(issuer, subject string) string {
	return identity.CanonicalIssuer(issuer) + "\x00" + subject
}

// Is reports whether (issuer, subject) is p (issuers compared
// canonically; an empty issuer on either side matches on the subject
// alone).
func (p Principal) Is(issuer, subject string) bool {
	return samePrincipal(issuer, subject, p.Issuer, p.Subject)
}

// isRequester reports whether a is the principal who asked for r.
func (a Actor) isRequester(r *Request) bool {
	return samePrincipal(a.Issuer, a.Subject, r.Principal.Issuer, r.Principal.Subject)
}

// HeldBy reports whether (issuer, subject) is the principal g was issued
// to (issuers compared canonically; an empty issuer on either side
// matches on the subject alone).
func (g *Grant) HeldBy(issuer, subject string) bool {
	return samePrincipal(issuer, subject, g.Issuer, g.Subject)
}

// ActiveForPrincipal returns p's grants on target that may allow a call
// at now and were issued for requests from p's agent client (p.ClientID):
// the grants whose holder is (p.Issuer, p.Subject), compared canonically.
// ext_authz passes grants.PrincipalFrom(the verified token).
func (s *Service) ActiveForPrincipal(_ context.Context, p Principal, target string, now time.Time) ([]policy.GrantInput, error) {
	return s.activeGrants(p.Issuer, p.Subject, p.ClientID, target, now, true), nil
}

// ConsumeFor is Consume for the principal p: the grant must have been
// issued to (p.Issuer, p.Subject), compared canonically; a grant held by
// the same subject of another issuer answers ErrNotFound.
func (s *Service) ConsumeFor(ctx context.Context, id string, p Principal) (*Grant, error) {
	return s.consume(ctx, id, p.Issuer, p.Subject)
}

// legacyGrantIssuers gives grants loaded without an issuer (written before
// airlock kept one) the issuer of the request they came from, when that
// request is still kept.
func legacyGrantIssuers(snap *Snapshot) {
	var issuerOf map[string]string
	for i := range snap.Grants {
		g := &snap.Grants[i]
		if g.Issuer != "" {
			continue
		}
		if issuerOf == nil {
			issuerOf = make(map[string]string, len(snap.Requests))
			for _, r := range snap.Requests {
				issuerOf[r.ID] = r.Principal.Issuer
			}
		}
		g.Issuer = issuerOf[g.RequestID]
	}
}
