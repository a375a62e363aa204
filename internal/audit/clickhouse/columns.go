package clickhouse

import (
	"sort"
	"strings"
	"time"
	"unsafe"

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

// colBuilder collects rows of one table as columns. A builder is reused
// batch after batch: reset keeps what the next batch will need (reuse,
// strArena.reset) instead of growing every column again.
type colBuilder interface {
	// add appends r's row. r and its strings are valid only during the
	// call (the shipper decodes rows in place, aliasing the segment it
	// read): add copies what it keeps into the builder's arena.
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

// What a builder keeps between batches: column capacity up to keepRows
// rows (the default batch_size is 10,000) and an arena block up to
// keepArena bytes, and only while batches use a good part of them: after
// smallBatches batches in a row that used less than a quarter, it lets
// them go. Under a load, steady or bursty, a batch then allocates nothing
// for its columns; a burst or one batch of batch_bytes of large payloads
// is let go once the load is lighter for a while, not pinned for the life
// of the process.
const (
	keepRows     = 16 << 10
	keepArena    = 4 << 20
	arenaBlock   = 64 << 10 // the first block of an arena
	smallBatches = 8
)

// reuse empties a column for the next batch: it keeps its capacity
// unless the builder lets go (strArena.reset) or it is over keepRows
// rows. The rows are cleared so that they pin nothing (strings into an
// arena block let go of).
func reuse[T any](letGo bool, s []T) []T {
	if letGo || cap(s) > keepRows {
		return nil
	}
	clear(s)
	return s[:0]
}

// strArena holds the bytes of a builder's strings: add copies each string
// it keeps into it, one append instead of one allocation per string. A
// full block is not grown but followed by a new one (strings already made
// keep the old block alive); reset keeps the last block for the next
// batch. Its strings are valid until reset: the columns holding them are
// reset at the same time, and the INSERT copied them (clickhouse-go's
// columns hold their own bytes). It also counts the builder's small
// batches in a row.
type strArena struct {
	buf        []byte
	used       int // bytes copied since the last reset, across blocks
	small      int // batches in a row that used less than a quarter of the columns
	smallBytes int // batches in a row that used less than a quarter of the block
}

func (a *strArena) str(s string) string {
	if len(s) == 0 {
		return ""
	}
	if cap(a.buf)-len(a.buf) < len(s) {
		a.buf = make([]byte, 0, max(min(2*cap(a.buf), keepArena), len(s), arenaBlock))
	}
	n := len(a.buf)
	a.buf = append(a.buf, s...)
	a.used += len(s)
	return unsafe.String(&a.buf[n], len(s))
}

// reset makes the arena free for the next batch, whose builder used rows
// of its capRows rows of columns, and reports whether the builder lets go
// of its columns (the smallBatches-th small batch in a row). The arena
// keeps its last block unless that is over keepArena bytes, or the
// builder lets go, or smallBatches batches in a row used less than a
// quarter of it.
func (a *strArena) reset(rows, capRows int) (letGo bool) {
	a.small = streak(a.small, rows < capRows/4)
	a.smallBytes = streak(a.smallBytes, a.used < cap(a.buf)/4)
	letGo = a.small >= smallBatches
	if letGo {
		a.small = 0
	}
	if letGo || cap(a.buf) > keepArena || a.smallBytes >= smallBatches {
		a.buf, a.smallBytes = nil, 0
	} else {
		a.buf = a.buf[:0]
	}
	a.used = 0
	return letGo
}

func streak(n int, small bool) int {
	if small {
		return n + 1
	}
	return 0
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
	a                                                                       strArena
}

func (c *eventCols) add(r audit.Record) {
	v := r.(*audit.Event)
	c.id = append(c.id, c.a.str(v.EventID))
	c.tm = append(c.tm, chTime(v.Time))
	c.ns = append(c.ns, unixNS(v.Time))
	c.session = append(c.session, c.a.str(v.SessionID))
	c.principal = append(c.principal, c.a.str(v.Principal))
	c.client = append(c.client, c.a.str(v.ClientID))
	c.issuer = append(c.issuer, c.a.str(v.Issuer))
	c.target = append(c.target, c.a.str(v.Target))
	c.direction = append(c.direction, c.a.str(string(v.Direction)))
	c.method = append(c.method, c.a.str(v.Method))
	c.tool = append(c.tool, c.a.str(v.Tool))
	c.rpcID = append(c.rpcID, c.a.str(v.JSONRPCID))
	c.decision = append(c.decision, c.a.str(v.DecisionID))
	c.grant = append(c.grant, c.a.str(v.GrantID))
	c.status = append(c.status, u16(v.Status))
	c.outcome = append(c.outcome, c.a.str(v.Outcome))
	c.latency = append(c.latency, v.LatencyMS)
	types, counts, total := c.maskArrays(v.Masked)
	c.mtypes = append(c.mtypes, types)
	c.mcounts = append(c.mcounts, counts)
	c.mtotal = append(c.mtotal, total)
	c.payload = append(c.payload, c.a.str(v.Payload))
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
		c.typeArena = append(c.typeArena, c.a.str(t))
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
	d := c.a.reset(len(c.id), cap(c.id))
	c.id, c.session, c.principal, c.client, c.issuer = reuse(d, c.id), reuse(d, c.session), reuse(d, c.principal), reuse(d, c.client), reuse(d, c.issuer)
	c.target, c.direction, c.method, c.tool = reuse(d, c.target), reuse(d, c.direction), reuse(d, c.method), reuse(d, c.tool)
	c.rpcID, c.decision, c.grant, c.outcome, c.payload = reuse(d, c.rpcID), reuse(d, c.decision), reuse(d, c.grant), reuse(d, c.outcome), reuse(d, c.payload)
	c.tm, c.ns, c.bytes, c.status, c.latency = reuse(d, c.tm), reuse(d, c.ns), reuse(d, c.bytes), reuse(d, c.status), reuse(d, c.latency)
	c.mtypes, c.mcounts, c.mtotal, c.truncated = reuse(d, c.mtypes), reuse(d, c.mcounts), reuse(d, c.mtotal), reuse(d, c.truncated)
	// The INSERT copied the arrays' rows: the arenas backing them are
	// written again.
	c.typeArena, c.countArena = reuse(d, c.typeArena), reuse(d, c.countArena)
}

type decisionCols struct {
	id, session, principal, client, issuer, target, method, tool, rpcID []string
	outcome, reason, policy, grant, request, trace                      []string
	tm                                                                  []time.Time
	ns, latency                                                         []uint64
	status                                                              []uint16
	a                                                                   strArena
}

func (c *decisionCols) add(r audit.Record) {
	v := r.(*audit.Decision)
	c.id = append(c.id, c.a.str(v.DecisionID))
	c.tm = append(c.tm, chTime(v.Time))
	c.ns = append(c.ns, unixNS(v.Time))
	c.session = append(c.session, c.a.str(v.SessionID))
	c.principal = append(c.principal, c.a.str(v.Principal))
	c.client = append(c.client, c.a.str(v.ClientID))
	c.issuer = append(c.issuer, c.a.str(v.Issuer))
	c.target = append(c.target, c.a.str(v.Target))
	c.method = append(c.method, c.a.str(v.Method))
	c.tool = append(c.tool, c.a.str(v.Tool))
	c.rpcID = append(c.rpcID, c.a.str(v.JSONRPCID))
	c.outcome = append(c.outcome, c.a.str(v.Outcome))
	c.reason = append(c.reason, c.a.str(v.Reason))
	c.policy = append(c.policy, c.a.str(v.PolicyVersion))
	c.grant = append(c.grant, c.a.str(v.GrantID))
	c.request = append(c.request, c.a.str(v.RequestID))
	c.status = append(c.status, u16(v.Status))
	c.latency = append(c.latency, u64(v.LatencyUS))
	c.trace = append(c.trace, c.a.str(v.TraceID))
}

func (c *decisionCols) len() int { return len(c.id) }

func (c *decisionCols) columns() []any {
	return []any{c.id, c.tm, c.ns, c.session, c.principal, c.client, c.issuer, c.target,
		c.method, c.tool, c.rpcID, c.outcome, c.reason, c.policy, c.grant, c.request,
		c.status, c.latency, c.trace}
}

func (c *decisionCols) reset() {
	d := c.a.reset(len(c.id), cap(c.id))
	c.id, c.session, c.principal, c.client, c.issuer = reuse(d, c.id), reuse(d, c.session), reuse(d, c.principal), reuse(d, c.client), reuse(d, c.issuer)
	c.target, c.method, c.tool, c.rpcID = reuse(d, c.target), reuse(d, c.method), reuse(d, c.tool), reuse(d, c.rpcID)
	c.outcome, c.reason, c.policy, c.grant, c.request, c.trace = reuse(d, c.outcome), reuse(d, c.reason), reuse(d, c.policy), reuse(d, c.grant), reuse(d, c.request), reuse(d, c.trace)
	c.tm, c.ns, c.latency, c.status = reuse(d, c.tm), reuse(d, c.ns), reuse(d, c.latency), reuse(d, c.status)
}

type requestCols struct {
	id, request, from, to, actor, principal, client, target, method, tool []string
	reason, decision, grant                                               []string
	tm                                                                    []time.Time
	ns, seq                                                               []uint64
	a                                                                     strArena
}

func (c *requestCols) add(r audit.Record) {
	v := r.(*audit.RequestEvent)
	c.id = append(c.id, c.a.str(v.EventID))
	c.tm = append(c.tm, chTime(v.Time))
	c.ns = append(c.ns, unixNS(v.Time))
	c.request = append(c.request, c.a.str(v.RequestID))
	c.from = append(c.from, c.a.str(v.FromState))
	c.to = append(c.to, c.a.str(v.ToState))
	c.actor = append(c.actor, c.a.str(v.Actor))
	c.principal = append(c.principal, c.a.str(v.Principal))
	c.client = append(c.client, c.a.str(v.ClientID))
	c.target = append(c.target, c.a.str(v.Target))
	c.method = append(c.method, c.a.str(v.Method))
	c.tool = append(c.tool, c.a.str(v.Tool))
	c.reason = append(c.reason, c.a.str(v.Reason))
	c.decision = append(c.decision, c.a.str(v.DecisionID))
	c.grant = append(c.grant, c.a.str(v.GrantID))
	c.seq = append(c.seq, v.Seq)
}

func (c *requestCols) len() int { return len(c.id) }

func (c *requestCols) columns() []any {
	return []any{c.id, c.tm, c.ns, c.request, c.from, c.to, c.actor, c.principal,
		c.client, c.target, c.method, c.tool, c.reason, c.decision, c.grant, c.seq}
}

func (c *requestCols) reset() {
	d := c.a.reset(len(c.id), cap(c.id))
	c.id, c.request, c.from, c.to, c.actor = reuse(d, c.id), reuse(d, c.request), reuse(d, c.from), reuse(d, c.to), reuse(d, c.actor)
	c.principal, c.client, c.target, c.method, c.tool = reuse(d, c.principal), reuse(d, c.client), reuse(d, c.target), reuse(d, c.method), reuse(d, c.tool)
	c.reason, c.decision, c.grant = reuse(d, c.reason), reuse(d, c.decision), reuse(d, c.grant)
	c.tm, c.ns, c.seq = reuse(d, c.tm), reuse(d, c.ns), reuse(d, c.seq)
}

type grantCols struct {
	id, grant, transition, actor, principal, client, target, request, reason []string
	tools                                                                    [][]string
	tm, expires                                                              []time.Time
	ns, seq                                                                  []uint64
	uses                                                                     []int64
	toolArena                                                                []string // backs the tools rows
	a                                                                        strArena
}

func (c *grantCols) add(r audit.Record) {
	v := r.(*audit.GrantEvent)
	c.id = append(c.id, c.a.str(v.EventID))
	c.tm = append(c.tm, chTime(v.Time))
	c.ns = append(c.ns, unixNS(v.Time))
	c.grant = append(c.grant, c.a.str(v.GrantID))
	c.transition = append(c.transition, c.a.str(v.Transition))
	c.actor = append(c.actor, c.a.str(v.Actor))
	c.principal = append(c.principal, c.a.str(v.Principal))
	c.client = append(c.client, c.a.str(v.ClientID))
	c.target = append(c.target, c.a.str(v.Target))
	if len(v.Tools) == 0 {
		c.tools = append(c.tools, []string{})
	} else {
		start := len(c.toolArena)
		for _, t := range v.Tools {
			c.toolArena = append(c.toolArena, c.a.str(t))
		}
		c.tools = append(c.tools, c.toolArena[start:len(c.toolArena):len(c.toolArena)])
	}
	c.request = append(c.request, c.a.str(v.RequestID))
	c.expires = append(c.expires, chTime(v.ExpiresAt).Truncate(time.Second))
	c.uses = append(c.uses, v.UsesLeft)
	c.reason = append(c.reason, c.a.str(v.Reason))
	c.seq = append(c.seq, v.Seq)
}

func (c *grantCols) len() int { return len(c.id) }

func (c *grantCols) columns() []any {
	return []any{c.id, c.tm, c.ns, c.grant, c.transition, c.actor, c.principal, c.client,
		c.target, c.tools, c.request, c.expires, c.uses, c.reason, c.seq}
}

func (c *grantCols) reset() {
	d := c.a.reset(len(c.id), cap(c.id))
	c.id, c.grant, c.transition, c.actor, c.principal = reuse(d, c.id), reuse(d, c.grant), reuse(d, c.transition), reuse(d, c.actor), reuse(d, c.principal)
	c.client, c.target, c.request, c.reason = reuse(d, c.client), reuse(d, c.target), reuse(d, c.request), reuse(d, c.reason)
	c.tools, c.tm, c.expires, c.ns, c.seq, c.uses = reuse(d, c.tools), reuse(d, c.tm), reuse(d, c.expires), reuse(d, c.ns), reuse(d, c.seq), reuse(d, c.uses)
	c.toolArena = reuse(d, c.toolArena)
}
