//! The HTTP API: [`AppState`], [`router`] and the observing middleware.
//!
//! | Route | Handler |
//! |---|---|
//! | `POST /v1/calls` | [`calls`]: CAD feed, bearer token when configured |
//! | `POST /v1/qr-scans` | [`qr`]: citizens' QR reports, public, signature-checked, rate-limited |
//! | `GET /qr/{plate_id}?sig=…` | [`qr`]: the mobile form ([`crate::qr_form`]) |
//! | `GET /healthz`, `/readyz`, `/metrics` | `pingan_runtime::admin` |
//!
//! Every response passes [`observe`]: it assigns the request id, bounds the whole request by
//! `ingest.request_timeout`, and records the request, reject and in-flight metrics.

pub mod error;

mod body;
mod calls;
mod client;
mod qr;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pingan_domain::area::AreaIndex;
use pingan_pipeline::stage::StageError;
use pingan_runtime::admin::{self, Readiness};
use prometheus::Registry;
use uuid::Uuid;

use self::client::ClientKey;
use self::error::{ApiError, Cause, ErrorCode, FieldCodes};
use crate::config::IngestSettings;
use crate::metrics::{IngestMetrics, MetricsError};
use crate::publish::{EventPublisher, Record};
use crate::ratelimit::{DEFAULT_CAPACITY, KeyedLimiter};

/// How long `/readyz` waits for the broker's metadata.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The id of one request: the caller's `x-request-id` when it is sane, else a fresh UUIDv7. It
/// travels to Kafka as a header so a record can be traced back to its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    settings: IngestSettings,
    publisher: Arc<dyn EventPublisher>,
    registry: Registry,
    metrics: IngestMetrics,
    area: &'static AreaIndex,
    client_limiter: KeyedLimiter<ClientKey>,
    plate_limiter: KeyedLimiter<String>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State for `settings`, publishing through `publisher`, with metrics in `registry`.
    pub fn new(
        settings: IngestSettings,
        publisher: Arc<dyn EventPublisher>,
        registry: &Registry,
    ) -> Result<AppState, MetricsError> {
        let metrics = IngestMetrics::register(registry)?;
        let client_limiter = KeyedLimiter::new(settings.qr_client_rate, DEFAULT_CAPACITY);
        let plate_limiter = KeyedLimiter::new(settings.qr_plate_rate, DEFAULT_CAPACITY);
        Ok(AppState {
            inner: Arc::new(Inner {
                settings,
                publisher,
                registry: registry.clone(),
                metrics,
                area: AreaIndex::builtin(),
                client_limiter,
                plate_limiter,
            }),
        })
    }

    /// The validated settings.
    pub fn settings(&self) -> &IngestSettings {
        &self.inner.settings
    }

    /// The publisher.
    pub fn publisher(&self) -> &Arc<dyn EventPublisher> {
        &self.inner.publisher
    }

    /// The metrics.
    pub fn metrics(&self) -> &IngestMetrics {
        &self.inner.metrics
    }

    /// Publishes `records` to `topic`, mapping any failure to a 503 the client retries.
    async fn publish(&self, topic: &'static str, records: Vec<Record>) -> Result<(), ApiError> {
        let n = records.len();
        let started = Instant::now();
        let result = self.inner.publisher.publish(records).await;
        let elapsed = started.elapsed();
        self.inner
            .metrics
            .set_queue_depth(self.inner.publisher.queue_depth());
        match result {
            Ok(()) => {
                self.inner.metrics.produced(topic, n, elapsed);
                Ok(())
            }
            Err(e) => {
                self.inner.metrics.produce_failed(topic, e.code(), elapsed);
                tracing::warn!(topic, records = n, error = %e, elapsed_ms = elapsed.as_millis() as u64, "records not acknowledged, answering 503");
                Err(ApiError::Unavailable {
                    retry_after_secs: self.inner.settings.retry_after_secs,
                    cause: e.code(),
                })
            }
        }
    }
}

/// The whole HTTP surface of the ingest service, including `/healthz`, `/readyz` (Kafka
/// metadata probe) and `/metrics`.
pub fn router(state: AppState) -> Router {
    let probe_state = state.clone();
    let readiness = Readiness::default().with("kafka", move || {
        let p = probe_state.inner.publisher.clone();
        Box::pin(async move { p.probe(READY_PROBE_TIMEOUT).await })
    });
    let ops = admin::router(state.inner.registry.clone(), readiness);
    Router::new()
        .route("/v1/calls", post(calls::post_calls))
        .route("/v1/qr-scans", post(qr::post_qr_scan))
        .route("/qr/{plate_id}", get(qr::get_form))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state.clone())
        .merge(ops)
        .layer(middleware::from_fn_with_state(state, observe))
}

/// Decrements the in-flight gauge however the request ends (a client that disconnects drops
/// the handler future).
struct InFlight<'a>(&'a IngestMetrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| Uuid::now_v7().to_string(), str::to_owned)
}

async fn observe(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| match m.as_str() {
            "/v1/calls" => "/v1/calls",
            "/v1/qr-scans" => "/v1/qr-scans",
            "/qr/{plate_id}" => "/qr/{plate_id}",
            "/healthz" => "/healthz",
            "/readyz" => "/readyz",
            "/metrics" => "/metrics",
            _ => "other",
        });
    let rid = request_id(req.headers());
    req.extensions_mut().insert(RequestId(rid.clone()));
    let metrics = &s.inner.metrics;
    metrics.request_started();
    let guard = InFlight(metrics);
    let timeout = s.inner.settings.request_timeout;
    let mut resp = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::RequestTimeout {
            retry_after_secs: s.inner.settings.retry_after_secs,
        }
        .into_response(),
    };
    drop(guard);
    let status = resp.status();
    metrics.request(route, status.as_u16(), started.elapsed());
    if let Some(ErrorCode(code)) = resp.extensions().get::<ErrorCode>().copied() {
        metrics.reject(route, code);
        if let Some(FieldCodes(codes)) = resp.extensions().get::<FieldCodes>() {
            for c in codes {
                metrics.field_error(c);
            }
        }
        if status.is_server_error() {
            let cause = resp.extensions().get::<Cause>().map_or("", |c| c.0);
            tracing::warn!(route, status = status.as_u16(), code, cause, request_id = %rid, "request failed");
        }
    }
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&rid) {
        h.insert("x-request-id", v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

#[cfg(test)]
mod tests;
