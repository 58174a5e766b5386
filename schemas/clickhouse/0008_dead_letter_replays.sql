-- Dead letters are written to `dead_letters` (0003) by the aggregator's dead-letter stage, which
-- reads every `<topic>.dlq`: one row per dead letter, keyed by where the record came from
-- (origin topic, partition, offset), so a redelivered dead letter folds into the same row.
-- `stored_at` is when the record was dead-lettered (the dead-letter record's Kafka time).
--
-- `pingan dlq replay` publishes a dead letter back to its origin topic and records it here, so
-- a second replay of the same letter is refused unless asked for (`--again`); the counts would
-- not double anyway, since every count is a distinct count of `event_id`. `edited` = 1 when the
-- operator replayed a corrected payload instead of the original bytes.
CREATE TABLE IF NOT EXISTS {db}.dead_letter_replays
(
    topic String COMMENT 'origin topic of the dead letter (where it was replayed to)',
    `partition` UInt16 COMMENT 'origin partition of the dead letter',
    `offset` UInt64 COMMENT 'origin offset of the dead letter',
    replayed_at DateTime('Asia/Shanghai') COMMENT 'when it was published again',
    edited UInt8 COMMENT '1: a corrected payload was replayed instead of the original bytes',
    note String COMMENT 'free text given with --note'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(replayed_at)
ORDER BY (topic, `partition`, `offset`, replayed_at)
