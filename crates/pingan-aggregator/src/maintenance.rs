//! Maintenance of stored data, run beside the sink: sealing closed days into plain daily counts
//! (`counts_day`, `counts_day_hod`) and dropping month partitions older than the retention.
//!
//! Sealing is what keeps year-long `/v1/counts` interactive: a `uniqExact` rollup has to merge
//! one state entry per event, however coarse its key, while a sealed day is a few thousand plain
//! numbers. A day is sealed once it has been quiet for `seal_quiet_s`; the seal records the
//! server time `as_of` before which every write to the day is included, and readers trust a
//! sealed day only while `day_writes` shows no later write (a late event makes the day "dirty"
//! and it is read from `counts_hour` until the next pass re-seals it). Each sealing writes under a
//! new random seal id and readers take only the newest mark's rows, so repeating a pass, crashing
//! half-way or running several aggregator instances at once never double-counts.
//!
//! Retention drops whole month partitions (`ALTER TABLE … DROP PARTITION`), which works the same
//! on ClickHouse 18.16 (no table TTL) and on current servers, and is what a TTL with
//! `ttl_only_drop_parts` would do there, without a per-deployment schema change.
//!
//! The SQL and the decisions (which days, which partitions) are `pingan_warehouse::sealed` and
//! `pingan_warehouse::retention`; this module schedules them, logs and counts.

use std::time::Duration;

use clickhouse::Client;
use pingan_warehouse::{retention, sealed};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use crate::metrics::MaintenanceMetrics;

/// `[aggregator.maintenance]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceConfig {
    /// Run the maintenance passes at all.
    pub enabled: bool,
    /// Seconds between passes.
    pub interval_s: u64,
    /// Seal a closed day once no write has reached it for this many seconds. Must exceed the
    /// longest an INSERT can take from start to commit (see `insert_timeout_ms`).
    pub seal_quiet_s: u64,
    /// Keep this many days of events, rollups, alerts and dead letters; whole months older than
    /// that are dropped. 0 keeps everything.
    pub retention_days: u32,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            enabled: true,
            interval_s: 300,
            seal_quiet_s: 600,
            retention_days: 0,
        }
    }
}

impl MaintenanceConfig {
    /// Every problem with these settings.
    pub fn validate(&self, insert_timeout_ms: u64, errors: &mut Vec<String>) {
        if self.enabled && self.interval_s == 0 {
            errors.push("aggregator.maintenance.interval_s must be > 0".into());
        }
        if self.seal_quiet_s.saturating_mul(1000) <= insert_timeout_ms {
            errors.push(format!(
                "aggregator.maintenance.seal_quiet_s ({} s) must be longer than aggregator.insert_timeout_ms ({insert_timeout_ms} ms): a day must not be sealed while an INSERT into it may still commit",
                self.seal_quiet_s
            ));
        }
    }
}

/// Runs sealing and retention every `interval_s` until `shutdown`. Failures are logged and
/// counted; the next pass retries (nothing here can lose or double-count an event).
pub async fn run(
    config: MaintenanceConfig,
    client: Client,
    metrics: MaintenanceMetrics,
    shutdown: CancellationToken,
) {
    let quiet = Duration::from_secs(config.seal_quiet_s);
    loop {
        // A pass dropped half-way at shutdown is harmless: every step is idempotent and a day
        // counts as sealed only once its mark is written.
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = pass(&config, &client, &metrics, quiet) => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(config.interval_s)) => {}
        }
    }
}

async fn pass(
    config: &MaintenanceConfig,
    client: &Client,
    metrics: &MaintenanceMetrics,
    quiet: Duration,
) {
    let sealing = sealed::seal_pass(client, quiet, |p| {
        metrics.seal_seconds.observe(p.took.as_secs_f64());
        metrics.sealed_days.inc();
        if p.of > 10 && (p.done % 50 == 0 || p.done == p.of) {
            info!(sealed = p.done, of = p.of, day = %p.day, "sealing closed days");
        }
    });
    match sealing.await {
        Ok(r) => {
            metrics
                .unsealed_days
                .set(i64::try_from(r.pending).unwrap_or(i64::MAX));
            if !r.sealed.is_empty() {
                info!(
                    sealed = r.sealed.len(),
                    pending = r.pending,
                    "sealed closed days"
                );
            }
        }
        Err(e) => {
            metrics.errors.inc();
            warn!(error = %e, "sealing pass failed; retrying at the next interval");
        }
    }
    match retention::retention_pass(client, config.retention_days).await {
        Ok(dropped) => {
            for (table, partition) in &dropped {
                info!(%table, %partition, retention_days = config.retention_days, "dropped expired partition");
                metrics.partitions_dropped.inc();
            }
        }
        Err(e) => {
            metrics.errors.inc();
            warn!(error = %e, "retention pass failed; retrying at the next interval");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_must_outlast_an_insert() {
        let mut errors = Vec::new();
        MaintenanceConfig::default().validate(30_000, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        MaintenanceConfig {
            seal_quiet_s: 10,
            ..MaintenanceConfig::default()
        }
        .validate(30_000, &mut errors);
        assert_eq!(errors.len(), 1);
    }
}
