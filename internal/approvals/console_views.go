package approvals

import (
	"encoding/json"
	"fmt"
	"html/template"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/airlock-mcp/airlock/internal/audit"
)

// timelineView is one session as the console's timeline shows it.
type timelineView struct {
	SessionID, Principal, Client, Target, Start, Span string
	Steps                                             []stepView
	Messages, Decisions, Approvals, Grants            int
	// Tool and Outcome narrow the timeline to some calls (as `airlock
	// replay --tool --outcome`); CSV and JSON the exports so narrowed.
	Tool, Outcome string
	CSV, JSON     template.URL
}

// stepView is one row of the timeline: a message, a decision (with what
// became of a held call), a transition of an access request, or of a
// grant. Everything in it was recorded masked.
type stepView struct {
	Kind, At, Offset, What, Outcome, Method, Tool, Who string
	DecisionID, RequestID, GrantID                     string
	Duration, Reason, Masked, Payload, Status, Detail  string
	Policy                                             string
	Hold                                               string // what became of a held call
	// payload is the message as recorded, and durationSeconds the
	// duration as a number, for the CSV export.
	payload, durationSeconds string
}

func viewTimeline(rp *audit.Replay) *timelineView {
	tl := &timelineView{SessionID: rp.SessionID, Principal: rp.Principal, Client: rp.ClientID, Target: rp.Target, Start: stamp(rp.Start)}
	for _, st := range rp.Steps {
		tl.Steps = append(tl.Steps, viewStep(st))
		switch st.Kind {
		case audit.StepMessage:
			tl.Messages++
		case audit.StepDecision:
			tl.Decisions++
		case audit.StepApproval:
			tl.Approvals++
		case audit.StepGrant:
			tl.Grants++
		}
	}
	if n := len(rp.Steps); n > 0 {
		tl.Span = duration(rp.Steps[n-1].Time.Sub(rp.Steps[0].Time))
	}
	return tl
}

func viewStep(st audit.Step) stepView {
	v := stepView{Kind: st.Kind, At: st.Time.UTC().Format("15:04:05.000"), Offset: "+" + duration(time.Duration(st.Offset*float64(time.Second)))}
	setDuration := func(d time.Duration) {
		if d > 0 {
			v.Duration, v.durationSeconds = duration(d), seconds(d.Seconds())
		}
	}
	switch {
	case st.Message != nil:
		e := st.Message
		v.What, v.Outcome, v.Method, v.Tool, v.Who = string(e.Direction), e.Outcome, e.Method, e.Tool, e.Principal
		v.DecisionID, v.GrantID = e.DecisionID, e.GrantID
		if e.Status != 0 {
			v.Status = strconv.Itoa(e.Status)
		}
		setDuration(time.Duration(e.LatencyMS * float64(time.Millisecond)))
		v.Masked = maskedCounts(e.Masked)
		v.payload = e.Payload
		v.Payload = showPayload(e.Payload, e.Truncated)
	case st.Decision != nil:
		d := st.Decision
		v.What, v.Outcome, v.Method, v.Tool, v.Who = "decision", d.Outcome, d.Method, d.Tool, who(d.Principal, "")
		if d.ClientID != "" {
			v.Who += " via " + d.ClientID
		}
		v.DecisionID, v.RequestID, v.GrantID, v.Reason, v.Policy = d.DecisionID, d.RequestID, d.GrantID, d.Reason, d.PolicyVersion
		if d.Status != 0 {
			v.Status = strconv.Itoa(d.Status)
		}
		setDuration(time.Duration(d.LatencyUS) * time.Microsecond)
		if h := st.Hold; h != nil {
			v.Hold = holdText(h)
			if v.GrantID == "" {
				v.GrantID = h.GrantID
			}
		}
	case st.Request != nil:
		q := st.Request
		switch {
		case q.FromState == "":
			v.What = "request " + q.ToState
		case q.FromState == q.ToState:
			// A vote (or a call joining) that did not end the request.
			v.What = "request still " + q.ToState
		default:
			v.What = "request " + q.FromState + " → " + q.ToState
		}
		v.Outcome, v.Method, v.Tool, v.Who = q.ToState, q.Method, q.Tool, q.Actor
		v.DecisionID, v.RequestID, v.GrantID, v.Reason = q.DecisionID, q.RequestID, q.GrantID, q.Reason
	case st.Grant != nil:
		g := st.Grant
		v.What, v.Outcome, v.Tool, v.Who = "grant "+g.Transition, g.Transition, strings.Join(g.Tools, ", "), g.Actor
		if v.Who == "" {
			v.Who = g.Principal
		}
		v.GrantID, v.RequestID, v.Reason = g.GrantID, g.RequestID, g.Reason
		var parts []string
		if g.Principal != "" {
			parts = append(parts, "for "+g.Principal)
		}
		if g.UsesLeft >= 0 {
			parts = append(parts, fmt.Sprintf("%d use(s) left", g.UsesLeft))
		}
		if !g.ExpiresAt.IsZero() {
			parts = append(parts, "valid until "+stamp(g.ExpiresAt))
		}
		v.Detail = strings.Join(parts, " · ")
	}
	return v
}

// holdText tells what became of a held call: its request's state, who
// decided and why, and how long the call waited.
func holdText(h *audit.Hold) string {
	s := "held on " + h.RequestID + ": " + h.State
	if h.DecidedBy != "" {
		s += " by " + h.DecidedBy
	}
	if h.DecidedAfter > 0 {
		s += " after " + duration(time.Duration(h.DecidedAfter*float64(time.Second)))
	}
	if h.Reason != "" {
		s += " (" + h.Reason + ")"
	}
	if h.HeldFor > 0 {
		s += "; the call waited " + duration(time.Duration(h.HeldFor*float64(time.Second)))
	}
	return s
}

// maskedCounts is "aws_access_key ×2, field:password ×1", sorted.
func maskedCounts(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s ×%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// showPayload renders a recorded (masked) message for people: indented
// JSON with long strings cut, or the text as recorded when it is not
// JSON (a cut payload), bounded either way.
func showPayload(p string, truncated bool) string {
	if p == "" {
		return ""
	}
	var out string
	if json.Valid([]byte(p)) {
		out = boundedArgs(json.RawMessage(p))
	} else {
		out = p
		if len(out) > maxShownArgs {
			cut := maxShownArgs
			for cut > 0 && !utf8.RuneStart(out[cut]) {
				cut--
			}
			out = out[:cut] + fmt.Sprintf("\n… (%d more bytes not shown)", len(out)-cut)
		}
	}
	if truncated {
		out += "\n… (cut when recorded: audit.payload_max_bytes)"
	}
	return out
}
