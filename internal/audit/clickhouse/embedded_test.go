package clickhouse

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/audit"
)

// mixedSessions is a fixture of several sessions with every direction,
// masks, a truncated payload, an empty principal on a first event, and
// events across two days.
func mixedSessions(base time.Time) []*audit.Event {
	var out []*audit.Event
	for i, id := range []string{"m1", "m2", "m3"} {
		evs := sessionEvents(id, 20+5*i, base.Add(time.Duration(i)*time.Minute))
		out = append(out, evs...)
	}
	out[0].Principal = "" // m1's principal comes from its second event
	out[21].Outcome = "deny"
	out[22].Payload = strings.Repeat("ü", 40000) // cut at payload_max_bytes
	// m3 continues the next day.
	late := sessionEvents("m3", 3, base.Add(24*time.Hour))
	for _, e := range late {
		e.Target = "jira"
	}
	out = append(out, late...)
	for _, e := range out {
		e.EventID = audit.NewID()
	}
	return out
}

// mixedDecisions are decisions, access-request and grant rows for
// mixedSessions' sessions: m1's initialize decided before it had a session
// id (named by its first event), a policy denial, a call held and
// approved with its request and grant rows, a call held past the window,
// a call held and denied, an unauthenticated call, a batch ("<id>.1"
// without a session, which no message names); and another session's.
func mixedDecisions(base time.Time, evs []*audit.Event) []audit.Record {
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	evs[0].DecisionID = "d-m1-init"
	evs[5].DecisionID, evs[5].GrantID = "d-m1-ok", "g-m1"
	// A refused call's local reply as ext_proc may record it: counted by
	// its decision, not as an error.
	evs[4].Outcome = "deny"
	d := func(id string, ms int, outcome, request, grant string) *audit.Decision {
		return &audit.Decision{DecisionID: id, Time: at(ms), SessionID: "m1", Principal: "alice@example.com", ClientID: "agent-1",
			Issuer: "https://issuer.example", Target: "github", Method: "tools/call", Tool: "delete_repo", JSONRPCID: "9",
			Outcome: outcome, Reason: outcome + " because", PolicyVersion: "v1", RequestID: request, GrantID: grant, Status: 403, LatencyUS: 1500}
	}
	init := d("d-m1-init", -1, "allow", "", "")
	init.SessionID, init.Method, init.Tool = "", "initialize", ""
	unauth := d("d-m1-unauth", 15, "unauthenticated", "", "")
	unauth.Principal, unauth.ClientID, unauth.Issuer = "", "", ""
	batch := d("d-x.1", 16, "deny", "", "")
	batch.SessionID = ""
	other := d("d-m2-deny", 30000, "deny", "req-m2", "")
	other.SessionID = "m2"
	return []audit.Record{
		init,
		d("d-m1-deny", 2, "deny", "", ""),
		&audit.RequestEvent{EventID: audit.NewID(), Time: at(3), RequestID: "req-m1", ToState: "pending", Actor: "alice@example.com",
			Principal: "alice@example.com", Target: "github", Method: "tools/call", Tool: "delete_repo", Reason: "cleanup", DecisionID: "d-m1-ok"},
		&audit.RequestEvent{EventID: audit.NewID(), Time: at(4), RequestID: "req-m1", FromState: "pending", ToState: "approved", Actor: "bob",
			Principal: "alice@example.com", Target: "github", Method: "tools/call", Tool: "delete_repo", Reason: "fine", DecisionID: "d-m1-ok", GrantID: "g-m1"},
		&audit.GrantEvent{EventID: audit.NewID(), Time: at(4), GrantID: "g-m1", Transition: "issued", Actor: "bob", Principal: "alice@example.com",
			Target: "github", Tools: []string{"delete_repo"}, RequestID: "req-m1", ExpiresAt: base.Add(time.Hour + 300*time.Millisecond), UsesLeft: 1},
		&audit.GrantEvent{EventID: audit.NewID(), Time: at(5), GrantID: "g-m1", Transition: "consumed", Principal: "alice@example.com",
			Target: "github", RequestID: "req-m1", UsesLeft: 0},
		d("d-m1-ok", 5, "allow", "req-m1", "g-m1"),
		&audit.RequestEvent{EventID: audit.NewID(), Time: at(6), RequestID: "req-m1-wait", ToState: "pending", Actor: "alice@example.com"},
		d("d-m1-wait", 7, "approval_required", "req-m1-wait", ""),
		&audit.RequestEvent{EventID: audit.NewID(), Time: at(8), RequestID: "req-m1-no", ToState: "pending", Actor: "alice@example.com"},
		&audit.RequestEvent{EventID: audit.NewID(), Time: at(9), RequestID: "req-m1-no", FromState: "pending", ToState: "denied", Actor: "bob", Reason: "no"},
		d("d-m1-no", 9, "deny", "req-m1-no", ""),
		d("d-m1-error", 10, "error", "", ""),
		unauth,
		batch,
		other,
		&audit.RequestEvent{EventID: audit.NewID(), Time: at(30001), RequestID: "req-m2", ToState: "pending"},
		&audit.GrantEvent{EventID: audit.NewID(), Time: at(30002), GrantID: "g-other", Transition: "issued"},
	}
}

