//! Reading sealed days (`counts_day`, `counts_day_hod`): which requests they can serve and how a
//! request's range splits into sealed whole days and the rest.
//!
//! The aggregator seals a closed, quiet day into plain exact counts and records the seal's
//! `as_of` time; a day is *fresh* when no write reached it since (see the aggregator's
//! `maintenance` module). Fresh days are summed from the sealed table, everything else — the
//! partial days at the ends of the range, today, days with late events — is merged from the
//! `uniqExact` rollups as before. The parts are disjoint in event time, so their sum is the exact
//! distinct count.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use pingan_domain::time::{shanghai_day, shanghai_day_start};

use crate::model::{Bucket, CellsSpec, CountsSpec, Dim, H3Res, TimeRange};

/// A sealed table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedTable {
    /// `counts_day`: every dimension but the compound.
    Day,
    /// `counts_day_hod`: per hour of day; district, town, category, subtype.
    DayHod,
    /// `cells_day`: H3 cells at resolutions 8 and 7; town, category, subtype.
    Cells,
}

impl SealedTable {
    /// Table name.
    pub fn name(self) -> &'static str {
        match self {
            SealedTable::Day => "counts_day",
            SealedTable::DayHod => "counts_day_hod",
            SealedTable::Cells => "cells_day",
        }
    }

    /// The column of a dimension; `None` when the table lacks it.
    pub fn dim(self, d: Dim) -> Option<&'static str> {
        match (self, d) {
            (SealedTable::Cells, Dim::Town) => Some("town_code"),
            (SealedTable::Cells, Dim::Category) => Some("category"),
            (SealedTable::Cells, Dim::Subtype) => Some("subtype"),
            (SealedTable::Cells, _) => None,
            (_, Dim::District) => Some("district_code"),
            (_, Dim::Town) => Some("town_code"),
            (_, Dim::Category) => Some("category"),
            (_, Dim::Subtype) => Some("subtype"),
            (SealedTable::Day, Dim::Station) => Some("station_code"),
            (SealedTable::Day, Dim::Source) => Some("source"),
            (SealedTable::Day, Dim::Department) => Some("department"),
            _ => None,
        }
    }
}

/// The sealed table that can serve `spec`, if any: day or month buckets (or none), dimensions
/// the table has, and at least one whole Shanghai day in the range.
pub fn sealed_table(spec: &CountsSpec) -> Option<SealedTable> {
    if !matches!(spec.bucket, Bucket::None | Bucket::Day | Bucket::Month) {
        return None;
    }
    whole_days(&spec.filter.range)?;
    let table = if spec.filter.hours.is_some() {
        SealedTable::DayHod
    } else {
        SealedTable::Day
    };
    let dims_ok = spec
        .by
        .iter()
        .chain(spec.filter.dims.keys())
        .all(|d| table.dim(*d).is_some());
    dims_ok.then_some(table)
}

/// Whether `cells_day` can serve a heat map: resolution 8 or 7, no hour window, dimensions it
/// has, and at least one whole Shanghai day in the range.
pub fn cells_sealable(spec: &CellsSpec) -> bool {
    !matches!(spec.res, H3Res::R9)
        && spec.filter.hours.is_none()
        && !spec.filter.weekdays_only
        && spec
            .filter
            .dims
            .keys()
            .all(|d| SealedTable::Cells.dim(*d).is_some())
        && whole_days(&spec.filter.range).is_some()
}

