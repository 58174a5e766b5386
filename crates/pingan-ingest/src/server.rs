//! The HTTP/1.1 accept loop: connection limit, header read timeout (slowloris), graceful drain.
//!
//! `axum::serve` sets no header read timeout and no connection limit, so the public endpoint
//! gets its own small loop on hyper: each connection is served with a timer-backed header
//! timeout, holds a permit of a semaphore (excess connections are closed at once), and is
//! watched by a [`GracefulShutdown`] so that on cancel the listener closes, idle keep-alive
//! connections close, and requests in progress finish within the drain deadline.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeLimits {
    pub(crate) header_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) drain_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then drains. Returns `false`
/// when the drain deadline passed with requests still in progress.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
) -> bool {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(
                limit = limits.max_connections,
                "connection limit reached, closing new connection"
            );
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let svc = tower::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let router = router.clone();
            async move {
                Ok::<_, Infallible>(
                    router
                        .oneshot(req.map(Body::new))
                        .await
                        .unwrap_or_else(|e| match e {}),
                )
            }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("stopped accepting, draining in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => true,
        () = tokio::time::sleep(limits.drain_timeout) => false,
    }
}
