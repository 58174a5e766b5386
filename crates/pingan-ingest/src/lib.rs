//! pingan-ingest: the HTTP front door of the pipeline. 110 call records from the CAD
//! (`POST /v1/calls`) and citizens' QR doorplate reports (`POST /v1/qr-scans`, form at
//! `GET /qr/{plate_id}`) are validated strictly, pseudonymised and produced to Kafka.
//!
//! # Delivery
//! A `202` is sent only after Kafka acknowledged every record of the request (idempotent
//! producer, acks=all). Anything else (queue full, delivery timeout, broker away) is a `503`
//! with `Retry-After`, and the caller resends with the same `event_id`s: a record that timed out
//! in flight may still have been written, so downstream stages dedup by `event_id`. Records
//! are keyed by the event id (its hyphenated text), which spreads load over partitions.
//!
//! # Personal data
//! Phone numbers are normalised and replaced by a keyed HMAC plus a mask before a record is
//! built; the clear number never reaches Kafka, logs or metrics. Free text is kept (it is the
//! evidence) and never logged.
//!
//! # Layout
//! - [`config`]: `[ingest]`, `[qr]`, `[pii]` sections and the validated [`IngestSettings`].
//! - [`api`]: [`AppState`], [`router`], handlers (`api/calls.rs`, `api/qr.rs`), body reading
//!   (`api/body.rs`), errors ([`api::error::ApiError`]).
//! - [`publish`]: the [`publish::EventPublisher`] seam and its Kafka implementation.
//! - [`qr_form`]: the citizen's HTML form and error pages.
//! - [`ratelimit`]: keyed GCRA limiter.
//! - [`metrics`]: every `pingan_ingest_*` metric.
//! - `server.rs`: accept loop with header timeout, connection limit and graceful drain.

pub mod api;
pub mod config;
pub mod metrics;
pub mod publish;
pub mod qr_form;
pub mod ratelimit;
mod server;

use std::sync::Arc;
use std::time::Duration;

use pingan_pipeline::producer::PublishError;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::api::{AppState, router};
pub use crate::config::{IngestConfig, IngestSettings, PiiConfig, QrConfig};
use crate::metrics::MetricsError;
use crate::publish::KafkaPublisher;

/// Why the ingest service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The Kafka producer could not be created.
    #[error("cannot create the kafka producer")]
    Producer(#[source] PublishError),
    /// The metrics could not be registered.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// Records were still queued when the flush deadline passed on shutdown.
    #[error("producer flush did not finish on shutdown: {0}")]
    Flush(String),
}

/// Runs the ingest service on `settings.listen` until `shutdown` is cancelled, then drains
/// in-flight requests and flushes the producer.
pub async fn run(settings: IngestSettings, shutdown: CancellationToken) -> Result<(), IngestError> {
    let addr = settings.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| IngestError::Bind { addr, source })?;
    let publisher = KafkaPublisher::new(&settings.kafka, settings.publish_deadline)
        .map_err(IngestError::Producer)?;
    let registry = settings.registry.clone();
    let state = AppState::new(settings, Arc::new(publisher), &registry)?;
    serve(listener, state, shutdown).await
}

/// Serves `state` on an already bound `listener` (tests bind `127.0.0.1:0`) until `shutdown`
/// is cancelled; then stops accepting, drains in-flight requests within
/// `ingest.drain_timeout`, and flushes the publisher within the same deadline.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    let settings = state.settings().clone();
    warn_about_dev_settings(&settings);
    let local = listener.local_addr().ok();
    tracing::info!(
        listen = ?local,
        api_auth = !settings.api_tokens.is_empty(),
        qr_key_version = settings.signer.sign("").and_then(|s| s.split_once('.').map(|(v, _)| v.to_owned())).unwrap_or_default(),
        "ingest service started"
    );
    let gauge = tokio::spawn(queue_depth_loop(state.clone(), shutdown.clone()));
    let limits = server::ServeLimits {
        header_timeout: settings.header_timeout,
        max_connections: settings.max_connections,
        drain_timeout: settings.drain_timeout,
    };
    let drained = server::serve(listener, router(state.clone()), limits, shutdown).await;
    if !drained {
        tracing::warn!(
            timeout_ms = settings.drain_timeout.as_millis() as u64,
            "drain deadline passed with requests in progress"
        );
    }
    let _ = gauge.await;
    let queued = state.publisher().queue_depth();
    tracing::info!(queued, "flushing producer");
    let flushed = state.publisher().flush(settings.drain_timeout).await;
    state
        .metrics()
        .set_queue_depth(state.publisher().queue_depth());
    match flushed {
        Ok(()) => {
            tracing::info!("ingest service stopped");
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, remaining = state.publisher().queue_depth(), "producer flush failed on shutdown");
            Err(IngestError::Flush(e))
        }
    }
}

/// Only reachable in development mode: outside it, unset secrets are configuration errors.
fn warn_about_dev_settings(s: &IngestSettings) {
    if s.dev_pii_key {
        tracing::warn!(
            "pii.key is not set: phone numbers are hashed with the public development key; set PINGAN__PII__KEY in any real deployment"
        );
    }
    if s.dev_qr_key {
        tracing::warn!(
            "qr.keys is not set: doorplates are verified with the public development key; set PINGAN__QR__KEYS in any real deployment"
        );
    }
    if s.api_tokens.is_empty() {
        tracing::warn!(
            "ingest.api_tokens is empty: POST /v1/calls accepts requests without a token"
        );
    }
}

/// Samples the producer queue depth once a second for the gauge.
async fn queue_depth_loop(state: AppState, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => state.metrics().set_queue_depth(state.publisher().queue_depth()),
        }
    }
}
