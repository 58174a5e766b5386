//! Settings of `pingan serve`.

use std::net::SocketAddr;
use std::time::Duration;

use pingan_runtime::config::ClickHouseConfig;

use crate::auth::ReadToken;

/// What the query service runs with (the binary builds it from its `[serve]` and
/// `[clickhouse]` sections).
#[derive(Debug, Clone)]
pub struct QuerySettings {
    /// Address of the API and dashboard (also serves `/healthz`, `/readyz`, `/metrics`).
    pub listen: SocketAddr,
    /// Where the incidents and rollups are.
    pub clickhouse: ClickHouseConfig,
    /// How often the single live poller asks ClickHouse for changes.
    pub live_interval: Duration,
    /// Receives the `pingan_query_*` metrics.
    pub registry: prometheus::Registry,
    /// Read tokens (`serve.tokens`).
    pub tokens: Vec<ReadToken>,
    /// Development mode: the DEV marker, and without tokens an open API.
    pub dev: bool,
}

/// Default live poll interval: one second, so a wall screen updates within about two seconds.
pub fn default_live_interval() -> Duration {
    Duration::from_secs(1)
}

impl QuerySettings {
    /// Settings with the default live interval, `tokens` and, with `dev`, development mode.
    pub fn new(
        listen: SocketAddr,
        clickhouse: ClickHouseConfig,
        tokens: Vec<ReadToken>,
        dev: bool,
    ) -> QuerySettings {
        QuerySettings {
            listen,
            clickhouse,
            live_interval: default_live_interval(),
            registry: prometheus::Registry::new(),
            tokens,
            dev,
        }
    }
}
