package approvals

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// The request card: what an approver needs to decide in seconds, computed
// from what the request and the audit store already hold (the grants and
// API packages are unchanged by it).

// destructiveVerbs are the shipped policy's default destructive verbs for
// tools (policies/data.yaml airlock.rules["*"].tools.destructive_verbs;
// TestDestructiveVerbsMatchPolicyData keeps the two equal). The card only
// flags a risk with them: the policy, not this list, decided to hold.
var destructiveVerbs = []string{
	"delete", "del", "remove", "rm", "rmdir", "unlink", "drop", "truncate",
	"destroy", "purge", "wipe", "erase", "shred", "exec", "execute", "run",
	"shell", "sh", "bash", "eval", "spawn", "sudo", "kill", "terminate",
	"shutdown", "reboot", "transfer", "pay", "payment", "send_payment",
	"withdraw", "refund", "force", "revoke", "reset", "format", "overwrite",
	"uninstall", "disable",
}

// priorShown bounds the earlier requests a card lists by name.
const priorShown = 5

// cardView is the context around a request: why it was held, its risk,
// how long the agent still waits and what was decided before.
type cardView struct {
	// HoldEnds is when the agent's held call stops waiting (opened +
	// grants.hold_window); HoldLeft the time left then, "" once over.
	HoldEnds, HoldLeft string
	// HoldEndsAt is HoldEnds for the page's countdown (RFC 3339).
	HoldEndsAt string
	// Rule is the policy's reason for holding the call and PolicyVersion
	// the policy that decided, both from the audit decision row; Decision
	// its id.
	Rule, PolicyVersion, Decision string
	Risks                         []string
	// Annotations are the tool's MCP annotations as the server declared
	// them in the session's recorded tools/list answer (hints, not
	// guarantees); Annotated says one was found.
	Annotations []string
	Annotated   bool
	// Prior: this principal's earlier requests for the same tool.
	Prior                                  []priorView
	PriorApproved, PriorDenied, PriorOther int
}

type priorView struct{ ID, State, Created, Reason string }

// nameRisks are the risk signals in a tool's name: the destructive verbs
// among its words, and why the name itself cannot be trusted.
func nameRisks(r *grants.Request) []string {
	f := policy.Facts(r.Name(), r.Kind == grants.KindResource)
	var out []string
	if r.Kind == grants.KindTool {
		var verbs []string
		for _, w := range f.Words {
			if slices.Contains(destructiveVerbs, w) && !slices.Contains(verbs, w) {
				verbs = append(verbs, w)
			}
		}
		// Verbs run together with other words (send_payment) are words too.
		for _, v := range destructiveVerbs {
			if strings.Contains(v, "_") && strings.Contains(f.Normalized, v) && !slices.Contains(verbs, v) {
				verbs = append(verbs, v)
			}
		}
		if len(verbs) > 0 {
			out = append(out, fmt.Sprintf("destructive verb in the name: %s", strings.Join(verbs, ", ")))
		}
	}
	if f.Suspicious != "" {
		out = append(out, "the name cannot be trusted: "+f.Suspicious)
	}
	return out
}

// holdLeft says when the agent's call stops waiting and how long is left.
func holdLeft(created time.Time, window time.Duration, now time.Time) (ends, left string) {
	if window <= 0 || created.IsZero() {
		return "", ""
	}
	end := created.Add(window)
	if d := end.Sub(now); d > 0 {
		left = d.Round(time.Second).String()
	}
	return stamp(end), left
}

