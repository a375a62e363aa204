package grants

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/airlock-mcp/airlock/internal/policy"
)

// Active returns the subject's grants on target that may allow a call at
// now: active, within not-before and expiry, not used up. The policy sees
// these as input.grants and no longer checks expiry itself. A grant
// matches any agent client of the subject, and any issuer.
//
// Deprecated: a subject is unique only within its issuer; use
// ActiveForPrincipal.
func (s *Service) Active(_ context.Context, subject, target string, now time.Time) ([]policy.GrantInput, error) {
	return s.activeGrants("", subject, "", target, now, false), nil
}

// ActiveForClient is Active limited to grants issued for requests from
// this agent client: a grant approved for one agent does not let another
// agent of the same user through.
//
// Deprecated: it ignores the issuer; use ActiveForPrincipal.
func (s *Service) ActiveForClient(_ context.Context, subject, clientID, target string, now time.Time) ([]policy.GrantInput, error) {
	return s.activeGrants("", subject, clientID, target, now, true), nil
}

// activeGrants lists the usable grants of (issuer, subject) on target; an
// empty issuer matches grants of any issuer.
func (s *Service) activeGrants(issuer, subject, clientID, target string, now time.Time, byClient bool) []policy.GrantInput {
	s.mu.RLock()
	list := s.active[activeKey(subject, target)]
	s.mu.RUnlock()
	if len(list) == 0 {
		return nil
	}
	out := make([]policy.GrantInput, 0, len(list))
	for _, g := range list { // the slice is never changed in place
		if g.usable(now) && (!byClient || g.ClientID == clientID) && g.HeldBy(issuer, subject) {
			out = append(out, g.Input())
		}
	}
	return out
}

// Consume uses grant id for one call by subject (the grant's holder). A
// single-use grant is consumed durably, exactly once however many calls
// race for it: the others get ErrGrantUsed. A time-bound grant is checked
// and its use counted (in memory; each use is a grant.used event).
// ErrGrantEnded means expired, revoked or not yet valid; ErrNotFound an
// unknown grant or one held by someone else.
//
// Deprecated: it matches the holder by subject under any issuer; use
// ConsumeFor.
func (s *Service) Consume(ctx context.Context, id, subject string) (*Grant, error) {
	return s.consume(ctx, id, "", subject)
}

