package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
)

// Store answers Sessions and Replay from ClickHouse. Queries read with
// FINAL so rows sent twice count once. It is also the audit.Destination
// a Pipeline ships to.
type Store struct {
	ch *clickHouse
	// stopRetention stops the retention loop a pipeline's Store runs, and
	// waits for it; nil for a query-only Store.
	stopRetention func()
}

// Connect connects to ClickHouse for queries only (the `sessions` and
// `replay` commands); it creates the schema if missing.
func Connect(ctx context.Context, cfg audit.ClickHouseConfig, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ch, err := dialClickHouse(cfg, log)
	if err != nil {
		return nil, err
	}
	if err := ch.ensureSchema(ctx); err != nil {
		ch.close()
		return nil, err
	}
	return &Store{ch: ch}, nil
}

// NewBatch returns an empty batch for all four tables.
func (s *Store) NewBatch() audit.Batch { return s.ch.newBatch() }

// Close stops the retention loop, if any, and closes the connection.
func (s *Store) Close() error {
	if s.stopRetention != nil {
		s.stopRetention()
	}
	return s.ch.close()
}

// Sessions lists sessions from the events and decisions tables: a
// session's messages and the decisions recorded with its id, counted as
// audit.SessionSummary says.
func (s *Store) Sessions(ctx context.Context, f audit.SessionFilter) ([]audit.SessionSummary, error) {
	c := s.ch
	if err := c.ensureSchema(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.queryTimeout)
	defer cancel()
	var having []string
	var args []any
	if f.Principal != "" {
		having = append(having, "s_principal = ?")
		args = append(args, f.Principal)
	}
	if f.ClientID != "" {
		having = append(having, "s_client = ?")
		args = append(args, f.ClientID)
	}
	if f.Target != "" {
		having = append(having, "s_target = ?")
		args = append(args, f.Target)
	}
	if f.Tool != "" {
		having = append(having, "countIf(tool = ?) > 0")
		args = append(args, f.Tool)
	}
	if f.Outcome != "" {
		having = append(having, "countIf(outcome = ?) > 0")
		args = append(args, f.Outcome)
	}
	if !f.Since.IsZero() {
		having = append(having, "last_ns >= ?")
		args = append(args, unixNS(f.Since))
	}
	if !f.Until.IsZero() {
		having = append(having, "first_ns < ?")
		args = append(args, unixNS(f.Until))
	}
	// One row per message ('e') and per decision ('d'), the columns the
	// summary needs; toString makes LowCardinality and String columns one
	// type across the UNION on every server version.
	q := `SELECT session_id,
    argMinIf(principal, time_ns, principal != '') AS s_principal,
    argMinIf(client_id, time_ns, client_id != '') AS s_client,
    argMinIf(target, time_ns, target != '') AS s_target,
    min(time_ns) AS first_ns, max(time_ns) AS last_ns,
    countIf(k = 'e') AS n_events,
    countIf(k = 'e' AND direction = 'request') AS n_requests,
    countIf(k = 'd') AS n_decisions,
    countIf(k = 'd' AND has(?, outcome)) AS n_denied,
    countIf(k = 'd' AND request_id != '') AS n_held,
    countIf(k = 'd' AND request_id != '' AND outcome = 'allow') AS n_approved,
    countIf(k = 'e' AND direction = 'error' AND outcome = 'allow' OR k = 'd' AND has(?, outcome)) AS n_errors,
    sum(masked_total) AS n_masked
FROM
(
    SELECT 'e' AS k, session_id, time_ns, principal, toString(client_id) AS client_id, toString(target) AS target,
        toString(direction) AS direction, toString(outcome) AS outcome, toString(tool) AS tool, '' AS request_id,
        toUInt64(masked_total) AS masked_total
    FROM ` + c.db + `.events FINAL
    WHERE session_id != ''
    UNION ALL
    SELECT 'd' AS k, session_id, time_ns, principal, toString(client_id) AS client_id, toString(target) AS target,
        '' AS direction, toString(outcome) AS outcome, toString(tool) AS tool, request_id, toUInt64(0) AS masked_total
    FROM ` + c.db + `.decisions FINAL
    WHERE session_id != ''
)
GROUP BY session_id`
	args = append([]any{audit.DeniedOutcomes, audit.ErrorOutcomes}, args...)
	if len(having) > 0 {
		q += "\nHAVING " + strings.Join(having, " AND ")
	}
	q += fmt.Sprintf("\nORDER BY last_ns DESC, session_id\nLIMIT %d", f.LimitOrDefault())
	rows, err := c.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: listing sessions: %w", err)
	}
	defer rows.Close()
	var out []audit.SessionSummary
	for rows.Next() {
		var (
			s                                                   audit.SessionSummary
			first, last                                         uint64
			events, requests, decisions, denied, held, approved uint64
			errors, masked                                      uint64
		)
		if err := rows.Scan(&s.SessionID, &s.Principal, &s.ClientID, &s.Target, &first, &last,
			&events, &requests, &decisions, &denied, &held, &approved, &errors, &masked); err != nil {
			return nil, fmt.Errorf("audit: listing sessions: %w", err)
		}
		s.Start, s.End = nsTime(first), nsTime(last)
		s.Events, s.Requests, s.Decisions = int64(events), int64(requests), int64(decisions)
		s.Denied, s.Held, s.Approved = int64(denied), int64(held), int64(approved)
		s.Errors, s.Masked = int64(errors), int64(masked)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: listing sessions: %w", err)
	}
	return out, nil
}

