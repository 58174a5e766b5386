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

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use clickhouse::{Client, Row};
use pingan_domain::time::{shanghai_day, shanghai_day_start};
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

/// Tables partitioned by month whose old partitions retention drops.
pub const RETAINED_TABLES: &[&str] = &[
    "incidents",
    "counts_minute",
    "counts_hour",
    "cells_hour",
    "terms_day",
    "counts_day",
    "counts_day_hod",
    "cells_day",
    "day_writes",
    "day_seals",
    "alerts",
    "dead_letters",
    "insert_audit",
];

/// Server clock and the last write and seal of every day.
pub const DAY_WRITES_SQL: &str =
    "SELECT toString(day) AS d, toUInt32(maxMerge(last_write)) AS t FROM day_writes GROUP BY d";
/// The newest seal of every day.
pub const DAY_SEALS_SQL: &str =
    "SELECT toString(day) AS d, toUInt32(max(sealed_as_of)) AS t FROM day_seals GROUP BY d";
/// One sealed day, all dimensions but the compound.
pub const SEAL_DAY_SQL: &str = "INSERT INTO counts_day (day, seal, district_code, town_code, station_code, category, subtype, source, department, events) \
SELECT toDate(hour) AS d, toUInt64(?) AS s, district_code, town_code, station_code, category, subtype, source, department, uniqExactMerge(events) AS n \
FROM counts_hour WHERE hour >= toDateTime(?) AND hour < toDateTime(?) \
GROUP BY d, district_code, town_code, station_code, category, subtype, source, department";
/// One sealed day per hour of day.
pub const SEAL_HOD_SQL: &str = "INSERT INTO counts_day_hod (day, seal, hod, district_code, town_code, category, subtype, events) \
SELECT toDate(hour) AS d, toUInt64(?) AS s, toUInt8(toHour(hour)) AS h, district_code, town_code, category, subtype, uniqExactMerge(events) AS n \
FROM counts_hour WHERE hour >= toDateTime(?) AND hour < toDateTime(?) \
GROUP BY d, h, district_code, town_code, category, subtype";
/// One sealed day of heat-map cells (resolutions 8 and 7).
pub const SEAL_CELLS_SQL: &str = "INSERT INTO cells_day (day, seal, h3_r8, h3_r7, town_code, category, subtype, events) \
SELECT toDate(hour) AS d, toUInt64(?) AS s, h3_r8, h3_r7, town_code, category, subtype, uniqExactMerge(events) AS n \
FROM cells_hour WHERE hour >= toDateTime(?) AND hour < toDateTime(?) \
GROUP BY d, h3_r8, h3_r7, town_code, category, subtype";
/// Records a seal.
pub const SEAL_MARK_SQL: &str = "INSERT INTO day_seals (day, seal, sealed_as_of, sealed_at) SELECT toDate(?), toUInt64(?), toDateTime(?), now()";
/// Active month partitions of the retained tables in the current database.
pub const PARTITIONS_SQL: &str = "SELECT DISTINCT table, partition FROM system.parts WHERE active AND database = currentDatabase() AND has(?, table)";

/// Every SQL statement maintenance sends, with sample parameters, for the compatibility check
/// against current ClickHouse releases (`tests/chdb`).
pub fn sql_templates() -> Vec<(&'static str, String)> {
    let tables = format!(
        "[{}]",
        RETAINED_TABLES
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(",")
    );
    // Sample parameters: seal id, then the day's [start, end) as Unix times.
    let sealed = |sql: &str| {
        sql.replacen('?', "1234567890123", 1)
            .replacen('?', "1561910400", 1)
            .replacen('?', "1561996800", 1)
    };
    vec![
        ("maintenance_now", "SELECT toUInt32(now())".into()),
        ("maintenance_day_writes", DAY_WRITES_SQL.into()),
        ("maintenance_day_seals", DAY_SEALS_SQL.into()),
        ("maintenance_seal_day", sealed(SEAL_DAY_SQL)),
        ("maintenance_seal_hod", sealed(SEAL_HOD_SQL)),
        ("maintenance_seal_cells", sealed(SEAL_CELLS_SQL)),
        (
            "maintenance_seal_mark",
            SEAL_MARK_SQL
                .replacen('?', "'2019-07-01'", 1)
                .replacen('?', "1234567890123", 1)
                .replacen('?', "1562000000", 1),
        ),
        (
            "maintenance_partitions",
            PARTITIONS_SQL.replacen('?', &tables, 1),
        ),
    ]
}

/// The days a pass should (re)seal: closed (before the server's Shanghai `today`), quiet for
/// `quiet` seconds, and written since their last seal.
pub fn days_to_seal(
    writes: &BTreeMap<NaiveDate, u32>,
    seals: &BTreeMap<NaiveDate, u32>,
    now: u32,
    quiet: u32,
) -> Vec<NaiveDate> {
    stale_days(writes, seals, now)
        .filter(|(_, last)| last.saturating_add(quiet) < now)
        .map(|(day, _)| day)
        .collect()
}

