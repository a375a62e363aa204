// Package pgstore is the grant store replicas share: requests and grants
// in PostgreSQL (github.com/jackc/pgx/v5), one row per record with its
// version, so every write is conditional and a single-use grant is used
// exactly once across replicas; and a feed of changes, written in the
// same transaction as each write and announced with NOTIFY, that every
// replica LISTENs to and reads after the last change it saw (a missed
// notification costs nothing: replicas also poll). Schema migrations are
// forward-only, numbered in a versions table, and run under an advisory
// lock, so every replica may run them at start.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-mcp/airlock/internal/grants"
)

// channel is the NOTIFY channel a write announces its sequence on.
const channel = "airlock_grants"

// Defaults of Options.
const (
	DefaultFeedKeep = 10000
	DefaultFeedAge  = time.Hour
	DefaultMaxConns = 10
)

// Options tune a Store.
type Options struct {
	Logger *slog.Logger
	// Migrate runs the schema migrations when opening (airlock serve does;
	// so may `airlock migrate` ahead of it). Without it a schema that is
	// not current is refused.
	Migrate bool
	// FeedKeep and FeedAge: a change leaves the feed once it is both more
	// than FeedKeep changes old and older than FeedAge (defaults 10000 and
	// 1h). A replica that falls further behind reloads everything.
	FeedKeep int
	FeedAge  time.Duration
	// MaxConns caps the pool (default 10), besides one connection that
	// LISTENs.
	MaxConns int32
}

// Store is a grants.SharedStore on PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	keep int
	age  time.Duration

	wmu     sync.Mutex
	watches []chan struct{}

	stop     context.CancelFunc
	listened chan struct{}
	once     sync.Once
}

var _ grants.SharedStore = (*Store)(nil)

// ParseDSN checks a DSN (a postgres:// URL or key=value pairs) without
// connecting. Its error never repeats the DSN, which holds a password.
func ParseDSN(dsn string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, ErrBadDSN
	}
	return cfg, nil
}

// ErrBadDSN is ParseDSN's one error: it says nothing of the DSN itself.
var ErrBadDSN = errors.New("the PostgreSQL DSN does not parse: want a postgres:// URL or key=value pairs (the DSN itself is not repeated here: it holds a password)")

func newPool(ctx context.Context, cfg *pgxpool.Config) (*pgxpool.Pool, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("grant store: PostgreSQL pool: %w", err)
	}
	return pool, nil
}

// Open connects to PostgreSQL with dsn, checks (or, with
// Options.Migrate, brings up to date) the schema, and starts listening
// for changes.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("grant store: %w", err)
	}
	cfg.MaxConns = opts.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	pool, err := newPool(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{pool: pool, log: opts.Logger, keep: opts.FeedKeep, age: opts.FeedAge, listened: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.keep <= 0 {
		s.keep = DefaultFeedKeep
	}
	if s.age <= 0 {
		s.age = DefaultFeedAge
	}
	if err := s.ready(ctx, opts.Migrate); err != nil {
		pool.Close()
		return nil, err
	}
	lctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.listen(lctx, cfg.ConnConfig.Copy())
	return s, nil
}

// ready migrates, or checks that the schema is current.
func (s *Store) ready(ctx context.Context, migrate bool) error {
	if migrate {
		from, to, err := Migrate(ctx, s.pool)
		if err != nil {
			return err
		}
		if from != to {
			s.log.Info("grant store: schema migrated", "from", from, "to", to)
		}
		return nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("grant store: connecting to PostgreSQL: %w", err)
	}
	defer conn.Release()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('airlock_schema_versions') IS NOT NULL").Scan(&exists); err != nil {
		return fmt.Errorf("grant store: reading the schema version: %w", err)
	}
	v := 0
	if exists {
		if v, err = currentVersion(ctx, conn.Conn()); err != nil {
			return err
		}
	}
	switch {
	case v < SchemaVersion():
		return fmt.Errorf("grant store: the database's schema is version %d, this airlock needs %d: run `airlock migrate --config …`", v, SchemaVersion())
	case v > SchemaVersion():
		return fmt.Errorf("grant store: the database's schema is version %d, newer than this airlock's %d: %w", v, SchemaVersion(), ErrSchemaNewer)
	}
	return nil
}

// Pool is the store's connection pool (for tests and health checks).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Load returns every stored record.
func (s *Store) Load(ctx context.Context) (grants.Snapshot, error) {
	snap, _, err := s.LoadAt(ctx)
	return snap, err
}

