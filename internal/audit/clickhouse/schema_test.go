package clickhouse

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/audit"
)

func TestCapsFor(t *testing.T) {
	tests := []struct {
		version string
		modern  bool
		err     bool
	}{
		{"18.16.1", false, false},
		{"19.17.4.11", false, false},
		{"20.12.3.3", false, false},
		{"21.1.2.15", true, false},
		{"24.8.4.13", true, false},
		{"25.3.1.2703", true, false},
		{"unknown", false, true},
	}
	for _, tt := range tests {
		c, err := capsFor(tt.version)
		if (err != nil) != tt.err || c.Modern != tt.modern {
			t.Errorf("capsFor(%q) = %+v, %v; want modern=%v err=%v", tt.version, c, err, tt.modern, tt.err)
		}
	}
}

// TestRenderByVersion: 18.16 gets only types it has; current releases get
// DateTime64 and LowCardinality; both keep the same column names.
func TestRenderByVersion(t *testing.T) {
	legacy, err := render(migrations[0].SQL, newTemplateData(schemaLayout{DB: "airlock"}, serverCaps{Version: "18.16.1"}))
	if err != nil {
		t.Fatal(err)
	}
	modern, err := render(migrations[0].SQL, newTemplateData(schemaLayout{DB: "airlock"}, serverCaps{Version: "24.8.1", Modern: true}))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"LowCardinality", "DateTime64", "TTL", "{{"} {
		if strings.Contains(legacy, bad) {
			t.Errorf("18.16 schema contains %s", bad)
		}
	}
	for _, want := range []string{"LowCardinality(String)", "DateTime64(9, 'UTC')", "airlock.events", "ReplacingMergeTree()"} {
		if !strings.Contains(modern, want) {
			t.Errorf("modern schema lacks %s", want)
		}
	}
	if got, want := len(statements(legacy)), 4; got != want {
		t.Fatalf("%d statements, want %d", got, want)
	}
	// Every column the shipper inserts is in the schema, for each table:
	// in its CREATE or added by a later migration.
	added := map[string]bool{}
	for _, m := range migrations[1:] {
		for _, a := range m.Add {
			added[a.Table+"."+a.Column] = true
		}
	}
	for k := audit.KindEvent; int(k) < audit.NumKinds; k++ {
		var stmt string
		for _, st := range statements(legacy) {
			if strings.Contains(st, "airlock."+tableOf[k]+" (") {
				stmt = st
			}
		}
		if stmt == "" {
			t.Fatalf("no CREATE for %s", tableOf[k])
		}
		for _, col := range columnsOf[k] {
			if !strings.Contains(stmt, "\n    "+col+" ") && !added[tableOf[k]+"."+col] {
				t.Errorf("%s: column %s not in CREATE", tableOf[k], col)
			}
		}
	}
}

func TestStatements(t *testing.T) {
	got := statements("-- comment\nCREATE TABLE a (x UInt8);\n\n-- another\nCREATE TABLE b (y UInt8);\n")
	want := []string{"CREATE TABLE a (x UInt8)", "CREATE TABLE b (y UInt8)"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatal(d)
	}
}

