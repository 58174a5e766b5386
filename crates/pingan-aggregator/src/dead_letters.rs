//! The dead-letter stage: every `<topic>.dlq` → the ClickHouse `dead_letters` table, so dead
//! letters can be listed, filtered and replayed (`pingan dlq`) and seen by BI tools.
//!
//! The same shape as the main stage: Kafka source → pure transform → idempotent sink → offsets
//! after durability. A row is the dead-letter record's bytes and headers as they are, keyed by
//! its origin (topic, partition, offset) in a ReplacingMergeTree, so a dead letter delivered
//! twice (a crash before the offset commit) folds into one row; nothing here needs the insert
//! audit of the main stage.

use std::time::Duration;

use clickhouse::Client;
use pingan_pipeline::batch::{BatchId, RecordMeta};
use pingan_pipeline::stage::{
    Ack, Disposition, Inbound, Outbound, Outcome, RecordError, Sink, StageError, Transform,
};
use pingan_warehouse::dead_letters::DeadLetterRow;
use serde::{Deserialize, Serialize};

/// `[aggregator.dead_letters]`: storing dead letters in ClickHouse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLetterStoreConfig {
    /// Run the stage.
    pub enabled: bool,
    /// Dead-letter topics to store (every stage's `<input topic>.dlq`).
    pub topics: Vec<String>,
    /// Consumer group; empty: `<aggregator.group_id>.dead-letters`.
    pub group_id: String,
}

impl Default for DeadLetterStoreConfig {
    fn default() -> Self {
        DeadLetterStoreConfig {
            enabled: true,
            topics: vec![
                "pingan.call110.v1.dlq".into(),
                "pingan.qrscan.v1.dlq".into(),
                "pingan.enriched.v1.dlq".into(),
            ],
            group_id: String::new(),
        }
    }
}

impl DeadLetterStoreConfig {
    /// The consumer group, given the aggregator's.
    pub fn group_id(&self, aggregator_group: &str) -> String {
        if self.group_id.is_empty() {
            format!("{aggregator_group}.dead-letters")
        } else {
            self.group_id.clone()
        }
    }

    /// Every problem with these settings.
    pub fn validate(&self, errors: &mut Vec<String>) {
        if self.enabled && self.topics.is_empty() {
            errors.push(
                "aggregator.dead_letters.topics is empty (set enabled = false to store none)"
                    .into(),
            );
        }
    }
}

/// Dead-letter record → row. Pure: reads the record's headers, time and bytes only.
#[derive(Debug, Clone, Copy, Default)]
pub struct ToDeadLetterRow;

fn header<'a>(meta: &'a RecordMeta, name: &str) -> Option<&'a str> {
    meta.headers
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// The row of one dead-letter record. A record without pingan's headers (put on the topic by
/// hand) is stored with its own position as origin and reason `unknown`.
pub fn to_row(meta: &RecordMeta, payload: Vec<u8>) -> DeadLetterRow {
    let origin_topic = header(meta, "x-pingan-origin-topic")
        .map(str::to_owned)
        .unwrap_or_else(|| {
            meta.topic
                .strip_suffix(".dlq")
                .unwrap_or(&meta.topic)
                .to_owned()
        });
    let partition = header(meta, "x-pingan-origin-partition")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| u16::try_from(meta.partition).unwrap_or(0));
    let offset = header(meta, "x-pingan-origin-offset")
        .and_then(|o| o.parse::<u64>().ok())
        .unwrap_or_else(|| u64::try_from(meta.offset).unwrap_or(0));
    DeadLetterRow {
        stored_at: meta
            .timestamp_ms
            .and_then(|ms| u32::try_from(ms / 1000).ok())
            .unwrap_or(0),
        stage: header(meta, "x-pingan-stage").unwrap_or("").to_owned(),
        reason: header(meta, "x-pingan-reason")
            .unwrap_or("unknown")
            .to_owned(),
        message: header(meta, "x-pingan-error").unwrap_or("").to_owned(),
        topic: origin_topic,
        partition,
        offset,
        key: meta.key.clone().unwrap_or_default(),
        payload,
    }
}

impl Transform for ToDeadLetterRow {
    type In = Vec<u8>;
    type Out = DeadLetterRow;

