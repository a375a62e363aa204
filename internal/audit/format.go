package audit

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteSessions prints sessions as a table, for `airlock sessions`.
func WriteSessions(w io.Writer, sums []SessionSummary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tPRINCIPAL\tCLIENT\tTARGET\tSTART (UTC)\tDURATION\tEVENTS\tREQUESTS\tDENIED\tHELD\tAPPROVED\tERRORS\tMASKED")
	for _, s := range sums {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n",
			orDash(s.SessionID), orDash(s.Principal), orDash(s.ClientID), orDash(s.Target),
			s.Start.UTC().Format("2006-01-02 15:04:05"), s.End.Sub(s.Start).Round(time.Millisecond),
			s.Events, s.Requests, s.Denied, s.Held, s.Approved, s.Errors, s.Masked)
	}
	return tw.Flush()
}

// ReplayFilter narrows a replay to some calls; zero fields keep
// everything. A call is a decision and what belongs to it: the messages
// recorded under its decision id, the access request it was held on and
// the grants it used or that request issued.
type ReplayFilter struct {
	Outcome string    // calls decided so (allow, deny, approval_required, unauthenticated, …)
	Tool    string    // calls of this tool, resource URI or prompt
	Since   time.Time // steps at or after this time
}

func (f ReplayFilter) calls() bool { return f.Outcome != "" || f.Tool != "" }

// The kinds of a replay Step.
const (
	StepMessage  = "message"  // an MCP message (Event)
	StepDecision = "decision" // an ext_authz decision (Decision)
	StepApproval = "approval" // a transition of an access request (RequestEvent)
	StepGrant    = "grant"    // a transition of a grant (GrantEvent)
)

// Step is one line of a replay: exactly one of Message, Decision,
// Request and Grant is set, as Kind says.
type Step struct {
	Time     time.Time     `json:"time"`
	Offset   float64       `json:"offset_seconds"` // since the replay's first step
	Kind     string        `json:"kind"`
	Message  *Event        `json:"message,omitempty"`
	Decision *Decision     `json:"decision,omitempty"`
	Hold     *Hold         `json:"hold,omitempty"` // a decision on a held call
	Request  *RequestEvent `json:"request,omitempty"`
	Grant    *GrantEvent   `json:"grant,omitempty"`
}

// Hold is what became of a held call, as of its decision.
type Hold struct {
	RequestID string `json:"request_id"`
	// State is the request's state when the call was answered: approved,
	// denied, expired, cancelled, or pending (not decided within the hold
	// window: the agent was told to retry).
	State     string  `json:"state"`
	DecidedBy string  `json:"decided_by,omitempty"` // who approved or denied
	Reason    string  `json:"reason,omitempty"`     // their reason
	HeldFor   float64 `json:"held_seconds"`         // how long the call waited (the decision's latency)
	// DecidedAfter is the time from the request's opening to its
	// approval or denial (0 while pending).
	DecidedAfter float64 `json:"decided_after_seconds,omitempty"`
	GrantID      string  `json:"grant_id,omitempty"` // the grant the approval issued
}

// Replay is one session as `airlock replay` tells it.
type Replay struct {
	SessionID string    `json:"session_id"`
	Principal string    `json:"principal"` // first non-empty, as in SessionSummary
	ClientID  string    `json:"client_id"`
	Target    string    `json:"target"`
	Start     time.Time `json:"start"` // the first step shown
	Steps     []Step    `json:"steps"`
}

