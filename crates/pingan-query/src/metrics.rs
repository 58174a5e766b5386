//! `pingan_query_*` metrics: the only place in this crate that names or creates a metric.
//!
//! | Metric | Type | Labels |
//! |---|---|---|
//! | `pingan_query_http_request_duration_seconds` | histogram | `route` (matched path), `status_class` |
//! | `pingan_query_store_query_duration_seconds` | histogram | `query`, `outcome` (`ok` \| `error`) |
//! | `pingan_query_live_clients` | gauge | — |
//! | `pingan_query_live_polls_total` | counter | `outcome` (`ok` \| `error`) |
//! | `pingan_query_live_messages_total` | counter | `kind` (`counts` \| `incident` \| `alert`) |

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The query service's metrics (cheap to clone: the collectors are shared).
#[derive(Clone, Debug)]
pub struct QueryMetrics {
    http: HistogramVec,
    store: HistogramVec,
    live_clients: IntGauge,
    live_polls: IntCounterVec,
    live_messages: IntCounterVec,
}

impl QueryMetrics {
    /// Creates the collectors and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<QueryMetrics, prometheus::Error> {
        let m = QueryMetrics::unregistered()?;
        registry.register(Box::new(m.http.clone()))?;
        registry.register(Box::new(m.store.clone()))?;
        registry.register(Box::new(m.live_clients.clone()))?;
        registry.register(Box::new(m.live_polls.clone()))?;
        registry.register(Box::new(m.live_messages.clone()))?;
        Ok(m)
    }

    /// Creates the collectors without registering them (tests, benchmarks).
    pub fn unregistered() -> Result<QueryMetrics, prometheus::Error> {
        Ok(QueryMetrics {
            http: HistogramVec::new(
                HistogramOpts::new(
                    "pingan_query_http_request_duration_seconds",
                    "Query API request latency",
                )
                .buckets(BUCKETS.to_vec()),
                &["route", "status_class"],
            )?,
            store: HistogramVec::new(
                HistogramOpts::new(
                    "pingan_query_store_query_duration_seconds",
                    "Store (ClickHouse) query latency",
                )
                .buckets(BUCKETS.to_vec()),
                &["query", "outcome"],
            )?,
            live_clients: IntGauge::new(
                "pingan_query_live_clients",
                "Connected server-sent-event clients",
            )?,
            live_polls: IntCounterVec::new(
                Opts::new(
                    "pingan_query_live_polls_total",
                    "Live poller ticks by outcome",
                ),
                &["outcome"],
            )?,
            live_messages: IntCounterVec::new(
                Opts::new(
                    "pingan_query_live_messages_total",
                    "Live messages broadcast by kind",
                ),
                &["kind"],
            )?,
        })
    }

    /// Records one HTTP request.
    pub fn observe_http(&self, route: &str, status: u16, seconds: f64) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http
            .with_label_values(&[route, class])
            .observe(seconds);
    }

    /// Records one store query.
    pub fn observe_store(&self, query: &'static str, ok: bool, seconds: f64) {
        self.store
            .with_label_values(&[query, if ok { "ok" } else { "error" }])
            .observe(seconds);
    }

    /// A live client connected (`+1`) or left (`-1`).
    pub fn live_clients_add(&self, delta: i64) {
        self.live_clients.add(delta);
    }

    /// Records one poller tick.
    pub fn live_poll(&self, ok: bool) {
        self.live_polls
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }

    /// Records one broadcast message.
    pub fn live_message(&self, kind: &'static str) {
        self.live_messages.with_label_values(&[kind]).inc();
    }
}
