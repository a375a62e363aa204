package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"time"
)

// Audit is the audit section of airlock.yaml: where every MCP message and
// decision is recorded. Package audit runs it.
type Audit struct {
	// ClickHouse is where audit rows go; with an empty Addr the embedded
	// store is used instead.
	ClickHouse AuditClickHouse `yaml:"clickhouse"`
	Spool      AuditSpool      `yaml:"spool"`
	Embedded   AuditEmbedded   `yaml:"embedded"`
	// PayloadMaxBytes caps the masked message kept per event (cut on a
	// UTF-8 boundary, Truncated set). Default 64 KiB.
	PayloadMaxBytes int `yaml:"payload_max_bytes"`
}

// AuditClickHouse says how to reach ClickHouse (native protocol).
type AuditClickHouse struct {
	Addr string `yaml:"addr"` // host:port of the native TCP port, e.g. 127.0.0.1:9000
	// Addrs lists several nodes' native ports instead of Addr (set one of
	// the two): airlock connects to the first that answers, in order, and
	// moves on to the next when it stops answering.
	Addrs []string `yaml:"addrs"`
	// Cluster names a cluster of the servers' remote_servers: the schema is
	// then created ON CLUSTER, as Replicated*MergeTree tables named
	// TABLE_local (ZooKeeper path /clickhouse/tables/{shard}/DB/TABLE_local,
	// replica {replica}: every node needs those macros) under Distributed
	// tables with the usual names, which airlock writes and queries read.
	// Empty: one server (or a load balancer in front of one).
	Cluster     string `yaml:"cluster"`
	Database    string `yaml:"database"`     // default airlock; created if missing
	Username    string `yaml:"username"`     // default "default"
	PasswordEnv string `yaml:"password_env"` // environment variable holding the password
	// BatchSize is the most rows sent in one INSERT. Default 10000.
	BatchSize int `yaml:"batch_size"`
	// BatchBytes is the most record bytes (as spooled) sent in one INSERT:
	// a batch is sent at batch_size rows or batch_bytes, whichever comes
	// first, so large payloads cannot make a batch (and the shipper's
	// memory, two batches and ClickHouse's block) grow with them.
	// Default 8 MiB.
	BatchBytes int `yaml:"batch_bytes"`
	// FlushInterval is the longest a row waits in the spool's open segment
	// before it is sealed, and the longest a partial batch waits for more
	// rows before it is sent: rows reach ClickHouse within about two
	// intervals. Default 1s.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// RetentionDays keeps this many days of rows (whole day partitions are
	// dropped past it); 0 keeps everything. Default 90.
	RetentionDays int `yaml:"retention_days"`
	// DialTimeout bounds connecting; QueryTimeout bounds each INSERT or
	// query. Defaults 5s and 30s.
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	QueryTimeout time.Duration `yaml:"query_timeout"`
}

// Addresses are the nodes to connect to, in order: Addrs, else Addr
// alone, else none (the embedded store is used).
func (c AuditClickHouse) Addresses() []string {
	if len(c.Addrs) > 0 {
		return c.Addrs
	}
	if c.Addr != "" {
		return []string{c.Addr}
	}
	return nil
}

// Enabled reports whether audit rows go to ClickHouse (addr or addrs set).
func (c AuditClickHouse) Enabled() bool { return len(c.Addresses()) > 0 }

// FullPolicy is what the audit recorder does when the spool (or the
// embedded store's write queue) has no room.
type FullPolicy string

// The full policies.
const (
	// DropNewest drops the row being recorded, counts it
	// (airlock_audit_dropped_total) and lets the MCP message through.
	DropNewest FullPolicy = "drop_newest"
	// FailClosed makes recording fail (audit.ErrSpoolFull): the caller
	// denies or fails the message rather than let it pass unrecorded.
	FailClosed FullPolicy = "fail_closed"
)

// AuditSpool is the local durable buffer in front of ClickHouse.
type AuditSpool struct {
	Dir string `yaml:"dir"` // default /var/lib/airlock/spool
	// MaxBytes bounds the spool: segments on disk plus rows not yet
	// written. Default 1 GiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// SegmentBytes seals a segment once it is this large. Default 4 MiB.
	SegmentBytes int64 `yaml:"segment_bytes"`
	// FsyncInterval is how often the open segment is fsynced; 0 fsyncs
	// after every write (each batch of rows the writer takes from memory).
	// Segments are always fsynced when sealed. Recording never waits for it.
	// Default 200ms.
	FsyncInterval time.Duration `yaml:"fsync_interval"`
	FullPolicy    FullPolicy    `yaml:"full_policy"` // default drop_newest
}

// AuditEmbedded is the local store used when ClickHouse is not configured.
type AuditEmbedded struct {
	Dir           string `yaml:"dir"`            // default /var/lib/airlock/audit
	RetentionDays int    `yaml:"retention_days"` // default 30; 0 keeps everything
	// MaxPendingBytes bounds rows waiting to be written; past it
	// spool.full_policy applies. Default 64 MiB.
	MaxPendingBytes int64 `yaml:"max_pending_bytes"`
}

