//! Series, windows, levels and the stable alert key.

use std::fmt;

use chrono::{DateTime, FixedOffset, TimeZone};
use serde::{Deserialize, Serialize};

use crate::error::DetectError;

/// Seconds Asia/Shanghai is ahead of UTC (no daylight saving since 1991, see
/// `pingan_domain::time`).
const SHANGHAI_OFFSET_SECS: i64 = 8 * 3600;
/// 1970-01-01 was a Thursday: local day 0 is weekday 3 when Monday is 0.
const EPOCH_WEEKDAY: i64 = 3;

/// The area levels a series can be kept at.
///
/// A subset of `pingan_domain::area::AreaLevel` plus H3 cells: the levels at which a spike means
/// something operationally (a town's command desk, a station, one compound, or a cluster on the
/// map that crosses compound boundaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesLevel {
    /// 街道/镇, 9-digit statistical code.
    Town,
    /// 派出所 code.
    Station,
    /// 小区 id.
    Compound,
    /// H3 resolution-8 cell (about 0.74 km²), hex string.
    #[serde(rename = "h3_r8")]
    Cell,
    /// The k = 1 disk around an H3 resolution-8 cell (7 cells, about 5 km²), named by its
    /// centre cell. Disks overlap, so a cluster that straddles cell boundaries is still seen
    /// whole by the disk centred on it: a small space–time scan (ANCHORS §5.4) with a fixed
    /// radius, cheap enough to run in the stream.
    #[serde(rename = "h3_r8_k1")]
    Ring,
    /// A declared hot spot (point of interest: a nightlife strip, a scenic street), by POI id
    /// from the reference data. A short, fixed watch-list tested prospectively, so it needs far
    /// less multiple-testing protection than the scanned cells and disks and has its own gates
    /// (`gates_by_level`, `cusum_threshold_by_level`).
    Poi,
}

impl SeriesLevel {
    /// Every level.
    pub const ALL: [SeriesLevel; 6] = [
        SeriesLevel::Town,
        SeriesLevel::Station,
        SeriesLevel::Compound,
        SeriesLevel::Cell,
        SeriesLevel::Ring,
        SeriesLevel::Poi,
    ];

    /// Wire code: `town`, `station`, `compound`, `h3_r8`, `h3_r8_k1`, `poi`.
    pub fn as_str(self) -> &'static str {
        match self {
            SeriesLevel::Town => "town",
            SeriesLevel::Station => "station",
            SeriesLevel::Compound => "compound",
            SeriesLevel::Cell => "h3_r8",
            SeriesLevel::Ring => "h3_r8_k1",
            SeriesLevel::Poi => "poi",
        }
    }

    /// Parses a wire code.
    pub fn parse(s: &str) -> Option<SeriesLevel> {
        SeriesLevel::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// Levels whose sibling spikes are grouped into one town alert. Not disks: neighbouring
    /// disks share cells, so one cluster lights up several of them and they are not siblings.
    pub fn is_groupable(self) -> bool {
        matches!(self, SeriesLevel::Compound | SeriesLevel::Cell)
    }
}

impl fmt::Display for SeriesLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Length of a window, aligned in Asia/Shanghai. Most windows tumble; `2h` and `3d` hop by
/// one hour and one day, so a burst that starts at any hour (a night out) or any day (a
/// series of break-ins) lies wholly inside one of them instead of being cut in two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WindowLen {
    /// 15 minutes.
    #[serde(rename = "15m")]
    M15,
    /// One hour.
    #[serde(rename = "1h")]
    H1,
    /// Two hours, starting every hour.
    #[serde(rename = "2h")]
    H2,
    /// Four hours, starting every hour.
    #[serde(rename = "4h")]
    H4,
    /// One local day, 00:00–24:00.
    #[serde(rename = "1d")]
    D1,
    /// Three local days, starting every day at 00:00.
    #[serde(rename = "3d")]
    D3,
    /// One local week, Monday 00:00 to the next Monday.
    #[serde(rename = "7d")]
    D7,
}

