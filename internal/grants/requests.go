package grants

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/airlock-mcp/airlock/internal/policy"
)

// OpenParams describe a call that policy wants approved.
type OpenParams struct {
	Principal Principal
	Target    string // the target's name
	Kind      Kind
	Tool      string          // KindTool: params.name
	Resource  string          // KindResource: params.uri
	Arguments json.RawMessage // params.arguments as sent; nil when absent
	// Reason is the agent's stated reason (ReasonFromCall), raw: Open
	// cleans and masks it with the target's profile before anything keeps it.
	Reason string
	// Approval is the policy decision's approval settings.
	Approval policy.Approval
	// Session (MCP session id) and DecisionID (ext_authz decision id) are
	// kept for audit.
	Session    string
	DecisionID string
}

func (p *OpenParams) validate() error {
	var errs []error
	if p.Principal.Subject == "" {
		errs = append(errs, errors.New("the principal has no subject"))
	}
	if p.Target == "" {
		errs = append(errs, errors.New("no target"))
	}
	switch p.Kind {
	case KindTool:
		if p.Tool == "" {
			errs = append(errs, errors.New("a tool request names no tool"))
		}
	case KindResource:
		if p.Resource == "" {
			errs = append(errs, errors.New("a resource request names no resource URI"))
		}
		if len(p.Arguments) > 0 && strings.TrimSpace(string(p.Arguments)) != "null" {
			errs = append(errs, errors.New("a resource request carries no arguments"))
		}
	default:
		errs = append(errs, fmt.Errorf("kind %q: want tool or resource", p.Kind))
	}
	if len(p.Approval.ApproverGroups) == 0 {
		errs = append(errs, errors.New("the approval names no approver groups: nobody could approve"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("opening a request: %w: %w", errors.Join(errs...), ErrInvalid)
	}
	return nil
}

// Open opens an access request for a call, or joins the pending request
// for the same call (same principal, client, target, tool or resource, and
// arguments equal as JSON): joined is then true. It fails with
// ErrReasonRequired when policy wants a reason and the agent gave none,
// and with ErrTooManyPending past Config.MaxPendingPerPrincipal.
func (s *Service) Open(ctx context.Context, p OpenParams) (*Request, bool, error) {
	if err := p.validate(); err != nil {
		return nil, false, err
	}
	terms := TermsFrom(p.Approval)
	prof := s.profile(p.Target)
	reason := maskReason(prof, p.Reason)
	if err := checkOpenReason(terms, reason); err != nil {
		return nil, false, err
	}
	args, err := normalizeArguments(p.Kind, p.Arguments)
	if err != nil {
		return nil, false, err
	}
	canon, hash := []byte(nil), ""
	if args != nil {
		if canon, err = CanonicalArguments(args); err != nil {
			return nil, false, err
		}
		hash = policy.HashCanonical(canon)
	}
	shown := maskArguments(prof, args) // kept for display; hash is what matches
	name := p.Tool
	if p.Kind == KindResource {
		name = p.Resource
	}
	key := callKey(p.Principal, p.Target, p.Kind, name, canon)

	var out *Request
	joined := false
	err = s.update(ctx, func(tx *txn) error {
		s.mu.RLock()
		cur := s.requests[s.pending[key]]
		count := s.pendingBy[principalKey(p.Principal.Issuer, p.Principal.Subject)]
		s.mu.RUnlock()
		if cur != nil && cur.State == RequestPending {
			if tx.now.Before(cur.ExpiresAt) {
				n := cur.Clone()
				n.Joined++
				tx.putRequest(n)
				tx.emit(Event{Type: EventRequestJoined, Request: n})
				out, joined = n, true
				return nil
			}
			s.expireRequest(tx, cur) // overdue: the expirer has not got to it yet
			count--
		}
		if count >= s.cfg.MaxPendingPerPrincipal {
			return fmt.Errorf("%s has %d pending requests (the limit): %w", p.Principal.Subject, count, ErrTooManyPending)
		}
		r := &Request{
			ID: newID(RequestIDPrefix), State: RequestPending, Principal: p.Principal, Target: p.Target,
			Kind: p.Kind, Arguments: shown, ArgumentsHash: hash, Reason: reason, Terms: terms,
			CreatedAt: tx.now, ExpiresAt: tx.now.Add(s.cfg.PendingTTL), CallKey: key,
			Session: p.Session, DecisionID: p.DecisionID,
		}
		r.Principal.Groups = slices.Clone(p.Principal.Groups)
		if p.Kind == KindTool {
			r.Tool = p.Tool
		} else {
			r.Resource = p.Resource
		}
		tx.putRequest(r)
		tx.emit(Event{Type: EventRequestOpened, Request: r, Reason: reason})
		out = r
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return out.Clone(), joined, nil
}

// Wait returns the request once it has left pending, or when ctx ends (it
// then returns the request as it is, still pending, and ctx's error). It
// blocks on a channel closed by the transition: no polling, any number of
// waiters. ext_authz calls it from its gRPC handler with a context that
// carries the hold window; grpc-go runs each stream on its own goroutine
// (airlock does not set NumStreamWorkers), so a held call parks one
// goroutine and no worker.
func (s *Service) Wait(ctx context.Context, id string) (*Request, error) {
	s.mu.RLock()
	r, ch := s.requests[id], s.done[id]
	s.mu.RUnlock()
	if r == nil {
		return nil, notFound("request", id)
	}
	if r.State != RequestPending || ch == nil {
		return r.Clone(), nil
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return s.current(id, r), ctx.Err()
	case <-s.closed:
		return s.current(id, r), ErrClosed
	}
	return s.current(id, r), nil
}

// current is a copy of the record now, or of last if it has been pruned.
func (s *Service) current(id string, last *Request) *Request {
	if r := s.request(id); r != nil {
		return r.Clone()
	}
	return last.Clone()
}

// Decide records one approver's verdict under the approval rules (see
// judge): a deny ends the request at once, enough approvals (or one
// break-glass) approve it and issue the grant. Deciding a request that is
// not pending fails with ErrNotPending; one whose deadline has passed is
// expired first, so approval and expiry never both happen.
func (s *Service) Decide(ctx context.Context, id string, a Actor, v Verdict, rawReason string) (*Request, error) {
	return s.DecideScoped(ctx, id, a, v, rawReason, nil)
}

// DecideScoped is Decide with the scope an approver approves: nil approves
// the request's scope as the policy set it; a narrower one (see
// Scope.Narrow) limits the grant issued. A wider scope is refused with an
// error wrapping ErrWiden and records nothing. The scope is only read with
// an approve or break-glass verdict.
func (s *Service) DecideScoped(ctx context.Context, id string, a Actor, v Verdict, rawReason string, scope *Scope) (*Request, error) {
	var out *Request
	err := s.update(ctx, func(tx *txn) error {
		r := s.request(id)
		if r == nil {
			return notFound("request", id)
		}
		if r.State != RequestPending {
			return fmt.Errorf("request %s is %s: %w", id, r.State, ErrNotPending)
		}
		if !tx.now.Before(r.ExpiresAt) {
			s.expireRequest(tx, r)
			tx.after = fmt.Errorf("request %s expired at %s: %w", id, r.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"), ErrNotPending)
			return nil
		}
		reason := maskReason(s.profile(r.Target), rawReason)
		var narrowed *Scope
		if scope != nil && (v == VerdictApprove || v == VerdictBreakGlass) {
			ns, err := r.Terms.Scope().Narrow(*scope)
			if err != nil {
				return err
			}
			narrowed = &ns
		}
		d, next, err := judge(r, a, v, reason, tx.now)
		if err != nil {
			tx.notes = append(tx.notes, Event{Type: EventDecisionRefused, At: tx.now, Actor: a.Subject, Reason: err.Error(), Request: r.Clone()})
			return err
		}
		d.Scope = narrowed
		n := r.Clone()
		n.Decisions = append(n.Decisions, d)
		tx.putRequest(n)
		tx.emit(Event{Type: EventRequestDecision, Actor: a.Subject, Reason: reason, Decision: &d, Request: n})
		switch next {
		case RequestDenied:
			n.State = RequestDenied
			n.EndedAt, n.EndedBy = tx.now, a.Subject
			n.EndReason = "denied by " + a.Subject
			if reason != "" {
				n.EndReason += ": " + reason
			}
			tx.emit(Event{Type: EventRequestDenied, Actor: a.Subject, Reason: reason, Request: n})
		case RequestApproved:
			g := s.issue(n, tx)
			gs := grantScope(n)
			n.GrantedScope = &gs
			n.State = RequestApproved
			n.BreakGlass = v == VerdictBreakGlass
			n.GrantID = g.ID
			n.EndedAt, n.EndedBy = tx.now, a.Subject
			n.EndReason = "approved by " + strings.Join(g.ApprovedBy, ", ")
			if n.BreakGlass {
				n.EndReason = "break glass by " + a.Subject + ": " + reason
			}
			tx.emit(Event{Type: EventRequestApproved, Actor: a.Subject, Reason: reason, Request: n, Grant: g})
			tx.emit(Event{Type: EventGrantIssued, Actor: a.Subject, Request: n, Grant: g})
		}
		out = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out.Clone(), nil
}

// pinnedHash is the arguments hash a grant pinned to r's arguments
// carries. A tool call without arguments has the arguments {}: its grant
// pins {} too, so that pinning never reads as "any arguments" (a grant
// without a hash covers every call).
func pinnedHash(r *Request) string {
	if r.ArgumentsHash == "" && r.Kind == KindTool {
		h, _ := policy.ArgumentsHash(nil)
		return h
	}
	return r.ArgumentsHash
}

// grantScope is the scope the grant of an approved r gets: the terms'
// scope narrowed by every approver who narrowed it (the least of all).
func grantScope(r *Request) Scope {
	sc := r.Terms.Scope()
	for _, d := range r.Decisions {
		if d.Scope == nil || (d.Verdict != VerdictApprove && d.Verdict != VerdictBreakGlass) {
			continue
		}
		if d.Scope.Kind.rank() < sc.Kind.rank() {
			sc.Kind = d.Scope.Kind
		}
		if d.Scope.Duration > 0 && d.Scope.Duration < sc.Duration {
			sc.Duration = d.Scope.Duration
		}
	}
	if sc.Kind == ScopeCallOnce {
		sc.Duration = 0
	}
	return sc
}

// issue stages the grant an approval of r creates, with grantScope(r):
// expiry counted from now; call_once is single use with the exact
// arguments, tool_args pins the arguments for the duration, tool_any
// leaves them free.
func (s *Service) issue(r *Request, tx *txn) *Grant {
	g := &Grant{
		ID: newID(GrantIDPrefix), RequestID: r.ID, State: GrantActive,
		Subject: r.Principal.Subject, Issuer: r.Principal.Issuer, User: r.Principal.User, ClientID: r.Principal.ClientID,
		Target: r.Target, Kind: r.Kind, Tool: r.Tool, Resource: r.Resource,
		NotBefore: tx.now, CreatedAt: tx.now,
	}
	sc := grantScope(r)
	g.Expiry = tx.now.Add(time.Duration(sc.Duration))
	for _, d := range r.Decisions {
		if d.Verdict == VerdictApprove || d.Verdict == VerdictBreakGlass {
			g.ApprovedBy = append(g.ApprovedBy, d.Actor)
		}
		g.BreakGlass = g.BreakGlass || d.Verdict == VerdictBreakGlass
	}
	switch sc.Kind {
	case ScopeCallOnce:
		g.MaxUses = 1
		g.Arguments, g.ArgumentsHash = r.Arguments, pinnedHash(r)
		// A single-use grant the policy gave no duration lives only long
		// enough for the held call (or its retry).
		if r.Terms.GrantDuration == 0 {
			g.Expiry = tx.now.Add(s.cfg.SingleUseTTL)
		} else {
			g.Expiry = tx.now.Add(time.Duration(r.Terms.GrantDuration))
		}
	case ScopeToolArgs:
		g.Arguments, g.ArgumentsHash = r.Arguments, pinnedHash(r)
	}
	tx.putGrant(g)
	return g
}

// Cancel ends a pending request at its requester's wish.
func (s *Service) Cancel(ctx context.Context, id string, a Actor, rawReason string) (*Request, error) {
	var out *Request
	err := s.update(ctx, func(tx *txn) error {
		r := s.request(id)
		if r == nil {
			return notFound("request", id)
		}
		if r.State != RequestPending {
			return fmt.Errorf("request %s is %s: %w", id, r.State, ErrNotPending)
		}
		if err := mayCancel(r, a); err != nil {
			return err
		}
		reason := maskReason(s.profile(r.Target), rawReason)
		n := r.Clone()
		n.State = RequestCancelled
		n.EndedAt, n.EndedBy = tx.now, a.Subject
		n.EndReason = "cancelled by the requester"
		if reason != "" {
			n.EndReason += ": " + reason
		}
		tx.putRequest(n)
		tx.emit(Event{Type: EventRequestCancelled, Actor: a.Subject, Reason: reason, Request: n})
		out = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out.Clone(), nil
}

// Get returns a copy of request id.
func (s *Service) Get(_ context.Context, id string) (*Request, error) {
	r := s.request(id)
	if r == nil {
		return nil, notFound("request", id)
	}
	return r.Clone(), nil
}

// RequestFilter selects requests; zero fields match everything.
type RequestFilter struct {
	States  []RequestState
	Subject string // the requester
	// Issuer, with Subject, narrows to the requester (Issuer, Subject),
	// compared canonically; empty matches any issuer.
	Issuer string
	Target string
	// DecidableBy keeps the requests these groups may decide (approver or
	// break-glass groups): an approver's inbox.
	DecidableBy []string
	Limit       int // at most this many, newest first; 0: all
}

func (f *RequestFilter) match(r *Request) bool {
	return (len(f.States) == 0 || slices.Contains(f.States, r.State)) &&
		(f.Subject == "" || samePrincipal(f.Issuer, f.Subject, r.Principal.Issuer, r.Principal.Subject)) &&
		(f.Target == "" || f.Target == r.Target) &&
		(len(f.DecidableBy) == 0 || len(intersect(f.DecidableBy, r.Terms.ApproverGroups)) > 0 ||
			len(intersect(f.DecidableBy, r.Terms.BreakGlassGroups)) > 0)
}

// List returns copies of the matching requests, newest first.
func (s *Service) List(_ context.Context, f RequestFilter) ([]*Request, error) {
	s.mu.RLock()
	var out []*Request
	for _, r := range s.requests {
		if f.match(r) {
			out = append(out, r)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Request) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	for i, r := range out {
		out[i] = r.Clone()
	}
	return out, nil
}