/// Closed days (before the server's Shanghai `today`) written since their last seal, with their
/// last write.
fn stale_days<'a>(
    writes: &'a BTreeMap<NaiveDate, u32>,
    seals: &'a BTreeMap<NaiveDate, u32>,
    now: u32,
) -> impl Iterator<Item = (NaiveDate, u32)> + 'a {
    let today = shanghai_day(i64::from(now));
    writes
        .iter()
        .filter(move |(day, last)| {
            **day < today && seals.get(day).is_none_or(|as_of| as_of <= last)
        })
        .map(|(day, last)| (*day, *last))
}

/// What one sealing pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Days sealed in this pass.
    pub sealed: Vec<NaiveDate>,
    /// Closed, written days still not sealed after the pass (not quiet yet).
    pub pending: usize,
}

#[derive(Debug, Row, Deserialize)]
struct DayTime {
    d: String,
    t: u32,
}

async fn day_times(
    client: &Client,
    sql: &str,
) -> clickhouse::error::Result<BTreeMap<NaiveDate, u32>> {
    let rows = client.query(sql).fetch_all::<DayTime>().await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            NaiveDate::parse_from_str(&r.d, "%Y-%m-%d")
                .ok()
                .map(|d| (d, r.t))
        })
        .collect())
}

/// Seals one day as of `as_of` (server Unix time) under a new seal id: its rows first, the mark
/// last, so a crash in between leaves the day as it was (readers ignore rows without a mark; the
/// next pass seals it again under another id).
pub async fn seal_day(
    client: &Client,
    day: NaiveDate,
    as_of: u32,
) -> clickhouse::error::Result<()> {
    let from = shanghai_day_start(day);
    let to = shanghai_day_start(day.succ_opt().unwrap_or(day));
    // A fresh id per sealing: rows of an attempt that never got its mark, or of an older seal,
    // are simply not the ones readers select.
    let seal = uuid::Uuid::new_v4().as_u64_pair().0;
    for sql in [SEAL_DAY_SQL, SEAL_HOD_SQL, SEAL_CELLS_SQL] {
        client
            .query(sql)
            .bind(seal)
            .bind(from)
            .bind(to)
            .execute()
            .await?;
    }
    client
        .query(SEAL_MARK_SQL)
        .bind(day.to_string())
        .bind(seal)
        .bind(as_of)
        .execute()
        .await
}

/// One sealing pass: seals every day [`days_to_seal`] picks, oldest first, calling `progress`
/// after each (a first pass over years of history takes minutes).
pub async fn seal_pass(
    client: &Client,
    quiet: Duration,
    metrics: Option<&MaintenanceMetrics>,
    mut progress: impl FnMut(usize, usize, NaiveDate),
) -> clickhouse::error::Result<SealReport> {
    let now: u32 = client.query("SELECT toUInt32(now())").fetch_one().await?;
    let quiet = u32::try_from(quiet.as_secs()).unwrap_or(u32::MAX);
    let writes = day_times(client, DAY_WRITES_SQL).await?;
    let seals = day_times(client, DAY_SEALS_SQL).await?;
    let days = days_to_seal(&writes, &seals, now, quiet);
    // Everything written to these days before `as_of` is committed: their last write is older
    // than `quiet`, longer than any INSERT may run.
    let as_of = now.saturating_sub(quiet);
    let mut report = SealReport::default();
    for (i, day) in days.iter().enumerate() {
        let started = Instant::now();
        seal_day(client, *day, as_of).await?;
        if let Some(m) = metrics {
            m.seal_seconds.observe(started.elapsed().as_secs_f64());
            m.sealed_days.inc();
        }
        report.sealed.push(*day);
        progress(i + 1, days.len(), *day);
    }
    // Every day sealed now was stale; the rest are waiting to become quiet.
    report.pending = stale_days(&writes, &seals, now).count() - report.sealed.len();
    if let Some(m) = metrics {
        m.unsealed_days
            .set(i64::try_from(report.pending).unwrap_or(i64::MAX));
    }
    Ok(report)
}

/// The `(table, partition)` pairs to drop: month partitions (`YYYYMM`) that end on or before the
/// Shanghai date `retention_days` before `now`.
pub fn expired_partitions(
    parts: &[(String, String)],
    now: i64,
    retention_days: u32,
) -> Vec<(String, String)> {
    if retention_days == 0 {
        return Vec::new();
    }
    let cutoff = shanghai_day(now) - chrono::Days::new(u64::from(retention_days));
    parts
        .iter()
        .filter(|(_, p)| month_end(p).is_some_and(|end| end <= cutoff))
        .cloned()
        .collect()
}

