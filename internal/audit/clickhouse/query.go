package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
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

// Sessions lists sessions from the events table.
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
	if f.Target != "" {
		having = append(having, "s_target = ?")
		args = append(args, f.Target)
	}
	if !f.Since.IsZero() {
		having = append(having, "last_ns >= ?")
		args = append(args, unixNS(f.Since))
	}
	if !f.Until.IsZero() {
		having = append(having, "first_ns < ?")
		args = append(args, unixNS(f.Until))
	}
	q := `SELECT session_id,
    argMinIf(principal, time_ns, principal != '') AS s_principal,
    argMinIf(client_id, time_ns, client_id != '') AS s_client,
    argMinIf(target, time_ns, target != '') AS s_target,
    min(time_ns) AS first_ns, max(time_ns) AS last_ns,
    count() AS n_events,
    countIf(direction = 'request') AS n_requests,
    countIf(outcome = 'deny') AS n_denied,
    countIf(direction = 'error') AS n_errors,
    sum(masked_total) AS n_masked
FROM ` + c.db + `.events FINAL
WHERE session_id != ''
GROUP BY session_id`
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
			s                                        audit.SessionSummary
			first, last                              uint64
			events, requests, denied, errors, masked uint64
		)
		if err := rows.Scan(&s.SessionID, &s.Principal, &s.ClientID, &s.Target, &first, &last,
			&events, &requests, &denied, &errors, &masked); err != nil {
			return nil, fmt.Errorf("audit: listing sessions: %w", err)
		}
		s.Start, s.End = nsTime(first), nsTime(last)
		s.Events, s.Requests, s.Denied, s.Errors, s.Masked = int64(events), int64(requests), int64(denied), int64(errors), int64(masked)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: listing sessions: %w", err)
	}
	return out, nil
}

// Replay returns one session's events in order.
func (s *Store) Replay(ctx context.Context, sessionID string) ([]audit.Event, error) {
	c := s.ch
	if err := c.ensureSchema(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.queryTimeout)
	defer cancel()
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

// nsTime turns a stored time_ns into a UTC time (zero for 0).
func nsTime(ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(ns)).UTC()
}