// LoadAt reads every record and the feed's head in one repeatable-read
// transaction: the records are exactly those of the changes up to seq.
func (s *Store) LoadAt(ctx context.Context) (grants.Snapshot, uint64, error) {
	var snap grants.Snapshot
	var seq int64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "SELECT seq FROM airlock_grant_feed").Scan(&seq); err != nil {
			return fmt.Errorf("reading the feed's head: %w", err)
		}
		rows, err := tx.Query(ctx, "SELECT id, record FROM airlock_grant_requests ORDER BY id")
		if err != nil {
			return err
		}
		if snap.Requests, err = scanRecords[grants.Request](rows, "request"); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, "SELECT id, record FROM airlock_grants ORDER BY id")
		if err != nil {
			return err
		}
		snap.Grants, err = scanRecords[grants.Grant](rows, "grant")
		return err
	})
	if err != nil {
		return grants.Snapshot{}, 0, fmt.Errorf("grant store: loading: %w", err)
	}
	return snap, uint64(seq), nil
}

func scanRecords[T any](rows pgx.Rows, what string) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		var id string
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			return nil, err
		}
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("%s %s: %v: %w", what, id, err, grants.ErrCorrupt)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Apply is Publish with no writer and no events.
func (s *Store) Apply(ctx context.Context, m grants.Mutation) error {
	_, err := s.Publish(ctx, grants.Change{Mutation: m})
	return err
}

// Publish writes c.Mutation conditionally on versions, appends c to the
// feed and NOTIFYs, in one transaction. A record whose version is not the
// stored one plus one, or a second pending request for one call, fails
// the whole write with grants.ErrConflict.
func (s *Store) Publish(ctx context.Context, c grants.Change) (uint64, error) {
	var seq int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The head row's lock orders writers: the next one waits for this
		// commit, so sequences become visible in order.
		if err := tx.QueryRow(ctx, "UPDATE airlock_grant_feed SET seq = seq + 1 RETURNING seq").Scan(&seq); err != nil {
			return fmt.Errorf("advancing the feed: %w", err)
		}
		for i := range c.Mutation.Requests {
			r := &c.Mutation.Requests[i]
			b, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encoding request %s: %w", r.ID, err)
			}
			if err := put(ctx, tx, "request", r.ID, r.Version,
				"INSERT INTO airlock_grant_requests (id, version, state, call_key, record) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
				"UPDATE airlock_grant_requests SET version = $2, state = $3, call_key = $4, record = $5 WHERE id = $1 AND version = $2 - 1",
				r.ID, int64(r.Version), string(r.State), r.CallKey, b); err != nil {
				return err
			}
		}
		for i := range c.Mutation.Grants {
			g := &c.Mutation.Grants[i]
			b, err := json.Marshal(g)
			if err != nil {
				return fmt.Errorf("encoding grant %s: %w", g.ID, err)
			}
			if err := put(ctx, tx, "grant", g.ID, g.Version,
				"INSERT INTO airlock_grants (id, version, state, record) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
				"UPDATE airlock_grants SET version = $2, state = $3, record = $4 WHERE id = $1 AND version = $2 - 1",
				g.ID, int64(g.Version), string(g.State), b); err != nil {
				return err
			}
		}
		if len(c.Mutation.DropRequests) > 0 {
			if _, err := tx.Exec(ctx, "DELETE FROM airlock_grant_requests WHERE id = ANY($1)", c.Mutation.DropRequests); err != nil {
				return fmt.Errorf("dropping requests: %w", err)
			}
		}
		if len(c.Mutation.DropGrants) > 0 {
			if _, err := tx.Exec(ctx, "DELETE FROM airlock_grants WHERE id = ANY($1)", c.Mutation.DropGrants); err != nil {
				return fmt.Errorf("dropping grants: %w", err)
			}
		}
		c.Seq = uint64(seq)
		b, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encoding the change: %w", err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO airlock_grant_changes (seq, writer, change) VALUES ($1, $2, $3)", seq, c.Writer, b); err != nil {
			return fmt.Errorf("appending to the feed: %w", err)
		}
		if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", channel, strconv.FormatInt(seq, 10)); err != nil {
			return fmt.Errorf("notifying: %w", err)
		}
		if seq%256 == 0 { // pruning rides on a write now and then: done once, by the writer
			if _, err := tx.Exec(ctx, "DELETE FROM airlock_grant_changes WHERE seq <= $1 AND at < now() - make_interval(secs => $2)",
				seq-int64(s.keep), s.age.Seconds()); err != nil {
				return fmt.Errorf("pruning the feed: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, grants.ErrConflict) || errors.Is(err, grants.ErrInvalid) {
			return 0, err
		}
		return 0, fmt.Errorf("grant store: writing to PostgreSQL: %w", err)
	}
	return uint64(seq), nil
}

