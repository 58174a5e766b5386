//! Poisson CUSUM over hourly or daily bins (ANCHORS §5.4): the window tests judge each window
//! on its own, so a rise of 2–3× that no single window proves is missed; the CUSUM adds up
//! the log-likelihood ratio of "rate ρ·e" against "rate e" bin after bin and alarms when the
//! sum crosses a threshold.
//!
//! The chart is recomputed from a fixed look-back every time its series gets events, starting
//! from 0 at the first bin of the look-back. Its value, the start of its current excursion and
//! the moment it crossed each level are therefore functions of the events in the look-back
//! alone — not of when the detector started or how the ticks fell — which is what lets the
//! alert key (series, the local day of the episode's first alarm) survive replays and restarts.

use serde::{Deserialize, Serialize};

use crate::config::{DetectConfig, LevelGates};
use crate::key::{Level, SeriesKey, WindowLen};

/// One bin of the chart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bin {
    pub(crate) start: i64,
    /// Expected count from the hour-of-week profile.
    pub(crate) expected: f64,
    /// Events known only as a count (seeded history), present from the bin's start.
    pub(crate) base: u32,
    /// Times of the live events counted in the bin, ascending.
    pub(crate) times: Vec<i64>,
}

impl Bin {
    fn count(&self) -> u32 {
        self.base + self.times.len() as u32
    }
}

/// One excursion of the chart (from a bin where it left 0 to the bin where it returned to 0,
/// or to the last bin) that reached at least yellow.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Episode {
    /// Start of the excursion's first bin.
    pub(crate) span_start: i64,
    /// End of the last bin looked at.
    pub(crate) span_end: i64,
    /// When each level (yellow, orange, red) was first reached.
    pub(crate) reached: [Option<i64>; 3],
    /// Highest statistic over the excursion (natural-log likelihood ratio).
    pub(crate) max_stat: f64,
    /// Events and expectation over the excursion up to where it reached its highest level.
    pub(crate) observed: u32,
    pub(crate) expected: f64,
}

impl Episode {
    /// The highest level reached.
    pub(crate) fn level(&self) -> Option<Level> {
        [Level::Red, Level::Orange, Level::Yellow]
            .into_iter()
            .find(|l| self.reached[idx(*l)].is_some())
    }

    /// When the episode first alarmed (its key's day).
    pub(crate) fn first_alarm(&self) -> Option<i64> {
        self.reached[0]
    }

    /// When it reached `level`.
    pub(crate) fn reached_at(&self, level: Level) -> Option<i64> {
        self.reached[idx(level)]
    }
}

fn idx(l: Level) -> usize {
    match l {
        Level::Yellow => 0,
        Level::Orange => 1,
        Level::Red => 2,
    }
}

/// What an alert explains about the chart, in `BaselineInfo::cusum`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CusumInfo {
    /// Bin length: `1h` or `1d`.
    pub bin: WindowLen,
    /// Start of the excursion the alert belongs to.
    pub span_start: chrono::DateTime<chrono::FixedOffset>,
    /// End of the last bin counted.
    pub span_end: chrono::DateTime<chrono::FixedOffset>,
    /// Designed shift ρ.
    pub shift: f64,
    /// Yellow threshold h (natural-log likelihood ratio).
    pub threshold: f64,
    /// Highest value of the chart in the excursion.
    pub statistic: f64,
}

/// The rules of the series' area level: the yellow threshold h and the ratio floors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Thresholds {
    pub(crate) h: f64,
    pub(crate) gates: LevelGates,
}

impl Thresholds {
    pub(crate) fn of(key: &SeriesKey, cfg: &DetectConfig) -> Thresholds {
        Thresholds {
            h: cfg.cusum_threshold_for(key.area_level),
            gates: cfg.gates_for_series(key),
        }
    }
}

