// Package audit records every MCP message, policy decision and access
// request/grant transition, and answers the `sessions` and `replay`
// questions over what was recorded.
//
// Two implementations share one API:
//
//   - the Pipeline (with ClickHouse configured): Record encodes a row
//     into a durable local spool (append-only segment files, length-prefixed
//     and CRC-checked records) without waiting for the disk or the network;
//     a shipper sends sealed segments to a Destination (ClickHouse) in
//     batches, at least once, and deletes a segment only after the
//     Destination acknowledged every row in it. Rows carry a random event id
//     and the tables are ReplacingMergeTree ordered by it, so a batch sent
//     twice is never counted twice by queries that read with FINAL.
//   - the embedded store (without ClickHouse): JSON-lines files per
//     day in a local directory, with an in-memory session index, offering
//     the same Sessions and Replay answers.
//
// This package is the audit vocabulary (the row types, Sink, Recorder,
// Store), the spool and its codec, the shipper, the embedded store and
// the CLI's formatting; it never imports clickhouse-go (deps_test.go), so
// the parts that only record — extproc, extauthz, the grants auditor —
// stay light. internal/audit/clickhouse holds the connection, the schema
// and its migrations, the batch inserts, retention and the ClickHouse
// queries, and Open, which picks the backend from the configuration.
package audit