// consume is Consume for (issuer, subject); an empty issuer matches any.
func (s *Service) consume(ctx context.Context, id, issuer, subject string) (*Grant, error) {
	g, uses := s.grant(id)
	if g == nil || !g.HeldBy(issuer, subject) {
		return nil, notFound("grant", id)
	}
	now := s.now()
	if err := usableAt(g, now); err != nil {
		return nil, err
	}
	if g.MaxUses == 0 {
		if uses == nil {
			return nil, fmt.Errorf("grant %s is %s: %w", id, GrantExpired, ErrGrantEnded) // ended since it was read
		}
		c := g.Clone()
		c.Uses = int(uses.Add(1))
		s.send([]Event{{Type: EventGrantUsed, At: now, Actor: subject, Grant: c}})
		return c, nil
	}
	var out *Grant
	err := s.update(ctx, func(tx *txn) error {
		g, _ := s.grant(id) // again, under the write lock: this is what makes it exactly once
		if g == nil {
			return notFound("grant", id)
		}
		if err := usableAt(g, tx.now); err != nil {
			return err
		}
		n := g.Clone()
		n.Uses++
		if n.Uses >= n.MaxUses {
			n.State = GrantConsumed
			n.EndedAt, n.EndedBy = tx.now, subject
			n.EndReason = "used"
		}
		tx.putGrant(n)
		tx.emit(Event{Type: EventGrantConsumed, Actor: subject, Grant: n})
		out = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out.Clone(), nil
}

// usableAt explains why g cannot allow a call at now, or returns nil.
func usableAt(g *Grant, now time.Time) error {
	switch {
	case g.State == GrantConsumed || (g.State == GrantActive && g.MaxUses > 0 && g.Uses >= g.MaxUses):
		return fmt.Errorf("grant %s: %w", g.ID, ErrGrantUsed)
	case g.State != GrantActive:
		return fmt.Errorf("grant %s is %s: %w", g.ID, g.State, ErrGrantEnded)
	case now.Before(g.NotBefore):
		return fmt.Errorf("grant %s is not valid before %s: %w", g.ID, g.NotBefore.UTC().Format(time.RFC3339), ErrGrantEnded)
	case !now.Before(g.Expiry):
		return fmt.Errorf("grant %s expired at %s: %w", g.ID, g.Expiry.UTC().Format(time.RFC3339), ErrGrantEnded)
	}
	return nil
}

// Revoke ends an active grant. The holder may give it up; members of the
// approver or break-glass groups of its request may take it away.
func (s *Service) Revoke(ctx context.Context, id string, a Actor, rawReason string) (*Grant, error) {
	var out *Grant
	err := s.update(ctx, func(tx *txn) error {
		g, uses := s.grant(id)
		if g == nil {
			return notFound("grant", id)
		}
		if g.State != GrantActive {
			return fmt.Errorf("grant %s is %s: %w", id, g.State, ErrGrantEnded)
		}
		var terms Terms
		if r := s.request(g.RequestID); r != nil {
			terms = r.Terms
		}
		if err := mayRevoke(g, terms, a); err != nil {
			return err
		}
		reason := maskReason(s.profile(g.Target), rawReason)
		n := s.grantView(g, uses)
		n.State = GrantRevoked
		n.EndedAt, n.EndedBy = tx.now, a.Subject
		n.EndReason = "revoked by " + a.Subject
		if reason != "" {
			n.EndReason += ": " + reason
		}
		tx.putGrant(n)
		tx.emit(Event{Type: EventGrantRevoked, Actor: a.Subject, Reason: reason, Grant: n})
		out = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out.Clone(), nil
}

// GetGrant returns a copy of grant id.
func (s *Service) GetGrant(_ context.Context, id string) (*Grant, error) {
	g, uses := s.grant(id)
	if g == nil {
		return nil, notFound("grant", id)
	}
	return s.grantView(g, uses), nil
}

// GrantFilter selects grants; zero fields match everything.
type GrantFilter struct {
	States  []GrantState
	Subject string // the holder
	// Issuer, with Subject, narrows to the holder (Issuer, Subject),
	// compared canonically; empty matches any issuer.
	Issuer    string
	Target    string
	RequestID string
	Limit     int // at most this many, newest first; 0: all
}

func (f *GrantFilter) match(g *Grant) bool {
	return (len(f.States) == 0 || slices.Contains(f.States, g.State)) &&
		(f.Subject == "" || g.HeldBy(f.Issuer, f.Subject)) &&
		(f.Target == "" || f.Target == g.Target) &&
		(f.RequestID == "" || f.RequestID == g.RequestID)
}

// ListGrants returns copies of the matching grants, newest first.
func (s *Service) ListGrants(_ context.Context, f GrantFilter) ([]*Grant, error) {
	s.mu.RLock()
	var out []*Grant
	for _, e := range s.grants {
		if f.match(e.g) {
			out = append(out, s.grantView(e.g, e.uses))
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Grant) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// HoldOutcome is how a held call ends.
type HoldOutcome string

// Hold outcomes.
const (
	// HoldAllowed: approved in time; Grant is set and already used for this call.
	HoldAllowed HoldOutcome = "allowed"
	// HoldPending: the window passed; tell the agent to retry once approved (URL).
	HoldPending HoldOutcome = "pending"
	// HoldDenied, HoldExpired, HoldCancelled: the request ended so; see Request.EndReason.
	HoldDenied    HoldOutcome = "denied"
	HoldExpired   HoldOutcome = "expired"
	HoldCancelled HoldOutcome = "cancelled"
	// HoldGrantUsed: approved, but an identical call held with this one
	// used the single-use grant first; this call needs its own approval.
	HoldGrantUsed HoldOutcome = "grant_used"
)

// HoldResult is what Hold says about one held call.
type HoldResult struct {
	Outcome HoldOutcome
	Request *Request
	Joined  bool   // the call joined a request already pending
	Grant   *Grant // HoldAllowed: the grant the call proceeds under
	URL     string // the request's approval page
}

// Hold is the whole hold for ext_authz: open (or join) the request, wait
// up to the hold window (or until ctx ends, if sooner) for its outcome,
// and on approval use the grant for this call. A ctx that ends before the
// window does is returned as an error (Envoy gave up); the window passing
// is HoldPending.
func (s *Service) Hold(ctx context.Context, p OpenParams) (res *HoldResult, err error) {
	if m := s.metrics; m != nil {
		start := time.Now()
		defer func() {
			outcome := holdError
			if err == nil {
				outcome = string(res.Outcome)
			}
			m.hold(outcome, time.Since(start))
		}()
	}
	return s.hold(ctx, p)
}

func (s *Service) hold(ctx context.Context, p OpenParams) (*HoldResult, error) {
	r, joined, err := s.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	res := &HoldResult{Outcome: HoldPending, Request: r, Joined: joined, URL: s.ApprovalURL(r.ID)}
	if s.cfg.HoldWindow > 0 {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.HoldWindow)
		r, err = s.Wait(wctx, r.ID)
		cancel()
		if err != nil && (ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded)) {
			return nil, err
		}
		res.Request = r
	}
	switch res.Request.State {
	case RequestPending:
	case RequestDenied:
		res.Outcome = HoldDenied
	case RequestExpired:
		res.Outcome = HoldExpired
	case RequestCancelled:
		res.Outcome = HoldCancelled
	case RequestApproved:
		g, err := s.ConsumeFor(ctx, res.Request.GrantID, res.Request.Principal)
		switch {
		case errors.Is(err, ErrGrantUsed):
			res.Outcome = HoldGrantUsed
		case err != nil:
			return nil, err
		default:
			res.Outcome, res.Grant = HoldAllowed, g
		}
	}
	return res, nil
}
