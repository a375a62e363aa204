package extauthz

import (
	"strconv"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/decisionlog"
)

// logDecisions hands the decision to the decision log: one record per
// policy evaluation it rests on (a batch: one per message, message i > 0
// as "<decision id>.<i>", as in the audit), or one without input and
// result for a decision made before policy.
func (a *Authorizer) logDecisions(r *Result, took time.Duration) {
	e := decisionlog.Entry{
		DecisionID: r.DecisionID, Time: a.now(), Outcome: string(r.Outcome), Status: r.Status, Reason: r.Reason,
		PolicyVersion: r.policyVer, Target: r.target, XRequestID: r.xRequestID, TraceID: r.traceID, SpanID: r.spanID, Duration: took,
	}
	if len(r.evals) == 0 {
		a.decisions.Log(e)
		return
	}
	for i := range r.evals {
		d := e
		if i > 0 {
			d.DecisionID = r.DecisionID + "." + strconv.Itoa(i)
		}
		if i < len(r.verdicts) {
			d.Outcome, d.Reason = string(r.verdicts[i].Outcome), r.verdicts[i].Reason
		}
		d.Input, d.Result = r.evals[i].in, &r.evals[i].d
		if v := r.evals[i].d.PolicyVersion; v != "" {
			d.PolicyVersion = v
		}
		a.decisions.Log(d)
	}
}

// record sends the decision to the audit trail (never the token or the
// arguments: those are in the masked message record). A batch gets one
// record per message: the first carries the decision id, message i > 0
// carries "<decision id>.<i>" (records with the same id and time would be
// folded by the store), each with its own method, tool, JSON-RPC id and,
// when the batch was decided message by message, its own outcome and
// reason.
func (a *Authorizer) record(r *Result, took time.Duration) {
	base := audit.Decision{
		DecisionID: r.DecisionID, Time: a.now(), Target: r.target, Outcome: string(r.Outcome),
		Reason: r.Reason, Status: r.Status, LatencyUS: took.Microseconds(), GrantID: r.grant, PolicyVersion: r.policyVer,
		RequestID: r.requestID, TraceID: r.traceID,
	}
	if p := r.principal; p != nil {
		base.Principal, base.ClientID, base.Issuer = p.Subject, p.ClientID, p.Issuer
	}
	c := r.call
	if c == nil || len(c.Messages) == 0 {
		// A copy is what goes to the audit (base itself stays on the
		// stack: one allocation a record, not two).
		d := base
		if c != nil {
			d.SessionID = c.SessionID
		} else {
			d.SessionID, d.JSONRPCID = r.sessionID, string(r.rpcID)
		}
		a.recordOne(&d)
		return
	}
	base.SessionID = c.SessionID
	for i, m := range c.Messages {
		d := base
		if i > 0 {
			d.DecisionID = r.DecisionID + "." + strconv.Itoa(i)
		}
		d.Method, d.Tool, d.JSONRPCID = m.Method, m.Subject(), string(m.ID)
		if i < len(r.verdicts) {
			d.Outcome, d.Reason = string(r.verdicts[i].Outcome), r.verdicts[i].Reason
		}
		a.recordOne(&d)
	}
}

func (a *Authorizer) recordOne(d *audit.Decision) {
	if err := a.audit.Record(d); err != nil {
		a.log.Error("audit refused a decision", "decision_id", d.DecisionID, "error", err)
	}
}
