//! The stage abstraction and its Kafka plumbing, generic over payloads.
//!
//! A **stage** is a Kafka source, a pure [`Transform`](stage::Transform) and an idempotent
//! [`Sink`](stage::Sink), driven by one generic runner. This crate knows no domain types.
//!
//! # Delivery semantics
//! * A batch is one partition's contiguous offset range ([`BatchId`](batch::BatchId)); its identity
//!   is deterministic, so sinks can make writes idempotent per batch.
//! * Offsets are stored (`last + 1`) only after the sink said the batch is durable and the
//!   dead letters of the batch were acknowledged by Kafka; auto-commit then commits stored offsets.
//!   A crash therefore redelivers, never skips: at-least-once into the sink.
//! * A sink that records its own position (offsets in ClickHouse) tells the source where a newly
//!   assigned partition really resumes, and the source skips what the sink already has.
//! * Producers answer only after every delivery report succeeded, and are flushed before drop.
//!
//! # Layout
//! * [`backoff`]: the exponential backoff of every retry loop.
//! * [`client`]: librdkafka configuration assembly; owned keys cannot be overridden.
//! * [`producer`]: [`Publisher`](producer::Publisher), the idempotent producer.
//! * [`batch`]: records, batch identity.
//! * [`stage`]: `Transform`, `Sink`, dispositions.
//! * [`source`]: the consumer task: per-partition batching, backpressure, offset storing.
//! * [`pace`]: the adaptive batch age that keeps inserts near ClickHouse's guidance.
//! * [`builder`]: [`StageBuilder`](builder::StageBuilder), the one wiring of a Kafka stage.
//! * [`runner`]: decode → transform → sink → dead letters → ack.
//! * [`dlq`]: dead-letter envelopes on `<topic>.dlq`.
//! * [`metrics`]: the standard stage metrics.
#![deny(missing_docs)]

pub mod backoff;
pub mod batch;
pub mod builder;
pub mod client;
pub mod dlq;
pub mod metrics;
pub mod pace;
pub mod producer;
pub mod runner;
pub mod source;
pub mod stage;
pub mod topics;
