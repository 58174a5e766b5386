-- One row per enriched event: the table BI users query. `{db}` is replaced by the database name.
-- Area codes are NULL when unknown (an emergency is never dropped for lacking an area).
-- Kafka topic/partition/offset are the aggregator's position: on partition assignment it resumes
-- from max(kafka_offset) + 1 of that partition, so a crash after the insert re-inserts nothing.
-- ReplacingMergeTree on (day, event_id) folds upstream duplicates (the same event_id re-sent) in
-- the background; every count pingan serves is a distinct count of event_id regardless.
CREATE TABLE IF NOT EXISTS {db}.incidents
(
    event_id UUID,
    source String,
    source_ref String,
    event_time DateTime('Asia/Shanghai'),
    category String,
    subtype String,
    department Nullable(String),
    secondary_departments Array(String),
    priority UInt8,
    district_code Nullable(String),
    town_code Nullable(String),
    station_code Nullable(String),
    compound_id Nullable(String),
    committee_id Nullable(String),
    plate_id Nullable(String),
    poi_id Nullable(String),
    lat Nullable(Float64),
    lon Nullable(Float64),
    h3 Nullable(String),
    h3_r8 Nullable(String),
    h3_r7 Nullable(String),
    tags Array(String),
    keywords Array(String),
    classifier_version String,
    score Float32,
    rule String,
    evidence Array(String),
    runner_up String,
    repeat_of Nullable(UUID),
    description String,
    kafka_topic String,
    kafka_partition UInt16,
    kafka_offset UInt64,
    stored_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (toDate(event_time), event_id);
