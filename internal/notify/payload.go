package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/mask"
)

// Limits on what a message carries of a call's arguments.
const (
	maxArgumentsBytes = 4096 // generic: masked arguments up to this size, else only the preview
	previewBytes      = 300  // the one-line preview in both formats
)

// render builds message bodies. Arguments and free text (reasons) pass
// through the masking profile first: a message leaves airlock, so it
// never carries what masking would hide. The grant service already masked
// them with the target's profile as they entered; this second pass (strict
// by default) is a backstop, not the place masking happens.
type render struct {
	mask        *mask.Profile
	approvalURL func(requestID string) string
	// slackButtons: the Slack app is configured (see Options.SlackButtons).
	slackButtons bool
}

func (r *render) text(s string) string {
	if s == "" || r.mask == nil {
		return s
	}
	out, _ := r.mask.MaskText([]byte(s))
	return string(out)
}

// arguments returns the masked arguments (nil when too large or not
// JSON), a short preview, and whether the full value was left out.
func (r *render) arguments(raw json.RawMessage) (json.RawMessage, string, bool) {
	if len(raw) == 0 {
		return nil, "", false
	}
	masked := []byte(raw)
	if r.mask != nil {
		var err error
		if masked, _, err = r.mask.MaskJSON(raw); err != nil {
			return nil, "[arguments withheld: not JSON]", true
		}
	}
	preview := clip(string(masked), previewBytes)
	if len(masked) > maxArgumentsBytes {
		return nil, preview, true
	}
	return json.RawMessage(masked), preview, false
}

// clip cuts s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

type principalBody struct {
	Subject  string `json:"subject"`
	User     string `json:"user,omitempty"`
	ClientID string `json:"client_id,omitempty"`
}

