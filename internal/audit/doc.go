// Package audit records every MCP message, policy decision and access
// request/grant transition, and answers the `sessions` and `replay`
// questions over what was recorded.
//
// Two implementations share one API:
//
//   - the pipeline (Open with ClickHouse configured): Record encodes a row
//     into a durable local spool (append-only segment files, length-prefixed
//     and CRC-checked records) without waiting for the disk or the network;
//     a shipper sends sealed segments to ClickHouse in batches over the
//     native protocol, at least once, and deletes a segment only after
//     ClickHouse acknowledged every row in it. Rows carry a random event id
//     and the tables are ReplacingMergeTree ordered by it, so a batch sent
//     twice is never counted twice by queries that read with FINAL.
//   - the embedded store (Open without ClickHouse): JSON-lines files per
//     day in a local directory, with an in-memory session index, offering
//     the same Sessions and Replay answers.
//
// The ClickHouse schema is created and migrated at start (schema.go), with
// column types chosen by the server version (DateTime64 and LowCardinality
// only where the server has them), and retention enforced by dropping
// whole day partitions. docs/analytics.md documents the tables and the SQL
// analysts run against them.
package audit
