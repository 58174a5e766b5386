//! Where accepted records go: the [`EventPublisher`] seam between the HTTP handlers and Kafka.
//!
//! Production uses [`KafkaPublisher`] (the pipeline's idempotent [`Publisher`]); component tests
//! plug in an in-memory fake, so every HTTP status can be tested without a broker.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use pingan_pipeline::client::KafkaConfig;
use pingan_pipeline::producer::{OutRecord, PublishError, Publisher};

/// A boxed future, for the object-safe publisher trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One record to publish, owning its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Topic.
    pub topic: &'static str,
    /// Key: the event id's bytes.
    pub key: Vec<u8>,
    /// JSON payload.
    pub payload: Vec<u8>,
    /// Headers (`x-request-id`, `traceparent`).
    pub headers: Vec<(&'static str, Vec<u8>)>,
}

/// Publishes records durably.
pub trait EventPublisher: Send + Sync + 'static {
    /// Publishes `records`; `Ok` only when every record was acknowledged. Any error means the
    /// client must retry with the same event ids.
    fn publish(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), PublishError>>;

    /// Readiness: `Ok` when the broker answers a metadata request within `timeout`.
    fn probe(&self, timeout: Duration) -> BoxFuture<'_, Result<(), String>>;

    /// Records queued or in flight.
    fn queue_depth(&self) -> i64;

    /// Waits up to `timeout` for queued records to be delivered (called on shutdown).
    fn flush(&self, timeout: Duration) -> BoxFuture<'_, Result<(), String>>;
}

/// The Kafka publisher: an idempotent producer (acks=all).
#[derive(Debug, Clone)]
pub struct KafkaPublisher {
    inner: Publisher,
}

impl KafkaPublisher {
    /// Creates the producer; `deadline` bounds one publish call.
    pub fn new(kafka: &KafkaConfig, deadline: Duration) -> Result<KafkaPublisher, PublishError> {
        Ok(KafkaPublisher {
            inner: Publisher::new(kafka, "ingest", deadline)?,
        })
    }
}

impl EventPublisher for KafkaPublisher {
    fn publish(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), PublishError>> {
        Box::pin(async move {
            let headers: Vec<Vec<(&str, &[u8])>> = records
                .iter()
                .map(|r| r.headers.iter().map(|(k, v)| (*k, v.as_slice())).collect())
                .collect();
            let out = records.iter().zip(&headers).map(|(r, h)| OutRecord {
                topic: r.topic,
                key: Some(r.key.as_slice()),
                payload: r.payload.as_slice(),
                headers: h.as_slice(),
            });
            self.inner.publish(out).await
        })
    }

    fn probe(&self, timeout: Duration) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.inner.probe(timeout))
    }

    fn queue_depth(&self) -> i64 {
        i64::from(self.inner.in_flight())
    }

    fn flush(&self, timeout: Duration) -> BoxFuture<'_, Result<(), String>> {
        let p = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || p.flush(timeout).map_err(|e| e.to_string()))
                .await
                .map_err(|e| e.to_string())?
        })
    }
}
