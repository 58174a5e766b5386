//! Where generated events go: the ingest HTTP API (like the CAD and citizens' phones), or
//! straight to the raw Kafka topics as the records ingest would have produced.
//!
//! Both retry with the **same event ids** until acknowledged, so downstream dedup by `event_id`
//! is exercised exactly as with a real client. Every attempt is written to the [`Ledger`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use pingan_domain::events::{
    CallInput, CallRecord, QrScanInput, QrScanRecord, TOPIC_CALLS, TOPIC_QR,
};
use pingan_domain::pii::PhoneHasher;
use pingan_pipeline::backoff::Backoff;
use pingan_pipeline::client::KafkaConfig;
use pingan_pipeline::producer::{OutRecord, PublishError, Publisher};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::generator::{Body, SimEvent};
use crate::ledger::{Delivery, Ledger, LedgerEntry};

/// Largest `POST /v1/calls` batch the simulator sends (the API takes up to 1,000).
pub const HTTP_BATCH: usize = 100;
/// Largest Kafka publish batch.
pub const KAFKA_BATCH: usize = 1_000;

/// Running totals of a simulation, shared by the senders and the progress reporter.
#[derive(Debug, Default)]
pub struct Stats {
    /// Events handed to a sender.
    pub sent: AtomicU64,
    /// Events acknowledged.
    pub acked: AtomicU64,
    /// Events rejected for good (4xx).
    pub rejected: AtomicU64,
    /// Events given up after retries or at shutdown.
    pub gave_up: AtomicU64,
    /// Retried attempts (events × attempts).
    pub retries: AtomicU64,
    /// Requests (or Kafka publishes) made.
    pub requests: AtomicU64,
}

impl Stats {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A consistent-enough copy for printing.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            sent: self.sent.load(Ordering::Relaxed),
            acked: self.acked.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            gave_up: self.gave_up.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }
}

/// A copy of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    /// Events handed to a sender.
    pub sent: u64,
    /// Events acknowledged.
    pub acked: u64,
    /// Events rejected for good.
    pub rejected: u64,
    /// Events given up.
    pub gave_up: u64,
    /// Retried attempts.
    pub retries: u64,
    /// Requests made.
    pub requests: u64,
}

/// Why a target could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The ingest URL is not an `http://host:port` URL.
    #[error("ingest url {0:?} must look like http://127.0.0.1:8080")]
    Url(String),
    /// The Kafka producer could not be created.
    #[error("cannot create the kafka producer")]
    Producer(#[source] PublishError),
}

/// How a sender retries an event the target did not accept.
#[derive(Debug, Clone, Copy)]
pub struct SendRetry {
    /// Attempts per event before giving up.
    pub max_attempts: u32,
    /// Waits between attempts when the server gives no `Retry-After`; the cap holds for
    /// `Retry-After` too (a load test should not idle for minutes).
    pub backoff: Backoff,
}

impl Default for SendRetry {
    fn default() -> Self {
        SendRetry {
            max_attempts: 12,
            backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(5)),
        }
    }
}

/// The ingest HTTP API.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    token: Option<String>,
    timeout: Duration,
    retry: SendRetry,
}

enum Answer {
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: Bytes,
    },
    Failed(String),
}

impl HttpTarget {
    /// A sender to the ingest at `base` (e.g. `http://127.0.0.1:8080`), with an optional bearer
    /// token for `/v1/calls`.
    pub fn new(
        base: &str,
        token: Option<String>,
        retry: SendRetry,
    ) -> Result<HttpTarget, TargetError> {
        let base = base.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") || base.parse::<hyper::Uri>().is_err() {
            return Err(TargetError::Url(base));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(HttpTarget {
            base,
            client,
            token,
            timeout: Duration::from_secs(30),
            retry,
        })
    }