// put inserts (version 1) or conditionally updates one record.
func put(ctx context.Context, tx pgx.Tx, what, id string, version uint64, insert, update string, args ...any) error {
	if id == "" {
		return fmt.Errorf("%s with no id: %w", what, grants.ErrInvalid)
	}
	if version == 0 {
		return fmt.Errorf("%s %s: version 0 is never stored: %w", what, id, grants.ErrConflict)
	}
	q := update
	if version == 1 {
		q = insert
	}
	tag, err := tx.Exec(ctx, q, args...)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation: another pending request for the call
		return fmt.Errorf("%s %s: another replica opened a request for the same call first: %w", what, id, grants.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("writing %s %s: %w", what, id, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%s %s: writing version %d, but the stored version is not %d: %w", what, id, version, version-1, grants.ErrConflict)
	}
	return nil
}

// Changes returns at most limit changes after seq, in order.
func (s *Store) Changes(ctx context.Context, after uint64, limit int) ([]grants.Change, error) {
	rows, err := s.pool.Query(ctx, "SELECT seq, change FROM airlock_grant_changes WHERE seq > $1 ORDER BY seq LIMIT $2", int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("grant store: reading the feed: %w", err)
	}
	defer rows.Close()
	var out []grants.Change
	for rows.Next() {
		var seq int64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			return nil, fmt.Errorf("grant store: reading the feed: %w", err)
		}
		var c grants.Change
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("grant store: change %d: %v: %w", seq, err, grants.ErrCorrupt)
		}
		c.Seq = uint64(seq)
		if len(out) == 0 && c.Seq != after+1 {
			return nil, fmt.Errorf("grant store: asked for changes after %d, the oldest kept is %d: %w", after, c.Seq, grants.ErrFeedGap)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("grant store: reading the feed: %w", err)
	}
	return out, nil
}

// Watch returns a channel woken by every NOTIFY of the feed, and after
// the listening connection (re)connects (notifications may have been
// missed meanwhile).
func (s *Store) Watch() <-chan struct{} {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ch := make(chan struct{}, 1)
	s.watches = append(s.watches, ch)
	return ch
}

func (s *Store) wake() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, ch := range s.watches {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// listen holds one connection that LISTENs, reconnecting (with a pause)
// whenever it drops, until ctx ends.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer close(s.listened)
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, cfg)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("grant store: the LISTEN connection dropped; polling until it is back", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	s.wake() // anything written while not listening is read now
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		s.wake()
	}
}

// Close stops listening and closes the pool.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.stop()
		<-s.listened
		s.pool.Close()
	})
	return nil
}

// Import copies snap's records, versions and all, into a store that holds
// none (moving one airlock from its file store to PostgreSQL), as one
// change in the feed so replicas already running pick them up. A store
// that already holds a record is refused: nothing is merged.
func (s *Store) Import(ctx context.Context, snap grants.Snapshot) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var seq int64
		if err := tx.QueryRow(ctx, "UPDATE airlock_grant_feed SET seq = seq + 1 RETURNING seq").Scan(&seq); err != nil {
			return fmt.Errorf("advancing the feed: %w", err)
		}
		var held bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM airlock_grant_requests) OR EXISTS (SELECT 1 FROM airlock_grants)").Scan(&held); err != nil {
			return err
		}
		if held {
			return fmt.Errorf("the PostgreSQL store already holds requests or grants: import only into an empty store: %w", grants.ErrInvalid)
		}
		for i := range snap.Requests {
			r := &snap.Requests[i]
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if r.ID == "" || r.Version == 0 {
				return fmt.Errorf("request %q at version %d: %w", r.ID, r.Version, grants.ErrInvalid)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO airlock_grant_requests (id, version, state, call_key, record) VALUES ($1, $2, $3, $4, $5)",
				r.ID, int64(r.Version), string(r.State), r.CallKey, b); err != nil {
				return fmt.Errorf("importing request %s: %w", r.ID, err)
			}
		}
		for i := range snap.Grants {
			g := &snap.Grants[i]
			b, err := json.Marshal(g)
			if err != nil {
				return err
			}
			if g.ID == "" || g.Version == 0 {
				return fmt.Errorf("grant %q at version %d: %w", g.ID, g.Version, grants.ErrInvalid)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO airlock_grants (id, version, state, record) VALUES ($1, $2, $3, $4)",
				g.ID, int64(g.Version), string(g.State), b); err != nil {
				return fmt.Errorf("importing grant %s: %w", g.ID, err)
			}
		}
		b, err := json.Marshal(grants.Change{Seq: uint64(seq), Writer: "import", Mutation: grants.Mutation{Requests: snap.Requests, Grants: snap.Grants}})
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO airlock_grant_changes (seq, writer, change) VALUES ($1, 'import', $2)", seq, b); err != nil {
			return fmt.Errorf("appending to the feed: %w", err)
		}
		_, err = tx.Exec(ctx, "SELECT pg_notify($1, $2)", channel, strconv.FormatInt(seq, 10))
		return err
	})
	if err != nil {
		return fmt.Errorf("grant store: importing: %w", err)
	}
	return nil
}
