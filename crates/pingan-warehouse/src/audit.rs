//! The insert audit: one row per inserted Kafka record (`insert_audit`, written by a
//! materialized view inside every INSERT into `incidents`, never folded). The aggregator's sink
//! asks it what a partition already holds and whether a batch whose reply was lost was stored.

/// Offsets of a partition at or above a given one that are already stored, with the event
/// stored there (an index range scan of the insert audit). The event id tells a record of a
/// re-created topic from the old one at the same offset.
pub const RESUME_SQL: &str = "SELECT DISTINCT kafka_offset, event_id FROM insert_audit WHERE kafka_topic = ? AND kafka_partition = ? AND kafka_offset >= ?";
/// Whether any INSERT of a partition is still running (query ids start with
/// `pingan-<topic>-<partition>-`): a killed predecessor's last INSERT may still be finishing on the
/// server, and its rows must be visible before anyone decides what is already stored.
pub const PARTITION_RUNNING_SQL: &str =
    "SELECT count() FROM system.processes WHERE startsWith(query_id, ?)";
/// Whether an INSERT with a given `query_id` is still running on the server.
pub const RUNNING_SQL: &str = "SELECT count() FROM system.processes WHERE query_id = ?";
/// The stored offsets of a partition within `[first, last]`: a batch's span, whatever its size.
/// (A list of the batch's offsets bound into the query text outgrew `max_query_size` for large
/// batches: 60,000 offsets are about 400 KB of SQL.)
pub const STORED_SQL: &str = "SELECT DISTINCT kafka_offset, event_id FROM insert_audit WHERE kafka_topic = ? AND kafka_partition = ? AND kafka_offset >= ? AND kafka_offset <= ?";

/// The statements above with sample parameters.
pub(crate) fn templates() -> Vec<(&'static str, String)> {
    vec![
        (
            "aggregator_resume",
            RESUME_SQL
                .replacen('?', "'pingan.enriched.v1'", 1)
                .replacen('?', "3", 1)
                .replacen('?', "100", 1),
        ),
        (
            "aggregator_running",
            RUNNING_SQL.replacen('?', "'pingan-x-0-1-2-201912'", 1),
        ),
        (
            "aggregator_partition_running",
            PARTITION_RUNNING_SQL.replacen('?', "'pingan-pingan.enriched.v1-3-'", 1),
        ),
        (
            "aggregator_stored",
            STORED_SQL
                .replacen('?', "'pingan.enriched.v1'", 1)
                .replacen('?', "3", 1)
                .replacen('?', "100", 1)
                .replacen('?', "5099", 1),
        ),
    ]
}

/// A stored record's position and event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clickhouse::Row, serde::Deserialize)]
pub struct StoredRecord {
    /// Kafka offset.
    pub kafka_offset: u64,
    /// The event stored from it.
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: uuid::Uuid,
}

/// The records of `topic`/`partition` within offsets `[first, last]` that are stored.
pub async fn stored_in_range(
    client: &clickhouse::Client,
    topic: &str,
    partition: i32,
    first: u64,
    last: u64,
) -> clickhouse::error::Result<std::collections::HashSet<StoredRecord>> {
    let stored: Vec<StoredRecord> = client
        .query(STORED_SQL)
        .bind(topic)
        .bind(partition)
        .bind(first)
        .bind(last)
        .fetch_all()
        .await?;
    Ok(stored.into_iter().collect())
}

/// The records of `topic`/`partition` at offsets `>= from` that are stored.
pub async fn stored_from(
    client: &clickhouse::Client,
    topic: &str,
    partition: i32,
    from: u64,
) -> clickhouse::error::Result<Vec<StoredRecord>> {
    client
        .query(RESUME_SQL)
        .bind(topic)
        .bind(partition)
        .bind(from)
        .fetch_all()
        .await
}