    async fn post(&self, path: &str, body: Vec<u8>, with_token: bool) -> Answer {
        let mut req = hyper::Request::post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, "application/json");
        if with_token && let Some(t) = &self.token {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match req.body(Full::new(Bytes::from(body))) {
            Ok(r) => r,
            Err(e) => return Answer::Failed(format!("request: {e}")),
        };
        let call = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?
                .to_bytes();
            Ok::<_, String>(Answer::Status {
                status,
                retry_after,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => Answer::Failed(e),
            Err(_) => Answer::Failed("timeout".into()),
        }
    }

    /// Sends calls (≤ [`HTTP_BATCH`]) as one `POST /v1/calls`, retrying until every one is
    /// acknowledged or rejected. On a 422 the items named in the answer are dropped as rejected
    /// and the rest are sent again (the API is all-or-nothing per request).
    pub async fn send_calls(
        &self,
        events: Vec<SimEvent>,
        ledger: &Ledger,
        stats: &Stats,
        shutdown: &CancellationToken,
    ) {
        let mut pending = events;
        let mut attempt = 0u32;
        while !pending.is_empty() {
            attempt += 1;
            let inputs: Vec<&CallInput> = pending
                .iter()
                .filter_map(|e| {
                    if let Body::Call(c) = &e.body {
                        Some(c)
                    } else {
                        None
                    }
                })
                .collect();
            let body = serde_json::to_vec(&inputs).unwrap_or_default();
            let t_send = Utc::now();
            Stats::add(&stats.requests, 1);
            let answer = self.post("/v1/calls", body, true).await;
            let n = pending.len();
            let (status, retry_after, error) = match answer {
                Answer::Status { status: 202, .. } => {
                    ledger.record(pending.iter().map(|e| {
                        LedgerEntry::new(e, attempt, Some(202), Delivery::Acked, t_send, None)
                    }));
                    Stats::add(&stats.acked, n);
                    return;
                }
                Answer::Status {
                    status: 422, body, ..
                } => {
                    let bad = rejected_indexes(&body, n);
                    if bad.is_empty() {
                        reject_all(&pending, attempt, 422, t_send, &body, ledger, stats);
                        return;
                    }
                    let mut keep = Vec::with_capacity(n);
                    for (i, e) in pending.into_iter().enumerate() {
                        if bad.contains(&i) {
                            ledger.record([LedgerEntry::new(
                                &e,
                                attempt,
                                Some(422),
                                Delivery::Rejected,
                                t_send,
                                Some(error_code(&body)),
                            )]);
                            Stats::add(&stats.rejected, 1);
                        } else {
                            keep.push(e);
                        }
                    }
                    pending = keep;
                    continue;
                }
                Answer::Status {
                    status,
                    retry_after,
                    body,
                } if retryable(status) => (Some(status), retry_after, error_code(&body)),
                Answer::Status { status, body, .. } => {
                    reject_all(&pending, attempt, status, t_send, &body, ledger, stats);
                    return;
                }
                Answer::Failed(e) => (None, None, e),
            };
            if attempt >= self.retry.max_attempts || shutdown.is_cancelled() {
                ledger.record(pending.iter().map(|e| {
                    LedgerEntry::new(
                        e,
                        attempt,
                        status,
                        Delivery::GaveUp,
                        t_send,
                        Some(error.clone()),
                    )
                }));
                Stats::add(&stats.gave_up, n);
                return;
            }
            ledger.record(pending.iter().map(|e| {
                LedgerEntry::new(
                    e,
                    attempt,
                    status,
                    Delivery::Retry,
                    t_send,
                    Some(error.clone()),
                )
            }));
            Stats::add(&stats.retries, n);
            tokio::time::sleep(self.retry.backoff.delay_or(attempt, retry_after)).await;
        }
    }

    /// Sends one QR report as `POST /v1/qr-scans`, retrying 429/503/timeouts.
    pub async fn send_qr(
        &self,
        ev: SimEvent,
        ledger: &Ledger,
        stats: &Stats,
        shutdown: &CancellationToken,
    ) {
        let Body::Qr(input) = &ev.body else { return };
        let body = serde_json::to_vec::<QrScanInput>(input).unwrap_or_default();
        for attempt in 1..=self.retry.max_attempts {
            let t_send = Utc::now();
            Stats::add(&stats.requests, 1);
            let (status, retry_after, error) =
                match self.post("/v1/qr-scans", body.clone(), false).await {
                    Answer::Status { status: 202, .. } => {
                        ledger.record([LedgerEntry::new(
                            &ev,
                            attempt,
                            Some(202),
                            Delivery::Acked,
                            t_send,
                            None,
                        )]);
                        Stats::add(&stats.acked, 1);
                        return;
                    }
                    Answer::Status {
                        status,
                        retry_after,
                        body,
                    } if retryable(status) => (Some(status), retry_after, error_code(&body)),
                    Answer::Status { status, body, .. } => {
                        reject_all(
                            std::slice::from_ref(&ev),
                            attempt,
                            status,
                            t_send,
                            &body,
                            ledger,
                            stats,
                        );
                        return;
                    }
                    Answer::Failed(e) => (None, None, e),
                };
            if attempt == self.retry.max_attempts || shutdown.is_cancelled() {
                ledger.record([LedgerEntry::new(
                    &ev,
                    attempt,
                    status,
                    Delivery::GaveUp,
                    t_send,
                    Some(error),
                )]);
                Stats::add(&stats.gave_up, 1);
                return;
            }
            ledger.record([LedgerEntry::new(
                &ev,
                attempt,
                status,
                Delivery::Retry,
                t_send,
                Some(error),
            )]);
            Stats::add(&stats.retries, 1);
            tokio::time::sleep(self.retry.backoff.delay_or(attempt, retry_after)).await;
        }
    }
}

fn retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

fn reject_all(
    events: &[SimEvent],
    attempt: u32,
    status: u16,
    t_send: DateTime<Utc>,
    body: &[u8],
    ledger: &Ledger,
    stats: &Stats,
) {
    let code = error_code(body);
    ledger.record(events.iter().map(|e| {
        LedgerEntry::new(
            e,
            attempt,
            Some(status),
            Delivery::Rejected,
            t_send,
            Some(code.clone()),
        )
    }));
    Stats::add(&stats.rejected, events.len());
}

/// The `error.code` of an ingest error body, else a prefix of the body.
fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/code")
                .and_then(|c| c.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned())
}