// Story merges a trail into one time-ordered list of steps — messages,
// decisions (with what became of a held call), approvals and grant
// transitions — keeping the calls f selects. At equal times a decision
// comes before the messages it let through, an approval before the
// decision it let through.
func Story(t *Trail, f ReplayFilter) *Replay {
	r := &Replay{SessionID: t.SessionID}
	pickFirst(t, r)

	byDecision := map[string]*Decision{}
	for i := range t.Decisions {
		byDecision[t.Decisions[i].DecisionID] = &t.Decisions[i]
	}
	keepDecision := map[string]bool{}
	keepRequest := map[string]bool{}
	keepGrant := map[string]bool{}
	for i := range t.Decisions {
		d := &t.Decisions[i]
		if f.Outcome != "" && d.Outcome != f.Outcome || f.Tool != "" && d.Tool != f.Tool {
			continue
		}
		keepDecision[d.DecisionID] = true
		keepRequest[d.RequestID] = true
		keepGrant[d.GrantID] = true
	}
	keepEvent := func(e *Event) bool {
		if !f.calls() {
			return true
		}
		if _, ok := byDecision[e.DecisionID]; ok {
			return keepDecision[e.DecisionID]
		}
		return (f.Outcome == "" || e.Outcome == f.Outcome) && (f.Tool == "" || e.Tool == f.Tool)
	}
	for i := range t.Events {
		if e := &t.Events[i]; keepEvent(e) {
			keepGrant[e.GrantID] = true
			r.add(f, Step{Time: e.Time, Kind: StepMessage, Message: e})
		}
	}
	for i := range t.Requests {
		if q := &t.Requests[i]; !f.calls() || keepRequest[q.RequestID] {
			keepGrant[q.GrantID] = true
			r.add(f, Step{Time: q.Time, Kind: StepApproval, Request: q})
		}
	}
	for i := range t.Grants {
		if g := &t.Grants[i]; !f.calls() || keepGrant[g.GrantID] {
			r.add(f, Step{Time: g.Time, Kind: StepGrant, Grant: g})
		}
	}
	for i := range t.Decisions {
		if d := &t.Decisions[i]; keepDecision[d.DecisionID] {
			r.add(f, Step{Time: d.Time, Kind: StepDecision, Decision: d, Hold: holdOf(t, d)})
		}
	}
	rank := map[string]int{StepApproval: 0, StepGrant: 1, StepDecision: 2, StepMessage: 3}
	sort.SliceStable(r.Steps, func(i, j int) bool {
		a, b := &r.Steps[i], &r.Steps[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		if a.Kind == StepApproval && b.Kind == StepApproval {
			// A vote and the transition it causes can share a time:
			// opened, then still pending, then where it ended.
			return approvalRank(a.Request) < approvalRank(b.Request)
		}
		return rank[a.Kind] < rank[b.Kind]
	})
	if len(r.Steps) > 0 {
		r.Start = r.Steps[0].Time
		for i := range r.Steps {
			r.Steps[i].Offset = r.Steps[i].Time.Sub(r.Start).Seconds()
		}
	}
	return r
}

func approvalRank(q *RequestEvent) int {
	switch {
	case q.FromState == "":
		return 0
	case q.ToState == "pending":
		return 1
	default:
		return 2
	}
}

func (r *Replay) add(f ReplayFilter, s Step) {
	if !f.Since.IsZero() && s.Time.Before(f.Since) {
		return
	}
	r.Steps = append(r.Steps, s)
}

// pickFirst sets who and what the session is: the first non-empty
// principal, client and target over its messages and decisions.
func pickFirst(t *Trail, r *Replay) {
	type val struct {
		at time.Time
		v  string
	}
	var p, c, g val
	pick := func(cur *val, v string, at time.Time) {
		if v != "" && (cur.v == "" || at.Before(cur.at)) {
			*cur = val{at, v}
		}
	}
	for _, e := range t.Events {
		pick(&p, e.Principal, e.Time)
		pick(&c, e.ClientID, e.Time)
		pick(&g, e.Target, e.Time)
	}
	for _, d := range t.Decisions {
		pick(&p, d.Principal, d.Time)
		pick(&c, d.ClientID, d.Time)
		pick(&g, d.Target, d.Time)
	}
	r.Principal, r.ClientID, r.Target = p.v, c.v, g.v
}

// holdOf is what became of the request d was held on, as of d; nil for a
// call that was not held.
func holdOf(t *Trail, d *Decision) *Hold {
	if d.RequestID == "" {
		return nil
	}
	h := &Hold{RequestID: d.RequestID, State: "pending", HeldFor: float64(d.LatencyUS) / 1e6}
	var opened time.Time
	for _, q := range t.Requests {
		if q.RequestID != d.RequestID || q.Time.After(d.Time) {
			continue
		}
		if q.FromState == "" && opened.IsZero() {
			opened = q.Time
		}
		if q.ToState != "" && q.ToState != "pending" && h.State == "pending" {
			h.State, h.DecidedBy, h.Reason = q.ToState, q.Actor, q.Reason
			if !opened.IsZero() {
				h.DecidedAfter = q.Time.Sub(opened).Seconds()
			}
		}
		if q.GrantID != "" {
			h.GrantID = q.GrantID
		}
	}
	if h.State == "pending" && d.Outcome == "allow" {
		// Allowed on the hold but the transition is not (yet) stored.
		h.State = "approved"
	}
	if h.GrantID == "" {
		h.GrantID = d.GrantID
	}
	return h
}

// ReplayOptions choose what WriteReplay shows.
type ReplayOptions struct {
	Payloads bool // print each message's (masked) payload under it
}

// WriteReplay prints a replay for `airlock replay`: the session, then one
// line per step with its offset from the first.
func WriteReplay(w io.Writer, r *Replay, opts ReplayOptions) error {
	if len(r.Steps) == 0 {
		_, err := fmt.Fprintf(w, "session %s  principal %s  client %s  target %s\nnothing matches the filters\n",
			orDash(r.SessionID), orDash(r.Principal), orDash(r.ClientID), orDash(r.Target))
		return err
	}
	fmt.Fprintf(w, "session %s  principal %s  client %s  target %s  started %s\n",
		orDash(r.SessionID), orDash(r.Principal), orDash(r.ClientID), orDash(r.Target), r.Start.UTC().Format(time.RFC3339Nano))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range r.Steps {
		var line string
		switch s.Kind {
		case StepMessage:
			line = messageLine(s.Message)
		case StepDecision:
			line = decisionLine(s.Decision, s.Hold, r.Principal)
		case StepApproval:
			line = approvalLine(s.Request)
		case StepGrant:
			line = grantLine(s.Grant)
		}
		fmt.Fprintf(tw, "+%.3fs\t%s\n", s.Offset, strings.TrimRight(line, "\t "))
		if opts.Payloads && s.Message != nil && s.Message.Payload != "" {
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(w, "    %s\n", s.Message.Payload)
		}
	}
	return tw.Flush()
}

// Each line: what kind, the call (method and subject), its JSON-RPC id or
// request/grant id, the outcome, then details.

func messageLine(e *Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\t%s\t", e.Direction, call(e.Method, e.Tool))
	if e.JSONRPCID != "" {
		b.WriteString("id=" + e.JSONRPCID)
	}
	b.WriteByte('\t')
	b.WriteString(orDash(e.Outcome))
	if e.Status != 0 {
		fmt.Fprintf(&b, " %d", e.Status)
	}
	b.WriteByte('\t')
	var details []string
	if e.LatencyMS > 0 {
		details = append(details, fmt.Sprintf("%.1fms", e.LatencyMS))
	}
	if len(e.Masked) > 0 {
		details = append(details, "masked "+countsText(e.Masked))
	}
	if e.GrantID != "" {
		details = append(details, "grant "+e.GrantID)
	}
	if e.Truncated {
		details = append(details, fmt.Sprintf("(payload cut, %d bytes)", e.Bytes))
	}
	b.WriteString(strings.Join(details, "  "))
	return b.String()
}

func decisionLine(d *Decision, h *Hold, principal string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "decision\t%s\t", call(d.Method, d.Tool))
	if d.JSONRPCID != "" {
		b.WriteString("id=" + d.JSONRPCID)
	}
	fmt.Fprintf(&b, "\t%s", orDash(d.Outcome))
	if d.Status != 0 {
		fmt.Fprintf(&b, " %d", d.Status)
	}
	b.WriteByte('\t')
	var details []string
	if d.Principal != principal {
		// Someone else's call presenting this session's id.
		details = append(details, "caller "+orDash(d.Principal))
	}
	if h != nil {
		hd := fmt.Sprintf("held %s on request %s: %s", seconds(h.HeldFor), h.RequestID, h.State)
		if h.DecidedBy != "" {
			hd += " by " + h.DecidedBy
		}
		if h.DecidedAfter > 0 {
			hd += " after " + seconds(h.DecidedAfter)
		}
		if h.Reason != "" {
			hd += fmt.Sprintf(" (%q)", h.Reason)
		}
		details = append(details, hd)
	}
	if d.GrantID != "" {
		details = append(details, "grant "+d.GrantID)
	}
	if d.Reason != "" {
		details = append(details, fmt.Sprintf("reason %q", d.Reason))
	}
	if d.PolicyVersion != "" {
		details = append(details, "policy "+d.PolicyVersion)
	}
	details = append(details, "decision "+orDash(d.DecisionID))
	b.WriteString(strings.Join(details, "  "))
	return b.String()
}

