package clickhouse

import (
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

// TestEmbeddedMatchesClickHouse: the same events recorded into ClickHouse
// and into the embedded store give the same Sessions and Replay answers.
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
	for _, ev := range mixedSessions(base) {
		a, b := *ev, *ev
		if err := p.Record(&a); err != nil {
			t.Fatal(err)
		}
		if err := e.Record(&b); err != nil {
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
	}
	for _, f := range filters {
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
	}
	for _, id := range []string{"m1", "m2", "m3", "none"} {
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
	all, _ := e.Sessions(ctx, audit.SessionFilter{})
	if len(all) != 3 || all[0].SessionID != "m3" || all[0].Events != 33 {
		t.Fatalf("embedded sessions: %+v", all)
	}
}
