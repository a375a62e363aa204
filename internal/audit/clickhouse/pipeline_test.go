package clickhouse

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/audit"
)

type eventRow struct {
	EventID    string    `ch:"event_id"`
	Time       time.Time `ch:"time"`
	TimeNS     uint64    `ch:"time_ns"`
	SessionID  string    `ch:"session_id"`
	Principal  string    `ch:"principal"`
	ClientID   string    `ch:"client_id"`
	Issuer     string    `ch:"issuer"`
	Target     string    `ch:"target"`
	Direction  string    `ch:"direction"`
	Method     string    `ch:"method"`
	Tool       string    `ch:"tool"`
	JSONRPCID  string    `ch:"jsonrpc_id"`
	DecisionID string    `ch:"decision_id"`
	GrantID    string    `ch:"grant_id"`
	Status     uint16    `ch:"status"`
	Outcome    string    `ch:"outcome"`
	LatencyMS  float64   `ch:"latency_ms"`
	Types      []string  `ch:"masked_types"`
	Counts     []uint32  `ch:"masked_counts"`
	Total      uint32    `ch:"masked_total"`
	Payload    string    `ch:"payload"`
	Truncated  uint8     `ch:"truncated"`
	Bytes      uint64    `ch:"bytes"`
}

type decisionRow struct {
	DecisionID    string    `ch:"decision_id"`
	Time          time.Time `ch:"time"`
	TimeNS        uint64    `ch:"time_ns"`
	SessionID     string    `ch:"session_id"`
	Principal     string    `ch:"principal"`
	ClientID      string    `ch:"client_id"`
	Issuer        string    `ch:"issuer"`
	Target        string    `ch:"target"`
	Method        string    `ch:"method"`
	Tool          string    `ch:"tool"`
	JSONRPCID     string    `ch:"jsonrpc_id"`
	Outcome       string    `ch:"outcome"`
	Reason        string    `ch:"reason"`
	PolicyVersion string    `ch:"policy_version"`
	GrantID       string    `ch:"grant_id"`
	RequestID     string    `ch:"request_id"`
	Status        uint16    `ch:"status"`
	LatencyUS     uint64    `ch:"latency_us"`
	TraceID       string    `ch:"trace_id"`
}

type requestRow struct {
	EventID    string    `ch:"event_id"`
	Time       time.Time `ch:"time"`
	TimeNS     uint64    `ch:"time_ns"`
	RequestID  string    `ch:"request_id"`
	FromState  string    `ch:"from_state"`
	ToState    string    `ch:"to_state"`
	Actor      string    `ch:"actor"`
	Principal  string    `ch:"principal"`
	ClientID   string    `ch:"client_id"`
	Target     string    `ch:"target"`
	Method     string    `ch:"method"`
	Tool       string    `ch:"tool"`
	Reason     string    `ch:"reason"`
	DecisionID string    `ch:"decision_id"`
	GrantID    string    `ch:"grant_id"`
	Seq        uint64    `ch:"seq"`
}

type grantRow struct {
	EventID    string    `ch:"event_id"`
	Time       time.Time `ch:"time"`
	TimeNS     uint64    `ch:"time_ns"`
	GrantID    string    `ch:"grant_id"`
	Transition string    `ch:"transition"`
	Actor      string    `ch:"actor"`
	Principal  string    `ch:"principal"`
	ClientID   string    `ch:"client_id"`
	Target     string    `ch:"target"`
	Tools      []string  `ch:"tools"`
	RequestID  string    `ch:"request_id"`
	ExpiresAt  time.Time `ch:"expires_at"`
	UsesLeft   int64     `ch:"uses_left"`
	Reason     string    `ch:"reason"`
	Seq        uint64    `ch:"seq"`
}

