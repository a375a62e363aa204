package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/airlock-mcp/airlock/internal/audit"
)

// clickHouse is airlock's side of ClickHouse: one native-protocol
// connection pool, the schema, batch inserts, retention and queries.
type clickHouse struct {
	conn          driver.Conn
	db            string
	layout        schemaLayout
	queryTimeout  time.Duration
	retentionDays int
	log           *slog.Logger

	mu       sync.Mutex
	schemaOK bool
	caps     serverCaps
}

// dialClickHouse opens a connection pool; it does not connect yet, so a
// ClickHouse that is down does not stop airlock from starting.
func dialClickHouse(cfg audit.ClickHouseConfig, log *slog.Logger) (*clickHouse, error) {
	var password string
	if cfg.PasswordEnv != "" {
		password = os.Getenv(cfg.PasswordEnv)
	}
	addrs := cfg.Addresses()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol: clickhouse.Native,
		// Several nodes: the first that answers, in order; a connection
		// whose node stopped answering is dropped and the next dial moves
		// on down the list.
		Addr:             addrs,
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
		// No database in the handshake: it may not exist yet. Every
		// statement names db.table.
		Auth:            clickhouse.Auth{Username: cfg.Username, Password: password},
		DialTimeout:     cfg.DialTimeout,
		ReadTimeout:     cfg.QueryTimeout,
		MaxOpenConns:    4,
		MaxIdleConns:    2,
		ConnMaxLifetime: time.Hour,
		ClientInfo:      clickhouse.ClientInfo{Products: []struct{ Name, Version string }{{Name: "airlock-audit", Version: "1"}}},
	})
	if err != nil {
		return nil, fmt.Errorf("audit: ClickHouse at %s: %w", strings.Join(addrs, ", "), err)
	}
	return &clickHouse{conn: conn, db: cfg.Database, layout: schemaLayout{DB: cfg.Database, Cluster: cfg.Cluster}, queryTimeout: cfg.QueryTimeout, retentionDays: cfg.RetentionDays, log: log}, nil
}

func (c *clickHouse) close() error { return c.conn.Close() }

// ensureSchema detects the server's version and runs the migrations, once
// per connection lifetime (again after an insert failed).
func (c *clickHouse) ensureSchema(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.schemaOK {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.queryTimeout)
	defer cancel()
	var version string
	if err := c.conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return fmt.Errorf("audit: ClickHouse version: %w", err)
	}
	caps, err := capsFor(version)
	if err != nil {
		return err
	}
	applied, err := migrate(ctx, c.conn, c.layout, caps, migrations)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		c.log.Info("audit: ClickHouse schema migrated", "database", c.db, "cluster", c.layout.Cluster, "server", version, "modern_types", caps.Modern, "applied", applied)
	}
	c.caps, c.schemaOK = caps, true
	return nil
}

func (c *clickHouse) schemaSuspect() {
	c.mu.Lock()
	c.schemaOK = false
	c.mu.Unlock()
}

func (c *clickHouse) newBatch() *chBatch {
	b := &chBatch{ch: c}
	for k := audit.KindEvent; int(k) < audit.NumKinds; k++ {
		b.cols[k] = newColBuilder(k)
	}
	return b
}

// chBatch is a batch of rows for all four tables; send inserts each
// table's rows with one INSERT and remembers which tables are done.
type chBatch struct {
	ch   *clickHouse
	cols [audit.NumKinds]colBuilder
	sent [audit.NumKinds]bool
	n    int
}

// Add appends r's row to its table's columns.
func (b *chBatch) Add(r audit.Record) {
	b.cols[audit.KindOf(r)].add(r)
	b.n++
}

// Len is the number of rows added since the last Reset.
func (b *chBatch) Len() int { return b.n }

// Reset empties the batch for reuse.
func (b *chBatch) Reset() {
	for k := audit.KindEvent; int(k) < audit.NumKinds; k++ {
		b.cols[k].reset()
		b.sent[k] = false
	}
	b.n = 0
}

// Send inserts each table's rows not yet acknowledged, one INSERT per
// table.
func (b *chBatch) Send(ctx context.Context) error {
	c := b.ch
	if err := c.ensureSchema(ctx); err != nil {
		return err
	}
	for k := audit.KindEvent; int(k) < audit.NumKinds; k++ {
		cols := b.cols[k]
		if b.sent[k] || cols.len() == 0 {
			continue
		}
		if err := c.insert(ctx, k, cols); err != nil {
			c.schemaSuspect()
			return err
		}
		b.sent[k] = true
	}
	return nil
}

func (c *clickHouse) insert(ctx context.Context, k audit.Kind, cols colBuilder) (err error) {
	ctx, cancel := context.WithTimeout(ctx, c.queryTimeout)
	defer cancel()
	if c.layout.Cluster != "" {
		// Into the Distributed table, synchronously: the INSERT returns
		// once a replica of each shard the rows go to has them, so the
		// spool deletes nothing a node alone holds in its Distributed
		// queue (a node lost with its queue would lose those rows).
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1}))
	}
	batch, err := c.conn.PrepareBatch(ctx, insertSQL(c.db, k))
	if err != nil {
		return fmt.Errorf("audit: preparing INSERT into %s.%s: %w", c.db, tableOf[k], err)
	}
	defer func() {
		if err != nil {
			_ = batch.Abort()
		}
	}()
	// The rows go in blocks of at most blockRows, all in this one INSERT:
	// clickhouse-go's columns, fresh for every INSERT, then grow to one
	// block's size and are reused (Flush resets them keeping their
	// capacity) instead of growing, copy after copy, to the whole batch.
	all := cols.columns()
	n := cols.len()
	for lo := 0; lo < n; lo += blockRows {
		hi := min(lo+blockRows, n)
		if lo > 0 {
			if err := batch.Flush(); err != nil {
				return fmt.Errorf("audit: INSERT of %d rows into %s.%s: %w", n, c.db, tableOf[k], err)
			}
		}
		for i, col := range all {
			if err := batch.Column(i).Append(rowsOf(col, lo, hi)); err != nil {
				return fmt.Errorf("audit: column %s of %s: %w", columnsOf[k][i], tableOf[k], err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("audit: INSERT of %d rows into %s.%s: %w", cols.len(), c.db, tableOf[k], err)
	}
	return nil
}

// blockRows is the most rows sent in one block of an INSERT.
const blockRows = 2048

// rowsOf is rows [lo, hi) of col, one of the column slices colBuilder
// returns.
func rowsOf(col any, lo, hi int) any {
	switch v := col.(type) {
	case []string:
		return v[lo:hi]
	case []time.Time:
		return v[lo:hi]
	case []uint64:
		return v[lo:hi]
	case []int64:
		return v[lo:hi]
	case []uint32:
		return v[lo:hi]
	case []uint16:
		return v[lo:hi]
	case []uint8:
		return v[lo:hi]
	case []float64:
		return v[lo:hi]
	case [][]string:
		return v[lo:hi]
	case [][]uint32:
		return v[lo:hi]
	}
	panic(fmt.Sprintf("audit: rowsOf: column of type %T", col))
}