// TestEmbeddedMatchesClickHouse: the same rows recorded into ClickHouse
// and into the embedded store give the same Sessions and Replay answers:
// messages, decisions (one joined through its message), requests and
// grants, the same counts, the same "no such session".
func TestEmbeddedMatchesClickHouse(t *testing.T) {
	s := sharedServer(t)
	cfg := testConfig(t, s.Addr(), testDB(t))
	cfg.PayloadMaxBytes = 1000
	p := startPipeline(t, cfg, audit.Options{})
	e, err := audit.OpenEmbedded(cfg, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctxT(t, 10*time.Second)) })
	base := time.Now().UTC().Add(-25 * time.Hour).Truncate(time.Microsecond)
	evs := mixedSessions(base)
	var recs []audit.Record
	for _, r := range mixedDecisions(base, evs) {
		recs = append(recs, r)
	}
	for _, ev := range evs {
		recs = append(recs, ev)
	}
	for _, r := range recs {
		if err := p.Record(copyRecord(r)); err != nil {
			t.Fatal(err)
		}
		if err := e.Record(copyRecord(r)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := ctxT(t, time.Minute)
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	filters := []audit.SessionFilter{
		{},
		{Principal: "alice@example.com", Limit: 2},
		{Target: "github"},
		{Since: base.Add(90 * time.Second)},
		{Until: base.Add(30 * time.Second)},
		{Principal: "nobody"},
		{ClientID: "agent-1"},
		{ClientID: "agent-9"},
		{Tool: "delete_repo"},
		{Outcome: "unauthenticated"},
		{Outcome: "deny", Tool: "search_issues"},
		{Outcome: "approval_required", Target: "github", Principal: "alice@example.com"},
	}
	// The sessions each filter keeps, newest first, so a filter that
	// keeps everything (or nothing) in both stores does not pass.
	wantIDs := map[int][]string{6: {"m3", "m2", "m1"}, 7: nil, 8: {"m2", "m1"}, 9: {"m1"}, 10: {"m2", "m1"}, 11: {"m1"}}
	for i, f := range filters {
		want, err := p.Sessions(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Sessions(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("Sessions(%+v) (-clickhouse +embedded):\n%s", f, d)
		}
		if ids, ok := wantIDs[i]; ok {
			var have []string
			for _, s := range want {
				have = append(have, s.SessionID)
			}
			if d := cmp.Diff(ids, have); d != "" {
				t.Errorf("Sessions(%+v) from ClickHouse (-want +got):\n%s", f, d)
			}
		}
	}
	for _, id := range []string{"m1", "m2", "m3"} {
		want, err := p.Replay(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Replay(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("Replay(%s) (-clickhouse +embedded):\n%s", id, d)
		}
	}
	m1, _ := p.Replay(ctx, "m1")
	if len(m1.Decisions) != 7 || m1.Decisions[0].DecisionID != "d-m1-init" || len(m1.Requests) != 5 || len(m1.Grants) != 2 {
		t.Errorf("m1 from ClickHouse: %d decisions (first %+v), %d request rows, %d grant rows; want 7 (initialize first), 5, 2",
			len(m1.Decisions), m1.Decisions[0], len(m1.Requests), len(m1.Grants))
	}
	for name, st := range map[string]audit.Store{"clickhouse": p, "embedded": e} {
		if _, err := st.Replay(ctx, "none"); !errors.Is(err, audit.ErrNoSession) {
			t.Errorf("%s: Replay(none): %v, want ErrNoSession", name, err)
		}
	}
	all, _ := e.Sessions(ctx, audit.SessionFilter{})
	if len(all) != 3 || all[0].SessionID != "m3" || all[0].Events != 33 {
		t.Fatalf("embedded sessions: %+v", all)
	}
	var s1 audit.SessionSummary
	for _, s := range all {
		if s.SessionID == "m1" {
			s1 = s
		}
	}
	if s1.Decisions != 6 || s1.Denied != 4 || s1.Held != 3 || s1.Approved != 1 || s1.Errors != 3+1 {
		t.Errorf("m1 counts: %+v; want 6 decisions, 4 denied, 3 held, 1 approved, 4 errors", s1)
	}
}

// copyRecord returns a copy of r, so both stores get their own.
func copyRecord(r audit.Record) audit.Record {
	switch v := r.(type) {
	case *audit.Event:
		c := *v
		return &c
	case *audit.Decision:
		c := *v
		return &c
	case *audit.RequestEvent:
		c := *v
		return &c
	case *audit.GrantEvent:
		c := *v
		return &c
	}
	panic("unknown record")
}
