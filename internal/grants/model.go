// Package grants owns just-in-time access: access requests opened when
// policy says a call needs a human, the approval rules that decide them,
// the grants an approval issues, and where all of that is kept.
//
// A Request is pending until approvers decide it, it expires, or the
// requester cancels it. An approval issues a Grant, as small as policy
// says and as the request's Scope states: this exact call once, this tool
// with these arguments for a while, or this tool (or resource) with any
// arguments for a while; an approver may narrow it, never widen it. A Grant is active until it is used up, expires or
// is revoked. The Service applies every transition through a Store (the
// crash-safe FileStore by default, MemStore in tests), tells waiting calls
// without polling, expires deadlines with one timer, and reports each step
// to an Auditor, a Notifier and subscribers. docs/grants.md describes the
// model, the state machines and the rules.
package grants

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// RequestState is where an access request is in its life.
type RequestState string

// Request states. Pending is the only one that changes.
const (
	RequestPending   RequestState = "pending"
	RequestApproved  RequestState = "approved"
	RequestDenied    RequestState = "denied"
	RequestExpired   RequestState = "expired"
	RequestCancelled RequestState = "cancelled"
)

// GrantState is where a grant is in its life.
type GrantState string

// Grant states. Active is the only one that changes.
const (
	GrantActive   GrantState = "active"
	GrantConsumed GrantState = "consumed" // a single-use grant was used
	GrantExpired  GrantState = "expired"
	GrantRevoked  GrantState = "revoked"
)

// Kind is what a request or grant is about.
type Kind string

// Kinds: a tool (tools/call, by name) or a resource (resources/read and
// resources/subscribe, by URI).
const (
	KindTool     Kind = "tool"
	KindResource Kind = "resource"
)

// Verdict is what an approver says.
type Verdict string

// Verdicts. BreakGlass approves alone, whatever the threshold; only members
// of the request's break-glass groups may give it, always with a reason.
const (
	VerdictApprove    Verdict = "approve"
	VerdictDeny       Verdict = "deny"
	VerdictBreakGlass Verdict = "break_glass"
)

// Principal is who asked: the user behind the call and the agent's OAuth
// client. The requester is the pair (Issuer, Subject).
type Principal struct {
	Issuer   string   `json:"issuer,omitempty"`
	Subject  string   `json:"subject"`
	User     string   `json:"user,omitempty"`
	ClientID string   `json:"client_id,omitempty"`
	Groups   []string `json:"groups,omitempty"`
}

// PrincipalFrom takes the fields a request keeps from a verified token.
func PrincipalFrom(p *identity.Principal) Principal {
	if p == nil {
		return Principal{}
	}
	return Principal{Issuer: p.Issuer, Subject: p.Subject, User: p.User, ClientID: p.ClientID, Groups: slices.Clone(p.Groups)}
}

// Actor is who decides, cancels or revokes: a person at the CLI, the API
// or the inbox, as their token says; the pair (Issuer, Subject).
type Actor struct {
	Issuer   string   `json:"issuer,omitempty"`
	Subject  string   `json:"subject"`
	User     string   `json:"user,omitempty"`
	ClientID string   `json:"client_id,omitempty"` // the OAuth client the actor used (CLI, inbox)
	Groups   []string `json:"groups,omitempty"`
}

// ActorFrom takes the fields an actor is judged by from a verified token.
func ActorFrom(p *identity.Principal) Actor {
	if p == nil {
		return Actor{}
	}
	return Actor{Issuer: p.Issuer, Subject: p.Subject, User: p.User, ClientID: p.ClientID, Groups: slices.Clone(p.Groups)}
}

