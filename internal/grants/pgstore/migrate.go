package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migration is one forward-only schema step. Steps are only ever added,
// and each is additive (new tables, columns, indexes), so replicas of the
// previous release keep working while a rolling upgrade passes.
type migration struct {
	version int
	what    string
	sql     string
}

// migrations are the schema, in order. Never edit a released step: add one.
var migrations = []migration{
	{1, "requests, grants, the change feed", `
CREATE TABLE airlock_grant_requests (
	id       text PRIMARY KEY,
	version  bigint NOT NULL CHECK (version > 0),
	state    text NOT NULL,
	call_key text NOT NULL,
	record   bytea NOT NULL
);
-- one pending request per call, cluster-wide: the second replica to open
-- one conflicts, catches up and joins the first.
CREATE UNIQUE INDEX airlock_grant_requests_pending_call
	ON airlock_grant_requests (call_key) WHERE state = 'pending' AND call_key <> '';
CREATE TABLE airlock_grants (
	id      text PRIMARY KEY,
	version bigint NOT NULL CHECK (version > 0),
	state   text NOT NULL,
	record  bytea NOT NULL
);
-- the feed's head: every write takes this row's lock first, so sequences
-- commit in order and a reader never skips one still in flight.
CREATE TABLE airlock_grant_feed (
	one boolean PRIMARY KEY DEFAULT true CHECK (one),
	seq bigint NOT NULL
);
INSERT INTO airlock_grant_feed (one, seq) VALUES (true, 0);
CREATE TABLE airlock_grant_changes (
	seq    bigint PRIMARY KEY,
	writer text NOT NULL,
	at     timestamptz NOT NULL DEFAULT now(),
	change bytea NOT NULL
);
`},
}

// SchemaVersion is the schema version this airlock writes.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// migrateLockKey is the pg_advisory_lock key migrations run under, so
// every replica may migrate at start at once: one runs each step, the
// others wait and then find it done.
const migrateLockKey int64 = 0x6169726c6f636b01 // "airlock" 0x01

// Migrate brings the schema to SchemaVersion, one step per transaction,
// under an advisory lock. It returns the version found and the version
// left. A schema newer than this airlock is refused (ErrSchemaNewer): an
// older release must not write into tables it does not know.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (from, to int, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("grant store: connecting to PostgreSQL to migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return 0, 0, fmt.Errorf("grant store: taking the migration lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must be released even when ctx ended.
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLockKey); uerr != nil {
			conn.Conn().Close(context.Background()) // the session ends, and its lock with it
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS airlock_schema_versions (
	version    integer PRIMARY KEY,
	what       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return 0, 0, fmt.Errorf("grant store: creating the schema versions table: %w", err)
	}
	cur, err := currentVersion(ctx, conn.Conn())
	if err != nil {
		return 0, 0, err
	}
	from = cur
	if cur > SchemaVersion() {
		return from, cur, fmt.Errorf("grant store: the database's schema is version %d, newer than this airlock's %d: %w", cur, SchemaVersion(), ErrSchemaNewer)
	}
	for _, m := range migrations {
		if m.version <= cur {
			continue
		}
		err := pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO airlock_schema_versions (version, what) VALUES ($1, $2)", m.version, m.what)
			return err
		})
		if err != nil {
			return from, cur, fmt.Errorf("grant store: schema migration %d (%s): %w", m.version, m.what, err)
		}
		cur = m.version
	}
	return from, cur, nil
}

func currentVersion(ctx context.Context, conn *pgx.Conn) (int, error) {
	var v *int
	if err := conn.QueryRow(ctx, "SELECT max(version) FROM airlock_schema_versions").Scan(&v); err != nil {
		return 0, fmt.Errorf("grant store: reading the schema version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}

// ErrSchemaNewer: the database was migrated by a newer airlock.
var ErrSchemaNewer = errors.New("schema is newer than this airlock")