func approvalLine(q *RequestEvent) string {
	var b strings.Builder
	fmt.Fprintf(&b, "approval\t%s\t%s\t", call(q.Method, q.Tool), q.RequestID)
	if q.FromState == "" {
		b.WriteString("opened")
	} else {
		b.WriteString(orDash(q.ToState))
	}
	b.WriteByte('\t')
	var details []string
	if q.Actor != "" {
		details = append(details, "by "+q.Actor)
	}
	if q.Reason != "" {
		details = append(details, fmt.Sprintf("reason %q", q.Reason))
	}
	if q.GrantID != "" {
		details = append(details, "grant "+q.GrantID)
	}
	b.WriteString(strings.Join(details, "  "))
	return b.String()
}

func grantLine(g *GrantEvent) string {
	var b strings.Builder
	fmt.Fprintf(&b, "grant\t%s\t%s\t%s\t", strings.Join(g.Tools, ","), g.GrantID, orDash(g.Transition))
	var details []string
	if g.Actor != "" {
		details = append(details, "by "+g.Actor)
	}
	if g.UsesLeft >= 0 {
		details = append(details, fmt.Sprintf("uses left %d", g.UsesLeft))
	}
	if !g.ExpiresAt.IsZero() {
		details = append(details, "expires "+g.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if g.RequestID != "" {
		details = append(details, "request "+g.RequestID)
	}
	b.WriteString(strings.Join(details, "  "))
	return b.String()
}

// seconds prints a duration given in seconds, to the millisecond.
func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

// call is "method subject", or "-" for neither.
func call(method, subject string) string {
	if subject == "" {
		return orDash(method)
	}
	return strings.TrimSpace(method + " " + subject)
}

func countsText(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