// TestMigrateIdempotent runs airlock's migrations and a later migration
// adding a column twice against ClickHouse: the second run applies
// nothing and changes nothing.
func TestMigrateIdempotent(t *testing.T) {
	s := sharedServer(t)
	conn := connect(t, s.Addr())
	ctx := ctxT(t, time.Minute)
	db := testDB(t)
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	caps, err := capsFor(version)
	if err != nil {
		t.Fatal(err)
	}
	ms := append(append([]migration(nil), migrations...), migration{
		Version: 99, Name: "test: add a column",
		SQL: "CREATE TABLE IF NOT EXISTS {{.DB}}.extra (x UInt8) ENGINE = MergeTree() ORDER BY x",
		Add: []addColumn{{Table: "events", Column: "note", Type: `{{lc "String"}}`}},
	})
	// Migration 2 (seq) is airlock's since the request_events.seq column,
	// 3 (trace_id) since decisions.trace_id.
	for run, want := range [][]int{{1, 2, 3, 99}, nil} {
		applied, err := migrate(ctx, conn, schemaLayout{DB: db}, caps, ms)
		if err != nil {
			t.Fatalf("run %d: %v", run+1, err)
		}
		if d := cmp.Diff(want, applied); d != "" {
			t.Fatalf("run %d applied (-want +got):\n%s", run+1, d)
		}
	}
	if n := count(t, conn, "SELECT count() FROM "+db+".schema_migrations FINAL"); n != 4 {
		t.Fatalf("schema_migrations has %d rows, want 4", n)
	}
	if n := count(t, conn, "SELECT count() FROM system.tables WHERE database = '"+db+"'"); n != 6 {
		t.Fatalf("%d tables, want 6 (4 audit tables, schema_migrations, extra)", n)
	}
	if n := count(t, conn, "SELECT count() FROM system.columns WHERE database = '"+db+"' AND table = 'events' AND name = 'note'"); n != 1 {
		t.Fatalf("column note: %d", n)
	}
	// Forget the record of migration 99: running again re-applies it
	// without error (every step is idempotent).
	if err := conn.Exec(ctx, "DROP TABLE "+db+".schema_migrations"); err != nil {
		t.Fatal(err)
	}
	if applied, err := migrate(context.Background(), conn, schemaLayout{DB: db}, caps, ms); err != nil || len(applied) != 4 {
		t.Fatalf("re-applying: %v, %v", applied, err)
	}
}

// TestMigrateAddsSeq: tables created by migration 1 (an airlock before
// seq) get request_events.seq and grant_events.seq from migration 2, and
// their rows read seq 0.
func TestMigrateAddsSeq(t *testing.T) {
	s := sharedServer(t)
	conn := connect(t, s.Addr())
	ctx := ctxT(t, time.Minute)
	db := testDB(t)
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	caps, err := capsFor(version)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrate(ctx, conn, schemaLayout{DB: db}, caps, migrations[:1]); err != nil {
		t.Fatal(err)
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".request_events (event_id, time, time_ns, request_id, to_state)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append("old-1", time.Now().UTC(), uint64(time.Now().UnixNano()), "req-old", "pending"); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	applied, err := migrate(ctx, conn, schemaLayout{DB: db}, caps, migrations[:2])
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]int{2}, applied); d != "" {
		t.Fatalf("applied (-want +got):\n%s", d)
	}
	for _, table := range []string{"request_events", "grant_events"} {
		if n := count(t, conn, "SELECT count() FROM system.columns WHERE database = '"+db+"' AND table = '"+table+"' AND name = 'seq'"); n != 1 {
			t.Errorf("%s.seq: %d columns", table, n)
		}
	}
	if n := count(t, conn, "SELECT count() FROM "+db+".request_events FINAL WHERE request_id = 'req-old' AND seq = 0"); n != 1 {
		t.Errorf("the row stored before seq: %d rows with seq 0, want 1", n)
	}
}

// TestMigrateAddsTraceID: a decisions table made before trace_id (by
// migrations 1 and 2) gets the column from migration 3, and its rows read
// trace_id ”.
func TestMigrateAddsTraceID(t *testing.T) {
	s := sharedServer(t)
	conn := connect(t, s.Addr())
	ctx := ctxT(t, time.Minute)
	db := testDB(t)
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	caps, err := capsFor(version)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrate(ctx, conn, schemaLayout{DB: db}, caps, migrations[:2]); err != nil {
		t.Fatal(err)
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".decisions (decision_id, time, time_ns, outcome)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append("dec-old", time.Now().UTC(), uint64(time.Now().UnixNano()), "allow"); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	applied, err := migrate(ctx, conn, schemaLayout{DB: db}, caps, migrations)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]int{3}, applied); d != "" {
		t.Fatalf("applied (-want +got):\n%s", d)
	}
	if n := count(t, conn, "SELECT count() FROM system.columns WHERE database = '"+db+"' AND table = 'decisions' AND name = 'trace_id'"); n != 1 {
		t.Errorf("decisions.trace_id: %d columns", n)
	}
	if n := count(t, conn, "SELECT count() FROM "+db+".decisions FINAL WHERE decision_id = 'dec-old' AND trace_id = ''"); n != 1 {
		t.Errorf("the row stored before trace_id: %d rows with trace_id '', want 1", n)
	}
}
