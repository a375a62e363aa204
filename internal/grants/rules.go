package grants

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// judge applies the approval rules to one verdict on the pending request r
// at now. It returns the decision to record and the state the request
// moves to: pending while more approvals are needed, approved, or denied.
// It does not change r. The rules, in order:
//
//  1. The actor must be named (a subject) and the verdict known.
//  2. Nobody decides their own request: not the requester (issuer and
//     subject), not the agent client that asked (by subject or by the
//     client the actor came through).
//  3. approve needs one of the approver groups; deny one of the approver or
//     break-glass groups; break_glass one of the break-glass groups.
//  4. Each person (issuer and subject) approves once (a deny after one's own approve is
//     accepted: deny wins).
//  5. A reason is needed when the terms require one, and always to break
//     glass.
//  6. Any eligible deny denies at once. A break-glass verdict approves
//     alone. Otherwise the request is approved when Threshold distinct
//     people have approved.
func judge(r *Request, a Actor, v Verdict, reason string, now time.Time) (Decision, RequestState, error) {
	if a.Subject == "" {
		return Decision{}, "", fmt.Errorf("the deciding actor has no subject: %w", ErrInvalid)
	}
	switch v {
	case VerdictApprove, VerdictDeny, VerdictBreakGlass:
	default:
		return Decision{}, "", fmt.Errorf("verdict %q: want approve, deny or break_glass: %w", v, ErrInvalid)
	}
	if err := notRequester(r, a); err != nil {
		return Decision{}, "", err
	}
	approver := intersect(a.Groups, r.Terms.ApproverGroups)
	breakGlass := intersect(a.Groups, r.Terms.BreakGlassGroups)
	var groups []string
	switch v {
	case VerdictApprove:
		if len(approver) == 0 {
			hint := ""
			if len(breakGlass) > 0 {
				hint = " (you are in a break-glass group: approve with break_glass, which is flagged and audited)"
			}
			return Decision{}, "", fmt.Errorf("%s is in none of the approver groups %s of request %s%s: %w",
				a.Subject, listOf(r.Terms.ApproverGroups), r.ID, hint, ErrNotApprover)
		}
		groups = approver
	case VerdictBreakGlass:
		if len(breakGlass) == 0 {
			return Decision{}, "", fmt.Errorf("%s is in none of the break-glass groups %s of request %s: %w",
				a.Subject, listOf(r.Terms.BreakGlassGroups), r.ID, ErrNotApprover)
		}
		groups = breakGlass
	case VerdictDeny:
		groups = union(approver, breakGlass)
		if len(groups) == 0 {
			return Decision{}, "", fmt.Errorf("%s is in none of the approver groups %s of request %s: %w",
				a.Subject, listOf(r.Terms.ApproverGroups), r.ID, ErrNotApprover)
		}
	}
	if v != VerdictDeny {
		for _, d := range r.Decisions {
			if samePrincipal(d.Issuer, d.Actor, a.Issuer, a.Subject) {
				return Decision{}, "", fmt.Errorf("%s already gave %s on request %s: %w", a.Subject, d.Verdict, r.ID, ErrAlreadyDecided)
			}
		}
	}
	if reason == "" && (r.Terms.ReasonRequired || v == VerdictBreakGlass) {
		what := "this request's terms require one"
		if v == VerdictBreakGlass {
			what = "breaking glass always needs one"
		}
		return Decision{}, "", fmt.Errorf("%s on request %s: %s: %w", v, r.ID, what, ErrReasonRequired)
	}
	d := Decision{Actor: a.Subject, Issuer: a.Issuer, User: a.User, Verdict: v, Groups: groups, Reason: reason, At: now}
	switch {
	case v == VerdictDeny:
		return d, RequestDenied, nil
	case v == VerdictBreakGlass:
		return d, RequestApproved, nil
	case r.Approvals()+1 >= max(r.Terms.Threshold, 1):
		return d, RequestApproved, nil
	default:
		return d, RequestPending, nil
	}
}

// notRequester refuses an actor who is the requester (the same issuer and
// subject, compared canonically), or the agent client that asked. The client rule applies to calls an agent made through the
// gateway (DecisionID set): a request a person opened ahead of time through
// a shared client (the CLI, the inbox) may be decided by colleagues using
// the same client.
func notRequester(r *Request, a Actor) error {
	p := r.Principal
	switch {
	case a.isRequester(r):
		return fmt.Errorf("%s asked for request %s: %w", a.Subject, r.ID, ErrSelfApproval)
	case p.ClientID != "" && samePrincipal(a.Issuer, a.Subject, p.Issuer, p.ClientID):
		return fmt.Errorf("the decision on request %s comes from the agent client %s that asked: %w", r.ID, p.ClientID, ErrSelfApproval)
	case p.ClientID != "" && r.DecisionID != "" && a.ClientID == p.ClientID:
		return fmt.Errorf("the decision on request %s comes from the agent client %s that asked: %w", r.ID, p.ClientID, ErrSelfApproval)
	}
	return nil
}

// checkOpenReason enforces the requester's side of ReasonRequired.
func checkOpenReason(t Terms, reason string) error {
	if t.ReasonRequired && reason == "" {
		return fmt.Errorf("policy requires the agent to state why it makes this call: put it in params._meta[%q] or the %s header: %w",
			ReasonMetaKey, ReasonHeader, ErrReasonRequired)
	}
	return nil
}

// mayCancel: only the requester cancels a pending request (approvers deny).
func mayCancel(r *Request, a Actor) error {
	if !a.isRequester(r) {
		return fmt.Errorf("only the requester %s may cancel request %s, not %q: %w", r.Principal.Subject, r.ID, a.Subject, ErrNotAllowed)
	}
	return nil
}

// mayRevoke: the grantee may give a grant up; a member of the approver or
// break-glass groups of the request it came from may take it away.
func mayRevoke(g *Grant, t Terms, a Actor) error {
	if a.Subject == "" {
		return fmt.Errorf("the revoking actor has no subject: %w", ErrInvalid)
	}
	if g.HeldBy(a.Issuer, a.Subject) || len(intersect(a.Groups, t.ApproverGroups)) > 0 || len(intersect(a.Groups, t.BreakGlassGroups)) > 0 {
		return nil
	}
	return fmt.Errorf("%s is neither the holder of grant %s nor in its approver groups %s: %w",
		a.Subject, g.ID, listOf(t.ApproverGroups), ErrNotAllowed)
}

// intersect returns the members of have that are in want, in want's order.
func intersect(have, want []string) []string {
	var out []string
	for _, w := range want {
		if slices.Contains(have, w) && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func listOf(groups []string) string {
	if len(groups) == 0 {
		return "[]"
	}
	return "[" + strings.Join(groups, ", ") + "]"
}