/// The whole Shanghai days inside `range`, as `[first, end)`; `None` when there is none.
pub fn whole_days(range: &TimeRange) -> Option<(NaiveDate, NaiveDate)> {
    let from = range.from().timestamp();
    let first_day = shanghai_day(from);
    let first = if shanghai_day_start(first_day) == from {
        first_day
    } else {
        first_day.succ_opt()?
    };
    let end = shanghai_day(range.to().timestamp());
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

/// Splits `range` into runs of `fresh` whole days and the time between them.
pub fn split(range: &TimeRange, fresh: &BTreeMap<NaiveDate, u64>) -> Split {
    let mut out = Split::default();
    let (from, to) = (range.from().timestamp(), range.to().timestamp());
    let Some((first, end)) = whole_days(range) else {
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
    use super::*;
    use crate::model::Filter;
    use chrono::{DateTime, Utc};
    use pingan_domain::time::HourWindow;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn range(a: &str, b: &str) -> TimeRange {
        TimeRange::new(t(a), t(b)).unwrap()
    }
    fn at(s: &str) -> i64 {
        t(s).timestamp()
    }

    #[test]
    fn whole_days_are_shanghai_days_inside_the_range() {
        assert_eq!(
            whole_days(&range(
                "2019-07-01T00:00:00+08:00",
                "2019-07-03T00:00:00+08:00"
            )),
            Some((d("2019-07-01"), d("2019-07-03")))
        );
        assert_eq!(
            whole_days(&range(
                "2019-07-01T00:00:01+08:00",
                "2019-07-03T23:00:00+08:00"
            )),
            Some((d("2019-07-02"), d("2019-07-03")))
        );
        // 2019-07-01 00:00 UTC is 08:00 in Shanghai: not a whole day.
        assert_eq!(
            whole_days(&range("2019-07-01T00:00:00Z", "2019-07-02T00:00:00Z")),
            None
        );
    }

    #[test]
    fn split_covers_the_range_exactly_once() {
        let r = range("2019-07-01T10:00:00+08:00", "2019-07-06T05:00:00+08:00");
        let fresh: BTreeMap<_, _> = ["2019-07-02", "2019-07-03", "2019-07-05", "2019-07-06"]
            .iter()
            .zip(1..)
            .map(|(s, i)| (d(s), i))
            .collect();
        let s = split(&r, &fresh);
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
                (
                    at("2019-07-01T10:00:00+08:00"),
                    at("2019-07-02T00:00:00+08:00")
                ),
                (
                    at("2019-07-04T00:00:00+08:00"),
                    at("2019-07-05T00:00:00+08:00")
                ),
                (
                    at("2019-07-06T00:00:00+08:00"),
                    at("2019-07-06T05:00:00+08:00")
                ),
            ]
        );
        // Nothing sealed: one live range, as before.
        assert_eq!(
            split(&r, &BTreeMap::new()).live,
            vec![(
                at("2019-07-01T10:00:00+08:00"),
                at("2019-07-06T05:00:00+08:00")
            )]
        );
        // All sealed whole days, no live part.
        let r = range("2019-07-02T00:00:00+08:00", "2019-07-04T00:00:00+08:00");
        let s = split(&r, &fresh);
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

    #[test]
    fn sealed_tables_serve_only_what_they_hold() {
        let spec = |bucket, by: Vec<Dim>, hours: Option<&str>| CountsSpec {
            filter: Filter {
                hours: hours.map(|h| HourWindow::parse(h).unwrap()),
                ..Filter::range(range(
                    "2019-01-01T00:00:00+08:00",
                    "2020-01-01T00:00:00+08:00",
                ))
            },
            by,
            bucket,
            max_rows: 10,
        };
        assert_eq!(
            sealed_table(&spec(Bucket::Day, vec![Dim::Town, Dim::Source], None)),
            Some(SealedTable::Day)
        );
        assert_eq!(
            sealed_table(&spec(Bucket::Month, vec![Dim::Town], Some("21-3"))),
            Some(SealedTable::DayHod)
        );
        assert_eq!(
            sealed_table(&spec(Bucket::Month, vec![Dim::Source], Some("21-3"))),
            None
        );
        assert_eq!(
            sealed_table(&spec(Bucket::Day, vec![Dim::Compound], None)),
            None
        );
        assert_eq!(
            sealed_table(&spec(Bucket::Hour, vec![Dim::Town], None)),
            None
        );
    }
}
