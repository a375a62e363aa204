package extauthz

import (
	"context"
	"fmt"
	"slices"

	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/mcp"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// decide evaluates policy for every message of the call and combines the
// results: deny wins over approval, approval over allow. A GET or DELETE
// (no messages) is evaluated once with an empty MCP method.
func (a *Authorizer) decide(ctx context.Context, t *target, p *identity.Principal, req *Request, call *mcp.Call, unusable map[string]bool) (policy.Decision, error) {
	now := a.now()
	var grants []policy.GrantInput
	if a.approvals != nil {
		g, err := a.approvals.ActiveForClient(ctx, p.Subject, p.ClientID, t.cfg.Name, now)
		if err != nil {
			return policy.Decision{}, fmt.Errorf("grant store: %w", err)
		}
		grants = g
		if len(unusable) > 0 {
			grants = slices.DeleteFunc(slices.Clone(grants), func(g policy.GrantInput) bool { return unusable[g.ID] })
		}
	}
	in := &policy.Input{
		Principal: p,
		Target:    t.input,
		// The headers go as Envoy sent them: policy's input builder leaves
		// out pseudo-headers and credentials, and builds them only for a
		// policy that reads input.request.headers.
		Request: policy.RequestInput{Method: req.Method, Path: req.Path, Host: req.Host, Headers: req.Headers},
		Grants:  grants,
		Time:    now,
	}
	base := policy.MessageInput{ProtocolVersion: call.ProtocolVersion, SessionID: call.SessionID, Batch: call.Batch}
	if len(call.Messages) == 0 {
		in.MCP = base
		return a.policy.Evaluate(ctx, in)
	}
	var out policy.Decision
	for i, m := range call.Messages {
		mi := base
		mi.Method, mi.Kind, mi.ID = m.Method, string(m.Kind), m.ID
		mi.Tool, mi.Prompt, mi.URI, mi.Arguments = m.Tool, m.Prompt, m.URI, m.Arguments
		in.MCP = mi
		in.Grants = policy.CoveringGrants(grants, m.Arguments)
		d, err := a.policy.Evaluate(ctx, in)
		if err != nil {
			return policy.Decision{}, err
		}
		if i == 0 || rank(d.Outcome) > rank(out.Outcome) {
			out = d
		}
		if out.Outcome == policy.OutcomeDeny {
			break
		}
	}
	return out, nil
}

func rank(o string) int {
	switch o {
	case policy.OutcomeAllow:
		return 0
	case policy.OutcomeApprovalRequired:
		return 1
	default:
		return 2
	}
}
