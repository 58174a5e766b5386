//! The stage traits: a pure [`Transform`] and an idempotent [`Sink`].

use std::future::Future;
use std::pin::Pin;

use serde::de::DeserializeOwned;

use crate::batch::{BatchId, RecordMeta};

/// What the runner does with a failed sink write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Transient: back off and write the same batch again.
    Retry,
    /// The target rejected the data itself: move the batch to the dead-letter topic.
    DeadLetter,
    /// Stop the stage; nothing past the last stored offset was acknowledged, so a restart
    /// redelivers.
    Fatal,
}

/// An error a stage can classify. The default disposition is `Fatal` so a new error type never
/// causes an accidental retry loop.
pub trait StageError: std::error::Error + Send + Sync + 'static {
    /// What the runner should do.
    fn disposition(&self) -> Disposition {
        Disposition::Fatal
    }
    /// Bounded, stable code used as a metric label and in dead letters.
    fn code(&self) -> &'static str;
}

/// A record-level failure: the record goes to the dead-letter topic and the stream continues.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RecordError {
    /// Stable reason code, e.g. `invalid_json`.
    pub code: &'static str,
    /// Human-readable detail.
    pub message: String,
}

/// A decoded input record.
#[derive(Debug, Clone)]
pub struct Inbound<T> {
    /// Where it came from.
    pub meta: RecordMeta,
    /// The decoded payload.
    pub value: T,
}

/// An output record; keeps the source metadata so sinks can store Kafka positions.
#[derive(Debug, Clone)]
pub struct Outbound<T> {
    /// The input record's metadata.
    pub source: RecordMeta,
    /// Output key (for Kafka sinks).
    pub key: Option<Vec<u8>>,
    /// Output value.
    pub value: T,
}

/// The result of transforming one record.
#[derive(Debug, Clone)]
pub enum Outcome<T> {
    /// Pass this on to the sink.
    Emit(Outbound<T>),
    /// Deliberately dropped (counted with the reason).
    Discard {
        /// Bounded reason label.
        reason: &'static str,
    },
}

/// A pure, deterministic per-record function: no I/O, no wall clock. The same input always gives
/// the same output, which is what makes at-least-once delivery safe downstream.
pub trait Transform: Send + 'static {
    /// Input payload type (decoded from JSON).
    type In: DeserializeOwned + Send;
    /// Output type.
    type Out: Send + Sync;
    /// Decodes a record's payload: JSON by default. A stage that keeps payloads as they are
    /// (the dead-letter store, whose records are whatever another stage could not read)
    /// overrides it.
    fn decode(payload: &[u8]) -> Result<Self::In, serde_json::Error> {
        serde_json::from_slice(payload)
    }
    /// Transforms one record.
    fn transform(&mut self, input: Inbound<Self::In>) -> Result<Outcome<Self::Out>, RecordError>;
}

/// What happened to the offsets of a written batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// The batch is durable; the source should store its offsets.
    StoreOffsets,
    /// The sink committed the offsets itself (transactional sinks).
    CommittedBySink,
}

/// A durable, idempotent writer of batches.
pub trait Sink: Send + 'static {
    /// Item type.
    type Item: Send + Sync;
    /// Error type.
    type Error: StageError;
    /// Writes a batch. Durable when `Ok`. Must be idempotent for the same [`BatchId`].
    fn write(
        &mut self,
        id: &BatchId,
        items: &[Outbound<Self::Item>],
    ) -> impl Future<Output = Result<Ack, Self::Error>> + Send;

    /// Items of the last successful [`Sink::write`] the sink deliberately did not store (for
    /// example a record whose id already belongs to another stored record): the runner sends
    /// them to the dead-letter topic and keeps them from the after-durable hook. Taken once.
    fn take_refused(&mut self) -> Vec<Refused> {
        Vec::new()
    }
}

/// An item of a written batch that the sink refused to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Its position in the batch's items.
    pub index: usize,
    /// Stable reason code (the dead letter's reason).
    pub code: &'static str,
    /// Human-readable detail.
    pub message: String,
}

/// A boxed future, for the object-safe [`ResumePosition`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Offsets a sink holds, each with its record's fingerprint (see [`ResumePosition`]).
pub type StoredOffsets = Vec<(i64, Option<u64>)>;

/// What a sink that records its own Kafka positions already holds, so a redelivered record is
/// skipped instead of written twice.
///
/// After a crash between "the sink made the batch durable" and "the offset was committed", Kafka
/// redelivers from the committed offset. The source asks, for the first offset it receives on a
/// newly assigned partition, which offsets at or above it the sink already stored, and skips
/// exactly those. An exact set (rather than "everything below the highest stored offset") stays
/// correct when a batch was written in several inserts and only some of them landed, and when
/// poison records left gaps.
///
/// An offset alone does not name a record for life: a topic deleted and re-created (or a broker
/// that lost its log) starts again at offset 0, and the sink holds the old incarnation's records
/// at the same offsets. So each stored offset comes with the sink's fingerprint of the record
/// stored there, and the source skips a redelivered record only when its fingerprint matches;
/// a mismatch is counted (`pingan_stage_position_mismatches_total`) and the record is written.
pub trait ResumePosition: Send + Sync + 'static {
    /// Offsets `>= from` of `topic`/`partition` that the sink already holds, each with the
    /// fingerprint of the record stored there (`None`: the sink cannot tell; trust the offset).
    fn stored_from<'a>(
        &'a self,
        topic: &'a str,
        partition: i32,
        from: i64,
    ) -> BoxFuture<'a, Result<StoredOffsets, String>>;

    /// The fingerprint of a record as [`Self::stored_from`] reports it; `None` when the sink
    /// cannot tell (the offset is then trusted).
    fn fingerprint(&self, _payload: &[u8]) -> Option<u64> {
        None
    }
}

/// The default: trust Kafka's committed offsets (the sink keeps no positions).
#[derive(Debug, Clone, Copy, Default)]
pub struct CommittedOffsets;

impl ResumePosition for CommittedOffsets {
    fn stored_from<'a>(
        &'a self,
        _topic: &'a str,
        _partition: i32,
        _from: i64,
    ) -> BoxFuture<'a, Result<StoredOffsets, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Told about every batch the sink made durable, right after the sink acknowledged it and
/// before its offsets are stored; never about a batch that was dead-lettered or not written.
/// It runs on the stage's task, so it must not block (the aggregator hands the rows to spike
/// detection through a bounded queue it never waits on).
pub trait AfterDurable<T>: Send + 'static {
    /// `items` are the batch's records as the sink stored them.
    fn stored(&mut self, id: &crate::batch::BatchId, items: &[Outbound<T>]);
}
