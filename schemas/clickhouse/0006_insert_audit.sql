-- Insert audit: one row per Kafka record the aggregator inserted, written by a materialized view
-- in the same INSERT and never folded (plain MergeTree). It proves "no Kafka record was inserted
-- twice" (count() = uniqExact(partition, offset)) even after ReplacingMergeTree has folded
-- duplicated event ids in `incidents`, and its sorting key makes "highest stored offset of a
-- partition" — where the aggregator resumes — an index lookup instead of a scan.
CREATE TABLE IF NOT EXISTS {db}.insert_audit
(
    kafka_topic String,
    kafka_partition UInt16,
    kafka_offset UInt64,
    event_id UUID,
    stored_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(stored_at)
ORDER BY (kafka_topic, kafka_partition, kafka_offset);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.insert_audit_mv TO {db}.insert_audit AS
SELECT kafka_topic, kafka_partition, kafka_offset, event_id, now() AS stored_at
FROM {db}.incidents;
