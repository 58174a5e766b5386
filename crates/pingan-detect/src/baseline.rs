//! Seasonal baselines: per-series count history and the hour-of-week profile built from it.
//!
//! The expected count of a window is the sum, over the hours it covers, of an hour-of-week
//! estimate built from the same hour in each of the trailing weeks. Three levels of smoothing
//! keep sparse series honest:
//!
//! 1. flat rate: all events in the trailing weeks / hours covered;
//! 2. hour-of-day rate: the events at that local hour over all trailing days, shrunk towards
//!    the flat rate with `shrink_days` pseudo-days;
//! 3. hour-of-week cell: the same hour in each trailing week, shrunk towards (2) with
//!    `shrink_weeks` pseudo-weeks. Dense cells (mean ≥ 3 over ≥ 5 weeks) drop their highest
//!    and lowest week first, so one past spike does not inflate the baseline.
//!
//! A profile is computed once per series and local day, from history strictly before that
//! day: a spike building up today can never raise its own expectation, and the expected count
//! of a window is a function of history only (the same after a replay).

use serde::{Deserialize, Serialize};

use crate::config::DetectConfig;
use crate::key::{WindowLen, hour_of_day, hour_of_week};

/// Seconds per history bucket: 15 minutes, the shortest window.
pub(crate) const BUCKET_SECS: i64 = 900;

/// Count history of one series, in 15-minute buckets (fractional because seeded hourly counts
/// are spread evenly over their four quarters).
///
/// A vector sorted by bucket rather than a `BTreeMap`: events arrive nearly in time order, so
/// adding is almost always a push or a bump of the last bucket, and 8 bytes a bucket instead of
/// the tree's ~24 made history the second-largest part of the detector's memory instead of the
/// largest.
#[derive(Debug, Default, Clone)]
pub(crate) struct History {
    buckets: Vec<(u32, f32)>,
}

/// The bucket of unix second `t` (times before 1970 share bucket 0; none occur).
fn bucket(t: i64) -> u32 {
    u32::try_from(t.div_euclid(BUCKET_SECS).max(0)).unwrap_or(u32::MAX)
}

impl History {
    /// Adds `n` events at unix second `t`.
    pub(crate) fn add(&mut self, t: i64, n: f32) {
        let b = bucket(t);
        match self.buckets.last_mut() {
            Some(last) if last.0 == b => last.1 += n,
            Some(last) if last.0 > b => {
                let pos = self.buckets.partition_point(|e| e.0 < b);
                match self.buckets.get_mut(pos) {
                    Some(e) if e.0 == b => e.1 += n,
                    _ => self.buckets.insert(pos, (b, n)),
                }
            }
            _ => self.buckets.push((b, n)),
        }
    }

