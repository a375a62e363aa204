package extauthz

import (
	"context"
	"fmt"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/mcp"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// input is the policy input for the call's HTTP request, without a message.
func (a *Authorizer) input(t *target, p *identity.Principal, req *Request, call *mcp.Call) *policy.Input {
	return &policy.Input{
		Principal: p,
		Target:    t.input,
		// The headers go as Envoy sent them: policy's input builder leaves
		// out pseudo-headers and credentials, and builds them only for a
		// policy that reads input.request.headers.
		Request: policy.RequestInput{Method: req.Method, Path: req.Path, Host: req.Host, Headers: req.Headers},
		Time:    a.now(),
		MCP:     policy.MessageInput{ProtocolVersion: call.ProtocolVersion, SessionID: call.SessionID, Batch: call.Batch},
	}
}

// messageInput is the policy's view of one message. Prompt and URI are
// also what completion/complete names in params.ref, so the rules of that
// prompt or resource apply to its completions.
func messageInput(base policy.MessageInput, m *mcp.Message) policy.MessageInput {
	mi := base
	mi.Method, mi.Kind, mi.ID = m.Method, string(m.Kind), m.ID
	mi.Tool, mi.Prompt, mi.URI, mi.Arguments = m.Tool, m.Prompt, m.URI, m.Arguments
	return mi
}

// decide evaluates policy for a call that is not a batch: its one message
// with the caller's grants that cover its arguments, or, for a GET or
// DELETE (no messages), once with an empty MCP method.
func (a *Authorizer) decide(ctx context.Context, t *target, p *identity.Principal, req *Request, call *mcp.Call, unusable map[string]bool) (policy.Decision, *policy.Input, error) {
	in := a.input(t, p, req, call)
	if a.approvals != nil {
		gctx, span := a.tracing.Start(ctx, "airlock.authz.grants", trace.SpanKindInternal)
		g, err := a.approvals.ActiveForPrincipal(gctx, grants.PrincipalFrom(p), t.cfg.Name, in.Time)
		if err != nil {
			span.SetStatus(codes.Error, "grant store failed")
		}
		span.End()
		if err != nil {
			return policy.Decision{}, in, fmt.Errorf("grant store: %w", err)
		}
		if len(unusable) > 0 {
			g = slices.DeleteFunc(slices.Clone(g), func(g policy.GrantInput) bool { return unusable[g.ID] })
		}
		in.Grants = g
	}
	if len(call.Messages) > 1 {
		return policy.Decision{}, in, fmt.Errorf("decide: %d messages outside a batch", len(call.Messages))
	}
	if len(call.Messages) == 1 {
		m := &call.Messages[0]
		in.MCP = messageInput(in.MCP, m)
		in.Grants = policy.CoveringGrants(in.Grants, m.Arguments)
	}
	d, err := a.evaluate(ctx, in)
	return d, in, err
}

// evaluate asks policy, in a span.
func (a *Authorizer) evaluate(ctx context.Context, in *policy.Input) (policy.Decision, error) {
	pctx, span := a.tracing.Start(ctx, "airlock.authz.policy", trace.SpanKindInternal)
	d, err := a.policy.Evaluate(pctx, in)
	if span.IsRecording() {
		if err != nil {
			span.SetStatus(codes.Error, "policy evaluation failed")
		} else {
			span.SetAttributes(attribute.String("airlock.policy.outcome", d.Outcome), attribute.String("airlock.policy.version", d.PolicyVersion))
		}
	}
	span.End()
	return d, err
}

// Reasons given to the messages of a refused batch.
const (
	reasonBatchNeedsAlone = "call needs approval/grant: send it alone, not in a batch"
	reasonBatchNotSent    = "not sent: another message of the batch was refused"
)

// decideBatch decides a JSON-RPC batch (protocol 2024-11-05 and
// 2025-03-26). A batch goes through only if policy allows every one of its
// messages on its own terms: without any grant and without approval.
// Otherwise nothing of it reaches the server and every request of the
// batch gets its own error with its own id: the policy's reason for a
// denied message, "send it alone" for one that needs approval or a grant,
// "not sent" for an allowed one. A batch is never held for approval and
// never uses a grant, so a single-use grant cannot be spent (or replayed)
// by a message riding along with others.
func (a *Authorizer) decideBatch(ctx context.Context, id string, t *target, p *identity.Principal, req *Request, call *mcp.Call) (r *Result) {
	in := a.input(t, p, req, call) // no grants: a batch is decided without them
	base := in.MCP
	verdicts := make([]verdict, len(call.Messages))
	decisions := make([]policy.Decision, len(call.Messages))
	refused := 0
	var evals []evaluation
	defer func() { r.evals = evals }()
	for i := range call.Messages {
		in.MCP = messageInput(base, &call.Messages[i])
		d, err := a.evaluate(ctx, in)
		if err != nil {
			a.log.Error("policy evaluation failed; denying", "decision_id", id, "target", t.cfg.Name, "batch_index", i, "error", err)
			return policyDenied(id, call, OutcomeError, 403, "the gateway could not evaluate its policy; the call is denied")
		}
		decisions[i] = d
		if a.decisions != nil {
			cp := *in
			evals = append(evals, evaluation{in: &cp, d: d})
		}
		switch {
		case d.Outcome == policy.OutcomeAllow && d.Grant == "":
			verdicts[i] = verdict{Outcome: OutcomeAllow, Reason: d.Reason}
		case d.Outcome == policy.OutcomeAllow, d.Outcome == policy.OutcomeApprovalRequired:
			verdicts[i] = verdict{Outcome: OutcomeDeny, Reason: reasonBatchNeedsAlone, code: mcp.CodeApprovalRequired}
			refused++
		default:
			verdicts[i] = verdict{Outcome: OutcomeDeny, Reason: "denied: " + orDefault(d.Reason, "denied by policy")}
			refused++
		}
	}
	// One exchange gets one masking profile: a batch whose messages policy
	// would mask differently is sent message by message.
	if refused == 0 {
		for i := range decisions[1:] {
			if orDefault(decisions[i+1].MaskingProfile, t.cfg.MaskingProfile) != orDefault(decisions[0].MaskingProfile, t.cfg.MaskingProfile) {
				for j := range verdicts {
					verdicts[j] = verdict{Outcome: OutcomeDeny, Reason: "the messages of this batch are masked with different profiles: send them one by one"}
				}
				refused = len(verdicts)
				break
			}
		}
	}
	if refused > 0 {
		for i := range verdicts {
			if verdicts[i].Outcome == OutcomeAllow {
				verdicts[i] = verdict{Outcome: OutcomeDeny, Reason: reasonBatchNotSent}
			}
		}
		r = batchRefused(id, call, verdicts, refused)
		r.verdicts = verdicts
		r.policyVer = decisions[0].PolicyVersion
		return r
	}
	d := decisions[0]
	for _, o := range decisions[1:] {
		d.Record = d.Record || o.Record
	}
	d.Reason = fmt.Sprintf("every message of the batch of %d is allowed", len(call.Messages))
	r = t.allow(id, p, call, req, d)
	r.verdicts = verdicts
	return r
}
