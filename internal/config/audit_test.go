package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/google/go-cmp/cmp"
)

func TestAuditDefaultsValid(t *testing.T) {
	if err := AuditDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestAuditYAML: the audit section decodes over Defaults, explicit zeros
// stay zero, durations parse.
func TestAuditYAML(t *testing.T) {
	src := `
clickhouse:
  addr: 127.0.0.1:9000
  database: audit_prod
  password_env: HOME
  batch_size: 5000
  flush_interval: 250ms
  retention_days: 0
spool:
  dir: /tmp/spool
  max_bytes: 104857600
  fsync_interval: 0s
  full_policy: fail_closed
payload_max_bytes: 4096
`
	c := AuditDefaults()
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	want := AuditDefaults()
	want.ClickHouse.Addr = "127.0.0.1:9000"
	want.ClickHouse.Database = "audit_prod"
	want.ClickHouse.PasswordEnv = "HOME"
	want.ClickHouse.BatchSize = 5000
	want.ClickHouse.FlushInterval = 250 * time.Millisecond
	want.ClickHouse.RetentionDays = 0
	want.Spool.Dir = "/tmp/spool"
	want.Spool.MaxBytes = 100 << 20
	want.Spool.FsyncInterval = 0
	want.Spool.FullPolicy = FailClosed
	want.PayloadMaxBytes = 4096
	if d := cmp.Diff(want, c); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestAuditValidateErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Audit)
		field  string
	}{
		{"addr without port", func(c *Audit) { c.ClickHouse.Addr = "clickhouse" }, "audit.clickhouse.addr"},
		{"database injection", func(c *Audit) { c.ClickHouse.Database = "x; DROP TABLE y" }, "audit.clickhouse.database"},
		{"password env unset", func(c *Audit) { c.ClickHouse.PasswordEnv = "AIRLOCK_TEST_SURELY_UNSET_VAR" }, "audit.clickhouse.password_env"},
		{"batch size zero", func(c *Audit) { c.ClickHouse.BatchSize = 0 }, "audit.clickhouse.batch_size"},
		{"flush interval tiny", func(c *Audit) { c.ClickHouse.FlushInterval = time.Millisecond }, "audit.clickhouse.flush_interval"},
		{"negative retention", func(c *Audit) { c.ClickHouse.RetentionDays = -1 }, "audit.clickhouse.retention_days"},
		{"timeouts", func(c *Audit) { c.ClickHouse.QueryTimeout = 0 }, "audit.clickhouse.dial_timeout"},
		{"segment tiny", func(c *Audit) { c.Spool.SegmentBytes = 10 }, "audit.spool.segment_bytes"},
		{"max below two segments", func(c *Audit) { c.Spool.MaxBytes = c.Spool.SegmentBytes }, "audit.spool.max_bytes"},
		{"negative fsync", func(c *Audit) { c.Spool.FsyncInterval = -time.Second }, "audit.spool.fsync_interval"},
		{"unknown policy", func(c *Audit) { c.Spool.FullPolicy = "block" }, "audit.spool.full_policy"},
		{"spool dir with clickhouse", func(c *Audit) { c.ClickHouse.Addr = "ch:9000"; c.Spool.Dir = "" }, "audit.spool.dir"},
		{"embedded dir without clickhouse", func(c *Audit) { c.Embedded.Dir = "" }, "audit.embedded.dir"},
		{"embedded retention", func(c *Audit) { c.Embedded.RetentionDays = -2 }, "audit.embedded.retention_days"},
		{"embedded pending", func(c *Audit) { c.Embedded.MaxPendingBytes = 1 }, "audit.embedded.max_pending_bytes"},
		{"payload cap", func(c *Audit) { c.PayloadMaxBytes = 1 }, "audit.payload_max_bytes"},
		{"addr and addrs", func(c *Audit) { c.ClickHouse.Addr = "a:9000"; c.ClickHouse.Addrs = []string{"b:9000"} }, "audit.clickhouse.addrs"},
		{"addrs without port", func(c *Audit) { c.ClickHouse.Addrs = []string{"a:9000", "b"} }, "audit.clickhouse.addrs[1]"},
		{"addrs twice", func(c *Audit) { c.ClickHouse.Addrs = []string{"a:9000", "a:9000"} }, "audit.clickhouse.addrs[1]"},
		{"cluster injection", func(c *Audit) { c.ClickHouse.Addr = "a:9000"; c.ClickHouse.Cluster = "c' x" }, "audit.clickhouse.cluster"},
		{"cluster backtick", func(c *Audit) { c.ClickHouse.Addr = "a:9000"; c.ClickHouse.Cluster = "c`" }, "audit.clickhouse.cluster"},
		{"cluster without servers", func(c *Audit) { c.ClickHouse.Cluster = "prod" }, "audit.clickhouse.cluster"},
		{"spool dir with addrs", func(c *Audit) { c.ClickHouse.Addrs = []string{"ch:9000"}; c.Spool.Dir = "" }, "audit.spool.dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := AuditDefaults()
			tt.mutate(&c)
			err := c.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a FieldError", err)
			}
			if !strings.Contains(err.Error(), tt.field+":") {
				t.Fatalf("error %q does not name %s", err, tt.field)
			}
		})
	}
}

// TestAuditClusterYAML: addrs and cluster decode; Addresses prefers
// addrs, falls back to addr, and is empty for the embedded store.
func TestAuditClusterYAML(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
		cluster   string
	}{
		{"addrs and cluster", "clickhouse:\n  addrs: [ch-1:9000, ch-2:9000]\n  cluster: airlock-prod\n", []string{"ch-1:9000", "ch-2:9000"}, "airlock-prod"},
		{"addr alone", "clickhouse:\n  addr: ch:9000\n", []string{"ch:9000"}, ""},
		{"one node named as a cluster", "clickhouse:\n  addr: ch:9000\n  cluster: c1\n", []string{"ch:9000"}, "c1"},
		{"embedded", "embedded:\n  dir: /tmp/a\n", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := AuditDefaults()
			if err := yaml.Unmarshal([]byte(tt.src), &c); err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, c.ClickHouse.Addresses()); d != "" {
				t.Fatalf("Addresses (-want +got):\n%s", d)
			}
			if c.ClickHouse.Enabled() != (tt.want != nil) || c.ClickHouse.Cluster != tt.cluster {
				t.Fatalf("Enabled %v, cluster %q", c.ClickHouse.Enabled(), c.ClickHouse.Cluster)
			}
		})
	}
}

// TestAuditValidateNoSecret: an error about the password never shows it.
func TestAuditValidateNoSecret(t *testing.T) {
	t.Setenv("AIRLOCK_TEST_CH_PASSWORD", "s3cr3t-value")
	c := AuditDefaults()
	c.ClickHouse.PasswordEnv = "AIRLOCK_TEST_CH_PASSWORD"
	c.ClickHouse.BatchSize = 0
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "s3cr3t-value") {
		t.Fatalf("got %v", err)
	}
}
