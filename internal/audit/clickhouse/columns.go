package clickhouse

import (
	"sort"
	"strings"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
)

// Rows are sent column by column: each table has a builder holding one
// slice per column, in the order of its column list, which is also the
// explicit column list of its INSERT (ClickHouse 18.16 needs one).

// Table names.
const (
	tableEvents    = "events"
	tableDecisions = "decisions"
	tableRequests  = "request_events"
	tableGrants    = "grant_events"
)

var tableOf = [audit.NumKinds]string{audit.KindEvent: tableEvents, audit.KindDecision: tableDecisions, audit.KindRequest: tableRequests, audit.KindGrant: tableGrants}

var columnsOf = [audit.NumKinds][]string{
	audit.KindEvent: {"event_id", "time", "time_ns", "session_id", "principal", "client_id", "issuer", "target",
		"direction", "method", "tool", "jsonrpc_id", "decision_id", "grant_id", "status", "outcome",
		"latency_ms", "masked_types", "masked_counts", "masked_total", "payload", "truncated", "bytes"},
	audit.KindDecision: {"decision_id", "time", "time_ns", "session_id", "principal", "client_id", "issuer", "target",
		"method", "tool", "jsonrpc_id", "outcome", "reason", "policy_version", "grant_id", "request_id",
		"status", "latency_us", "trace_id"},
	audit.KindRequest: {"event_id", "time", "time_ns", "request_id", "from_state", "to_state", "actor", "principal",
		"client_id", "target", "method", "tool", "reason", "decision_id", "grant_id", "seq"},
	audit.KindGrant: {"event_id", "time", "time_ns", "grant_id", "transition", "actor", "principal", "client_id",
		"target", "tools", "request_id", "expires_at", "uses_left", "reason", "seq"},
}

// insertSQL is the INSERT statement for kind k in database db.
func insertSQL(db string, k audit.Kind) string {
	return "INSERT INTO " + db + "." + tableOf[k] + " (" + strings.Join(columnsOf[k], ", ") + ")"
}

// colBuilder collects rows of one table as columns.
type colBuilder interface {
	add(r audit.Record)
	len() int
	columns() []any // one slice per column, in columnsOf order
	reset()
}

func newColBuilder(k audit.Kind) colBuilder {
	switch k {
	case audit.KindEvent:
		return &eventCols{}
	case audit.KindDecision:
		return &decisionCols{}
	case audit.KindRequest:
		return &requestCols{}
	default:
		return &grantCols{}
	}
}

