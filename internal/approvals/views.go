package approvals

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/mask"
)

// viewer is who is looking or acting: from an API token or an inbox
// session. The person is the pair (Issuer, Subject).
type viewer struct {
	Issuer   string
	Subject  string
	User     string
	ClientID string
	Groups   []string
}

func viewerFrom(p *identity.Principal) viewer {
	return viewer{Issuer: p.Issuer, Subject: p.Subject, User: p.User, ClientID: p.ClientID, Groups: p.Groups}
}

func (v viewer) actor() grants.Actor {
	return grants.Actor{Issuer: v.Issuer, Subject: v.Subject, User: v.User, ClientID: v.ClientID, Groups: slices.Clone(v.Groups)}
}

func intersects(have, want []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

func same(a, b string) bool { return a != "" && a == b }

// owns reports whether v is the requester of r, the pair (issuer,
// subject) compared canonically, or the agent client itself under the
// same issuer: what gives the requester's rights (seeing the request as
// one's own). The same subject from another issuer is someone else.
func owns(v viewer, r *grants.Request) bool {
	p := r.Principal
	return p.Is(v.Issuer, v.Subject) || (p.ClientID != "" && grants.Principal{Issuer: p.Issuer, Subject: p.ClientID}.Is(v.Issuer, v.Subject))
}

// asked reports whether v may be the person (or the agent client itself)
// who asked for r, for refusing a decision: it is wider than owns, on
// purpose, since it only ever refuses. It ignores the issuer (the inbox's
// sign-in issuer is often not the one that mints API tokens: Okta's org
// server and a custom authorization server name one person by the same
// user id), and beyond the subject it matches the user id across the two
// namespaces an IdP may use (Okta: an access token's sub is the login, an
// ID token's sub the user id, which access tokens carry as uid), so a
// requester signed in to the inbox cannot approve their own request under
// their other identifier.
func asked(v viewer, r *grants.Request) bool {
	p := r.Principal
	return same(v.Subject, p.Subject) || same(v.Subject, p.User) || same(v.User, p.Subject) ||
		same(v.User, p.User) || same(v.Subject, p.ClientID)
}

// isRequester is asked, or acting through the agent client that asked
// (the grants rules refuse that too).
func isRequester(v viewer, r *grants.Request) bool {
	return asked(v, r) || same(v.ClientID, r.Principal.ClientID)
}

// canSeeRequest: the requester and the request's approver and break-glass
// groups.
func canSeeRequest(v viewer, r *grants.Request) bool {
	return owns(v, r) || intersects(v.Groups, r.Terms.ApproverGroups) || intersects(v.Groups, r.Terms.BreakGlassGroups)
}

// canDecide: a pending request v is eligible to approve or deny (the
// Service still judges the verdict).
func canDecide(v viewer, r *grants.Request) bool {
	return r.State == grants.RequestPending && !isRequester(v, r) &&
		(intersects(v.Groups, r.Terms.ApproverGroups) || intersects(v.Groups, r.Terms.BreakGlassGroups))
}

// canSeeGrant: the holder (issuer and subject) and the approver and break-glass groups of the
// grant's request (when it is still kept).
func (h *Handler) canSeeGrant(ctx context.Context, v viewer, g *grants.Grant) bool {
	if g.HeldBy(v.Issuer, v.Subject) {
		return true
	}
	r, err := h.grants.Get(ctx, g.RequestID)
	return err == nil && (intersects(v.Groups, r.Terms.ApproverGroups) || intersects(v.Groups, r.Terms.BreakGlassGroups))
}

// profile is the masking profile of target: its configured one, or
// strict for a target airlock does not know.
func (h *Handler) profile(target string) *mask.Profile {
	if p, ok := h.profiles[target]; ok {
		return p
	}
	return h.strict
}

// unreadable stands in for arguments that do not parse (they always do:
// the Service stores compacted JSON), so nothing unmasked leaves.
var unreadable = json.RawMessage(`"[MASKED:unreadable]"`)

func maskArgs(p *mask.Profile, args json.RawMessage) json.RawMessage {
	if len(args) == 0 {
		return args
	}
	out, _, err := p.MaskJSON(args)
	if err != nil {
		return unreadable
	}
	return out
}

func maskText(p *mask.Profile, s string) string {
	if s == "" {
		return s
	}
	out, _ := p.MaskText([]byte(s))
	return string(out)
}

// maskRequest is a copy of r fit to show: arguments and every reason
// masked by the target's profile. The grant service masked them as they
// entered; this is the backstop on the way out.
func (h *Handler) maskRequest(r *grants.Request) *grants.Request {
	if r == nil {
		return nil
	}
	p := h.profile(r.Target)
	c := *r
	c.Arguments = maskArgs(p, r.Arguments)
	c.Reason = maskText(p, r.Reason)
	c.EndReason = maskText(p, r.EndReason)
	c.Decisions = slices.Clone(r.Decisions)
	for i := range c.Decisions {
		c.Decisions[i].Reason = maskText(p, c.Decisions[i].Reason)
	}
	return &c
}

// maskGrant is a copy of g with its pinned arguments and end reason masked.
func (h *Handler) maskGrant(g *grants.Grant) *grants.Grant {
	if g == nil {
		return nil
	}
	p := h.profile(g.Target)
	c := *g
	c.Arguments = maskArgs(p, g.Arguments)
	c.EndReason = maskText(p, g.EndReason)
	return &c
}

// eventFor is e as v may see it (masked), or false when v may not.
// Refused decisions are audit records, not news: never streamed.
func (h *Handler) eventFor(ctx context.Context, v viewer, e grants.Event) (grants.Event, bool) {
	if e.Type == grants.EventDecisionRefused {
		return e, false
	}
	switch {
	case e.Request != nil:
		if !canSeeRequest(v, e.Request) {
			return e, false
		}
	case e.Grant != nil:
		if !h.canSeeGrant(ctx, v, e.Grant) {
			return e, false
		}
	default:
		return e, false
	}
	if e.Request != nil {
		e.Reason = maskText(h.profile(e.Request.Target), e.Reason)
	} else {
		e.Reason = maskText(h.profile(e.Grant.Target), e.Reason)
	}
	e.Request = h.maskRequest(e.Request)
	e.Grant = h.maskGrant(e.Grant)
	return e, true
}