    /// Dead letters are whatever another stage could not read: kept as bytes, never decoded.
    fn decode(payload: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
        Ok(payload.to_vec())
    }

    fn transform(
        &mut self,
        input: Inbound<Vec<u8>>,
    ) -> Result<Outcome<DeadLetterRow>, RecordError> {
        let row = to_row(&input.meta, input.value);
        Ok(Outcome::Emit(Outbound {
            source: input.meta,
            key: None,
            value: row,
        }))
    }
}

/// Why storing dead letters failed.
#[derive(Debug, thiserror::Error)]
#[error("storing dead letters failed: {0}")]
pub struct DeadLetterSinkError(#[source] clickhouse::error::Error);

impl StageError for DeadLetterSinkError {
    /// Every column is a plain string or number, so ClickHouse has nothing to reject in a row;
    /// whatever fails is the server or the connection: retry (the rows fold if they had landed).
    fn disposition(&self) -> Disposition {
        Disposition::Retry
    }
    fn code(&self) -> &'static str {
        "clickhouse_insert"
    }
}

/// Writes dead-letter rows; idempotent because rows are keyed by origin and identical when
/// written again.
pub struct DeadLetterSink {
    client: Client,
    timeout: Duration,
}

impl std::fmt::Debug for DeadLetterSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeadLetterSink")
    }
}

impl DeadLetterSink {
    /// A sink writing with `client`; one INSERT may take `timeout`.
    pub fn new(client: Client, timeout: Duration) -> DeadLetterSink {
        DeadLetterSink { client, timeout }
    }
}

impl Sink for DeadLetterSink {
    type Item = DeadLetterRow;
    type Error = DeadLetterSinkError;

    async fn write(
        &mut self,
        _id: &BatchId,
        items: &[Outbound<DeadLetterRow>],
    ) -> Result<Ack, DeadLetterSinkError> {
        let rows: Vec<DeadLetterRow> = items.iter().map(|o| o.value.clone()).collect();
        pingan_warehouse::dead_letters::insert(&self.client, &rows, self.timeout)
            .await
            .map_err(DeadLetterSinkError)?;
        Ok(Ack::StoreOffsets)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn meta(headers: Vec<(&str, &str)>) -> RecordMeta {
        RecordMeta {
            topic: Arc::from("pingan.enriched.v1.dlq"),
            partition: 0,
            offset: 7,
            key: Some(b"310112102".to_vec()),
            timestamp_ms: Some(1_765_000_000_123),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn a_dead_letter_keeps_its_origin_reason_and_bytes() {
        let m = meta(vec![
            ("x-pingan-stage", "aggregator"),
            ("x-pingan-reason", "unknown_subtype"),
            ("x-pingan-error", "subtype \"X\" is not in the taxonomy"),
            ("x-pingan-origin-topic", "pingan.enriched.v1"),
            ("x-pingan-origin-partition", "3"),
            ("x-pingan-origin-offset", "12345"),
        ]);
        let payload = vec![0xff, b'{', 0x00];
        let row = to_row(&m, payload.clone());
        assert_eq!(row.stored_at, 1_765_000_000);
        assert_eq!(row.stage, "aggregator");
        assert_eq!(row.reason, "unknown_subtype");
        assert_eq!(
            (row.topic.as_str(), row.partition, row.offset),
            ("pingan.enriched.v1", 3, 12345)
        );
        assert_eq!(row.payload, payload, "bytes untouched, even when not UTF-8");
        assert_eq!(row.key, b"310112102");
        // Pure: the same record gives the same row (a redelivery folds into it).
        assert_eq!(to_row(&m, payload), row);
    }

    #[test]
    fn a_record_put_on_the_topic_by_hand_is_stored_at_its_own_position() {
        let row = to_row(&meta(vec![]), b"x".to_vec());
        assert_eq!(
            (row.topic.as_str(), row.partition, row.offset),
            ("pingan.enriched.v1", 0, 7)
        );
        assert_eq!(row.reason, "unknown");
    }

    #[test]
    fn undecodable_bytes_are_kept() {
        assert_eq!(
            ToDeadLetterRow::decode(b"{not json").unwrap(),
            b"{not json".to_vec()
        );
    }
}
