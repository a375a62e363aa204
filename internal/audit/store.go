package audit

import (
	"context"
	"errors"
	"sort"
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
	// Replay returns what was recorded about one session, each row once:
	// its messages, its decisions, and the transitions of the access
	// requests and grants those decisions were held on or used. It
	// returns ErrNoSession when the session has neither messages nor
	// decisions.
	Replay(ctx context.Context, sessionID string) (*Trail, error)
}

// ErrNoSession is Replay's answer for a session nothing was recorded
// about (or whose rows retention has deleted).
var ErrNoSession = errors.New("no such session")

// Trail is everything recorded about one session, as the stores return
// it: each list in time order (then by id), each row once. A session's
// decisions are those recorded with its id, plus those recorded without
// a session id that its messages name (the initialize call: ext_authz
// decides it before the server assigns the session id). Its requests and
// grants are those its decisions name, and the grants its requests
// issued. WriteReplay and Story tell it; both stores return the same
// Trail for the same rows.
type Trail struct {
	SessionID string         `json:"session_id"`
	Events    []Event        `json:"events"`
	Decisions []Decision     `json:"decisions"`
	Requests  []RequestEvent `json:"requests"`
	Grants    []GrantEvent   `json:"grants"`
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
	Principal string // the session's principal (its first non-empty one)
	ClientID  string // the session's client (its first non-empty one)
	Target    string // the session's target (its first non-empty one)
	// Tool and Outcome keep the sessions with at least one message or
	// decision (recorded with the session's id) of that tool, resource URI
	// or prompt, and of that outcome: an auditor looking for who called
	// delete_repository, or for the sessions that had a denial.
	Tool    string
	Outcome string
	Since   time.Time // sessions active at or after Since (last event ≥ Since)
	Until   time.Time // sessions that started before Until (first event < Until)
	Limit   int       // at most this many; default 100
}

// LimitOrDefault is Limit, or the default 100 when Limit is not positive.
func (f SessionFilter) LimitOrDefault() int { return f.limit() }

func (f SessionFilter) limit() int {
	if f.Limit <= 0 {
		return 100
	}
	return f.Limit
}

// SessionSummary describes one session: its messages (events) and the
// decisions recorded with its session id, together.
type SessionSummary struct {
	SessionID string    `json:"session_id"`
	Principal string    `json:"principal"` // first non-empty principal in the session (messages and decisions)
	ClientID  string    `json:"client_id"` // first non-empty client id
	Target    string    `json:"target"`    // first non-empty target
	Start     time.Time `json:"start"`     // first message or decision
	End       time.Time `json:"end"`       // last message or decision
	Events    int64     `json:"events"`    // messages
	Requests  int64     `json:"requests"`  // messages with direction request
	Decisions int64     `json:"decisions"` // ext_authz decisions
	// Denied counts the calls refused: by policy or an approver, not
	// approved within the hold window (or ever), and unauthenticated or
	// forbidden callers (decision outcomes in DeniedOutcomes).
	Denied   int64 `json:"denied"`
	Held     int64 `json:"held"`     // calls held for approval (decisions with a request id)
	Approved int64 `json:"approved"` // held calls that went through once approved
	// Errors counts the error messages of calls that went through
	// (direction error, outcome allow: the server's errors) and the calls
	// the gateway failed or found malformed (decision outcomes error,
	// invalid). A refused call's local reply, if ext_proc records one, is
	// counted by its decision, not again here.
	Errors int64 `json:"errors"`
	Masked int64 `json:"masked"` // values masked, all types
}

// DeniedOutcomes are the decision outcomes SessionSummary.Denied counts.
var DeniedOutcomes = []string{"deny", "approval_required", "unauthenticated", "forbidden"}

// ErrorOutcomes are the decision outcomes SessionSummary.Errors counts.
var ErrorOutcomes = []string{"error", "invalid"}

// Compile-time checks: both backends are full Recorders.
var (
	_ Recorder = (*Pipeline)(nil)
	_ Recorder = (*Embedded)(nil)
)

// requestIDs are the access requests the trail's decisions were held on,
// sorted.
func (t *Trail) requestIDs() []string {
	set := map[string]bool{}
	for _, d := range t.Decisions {
		if d.RequestID != "" {
			set[d.RequestID] = true
		}
	}
	return sortedKeys(set)
}

// RequestIDs are the access requests the trail's decisions were held
// on, sorted: the ones a store reads the request events of.
func (t *Trail) RequestIDs() []string { return t.requestIDs() }

// GrantIDs are the grants the trail's decisions and messages used and
// its requests issued, sorted: the ones a store reads the grant events of.
func (t *Trail) GrantIDs() []string { return t.grantIDs() }

func (t *Trail) grantIDs() []string {
	set := map[string]bool{}
	for _, d := range t.Decisions {
		if d.GrantID != "" {
			set[d.GrantID] = true
		}
	}
	for _, e := range t.Events {
		if e.GrantID != "" {
			set[e.GrantID] = true
		}
	}
	for _, r := range t.Requests {
		if r.GrantID != "" {
			set[r.GrantID] = true
		}
	}
	return sortedKeys(set)
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Sort puts each list of the trail in time order, then by id — the order
// both stores return.
func (t *Trail) Sort() { t.sort() }

func (t *Trail) sort() {
	sort.SliceStable(t.Events, func(i, j int) bool {
		a, b := &t.Events[i], &t.Events[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		return a.EventID < b.EventID
	})
	sort.SliceStable(t.Decisions, func(i, j int) bool {
		a, b := &t.Decisions[i], &t.Decisions[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		return a.DecisionID < b.DecisionID
	})
	// A vote and the transition it causes share a time: within one
	// request (or grant) seq orders them (see RequestEvent.Seq).
	sort.SliceStable(t.Requests, func(i, j int) bool {
		a, b := &t.Requests[i], &t.Requests[j]
		switch {
		case !a.Time.Equal(b.Time):
			return a.Time.Before(b.Time)
		case a.RequestID != b.RequestID:
			return a.RequestID < b.RequestID
		case a.Seq != b.Seq:
			return a.Seq < b.Seq
		}
		return a.EventID < b.EventID
	})
	sort.SliceStable(t.Grants, func(i, j int) bool {
		a, b := &t.Grants[i], &t.Grants[j]
		switch {
		case !a.Time.Equal(b.Time):
			return a.Time.Before(b.Time)
		case a.GrantID != b.GrantID:
			return a.GrantID < b.GrantID
		case a.Seq != b.Seq:
			return a.Seq < b.Seq
		}
		return a.EventID < b.EventID
	})
}
