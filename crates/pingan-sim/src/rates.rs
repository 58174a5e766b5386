//! How many events happen when: the district's daily and weekly rhythm, public holidays and the
//! 虹桥 nightlife stream.
//!
//! Scale (DOMAIN.md §2.3): Minhang took 48.7万 110 calls in 2019, about 1,334 a day or 56 an
//! hour, with the district peak at 15:00–16:00 and a trough at 03:00–06:00. 虹桥镇 peaks at
//! 22:00–23:00 because of its 2,000+ restaurants, bars and KTV around 吴中路 and 老外街; that
//! evening load is modelled as a separate stream ([`nightlife_per_hour`]) on top of the district
//! curve so the town's own peak moves to the night while the district peak stays in the
//! afternoon.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike, Weekday};

/// Baseline calls (and QR reports) per day for the whole district, 2019 level.
pub const BASELINE_PER_DAY: f64 = 1_300.0;

/// Relative call volume per hour of day; the mean is 1.0 (checked by a test).
///
/// Shape: a trough 03–06 h, a climb through the morning, the district peak 15–16 h, a slow
/// evening decline. The numbers are a plausible 110 profile, not published data.
const DAILY: [f64; 24] = [
    0.62, 0.50, 0.40, 0.31, 0.27, 0.29, 0.44, 0.79, 1.10, 1.25, 1.35, 1.36, //
    1.27, 1.32, 1.42, 1.61, 1.53, 1.44, 1.39, 1.34, 1.23, 1.13, 0.99, 0.66,
];

/// Relative call volume per weekday, Monday first (weekends carry more disputes and nightlife).
const WEEKLY: [f64; 7] = [0.97, 0.95, 0.96, 0.98, 1.04, 1.07, 1.03];

/// Relative volume on public holidays (fewer commuters, more leisure).
const HOLIDAY_FACTOR: f64 = 1.05;

/// The 虹桥 nightlife stream per hour of day at its weekday level, events per hour.
const NIGHTLIFE: [f64; 24] = [
    4.2, 2.8, 1.6, 0.7, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, //
    0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.5, 0.9, 1.6, 3.4, 6.0, 6.4,
];

/// Friday and Saturday nights are busier (the stream belongs to the evening it started on).
const NIGHTLIFE_WEEKEND_FACTOR: f64 = 1.6;

/// Spring Festival (春节) first day per year; the holiday runs 7 days from the eve.
const SPRING_FESTIVAL: &[(i32, u32, u32)] = &[
    (2016, 2, 8),
    (2017, 1, 28),
    (2018, 2, 16),
    (2019, 2, 5),
    (2020, 1, 25),
    (2021, 2, 12),
    (2022, 2, 1),
    (2023, 1, 22),
    (2024, 2, 10),
    (2025, 1, 29),
    (2026, 2, 17),
    (2027, 2, 6),
    (2028, 1, 26),
    (2029, 2, 13),
    (2030, 2, 3),
];

/// Relative volume of hour `h` (0–23); mean 1.0 over the day.
pub fn daily_factor(hour: u32) -> f64 {
    DAILY.get(hour as usize).copied().unwrap_or(1.0)
}

/// Relative volume of a weekday.
pub fn weekly_factor(day: Weekday) -> f64 {
    WEEKLY[day.num_days_from_monday() as usize]
}

/// Whether `date` is a Chinese public holiday (New Year, Spring Festival week, Qingming, Labour
/// Day week, National Day week). Lunar holidays other than Spring Festival are left out: a
/// missing holiday only changes a multiplier.
pub fn is_holiday(date: NaiveDate) -> bool {
    let (m, d) = (date.month(), date.day());
    if (m, d) == (1, 1)
        || (m == 4 && (4..=6).contains(&d))
        || (m == 5 && d <= 5)
        || (m == 10 && d <= 7)
    {
        return true;
    }
    SPRING_FESTIVAL.iter().any(|&(y, sm, sd)| {
        y == date.year()
            && NaiveDate::from_ymd_opt(y, sm, sd).is_some_and(|first| {
                let eve = first - chrono::Duration::days(1);
                date >= eve && date < eve + chrono::Duration::days(7)
            })
    })
}

