//! Which requests the sealed-day tables (`counts_day`, `counts_day_hod`, `cells_day`) can
//! serve, and the request's range split into sealed whole days and the rest.
//!
//! The sealed-day model itself (what a fresh day is, how a range splits) is
//! `pingan_warehouse::sealed`, shared with the aggregator that writes the seals; this module
//! decides from a request's filters and buckets whether a sealed table can answer it.

use std::collections::BTreeMap;

use chrono::NaiveDate;
pub use pingan_warehouse::schema::SealedTable;
pub use pingan_warehouse::sealed::{Split, fresh_days};

use crate::model::{Bucket, CellsSpec, CountsSpec, H3Res, TimeRange};

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
    pingan_warehouse::sealed::whole_days(range.from().timestamp(), range.to().timestamp())
}

/// Splits `range` into runs of `fresh` whole days and the time between them.
pub fn split(range: &TimeRange, fresh: &BTreeMap<NaiveDate, u64>) -> Split {
    pingan_warehouse::sealed::split(range.from().timestamp(), range.to().timestamp(), fresh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dim, Filter};
    use chrono::{DateTime, Utc};
    use pingan_domain::time::HourWindow;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn range(a: &str, b: &str) -> TimeRange {
        TimeRange::new(t(a), t(b)).unwrap()
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