/// The level that `stat` with `observed`/`expected` over the excursion reaches: the chart's
/// thresholds plus the same minimum counts and ratio floors as the window tests.
pub(crate) fn level_at(
    stat: f64,
    observed: u32,
    expected: f64,
    th: Thresholds,
    cfg: &DetectConfig,
) -> Option<Level> {
    let x = f64::from(observed);
    let (min_observed, min_excess) = th.gates.min_counts(cfg);
    if observed < min_observed || x - expected < min_excess {
        return None;
    }
    let ratio = x / expected.max(1e-9);
    let h = th.h;
    [
        (Level::Red, h + (1e4_f64).ln()),
        (Level::Orange, h + (100.0_f64).ln()),
        (Level::Yellow, h),
    ]
    .into_iter()
    .find(|(l, t)| stat >= *t && ratio >= th.gates.gate(*l).min_ratio)
    .map(|(l, _)| l)
}

/// Runs the chart over `bins` (consecutive, ascending) from 0 and returns the excursions that
/// reached a level. Inside a bin the chart is checked after every event against the bin's
/// whole expectation — conservative (the rest of the bin can only add events) and it makes
/// the alarm time the time of an event.
pub(crate) fn run(
    bins: &[Bin],
    len: WindowLen,
    th: Thresholds,
    cfg: &DetectConfig,
) -> Vec<Episode> {
    let rho: f64 = cfg.cusum_shift;
    let (ln_rho, drift) = (rho.ln(), rho - 1.0);
    let mut out = Vec::new();
    let mut s = 0.0_f64;
    let mut cur: Option<Episode> = None;
    // Excursion totals so far (completed bins).
    let (mut obs, mut exp) = (0_u32, 0.0_f64);
    let mut exc_start = bins.first().map_or(0, |b| b.start);
    for b in bins {
        let before = s;
        if before <= 0.0 {
            obs = 0;
            exp = 0.0;
            exc_start = b.start;
        }
        let bin_exp = exp + b.expected;
        let sub = drift * b.expected;
        // The event-by-event checks: the seeded part at the bin's start, then each live event.
        let points = std::iter::once((b.base, b.start + len.seconds() - 1))
            .filter(|(n, _)| *n > 0)
            .chain(
                b.times
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (b.base + i as u32 + 1, *t)),
            );
        for (n, t) in points {
            let stat = before + f64::from(n) * ln_rho - sub;
            let Some(level) = level_at(stat, obs + n, bin_exp, th, cfg) else {
                continue;
            };
            let ep = cur.get_or_insert(Episode {
                span_start: exc_start,
                span_end: 0,
                reached: [None; 3],
                max_stat: 0.0,
                observed: 0,
                expected: 0.0,
            });
            for l in [Level::Yellow, Level::Orange, Level::Red] {
                if l <= level && ep.reached[idx(l)].is_none() {
                    ep.reached[idx(l)] = Some(t);
                }
            }
            if stat > ep.max_stat {
                ep.max_stat = stat;
                ep.observed = obs + n;
                ep.expected = bin_exp;
            }
        }
        s = (before + f64::from(b.count()) * ln_rho - sub).max(0.0);
        obs += b.count();
        exp = bin_exp;
        if let Some(ep) = cur.as_mut() {
            ep.span_end = b.start + len.seconds();
        }
        if s <= 0.0
            && let Some(ep) = cur.take()
        {
            out.push(ep);
        }
    }
    out.extend(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_709_481_600; // 2024-03-04T00:00:00+08:00

    /// Hourly bins with `expected` each and events spread evenly inside them.
    fn hourly(expected: f64, counts: &[u32]) -> Vec<Bin> {
        counts
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let start = T0 + i as i64 * 3600;
                Bin {
                    start,
                    expected,
                    base: 0,
                    times: (0..n)
                        .map(|j| start + 60 + i64::from(j) * 3000 / i64::from(n.max(1)))
                        .collect(),
                }
            })
            .collect()
    }

    fn town(c: &DetectConfig) -> Thresholds {
        Thresholds::of(
            &SeriesKey::category(crate::key::SeriesLevel::Town, "310112102", "FRAUD"),
            c,
        )
    }

    fn cfg() -> DetectConfig {
        DetectConfig {
            cusum_shift: 2.5,
            cusum_threshold: 6.0,
            ..DetectConfig::default()
        }
    }

    #[test]
    fn counts_at_the_expectation_never_alarm() {
        let bins = hourly(2.0, &[2, 3, 1, 2, 2, 4, 2, 1, 2, 3, 2, 2]);
        assert!(run(&bins, WindowLen::H1, town(&cfg()), &cfg()).is_empty());
    }

    #[test]
    fn a_sustained_rise_no_single_window_proves_alarms() {
        let c = cfg();
        // 2.5× for four hours: 5 against 2 per hour. One hour alone is P(X ≥ 5 | 2) ≈ 0.05.
        let bins = hourly(2.0, &[2, 1, 5, 5, 5, 5, 2]);
        let eps = run(&bins, WindowLen::H1, town(&c), &c);
        assert_eq!(eps.len(), 1, "{eps:?}");
        let ep = &eps[0];
        assert_eq!(ep.level(), Some(Level::Yellow));
        // The excursion starts with the rise, not before it.
        assert_eq!(ep.span_start, T0 + 2 * 3600);
        // It alarms at an event inside the rise, before its last hour ends.
        let at = ep.first_alarm().unwrap();
        assert!(bins[2..6].iter().any(|b| b.times.contains(&at)), "{at}");
        assert!(at < T0 + 6 * 3600);
        // The statistic is the log-likelihood ratio summed over the excursion.
        let rho: f64 = 2.5;
        let full = 20.0 * rho.ln() - 4.0 * 1.5 * 2.0;
        assert!(ep.max_stat <= full + 1e-9 && ep.max_stat > c.cusum_threshold);
    }

    #[test]
    fn no_level_below_the_minimum_counts() {
        // Four events where 0.01 is expected: an enormous likelihood ratio, but not 5 events.
        let bins = hourly(0.01, &[0, 4, 0]);
        let mut c = cfg();
        c.cusum_threshold = 1.0;
        assert!(run(&bins, WindowLen::H1, town(&c), &c).is_empty());
        let bins = hourly(0.01, &[0, 5, 0]);
        assert_eq!(run(&bins, WindowLen::H1, town(&c), &c).len(), 1);
        assert_eq!(level_at(100.0, 4, 0.01, town(&c), &c), None);
        assert_eq!(
            level_at(100.0, 5, 2.5, town(&c), &c),
            None,
            "excess below 3"
        );
    }

    #[test]
    fn a_quiet_stretch_ends_the_episode_and_the_past_before_it_does_not_matter() {
        let c = cfg();
        let tail = [2, 6, 6, 6, 2];
        let mut long = vec![2, 2, 8, 0, 0, 0, 0, 0];
        long.extend(tail);
        let a = run(&hourly(2.0, &long), WindowLen::H1, town(&c), &c);
        let b = run(&hourly(2.0, &tail), WindowLen::H1, town(&c), &c);
        // The chart returned to 0 in the quiet hours, so the look-back's start is irrelevant.
        let last = a.last().unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(last.reached[0].map(|t| t - 8 * 3600), b[0].reached[0]);
        assert_eq!(last.max_stat, b[0].max_stat);
    }

    #[test]
    fn more_events_never_lower_the_level_or_delay_the_alarm() {
        let c = cfg();
        let base = [1, 3, 4, 4, 3, 1];
        let mut prev: Option<(Option<Level>, Option<i64>)> = None;
        for extra in 0..6 {
            let mut counts = base.to_vec();
            counts[2] += extra;
            let eps = run(&hourly(1.5, &counts), WindowLen::H1, town(&c), &c);
            let level = eps.iter().filter_map(Episode::level).max();
            let first = eps.iter().filter_map(Episode::first_alarm).min();
            if let Some((pl, _)) = prev {
                assert!(level >= pl, "{extra}: {level:?} < {pl:?}");
            }
            prev = Some((level, first));
        }
        assert!(prev.unwrap().0.is_some());
    }

    #[test]
    fn seeded_counts_count_from_the_start_of_their_bin() {
        let c = cfg();
        let mut bins = hourly(0.2, &[0, 0]);
        bins[1].base = 9;
        let eps = run(&bins, WindowLen::H1, town(&c), &c);
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].first_alarm(), Some(T0 + 2 * 3600 - 1));
    }
}
