package clickhouse

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"regexp"
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

// templateData is what migration SQL templates see.
type templateData struct {
	DB   string // database name (validated identifier)
	Time string // type of the time columns
	caps serverCaps
}

func newTemplateData(db string, caps serverCaps) templateData {
	t := templateData{DB: db, Time: "DateTime('UTC')", caps: caps}
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

// migrate brings database db up to the last of ms: it creates the
// database and schema_migrations, then applies each migration not
// recorded there, in order, recording each. It is safe to run any number
// of times, from several processes at once.
func migrate(ctx context.Context, conn driver.Conn, db string, caps serverCaps, ms []migration) (applied []int, err error) {
	data := newTemplateData(db, caps)
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS " + db,
		"CREATE TABLE IF NOT EXISTS " + db + ".schema_migrations (version UInt32, name String, applied_at DateTime('UTC')) ENGINE = ReplacingMergeTree() ORDER BY version",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("audit schema: %s: %w", firstLine(q), err)
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
	return applied, nil
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
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
			data.DB, a.Table, a.Column).Scan(&n); err != nil {
			return fmt.Errorf("audit schema: migration %d: checking column %s.%s: %w", m.Version, a.Table, a.Column, err)
		}
		if n > 0 {
			continue
		}
		typ, err := render(a.Type, data)
		if err != nil {
			return fmt.Errorf("audit schema: migration %d: column %s.%s: %w", m.Version, a.Table, a.Column, err)
		}
		q := fmt.Sprintf("ALTER TABLE %s.%s ADD COLUMN %s %s", data.DB, a.Table, a.Column, typ)
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
