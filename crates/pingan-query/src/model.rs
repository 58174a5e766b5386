//! Typed query specifications and results shared by the HTTP layer and the stores.
//!
//! Everything here is already validated: the API layer parses user input into these types
//! (see [`crate::api::params`](mod@crate::api::params)), and a store only ever sees whitelisted dimensions, bounded
//! codes and checked time ranges.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use pingan_domain::time::HourWindow;
use serde::Serialize;

pub use pingan_warehouse::schema::{Dim, H3Res};

/// Time bucket of `/v1/counts`, computed in Asia/Shanghai.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// One row per dimension combination over the whole range.
    None,
    /// Calendar minute.
    Minute,
    /// 5 minutes.
    FiveMinutes,
    /// 15 minutes.
    FifteenMinutes,
    /// Hour.
    Hour,
    /// Shanghai calendar day.
    Day,
    /// Shanghai calendar month.
    Month,
}

impl Bucket {
    /// Every bucket with its wire name.
    pub const ALL: [(Bucket, &'static str); 7] = [
        (Bucket::None, "none"),
        (Bucket::Minute, "minute"),
        (Bucket::FiveMinutes, "5m"),
        (Bucket::FifteenMinutes, "15m"),
        (Bucket::Hour, "hour"),
        (Bucket::Day, "day"),
        (Bucket::Month, "month"),
    ];

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Bucket> {
        Bucket::ALL.iter().find(|(_, n)| *n == s).map(|(b, _)| *b)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        Bucket::ALL
            .iter()
            .find(|(b, _)| *b == self)
            .map_or("none", |(_, n)| n)
    }

    /// Length in seconds (a month counts as 28 days, so bucket-count caps err on the safe side).
    pub fn seconds(self) -> Option<i64> {
        match self {
            Bucket::None => None,
            Bucket::Minute => Some(60),
            Bucket::FiveMinutes => Some(300),
            Bucket::FifteenMinutes => Some(900),
            Bucket::Hour => Some(3600),
            Bucket::Day => Some(86_400),
            Bucket::Month => Some(28 * 86_400),
        }
    }
}

/// A checked half-open time range `[from, to)` with `from < to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl TimeRange {
    /// `None` unless `from < to`.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Option<TimeRange> {
        (from < to).then_some(TimeRange { from, to })
    }
    /// Inclusive start.
    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }
    /// Exclusive end.
    pub fn to(&self) -> DateTime<Utc> {
        self.to
    }
    /// Length in seconds.
    pub fn seconds(&self) -> i64 {
        (self.to - self.from).num_seconds()
    }
    /// The largest of 3600, 60 and 1 seconds that both bounds are aligned to.
    pub fn alignment(&self) -> i64 {
        let (a, b) = (self.from.timestamp(), self.to.timestamp());
        [3600, 60]
            .into_iter()
            .find(|g| a % g == 0 && b % g == 0)
            .unwrap_or(1)
    }
    /// The same range shifted by `secs` (negative = earlier).
    pub fn shifted(&self, secs: i64) -> TimeRange {
        let d = chrono::Duration::seconds(secs);
        TimeRange {
            from: self.from + d,
            to: self.to + d,
        }
    }
}

/// Filters common to every query.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Event-time range.
    pub range: TimeRange,
    /// Hour-of-day window in Asia/Shanghai.
    pub hours: Option<HourWindow>,
    /// Only Monday–Friday (Asia/Shanghai); used by the morning-peak report.
    pub weekdays_only: bool,
    /// Dimension filters: each value list is "any of"; all dimensions must match.
    pub dims: BTreeMap<Dim, Vec<String>>,
}

impl Filter {
    /// A filter on the range alone.
    pub fn range(range: TimeRange) -> Filter {
        Filter {
            range,
            hours: None,
            weekdays_only: false,
            dims: BTreeMap::new(),
        }
    }
    /// Adds (replaces) a dimension filter.
    pub fn with(mut self, dim: Dim, values: &[&str]) -> Filter {
        self.dims
            .insert(dim, values.iter().map(|s| (*s).to_owned()).collect());
        self
    }
}

/// What `/v1/counts` asks a store for.
#[derive(Debug, Clone, PartialEq)]
pub struct CountsSpec {
    /// Filters.
    pub filter: Filter,
    /// Group-by dimensions, in output order.
    pub by: Vec<Dim>,
    /// Time bucket.
    pub bucket: Bucket,
    /// Most rows the store may return; one more signals "too many".
    pub max_rows: usize,
}

/// One row of counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    /// Start of the bucket (Asia/Shanghai), absent for `bucket=none`.
    pub bucket: Option<DateTime<FixedOffset>>,
    /// Codes of the group-by dimensions, in [`CountsSpec::by`] order; `""` = unknown.
    pub dims: Vec<String>,
    /// Distinct events.
    pub count: u64,
}

/// Counts plus the distinct total over the whole filtered range.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CountsResult {
    /// Rows ordered by bucket, then count descending, then codes.
    pub rows: Vec<CountRow>,
    /// Distinct events matched (not the sum of rows).
    pub total: u64,
}

/// What `/v1/heatmap` asks a store for.
#[derive(Debug, Clone, PartialEq)]
pub struct CellsSpec {
    /// Filters.
    pub filter: Filter,
    /// Resolution.
    pub res: H3Res,
    /// Most cells returned (largest first).
    pub limit: usize,
}

/// Distinct events in one H3 cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellCount {
    /// H3 cell index (hex string).
    pub cell: String,
    /// Distinct events.
    pub count: u64,
}