impl WindowLen {
    /// Every length, shortest first.
    pub const ALL: [WindowLen; 7] = [
        WindowLen::M15,
        WindowLen::H1,
        WindowLen::H2,
        WindowLen::H4,
        WindowLen::D1,
        WindowLen::D3,
        WindowLen::D7,
    ];

    /// Length in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            WindowLen::M15 => 900,
            WindowLen::H1 => 3600,
            WindowLen::H2 => 2 * 3600,
            WindowLen::H4 => 4 * 3600,
            WindowLen::D1 => 86_400,
            WindowLen::D3 => 3 * 86_400,
            WindowLen::D7 => 7 * 86_400,
        }
    }

    /// Seconds between the starts of consecutive windows (the length, for tumbling ones).
    pub fn hop(self) -> i64 {
        match self {
            WindowLen::H2 | WindowLen::H4 => 3600,
            WindowLen::D3 => 86_400,
            other => other.seconds(),
        }
    }

    /// Wire code: `15m`, `1h`, `2h`, `4h`, `1d`, `3d`, `7d`.
    pub fn as_str(self) -> &'static str {
        match self {
            WindowLen::M15 => "15m",
            WindowLen::H1 => "1h",
            WindowLen::H2 => "2h",
            WindowLen::H4 => "4h",
            WindowLen::D1 => "1d",
            WindowLen::D3 => "3d",
            WindowLen::D7 => "7d",
        }
    }

    /// Parses a wire code.
    pub fn parse(s: &str) -> Option<WindowLen> {
        WindowLen::ALL.into_iter().find(|w| w.as_str() == s)
    }

    /// Start (unix seconds) of the latest window containing `t` (unix seconds); for a
    /// tumbling window, the only one.
    pub fn start_of(self, t: i64) -> i64 {
        let local = t + SHANGHAI_OFFSET_SECS;
        let hop = self.hop();
        let start_local = match self {
            // Weeks start on Monday: shift so that local day 0 is a Monday before flooring.
            WindowLen::D7 => {
                let shift = EPOCH_WEEKDAY * 86_400;
                (local + shift).div_euclid(hop) * hop - shift
            }
            _ => local.div_euclid(hop) * hop,
        };
        start_local - SHANGHAI_OFFSET_SECS
    }

    /// Start of the earliest window containing `t`.
    pub fn earliest_start_of(self, t: i64) -> i64 {
        self.start_of(t) - (self.seconds() - self.hop())
    }

    /// Starts of every window containing `t`, latest first.
    pub fn starts_containing(self, t: i64) -> impl Iterator<Item = i64> {
        let latest = self.start_of(t);
        let hop = self.hop();
        (0..self.seconds() / hop).map(move |k| latest - k * hop)
    }
}

impl fmt::Display for WindowLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Local hour of the week (Monday 00:00 = 0 … Sunday 23:00 = 167) of the hour with unix hour
/// index `h` (`unix seconds / 3600`).
pub(crate) fn hour_of_week(h: i64) -> usize {
    let local_h = h + SHANGHAI_OFFSET_SECS / 3600;
    (local_h + EPOCH_WEEKDAY * 24).rem_euclid(168) as usize
}

/// Local hour of the day of unix hour index `h`.
pub(crate) fn hour_of_day(h: i64) -> usize {
    (h + SHANGHAI_OFFSET_SECS / 3600).rem_euclid(24) as usize
}

/// Unix seconds as a time in Asia/Shanghai.
pub(crate) fn to_time(secs: i64) -> DateTime<FixedOffset> {
    match pingan_domain::time::shanghai()
        .timestamp_opt(secs, 0)
        .single()
    {
        Some(t) => t,
        // Only reachable for timestamps hundreds of thousands of years away.
        None => DateTime::<FixedOffset>::MIN_UTC.with_timezone(&pingan_domain::time::shanghai()),
    }
}

