//! Operations endpoints served by every service: `/healthz` (alive), `/readyz` (dependencies
//! reachable) and `/metrics` (Prometheus text format).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio_util::sync::CancellationToken;

/// A readiness probe: `Ok` when the dependency answers, `Err(reason)` otherwise.
pub type ReadyFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A probe function.
pub type Probe = Arc<dyn Fn() -> ReadyFuture + Send + Sync>;

/// Named readiness probes, all of which must pass.
#[derive(Clone, Default)]
pub struct Readiness {
    probes: Vec<(&'static str, Probe)>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.probes.iter().map(|(n, _)| n))
            .finish()
    }
}

impl Readiness {
    /// Adds a probe.
    pub fn with(
        mut self,
        name: &'static str,
        probe: impl Fn() -> ReadyFuture + Send + Sync + 'static,
    ) -> Readiness {
        self.probes.push((name, Arc::new(probe)));
        self
    }

    /// Runs every probe; the error lists each failing dependency.
    pub async fn check(&self) -> Result<(), String> {
        let mut failures = Vec::new();
        for (name, probe) in &self.probes {
            if let Err(e) = probe().await {
                failures.push(format!("{name}: {e}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}

#[derive(Clone)]
struct AdminState {
    registry: Registry,
    readiness: Readiness,
}

/// Routes `/healthz`, `/readyz` and `/metrics`; merge them into a service's own router.
pub fn router(registry: Registry, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AdminState {
            registry,
            readiness,
        })
}

async fn readyz(State(s): State<AdminState>) -> Response {
    match s.readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response(),
    }
}

async fn metrics(State(s): State<AdminState>) -> Response {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&s.registry.gather(), &mut buf) {
        Ok(()) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], buf).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Serves `router` on `addr` until `shutdown` is cancelled. Returns the bound address through
/// `bound` so callers that asked for port 0 learn the real one.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
    bound: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(%local, "listening");
    if let Some(tx) = bound {
        let _ = tx.send(local);
    }
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}

/// Serves [`router`]`(registry, readiness)` on `listen` in the background until `shutdown`: the
/// admin listener of a service. An absent or empty address serves nothing (services inside
/// `pingan demo` share one process and one listener).
///
/// # Errors
///
/// `listen` is not a `host:port` address.
pub fn spawn_admin(
    listen: Option<&str>,
    registry: Registry,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<std::io::Result<()>>>, std::net::AddrParseError> {
    let Some(addr) = listen.filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let addr: SocketAddr = addr.parse()?;
    Ok(Some(tokio::spawn(serve(
        addr,
        router(registry, readiness),
        shutdown,
        None,
    ))))
}
