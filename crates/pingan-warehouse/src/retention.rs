//! Retention: dropping whole month partitions once the whole month is older than the limit
//! (`ALTER TABLE … DROP PARTITION`: the same on 18.16, which has no table TTL, and on current
//! servers, where it is what a TTL with `ttl_only_drop_parts` would do).

use chrono::NaiveDate;
use clickhouse::{Client, Row};
use pingan_domain::time::shanghai_day;
use serde::Deserialize;

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
    "dead_letter_replays",
    "insert_audit",
];

/// Active month partitions of the retained tables in the current database.
pub const PARTITIONS_SQL: &str = "SELECT DISTINCT table, partition FROM system.parts WHERE active AND database = currentDatabase() AND has(?, table)";

/// The statements above with sample parameters.
pub(crate) fn templates() -> Vec<(&'static str, String)> {
    let tables = format!(
        "[{}]",
        RETAINED_TABLES
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(",")
    );
    vec![(
        "maintenance_partitions",
        PARTITIONS_SQL.replacen('?', &tables, 1),
    )]
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

/// One retention pass: drops every expired month partition of [`RETAINED_TABLES`] and returns
/// the `(table, partition)` pairs dropped.
pub async fn retention_pass(
    client: &Client,
    retention_days: u32,
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
    }
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingan_domain::time::shanghai_day_start;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
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
}
