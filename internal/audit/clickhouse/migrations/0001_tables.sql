-- On a cluster these are the local tables (TABLE_local, replicated, ON
-- CLUSTER); schema.go puts Distributed tables with these names over them.
--
-- One row per MCP message, masked. Replay reads one session in order from
-- the sorting key; ReplacingMergeTree folds rows sent twice (same key,
-- same event_id) and queries read it with FINAL.
CREATE TABLE IF NOT EXISTS {{table "events"}} (
    event_id      String,
    time          {{.Time}},
    time_ns       UInt64,
    session_id    String,
    principal     String,
    client_id     {{lc "String"}},
    issuer        {{lc "String"}},
    target        {{lc "String"}},
    direction     {{lc "String"}},
    method        {{lc "String"}},
    tool          {{lc "String"}},
    jsonrpc_id    String,
    decision_id   String,
    grant_id      String,
    status        UInt16,
    outcome       {{lc "String"}},
    latency_ms    Float64,
    masked_types  Array({{lc "String"}}),
    masked_counts Array(UInt32),
    masked_total  UInt32,
    payload       String,
    truncated     UInt8,
    bytes         UInt64
) ENGINE = {{engine "ReplacingMergeTree" "events"}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (session_id, time_ns, event_id);

-- One row per ext_authz decision, ordered for per-user questions.
CREATE TABLE IF NOT EXISTS {{table "decisions"}} (
    decision_id    String,
    time           {{.Time}},
    time_ns        UInt64,
    session_id     String,
    principal      String,
    client_id      {{lc "String"}},
    issuer         {{lc "String"}},
    target         {{lc "String"}},
    method         {{lc "String"}},
    tool           {{lc "String"}},
    jsonrpc_id     String,
    outcome        {{lc "String"}},
    reason         String,
    policy_version {{lc "String"}},
    grant_id       String,
    request_id     String,
    status         UInt16,
    latency_us     UInt64
) ENGINE = {{engine "ReplacingMergeTree" "decisions"}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (principal, time_ns, decision_id);

-- One row per access request transition (created → pending, approved, …).
CREATE TABLE IF NOT EXISTS {{table "request_events"}} (
    event_id    String,
    time        {{.Time}},
    time_ns     UInt64,
    request_id  String,
    from_state  {{lc "String"}},
    to_state    {{lc "String"}},
    actor       String,
    principal   String,
    client_id   {{lc "String"}},
    target      {{lc "String"}},
    method      {{lc "String"}},
    tool        {{lc "String"}},
    reason      String,
    decision_id String,
    grant_id    String
) ENGINE = {{engine "ReplacingMergeTree" "request_events"}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (request_id, time_ns, event_id);

-- One row per grant transition (issued, used, consumed, expired, revoked).
CREATE TABLE IF NOT EXISTS {{table "grant_events"}} (
    event_id    String,
    time        {{.Time}},
    time_ns     UInt64,
    grant_id    String,
    transition  {{lc "String"}},
    actor       String,
    principal   String,
    client_id   {{lc "String"}},
    target      {{lc "String"}},
    tools       Array({{lc "String"}}),
    request_id  String,
    expires_at  DateTime('UTC'),
    uses_left   Int64,
    reason      String
) ENGINE = {{engine "ReplacingMergeTree" "grant_events"}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (grant_id, time_ns, event_id);