/// What `/v1/terms` asks a store for: a day range and dimension filters (town, category, subtype).
#[derive(Debug, Clone, PartialEq)]
pub struct TermsSpec {
    /// First day (Asia/Shanghai), inclusive.
    pub from_day: NaiveDate,
    /// Last day, exclusive.
    pub to_day: NaiveDate,
    /// Filters on town, category and subtype.
    pub dims: BTreeMap<Dim, Vec<String>>,
}

/// Term frequencies: events mentioning each term.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TermCounts {
    /// `(term, events)`, most frequent first.
    pub terms: Vec<(String, u64)>,
    /// Sum of events over all terms of the selection (the normaliser for shares).
    pub total: u64,
}

/// Position in the newest-first incident list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentCursor {
    /// Event time (Unix seconds) of the last incident of the previous page.
    pub event_time: i64,
    /// Its event id.
    pub event_id: String,
}

impl IncidentCursor {
    /// `"<unix seconds>_<event id>"`.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.event_time, self.event_id)
    }
    /// Parses [`IncidentCursor::encode`]'s output.
    pub fn decode(s: &str) -> Option<IncidentCursor> {
        let (t, id) = s.split_once('_')?;
        let event_time = t.parse().ok()?;
        let ok = id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        ok.then(|| IncidentCursor {
            event_time,
            event_id: id.to_ascii_lowercase(),
        })
    }
}

/// What `/v1/incidents` asks a store for.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentsSpec {
    /// Filters.
    pub filter: Filter,
    /// Continue after this incident.
    pub after: Option<IncidentCursor>,
    /// Page size.
    pub limit: usize,
}

/// One incident as served: no personal data (the description is redacted upstream, phones
/// never reach ClickHouse, and the CAD/plate reference is not exposed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// Event id (UUID).
    pub event_id: String,
    /// `call` or `qr`.
    pub source: String,
    /// When it happened.
    pub event_time: DateTime<FixedOffset>,
    /// Category code.
    pub category: String,
    /// Subtype code.
    pub subtype: String,
    /// Department code.
    pub department: Option<String>,
    /// 1 = most urgent.
    pub priority: u8,
    /// District code.
    pub district: Option<String>,
    /// Town code.
    pub town: Option<String>,
    /// Station code.
    pub station: Option<String>,
    /// Compound id.
    pub compound: Option<String>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// H3 resolution-9 cell.
    pub h3: Option<String>,
    /// Tags (night, alcohol …).
    pub tags: Vec<String>,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Redacted description.
    pub description: String,
    /// When ClickHouse stored it (Unix seconds); used by the live feed.
    #[serde(skip)]
    pub stored_at: i64,
}

/// A spike alert (one row per alert key, newest version).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Alert id.
    pub id: String,
    /// `town`, `station`, `compound`, …
    pub area_level: String,
    /// Area code.
    pub area_code: String,
    /// Category code.
    pub category: String,
    /// Subtype code, `null` for a per-category alert.
    pub subtype: Option<String>,
    /// Window start.
    pub window_start: DateTime<FixedOffset>,
    /// Window end.
    pub window_end: DateTime<FixedOffset>,
    /// Observed events.
    pub observed: u32,
    /// Expected events.
    pub expected: f64,
    /// Method score.
    pub score: f64,
    /// Level (e.g. `red`).
    pub level: String,
    /// Detection method.
    pub method: String,
    /// First created.
    pub created_at: DateTime<FixedOffset>,
    /// Last updated (escalations).
    pub updated_at: DateTime<FixedOffset>,
    /// Tail probability.
    pub p_value: f64,
    /// Baseline description.
    pub baseline: String,
}

/// What the live poller reads each tick.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LiveCounts {
    /// Distinct events today (Asia/Shanghai) per category.
    pub today_by_category: BTreeMap<String, u64>,
    /// Distinct events today.
    pub today_total: u64,
    /// Distinct events in the last 60 minutes.
    pub last_hour: u64,
}

/// Unix seconds → Asia/Shanghai date-time.
pub fn shanghai_time(unix: i64) -> DateTime<FixedOffset> {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .unwrap_or_default()
        .with_timezone(&pingan_domain::time::shanghai())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let c = IncidentCursor {
            event_time: 1_577_806_200,
            event_id: "0191e0d2-7c1a-7000-8000-000000000001".into(),
        };
        assert_eq!(IncidentCursor::decode(&c.encode()), Some(c));
        assert_eq!(IncidentCursor::decode("x_y"), None);
        assert_eq!(IncidentCursor::decode("12_'; DROP TABLE x"), None);
    }

    #[test]
    fn alignment() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let r = TimeRange::new(
            t("2020-01-01T00:00:00+08:00"),
            t("2020-01-02T00:00:00+08:00"),
        )
        .unwrap();
        assert_eq!(r.alignment(), 3600);
        let r = TimeRange::new(
            t("2020-01-01T00:01:00+08:00"),
            t("2020-01-02T00:00:00+08:00"),
        )
        .unwrap();
        assert_eq!(r.alignment(), 60);
        let r = TimeRange::new(
            t("2020-01-01T00:01:01+08:00"),
            t("2020-01-02T00:00:00+08:00"),
        )
        .unwrap();
        assert_eq!(r.alignment(), 1);
        assert!(
            TimeRange::new(
                t("2020-01-02T00:00:00+08:00"),
                t("2020-01-02T00:00:00+08:00")
            )
            .is_none()
        );
    }
}

/// One access-log entry: an incident-level read or export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// When it was answered.
    pub at: DateTime<Utc>,
    /// The read token's name.
    pub principal: String,
    /// Its role.
    pub role: String,
    /// Its scope (`*` or an area code).
    pub scope: String,
    /// Endpoint path.
    pub endpoint: String,
    /// The query string.
    pub filters: String,
    /// Rows answered.
    pub rows: u64,
}
