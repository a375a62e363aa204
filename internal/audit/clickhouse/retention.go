package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
)

// Retention drops whole day partitions (audit.RetentionCutoff), on every
// server version: it needs no TTL support (18.16 has none) and rewrites
// no part.

// dropExpired drops the day partitions of airlock's tables older than
// the retention, and returns them as "table/partition".
func (c *clickHouse) dropExpired(ctx context.Context, now time.Time) ([]string, error) {
	if c.retentionDays <= 0 {
		return nil, nil
	}
	if err := c.ensureSchema(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.queryTimeout)
	defer cancel()
	cutoff := audit.RetentionCutoff(now, c.retentionDays)
	// On a cluster: the local tables' partitions this node holds, dropped
	// ON CLUSTER (a replicated DROP PARTITION; a partition another shard
	// lacks is no error).
	l := c.layout
	rows, err := c.conn.Query(ctx, "SELECT DISTINCT table, partition FROM system.parts WHERE database = ? AND active AND table IN (?, ?, ?, ?)",
		c.db, l.local(tableEvents), l.local(tableDecisions), l.local(tableRequests), l.local(tableGrants))
	if err != nil {
		return nil, fmt.Errorf("audit retention: listing partitions: %w", err)
	}
	type part struct{ table, partition string }
	var old []part
	for rows.Next() {
		var p part
		if err := rows.Scan(&p.table, &p.partition); err != nil {
			rows.Close()
			return nil, fmt.Errorf("audit retention: listing partitions: %w", err)
		}
		day, err := strconv.ParseUint(p.partition, 10, 32)
		if err != nil {
			continue // not one of our day partitions
		}
		if uint32(day) < cutoff {
			old = append(old, p)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit retention: listing partitions: %w", err)
	}
	var dropped []string
	for _, p := range old {
		if err := c.conn.Exec(ctx, "ALTER TABLE "+c.db+"."+p.table+l.onCluster()+" DROP PARTITION "+p.partition); err != nil {
			return dropped, fmt.Errorf("audit retention: dropping %s partition %s: %w", p.table, p.partition, err)
		}
		dropped = append(dropped, p.table+"/"+p.partition)
	}
	if len(dropped) > 0 {
		c.log.Info("audit retention: dropped day partitions", "database", c.db, "retention_days", c.retentionDays, "partitions", dropped)
	}
	return dropped, nil
}

// retentionLoop sweeps at start and every interval until ctx ends.
func (c *clickHouse) retentionLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next := interval
		if _, err := c.dropExpired(ctx, time.Now()); err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("audit retention sweep failed; retrying", "err", err)
			next = min(interval, time.Minute)
		}
		t.Reset(next)
	}
}
