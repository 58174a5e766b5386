//! Time rules of the domain, all in Asia/Shanghai.
//!
//! China has kept UTC+08:00 without daylight saving since 1991, so a fixed offset is exact for
//! every timestamp pingan handles and avoids shipping a time-zone database.

use chrono::{DateTime, Datelike, FixedOffset, TimeZone, Timelike, Weekday};

/// Asia/Shanghai as a fixed offset.
pub fn shanghai() -> FixedOffset {
    match FixedOffset::east_opt(8 * 3600) {
        Some(tz) => tz,
        None => unreachable!("+08:00 is a valid offset"),
    }
}

/// `t` in Asia/Shanghai.
pub fn to_shanghai<Tz: TimeZone>(t: &DateTime<Tz>) -> DateTime<FixedOffset> {
    t.with_timezone(&shanghai())
}

/// The Asia/Shanghai calendar date of a Unix time.
pub fn shanghai_day(unix: i64) -> chrono::NaiveDate {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .with_timezone(&shanghai())
        .date_naive()
}

/// Unix time of a date's Asia/Shanghai midnight.
pub fn shanghai_day_start(day: chrono::NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .timestamp()
        - i64::from(shanghai().local_minus_utc())
}

/// The night window of the Safety Index night map: 21:00–02:59 local time.
pub fn is_night<Tz: TimeZone>(t: &DateTime<Tz>) -> bool {
    let h = to_shanghai(t).hour();
    !(3..21).contains(&h)
}

/// The morning peak: 07:00–08:59 local time on weekdays.
pub fn is_morning_peak<Tz: TimeZone>(t: &DateTime<Tz>) -> bool {
    let local = to_shanghai(t);
    matches!(local.hour(), 7 | 8) && !matches!(local.weekday(), Weekday::Sat | Weekday::Sun)
}

/// An hour-of-day window `start-end` (end exclusive) that may cross midnight: `21-3` is
/// 21:00–02:59.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourWindow {
    /// First hour inside the window, 0–23.
    pub start: u32,
    /// First hour after the window, 0–24.
    pub end: u32,
}

impl HourWindow {
    /// Parses `start-end`, e.g. `21-3` or `7-9`.
    pub fn parse(s: &str) -> Result<HourWindow, String> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("hour window {s:?} must look like 21-3"))?;
        let start: u32 = a
            .trim()
            .parse()
            .map_err(|_| format!("start hour {a:?} is not a number"))?;
        let end: u32 = b
            .trim()
            .parse()
            .map_err(|_| format!("end hour {b:?} is not a number"))?;
        if start > 23 || end > 24 || start == end {
            return Err(format!(
                "hour window {s:?} needs 0 <= start <= 23, 0 <= end <= 24, start != end"
            ));
        }
        Ok(HourWindow { start, end })
    }

    /// Whether local hour `h` lies inside the window.
    pub fn contains(self, h: u32) -> bool {
        if self.start < self.end {
            h >= self.start && h < self.end
        } else {
            h >= self.start || h < self.end
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn night_is_judged_in_shanghai_time() {
        assert!(is_night(&t("2019-12-31T21:00:00+08:00")));
        assert!(is_night(&t("2019-12-31T13:30:00Z")), "21:30 in Shanghai");
        assert!(is_night(&t("2020-01-01T02:59:59+08:00")));
        assert!(!is_night(&t("2020-01-01T03:00:00+08:00")));
        assert!(!is_night(&t("2019-12-31T20:59:59+08:00")));
    }

    #[test]
    fn morning_peak_is_weekdays_only() {
        assert!(
            is_morning_peak(&t("2019-12-31T07:15:00+08:00")),
            "a Tuesday"
        );
        assert!(
            !is_morning_peak(&t("2019-12-28T07:15:00+08:00")),
            "a Saturday"
        );
        assert!(!is_morning_peak(&t("2019-12-31T09:00:00+08:00")));
    }

    #[test]
    fn days_start_at_shanghai_midnight() {
        let d = chrono::NaiveDate::from_ymd_opt(2019, 7, 1).unwrap();
        let m = shanghai_day_start(d);
        assert_eq!(m, 1_561_910_400);
        assert_eq!(shanghai_day(m), d);
        assert_eq!(shanghai_day(m - 1), d.pred_opt().unwrap());
    }

    #[test]
    fn hour_windows_may_cross_midnight() {
        let w = HourWindow::parse("21-3").unwrap();
        assert!(w.contains(21) && w.contains(23) && w.contains(0) && w.contains(2));
        assert!(!w.contains(3) && !w.contains(20));
        let m = HourWindow::parse("7-9").unwrap();
        assert!(m.contains(7) && m.contains(8) && !m.contains(9));
        assert!(HourWindow::parse("5-5").is_err());
        assert!(HourWindow::parse("25-3").is_err());
        assert!(HourWindow::parse("night").is_err());
    }
}
