package serve

import (
	"log/slog"
	"strings"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/grants"
)

// GrantAuditor is the grants.Auditor serve gives the grant service: it
// records every access-request and grant step into sink. Tests that run
// a grants.Service without the gateway (the console's browser test) use
// it to record the same rows.
func GrantAuditor(sink audit.Sink, log *slog.Logger) grants.Auditor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return grantAuditor{sink: sink, log: log}
}

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
			Seq: grantSeq(g),
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
			DecisionID: r.DecisionID, GrantID: r.GrantID, Seq: requestSeq(e.Type, r),
		})
	}
	if err != nil {
		a.log.Error("audit refused a grant event", "type", e.Type, "error", err)
	}
}

// requestSeq orders the rows of one request (request_events.seq). Every
// step that changes a request stores a new version of it (Version, kept
// across restarts), and one step may emit several rows — a vote and the
// approval or denial it completes share a version and a time — so the
// sequence is the version with the row's rank within its step: opened
// and joined first, then the vote, then the end (approved, denied,
// expired, cancelled). A refused vote changes nothing and stores no
// version: it ranks after every row of the version it was refused in
// (and before the next), so it never outranks the row that ends the
// request, which is always the last version.
func requestSeq(t grants.EventType, r *grants.Request) uint64 {
	var rank uint64
	switch t {
	case grants.EventRequestOpened, grants.EventRequestJoined:
		rank = 0
	case grants.EventRequestDecision:
		rank = 1
	case grants.EventDecisionRefused:
		rank = 3
	default: // approved, denied, expired, cancelled: the step's last row
		rank = 2
	}
	return r.Version<<2 | rank
}

// grantSeq orders the rows of one grant (grant_events.seq): its stored
// version (issued is 1; consumed, expired and revoked each store a new
// one), then its use count, which a time-bound grant's uses raise without
// storing a version.
func grantSeq(g *grants.Grant) uint64 {
	return g.Version<<32 | uint64(uint32(max(g.Uses, 0)))
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
