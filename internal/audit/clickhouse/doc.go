// Package clickhouse is the audit trail's ClickHouse side, and the only
// package that links clickhouse-go: the native-protocol connection, the
// schema and its migrations (chosen by server version), batch inserts
// column by column, retention by day partition, and the Sessions and
// Replay queries. Store is the audit.Destination an audit.Pipeline ships
// its spool to; Open and OpenStore choose between it and the embedded
// store from the configuration.
//
// docs/analytics.md documents the tables and the SQL analysts run
// against them; docs_test.go runs that SQL.
package clickhouse