// TestRowsLand records every kind of row and reads each table back
// column by column.
func TestRowsLand(t *testing.T) {
	s := sharedServer(t)
	db := testDB(t)
	cfg := testConfig(t, s.Addr(), db)
	cfg.PayloadMaxBytes = 256
	p := startPipeline(t, cfg, audit.Options{})
	long := `{"jsonrpc":"2.0","id":9,"result":{"content":[{"type":"text","text":"` + strings.Repeat("é", 200) + `"}]}}`
	sec := t0.Truncate(time.Second)
	events := []struct {
		name string
		ev   audit.Event
		want eventRow
	}{
		{"request with masks", audit.Event{
			EventID: "ev-request", Time: t0, SessionID: "s1", Principal: "alice", ClientID: "agent-1", Issuer: "https://issuer",
			Target: "github", Direction: audit.DirRequest, Method: "tools/call", Tool: "search", JSONRPCID: "9", DecisionID: "dec-1",
			GrantID: "grant-1", Status: 200, Outcome: "allow", Masked: map[string]int{"field:password": 2, "aws_access_key": 1},
			Payload: `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"search","arguments":{"password":"[MASKED:field:password]"}}}`,
		}, eventRow{
			EventID: "ev-request", Time: sec, TimeNS: uint64(t0.UnixNano()), SessionID: "s1", Principal: "alice", ClientID: "agent-1",
			Issuer: "https://issuer", Target: "github", Direction: "request", Method: "tools/call", Tool: "search", JSONRPCID: "9",
			DecisionID: "dec-1", GrantID: "grant-1", Status: 200, Outcome: "allow",
			Types: []string{"aws_access_key", "field:password"}, Counts: []uint32{1, 2}, Total: 3,
			Payload: `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"search","arguments":{"password":"[MASKED:field:password]"}}}`,
			Bytes:   124,
		}},
		{"response truncated", audit.Event{
			EventID: "ev-response", Time: t0.Add(time.Millisecond), SessionID: "s1", Direction: audit.DirResponse, Method: "tools/call",
			JSONRPCID: "9", Status: 200, Outcome: "allow", LatencyMS: 41.25, Payload: long,
		}, eventRow{
			EventID: "ev-response", Time: sec, TimeNS: uint64(t0.Add(time.Millisecond).UnixNano()), SessionID: "s1",
			Direction: "response", Method: "tools/call", JSONRPCID: "9", Status: 200, Outcome: "allow", LatencyMS: 41.25,
			Types: []string{}, Counts: []uint32{}, Payload: cutUTF8(long, 256), Truncated: 1, Bytes: uint64(len(long)),
		}},
		{"notification", audit.Event{
			EventID: "ev-note", Time: t0.Add(2 * time.Millisecond), SessionID: "s1", Direction: audit.DirNotification,
			Method: "notifications/progress", Payload: `{"jsonrpc":"2.0","method":"notifications/progress"}`, Bytes: 5000,
		}, eventRow{
			EventID: "ev-note", Time: sec, TimeNS: uint64(t0.Add(2 * time.Millisecond).UnixNano()), SessionID: "s1",
			Direction: "notification", Method: "notifications/progress", Types: []string{}, Counts: []uint32{},
			Payload: `{"jsonrpc":"2.0","method":"notifications/progress"}`, Bytes: 5000,
		}},
		{"sse event", audit.Event{
			EventID: "ev-sse", Time: t0.Add(3 * time.Millisecond), SessionID: "s1", Direction: audit.DirSSEEvent, Method: "tools/call",
			JSONRPCID: `"x"`, Masked: map[string]int{"bearer_token": 1}, Payload: `{"jsonrpc":"2.0","id":"x","result":{}}`,
		}, eventRow{
			EventID: "ev-sse", Time: sec, TimeNS: uint64(t0.Add(3 * time.Millisecond).UnixNano()), SessionID: "s1",
			Direction: "sse_event", Method: "tools/call", JSONRPCID: `"x"`, Types: []string{"bearer_token"}, Counts: []uint32{1},
			Total: 1, Payload: `{"jsonrpc":"2.0","id":"x","result":{}}`, Bytes: 38,
		}},
		{"error", audit.Event{
			EventID: "ev-error", Time: t0.Add(4 * time.Millisecond), SessionID: "s1", Direction: audit.DirError, Method: "tools/call",
			Tool: "delete_repo", JSONRPCID: "10", Status: 403, Outcome: "deny",
			Payload: `{"jsonrpc":"2.0","id":10,"error":{"code":-32011,"message":"denied"}}`,
		}, eventRow{
			EventID: "ev-error", Time: sec, TimeNS: uint64(t0.Add(4 * time.Millisecond).UnixNano()), SessionID: "s1",
			Direction: "error", Method: "tools/call", Tool: "delete_repo", JSONRPCID: "10", Status: 403, Outcome: "deny",
			Types: []string{}, Counts: []uint32{}, Payload: `{"jsonrpc":"2.0","id":10,"error":{"code":-32011,"message":"denied"}}`, Bytes: 68,
		}},
	}
	for _, tt := range events {
		ev := tt.ev
		if err := p.Record(&ev); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
	}
	recs := sampleRecords()[2:] // decision, request, two grant events
	for _, r := range recs {
		if err := p.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	// A row without id or time gets both.
	auto := &audit.Event{SessionID: "s2", Direction: audit.DirRequest}
	before := time.Now()
	if err := p.Record(auto); err != nil {
		t.Fatal(err)
	}
	if len(auto.EventID) != 36 || auto.Time.Before(before) || auto.Time.After(time.Now()) {
		t.Fatalf("auto id/time: %q %v", auto.EventID, auto.Time)
	}
	if err := p.Drain(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}

	conn := connect(t, s.Addr())
	ctx := ctxT(t, time.Minute)
	var gotEvents []eventRow
	if err := conn.Select(ctx, &gotEvents, "SELECT * FROM "+db+".events FINAL WHERE session_id = 's1' ORDER BY time_ns"); err != nil {
		t.Fatal(err)
	}
	if len(gotEvents) != len(events) {
		t.Fatalf("%d event rows, want %d", len(gotEvents), len(events))
	}
	for i, tt := range events {
		t.Run("events/"+tt.name, func(t *testing.T) {
			got := gotEvents[i]
			got.Time = got.Time.UTC()
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}

	dec := recs[0].(*audit.Decision)
	var gotDec []decisionRow
	if err := conn.Select(ctx, &gotDec, "SELECT * FROM "+db+".decisions FINAL"); err != nil {
		t.Fatal(err)
	}
	wantDec := []decisionRow{{
		DecisionID: dec.DecisionID, Time: sec, TimeNS: uint64(t0.UnixNano()), SessionID: dec.SessionID, Principal: dec.Principal,
		ClientID: dec.ClientID, Issuer: dec.Issuer, Target: dec.Target, Method: dec.Method, Tool: dec.Tool, JSONRPCID: dec.JSONRPCID,
		Outcome: dec.Outcome, Reason: dec.Reason, PolicyVersion: dec.PolicyVersion, RequestID: dec.RequestID, Status: 403, LatencyUS: 1234,
		TraceID: dec.TraceID,
	}}
	for i := range gotDec {
		gotDec[i].Time = gotDec[i].Time.UTC()
	}
	if d := cmp.Diff(wantDec, gotDec); d != "" {
		t.Errorf("decisions (-want +got):\n%s", d)
	}

	req := recs[1].(*audit.RequestEvent)
	var gotReq []requestRow
	if err := conn.Select(ctx, &gotReq, "SELECT * FROM "+db+".request_events FINAL"); err != nil {
		t.Fatal(err)
	}
	wantReq := []requestRow{{
		EventID: req.EventID, Time: sec, TimeNS: uint64(t0.UnixNano()), RequestID: req.RequestID, FromState: req.FromState,
		ToState: req.ToState, Actor: req.Actor, Principal: req.Principal, ClientID: req.ClientID, Target: req.Target,
		Method: req.Method, Tool: req.Tool, Reason: req.Reason, DecisionID: req.DecisionID, GrantID: req.GrantID, Seq: req.Seq,
	}}
	for i := range gotReq {
		gotReq[i].Time = gotReq[i].Time.UTC()
	}
	if d := cmp.Diff(wantReq, gotReq); d != "" {
		t.Errorf("request_events (-want +got):\n%s", d)
	}

	g := recs[2].(*audit.GrantEvent)
	var gotGr []grantRow
	if err := conn.Select(ctx, &gotGr, "SELECT * FROM "+db+".grant_events FINAL ORDER BY event_id"); err != nil {
		t.Fatal(err)
	}
	wantGr := []grantRow{
		{EventID: "g1", Time: sec, TimeNS: uint64(t0.UnixNano()), GrantID: g.GrantID, Transition: "issued", Actor: g.Actor,
			Principal: g.Principal, ClientID: g.ClientID, Target: g.Target, Tools: g.Tools, RequestID: g.RequestID,
			ExpiresAt: t0.Add(time.Hour).Truncate(time.Second), UsesLeft: -1, Reason: g.Reason, Seq: 1 << 32},
		{EventID: "g2", Time: sec, TimeNS: uint64(t0.UnixNano()), GrantID: g.GrantID, Transition: "expired", Tools: []string{},
			ExpiresAt: time.Unix(0, 0).UTC(), Seq: 2 << 32},
	}
	for i := range gotGr {
		gotGr[i].Time, gotGr[i].ExpiresAt = gotGr[i].Time.UTC(), gotGr[i].ExpiresAt.UTC()
	}
	if d := cmp.Diff(wantGr, gotGr); d != "" {
		t.Errorf("grant_events (-want +got):\n%s", d)
	}
	if st := p.Stats(); st.Recorded != 10 || st.Shipped != 10 || st.SpoolBytes != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestReplayMatchesSession: several interleaved sessions, recorded out
// of time order; Replay returns each session's events in time order and
// Sessions summarizes them.
func TestReplayMatchesSession(t *testing.T) {
	s := sharedServer(t)
	db := testDB(t)
	p := startPipeline(t, testConfig(t, s.Addr(), db), audit.Options{})
	base := time.Now().UTC().Truncate(time.Millisecond)
	sessions := map[string][]*audit.Event{}
	for i, id := range []string{"sa", "sb", "sc"} {
		sessions[id] = sessionEvents(id, 30+i*10, base.Add(time.Duration(i)*time.Second))
	}
	sessions["sb"][4].Principal = "" // first principal stays alice
	sessions["sc"][0].Outcome = "deny"
	// Interleave, and record each session's events newest first.
	for i := 0; i < 50; i++ {
		for _, id := range []string{"sa", "sb", "sc"} {
			evs := sessions[id]
			if j := len(evs) - 1 - i; j >= 0 {
				if err := p.Record(evs[j]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := p.Drain(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, time.Minute)
	for id, evs := range sessions {
		got, err := p.Replay(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]audit.Event, len(evs))
		for i, e := range evs {
			want[i] = normalizeEvent(*e)
		}
		if d := cmp.Diff(want, got.Events); d != "" {
			t.Errorf("replay %s (-want +got):\n%s", id, d)
		}
	}
	sums, err := p.Sessions(ctx, audit.SessionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range sums {
		ids = append(ids, s.SessionID)
	}
	if d := cmp.Diff([]string{"sc", "sb", "sa"}, ids); d != "" {
		t.Fatalf("session order (newest first) (-want +got):\n%s", d)
	}
	sc := sums[0]
	want := audit.SessionSummary{
		SessionID: "sc", Principal: "alice@example.com", ClientID: "agent-1", Target: "github",
		// Denied counts decisions only (an event's outcome is its
		// exchange's, as ext_proc saw it): this fixture has none.
		Start: sessions["sc"][0].Time, End: sessions["sc"][49].Time, Events: 50, Requests: 10, Denied: 0, Errors: 10,
		Masked: maskedTotal(sessions["sc"]),
	}
	if d := cmp.Diff(want, sc); d != "" {
		t.Errorf("summary (-want +got):\n%s", d)
	}
	only, err := p.Sessions(ctx, audit.SessionFilter{Since: sessions["sb"][39].Time, Limit: 5})
	if err != nil || len(only) != 2 {
		t.Fatalf("since filter: %v %v", only, err)
	}
	none, err := p.Sessions(ctx, audit.SessionFilter{Principal: "mallory"})
	if err != nil || len(none) != 0 {
		t.Fatalf("principal filter: %v %v", none, err)
	}
}

func maskedTotal(evs []*audit.Event) int64 {
	var n int64
	for _, e := range evs {
		for _, c := range e.Masked {
			n += int64(c)
		}
	}
	return n
}

// TestOpenWithClickHouseDown: Open succeeds and Record works while
// nothing listens at the address; rows wait in the spool.
func TestOpenWithClickHouseDown(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:1", "airlock")
	p := startPipeline(t, cfg, audit.Options{})
	for _, e := range sessionEvents("down", 20, t0) {
		if err := p.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.Drain(ctx); err == nil {
		t.Fatal("drained with ClickHouse down")
	}
	if st := p.Stats(); st.Recorded != 20 || st.Shipped != 0 || st.SpoolBytes == 0 {
		t.Fatalf("stats %+v", st)
	}
}