// Replay returns what was recorded about one session (see audit.Trail):
// its messages, then its decisions (by session id, or named by its
// messages), then the request and grant events those name.
func (s *Store) Replay(ctx context.Context, sessionID string) (*audit.Trail, error) {
	c := s.ch
	if err := c.ensureSchema(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.queryTimeout)
	defer cancel()
	t := &audit.Trail{SessionID: sessionID}
	var err error
	if t.Events, err = s.sessionEvents(ctx, sessionID); err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, e := range t.Events {
		if e.DecisionID != "" {
			ids[e.DecisionID] = true
		}
	}
	if t.Decisions, err = s.sessionDecisions(ctx, sessionID, keys(ids)); err != nil {
		return nil, err
	}
	if len(t.Events) == 0 && len(t.Decisions) == 0 {
		return nil, audit.ErrNoSession
	}
	if t.Requests, err = s.requestEvents(ctx, t.RequestIDs()); err != nil {
		return nil, err
	}
	if t.Grants, err = s.grantEvents(ctx, t.GrantIDs()); err != nil {
		return nil, err
	}
	t.Sort()
	return t, nil
}

func keys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *Store) sessionEvents(ctx context.Context, sessionID string) ([]audit.Event, error) {
	c := s.ch
	rows, err := c.conn.Query(ctx, `SELECT event_id, time_ns, session_id, principal, client_id, issuer, target,
    direction, method, tool, jsonrpc_id, decision_id, grant_id, status, outcome, latency_ms,
    masked_types, masked_counts, payload, truncated, bytes
FROM `+c.db+`.events FINAL
WHERE session_id = ?
ORDER BY time_ns, event_id`, sessionID)
	if err != nil {
		return nil, fmt.Errorf("audit: replaying session: %w", err)
	}
	defer rows.Close()
	var out []audit.Event
	for rows.Next() {
		var (
			e         audit.Event
			ns, bytes uint64
			dir       string
			status    uint16
			types     []string
			counts    []uint32
			truncated uint8
		)
		if err := rows.Scan(&e.EventID, &ns, &e.SessionID, &e.Principal, &e.ClientID, &e.Issuer, &e.Target,
			&dir, &e.Method, &e.Tool, &e.JSONRPCID, &e.DecisionID, &e.GrantID, &status, &e.Outcome, &e.LatencyMS,
			&types, &counts, &e.Payload, &truncated, &bytes); err != nil {
			return nil, fmt.Errorf("audit: replaying session: %w", err)
		}
		e.Time = nsTime(ns)
		e.Direction = audit.Direction(dir)
		e.Status = int(status)
		e.Truncated = truncated == 1
		e.Bytes = int64(bytes)
		if len(types) > 0 && len(types) == len(counts) {
			e.Masked = make(map[string]int, len(types))
			for i, t := range types {
				e.Masked[t] = int(counts[i])
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: replaying session: %w", err)
	}
	return out, nil
}

// sessionDecisions reads the decisions recorded with the session's id and
// those recorded without one that its messages name (a batch message's
// "<id>.<i>" by its <id>). The decisions table is ordered for per-user
// questions, so this reads it whole (with FINAL); sessions and replay are
// operator questions, not the data path.
func (s *Store) sessionDecisions(ctx context.Context, sessionID string, named []string) ([]audit.Decision, error) {
	c := s.ch
	where := "session_id = ?"
	args := []any{sessionID}
	if len(named) > 0 {
		where += " OR session_id = '' AND has(?, splitByChar('.', decision_id)[1])"
		args = append(args, named)
	}
	rows, err := c.conn.Query(ctx, `SELECT decision_id, time_ns, session_id, principal, client_id, issuer, target,
    method, tool, jsonrpc_id, outcome, reason, policy_version, grant_id, request_id, status, latency_us, trace_id
FROM `+c.db+`.decisions FINAL
WHERE `+where+`
ORDER BY time_ns, decision_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: replaying session: decisions: %w", err)
	}
	defer rows.Close()
	var out []audit.Decision
	for rows.Next() {
		var (
			d       audit.Decision
			ns, lat uint64
			status  uint16
		)
		if err := rows.Scan(&d.DecisionID, &ns, &d.SessionID, &d.Principal, &d.ClientID, &d.Issuer, &d.Target,
			&d.Method, &d.Tool, &d.JSONRPCID, &d.Outcome, &d.Reason, &d.PolicyVersion, &d.GrantID, &d.RequestID, &status, &lat, &d.TraceID); err != nil {
			return nil, fmt.Errorf("audit: replaying session: decisions: %w", err)
		}
		d.Time, d.Status, d.LatencyUS = nsTime(ns), int(status), int64(lat)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: replaying session: decisions: %w", err)
	}
	return out, nil
}

func (s *Store) requestEvents(ctx context.Context, ids []string) ([]audit.RequestEvent, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	c := s.ch
	rows, err := c.conn.Query(ctx, `SELECT event_id, time_ns, request_id, from_state, to_state, actor, principal, client_id,
    target, method, tool, reason, decision_id, grant_id, seq
FROM `+c.db+`.request_events FINAL
WHERE has(?, request_id)
ORDER BY time_ns, request_id, seq, event_id`, ids)
	if err != nil {
		return nil, fmt.Errorf("audit: replaying session: requests: %w", err)
	}
	defer rows.Close()
	var out []audit.RequestEvent
	for rows.Next() {
		var (
			r  audit.RequestEvent
			ns uint64
		)
		if err := rows.Scan(&r.EventID, &ns, &r.RequestID, &r.FromState, &r.ToState, &r.Actor, &r.Principal, &r.ClientID,
			&r.Target, &r.Method, &r.Tool, &r.Reason, &r.DecisionID, &r.GrantID, &r.Seq); err != nil {
			return nil, fmt.Errorf("audit: replaying session: requests: %w", err)
		}
		r.Time = nsTime(ns)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: replaying session: requests: %w", err)
	}
	return out, nil
}

func (s *Store) grantEvents(ctx context.Context, ids []string) ([]audit.GrantEvent, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	c := s.ch
	rows, err := c.conn.Query(ctx, `SELECT event_id, time_ns, grant_id, transition, actor, principal, client_id,
    target, tools, request_id, toUInt64(expires_at) AS expires_s, uses_left, reason, seq
FROM `+c.db+`.grant_events FINAL
WHERE has(?, grant_id)
ORDER BY time_ns, grant_id, seq, event_id`, ids)
	if err != nil {
		return nil, fmt.Errorf("audit: replaying session: grants: %w", err)
	}
	defer rows.Close()
	var out []audit.GrantEvent
	for rows.Next() {
		var (
			g           audit.GrantEvent
			ns, expires uint64
		)
		if err := rows.Scan(&g.EventID, &ns, &g.GrantID, &g.Transition, &g.Actor, &g.Principal, &g.ClientID,
			&g.Target, &g.Tools, &g.RequestID, &expires, &g.UsesLeft, &g.Reason, &g.Seq); err != nil {
			return nil, fmt.Errorf("audit: replaying session: grants: %w", err)
		}
		g.Time = nsTime(ns)
		if expires > 0 {
			g.ExpiresAt = time.Unix(int64(expires), 0).UTC()
		}
		if len(g.Tools) == 0 {
			g.Tools = nil
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: replaying session: grants: %w", err)
	}
	return out, nil
}

// nsTime turns a stored time_ns into a UTC time (zero for 0).
func nsTime(ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(ns)).UTC()
}
