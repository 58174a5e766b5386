//! Sealed days: closed, quiet days turned into plain exact counts, and how a reader splits a
//! range into sealed days and the rest.
//!
//! Merging `uniqExact` states costs one hash insert per event however coarse the key, so a
//! year of counts from the rollups is slow. Every few minutes the aggregator turns each closed
//! day that has been quiet for a while into plain numbers (computed from `counts_hour` with
//! `uniqExactMerge`, so duplicates still count once) and records the seal's `as_of` time in
//! `day_seals`. A materialized view keeps `day_writes(day, max(now()))` inside every INSERT
//! into `incidents`. A day is *fresh* when its newest seal is later than its last write; a
//! reader sums fresh whole days from the sealed tables and everything else (the partial days at
//! the ends of the range, today, a day that received a late event) from the rollups. The parts
//! are disjoint in event time, so their sum is still the exact distinct count.
//!
//! Every sealing writes its rows under a new random `seal` id and then its mark; readers select
//! only the rows of the day's newest mark, so a re-seal after late events, a sealer that crashed
//! before writing its mark, or two aggregators sealing at once never add up.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use clickhouse::{Client, Row};
use pingan_domain::time::{shanghai_day, shanghai_day_start};
use serde::Deserialize;

/// The server clock.
pub const NOW_SQL: &str = "SELECT toUInt32(now())";
/// The last write of every day.
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

/// The statements above with sample parameters.
pub(crate) fn templates() -> Vec<(&'static str, String)> {
    // Sample parameters: seal id, then the day's [start, end) as Unix times.
    let sealed = |sql: &str| {
        sql.replacen('?', "1234567890123", 1)
            .replacen('?', "1561910400", 1)
            .replacen('?', "1561996800", 1)
    };
    vec![
        ("maintenance_now", NOW_SQL.into()),
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
    ]
}

// ---------------------------------------------------------------------------------------------
// Writing seals
// ---------------------------------------------------------------------------------------------

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

/// One day sealed by [`seal_pass`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealProgress {
    /// Days sealed so far in this pass.
    pub done: usize,
    /// Days this pass seals.
    pub of: usize,
    /// The day just sealed.
    pub day: NaiveDate,
    /// How long sealing it took.
    pub took: Duration,
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
    mut progress: impl FnMut(SealProgress),
) -> clickhouse::error::Result<SealReport> {
    let now: u32 = client.query(NOW_SQL).fetch_one().await?;
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
        report.sealed.push(*day);
        progress(SealProgress {
            done: i + 1,
            of: days.len(),
            day: *day,
            took: started.elapsed(),
        });
    }
    // Every day sealed now was stale; the rest are waiting to become quiet.
    report.pending = stale_days(&writes, &seals, now).count() - report.sealed.len();
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Reading around seals
// ---------------------------------------------------------------------------------------------

/// The whole Shanghai days inside `[from, to)` (Unix seconds), as `[first, end)`; `None` when
/// there is none.
pub fn whole_days(from: i64, to: i64) -> Option<(NaiveDate, NaiveDate)> {
    let first_day = shanghai_day(from);
    let first = if shanghai_day_start(first_day) == from {
        first_day
    } else {
        first_day.succ_opt()?
    };
    let end = shanghai_day(to);
    (first < end).then_some((first, end))
}

/// The current seal id of every fresh day: of each day's marks `(day, sealed_as_of, seal)` the
/// newest (by `sealed_as_of`, then id, so every reader picks the same one), when it is later than
/// the day's last write.
pub fn fresh_days(
    writes: &BTreeMap<NaiveDate, u32>,
    marks: &[(NaiveDate, u32, u64)],
) -> BTreeMap<NaiveDate, u64> {
    let mut newest: BTreeMap<NaiveDate, (u32, u64)> = BTreeMap::new();
    for &(day, as_of, seal) in marks {
        let e = newest.entry(day).or_insert((as_of, seal));
        if (as_of, seal) > *e {
            *e = (as_of, seal);
        }
    }
    newest
        .into_iter()
        .filter(|(day, (as_of, _))| writes.get(day).is_none_or(|w| w < as_of))
        .map(|(day, (_, seal))| (day, seal))
        .collect()
}

/// A range split into sealed day runs and the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// Runs of fresh sealed days, `[first, end)`.
    pub sealed: Vec<(NaiveDate, NaiveDate)>,
    /// The current seal id of every day in `sealed`.
    pub seals: Vec<u64>,
    /// The rest as Unix-time ranges `[from, to)`.
    pub live: Vec<(i64, i64)>,
}

