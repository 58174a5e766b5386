//! Settings of `pingan serve`.

use std::net::SocketAddr;
use std::time::Duration;

use pingan_runtime::config::ClickHouseSettings;

/// Validated settings of the query service (the binary builds them from its `[serve]` and
/// `[clickhouse]` sections).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryConfig {
    /// Address of the API and dashboard (also serves `/healthz`, `/readyz`, `/metrics`).
    pub listen: SocketAddr,
    /// Where the incidents and rollups are.
    pub clickhouse: ClickHouseSettings,
    /// How often the single live poller asks ClickHouse for changes.
    pub live_interval: Duration,
}

/// Default live poll interval: one second, so a wall screen updates within about two seconds.
pub fn default_live_interval() -> Duration {
    Duration::from_secs(1)
}

impl QueryConfig {
    /// Settings with the default live interval.
    pub fn new(listen: SocketAddr, clickhouse: ClickHouseSettings) -> QueryConfig {
        QueryConfig {
            listen,
            clickhouse,
            live_interval: default_live_interval(),
        }
    }
}