/// The first day after a `YYYYMM` month partition; `None` for anything else.
fn month_end(partition: &str) -> Option<NaiveDate> {
    if partition.len() != 6 || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ym: i32 = partition.parse().ok()?;
    let (y, m) = (ym / 100, u32::try_from(ym % 100).ok()?);
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    NaiveDate::from_ymd_opt(y, m, 1)
}

#[derive(Debug, Row, Deserialize)]
struct PartRow {
    table: String,
    partition: String,
}

/// One retention pass: drops every expired month partition of [`RETAINED_TABLES`].
pub async fn retention_pass(
    client: &Client,
    retention_days: u32,
    metrics: Option<&MaintenanceMetrics>,
) -> clickhouse::error::Result<Vec<(String, String)>> {
    if retention_days == 0 {
        return Ok(Vec::new());
    }
    let now: u32 = client.query("SELECT toUInt32(now())").fetch_one().await?;
    let tables: Vec<&str> = RETAINED_TABLES.to_vec();
    let parts: Vec<(String, String)> = client
        .query(PARTITIONS_SQL)
        .bind(tables)
        .fetch_all::<PartRow>()
        .await?
        .into_iter()
        .map(|r| (r.table, r.partition))
        .collect();
    let expired = expired_partitions(&parts, i64::from(now), retention_days);
    for (table, partition) in &expired {
        // Both parts come from system.parts of fixed table names and are checked as `YYYYMM`
        // digits above, so splicing them cannot inject anything.
        client
            .query(&format!("ALTER TABLE {table} DROP PARTITION {partition}"))
            .execute()
            .await?;
        info!(%table, %partition, retention_days, "dropped expired partition");
        if let Some(m) = metrics {
            m.partitions_dropped.inc();
        }
    }
    Ok(expired)
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
    match seal_pass(client, quiet, Some(metrics), |i, n, day| {
        if n > 10 && (i % 50 == 0 || i == n) {
            info!(sealed = i, of = n, %day, "sealing closed days");
        }
    })
    .await
    {
        Ok(r) if !r.sealed.is_empty() => {
            info!(
                sealed = r.sealed.len(),
                pending = r.pending,
                "sealed closed days"
            );
        }
        Ok(_) => {}
        Err(e) => {
            metrics.errors.inc();
            warn!(error = %e, "sealing pass failed; retrying at the next interval");
        }
    }
    if let Err(e) = retention_pass(client, config.retention_days, Some(metrics)).await {
        metrics.errors.inc();
        warn!(error = %e, "retention pass failed; retrying at the next interval");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn seals_closed_quiet_days_written_since_their_seal() {
        let now = u32::try_from(shanghai_day_start(d("2019-07-10")) + 3600).unwrap();
        let writes: BTreeMap<_, _> = [
            (d("2019-07-01"), now - 86_400),     // quiet, never sealed → seal
            (d("2019-07-02"), now - 86_400),     // sealed after its last write → skip
            (d("2019-07-03"), now - 86_400),     // late write after its seal → re-seal
            (d("2019-07-09"), now - 60),         // written a minute ago → wait
            (d("2019-07-10"), now - 86_400 / 2), // today → never
        ]
        .into_iter()
        .collect();
        let seals: BTreeMap<_, _> = [
            (d("2019-07-02"), now - 3600),
            (d("2019-07-03"), now - 90_000),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            days_to_seal(&writes, &seals, now, 600),
            vec![d("2019-07-01"), d("2019-07-03")]
        );
        // A seal stamped exactly at the last write is not trusted (same-second write).
        let seals: BTreeMap<_, _> = [(d("2019-07-02"), now - 86_400)].into_iter().collect();
        assert!(days_to_seal(&writes, &seals, now, 600).contains(&d("2019-07-02")));
    }

    #[test]
    fn retention_drops_only_months_wholly_older_than_the_cutoff() {
        let parts: Vec<(String, String)> = ["201811", "201812", "201901", "201902", "tuple()"]
            .iter()
            .map(|p| ("incidents".to_owned(), (*p).to_owned()))
            .collect();
        // Cutoff 2019-01-15: December and November are wholly older; January is not.
        let now = shanghai_day_start(d("2019-01-25"));
        let dropped: Vec<String> = expired_partitions(&parts, now, 10)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        assert_eq!(dropped, vec!["201811", "201812"]);
        // Cutoff exactly 2019-02-01: January ends at the cutoff and goes too.
        let now = shanghai_day_start(d("2019-02-11"));
        let dropped: Vec<String> = expired_partitions(&parts, now, 10)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        assert_eq!(dropped, vec!["201811", "201812", "201901"]);
        assert!(expired_partitions(&parts, now, 0).is_empty());
    }

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
