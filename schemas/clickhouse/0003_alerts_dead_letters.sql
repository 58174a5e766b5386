-- Spike alerts. One row per alert key (area, type, window); an escalation rewrites the row with a
-- higher version, so replays and restarts never create a second alert for the same window.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    id String,
    alert_key String,
    area_level String,
    area_code String,
    town_code Nullable(String),
    category String,
    subtype Nullable(String),
    window_start DateTime('Asia/Shanghai'),
    window_end DateTime('Asia/Shanghai'),
    observed UInt32,
    expected Float64,
    baseline String,
    score Float64,
    p_value Float64,
    level String,
    method String,
    contributors Array(String),
    created_at DateTime('Asia/Shanghai'),
    updated_at DateTime('Asia/Shanghai'),
    version UInt64,
    -- The whole alert (baseline, method detail, group members) as JSON, so a restarted
    -- aggregator restores exactly what it had emitted and never pages twice.
    record String
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY alert_key;

-- Records a stage could not process: original payload, where it came from and why.
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    stored_at DateTime('Asia/Shanghai') DEFAULT now(),
    stage String,
    reason String,
    message String,
    topic String,
    partition UInt16,
    offset UInt64,
    key String,
    payload String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(stored_at)
ORDER BY (topic, partition, offset);
