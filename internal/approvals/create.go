package approvals

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// CreateBody is the body of POST /airlock/v1/requests: a call the
// caller wants approved ahead of time. Exactly one of Tool and Resource.
type CreateBody struct {
	Target    string          `json:"target"`
	Tool      string          `json:"tool,omitempty"`
	Resource  string          `json:"resource,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	Reason    string          `json:"reason,omitempty"`
}

// CreateResult is the answer of POST /airlock/v1/requests: the request,
// and whether an identical pending request was joined instead.
type CreateResult struct {
	Request *grants.Request `json:"request"`
	Joined  bool            `json:"joined"`
}

// maxCreateBody bounds a request body (the arguments are most of it).
const maxCreateBody = 1 << 20

func (b *CreateBody) check(targets map[string]Target) (Target, *apiError) {
	bad := func(format string, args ...any) (Target, *apiError) {
		return Target{}, newError(http.StatusBadRequest, "invalid", fmt.Sprintf(format, args...))
	}
	t, ok := targets[b.Target]
	switch {
	case b.Target == "":
		return bad("the body names no target")
	case !ok:
		return bad("target %.80q is not one airlock serves", b.Target)
	case (b.Tool == "") == (b.Resource == ""):
		return bad("name exactly one of tool and resource")
	case b.Resource != "" && len(b.Arguments) > 0 && !bytes.Equal(bytes.TrimSpace(b.Arguments), []byte("null")):
		return bad("a resource request carries no arguments")
	}
	if len(b.Arguments) > 0 {
		trim := bytes.TrimSpace(b.Arguments)
		if len(trim) == 0 || (trim[0] != '{' && !bytes.Equal(trim, []byte("null"))) {
			return bad("arguments must be a JSON object, as in a tools/call's params.arguments")
		}
	}
	return t, nil
}

// createRequest asks policy what the call needs, as ext_authz would for
// the same call by the same principal, and opens (or joins) a request
// when policy wants approval. The requester is the token's principal.
func (h *Handler) createRequest(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	var body CreateBody
	if ae := readJSON(r, maxCreateBody, &body); ae != nil {
		h.writeError(w, r, ae)
		return
	}
	t, ae := body.check(h.targets)
	if ae != nil {
		h.writeError(w, r, ae)
		return
	}
	in := &policy.Input{
		Principal: p,
		Target:    policy.TargetInput{Name: t.Name, Resource: t.Resource, ScopesRequired: t.ScopesRequired},
		MCP:       policy.MessageInput{Kind: "request", Tool: body.Tool, URI: body.Resource, Arguments: body.Arguments},
		Request:   policy.RequestInput{Method: http.MethodPost, Path: t.PathPrefix, Headers: map[string]string{}},
		Time:      h.now(),
	}
	op := grants.OpenParams{Principal: grants.PrincipalFrom(p), Target: t.Name, Arguments: body.Arguments, Reason: body.Reason}
	if body.Tool != "" {
		in.MCP.Method, op.Kind, op.Tool = "tools/call", grants.KindTool, body.Tool
	} else {
		in.MCP.Method, op.Kind, op.Resource = "resources/read", grants.KindResource, body.Resource
	}
	d, err := h.policy.Evaluate(r.Context(), in)
	if err != nil {
		h.log.Error("policy evaluation failed for an API request", "target", t.Name, "error", err)
		h.writeError(w, r, newError(http.StatusServiceUnavailable, "unavailable", "policy could not be evaluated (logged on the server)"))
		return
	}
	switch {
	case d.Outcome == policy.OutcomeDeny:
		h.writeError(w, r, newError(http.StatusForbidden, "policy_denied", "policy denies this call: "+d.Reason))
		return
	case d.Outcome != policy.OutcomeApprovalRequired || d.Approval == nil:
		h.writeError(w, r, newError(http.StatusConflict, "not_needed", "policy allows this call without approval: "+d.Reason))
		return
	}
	op.Approval = *d.Approval
	req, joined, err := h.grants.Open(r.Context(), op)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	status := http.StatusCreated
	if joined {
		status = http.StatusOK
	}
	w.Header().Set("Location", APIPrefix+"requests/"+req.ID)
	writeJSON(w, status, CreateResult{Request: h.maskRequest(req), Joined: joined})
}