type requestBody struct {
	ID                 string              `json:"id"`
	State              grants.RequestState `json:"state"`
	Principal          principalBody       `json:"principal"`
	Target             string              `json:"target"`
	Kind               grants.Kind         `json:"kind"`
	Tool               string              `json:"tool,omitempty"`
	Resource           string              `json:"resource,omitempty"`
	Arguments          json.RawMessage     `json:"arguments,omitempty"`
	ArgumentsPreview   string              `json:"arguments_preview,omitempty"`
	ArgumentsTruncated bool                `json:"arguments_truncated,omitempty"`
	Reason             string              `json:"reason,omitempty"`
	Terms              grants.Terms        `json:"terms"`
	// Scope is what approving grants (grants.Scope.View), in the same
	// words the inbox, CLI and API show.
	Scope      grants.ScopeView  `json:"scope"`
	Decisions  []grants.Decision `json:"decisions"`
	BreakGlass bool              `json:"break_glass,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	ExpiresAt  time.Time         `json:"expires_at"`
	EndedAt    time.Time         `json:"ended_at,omitzero"`
	EndedBy    string            `json:"ended_by,omitempty"`
	EndReason  string            `json:"end_reason,omitempty"`
	GrantID    string            `json:"grant_id,omitempty"`
	Joined     int               `json:"joined,omitempty"`
}

type grantBody struct {
	ID         string            `json:"id"`
	RequestID  string            `json:"request_id"`
	State      grants.GrantState `json:"state"`
	Subject    string            `json:"subject"`
	User       string            `json:"user,omitempty"`
	ClientID   string            `json:"client_id,omitempty"`
	Target     string            `json:"target"`
	Kind       grants.Kind       `json:"kind"`
	Tool       string            `json:"tool,omitempty"`
	Resource   string            `json:"resource,omitempty"`
	SingleUse  bool              `json:"single_use"`
	Uses       int               `json:"uses"`
	NotBefore  time.Time         `json:"not_before"`
	Expiry     time.Time         `json:"expiry"`
	ApprovedBy []string          `json:"approved_by"`
	BreakGlass bool              `json:"break_glass,omitempty"`
	EndedAt    time.Time         `json:"ended_at,omitzero"`
	EndedBy    string            `json:"ended_by,omitempty"`
	EndReason  string            `json:"end_reason,omitempty"`
}

// GenericBody is the JSON a generic webhook receives.
type GenericBody struct {
	ID          string           `json:"id"`
	Type        grants.EventType `json:"type"`
	Time        time.Time        `json:"time"`
	Actor       string           `json:"actor,omitempty"`
	Reason      string           `json:"reason,omitempty"`
	ApprovalURL string           `json:"approval_url,omitempty"`
	Decision    *grants.Decision `json:"decision,omitempty"`
	Request     *requestBody     `json:"request,omitempty"`
	Grant       *grantBody       `json:"grant,omitempty"`
}

func (r *render) generic(e grants.Event) ([]byte, error) {
	b := GenericBody{ID: e.ID, Type: e.Type, Time: e.At, Actor: e.Actor, Reason: r.text(e.Reason)}
	if e.Decision != nil {
		d := *e.Decision
		d.Reason = r.text(d.Reason)
		b.Decision = &d
	}
	if q := e.Request; q != nil {
		args, preview, cut := r.arguments(q.Arguments)
		rb := &requestBody{
			ID: q.ID, State: q.State, Principal: principalBody{q.Principal.Subject, q.Principal.User, q.Principal.ClientID},
			Target: q.Target, Kind: q.Kind, Tool: q.Tool, Resource: q.Resource,
			Arguments: args, ArgumentsPreview: preview, ArgumentsTruncated: cut, Reason: r.text(q.Reason),
			Terms: q.Terms, Scope: q.Scope().View(), Decisions: make([]grants.Decision, len(q.Decisions)), BreakGlass: q.BreakGlass,
			CreatedAt: q.CreatedAt, ExpiresAt: q.ExpiresAt, EndedAt: q.EndedAt, EndedBy: q.EndedBy,
			EndReason: r.text(q.EndReason), GrantID: q.GrantID, Joined: q.Joined,
		}
		for i, d := range q.Decisions {
			d.Reason = r.text(d.Reason)
			rb.Decisions[i] = d
		}
		b.Request = rb
	}
	if g := e.Grant; g != nil {
		b.Grant = &grantBody{
			ID: g.ID, RequestID: g.RequestID, State: g.State, Subject: g.Subject, User: g.User, ClientID: g.ClientID,
			Target: g.Target, Kind: g.Kind, Tool: g.Tool, Resource: g.Resource, SingleUse: g.SingleUse(), Uses: g.Uses,
			NotBefore: g.NotBefore, Expiry: g.Expiry, ApprovedBy: g.ApprovedBy, BreakGlass: g.BreakGlass,
			EndedAt: g.EndedAt, EndedBy: g.EndedBy, EndReason: r.text(g.EndReason),
		}
	}
	b.ApprovalURL = r.url(e)
	return json.Marshal(b)
}

func (r *render) url(e grants.Event) string {
	if r.approvalURL == nil {
		return ""
	}
	switch {
	case e.Request != nil:
		return r.approvalURL(e.Request.ID)
	case e.Grant != nil:
		return r.approvalURL(e.Grant.RequestID)
	}
	return ""
}

// slack builds a Slack incoming-webhook message: a fallback text and
// blocks (a summary, the call, and a button to the approval page).
func (r *render) slack(e grants.Event) ([]byte, error) {
	title, detail := r.summary(e)
	blocks := []map[string]any{
		{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": title}},
	}
	if detail != "" {
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": detail}})
	}
	if r.slackButtons && e.Type == grants.EventRequestOpened && e.Request != nil {
		blocks = append(blocks, slackDecideBlocks(e.Request.ID)...)
	}
	if u := r.url(e); u != "" {
		label := "Open request"
		if e.Type == grants.EventRequestOpened {
			label = "Review and decide"
		}
		blocks = append(blocks, map[string]any{"type": "actions", "elements": []map[string]any{{
			"type": "button", "text": map[string]any{"type": "plain_text", "text": label}, "url": u,
		}}})
	}
	blocks = append(blocks, map[string]any{"type": "context", "elements": []map[string]any{{
		"type": "mrkdwn", "text": slackEscape(fmt.Sprintf("airlock · %s · %s", e.Type, e.ID)),
	}}})
	return json.Marshal(map[string]any{"text": stripMrkdwn(title), "blocks": blocks})
}

// summary is the message's headline and detail in Slack mrkdwn.
func (r *render) summary(e grants.Event) (string, string) {
	who := func(p grants.Principal) string {
		s := "*" + slackEscape(nonEmpty(p.User, p.Subject)) + "*"
		if p.ClientID != "" {
			s += " (agent `" + code(p.ClientID) + "`)"
		}
		return s
	}
	call := func(kind grants.Kind, name, target string) string {
		return string(kind) + " `" + code(name) + "` on *" + slackEscape(target) + "*"
	}
	actor := "*" + slackEscape(e.Actor) + "*"
	why := ""
	if s := r.text(e.Reason); s != "" {
		why = ": " + slackEscape(s)
	}
	if q := e.Request; q != nil {
		what := call(q.Kind, q.Name(), q.Target)
		switch e.Type {
		case grants.EventRequestOpened:
			_, preview, _ := r.arguments(q.Arguments)
			var d []string
			if preview != "" {
				d = append(d, "*Arguments:* `"+code(preview)+"`")
			}
			if q.Reason != "" {
				d = append(d, "*Reason given:* "+slackEscape(r.text(q.Reason)))
			} else {
				d = append(d, "*Reason given:* none")
			}
			scope := q.Scope().Describe()
			d = append(d, fmt.Sprintf("*Needs:* %d approval(s) from %s, for %s · expires %s",
				q.Terms.Threshold, slackEscape(strings.Join(q.Terms.ApproverGroups, ", ")), scope, q.ExpiresAt.UTC().Format("15:04 MST")))
			return ":lock: Approval needed: " + who(q.Principal) + " wants to call " + what, strings.Join(d, "\n")
		case grants.EventRequestDecision:
			if d := e.Decision; d != nil {
				return fmt.Sprintf(":ballot_box_with_check: %s gave *%s* on %s's request for %s (%d of %d approvals)%s",
					actor, d.Verdict, slackEscape(q.Principal.Subject), what, q.Approvals(), q.Terms.Threshold, why), ""
			}
		case grants.EventRequestApproved:
			s := ":white_check_mark: Approved by " + actor + ": " + who(q.Principal) + " may call " + what + " (" + q.Scope().Describe() + ")"
			if q.BreakGlass {
				s = ":rotating_light: *Break glass* by " + actor + why + ": " + who(q.Principal) + " may call " + what + " (" + q.Scope().Describe() + ")"
			}
			return s, grantLine(e.Grant)
		case grants.EventRequestDenied:
			return ":no_entry: Denied by " + actor + why + ": " + who(q.Principal) + "'s call of " + what, ""
		case grants.EventRequestExpired:
			return ":hourglass: Expired without a decision: " + who(q.Principal) + "'s call of " + what, ""
		case grants.EventRequestCancelled:
			return ":wastebasket: Cancelled by the requester: " + what, ""
		case grants.EventRequestJoined:
			return ":repeat: The agent asked again (" + fmt.Sprint(q.Joined) + " times): " + what, ""
		case grants.EventDecisionRefused:
			return ":warning: Refused a decision by " + actor + " on " + what + why, ""
		}
	}
	if g := e.Grant; g != nil {
		what := call(g.Kind, g.Name(), g.Target)
		holder := "*" + slackEscape(nonEmpty(g.User, g.Subject)) + "*"
		switch e.Type {
		case grants.EventGrantIssued:
			return ":key: Grant issued to " + holder + " for " + what, grantLine(g)
		case grants.EventGrantUsed, grants.EventGrantConsumed:
			return ":arrow_forward: " + holder + " used the grant for " + what, ""
		case grants.EventGrantExpired:
			return ":hourglass: Grant expired: " + holder + " for " + what, ""
		case grants.EventGrantRevoked:
			return ":x: Grant revoked by " + actor + why + ": " + holder + " for " + what, ""
		}
	}
	return slackEscape(string(e.Type)), ""
}

func grantLine(g *grants.Grant) string {
	if g == nil {
		return ""
	}
	return fmt.Sprintf("Grant `%s`: %s, until %s", code(g.ID), g.Scope().Describe(), g.Expiry.UTC().Format("15:04 MST"))
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// code makes s safe inside a `code` span.
func code(s string) string { return slackEscape(strings.ReplaceAll(s, "`", "'")) }

// stripMrkdwn turns the headline into plain fallback text.
func stripMrkdwn(s string) string {
	s = strings.NewReplacer("*", "", "`", "").Replace(s)
	if i := strings.IndexByte(s, ' '); i > 0 && strings.HasPrefix(s, ":") && strings.HasSuffix(s[:i], ":") {
		s = s[i+1:]
	}
	return s
}
