-- Access log (CONTRACT §9): one row per incident-level read or export answered by `pingan serve`
-- (incident rows, CSV, the access log itself, live streams that carry incidents): who (the read
-- token's name, never its secret), when, which endpoint, the filters (the query string) and how
-- many rows went out. Written before the answer is sent; readable by admins through
-- GET /v1/access-log. Plain MergeTree: an audit trail is never folded. Second resolution
-- (DateTime64 does not exist on 18.16).
CREATE TABLE IF NOT EXISTS {db}.access_log
(
    at DateTime('Asia/Shanghai'),
    principal String,
    role String,
    scope String,
    endpoint String,
    filters String,
    row_count UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (at, principal);
