package audit

import (
	"context"
	"time"
)

// Sink records audit rows. Record never blocks on the disk or on
// ClickHouse; it returns an error only for a nil row, after Close, or —
// under full_policy fail_closed — ErrSpoolFull when there is no room (the
// caller must then deny or fail the message).
type Sink interface {
	Record(r Record) error
}

// Store answers questions about recorded sessions.
type Store interface {
	// Sessions lists sessions, the most recently active first.
	Sessions(ctx context.Context, f SessionFilter) ([]SessionSummary, error)
	// Replay returns the events of one session in the order they
	// happened (time, then event id), each once.
	Replay(ctx context.Context, sessionID string) ([]Event, error)
}

// Recorder is a running audit backend: the ClickHouse pipeline or the
// embedded store.
type Recorder interface {
	Sink
	Store
	// Drain waits until every row recorded so far is stored where
	// Sessions and Replay (and ClickHouse queries) see it, or ctx ends.
	Drain(ctx context.Context) error
	// Stats returns the counters since Open.
	Stats() Stats
	// Close stops accepting rows and stores what it can before ctx ends;
	// rows still in the spool are shipped at the next start.
	Close(ctx context.Context) error
}

// SessionFilter narrows Sessions; zero fields match everything.
type SessionFilter struct {
	Principal string    // the session's principal (its first non-empty one)
	Target    string    // the session's target (its first non-empty one)
	Since     time.Time // sessions active at or after Since (last event ≥ Since)
	Until     time.Time // sessions that started before Until (first event < Until)
	Limit     int       // at most this many; default 100
}

// LimitOrDefault is Limit, or the default 100 when Limit is not positive.
func (f SessionFilter) LimitOrDefault() int { return f.limit() }

func (f SessionFilter) limit() int {
	if f.Limit <= 0 {
		return 100
	}
	return f.Limit
}

// SessionSummary describes one session.
type SessionSummary struct {
	SessionID string    `json:"session_id"`
	Principal string    `json:"principal"` // first non-empty principal in the session
	ClientID  string    `json:"client_id"` // first non-empty client id
	Target    string    `json:"target"`    // first non-empty target
	Start     time.Time `json:"start"`     // first event
	End       time.Time `json:"end"`       // last event
	Events    int64     `json:"events"`    // messages
	Requests  int64     `json:"requests"`  // messages with direction request
	Denied    int64     `json:"denied"`    // messages with outcome deny
	Errors    int64     `json:"errors"`    // messages with direction error
	Masked    int64     `json:"masked"`    // values masked, all types
}

// Compile-time checks: both backends are full Recorders.
var (
	_ Recorder = (*Pipeline)(nil)
	_ Recorder = (*Embedded)(nil)
)
