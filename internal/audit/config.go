package audit

import "github.com/airlock-mcp/airlock/internal/config"

// The `audit:` part of airlock.yaml is defined, defaulted and validated in
// package config (which every part of airlock may import); these are its
// names here. Validation errors are *config.FieldError.
type (
	Config           = config.Audit
	ClickHouseConfig = config.AuditClickHouse
	SpoolConfig      = config.AuditSpool
	EmbeddedConfig   = config.AuditEmbedded
	// FullPolicy is what Record does when the spool (or the embedded
	// store's write queue) has no room.
	FullPolicy = config.FullPolicy
)

// The full policies.
const (
	// DropNewest drops the row being recorded, counts it
	// (airlock_audit_dropped_total) and lets the MCP message through.
	DropNewest = config.DropNewest
	// FailClosed makes Record return ErrSpoolFull: the caller denies or
	// fails the message rather than let it pass unrecorded.
	FailClosed = config.FailClosed
)

// Defaults returns the default configuration. Decode airlock.yaml's
// `audit:` section over it: a field set to 0 there means 0 (retention_days:
// 0 keeps everything, fsync_interval: 0 fsyncs after every write).
func Defaults() Config { return config.AuditDefaults() }
