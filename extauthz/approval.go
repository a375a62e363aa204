package extauthz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/mcp"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// Approvals is the just-in-time access service (internal/grants'
// Service implements it): the caller's active grants as policy input,
// using a grant for a call, and holding a call for a human. The caller is
// the (issuer, subject) pair of its token: a grant issued to a subject of
// one issuer is not another issuer's same subject's.
type Approvals interface {
	ActiveForPrincipal(ctx context.Context, p grants.Principal, target string, now time.Time) ([]policy.GrantInput, error)
	ConsumeFor(ctx context.Context, grantID string, p grants.Principal) (*grants.Grant, error)
	Hold(ctx context.Context, p grants.OpenParams) (*grants.HoldResult, error)
}

// GrantRoutes is the xDS server: a grant's route reaches Envoy
// asynchronously, and a call sent with the grant header before Envoy holds
// the route would get Envoy's "no live grant route" 403.
type GrantRoutes interface {
	WaitGrantRoute(ctx context.Context, grantID string) error
}

// SetGrantRoutes tells the Authorizer about the xDS server once it runs
// (it needs the addresses the gRPC services bound, so it starts after them).
func (a *Authorizer) SetGrantRoutes(r GrantRoutes) { a.routes.Store(&r) }

// routeWait bounds how long a granted call waits for its route.
const routeWait = 2 * time.Second

// awaitRoute waits until every connected Envoy holds the grant's route.
// On timeout the call still goes with the grant header: Envoy's route
// layer then refuses it (fail closed), and the agent's retry succeeds.
func (a *Authorizer) awaitRoute(ctx context.Context, id, grantID string) {
	r := a.routes.Load()
	if r == nil || grantID == "" {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, routeWait)
	defer cancel()
	if err := (*r).WaitGrantRoute(wctx, grantID); err != nil {
		a.log.Warn("granted call goes before its route reached every Envoy", "decision_id", id, "grant", grantID, "error", err)
	}
}

// useGrant takes one use of the grant policy allowed the call with, before
// the call goes through: a single-use grant is consumed here exactly once
// however many identical calls race for it (the losers are decided again
// without it, and so held). ok is false when the grant could not be used.
func (a *Authorizer) useGrant(ctx context.Context, p *identity.Principal, grantID string) (ok bool, err error) {
	_, err = a.approvals.ConsumeFor(ctx, grantID, grants.PrincipalFrom(p))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, grants.ErrGrantUsed), errors.Is(err, grants.ErrGrantEnded), errors.Is(err, grants.ErrNotFound):
		return false, nil
	default:
		return false, err
	}
}

// hold opens (or joins) an access request for the call and waits for it up
// to the hold window, inside this Check: the gRPC stream's goroutine waits
// on the request's outcome (a channel, no polling), so no worker pool is
// held. Envoy's ext_authz timeout must exceed the window.
func (a *Authorizer) hold(ctx context.Context, id string, t *target, p *identity.Principal, req *Request, call *mcp.Call, d policy.Decision) *Result {
	if len(call.Messages) != 1 {
		return policyDenied(id, call, OutcomeDeny, 403, "a call that needs approval cannot be sent in a batch; send it alone")
	}
	m := call.Messages[0]
	op := grants.OpenParams{
		Principal: grants.PrincipalFrom(p), Target: t.cfg.Name, Arguments: m.Arguments,
		// Copies: the access request outlives the Check, and the
		// request's strings share one allocation (decodeCheckRequest).
		Reason: strings.Clone(grants.ReasonFromCall(m.Params, req.Headers)), Approval: *d.Approval,
		Session: strings.Clone(call.SessionID), DecisionID: id,
	}
	switch {
	case m.Tool != "":
		op.Kind, op.Tool = grants.KindTool, m.Tool
	case m.URI != "":
		op.Kind, op.Resource = grants.KindResource, m.URI
	default:
		return policyDenied(id, call, OutcomeDeny, 403, fmt.Sprintf("%s needs approval, but only tool calls and resource reads can be granted", m.Method))
	}
	res, err := a.approvals.Hold(ctx, op)
	switch {
	case errors.Is(err, grants.ErrReasonRequired):
		return policyDenied(id, call, OutcomeDeny, 403, d.Reason+"; approvers need a reason: resend the call with params._meta[\"io.airlock/reason\"] (or an x-airlock-reason header)")
	case errors.Is(err, grants.ErrTooManyPending), errors.Is(err, grants.ErrInvalid):
		return policyDenied(id, call, OutcomeDeny, 403, err.Error())
	case err != nil:
		a.log.Error("approval hold failed; denying", "decision_id", id, "error", err)
		return policyDenied(id, call, OutcomeError, 403, "the gateway could not hold the call for approval; the call is denied")
	}
	out := a.holdOutcome(ctx, id, t, p, req, call, d, res)
	// The decision names the request the call was held on, whatever came
	// of it: replay and the analytics join the approval to the call.
	out.requestID = res.Request.ID
	return out
}

