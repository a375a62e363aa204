package clickhouse

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// serverCaps is what the connected ClickHouse supports, from its version.
type serverCaps struct {
	Version string
	// Modern is 21.1 or later: DateTime64 and LowCardinality are stable
	// there. Older servers (Debian's 18.16) get DateTime('UTC') and
	// String. Queries read time_ns and plain strings, so both work the same.
	Modern bool
}

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)`)

// capsFor derives capabilities from `SELECT version()`.
func capsFor(version string) (serverCaps, error) {
	m := versionRE.FindStringSubmatch(version)
	if m == nil {
		return serverCaps{}, fmt.Errorf("audit: unrecognised ClickHouse version %q", version)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return serverCaps{Version: version, Modern: major > 21 || major == 21 && minor >= 1}, nil
}

// schemaLayout is where airlock's tables live: one server's database, or
// a cluster's (Cluster set, a name from the servers' remote_servers).
//
// On a cluster every statement runs ON CLUSTER; each table is a
// Replicated*MergeTree named TABLE_local (ZooKeeper path
// /clickhouse/tables/{shard}/DB/TABLE_local, replica {replica}, macros
// every node defines), under a Distributed table with the documented name
// (events, decisions, …), which airlock inserts into and analysts query.
// The Distributed tables shard rows by their sorting key's first column,
// so a row sent twice lands on the same shard and FINAL folds it there.
type schemaLayout struct {
	DB      string // database name (validated identifier)
	Cluster string // empty: one server
}

// onCluster is " ON CLUSTER `name`", or "" on one server.
func (l schemaLayout) onCluster() string {
	if l.Cluster == "" {
		return ""
	}
	return " ON CLUSTER `" + l.Cluster + "`"
}

// local is the name of the table that stores rows: TABLE on one server,
// TABLE_local on a cluster.
func (l schemaLayout) local(table string) string {
	if l.Cluster == "" {
		return table
	}
	return table + "_local"
}

// shardKey is each Distributed table's sharding key: the first column of
// its local table's sorting key, so duplicates meet on one shard.
var shardKey = map[string]string{
	tableEvents:    "session_id",
	tableDecisions: "principal",
	tableRequests:  "request_id",
	tableGrants:    "grant_id",
}

// metaZKPath is schema_migrations' ZooKeeper path on a cluster: one
// replication group over every node (replica '{shard}-{replica}', unique
// cluster wide), so a migration recorded through any node is seen by all.
const metaZKPath = "/clickhouse/airlock/%s/schema_migrations"

// templateData is what migration SQL templates see.
type templateData struct {
	DB     string // database name (validated identifier)
	Time   string // type of the time columns
	caps   serverCaps
	layout schemaLayout
}

func newTemplateData(layout schemaLayout, caps serverCaps) templateData {
	t := templateData{DB: layout.DB, Time: "DateTime('UTC')", caps: caps, layout: layout}
	if caps.Modern {
		t.Time = "DateTime64(9, 'UTC')"
	}
	return t
}

// migration is one schema version: SQL statements (templates) and columns
// to add. Every step is idempotent, so a migration interrupted half way
// is simply run again.
type migration struct {
	Version int
	Name    string
	SQL     string      // statements separated by ";\n"; "--" lines are comments
	Add     []addColumn // ALTER TABLE … ADD COLUMN when the column is missing
}

// addColumn adds Column of Type to Table if system.columns lacks it (18.16
// has no ADD COLUMN IF NOT EXISTS).
type addColumn struct {
	Table, Column, Type string // Type is a template too
}

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations is airlock's schema history; append, never edit.
var migrations = []migration{
	{Version: 1, Name: "tables", SQL: mustRead("migrations/0001_tables.sql")},
	// seq orders one request's (or grant's) rows where time_ns ties: a
	// vote and the approval it completes share their time. Rows stored
	// before it read 0; time_ns still orders them as before.
	{Version: 2, Name: "seq", SQL: mustRead("migrations/0002_seq.sql"), Add: []addColumn{
		{Table: "request_events", Column: "seq", Type: "UInt64"},
		{Table: "grant_events", Column: "seq", Type: "UInt64"},
	}},
	// trace_id joins a decision with its request's trace.
	{Version: 3, Name: "trace_id", SQL: mustRead("migrations/0003_trace_id.sql"), Add: []addColumn{
		{Table: "decisions", Column: "trace_id", Type: "String"},
	}},
}

func mustRead(name string) string {
	b, err := migrationFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// render fills a migration template for the server.
func render(text string, data templateData) (string, error) {
	t, err := template.New("sql").Option("missingkey=error").Funcs(template.FuncMap{
		"lc": func(typ string) string {
			if data.caps.Modern {
				return "LowCardinality(" + typ + ")"
			}
			return typ
		},
		// table "events" is what CREATE TABLE names: db.events, or on a
		// cluster db.events_local ON CLUSTER `c`.
		"table": func(name string) string {
			return data.DB + "." + data.layout.local(name) + data.layout.onCluster()
		},
		// engine "ReplacingMergeTree" "events": the engine, Replicated on
		// a cluster. The engine arguments (ZooKeeper path, replica name)
		// read the same on 18.16 and current releases.
		"engine": func(engine, name string) string {
			if data.layout.Cluster == "" {
				return engine + "()"
			}
			return fmt.Sprintf("Replicated%s('/clickhouse/tables/{shard}/%s/%s', '{replica}')", engine, data.DB, data.layout.local(name))
		},
	}).Parse(text)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// statements splits rendered SQL into statements, dropping comment lines.
func statements(sql string) []string {
	var out []string
	for _, st := range strings.Split(sql, ";\n") {
		var lines []string
		for _, l := range strings.Split(st, "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
				lines = append(lines, l)
			}
		}
		if s := strings.TrimSuffix(strings.TrimSpace(strings.Join(lines, "\n")), ";"); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// migrate brings the layout's database up to the last of ms: it creates
// the database and schema_migrations when missing, then applies each
// migration not recorded there, in order, recording each; on a cluster
// it then puts the Distributed tables over the local ones. It is safe to
// run any number of times, from several processes at once. When nothing
// is missing it runs no DDL, so a cluster with a node down keeps taking
// rows (ON CLUSTER DDL waits for every node).
func migrate(ctx context.Context, conn driver.Conn, layout schemaLayout, caps serverCaps, ms []migration) (applied []int, err error) {
	data := newTemplateData(layout, caps)
	db := layout.DB
	var have uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'schema_migrations'", db).Scan(&have); err != nil {
		return nil, fmt.Errorf("audit schema: looking for %s.schema_migrations: %w", db, err)
	}
	if have == 0 {
		meta := "ReplacingMergeTree()"
		if layout.Cluster != "" {
			meta = fmt.Sprintf("ReplicatedReplacingMergeTree('"+metaZKPath+"', '{shard}-{replica}')", db)
		}
		for _, q := range []string{
			"CREATE DATABASE IF NOT EXISTS " + db + layout.onCluster(),
			"CREATE TABLE IF NOT EXISTS " + db + ".schema_migrations" + layout.onCluster() + " (version UInt32, name String, applied_at DateTime('UTC')) ENGINE = " + meta + " ORDER BY version",
		} {
			if err := conn.Exec(ctx, q); err != nil {
				return nil, fmt.Errorf("audit schema: %s: %w", firstLine(q), err)
			}
		}
	}
	done := map[int]bool{}
	rows, err := conn.Query(ctx, "SELECT toUInt32(version) FROM "+db+".schema_migrations FINAL")
	if err != nil {
		return nil, fmt.Errorf("audit schema: reading schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("audit schema: reading schema_migrations: %w", err)
		}
		done[int(v)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit schema: reading schema_migrations: %w", err)
	}
	for _, m := range ms {
		if done[m.Version] {
			continue
		}
		if err := applyMigration(ctx, conn, data, m); err != nil {
			return applied, err
		}
		if err := recordMigration(ctx, conn, db, m); err != nil {
			return applied, fmt.Errorf("audit schema: recording migration %d: %w", m.Version, err)
		}
		applied = append(applied, m.Version)
	}
	if err := checkLayout(ctx, conn, layout); err != nil {
		return applied, err
	}
	return applied, nil
}

// tableInfo is a table's engine and, withCols, its columns ("name type",
// in order) as the connected server has them; engine "" when the table
// is missing.
func tableInfo(ctx context.Context, conn driver.Conn, db, table string, withCols bool) (engine string, cols []string, err error) {
	rows, err := conn.Query(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", db, table)
	if err != nil {
		return "", nil, fmt.Errorf("audit schema: reading %s.%s: %w", db, table, err)
	}
	for rows.Next() {
		if err := rows.Scan(&engine); err != nil {
			rows.Close()
			return "", nil, fmt.Errorf("audit schema: reading %s.%s: %w", db, table, err)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || engine == "" || !withCols {
		return engine, nil, err
	}
	rows, err = conn.Query(ctx, "SELECT name, type FROM system.columns WHERE database = ? AND table = ?", db, table)
	if err != nil {
		return "", nil, fmt.Errorf("audit schema: reading %s.%s columns: %w", db, table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return "", nil, fmt.Errorf("audit schema: reading %s.%s columns: %w", db, table, err)
		}
		cols = append(cols, name+" "+typ)
	}
	return engine, cols, rows.Err()
}

// checkLayout makes sure the tables airlock writes are what the layout
// says, and fails rather than write to the wrong kind of table: on one
// server, plain tables (not a cluster's Distributed ones); on a cluster,
// Distributed tables over the local ones, created ON CLUSTER when missing
// and made again when their columns lag behind the local table's (a
// Distributed table holds no rows: inserts are synchronous). 18.16
// refuses ALTER … ON CLUSTER on a Distributed table over replicated
// shards, hence drop and create rather than ALTER.
func checkLayout(ctx context.Context, conn driver.Conn, layout schemaLayout) error {
	db := layout.DB
	for _, table := range []string{tableEvents, tableDecisions, tableRequests, tableGrants} {
		engine, cols, err := tableInfo(ctx, conn, db, table, layout.Cluster != "")
		if err != nil {
			return err
		}
		if layout.Cluster == "" {
			if engine == "Distributed" {
				return fmt.Errorf("audit schema: %s.%s is a Distributed table, made for a ClickHouse cluster: set audit.clickhouse.cluster, or use another audit.clickhouse.database", db, table)
			}
			continue
		}
		if engine != "" && engine != "Distributed" {
			return fmt.Errorf("audit schema: %s.%s is a %s table, made for one server, not for cluster %s: use a new audit.clickhouse.database for the cluster (docs/ha-clickhouse.md)", db, table, engine, layout.Cluster)
		}
		_, localCols, err := tableInfo(ctx, conn, db, layout.local(table), true)
		if err != nil {
			return err
		}
		if localCols == nil {
			return fmt.Errorf("audit schema: %s.%s is missing on this node of cluster %s", db, layout.local(table), layout.Cluster)
		}
		if engine != "" && slices.Equal(cols, localCols) {
			continue
		}
		var qs []string
		if engine != "" {
			qs = append(qs, "DROP TABLE IF EXISTS "+db+"."+table+layout.onCluster())
		}
		qs = append(qs, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s AS %s.%s ENGINE = Distributed('%s', '%s', '%s', cityHash64(%s))",
			db, table, layout.onCluster(), db, layout.local(table), layout.Cluster, db, layout.local(table), shardKey[table]))
		for _, q := range qs {
			if err := conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("audit schema: %s: %w", firstLine(q), err)
			}
		}
	}
	return nil
}

// recordMigration inserts m's row. ClickHouse 18.16 takes INSERT data
// over the native protocol only as a block after the statement (VALUES in
// the statement text hang), so even one row goes through a batch.
func recordMigration(ctx context.Context, conn driver.Conn, db string, m migration) (err error) {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".schema_migrations (version, name, applied_at)")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = b.Abort()
		}
	}()
	if err := b.Append(uint32(m.Version), m.Name, time.Now().UTC()); err != nil {
		return err
	}
	return b.Send()
}

func applyMigration(ctx context.Context, conn driver.Conn, data templateData, m migration) error {
	sql, err := render(m.SQL, data)
	if err != nil {
		return fmt.Errorf("audit schema: migration %d (%s): %w", m.Version, m.Name, err)
	}
	for _, st := range statements(sql) {
		if err := conn.Exec(ctx, st); err != nil {
			return fmt.Errorf("audit schema: migration %d (%s): %s: %w", m.Version, m.Name, firstLine(st), err)
		}
	}
	for _, a := range m.Add {
		table := data.layout.local(a.Table)
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
			data.DB, table, a.Column).Scan(&n); err != nil {
			return fmt.Errorf("audit schema: migration %d: checking column %s.%s: %w", m.Version, a.Table, a.Column, err)
		}
		if n > 0 {
			continue
		}
		typ, err := render(a.Type, data)
		if err != nil {
			return fmt.Errorf("audit schema: migration %d: column %s.%s: %w", m.Version, a.Table, a.Column, err)
		}
		q := fmt.Sprintf("ALTER TABLE %s.%s%s ADD COLUMN %s %s", data.DB, table, data.layout.onCluster(), a.Column, typ)
		if err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("audit schema: migration %d: %s: %w", m.Version, q, err)
		}
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
