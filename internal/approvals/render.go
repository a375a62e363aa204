package approvals

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/airlock-mcp/airlock/internal/grants"
)

// Limits on what the audit console shows of a recorded payload (the
// inbox shows a request's arguments whole: see showArgs).
const (
	maxShownString = 300     // runes of one string value
	maxShownArgs   = 8 << 10 // bytes of the whole rendering
)

// Arguments longer than this start folded on the card (a click shows
// them all): a list of requests stays readable.
const (
	foldLines = 40
	foldRunes = 2000
)

// reqView is a request as the inbox shows it (already masked).
type reqView struct {
	ID, State, Target, Kind, Name   string
	Requester, Client, Reason, Args string
	Created, Expires, Ended         string
	EndedBy, EndReason, GrantID     string
	Session                         string // the MCP session the call was made in, if any
	Approvals, Threshold, Joined    int
	ApproverGroups, BreakGlass      string
	Decisions                       []decView
	CanDecide, CanBreakGlass        bool
	ReasonRequired, Mine, WasBroken bool
	CSRF                            string // the session's, for the forms
	// ArgsSize says how big the arguments are, on the fold that shows
	// them (folded when long, never cut).
	ArgsSize string
	ArgsLong bool
	// Auditor: the viewer may follow the session link to the console.
	Auditor bool
	// Card is the context for the decision: rule, risk, hold, history.
	Card *cardView
	// Scope says what approving grants (what the approval granted, once
	// approved); ScopeChoices are the scopes an approver may narrow it to,
	// widest (the request's own) first — shown only when there is more
	// than one.
	Scope        string
	ScopeChoices []scopeChoice
}

// scopeChoice is one option of the approve form's scope.
type scopeChoice struct {
	Kind, Text string
}

type decView struct {
	Who, Verdict, Reason, At, Groups string
}

// grantView is a grant as the inbox shows it.
type grantView struct {
	ID, RequestID, State, Target, Kind, Name, Holder string
	Uses, Expiry, Created, Ended, EndedBy, EndReason string
	ApprovedBy, Args                                 string
	CanRevoke                                        bool
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func who(subject, user string) string {
	if user != "" && user != subject {
		return subject + " (" + user + ")"
	}
	return subject
}

// viewRequest shapes a masked request for v.
func viewRequest(v viewer, r *grants.Request) reqView {
	out := reqView{
		ID: r.ID, State: string(r.State), Target: r.Target, Kind: string(r.Kind), Name: r.Name(),
		Requester: who(r.Principal.Subject, r.Principal.User), Client: r.Principal.ClientID, Reason: r.Reason,
		Args: showArgs(r.Arguments), Created: stamp(r.CreatedAt), Expires: stamp(r.ExpiresAt), Ended: stamp(r.EndedAt),
		EndedBy: r.EndedBy, EndReason: r.EndReason, GrantID: r.GrantID, Session: r.Session, Approvals: r.Approvals(),
		Threshold: max(r.Terms.Threshold, 1), Joined: r.Joined, ApproverGroups: strings.Join(r.Terms.ApproverGroups, ", "),
		BreakGlass: strings.Join(r.Terms.BreakGlassGroups, ", "), ReasonRequired: r.Terms.ReasonRequired,
		// Mine only explains the missing decision form: as wide as asked.
		Mine: asked(v, r), WasBroken: r.BreakGlass,
	}
	if out.Args != "" {
		lines := strings.Count(out.Args, "\n") + 1
		out.ArgsSize = fmt.Sprintf("%d lines, %d characters", lines, utf8.RuneCountInString(out.Args))
		out.ArgsLong = lines > foldLines || utf8.RuneCountInString(out.Args) > foldRunes
	}
	out.Scope = r.Scope().Describe()
	if choices := r.Terms.Scope().Choices(); len(choices) > 1 {
		for _, c := range choices {
			out.ScopeChoices = append(out.ScopeChoices, scopeChoice{Kind: string(c.Kind), Text: c.Describe()})
		}
	}
	out.CanDecide = canDecide(v, r) && intersects(v.Groups, r.Terms.ApproverGroups)
	out.CanBreakGlass = canDecide(v, r) && intersects(v.Groups, r.Terms.BreakGlassGroups)
	for _, d := range r.Decisions {
		out.Decisions = append(out.Decisions, decView{
			Who: who(d.Actor, d.User), Verdict: string(d.Verdict), Reason: d.Reason, At: stamp(d.At), Groups: strings.Join(d.Groups, ", "),
		})
	}
	return out
}

func viewGrant(g *grants.Grant, canRevoke bool) grantView {
	uses := fmt.Sprintf("%d", g.Uses)
	if g.MaxUses > 0 {
		uses = fmt.Sprintf("%d of %d", g.Uses, g.MaxUses)
	}
	return grantView{
		ID: g.ID, RequestID: g.RequestID, State: string(g.State), Target: g.Target, Kind: string(g.Kind), Name: g.Name(),
		Holder: who(g.Subject, g.User), Uses: uses, Expiry: stamp(g.Expiry), Created: stamp(g.CreatedAt), Ended: stamp(g.EndedAt),
		EndedBy: g.EndedBy, EndReason: g.EndReason, ApprovedBy: strings.Join(g.ApprovedBy, ", "), Args: showArgs(g.Arguments),
		CanRevoke: canRevoke && g.State == grants.GrantActive,
	}
}

// showArgs renders masked arguments for people, indented and whole: an
// approver decides on everything the call carries, so nothing is cut
// (the inbox folds a long rendering, it never drops part of it; secrets
// are already the bounded typed placeholders masking left). html/template
// escapes it on output.
func showArgs(raw json.RawMessage) string {
	return renderJSON(raw, false)
}

// boundedArgs renders a recorded payload for the audit console: each long
// string cut, the whole bounded (a payload is a whole MCP message, not
// the one call an approver decides on).
func boundedArgs(raw json.RawMessage) string {
	return renderJSON(raw, true)
}

func renderJSON(raw json.RawMessage, bounded bool) string {
	if len(raw) == 0 {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "(arguments could not be shown)"
	}
	if bounded {
		v = shorten(v)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // escaping is html/template's job; here it would show \u003c
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return "(arguments could not be shown)"
	}
	s := strings.TrimRight(buf.String(), "\n")
	if bounded && len(s) > maxShownArgs {
		cut := maxShownArgs
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + fmt.Sprintf("\n… (%d more bytes not shown)", len(s)-cut)
	}
	return s
}

// shorten cuts every string longer than maxShownString runes.
func shorten(v any) any {
	switch x := v.(type) {
	case string:
		if n := utf8.RuneCountInString(x); n > maxShownString {
			i, k := 0, 0
			for k < maxShownString {
				_, size := utf8.DecodeRuneInString(x[i:])
				i += size
				k++
			}
			return x[:i] + fmt.Sprintf("… (%d more characters)", n-maxShownString)
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = shorten(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = shorten(e)
		}
		return x
	default:
		return v
	}
}
