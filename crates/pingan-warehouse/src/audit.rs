//! The insert audit: one row per inserted Kafka record (`insert_audit`, written by a
//! materialized view inside every INSERT into `incidents`, never folded). The aggregator's sink
//! asks it what a partition already holds and whether a batch whose reply was lost was stored.

/// Offsets of a partition at or above a given one that are already stored (an index range scan
/// of the insert audit).
pub const RESUME_SQL: &str = "SELECT DISTINCT kafka_offset FROM insert_audit WHERE kafka_topic = ? AND kafka_partition = ? AND kafka_offset >= ?";
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
pub const STORED_SQL: &str = "SELECT DISTINCT kafka_offset FROM insert_audit WHERE kafka_topic = ? AND kafka_partition = ? AND kafka_offset >= ? AND kafka_offset <= ?";

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

/// The offsets of `topic`/`partition` within `[first, last]` that are stored.
pub async fn stored_in_range(
    client: &clickhouse::Client,
    topic: &str,
    partition: i32,
    first: u64,
    last: u64,
) -> clickhouse::error::Result<std::collections::HashSet<u64>> {
    let offsets: Vec<u64> = client
        .query(STORED_SQL)
        .bind(topic)
        .bind(partition)
        .bind(first)
        .bind(last)
        .fetch_all()
        .await?;
    Ok(offsets.into_iter().collect())
}