// unixNS is t in ns for time_ns (0 for the zero time; never negative).
func unixNS(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

// chTime is t as the time column stores it: the epoch for the zero time.
func chTime(t time.Time) time.Time {
	if t.IsZero() || t.Unix() < 0 {
		return time.Unix(0, 0).UTC()
	}
	return t
}

func u16(v int) uint16 {
	return uint16(min(max(v, 0), 65535))
}

func u64(v int64) uint64 {
	return uint64(max(v, 0))
}

type eventCols struct {
	id, session, principal, client, issuer, target, direction, method, tool []string
	rpcID, decision, grant, outcome, payload                                []string
	tm                                                                      []time.Time
	ns, bytes                                                               []uint64
	status                                                                  []uint16
	latency                                                                 []float64
	mtypes                                                                  [][]string
	mcounts                                                                 [][]uint32
	mtotal                                                                  []uint32
	truncated                                                               []uint8
	typeArena                                                               []string // backs the mtypes rows
	countArena                                                              []uint32 // backs the mcounts rows
}

func (c *eventCols) add(r audit.Record) {
	v := r.(*audit.Event)
	c.id = append(c.id, v.EventID)
	c.tm = append(c.tm, chTime(v.Time))
	c.ns = append(c.ns, unixNS(v.Time))
	c.session = append(c.session, v.SessionID)
	c.principal = append(c.principal, v.Principal)
	c.client = append(c.client, v.ClientID)
	c.issuer = append(c.issuer, v.Issuer)
	c.target = append(c.target, v.Target)
	c.direction = append(c.direction, string(v.Direction))
	c.method = append(c.method, v.Method)
	c.tool = append(c.tool, v.Tool)
	c.rpcID = append(c.rpcID, v.JSONRPCID)
	c.decision = append(c.decision, v.DecisionID)
	c.grant = append(c.grant, v.GrantID)
	c.status = append(c.status, u16(v.Status))
	c.outcome = append(c.outcome, v.Outcome)
	c.latency = append(c.latency, v.LatencyMS)
	types, counts, total := c.maskArrays(v.Masked)
	c.mtypes = append(c.mtypes, types)
	c.mcounts = append(c.mcounts, counts)
	c.mtotal = append(c.mtotal, total)
	c.payload = append(c.payload, v.Payload)
	var tr uint8
	if v.Truncated {
		tr = 1
	}
	c.truncated = append(c.truncated, tr)
	c.bytes = append(c.bytes, u64(v.Bytes))
}

// maskArrays turns mask counts into the two parallel arrays stored, sorted
// by type, carved from the builder's arenas.
func (c *eventCols) maskArrays(m map[string]int) ([]string, []uint32, uint32) {
	if len(m) == 0 {
		return []string{}, []uint32{}, 0
	}
	start := len(c.typeArena)
	for t := range m {
		c.typeArena = append(c.typeArena, t)
	}
	types := c.typeArena[start:len(c.typeArena):len(c.typeArena)]
	sort.Strings(types)
	cstart := len(c.countArena)
	var total uint32
	for _, t := range types {
		n := uint32(max(m[t], 0))
		c.countArena = append(c.countArena, n)
		total += n
	}
	return types, c.countArena[cstart:len(c.countArena):len(c.countArena)], total
}

func (c *eventCols) len() int { return len(c.id) }

func (c *eventCols) columns() []any {
	return []any{c.id, c.tm, c.ns, c.session, c.principal, c.client, c.issuer, c.target,
		c.direction, c.method, c.tool, c.rpcID, c.decision, c.grant, c.status, c.outcome,
		c.latency, c.mtypes, c.mcounts, c.mtotal, c.payload, c.truncated, c.bytes}
}

func (c *eventCols) reset() {
	c.id, c.session, c.principal, c.client, c.issuer = c.id[:0], c.session[:0], c.principal[:0], c.client[:0], c.issuer[:0]
	c.target, c.direction, c.method, c.tool = c.target[:0], c.direction[:0], c.method[:0], c.tool[:0]
	c.rpcID, c.decision, c.grant, c.outcome, c.payload = c.rpcID[:0], c.decision[:0], c.grant[:0], c.outcome[:0], c.payload[:0]
	c.tm, c.ns, c.bytes, c.status, c.latency = c.tm[:0], c.ns[:0], c.bytes[:0], c.status[:0], c.latency[:0]
	c.mtypes, c.mcounts, c.mtotal, c.truncated = c.mtypes[:0], c.mcounts[:0], c.mtotal[:0], c.truncated[:0]
	// Rows of the arenas may still be referenced by sent batches' slices:
	// start new arenas rather than overwrite them.
	c.typeArena, c.countArena = nil, nil
}

type decisionCols struct {
	id, session, principal, client, issuer, target, method, tool, rpcID []string
	outcome, reason, policy, grant, request, trace                      []string
	tm                                                                  []time.Time
	ns, latency                                                         []uint64
	status                                                              []uint16
}

func (c *decisionCols) add(r audit.Record) {
	v := r.(*audit.Decision)
	c.id = append(c.id, v.DecisionID)
	c.tm = append(c.tm, chTime(v.Time))
	c.ns = append(c.ns, unixNS(v.Time))
	c.session = append(c.session, v.SessionID)
	c.principal = append(c.principal, v.Principal)
	c.client = append(c.client, v.ClientID)
	c.issuer = append(c.issuer, v.Issuer)
	c.target = append(c.target, v.Target)
	c.method = append(c.method, v.Method)
	c.tool = append(c.tool, v.Tool)
	c.rpcID = append(c.rpcID, v.JSONRPCID)
	c.outcome = append(c.outcome, v.Outcome)
	c.reason = append(c.reason, v.Reason)
	c.policy = append(c.policy, v.PolicyVersion)
	c.grant = append(c.grant, v.GrantID)
	c.request = append(c.request, v.RequestID)
	c.status = append(c.status, u16(v.Status))
	c.latency = append(c.latency, u64(v.LatencyUS))
	c.trace = append(c.trace, v.TraceID)
}

func (c *decisionCols) len() int { return len(c.id) }

func (c *decisionCols) columns() []any {
	return []any{c.id, c.tm, c.ns, c.session, c.principal, c.client, c.issuer, c.target,
		c.method, c.tool, c.rpcID, c.outcome, c.reason, c.policy, c.grant, c.request,
		c.status, c.latency, c.trace}
}

func (c *decisionCols) reset() { *c = decisionCols{} }

type requestCols struct {
	id, request, from, to, actor, principal, client, target, method, tool []string
	reason, decision, grant                                               []string
	tm                                                                    []time.Time
	ns, seq                                                               []uint64
}

func (c *requestCols) add(r audit.Record) {
	v := r.(*audit.RequestEvent)
	c.id = append(c.id, v.EventID)
	c.tm = append(c.tm, chTime(v.Time))
	c.ns = append(c.ns, unixNS(v.Time))
	c.request = append(c.request, v.RequestID)
	c.from = append(c.from, v.FromState)
	c.to = append(c.to, v.ToState)
	c.actor = append(c.actor, v.Actor)
	c.principal = append(c.principal, v.Principal)
	c.client = append(c.client, v.ClientID)
	c.target = append(c.target, v.Target)
	c.method = append(c.method, v.Method)
	c.tool = append(c.tool, v.Tool)
	c.reason = append(c.reason, v.Reason)
	c.decision = append(c.decision, v.DecisionID)
	c.grant = append(c.grant, v.GrantID)
	c.seq = append(c.seq, v.Seq)
}

func (c *requestCols) len() int { return len(c.id) }

func (c *requestCols) columns() []any {
	return []any{c.id, c.tm, c.ns, c.request, c.from, c.to, c.actor, c.principal,
		c.client, c.target, c.method, c.tool, c.reason, c.decision, c.grant, c.seq}
}

func (c *requestCols) reset() { *c = requestCols{} }

type grantCols struct {
	id, grant, transition, actor, principal, client, target, request, reason []string
	tools                                                                    [][]string
	tm, expires                                                              []time.Time
	ns, seq                                                                  []uint64
	uses                                                                     []int64
}

func (c *grantCols) add(r audit.Record) {
	v := r.(*audit.GrantEvent)
	c.id = append(c.id, v.EventID)
	c.tm = append(c.tm, chTime(v.Time))
	c.ns = append(c.ns, unixNS(v.Time))
	c.grant = append(c.grant, v.GrantID)
	c.transition = append(c.transition, v.Transition)
	c.actor = append(c.actor, v.Actor)
	c.principal = append(c.principal, v.Principal)
	c.client = append(c.client, v.ClientID)
	c.target = append(c.target, v.Target)
	tools := v.Tools
	if tools == nil {
		tools = []string{}
	}
	c.tools = append(c.tools, tools)
	c.request = append(c.request, v.RequestID)
	c.expires = append(c.expires, chTime(v.ExpiresAt).Truncate(time.Second))
	c.uses = append(c.uses, v.UsesLeft)
	c.reason = append(c.reason, v.Reason)
	c.seq = append(c.seq, v.Seq)
}

func (c *grantCols) len() int { return len(c.id) }

func (c *grantCols) columns() []any {
	return []any{c.id, c.tm, c.ns, c.grant, c.transition, c.actor, c.principal, c.client,
		c.target, c.tools, c.request, c.expires, c.uses, c.reason, c.seq}
}

func (c *grantCols) reset() { *c = grantCols{} }
