package extauthz

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/mcp"
	"github.com/airlock-mcp/airlock/internal/policy"
	"github.com/airlock-mcp/airlock/internal/wire"
)

var jsonContentType = Header{"content-type", "application/json"}

func (t *target) challenge(params ...string) Header {
	params = append(params, fmt.Sprintf("resource_metadata=%q", t.prmURL))
	return Header{"www-authenticate", "Bearer " + strings.Join(params, ", ")}
}

func quoteParam(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return '\''
		}
		return r
	}, s)
}

// unauthenticated is RFC 6750 §3 / MCP authorization: 401 with a challenge
// that points at the Protected Resource Metadata. The client is told
// public (error_description and the JSON-RPC error); detail, which may
// name issuers, audiences or targets, goes only to the log and the audit.
func (t *target) unauthenticated(id string, rpcID json.RawMessage, errCode, public, detail string) *Result {
	var params []string
	if errCode != "" {
		params = append(params, fmt.Sprintf(`error=%q`, errCode), fmt.Sprintf(`error_description="%s"`, quoteParam(public)))
	}
	if len(t.cfg.ScopesRequired) > 0 {
		params = append(params, fmt.Sprintf("scope=%q", strings.Join(t.cfg.ScopesRequired, " ")))
	}
	return &Result{
		Outcome: OutcomeUnauthenticated, Status: 401, Reason: detail, DecisionID: id,
		ResponseHeaders: []Header{t.challenge(params...), jsonContentType},
		Body:            mcp.ErrorResponse(rpcID, mcp.CodeUnauthorized, "unauthorized: "+public, nil),
	}
}

// insufficientScope is the MCP step-up answer: 403 with error="insufficient_scope"
// and the scopes to ask for (which the challenge publishes anyway).
func (t *target) insufficientScope(id string, rpcID json.RawMessage, missing []string) *Result {
	public := fmt.Sprintf("the token lacks scope %s required by this resource", strings.Join(missing, ", "))
	return &Result{
		Outcome: OutcomeForbidden, Status: 403, DecisionID: id,
		Reason:          fmt.Sprintf("the token lacks scope %s required by target %s", strings.Join(missing, ", "), t.cfg.Name),
		ResponseHeaders: []Header{t.challenge(`error="insufficient_scope"`, fmt.Sprintf("scope=%q", strings.Join(t.cfg.ScopesRequired, " "))), jsonContentType},
		Body:            mcp.ErrorResponse(rpcID, mcp.CodeForbidden, "forbidden: "+public, nil),
	}
}

// notFound answers a path that is not a target's MCP endpoint. The client
// is not told which endpoints exist.
func notFound(id string, rpcID json.RawMessage, reason string) *Result {
	return &Result{
		Outcome: OutcomeInvalid, Status: 404, Reason: reason, DecisionID: id,
		ResponseHeaders: []Header{jsonContentType},
		Body:            mcp.ErrorResponse(rpcID, mcp.CodeInvalidRequest, "not found: no MCP endpoint is served at this path", nil),
	}
}

// sessionNotFound answers a session id bound to another principal as the
// MCP transport answers an unknown session (404: the client starts a new
// session). The client is not told that the session exists.
func sessionNotFound(id string, call *mcp.Call) *Result {
	return &Result{
		Outcome: OutcomeForbidden, Status: 404, DecisionID: id,
		Reason:          fmt.Sprintf("session %s is bound to another principal", clip(call.SessionID)),
		ResponseHeaders: []Header{jsonContentType},
		Body:            errorBody(call, mcp.CodeInvalidRequest, "session not found: start a new session with initialize", map[string]string{"decision_id": id}),
	}
}

// batchRefused answers a refused batch: each request of it gets its own
// error, with its own id and its own reason.
func batchRefused(id string, call *mcp.Call, verdicts []verdict, refused int) *Result {
	var parts []json.RawMessage
	var why []string
	for i, m := range call.Messages {
		v := verdicts[i]
		if v.Reason != reasonBatchNotSent {
			why = append(why, fmt.Sprintf("message %d (%s%s): %s", i, m.Method, nameSuffix(&m), v.Reason))
		}
		if m.Kind != mcp.KindRequest {
			continue
		}
		c := v.code
		if c == 0 {
			c = mcp.CodeForbidden
		}
		parts = append(parts, mcp.ErrorResponse(m.ID, c, v.Reason, map[string]any{"decision_id": id, "batch_index": i}))
	}
	var body []byte
	if len(parts) == 0 {
		body = mcp.ErrorResponse(nil, mcp.CodeForbidden, "denied: "+strings.Join(why, "; "), map[string]string{"decision_id": id})
	} else {
		body, _ = json.Marshal(parts)
	}
	return &Result{
		Outcome: OutcomeDeny, Status: 403, DecisionID: id,
		Reason:          fmt.Sprintf("batch of %d refused (%d messages refused on their own): %s", len(call.Messages), refused, strings.Join(why, "; ")),
		ResponseHeaders: []Header{jsonContentType},
		Body:            body,
	}
}

func nameSuffix(m *mcp.Message) string {
	if subject := m.Subject(); subject != "" {
		return " " + subject
	}
	return ""
}

// clip bounds a client-chosen value echoed into a log line.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