/// Item indexes named by a 422 answer's `error.details[].index` (only those below `n`).
fn rejected_indexes(body: &[u8], n: usize) -> Vec<usize> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let mut out: Vec<usize> = v
        .pointer("/error/details")
        .and_then(|d| d.as_array())
        .map(|d| {
            d.iter()
                .filter_map(|e| e.get("index")?.as_u64())
                .filter_map(|i| usize::try_from(i).ok())
                .filter(|&i| i < n)
                .collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out.dedup();
    out
}

/// The raw Kafka topics, bypassing ingest (bulk history, raw throughput).
#[derive(Debug, Clone)]
pub struct KafkaTarget {
    publisher: Publisher,
    hasher: PhoneHasher,
    calls_topic: String,
    qr_topic: String,
    retry: SendRetry,
}

impl KafkaTarget {
    /// A producer to the default raw topics; phones are pseudonymised with `hasher`, as ingest
    /// would (use the ingest's `[pii]` key so repeat callers link up).
    pub fn new(
        kafka: &KafkaConfig,
        hasher: PhoneHasher,
        retry: SendRetry,
    ) -> Result<KafkaTarget, TargetError> {
        let publisher = Publisher::new(kafka, "simulator", Duration::from_secs(60))
            .map_err(TargetError::Producer)?;
        Ok(KafkaTarget {
            publisher,
            hasher,
            calls_topic: TOPIC_CALLS.into(),
            qr_topic: TOPIC_QR.into(),
            retry,
        })
    }

    /// Uses other topic names (tests give each run its own).
    pub fn with_topics(mut self, calls: impl Into<String>, qr: impl Into<String>) -> KafkaTarget {
        self.calls_topic = calls.into();
        self.qr_topic = qr.into();
        self
    }

    /// The producer (to flush at the end).
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// Publishes `events` (≤ [`KAFKA_BATCH`]) and waits for every delivery report, retrying the
    /// whole batch on failure (the same event ids: the pipeline dedups).
    pub async fn send(
        &self,
        events: Vec<SimEvent>,
        ledger: &Ledger,
        stats: &Stats,
        shutdown: &CancellationToken,
    ) {
        let now = Utc::now();
        let payloads: Vec<(String, Vec<u8>, &str)> = events
            .iter()
            .map(|e| {
                let (topic, payload) = match &e.body {
                    Body::Call(c) => (
                        self.calls_topic.as_str(),
                        serde_json::to_vec(&call_record(c, e.event_id, now, &self.hasher)),
                    ),
                    Body::Qr(q) => (
                        self.qr_topic.as_str(),
                        serde_json::to_vec(&qr_record(q, e.event_id, e.event_time, &self.hasher)),
                    ),
                };
                (e.event_id.to_string(), payload.unwrap_or_default(), topic)
            })
            .collect();
        let n = events.len();
        for attempt in 1..=self.retry.max_attempts {
            let t_send = Utc::now();
            Stats::add(&stats.requests, 1);
            let records = payloads.iter().map(|(k, v, t)| OutRecord {
                topic: t,
                key: Some(k.as_bytes()),
                payload: v,
                headers: &[],
            });
            match self.publisher.publish(records).await {
                Ok(()) => {
                    ledger.record(events.iter().map(|e| {
                        LedgerEntry::new(e, attempt, None, Delivery::Acked, t_send, None)
                    }));
                    Stats::add(&stats.acked, n);
                    return;
                }
                Err(e) => {
                    let last = attempt == self.retry.max_attempts || shutdown.is_cancelled();
                    let outcome = if last {
                        Delivery::GaveUp
                    } else {
                        Delivery::Retry
                    };
                    ledger.record(events.iter().map(|ev| {
                        LedgerEntry::new(ev, attempt, None, outcome, t_send, Some(e.to_string()))
                    }));
                    if last {
                        Stats::add(&stats.gave_up, n);
                        return;
                    }
                    Stats::add(&stats.retries, n);
                    tokio::time::sleep(self.retry.backoff.delay(attempt)).await;
                }
            }
        }
    }
}

/// The record ingest builds from a call ([`CallInput::into_record`]), for the Kafka target and
/// for checkers that classify the same input offline.
pub fn call_record(
    c: &CallInput,
    event_id: Uuid,
    ingested_at: DateTime<Utc>,
    hasher: &PhoneHasher,
) -> CallRecord {
    let caller = c
        .caller_phone
        .as_deref()
        .and_then(|p| hasher.tokenize(p).ok());
    c.clone().into_record(event_id, ingested_at, caller)
}

/// The record ingest builds from a QR report; `submitted_at` is the receipt time.
pub fn qr_record(
    q: &QrScanInput,
    event_id: Uuid,
    submitted_at: DateTime<FixedOffset>,
    hasher: &PhoneHasher,
) -> QrScanRecord {
    let contact = q
        .contact_phone
        .as_deref()
        .and_then(|p| hasher.tokenize(p).ok());
    q.clone().into_record(event_id, submitted_at, contact)
}

/// Either target.
#[derive(Debug, Clone)]
pub enum Target {
    /// The ingest HTTP API.
    Http(HttpTarget),
    /// The raw Kafka topics.
    Kafka(KafkaTarget),
}

impl Target {
    /// Largest batch this target takes at once.
    pub fn batch_size(&self) -> usize {
        match self {
            Target::Http(_) => HTTP_BATCH,
            Target::Kafka(_) => KAFKA_BATCH,
        }
    }

    /// Delivers a batch: calls as one request, each QR report as its own (HTTP), or everything
    /// as one publish (Kafka).
    pub async fn deliver(
        &self,
        events: Vec<SimEvent>,
        ledger: Ledger,
        stats: Arc<Stats>,
        shutdown: CancellationToken,
    ) {
        match self {
            Target::Kafka(k) => k.send(events, &ledger, &stats, &shutdown).await,
            Target::Http(h) => {
                let (calls, qrs): (Vec<SimEvent>, Vec<SimEvent>) = events
                    .into_iter()
                    .partition(|e| matches!(e.body, Body::Call(_)));
                let qr_sends = futures_join(
                    qrs.into_iter()
                        .map(|q| h.send_qr(q, &ledger, &stats, &shutdown)),
                );
                if calls.is_empty() {
                    qr_sends.await;
                } else {
                    tokio::join!(h.send_calls(calls, &ledger, &stats, &shutdown), qr_sends);
                }
            }
        }
    }
}

/// Runs futures concurrently on the current task (a handful of QR posts per batch).
async fn futures_join<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futs.map(Box::pin).collect();
    std::future::poll_fn(move |cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}