    /// The buckets in `[from, to)` (unix seconds, bucket-aligned) as (bucket index, count).
    pub(crate) fn range(&self, from: i64, to: i64) -> impl Iterator<Item = (i64, f32)> + '_ {
        let (lo, hi) = (bucket(from), bucket(to));
        let a = self.buckets.partition_point(|e| e.0 < lo);
        let b = self.buckets.partition_point(|e| e.0 < hi).max(a);
        self.buckets[a..b].iter().map(|&(k, c)| (i64::from(k), c))
    }

    /// Events in `[from, to)` (unix seconds, bucket-aligned).
    pub(crate) fn sum(&self, from: i64, to: i64) -> f64 {
        if to <= from {
            return 0.0;
        }
        self.range(from, to).map(|(_, c)| f64::from(c)).sum()
    }

    /// Forgets buckets before `t`.
    pub(crate) fn prune_before(&mut self, t: i64) {
        let cut = bucket(t);
        let n = self.buckets.partition_point(|e| e.0 < cut);
        if n > 0 {
            self.buckets.drain(..n);
            // Growth by doubling leaves up to half a vector unused; history is most of the
            // memory, and this runs once a day per series.
            if self.buckets.capacity() > self.buckets.len() * 5 / 4 + 4 {
                self.buckets.shrink_to_fit();
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Bytes held (for the memory census).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<(u32, f32)>()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// The hour-of-week profile of one series as of the start of one local day.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    /// Days of history behind the profile.
    pub(crate) days: f64,
    /// Flat rate per hour.
    pub(crate) rate: f64,
    /// Expected events per hour, by local hour of week.
    pub(crate) slots: [f32; 168],
    /// The hour the profile's day starts and the first hour of history (the trailing weeks
    /// behind each slot follow from them: not stored, a sixth of a profile's size).
    day_h: i64,
    cov_h: i64,
    /// `baseline_weeks` when built.
    k: u8,
    /// Method-of-moments overdispersion `φ` (variance = μ + φ μ²) of the weekly values.
    pub(crate) phi: f64,
}

impl Profile {
    /// Builds the profile of `history` for the local day starting at `day_start`, using only
    /// history in `[max(coverage_start, day_start − weeks), day_start)`.
    pub(crate) fn build(
        history: &History,
        day_start: i64,
        coverage_start: i64,
        cfg: &DetectConfig,
    ) -> Profile {
        let k = cfg.baseline_weeks as usize;
        let day_h = day_start.div_euclid(3600);
        let cov_h = coverage_start.div_euclid(3600);
        let from_h = (day_h - 168 * k as i64).max(cov_h).min(day_h);
        let days = ((day_h - from_h).max(0) as f64) / 24.0;

        // cells[slot * k + b]: count at `slot` in the b-th week back (b = 0 is last week).
        let mut cells = vec![0.0_f64; 168 * k];
        let mut hod = [0.0_f64; 24];
        let mut total = 0.0;
        for (bucket, c) in history.range(from_h * 3600, day_h * 3600) {
            let h = bucket.div_euclid(4);
            let b = ((day_h - 1 - h) / 168) as usize;
            let c = f64::from(c);
            if b < k {
                cells[hour_of_week(h) * k + b] += c;
            }
            hod[hour_of_day(h)] += c;
            total += c;
        }
        let rate = if days > 0.0 {
            total / (days * 24.0)
        } else {
            0.0
        };
        let hod_rate: Vec<f64> = hod
            .iter()
            .map(|s| {
                if days > 0.0 {
                    (s + cfg.shrink_days * rate) / (days + cfg.shrink_days)
                } else {
                    0.0
                }
            })
            .collect();

        let mut slots = [0.0_f32; 168];
        let (mut phi_num, mut phi_den) = (0.0, 0.0);
        for s in 0..168 {
            let (t0, n) = trailing(day_h, cov_h, k, s);
            let vals = &cells[s * k..s * k + n];
            let sum: f64 = vals.iter().sum();
            let nf = n as f64;
            let robust_sum = if n >= 5 && sum / nf >= 3.0 {
                let (lo, hi) = vals
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                        (lo.min(*v), hi.max(*v))
                    });
                (sum - lo - hi) * nf / (nf - 2.0)
            } else {
                sum
            };
            let prior = hod_rate[hour_of_day(t0)];
            slots[s] = ((robust_sum + cfg.shrink_weeks * prior) / (nf + cfg.shrink_weeks)) as f32;
            // Dispersion from the weekly values without the highest one: a past spike is
            // exactly what the next alert should stand out from, not extra noise to allow for.
            if n >= 5 && sum > 0.0 {
                let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let m_n = nf - 1.0;
                let m = (sum - hi) / m_n;
                let mut skipped = false;
                let ss: f64 = vals
                    .iter()
                    .filter(|v| {
                        let skip = !skipped && **v == hi;
                        skipped |= skip;
                        !skip
                    })
                    .map(|v| (v - m) * (v - m))
                    .sum();
                phi_num += ss - (m_n - 1.0) * m;
                phi_den += (m_n - 1.0) * m * m;
            }
        }
        let phi = if phi_den > 0.0 {
            (phi_num / phi_den).max(0.0)
        } else {
            0.0
        };
        Profile {
            days,
            rate,
            slots,
            day_h,
            cov_h,
            k: u8::try_from(k).unwrap_or(u8::MAX),
            phi,
        }
    }

    /// Expected events in the window `[start, start + len)`, never below the configured floor.
    pub(crate) fn expected(&self, start: i64, len: WindowLen, cfg: &DetectConfig) -> f64 {
        self.expected_floored(start, len, cfg.expected_floor_per_hour)
    }

    /// [`Profile::expected`] with its own floor per hour.
    pub(crate) fn expected_floored(&self, start: i64, len: WindowLen, floor_per_hour: f64) -> f64 {
        let hours = len.seconds() as f64 / 3600.0;
        let floor = floor_per_hour * hours;
        let e = match len {
            WindowLen::M15 => f64::from(self.slots[hour_of_week(start.div_euclid(3600))]) * 0.25,
            _ => {
                let h0 = start.div_euclid(3600);
                (h0..h0 + len.seconds() / 3600)
                    .map(|h| f64::from(self.slots[hour_of_week(h)]))
                    .sum()
            }
        };
        e.max(floor)
    }

    /// Overdispersion of a whole window: hours vary independently, so the hourly `φ` shrinks
    /// by `Σ μ_h² / (Σ μ_h)²` over the hours covered (a day of similar hours: `φ / 24`). A
    /// 15-minute window shares its hour's `φ`.
    pub(crate) fn dispersion(&self, start: i64, len: WindowLen) -> f64 {
        if len == WindowLen::M15 || self.phi == 0.0 {
            return self.phi;
        }
        let h0 = start.div_euclid(3600);
        let (mut s, mut s2) = (0.0, 0.0);
        for h in h0..h0 + len.seconds() / 3600 {
            let m = f64::from(self.slots[hour_of_week(h)]);
            s += m;
            s2 += m * m;
        }
        if s > 0.0 {
            self.phi * s2 / (s * s)
        } else {
            self.phi
        }
    }

    /// Fewest trailing weeks behind any hour the window covers.
    pub(crate) fn weeks(&self, start: i64, len: WindowLen) -> u32 {
        let h0 = start.div_euclid(3600);
        let n = (len.seconds() / 3600).max(1);
        (h0..h0 + n)
            .map(|h| {
                trailing(self.day_h, self.cov_h, usize::from(self.k), hour_of_week(h)).1 as u32
            })
            .min()
            .unwrap_or(0)
    }
}

