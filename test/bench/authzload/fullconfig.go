package main

import (
	"context"
	"fmt"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/airlock-mcp/airlock/internal/grants/grantstest"
	chtest "github.com/airlock-mcp/airlock/test/clickhouse"
)

// defaultGrants is how many live grants the airlock target's store holds
// (issue 19's default configuration).
const defaultGrants = 10_000

// writeGrants writes n live grants into the file store at dir (the
// store airlock's grants.dir names), as grantstest does for the tests.
func writeGrants(dir string, n int, issuerURL string) error {
	return grantstest.Live(dir, n, benchTarget, issuerURL)
}

// clickHouseNice is the nice level of the ClickHouse the driver starts.
// In production ClickHouse runs on its own hosts; here it shares the two
// cores with the driver and the targets, and at the default priority
// its inserts and merges landed as bursts of both cores in the middle
// of the measured calls (the p99 at 2,000 req/s moved from 2.8–3.7 ms
// with the embedded store to 6.5 ms). At nice 19 it still ingests every
// row (the run counts them) and its CPU per Check is still reported;
// it only waits for cores the measured processes leave idle. airlock's
// own cost of shipping (the spool, the shipper, encoding the blocks) is
// in airlock's process and counted there.
const clickHouseNice = 19

// auditStore is the ClickHouse airlock records into during the run:
// started here (Debian's clickhouse-server via test/clickhouse, as
// auditload does) or given with --clickhouse.
type auditStore struct {
	addr, db string
	srv      *chtest.Server // nil when given
}

func startAuditStore(ctx context.Context, addr string) (*auditStore, error) {
	s := &auditStore{addr: addr, db: fmt.Sprintf("authzload_%d", time.Now().UnixNano())}
	if addr == "" {
		srv, err := chtest.Start(ctx, chtest.Options{Nice: clickHouseNice})
		if err != nil {
			return nil, fmt.Errorf("start ClickHouse for the audit rows (or pass --clickhouse ADDR, or --clickhouse off): %w", err)
		}
		s.srv, s.addr = srv, srv.Addr()
	}
	return s, nil
}

func (s *auditStore) close() {
	if s.srv != nil {
		_ = s.srv.Close()
	}
}

// auditRows is what reached ClickHouse from airlock: decision rows
// (ext_authz) and message rows (ext_proc).
type auditRows struct {
	Decisions uint64 `json:"decisions"`
	Events    uint64 `json:"events"`
	Err       string `json:"error,omitempty"`
}

// count waits up to wait for the rows airlock shipped (its spool sends
// them within about two flush intervals) and counts them.
func (s *auditStore) count(ctx context.Context, wait time.Duration, wantEvents bool) auditRows {
	conn, err := chgo.Open(&chgo.Options{Addr: []string{s.addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		return auditRows{Err: err.Error()}
	}
	defer conn.Close()
	deadline := time.Now().Add(wait)
	var r auditRows
	for {
		r = auditRows{}
		for _, q := range []struct {
			table string
			into  *uint64
		}{{"decisions", &r.Decisions}, {"events", &r.Events}} {
			if err := conn.QueryRow(ctx, "SELECT count() FROM "+s.db+"."+q.table).Scan(q.into); err != nil {
				r.Err = fmt.Sprintf("count %s.%s: %v", s.db, q.table, err)
			}
		}
		if (r.Err == "" && r.Decisions > 0 && (r.Events > 0 || !wantEvents)) || time.Now().After(deadline) || ctx.Err() != nil {
			return r
		}
		time.Sleep(250 * time.Millisecond)
	}
}