/// Alert level, in increasing severity (DOMAIN §9; "green" is the absence of an alert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 三级.
    Yellow,
    /// 二级.
    Orange,
    /// 一级.
    Red,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 3] = [Level::Yellow, Level::Orange, Level::Red];

    /// Wire code: `yellow`, `orange`, `red`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Yellow => "yellow",
            Level::Orange => "orange",
            Level::Red => "red",
        }
    }

    /// Parses a wire code.
    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One monitored series: an area at some level × a category, or × a subtype.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    /// Area level.
    pub area_level: SeriesLevel,
    /// Area code at that level.
    pub area_code: String,
    /// Category code, e.g. `FRAUD`.
    pub category: String,
    /// Subtype code, or `None` for the whole category.
    pub subtype: Option<String>,
}

impl SeriesKey {
    /// A per-category series.
    pub fn category(level: SeriesLevel, area: &str, category: &str) -> SeriesKey {
        SeriesKey {
            area_level: level,
            area_code: area.to_owned(),
            category: category.to_owned(),
            subtype: None,
        }
    }

    /// A per-subtype series.
    pub fn subtype(level: SeriesLevel, area: &str, category: &str, subtype: &str) -> SeriesKey {
        SeriesKey {
            area_level: level,
            area_code: area.to_owned(),
            category: category.to_owned(),
            subtype: Some(subtype.to_owned()),
        }
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}|{}|{}|{}",
            self.area_level,
            self.area_code,
            self.category,
            self.subtype.as_deref().unwrap_or("*")
        )
    }
}

/// The stable identity of an alert: series × window. Replays, restarts and a second aggregator
/// instance all derive the same key for the same window, so the key — not the evaluation — is
/// what makes "one alert per window" hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlertKey {
    /// The series.
    pub series: SeriesKey,
    /// Window length.
    pub window: WindowLen,
    /// Window start, unix seconds.
    pub window_start: i64,
}

impl AlertKey {
    /// Builds a key, checking that `window_start` is aligned for `window`.
    pub fn new(
        series: SeriesKey,
        window: WindowLen,
        window_start: DateTime<FixedOffset>,
    ) -> Result<AlertKey, DetectError> {
        let start = window_start.timestamp();
        if window.start_of(start) != start {
            return Err(DetectError::UnalignedWindow {
                window,
                start: window_start,
            });
        }
        Ok(AlertKey {
            series,
            window,
            window_start: start,
        })
    }

    /// Canonical text form, e.g.
    /// `compound|MH-CP-101-001|FRAUD|*|1h|2024-03-01T10:00:00+08:00`; the `alert_key` column.
    pub fn canonical(&self) -> String {
        format!(
            "{}|{}|{}",
            self.series,
            self.window,
            to_time(self.window_start).to_rfc3339()
        )
    }

    /// Deterministic alert id: the 128-bit FNV-1a hash of the canonical key, as 32 hex digits.
    ///
    /// FNV rather than `std::hash` because the id is persisted and must not change between
    /// compiler versions or processes.
    pub fn id(&self) -> String {
        format!("{:032x}", fnv1a_128(self.canonical().as_bytes()))
    }

    /// Window end, unix seconds.
    pub fn window_end(&self) -> i64 {
        self.window_start + self.window.seconds()
    }
}