// Decision is one approver's verdict on a request.
type Decision struct {
	Actor string `json:"actor"` // subject
	// Issuer is the actor's issuer (absent in records written before
	// airlock kept it).
	Issuer  string  `json:"issuer,omitempty"`
	User    string  `json:"user,omitempty"`
	Verdict Verdict `json:"verdict"`
	// Groups are the actor's groups that made them eligible (approver or
	// break-glass groups of the request), not all their groups.
	Groups []string `json:"groups"`
	// Reason is the approver's reason, masked with the target's profile.
	Reason string `json:"reason,omitempty"`
	// Scope, when set, is the narrower scope this approver approved (see
	// Scope.Narrow); the grant gets the narrowest of the approvers'.
	Scope *Scope    `json:"scope,omitempty"`
	At    time.Time `json:"at"`
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("15m0s").
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"15m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Terms are the approval rules policy set for a request (policy.Approval,
// kept with the request so it is decided by the rules it was opened under).
type Terms struct {
	ApproverGroups []string `json:"approver_groups"`
	Threshold      int      `json:"threshold"`
	GrantDuration  Duration `json:"grant_duration"` // zero: single use
	SingleUse      bool     `json:"single_use"`
	// PinArguments limits a time-bound grant to the held call's arguments;
	// false (and in records written before airlock kept it) lets the grant
	// cover the tool with any arguments. See Scope.
	PinArguments     bool     `json:"pin_arguments,omitempty"`
	ReasonRequired   bool     `json:"reason_required"`
	BreakGlassGroups []string `json:"break_glass_groups,omitempty"`
}

// TermsFrom converts policy's approval settings.
func TermsFrom(a policy.Approval) Terms {
	t := Terms{
		ApproverGroups: slices.Clone(a.ApproverGroups), Threshold: a.Threshold,
		GrantDuration: Duration(a.GrantDuration), SingleUse: a.SingleUse || a.GrantDuration == 0,
		PinArguments:   a.PinArguments,
		ReasonRequired: a.ReasonRequired, BreakGlassGroups: slices.Clone(a.BreakGlassGroups),
	}
	if t.Threshold < 1 {
		t.Threshold = 1
	}
	return t
}

// Request is an access request: one held call waiting for people.
type Request struct {
	ID string `json:"id"`
	// Version counts the stored versions of this record (1 when opened);
	// stores use it to refuse a lost update.
	Version   uint64       `json:"version"`
	State     RequestState `json:"state"`
	Principal Principal    `json:"principal"`
	Target    string       `json:"target"`
	Kind      Kind         `json:"kind"`
	Tool      string       `json:"tool,omitempty"`     // KindTool
	Resource  string       `json:"resource,omitempty"` // KindResource: the URI
	// Arguments are the call's params.arguments (compacted), masked with
	// the target's profile; nil when the call had none. The raw arguments
	// are never kept: ArgumentsHash identifies them.
	Arguments json.RawMessage `json:"arguments,omitempty"`
	// ArgumentsHash is policy.HashCanonical of the exact arguments'
	// canonical form; "" when the call had none.
	ArgumentsHash string `json:"arguments_sha256,omitempty"`
	// Reason is the agent's stated reason (see ReasonFromCall), masked.
	Reason string `json:"reason,omitempty"`
	Terms  Terms  `json:"terms"`
	// GrantedScope is the scope of the grant an approval issued (the
	// terms' scope, narrowed by the approvers); nil until approved.
	GrantedScope *Scope     `json:"granted_scope,omitempty"`
	Decisions    []Decision `json:"decisions,omitempty"`
	// BreakGlass is set when a break-glass verdict approved the request.
	BreakGlass bool      `json:"break_glass,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"` // a pending request expires then
	// EndedAt is when the request left pending; EndedBy the subject that
	// ended it ("" when airlock did: expiry); EndReason why, in words.
	EndedAt   time.Time `json:"ended_at,omitzero"`
	EndedBy   string    `json:"ended_by,omitempty"`
	EndReason string    `json:"end_reason,omitempty"`
	GrantID   string    `json:"grant_id,omitempty"` // the grant an approval issued
	// CallKey identifies the call (principal, client, target, tool or
	// resource, canonical arguments); a second identical call joins.
	CallKey string `json:"call_key"`
	// Joined counts the calls that joined this request after it was opened.
	Joined int `json:"joined,omitempty"`
	// Session and DecisionID tie the request to the MCP session and the
	// ext_authz decision that opened it, for audit.
	Session    string `json:"session,omitempty"`
	DecisionID string `json:"decision_id,omitempty"`
}

// Name is the tool name or the resource URI.
func (r *Request) Name() string {
	if r.Kind == KindResource {
		return r.Resource
	}
	return r.Tool
}

// Scope is what approving the request grants: the terms' scope, or the
// narrowed scope once an approval issued the grant.
func (r *Request) Scope() Scope {
	if r.GrantedScope != nil {
		return *r.GrantedScope
	}
	return r.Terms.Scope()
}

func cloneScope(s *Scope) *Scope {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

// Approvals counts the approve verdicts so far.
func (r *Request) Approvals() int {
	n := 0
	for _, d := range r.Decisions {
		if d.Verdict == VerdictApprove || d.Verdict == VerdictBreakGlass {
			n++
		}
	}
	return n
}

// Clone returns a deep copy.
func (r *Request) Clone() *Request {
	if r == nil {
		return nil
	}
	c := *r
	c.Principal.Groups = slices.Clone(r.Principal.Groups)
	c.Arguments = slices.Clone(r.Arguments)
	c.Terms.ApproverGroups = slices.Clone(r.Terms.ApproverGroups)
	c.Terms.BreakGlassGroups = slices.Clone(r.Terms.BreakGlassGroups)
	c.Decisions = slices.Clone(r.Decisions)
	for i := range c.Decisions {
		c.Decisions[i].Groups = slices.Clone(c.Decisions[i].Groups)
		c.Decisions[i].Scope = cloneScope(c.Decisions[i].Scope)
	}
	c.GrantedScope = cloneScope(r.GrantedScope)
	return &c
}

// Grant is what an approval issues: the right to make a call.
type Grant struct {
	ID        string     `json:"id"`
	Version   uint64     `json:"version"`
	RequestID string     `json:"request_id"`
	State     GrantState `json:"state"`
	Subject   string     `json:"subject"` // the principal it was issued to, with Issuer
	// Issuer is the holder's issuer (absent in records written before
	// airlock kept it: such a grant takes its request's when loaded).
	Issuer string `json:"issuer,omitempty"`
	User   string `json:"user,omitempty"`
	// ClientID is the agent client that asked; ActiveForClient matches it.
	ClientID string `json:"client_id,omitempty"`
	Target   string `json:"target"`
	Kind     Kind   `json:"kind"`
	Tool     string `json:"tool,omitempty"`
	Resource string `json:"resource,omitempty"`
	// Arguments, when set, limit the grant to calls with these arguments
	// (as JSON values); single-use grants always carry them. They are the
	// masked copy, for display: ArgumentsHash is what calls are matched by.
	Arguments     json.RawMessage `json:"arguments,omitempty"`
	ArgumentsHash string          `json:"arguments_sha256,omitempty"`
	// MaxUses is 1 for a single-use grant, 0 for unlimited (time-bound).
	MaxUses int `json:"max_uses"`
	// Uses counts the calls the grant allowed. For time-bound grants the
	// count is kept in memory and written with the grant's next change, so
	// after a restart it can be behind; the audit log has every use.
	Uses       int       `json:"uses"`
	NotBefore  time.Time `json:"not_before"`
	Expiry     time.Time `json:"expiry"`
	CreatedAt  time.Time `json:"created_at"`
	ApprovedBy []string  `json:"approved_by"`
	BreakGlass bool      `json:"break_glass,omitempty"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
	EndedBy    string    `json:"ended_by,omitempty"`
	EndReason  string    `json:"end_reason,omitempty"`
}

// SingleUse reports whether the grant covers one call only.
func (g *Grant) SingleUse() bool { return g.MaxUses == 1 }

// UsesLeft is how many more calls the grant allows; -1 means no limit
// (until it expires or is revoked).
func (g *Grant) UsesLeft() int {
	if g.State != GrantActive {
		return 0
	}
	if g.MaxUses == 0 {
		return -1
	}
	return max(g.MaxUses-g.Uses, 0)
}

// Name is the tool name or the resource URI.
func (g *Grant) Name() string {
	if g.Kind == KindResource {
		return g.Resource
	}
	return g.Tool
}

// Clone returns a deep copy.
func (g *Grant) Clone() *Grant {
	if g == nil {
		return nil
	}
	c := *g
	c.Arguments = slices.Clone(g.Arguments)
	c.ApprovedBy = slices.Clone(g.ApprovedBy)
	return &c
}

// usable reports whether the grant may allow a call at now.
func (g *Grant) usable(now time.Time) bool {
	return g.State == GrantActive && !now.Before(g.NotBefore) && now.Before(g.Expiry) &&
		(g.MaxUses == 0 || g.Uses < g.MaxUses)
}

// Input is the grant as policy sees it.
func (g *Grant) Input() policy.GrantInput {
	return policy.GrantInput{
		ID: g.ID, Target: g.Target, Tool: g.Tool, Resource: g.Resource, Arguments: g.Arguments, ArgumentsHash: g.ArgumentsHash,
		SingleUse: g.SingleUse(), Expiry: g.Expiry, Principal: g.Subject,
	}
}