// holdOutcome answers a held call after the hold: allowed under the
// issued grant, denied, expired or cancelled, or still pending.
func (a *Authorizer) holdOutcome(ctx context.Context, id string, t *target, p *identity.Principal, req *Request, call *mcp.Call, d policy.Decision, res *grants.HoldResult) *Result {
	r := res.Request
	switch res.Outcome {
	case grants.HoldAllowed:
		d.Outcome, d.Grant = policy.OutcomeAllow, res.Grant.ID
		d.Reason = fmt.Sprintf("approved in request %s", r.ID)
		a.awaitRoute(ctx, id, d.Grant)
		return t.allow(id, p, call, req, d)
	case grants.HoldDenied:
		return policyDenied(id, call, OutcomeDeny, 403, fmt.Sprintf("request %s was %s", r.ID, r.EndReason))
	case grants.HoldExpired, grants.HoldCancelled:
		return policyDenied(id, call, OutcomeDeny, 403, fmt.Sprintf("request %s %s: %s", r.ID, r.State, r.EndReason))
	default: // pending, or approved but an identical held call used the grant
		return approvalPending(id, call, d, r.ID, res.URL)
	}
}

// approvalPending tells the agent to have the call approved and retry.
// MCP 2025-11-25 has the standard shape for it, URLElicitationRequiredError
// (-32042, the approval page as a URL elicitation), sent as a JSON-RPC
// response (HTTP 200) so clients handle it as the spec describes; earlier
// versions get airlock's approval-required error with the same URL.
//
// The URL is handed out only when a page that can act on it is served (the
// inbox is on, or approval_url names the operator's own page); otherwise
// the error says how the approval will happen instead — the CLI or the
// approvals API — and no URL elicitation is sent, since it must carry a URL.
func approvalPending(id string, call *mcp.Call, d policy.Decision, requestID, url string) *Result {
	msg := fmt.Sprintf("approval required: %s. Approve request %s at %s, then retry the call.", d.Reason, requestID, url)
	if url == "" {
		msg = fmt.Sprintf("approval required: %s. Ask an approver to approve request %s (airlock approve %s, or POST %srequests/%s/approve on the approvals API), then retry the call.",
			d.Reason, requestID, requestID, config.APIPrefix, requestID)
	}
	var body []byte
	switch {
	case url != "" && (call.ProtocolVersion == mcp.Version20251125 || call.ProtocolVersion == mcp.Version20260728):
		body = mcp.URLElicitationRequired(call.Messages[0].ID, msg, url, requestID)
	default:
		data := map[string]any{"decision_id": id, "request_id": requestID}
		if url != "" {
			data["url"] = url
		}
		body = mcp.ErrorResponse(call.Messages[0].ID, mcp.CodeApprovalRequired, msg, data)
	}
	return &Result{
		Outcome: OutcomeApprovalRequired, Status: 200, Reason: msg, DecisionID: id,
		ResponseHeaders: []Header{jsonContentType}, Body: body, Denied: true,
	}
}
