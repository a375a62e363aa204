package serve

import (
	"log/slog"
	"strings"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/grants"
)

// grantAuditor records every access-request and grant step.
type grantAuditor struct {
	sink audit.Sink
	log  *slog.Logger
}

func (a grantAuditor) Record(e grants.Event) {
	var err error
	switch {
	case e.Grant != nil && strings.HasPrefix(string(e.Type), "grant."):
		g := e.Grant
		left := int64(-1)
		if g.MaxUses > 0 {
			left = int64(g.MaxUses - g.Uses)
		}
		err = a.sink.Record(&audit.GrantEvent{
			Time: e.At, GrantID: g.ID, Transition: strings.TrimPrefix(string(e.Type), "grant."), Actor: e.Actor,
			Principal: g.Subject, ClientID: g.ClientID, Target: g.Target, Tools: []string{g.Tool + g.Resource},
			RequestID: g.RequestID, ExpiresAt: g.Expiry, UsesLeft: left, Reason: e.Reason,
		})
	case e.Request != nil:
		r := e.Request
		from := ""
		if e.Type != grants.EventRequestOpened {
			from = string(grants.RequestPending)
		}
		err = a.sink.Record(&audit.RequestEvent{
			Time: e.At, RequestID: r.ID, FromState: from, ToState: string(r.State), Actor: e.Actor,
			Principal: r.Principal.Subject, ClientID: r.Principal.ClientID, Target: r.Target,
			Method: methodOf(r), Tool: r.Tool + r.Resource, Reason: firstNonEmpty(e.Reason, r.Reason),
			DecisionID: r.DecisionID, GrantID: r.GrantID,
		})
	}
	if err != nil {
		a.log.Error("audit refused a grant event", "type", e.Type, "error", err)
	}
}

func methodOf(r *grants.Request) string {
	if r.Kind == grants.KindResource {
		return "resources/read"
	}
	return "tools/call"
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
