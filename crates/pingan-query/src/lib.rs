//! The query API and command-center dashboard (`pingan serve`).
//!
//! # Endpoints
//! * `GET /v1/counts` — distinct events by bucket × dimensions, exactly as CONTRACT §6.
//! * `GET /v1/alerts?since=` — spike alerts, newest first.
//! * `GET /v1/incidents` — newest incidents, cursor-paginated, no personal data.
//! * `GET /v1/rankings` — top-N areas with change vs the previous period and last year.
//! * `GET /v1/heatmap` — H3 cells as GeoJSON (night map: `hours=21-3`).
//! * `GET /v1/terms` — word frequency and unusually frequent terms.
//! * `GET /v1/report` — the Safety Index for any period.
//! * `GET /v1/meta`, `GET /v1/areas.geojson` — labels and town polygons for the dashboard.
//! * `GET /v1/live` — server-sent events from one poller per process.
//! * `GET|POST|DELETE /v1/session` — the dashboard login; `GET /v1/access-log` — who read
//!   incident-level data (admins).
//!
//! Every `/v1/*` request needs a read token (`Authorization: Bearer …`) or a dashboard session,
//! and is answered for the token's role and area scope only ([`auth`]); development mode
//! without tokens is the open API.
//! * `GET /` — the dashboard; `GET /openapi.json` — the OpenAPI 3.1 document.
//!
//! Tabular endpoints answer CSV with `format=csv`. Every code comes with `_zh`/`_en` labels.
//!
//! # Layout
//! * [`config`]: the service settings, [`QuerySettings`].
//! * [`auth`]: read tokens, roles, scopes and dashboard sessions.
//! * [`model`]: validated query specs and results.
//! * [`store`]: [`store::IncidentStore`] with the ClickHouse and in-memory implementations.
//! * [`api`]: routes, parameter parsing, errors, CSV; one module per endpoint family.
//! * [`hub`]: the live hub fanning messages out to `/v1/live` clients ([`api::live`] serves
//!   them and runs the poller that publishes).
//! * [`metrics`]: the `pingan_query_*` metrics.
//! * [`sql_templates`]: every statement it sends, for the compatibility checks.
#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod config;
pub mod hub;
pub mod metrics;
pub mod model;
pub mod store;
mod templates;

use std::sync::Arc;

use chrono::Utc;
use pingan_runtime::admin::{self, Readiness};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error_span};

pub use api::{AppState, router};
pub use config::QuerySettings;
pub use templates::sql_templates;

use crate::hub::LiveHub;
use crate::metrics::QueryMetrics;
use crate::store::IncidentStore;
use crate::store::clickhouse::ClickHouseStore;

/// Why the service stopped.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The listener failed.
    #[error("http server: {0}")]
    Serve(#[from] std::io::Error),
}

/// Runs the query API until `shutdown` is cancelled. `bound` learns the listening address
/// (useful with port 0).
pub async fn run_with(
    config: QuerySettings,
    shutdown: CancellationToken,
    bound: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> Result<(), QueryError> {
    let registry = config.registry.clone();
    let metrics = QueryMetrics::register(&registry)?;
    let store: Arc<dyn IncidentStore> =
        Arc::new(ClickHouseStore::new(&config.clickhouse, metrics.clone()));
    let hub = LiveHub::with_stop(shutdown.clone());
    let state = AppState {
        store: store.clone(),
        metrics: metrics.clone(),
        live: hub.clone(),
        clock: Arc::new(Utc::now),
        access: Arc::new(auth::Access::new(config.tokens.clone(), config.dev)),
    };
    if config.dev {
        tracing::warn!(
            tokens = config.tokens.len(),
            "development mode: the dashboard shows DEV; without serve.tokens the API is open to anyone who can reach it"
        );
    }

    let probe_store = store.clone();
    let readiness = Readiness::default().with("clickhouse", move || {
        let s = probe_store.clone();
        Box::pin(async move { s.ping().await.map_err(|e| e.to_string()) })
    });
    let app = router(state.clone()).merge(admin::router(registry, readiness));

    let poller = tokio::spawn(
        api::live::run_poller(
            store,
            hub,
            metrics,
            state.clock.clone(),
            config.live_interval,
            shutdown.clone(),
        )
        .instrument(error_span!("live_poller")),
    );
    tracing::info!(listen = %config.listen, database = %config.clickhouse.database, "query api starting");
    let served = admin::serve(config.listen, app, shutdown.clone(), bound).await;
    shutdown.cancel();
    let _ = poller.await;
    served.map_err(QueryError::from)
}

/// Runs the query API until `shutdown` is cancelled.
pub async fn run(config: QuerySettings, shutdown: CancellationToken) -> Result<(), QueryError> {
    run_with(config, shutdown, None).await
}
