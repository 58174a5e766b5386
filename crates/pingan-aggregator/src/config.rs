//! `[aggregator]` configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Aggregator settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregatorConfig {
    /// Topic of enriched events.
    pub topic: String,
    /// Consumer group.
    pub group_id: String,
    /// Cut a batch at this many events (per Kafka partition).
    pub batch_max_events: usize,
    /// … or this many payload bytes.
    pub batch_max_bytes: usize,
    /// … or when its oldest event is this old (ms). Low load: events are queryable within about
    /// this long. The age grows when many partitions are busy (see `max_inserts_per_s`).
    pub batch_max_age_ms: u64,
    /// Under load, age-triggered INSERTs per second this instance aims to stay under, near
    /// ClickHouse's one-insert-per-second-per-table guidance: with `n` busy partitions each waits
    /// `n / max_inserts_per_s` seconds (at least `batch_max_age_ms`, at most
    /// `batch_age_ceiling_ms`). 0 disables the adaptation.
    pub max_inserts_per_s: f64,
    /// The longest a batch may wait for more events when the age adapts (ms).
    pub batch_age_ceiling_ms: u64,
    /// The age adapts only while more events than this arrive per second; below it,
    /// `batch_max_age_ms` holds and events stay fresh.
    pub pace_above_events_per_s: f64,
    /// Give up (exit 1) after retrying one batch for this long (s).
    pub retry_max_elapsed_s: u64,
    /// Timeout of one INSERT (ms); an expired insert is resolved by checking ClickHouse.
    pub insert_timeout_ms: u64,
    /// `host:port` for /healthz, /readyz and /metrics; empty disables (e.g. inside `pingan demo`).
    pub admin_listen: Option<String>,
    /// Spike alerting.
    pub alerts: crate::alerting::AlertingConfig,
    /// Sealing closed days and retention.
    pub maintenance: crate::maintenance::MaintenanceConfig,
    /// Storing every stage's dead letters in ClickHouse.
    pub dead_letters: crate::dead_letters::DeadLetterStoreConfig,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            topic: "pingan.enriched.v1".into(),
            group_id: "pingan-aggregator".into(),
            batch_max_events: 50_000,
            batch_max_bytes: 16 << 20,
            batch_max_age_ms: 500,
            max_inserts_per_s: 2.0,
            batch_age_ceiling_ms: 5_000,
            pace_above_events_per_s: 1_000.0,
            retry_max_elapsed_s: 600,
            insert_timeout_ms: 30_000,
            admin_listen: Some("127.0.0.1:8082".into()),
            alerts: crate::alerting::AlertingConfig::default(),
            maintenance: crate::maintenance::MaintenanceConfig::default(),
            dead_letters: crate::dead_letters::DeadLetterStoreConfig::default(),
        }
    }
}

impl AggregatorConfig {
    /// Age limit of a batch.
    pub fn batch_max_age(&self) -> Duration {
        Duration::from_millis(self.batch_max_age_ms)
    }
    /// The adaptive-age policy, if enabled.
    pub fn pace(&self) -> Option<pingan_pipeline::pace::Pace> {
        (self.max_inserts_per_s > 0.0).then(|| pingan_pipeline::pace::Pace {
            max_cuts_per_s: self.max_inserts_per_s,
            ceiling: Duration::from_millis(self.batch_age_ceiling_ms),
            above_per_s: self.pace_above_events_per_s,
        })
    }
    /// Retry budget of one batch.
    pub fn retry_max_elapsed(&self) -> Duration {
        Duration::from_secs(self.retry_max_elapsed_s)
    }
    /// Every problem with these settings.
    pub fn validate(&self, errors: &mut Vec<String>) {
        if self.topic.is_empty() {
            errors.push("aggregator.topic is empty".into());
        }
        if self.batch_max_events == 0 || self.batch_max_bytes == 0 || self.batch_max_age_ms == 0 {
            errors.push(
                "aggregator.batch_max_events, batch_max_bytes and batch_max_age_ms must be > 0"
                    .into(),
            );
        }
        if !self.max_inserts_per_s.is_finite() || self.max_inserts_per_s < 0.0 {
            errors.push(format!(
                "aggregator.max_inserts_per_s must be a number >= 0, got {}",
                self.max_inserts_per_s
            ));
        }
        self.maintenance.validate(self.insert_timeout_ms, errors);
        self.dead_letters.validate(errors);
        match self.alerts.detect.validate() {
            Ok(()) => {}
            Err(pingan_detect::DetectError::Config(problems)) => errors.extend(
                problems
                    .into_iter()
                    .map(|p| format!("aggregator.alerts.detect.{p}")),
            ),
            Err(e) => errors.push(format!("aggregator.alerts.detect: {e}")),
        }
        if let Some(a) = &self.admin_listen
            && !a.is_empty()
            && a.parse::<std::net::SocketAddr>().is_err()
        {
            errors.push(format!(
                "aggregator.admin_listen {a:?} is not a host:port address"
            ));
        }
    }
}