/// Whether the local date is a weekend or a holiday (tourists at 七宝老街, fewer commuters).
pub fn is_leisure_day(t: &DateTime<FixedOffset>) -> bool {
    matches!(t.weekday(), Weekday::Sat | Weekday::Sun) || is_holiday(t.date_naive())
}

/// District events per hour at local time `t` (without the nightlife stream).
pub fn district_per_hour(t: &DateTime<FixedOffset>, scale: f64) -> f64 {
    let holiday = if is_holiday(t.date_naive()) {
        HOLIDAY_FACTOR
    } else {
        1.0
    };
    BASELINE_PER_DAY / 24.0 * daily_factor(t.hour()) * weekly_factor(t.weekday()) * holiday * scale
}

/// 虹桥 nightlife events per hour at local time `t`. Hours after midnight belong to the previous
/// evening, so Saturday 01:00 is part of Friday night.
pub fn nightlife_per_hour(t: &DateTime<FixedOffset>, scale: f64) -> f64 {
    let evening = if t.hour() < 12 {
        t.weekday().pred()
    } else {
        t.weekday()
    };
    let weekend = matches!(evening, Weekday::Fri | Weekday::Sat) || is_holiday(t.date_naive());
    NIGHTLIFE[t.hour() as usize]
        * if weekend {
            NIGHTLIFE_WEEKEND_FACTOR
        } else {
            1.0
        }
        * scale
}

/// An upper bound of [`district_per_hour`] + [`nightlife_per_hour`] at `scale`, for thinning.
pub fn max_per_hour(scale: f64) -> f64 {
    let district =
        BASELINE_PER_DAY / 24.0 * DAILY.iter().copied().fold(0.0, f64::max) * 1.07 * HOLIDAY_FACTOR;
    let night = NIGHTLIFE.iter().copied().fold(0.0, f64::max) * NIGHTLIFE_WEEKEND_FACTOR;
    (district + night) * scale * 1.01
}

/// Expected events per day on an ordinary weekday, nightlife included (for ETA estimates and
/// `--rate` ↔ `--speedup` conversions).
pub fn mean_per_day(scale: f64) -> f64 {
    let night: f64 = NIGHTLIFE.iter().sum::<f64>() * (5.0 + 2.0 * NIGHTLIFE_WEEKEND_FACTOR) / 7.0;
    (BASELINE_PER_DAY + night) * scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_daily_curve_has_mean_one_peak_at_15_and_trough_before_dawn() {
        let mean: f64 = DAILY.iter().sum::<f64>() / 24.0;
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        let peak = (0..24)
            .max_by(|&a, &b| daily_factor(a).total_cmp(&daily_factor(b)))
            .unwrap();
        assert_eq!(peak, 15);
        let trough = (0..24)
            .min_by(|&a, &b| daily_factor(a).total_cmp(&daily_factor(b)))
            .unwrap();
        assert!((3..=6).contains(&trough), "trough at {trough}");
    }

    #[test]
    fn holidays_include_national_day_and_spring_festival() {
        assert!(is_holiday(NaiveDate::from_ymd_opt(2019, 10, 3).unwrap()));
        assert!(is_holiday(NaiveDate::from_ymd_opt(2019, 2, 4).unwrap()));
        assert!(is_holiday(NaiveDate::from_ymd_opt(2019, 2, 10).unwrap()));
        assert!(!is_holiday(NaiveDate::from_ymd_opt(2019, 2, 11).unwrap()));
        assert!(!is_holiday(NaiveDate::from_ymd_opt(2019, 12, 31).unwrap()));
    }

    #[test]
    fn friday_night_after_midnight_counts_as_weekend() {
        let tz = pingan_domain::time::shanghai();
        let sat_1am = tz.with_ymd_and_hms(2019, 12, 28, 1, 0, 0).unwrap();
        let tue_1am = tz.with_ymd_and_hms(2019, 12, 24, 1, 0, 0).unwrap();
        assert!(nightlife_per_hour(&sat_1am, 1.0) > nightlife_per_hour(&tue_1am, 1.0));
        assert!(
            max_per_hour(1.0)
                >= district_per_hour(&sat_1am, 1.0) + nightlife_per_hour(&sat_1am, 1.0)
        );
    }
}