/// For hour-of-week `slot`: the latest hour before the day starting at hour `day_h` with that
/// slot, and how many whole weeks back from it (at most `k`) lie at or after hour `cov_h`.
fn trailing(day_h: i64, cov_h: i64, k: usize, slot: usize) -> (i64, usize) {
    let last_slot = hour_of_week(day_h - 1);
    let t0 = day_h - 1 - ((last_slot + 168 - slot) % 168) as i64;
    let n = if t0 >= cov_h {
        (((t0 - cov_h) / 168 + 1) as usize).min(k)
    } else {
        0
    };
    (t0, n)
}

/// How the expected count of an alert's window was obtained; part of every alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineInfo {
    /// `hour_of_week` when the profile had trailing weeks, else `smoothed_rate` (short history).
    pub kind: String,
    /// Trailing weeks of the same hours behind the expectation.
    pub weeks: u32,
    /// Days of history behind the profile.
    pub history_days: f64,
    /// The series' flat rate per hour over that history.
    pub rate_per_hour: f64,
    /// Overdispersion φ (variance = μ + φ μ²) estimated from the weekly values.
    pub dispersion: f64,
    /// Expected count from the hour-of-week profile (the `expected` of the alert unless the
    /// method uses its own, as EARS C2 does).
    pub profile_expected: f64,
    /// For EARS C2: mean and standard deviation of the lagged baseline windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lagged_mean: Option<f64>,
    /// For EARS C2: the standard deviation used (after the minSigma floor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lagged_sd: Option<f64>,
    /// For the CUSUM: its bins, excursion and statistic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cusum: Option<crate::cusum::CusumInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MONDAY: i64 = 1_709_481_600; // 2024-03-04T00:00:00+08:00

    fn cfg() -> DetectConfig {
        DetectConfig::default()
    }

    #[test]
    fn history_sums_by_bucket_range() {
        let mut h = History::default();
        h.add(MONDAY + 10, 1.0);
        h.add(MONDAY + 899, 1.0);
        h.add(MONDAY + 900, 1.0);
        assert_eq!(h.sum(MONDAY, MONDAY + 900), 2.0);
        assert_eq!(h.sum(MONDAY, MONDAY + 3600), 3.0);
        h.prune_before(MONDAY + 900);
        assert_eq!(h.sum(MONDAY, MONDAY + 3600), 1.0);
    }

    proptest::proptest! {
        /// Late and seeded events arrive out of order: every range sum still equals a plain
        /// count of the events in it, before and after pruning.
        #[test]
        fn history_in_any_order_sums_like_a_plain_count(
            offsets in proptest::collection::vec(0_i64..20 * 900, 0..60),
            from in 0_i64..20,
            len in 0_i64..20,
            cut in 0_i64..20,
        ) {
            let mut h = History::default();
            for o in &offsets {
                h.add(MONDAY + o, 1.0);
            }
            let count = |lo: i64, hi: i64, floor: i64| {
                offsets
                    .iter()
                    .filter(|o| **o >= lo * 900 && **o < hi * 900 && **o >= floor * 900)
                    .count() as f64
            };
            let (lo, hi) = (from, from + len);
            proptest::prop_assert_eq!(h.sum(MONDAY + lo * 900, MONDAY + hi * 900), count(lo, hi, 0));
            h.prune_before(MONDAY + cut * 900);
            proptest::prop_assert_eq!(h.sum(MONDAY + lo * 900, MONDAY + hi * 900), count(lo, hi, cut));
            proptest::prop_assert!(h.buckets.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }

    #[test]
    fn profile_follows_the_hour_of_week() {
        // Eight weeks with 4 events every Monday 10:00 and 1 every other hour.
        let mut h = History::default();
        let start = MONDAY - 8 * 7 * 86_400;
        for hour in 0..8 * 168 {
            let t = start + hour * 3600;
            let n = if hour % 168 == 10 { 4.0 } else { 1.0 };
            h.add(t, n);
        }
        let p = Profile::build(&h, MONDAY, start, &cfg());
        assert_eq!(p.weeks(MONDAY + 10 * 3600, WindowLen::H1), 8);
        assert!((p.days - 56.0).abs() < 1e-9);
        // Shrinkage pulls the cell a little towards the hour-of-day rate (≈ 1.43) but it stays
        // near 4; other cells sit at 1.
        let e10 = p.expected(MONDAY + 10 * 3600, WindowLen::H1, &cfg());
        assert!(e10 > 3.4 && e10 < 4.0, "{e10}");
        let e11 = p.expected(MONDAY + 11 * 3600, WindowLen::H1, &cfg());
        assert!((e11 - 1.0).abs() < 0.01, "{e11}");
        let q = p.expected(MONDAY + 10 * 3600 + 900, WindowLen::M15, &cfg());
        assert!((q - e10 / 4.0).abs() < 1e-9);
        let day = p.expected(MONDAY, WindowLen::D1, &cfg());
        assert!(day > 26.0 && day < 27.0, "{day}");
        assert!(p.phi < 0.05);
    }

    #[test]
    fn short_history_falls_back_to_the_smoothed_rate() {
        let mut h = History::default();
        let start = MONDAY - 3 * 86_400;
        for hour in 0..72 {
            h.add(start + hour * 3600, 2.0);
        }
        let p = Profile::build(&h, MONDAY, start, &cfg());
        assert_eq!(p.weeks(MONDAY, WindowLen::H1), 0);
        assert!((p.rate - 2.0).abs() < 1e-9);
        let e = p.expected(MONDAY, WindowLen::H1, &cfg());
        assert!((e - 2.0).abs() < 1e-6, "{e}");
    }

    #[test]
    fn no_history_gives_the_floor() {
        let p = Profile::build(&History::default(), MONDAY, MONDAY, &cfg());
        assert_eq!(p.days, 0.0);
        assert!((p.expected(MONDAY, WindowLen::H1, &cfg()) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn one_past_spike_does_not_inflate_a_dense_cell() {
        let mut h = History::default();
        let start = MONDAY - 8 * 7 * 86_400;
        for w in 0..8 {
            let n = if w == 3 { 40.0 } else { 5.0 };
            h.add(start + w * 7 * 86_400 + 10 * 3600, n);
        }
        let p = Profile::build(&h, MONDAY, start, &cfg());
        let e = p.expected(MONDAY + 10 * 3600, WindowLen::H1, &cfg());
        assert!(e < 6.0, "trimmed: {e}");
    }
}