// AuditDefaults returns the default audit configuration of the audit
// package (airlock.yaml's Defaults move the directories next to the
// config). Decode the `audit:` section over it: a field set to 0 there
// means 0 (retention_days: 0 keeps everything, fsync_interval: 0 fsyncs
// after every write).
func AuditDefaults() Audit {
	return Audit{
		ClickHouse: AuditClickHouse{
			Database:      "airlock",
			Username:      "default",
			BatchSize:     10000,
			BatchBytes:    8 << 20,
			FlushInterval: time.Second,
			RetentionDays: 90,
			DialTimeout:   5 * time.Second,
			QueryTimeout:  30 * time.Second,
		},
		Spool: AuditSpool{
			Dir:           "/var/lib/airlock/spool",
			MaxBytes:      1 << 30,
			SegmentBytes:  4 << 20,
			FsyncInterval: 200 * time.Millisecond,
			FullPolicy:    DropNewest,
		},
		Embedded: AuditEmbedded{
			Dir:             "/var/lib/airlock/audit",
			RetentionDays:   30,
			MaxPendingBytes: 64 << 20,
		},
		PayloadMaxBytes: 64 << 10,
	}
}

var (
	dbNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
	// clusterRE: names as remote_servers spells them; airlock quotes them
	// (`name` after ON CLUSTER, 'name' in Distributed(...)), so only
	// characters that need no escaping in either.
	clusterRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// Validate checks c and returns every problem found, joined, each a
// *FieldError under audit.
func (c Audit) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldErr("audit."+field, format, args...))
	}
	ch := c.ClickHouse
	if ch.Addr != "" && len(ch.Addrs) > 0 {
		bad("clickhouse.addrs", "set clickhouse.addr or clickhouse.addrs, not both")
	}
	if ch.Addr != "" {
		if _, port, err := net.SplitHostPort(ch.Addr); err != nil || port == "" {
			bad("clickhouse.addr", "want host:port of ClickHouse's native TCP port, got %q", ch.Addr)
		}
	}
	seen := map[string]bool{}
	for i, a := range ch.Addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			bad(fmt.Sprintf("clickhouse.addrs[%d]", i), "want host:port of ClickHouse's native TCP port, got %q", a)
		} else if seen[a] {
			bad(fmt.Sprintf("clickhouse.addrs[%d]", i), "%q is listed twice", a)
		}
		seen[a] = true
	}
	if ch.Enabled() && c.Spool.Dir == "" {
		bad("spool.dir", "required when clickhouse.addr or clickhouse.addrs is set")
	}
	if ch.Cluster != "" {
		if !clusterRE.MatchString(ch.Cluster) {
			bad("clickhouse.cluster", "%q is not a cluster name (letters, digits, _ . -)", ch.Cluster)
		}
		if !ch.Enabled() {
			bad("clickhouse.cluster", "needs clickhouse.addr or clickhouse.addrs")
		}
	}
	if !dbNameRE.MatchString(ch.Database) {
		bad("clickhouse.database", "%q is not a plain identifier (letters, digits, _)", ch.Database)
	}
	if ch.PasswordEnv != "" {
		if _, ok := os.LookupEnv(ch.PasswordEnv); !ok {
			bad("clickhouse.password_env", "environment variable %s is not set", ch.PasswordEnv)
		}
	}
	if ch.BatchSize < 1 || ch.BatchSize > 1_000_000 {
		bad("clickhouse.batch_size", "must be 1..1000000, got %d", ch.BatchSize)
	}
	if ch.BatchBytes < 64<<10 || ch.BatchBytes > 1<<30 {
		bad("clickhouse.batch_bytes", "must be 65536..1073741824 (64 KiB..1 GiB), got %d", ch.BatchBytes)
	}
	if ch.FlushInterval < 10*time.Millisecond {
		bad("clickhouse.flush_interval", "must be at least 10ms, got %s", ch.FlushInterval)
	}
	if ch.RetentionDays < 0 {
		bad("clickhouse.retention_days", "must be ≥ 0 (0 keeps everything), got %d", ch.RetentionDays)
	}
	if ch.DialTimeout <= 0 || ch.QueryTimeout <= 0 {
		bad("clickhouse.dial_timeout", "dial_timeout and query_timeout must be positive")
	}
	sp := c.Spool
	if sp.SegmentBytes < 4096 {
		bad("spool.segment_bytes", "must be at least 4096, got %d", sp.SegmentBytes)
	}
	if sp.MaxBytes < 2*sp.SegmentBytes {
		bad("spool.max_bytes", "must be at least twice segment_bytes (%d), got %d", sp.SegmentBytes, sp.MaxBytes)
	}
	if sp.FsyncInterval < 0 {
		bad("spool.fsync_interval", "must be ≥ 0 (0 fsyncs after every write), got %s", sp.FsyncInterval)
	}
	switch sp.FullPolicy {
	case DropNewest, FailClosed:
	default:
		bad("spool.full_policy", "must be %s or %s, got %q", DropNewest, FailClosed, sp.FullPolicy)
	}
	em := c.Embedded
	if !ch.Enabled() && em.Dir == "" {
		bad("embedded.dir", "required when clickhouse.addr and clickhouse.addrs are empty")
	}
	if em.RetentionDays < 0 {
		bad("embedded.retention_days", "must be ≥ 0 (0 keeps everything), got %d", em.RetentionDays)
	}
	if em.MaxPendingBytes < 1<<16 {
		bad("embedded.max_pending_bytes", "must be at least 65536, got %d", em.MaxPendingBytes)
	}
	if c.PayloadMaxBytes < 256 || c.PayloadMaxBytes > 16<<20 {
		bad("payload_max_bytes", "must be 256..16777216, got %d", c.PayloadMaxBytes)
	}
	return errors.Join(errs...)
}