/// Splits `[from, to)` (Unix seconds) into runs of `fresh` whole days and the time between them.
pub fn split(from: i64, to: i64, fresh: &BTreeMap<NaiveDate, u64>) -> Split {
    let mut out = Split::default();
    let Some((first, end)) = whole_days(from, to) else {
        out.live.push((from, to));
        return out;
    };
    let mut cursor = from;
    let mut run: Option<NaiveDate> = None;
    let mut day = first;
    while day < end {
        let next = day.succ_opt().unwrap_or(end);
        if let Some(seal) = fresh.get(&day) {
            out.seals.push(*seal);
            if run.is_none() {
                let start = shanghai_day_start(day);
                if cursor < start {
                    out.live.push((cursor, start));
                }
                run = Some(day);
            }
        } else if let Some(r) = run.take() {
            out.sealed.push((r, day));
            cursor = shanghai_day_start(day);
        }
        day = next;
    }
    if let Some(r) = run {
        out.sealed.push((r, end));
        cursor = shanghai_day_start(end);
    }
    if cursor < to {
        out.live.push((cursor, to));
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn at(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
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
    fn whole_days_are_shanghai_days_inside_the_range() {
        assert_eq!(
            whole_days(
                at("2019-07-01T00:00:00+08:00"),
                at("2019-07-03T00:00:00+08:00")
            ),
            Some((d("2019-07-01"), d("2019-07-03")))
        );
        assert_eq!(
            whole_days(
                at("2019-07-01T00:00:01+08:00"),
                at("2019-07-03T23:00:00+08:00")
            ),
            Some((d("2019-07-02"), d("2019-07-03")))
        );
        // 2019-07-01 00:00 UTC is 08:00 in Shanghai: not a whole day.
        assert_eq!(
            whole_days(at("2019-07-01T00:00:00Z"), at("2019-07-02T00:00:00Z")),
            None
        );
    }

    #[test]
    fn split_covers_the_range_exactly_once() {
        let (from, to) = (
            at("2019-07-01T10:00:00+08:00"),
            at("2019-07-06T05:00:00+08:00"),
        );
        let fresh: BTreeMap<_, _> = ["2019-07-02", "2019-07-03", "2019-07-05", "2019-07-06"]
            .iter()
            .zip(1..)
            .map(|(s, i)| (d(s), i))
            .collect();
        let s = split(from, to, &fresh);
        // 07-06 is only partly inside the range, so it is read live although it is sealed.
        assert_eq!(
            s.sealed,
            vec![
                (d("2019-07-02"), d("2019-07-04")),
                (d("2019-07-05"), d("2019-07-06"))
            ]
        );
        assert_eq!(s.seals, [1, 2, 3]);
        assert_eq!(
            s.live,
            vec![
                (from, at("2019-07-02T00:00:00+08:00")),
                (
                    at("2019-07-04T00:00:00+08:00"),
                    at("2019-07-05T00:00:00+08:00")
                ),
                (at("2019-07-06T00:00:00+08:00"), to),
            ]
        );
        // Nothing sealed: one live range, as before.
        assert_eq!(split(from, to, &BTreeMap::new()).live, vec![(from, to)]);
        // All sealed whole days, no live part.
        let s = split(
            at("2019-07-02T00:00:00+08:00"),
            at("2019-07-04T00:00:00+08:00"),
            &fresh,
        );
        assert_eq!(s.sealed, vec![(d("2019-07-02"), d("2019-07-04"))]);
        assert!(s.live.is_empty());
    }

    #[test]
    fn the_newest_seal_counts_and_a_later_write_makes_the_day_stale() {
        let writes: BTreeMap<_, _> = [
            (d("2019-07-01"), 100),
            (d("2019-07-02"), 300),
            (d("2019-07-03"), 200),
        ]
        .into_iter()
        .collect();
        let marks = [
            (d("2019-07-01"), 120, 7),
            (d("2019-07-01"), 150, 5), // re-sealed later: this one
            (d("2019-07-01"), 150, 4), // same second, smaller id: not this one
            (d("2019-07-02"), 250, 9), // written after its seal
            (d("2019-07-03"), 200, 9), // written in the seal's own second
            (d("2019-07-04"), 100, 3), // sealed, no write recorded
        ];
        assert_eq!(
            fresh_days(&writes, &marks),
            [(d("2019-07-01"), 5), (d("2019-07-04"), 3)]
                .into_iter()
                .collect()
        );
    }
}
