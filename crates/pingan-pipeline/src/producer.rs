//! The idempotent producer: a write succeeds only when every delivery report succeeded.

use std::time::Duration;

use futures::future::join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::client::KafkaConfig;
use crate::stage::{Disposition, StageError};

/// One record to produce.
#[derive(Debug, Clone, Copy)]
pub struct OutRecord<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Key (drives the partition).
    pub key: Option<&'a [u8]>,
    /// Payload.
    pub payload: &'a [u8],
    /// Headers.
    pub headers: &'a [(&'a str, &'a [u8])],
}

/// Why a publish failed. Any failure means "not acknowledged": the caller must retry with the
/// same event ids (a timed-out record may still have been written; downstream dedup absorbs it).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The local queue is full: Kafka is slow or away.
    #[error("producer queue is full")]
    QueueFull,
    /// A delivery report failed or did not arrive in time.
    #[error("delivery failed: {0}")]
    Delivery(KafkaError),
    /// The producer could not be created.
    #[error("cannot create producer: {0}")]
    Create(KafkaError),
    /// The producer was dropped before reporting.
    #[error("producer closed before the delivery report")]
    Closed,
    /// The overall deadline passed before every report arrived.
    #[error("delivery not confirmed within {0:?}")]
    Deadline(Duration),
    /// An item could not be serialised.
    #[error("cannot encode record: {0}")]
    Encode(String),
}

impl StageError for PublishError {
    fn disposition(&self) -> Disposition {
        match self {
            PublishError::Create(_) => Disposition::Fatal,
            PublishError::Encode(_) => Disposition::DeadLetter,
            PublishError::Delivery(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageSizeTooLarge,
            )) => Disposition::DeadLetter,
            _ => Disposition::Retry,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            PublishError::QueueFull => "kafka_queue_full",
            PublishError::Delivery(_) => "kafka_delivery_failed",
            PublishError::Create(_) => "kafka_client",
            PublishError::Closed => "kafka_closed",
            PublishError::Deadline(_) => "kafka_timeout",
            PublishError::Encode(_) => "encode_failed",
        }
    }
}

/// An idempotent Kafka producer (acks=all) that reports success only after every record of a
/// call was acknowledged.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    deadline: Duration,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl Publisher {
    /// Creates the producer. `deadline` bounds a whole [`Publisher::publish`] call.
    pub fn new(
        settings: &KafkaConfig,
        service: &str,
        deadline: Duration,
    ) -> Result<Publisher, PublishError> {
        let producer = settings
            .producer_config(service)
            .create()
            .map_err(PublishError::Create)?;
        Ok(Publisher { producer, deadline })
    }

    /// Produces `records` in order and waits for all delivery reports.
    pub async fn publish<'a>(
        &self,
        records: impl IntoIterator<Item = OutRecord<'a>>,
    ) -> Result<(), PublishError> {
        let mut pending = Vec::new();
        for r in records {
            let mut headers = OwnedHeaders::new();
            for (k, v) in r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(*v),
                });
            }
            let mut rec = FutureRecord::<[u8], [u8]>::to(r.topic)
                .payload(r.payload)
                .headers(headers);
            if let Some(k) = r.key {
                rec = rec.key(k);
            }
            // send_result enqueues synchronously and in order; a full queue fails fast instead of
            // re-enqueueing later, which would reorder records (rust-rdkafka #468).
            match self.producer.send_result(rec) {
                Ok(f) => pending.push(f),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    return Err(PublishError::QueueFull);
                }
                Err((e, _)) => return Err(PublishError::Delivery(e)),
            }
        }
        let all = join_all(pending);
        let results = tokio::time::timeout(self.deadline, all)
            .await
            .map_err(|_| PublishError::Deadline(self.deadline))?;
        for r in results {
            match r {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(PublishError::Delivery(e)),
                Err(_) => return Err(PublishError::Closed),
            }
        }
        Ok(())
    }

    /// Number of records queued or in flight.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Waits up to `timeout` for queued records to be delivered. Must be called before the last
    /// clone is dropped: dropping a producer purges what is still queued.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(Timeout::After(timeout))
    }

    /// Asks the broker for metadata, as a readiness probe.
    pub async fn probe(&self, timeout: Duration) -> Result<(), String> {
        let p = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            p.client()
                .fetch_metadata(None, Timeout::After(timeout))
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// A sink that produces each item as JSON to one topic and reports durability only when every
/// delivery report succeeded (at-least-once; keep the transform deterministic so duplicates are
/// identical and downstream dedup by key absorbs them).
#[derive(Debug, Clone)]
pub struct KafkaSink {
    publisher: Publisher,
    topic: String,
}

impl KafkaSink {
    /// Produces to `topic` through `publisher`.
    pub fn new(publisher: Publisher, topic: impl Into<String>) -> KafkaSink {
        KafkaSink {
            publisher,
            topic: topic.into(),
        }
    }
}

impl<T: serde::Serialize + Send + Sync + 'static> crate::stage::Sink for TypedKafkaSink<T> {
    type Item = T;
    type Error = PublishError;

    async fn write(
        &mut self,
        _id: &crate::batch::BatchId,
        items: &[crate::stage::Outbound<T>],
    ) -> Result<crate::stage::Ack, PublishError> {
        let mut payloads = Vec::with_capacity(items.len());
        for o in items {
            payloads.push(
                serde_json::to_vec(&o.value).map_err(|e| PublishError::Encode(e.to_string()))?,
            );
        }
        self.inner
            .publisher
            .publish(items.iter().zip(&payloads).map(|(o, p)| OutRecord {
                topic: &self.inner.topic,
                key: o.key.as_deref(),
                payload: p,
                headers: &[],
            }))
            .await?;
        Ok(crate::stage::Ack::StoreOffsets)
    }
}

/// [`KafkaSink`] for items of type `T`.
#[derive(Debug, Clone)]
pub struct TypedKafkaSink<T> {
    inner: KafkaSink,
    _item: std::marker::PhantomData<fn() -> T>,
}

impl<T> TypedKafkaSink<T> {
    /// Produces `T`s as JSON to `topic`.
    pub fn new(publisher: Publisher, topic: impl Into<String>) -> TypedKafkaSink<T> {
        TypedKafkaSink {
            inner: KafkaSink::new(publisher, topic),
            _item: std::marker::PhantomData,
        }
    }
}