func invalid(id string, e *mcp.Error) *Result {
	r := &Result{
		Outcome: OutcomeInvalid, Status: e.HTTPStatus, Reason: e.Message, DecisionID: id,
		ResponseHeaders: []Header{jsonContentType},
		Body:            e.Response(),
	}
	if e.Allow != "" {
		r.ResponseHeaders = append(r.ResponseHeaders, Header{"allow", e.Allow})
	}
	return r
}

// errorBody answers every request of the call with the same error, keeping
// each request's id; a batch gets a batch.
func errorBody(call *mcp.Call, code int, msg string, data any) []byte {
	var ids []json.RawMessage
	for _, m := range call.Messages {
		if m.Kind == mcp.KindRequest {
			ids = append(ids, m.ID)
		}
	}
	if !call.Batch || len(ids) == 0 {
		var id json.RawMessage
		if len(ids) > 0 {
			id = ids[0]
		}
		return mcp.ErrorResponse(id, code, msg, data)
	}
	parts := make([]json.RawMessage, len(ids))
	for i, id := range ids {
		parts[i] = mcp.ErrorResponse(id, code, msg, data)
	}
	b, _ := json.Marshal(parts)
	return b
}

func policyDenied(id string, call *mcp.Call, o Outcome, status int, reason string) *Result {
	if reason == "" {
		reason = "denied by policy"
	}
	return &Result{
		Outcome: o, Status: status, Reason: reason, DecisionID: id,
		ResponseHeaders: []Header{jsonContentType},
		Body:            errorBody(call, mcp.CodeForbidden, "denied: "+reason, map[string]string{"decision_id": id}),
	}
}

func approvalRequired(id string, call *mcp.Call, d policy.Decision) *Result {
	data := map[string]any{"decision_id": id}
	if ap := d.Approval; ap != nil {
		data["approver_groups"] = ap.ApproverGroups
		data["single_use"] = ap.SingleUse
		data["grant_duration"] = ap.GrantDuration.String()
		data["reason_required"] = ap.ReasonRequired
	}
	reason := d.Reason
	if reason == "" {
		reason = "this call needs a human approval"
	}
	return &Result{
		Outcome: OutcomeApprovalRequired, Status: 403, Reason: reason, DecisionID: id,
		ResponseHeaders: []Header{jsonContentType},
		Body:            errorBody(call, mcp.CodeApprovalRequired, "approval required: "+reason, data),
	}
}

// allow swaps the agent's token for the target's credential and tells the
// upstream (and the filters after ext_authz) who called.
func (t *target) allow(id string, p *identity.Principal, call *mcp.Call, req *Request, d policy.Decision) *Result {
	r := &Result{Outcome: OutcomeAllow, Status: 200, DecisionID: id, Reason: d.Reason}
	set := make([]Header, 0, 7)
	if t.credValue != "" {
		set = append(set, Header{t.credHeader, t.credValue})
	}
	set = append(set,
		// The server answers in plaintext, which ext_proc can mask: a
		// compressed response would pass the masking unread.
		Header{"accept-encoding", "identity"},
		Header{wire.HeaderPrincipal, p.Subject},
		Header{wire.HeaderTarget, t.cfg.Name},
		Header{wire.HeaderDecisionID, id},
	)
	if p.ClientID != "" {
		set = append(set, Header{wire.HeaderClientID, p.ClientID})
	}
	if d.Grant != "" {
		set = append(set, Header{wire.HeaderGrant, d.Grant})
	}
	r.SetHeaders = set
	// The agent's token never travels upstream (MCP: no token passthrough),
	// and no client-sent x-airlock-* header survives.
	if t.credValue == "" || t.credHeader != "authorization" {
		r.RemoveHeaders = append(r.RemoveHeaders, "authorization")
	}
	for k := range req.Headers {
		if strings.HasPrefix(k, wire.HeaderPrefix) && !setsHeader(set, k) {
			r.RemoveHeaders = append(r.RemoveHeaders, k)
		}
	}
	// What ext_proc and the access log read about this call: the typed
	// wire contract, so a renamed key cannot compile here and be missed
	// there.
	wd := &wire.Decision{
		DecisionID:     id,
		Target:         t.cfg.Name,
		Principal:      p.Subject,
		ClientID:       p.ClientID,
		Issuer:         p.Issuer,
		MaskingProfile: orDefault(d.MaskingProfile, t.cfg.MaskingProfile),
		Record:         d.Record,
		PolicyVersion:  d.PolicyVersion,
		Protocol:       call.ProtocolVersion,
		SessionID:      call.SessionID,
		Grant:          d.Grant,
	}
	if len(call.Messages) > 0 {
		// method and tool are the first message's (what ext_proc reads).
		wd.Method, wd.Tool = call.Messages[0].Method, call.Messages[0].Subject()
	}
	if call.Batch {
		// A batch lists every message, in order ("" where a message has
		// no tool or id): methods, tools, ids.
		wd.Batch = true
		wd.Methods = make([]string, len(call.Messages))
		wd.Tools = make([]string, len(call.Messages))
		wd.IDs = make([]string, len(call.Messages))
		for i, m := range call.Messages {
			wd.Methods[i], wd.Tools[i], wd.IDs[i] = m.Method, m.Subject(), string(m.ID)
		}
	}
	r.Metadata = wd
	return r
}

func setsHeader(set []Header, name string) bool {
	for _, h := range set {
		if h.Name == name {
			return true
		}
	}
	return false
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
