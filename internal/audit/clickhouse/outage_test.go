package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	chtest "github.com/airlock-mcp/airlock/test/clickhouse"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/syncbuf"
)

// storedIDs returns every event id in db.events (FINAL) and the raw row
// count.
func storedIDs(t *testing.T, addr, db string) (ids []string, raw uint64) {
	t.Helper()
	conn := connect(t, addr)
	ctx := ctxT(t, time.Minute)
	rows, err := conn.Query(ctx, "SELECT event_id FROM "+db+".events FINAL ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids, count(t, conn, "SELECT count() FROM "+db+".events")
}

func recordN(t *testing.T, r audit.Sink, session string, n int, ids *[]string) {
	t.Helper()
	for i := range n {
		e := &audit.Event{SessionID: fmt.Sprint(session, i%7), Principal: "alice", Direction: audit.DirRequest, Method: "tools/call",
			Tool: "t", Payload: fmt.Sprintf(`{"i":%d}`, i)}
		if err := r.Record(e); err != nil {
			t.Fatalf("Record during %s: %v", session, err)
		}
		*ids = append(*ids, e.EventID)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClickHouseOutage: ClickHouse is killed mid-session while rows keep
// coming; Record keeps succeeding; when ClickHouse is back the spool
// drains, and the table holds every recorded event exactly once.
func TestClickHouseOutage(t *testing.T) {
	srv := chtest.StartT(t)
	db := testDB(t)
	var logs syncbuf.Buffer
	p := startPipeline(t, testConfig(t, srv.Addr(), db), audit.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	var ids []string
	recordN(t, p, "before", 2000, &ids)
	waitFor(t, "the first rows to land", func() bool { return p.Stats().Shipped > 0 })
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	recordN(t, p, "during", 3000, &ids)
	// Shipping fails while it is down: wait for the shipper to notice.
	waitFor(t, "a failed write", func() bool { return p.Stats().ShipErrors > 0 })
	recordN(t, p, "during", 1000, &ids)
	if err := srv.Restart(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	recordN(t, p, "after", 1000, &ids)
	if err := p.Drain(ctxT(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, raw := storedIDs(t, srv.Addr(), db)
	sort.Strings(ids)
	if d := cmp.Diff(ids, got); d != "" {
		t.Fatalf("stored ids differ from recorded ones (-recorded +stored):\n%s", d)
	}
	t.Logf("recorded %d, stored %d (raw rows %d), ship errors %d", len(ids), len(got), raw, p.Stats().ShipErrors)
	if !strings.Contains(logs.String(), "rows stay in the spool") || !strings.Contains(logs.String(), "accepts rows again") {
		t.Errorf("outage not logged:\n%s", logs.String())
	}
}

// TestCrashAfterSendBeforeDelete: the shipper stops after ClickHouse
// acknowledged a batch but before deleting its segments, as a crash
// there would; the next run sends those rows again, and queries still
// count each event once.
func TestCrashAfterSendBeforeDelete(t *testing.T) {
	s := sharedServer(t)
	db := testDB(t)
	cfg := testConfig(t, s.Addr(), db)
	cfg.ClickHouse.BatchSize = 700
	var crashed atomic.Bool
	crashedAt := make(chan struct{})
	p, err := OpenPipeline(cfg, audit.Options{CrashBeforeDelete: func() bool {
		if crashed.CompareAndSwap(false, true) {
			close(crashedAt)
			return true
		}
		return false
	}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	recordN(t, p, "crash", 3000, &ids)
	<-crashedAt // the shipper "crashed" after its first batch
	first := p.Stats().Shipped
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	p.Close(ctx)
	cancel()
	if first == 0 {
		t.Fatal("nothing was shipped before the crash")
	}

	p2 := startPipeline(t, cfg, audit.Options{})
	if err := p2.Drain(ctxT(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	again := p2.Stats().Shipped
	if first+again <= int64(len(ids)) {
		t.Fatalf("shipped %d + %d rows for %d events: the crash did not cause a resend", first, again, len(ids))
	}
	got, raw := storedIDs(t, s.Addr(), db)
	sort.Strings(ids)
	if d := cmp.Diff(ids, got); d != "" {
		t.Fatalf("stored ids (-recorded +stored):\n%s", d)
	}
	conn := connect(t, s.Addr())
	if n := count(t, conn, "SELECT count() FROM (SELECT event_id FROM "+db+".events GROUP BY event_id)"); n != uint64(len(ids)) {
		t.Fatalf("GROUP BY event_id counts %d, want %d", n, len(ids))
	}
	if err := conn.Exec(context.Background(), "OPTIMIZE TABLE "+db+".events FINAL"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, conn, "SELECT count() FROM "+db+".events"); n != uint64(len(ids)) {
		t.Fatalf("after merging, %d rows for %d events", n, len(ids))
	}
	t.Logf("shipped %d before the crash and %d after; %d raw rows before merging", first, again, raw)
}

// fullConfig has a spool that fills after a few dozen rows.
func fullConfig(t *testing.T, addr string, policy audit.FullPolicy) audit.Config {
	c := testConfig(t, addr, testDB(t))
	c.Spool.SegmentBytes = 4096
	c.Spool.MaxBytes = 8192
	c.Spool.FullPolicy = policy
	return c
}

// TestSpoolFullDropNewest: with ClickHouse unreachable the spool fills;
// further rows are dropped and counted, Record still returns nil, and the
// alarm is raised in metrics and logs.
func TestSpoolFullDropNewest(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs syncbuf.Buffer
	p := startPipeline(t, fullConfig(t, "127.0.0.1:1", audit.DropNewest), audit.Options{Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := range 500 {
		if err := p.Record(&audit.Event{SessionID: "s", Payload: strings.Repeat("p", 100)}); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	st := p.Stats()
	if !st.Full || st.Dropped == 0 || st.Recorded+st.Dropped != 500 || st.SpoolBytes > 8192 {
		t.Fatalf("stats %+v", st)
	}
	if v := metricValue(t, reg, "airlock_audit_spool_full", ""); v != 1 {
		t.Fatalf("airlock_audit_spool_full = %v", v)
	}
	if v := metricValue(t, reg, "airlock_audit_dropped_total", "event"); v != float64(st.Dropped) {
		t.Fatalf("airlock_audit_dropped_total = %v, want %d", v, st.Dropped)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "audit spool full") {
		t.Fatalf("no alarm logged:\n%s", logs.String())
	}
	if n := strings.Count(logs.String(), "audit spool full"); n != 1 {
		t.Fatalf("alarm logged %d times, want once per episode", n)
	}
}

// TestSpoolFullFailClosed: a full spool refuses rows with ErrSpoolFull;
// once ClickHouse is back and the spool drains, rows are accepted again
// and every accepted row is stored.
func TestSpoolFullFailClosed(t *testing.T) {
	srv := chtest.StartT(t)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	cfg := fullConfig(t, srv.Addr(), audit.FailClosed)
	p := startPipeline(t, cfg, audit.Options{})
	var accepted []string
	refused := 0
	for range 300 {
		e := &audit.Event{SessionID: "s", Payload: strings.Repeat("p", 100)}
		switch err := p.Record(e); {
		case err == nil:
			accepted = append(accepted, e.EventID)
		case errors.Is(err, audit.ErrSpoolFull):
			refused++
		default:
			t.Fatal(err)
		}
	}
	if refused == 0 || len(accepted) == 0 || p.Stats().Rejected != int64(refused) {
		t.Fatalf("accepted %d refused %d stats %+v", len(accepted), refused, p.Stats())
	}
	if err := srv.Restart(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := p.Drain(ctxT(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if p.Stats().Full {
		t.Fatal("still full after draining")
	}
	e := &audit.Event{SessionID: "s"}
	if err := p.Record(e); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	accepted = append(accepted, e.EventID)
	if err := p.Drain(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, _ := storedIDs(t, srv.Addr(), cfg.ClickHouse.Database)
	sort.Strings(accepted)
	if d := cmp.Diff(accepted, got); d != "" {
		t.Fatalf("stored ids (-accepted +stored):\n%s", d)
	}
}

// metricValue reads a counter or gauge from reg: the one named name, with
// kind label kind when kind is not empty.
func metricValue(t *testing.T, reg *prometheus.Registry, name, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if kind != "" && !hasLabel(m, "kind", kind) {
				continue
			}
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
			return m.Counter.GetValue()
		}
	}
	t.Fatalf("no metric %s{kind=%q}", name, kind)
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
