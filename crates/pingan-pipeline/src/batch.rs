//! Records and batches. A batch is one partition's contiguous offset range.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    /// Source topic.
    pub topic: Arc<str>,
    /// Source partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record timestamp in milliseconds since the epoch, when the broker gave one.
    pub timestamp_ms: Option<i64>,
    /// Record headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// A record as consumed: metadata plus the undecoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Metadata.
    pub meta: RecordMeta,
    /// Payload bytes; `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
}

/// The deterministic identity of a batch: `topic-partition-first-last`.
///
/// Sinks use it as an idempotency key (ClickHouse `query_id` / insert dedup token) because a
/// replayed batch after a crash has the same identity as the original.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchId {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// First offset in the batch.
    pub first: i64,
    /// Last offset in the batch (inclusive).
    pub last: i64,
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}-{}",
            self.topic, self.partition, self.first, self.last
        )
    }
}

/// A batch of records of one partition, in offset order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Identity.
    pub id: BatchId,
    /// Records, `first..=last` in order (offsets may have gaps where Kafka has control records).
    pub records: Vec<RawRecord>,
    /// This consumer's claim on the partition when the batch was cut.
    pub lease: Lease,
}

/// A consumer's claim on one partition, from its assignment until its revocation.
///
/// Batches already handed to the runner outlive a rebalance. Without a check, a batch of a
/// partition this instance no longer owns would still be written (and retried for minutes while
/// the sink is down) although the new owner redelivers it: wasted work, and two instances
/// writing the same records. The source ends the lease inside the revoke callback, before the
/// new owner can start; the runner drops a batch whose lease ended instead of writing it, and
/// stops retrying one whose lease ends meanwhile (`pingan_stage_fenced_batches_total`).
#[derive(Debug, Clone)]
pub struct Lease(Arc<AtomicBool>);

impl Lease {
    /// A lease that is held.
    pub fn new() -> Lease {
        Lease(Arc::new(AtomicBool::new(true)))
    }

    /// Whether the partition is still owned.
    pub fn held(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Ends the lease (the partition was revoked); every batch that carries it sees it.
    pub fn end(&self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Default for Lease {
    fn default() -> Self {
        Lease::new()
    }
}

/// Two leases are equal when they are the same claim.
impl PartialEq for Lease {
    fn eq(&self, other: &Lease) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Lease {}

/// "Everything up to and including `last` of this partition is durable."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetMark {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Last durable offset.
    pub last: i64,
}

impl OffsetMark {
    /// The offset to store in Kafka: librdkafka's stored offset is the **next** offset to read.
    pub fn next_offset(&self) -> i64 {
        self.last + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_offset_is_last_plus_one() {
        let m = OffsetMark {
            topic: "t".into(),
            partition: 0,
            last: 41,
        };
        assert_eq!(m.next_offset(), 42);
    }

    #[test]
    fn batch_id_is_stable_text() {
        let id = BatchId {
            topic: "pingan.enriched.v1".into(),
            partition: 3,
            first: 10,
            last: 19,
        };
        assert_eq!(id.to_string(), "pingan.enriched.v1-3-10-19");
    }
}