impl fmt::Display for AlertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// 128-bit FNV-1a.
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    #[test]
    fn windows_align_in_shanghai() {
        let t = secs("2024-03-06T10:37:12+08:00"); // a Wednesday
        assert_eq!(
            WindowLen::M15.start_of(t),
            secs("2024-03-06T10:30:00+08:00")
        );
        assert_eq!(WindowLen::H1.start_of(t), secs("2024-03-06T10:00:00+08:00"));
        assert_eq!(WindowLen::D1.start_of(t), secs("2024-03-06T00:00:00+08:00"));
        assert_eq!(WindowLen::D7.start_of(t), secs("2024-03-04T00:00:00+08:00"));
        // 01:00 local is still the previous UTC day: the local day must win.
        let early = secs("2024-03-06T01:00:00+08:00");
        assert_eq!(
            WindowLen::D1.start_of(early),
            secs("2024-03-06T00:00:00+08:00")
        );
        let monday = secs("2024-03-04T00:00:00+08:00");
        assert_eq!(WindowLen::D7.start_of(monday), monday);
        assert_eq!(
            WindowLen::D7.start_of(monday - 1),
            secs("2024-02-26T00:00:00+08:00")
        );
    }

    #[test]
    fn hopping_windows_cover_every_instant_len_over_hop_times() {
        let t = secs("2024-03-06T23:30:00+08:00");
        let h2: Vec<i64> = WindowLen::H2.starts_containing(t).collect();
        assert_eq!(
            h2,
            [
                secs("2024-03-06T23:00:00+08:00"),
                secs("2024-03-06T22:00:00+08:00")
            ]
        );
        let d3: Vec<i64> = WindowLen::D3.starts_containing(t).collect();
        assert_eq!(
            d3,
            [
                secs("2024-03-06T00:00:00+08:00"),
                secs("2024-03-05T00:00:00+08:00"),
                secs("2024-03-04T00:00:00+08:00")
            ]
        );
        assert_eq!(
            WindowLen::D3.earliest_start_of(t),
            secs("2024-03-04T00:00:00+08:00")
        );
        for w in WindowLen::ALL {
            for s in w.starts_containing(t) {
                assert!(s <= t && t < s + w.seconds(), "{w} {s}");
                assert_eq!(w.start_of(s), s, "{w}: every start is aligned");
            }
            assert_eq!(WindowLen::parse(w.as_str()), Some(w));
        }
        assert_eq!(WindowLen::H1.starts_containing(t).count(), 1);
        assert_eq!(
            WindowLen::H4.starts_containing(t).count(),
            4,
            "4 h hops hourly"
        );
    }

    #[test]
    fn hour_of_week_starts_monday_midnight_local() {
        assert_eq!(hour_of_week(secs("2024-03-04T00:00:00+08:00") / 3600), 0);
        assert_eq!(hour_of_week(secs("2024-03-04T23:00:00+08:00") / 3600), 23);
        assert_eq!(hour_of_week(secs("2024-03-10T23:59:00+08:00") / 3600), 167);
        assert_eq!(hour_of_day(secs("2024-03-10T22:10:00+08:00") / 3600), 22);
    }

    #[test]
    fn alert_ids_are_stable_and_distinct() {
        let start = DateTime::parse_from_rfc3339("2024-03-01T10:00:00+08:00").unwrap();
        let k = AlertKey::new(
            SeriesKey::category(SeriesLevel::Compound, "MH-CP-101-001", "FRAUD"),
            WindowLen::H1,
            start,
        )
        .unwrap();
        assert_eq!(
            k.canonical(),
            "compound|MH-CP-101-001|FRAUD|*|1h|2024-03-01T10:00:00+08:00"
        );
        // Pinned: the id is persisted, so a change here is a breaking change.
        assert_eq!(
            k.id(),
            format!("{:032x}", fnv1a_128(k.canonical().as_bytes()))
        );
        assert_eq!(k.id().len(), 32);
        let mut other = k.clone();
        other.window = WindowLen::M15;
        assert_ne!(k.id(), other.id());
        assert!(
            AlertKey::new(
                k.series,
                WindowLen::H1,
                start + chrono::Duration::minutes(15)
            )
            .is_err()
        );
        // FNV-1a 128 test vector (empty input is the offset basis).
        assert_eq!(fnv1a_128(b""), 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d);
        assert_eq!(fnv1a_128(b"a"), 0xd228_cb69_6f1a_8caf_7891_2b70_4e4a_8964);
    }
}
