//! The idempotent producer: a write succeeds only when every delivery report succeeded.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::join_all;
use rdkafka::ClientConfig;
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
    /// The idempotent producer hit a fatal error (e.g. its sequence numbers can no longer be
    /// guaranteed): it has been replaced by a new producer, and this call must be retried.
    #[error("producer fatal error ({0}); a new producer replaced it, retry")]
    Fatal(String),
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
            PublishError::Fatal(_) => "kafka_producer_fatal",
        }
    }
}

/// An idempotent Kafka producer (acks=all) that reports success only after every record of a
/// call was acknowledged.
///
/// librdkafka stops an idempotent producer for good on a fatal error (its sequence numbers can no
/// longer be guaranteed): every later send fails, although the broker is fine. A service that
/// kept it would answer 503 forever while `/readyz` says ready, so a call that finds the producer
/// fatal replaces it with a new one (a new producer id) and fails with [`PublishError::Fatal`]:
/// the caller retries with the same event ids, and downstream dedup absorbs what the old producer
/// may have written.
#[derive(Clone)]
pub struct Publisher {
    current: Arc<RwLock<Generation>>,
    config: ClientConfig,
    deadline: Duration,
}

#[derive(Clone)]
struct Generation {
    number: u64,
    producer: FutureProducer,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("deadline", &self.deadline)
            .field("generation", &self.generation())
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
        let config = settings.producer_config(service);
        let producer = config.create().map_err(PublishError::Create)?;
        Ok(Publisher {
            current: Arc::new(RwLock::new(Generation {
                number: 0,
                producer,
            })),
            config,
            deadline,
        })
    }

    fn current(&self) -> Generation {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// How many times a fatal error replaced the producer (0 for the first one).
    pub fn generation(&self) -> u64 {
        self.current().number
    }

    /// The fatal error of the current producer, if it has one and was not replaced yet.
    pub fn fatal_error(&self) -> Option<String> {
        self.current()
            .producer
            .client()
            .fatal_error()
            .map(|(code, reason)| format!("{code}: {reason}"))
    }

    /// After a failed call on `used`: if that producer is fatally broken, replace it (once, even
    /// when many calls fail together) and say so.
    fn replace_if_fatal(&self, used: &Generation) -> Option<PublishError> {
        let (code, reason) = used.producer.client().fatal_error()?;
        let detail = format!("{code}: {reason}");
        let mut current = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if current.number == used.number {
            match self.config.create::<FutureProducer>() {
                Ok(producer) => {
                    tracing::error!(error = %detail, generation = used.number + 1,
                        "idempotent producer hit a fatal error; replaced by a new producer");
                    *current = Generation {
                        number: used.number + 1,
                        producer,
                    };
                }
                Err(e) => {
                    tracing::error!(error = %detail, create_error = %e,
                        "idempotent producer hit a fatal error and cannot be replaced yet");
                }
            }
        }
        Some(PublishError::Fatal(detail))
    }

    /// Produces `records` in order and waits for all delivery reports.
    pub async fn publish<'a>(
        &self,
        records: impl IntoIterator<Item = OutRecord<'a>>,
    ) -> Result<(), PublishError> {
        let used = self.current();
        match self.publish_on(&used.producer, records).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.replace_if_fatal(&used).unwrap_or(e)),
        }
    }

    async fn publish_on<'a>(
        &self,
        producer: &FutureProducer,
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
            match producer.send_result(rec) {
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
        self.current().producer.in_flight_count()
    }

    /// Waits up to `timeout` for queued records to be delivered. Must be called before the last
    /// clone is dropped: dropping a producer purges what is still queued.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.current().producer.flush(Timeout::After(timeout))
    }

    /// Asks the broker for metadata, as a readiness probe. A producer with a fatal error is not
    /// ready whatever the broker says (it is replaced on the next publish).
    pub async fn probe(&self, timeout: Duration) -> Result<(), String> {
        if let Some(fatal) = self.fatal_error() {
            return Err(format!("producer fatal error: {fatal}"));
        }
        let p = self.current().producer;
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

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::mocking::MockCluster;
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

    /// librdkafka's in-process mock cluster refuses the producer id with an authorization error,
    /// which librdkafka treats as fatal for an idempotent producer: the publisher must not keep
    /// the dead producer (ingest would answer 503 forever while `/readyz` said ready).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fatal_producer_is_reported_not_ready_and_replaced() {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("t", 1, 1).unwrap();
        cluster.request_errors(
            RDKafkaApiKey::InitProducerId,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED],
        );
        let kafka = KafkaConfig {
            bootstrap_servers: cluster.bootstrap_servers(),
            message_timeout: "3s".into(),
            ..KafkaConfig::default()
        };
        let publisher = Publisher::new(&kafka, "test", Duration::from_secs(5)).unwrap();
        let record = OutRecord {
            topic: "t",
            key: Some(b"k"),
            payload: b"{}",
            headers: &[],
        };
        // The producer asks for its id as soon as it exists; wait for the refusal.
        for _ in 0..100 {
            if publisher.fatal_error().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let probe = publisher.probe(Duration::from_secs(5)).await;
        assert!(
            probe.as_ref().is_err_and(|e| e.contains("fatal")),
            "{probe:?}"
        );
        let first = publisher.publish([record]).await;
        let Err(PublishError::Fatal(reason)) = first else {
            panic!("expected a fatal error, got {first:?}");
        };
        assert!(reason.contains("uthoriz"), "{reason}");
        assert_eq!(publisher.generation(), 1, "replaced once");
        // The replacement gets its producer id (the injected error was consumed) and works.
        publisher.publish([record]).await.unwrap();
        assert_eq!(publisher.generation(), 1);
        assert!(publisher.fatal_error().is_none());
        publisher.probe(Duration::from_secs(5)).await.unwrap();
    }
}