// card computes the card for req (as stored; its arguments are shown
// masked elsewhere). withAudit reads the policy decision from the audit
// store; see, when set, lists the principal's earlier requests that the
// viewer may see. Both are for the request page, not every list entry.
func (h *Handler) card(ctx context.Context, req *grants.Request, withAudit bool, see func(*grants.Request) bool) *cardView {
	c := &cardView{Decision: req.DecisionID, Risks: nameRisks(req)}
	c.HoldEnds, c.HoldLeft = holdLeft(req.CreatedAt, h.grants.HoldWindow(), h.now())
	if c.HoldEnds != "" {
		c.HoldEndsAt = req.CreatedAt.Add(h.grants.HoldWindow()).UTC().Format(time.RFC3339Nano)
	}
	if req.State != grants.RequestPending {
		c.HoldLeft = ""
	}
	if withAudit && h.console != nil && h.console.store != nil && req.Session != "" && req.DecisionID != "" {
		if t, err := h.console.store.Replay(ctx, req.Session); err == nil {
			if req.Kind == grants.KindTool {
				c.Annotations, c.Annotated = toolAnnotations(t.Events, req.Tool, req.CreatedAt)
			}
			// The held decision, not a later one recorded under the same
			// id (the call let through on the grant).
			for _, d := range t.Decisions {
				if d.DecisionID == req.DecisionID && (c.Rule == "" || d.Outcome == "approval_required") {
					c.Rule, c.PolicyVersion = maskText(h.profile(req.Target), d.Reason), d.PolicyVersion
				}
			}
		}
	}
	if see != nil {
		h.priorRequests(ctx, req, c, see)
	}
	return c
}

// priorRequests fills in the principal's earlier requests for the same
// tool (or resource) on the same target.
func (h *Handler) priorRequests(ctx context.Context, req *grants.Request, c *cardView, see func(*grants.Request) bool) {
	list, err := h.grants.List(ctx, grants.RequestFilter{Subject: req.Principal.Subject, Issuer: req.Principal.Issuer, Target: req.Target})
	if err != nil {
		return
	}
	p := h.profile(req.Target)
	for _, r := range list {
		if r.ID == req.ID || r.Kind != req.Kind || r.Name() != req.Name() || r.CreatedAt.After(req.CreatedAt) || !see(r) {
			continue
		}
		switch r.State {
		case grants.RequestApproved:
			c.PriorApproved++
		case grants.RequestDenied:
			c.PriorDenied++
		default:
			c.PriorOther++
		}
		if len(c.Prior) < priorShown {
			c.Prior = append(c.Prior, priorView{ID: r.ID, State: string(r.State), Created: stamp(r.CreatedAt), Reason: maskText(p, r.EndReason)})
		}
	}
}

// toolAnnotations reads tool's annotations from the last tools/list answer
// recorded in the session before the request opened (ext_proc records the
// masked messages; a cut payload is not JSON and is skipped). The MCP
// spec calls them hints an untrusted server may get wrong: the card shows
// them as declared, beside the name's own signal.
func toolAnnotations(events []audit.Event, tool string, before time.Time) ([]string, bool) {
	var found *toolAnnot
	for _, e := range events {
		if e.Direction != audit.DirResponse || e.Method != "tools/list" || e.Truncated || e.Time.After(before) {
			continue
		}
		var msg struct {
			Result struct {
				Tools []struct {
					Name        string     `json:"name"`
					Annotations *toolAnnot `json:"annotations"`
				} `json:"tools"`
			} `json:"result"`
		}
		if json.Unmarshal([]byte(e.Payload), &msg) != nil {
			continue
		}
		for _, t := range msg.Result.Tools {
			if t.Name == tool {
				found = t.Annotations
				if found == nil {
					found = &toolAnnot{}
				}
			}
		}
	}
	if found == nil {
		return nil, false
	}
	var out []string
	say := func(name string, v *bool, yes, no string) {
		switch {
		case v == nil:
		case *v:
			out = append(out, name+": true ("+yes+")")
		default:
			out = append(out, name+": false ("+no+")")
		}
	}
	say("destructiveHint", found.Destructive, "may destroy or overwrite data", "only adds")
	say("readOnlyHint", found.ReadOnly, "changes nothing", "may change its environment")
	say("idempotentHint", found.Idempotent, "repeating it does nothing more", "repeating it may do more")
	say("openWorldHint", found.OpenWorld, "reaches outside systems", "a closed domain")
	return out, true
}

// toolAnnot are the MCP tool annotations the card shows.
type toolAnnot struct {
	ReadOnly    *bool `json:"readOnlyHint"`
	Destructive *bool `json:"destructiveHint"`
	Idempotent  *bool `json:"idempotentHint"`
	OpenWorld   *bool `json:"openWorldHint"`
}
