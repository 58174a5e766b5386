//! The detectors: Poisson and negative-binomial tails for sparse windows, EWMA and EARS C2 for
//! dense ones, and the mapping of their p-values to levels.
//!
//! Everything that depends on history is computed once per window ([`Frozen`]) when the
//! window is first evaluated; after that a window's assessment depends only on its own count.
//! That is what makes the level a monotone function of the count (adding events never lowers
//! it) and makes an early evaluation of an open window agree with the final one.

use serde::{Deserialize, Serialize};

use crate::baseline::{BaselineInfo, History, Profile};
use crate::config::{DetectConfig, LevelGates, MethodChoice};
use crate::key::{Level, WindowLen};
use crate::stats::{negbin_sf, normal_sf, poisson_sf};

/// The statistic behind an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Poisson upper tail against the seasonal expectation.
    Poisson,
    /// Negative-binomial (Gamma–Poisson predictive) upper tail.
    #[serde(rename = "negbin")]
    NegBin,
    /// EWMA of standardised residuals against the seasonal expectation.
    Ewma,
    /// EARS C2 on deseasonalised lagged windows.
    #[serde(rename = "ears_c2")]
    C2,
    /// Poisson CUSUM over hourly or daily bins; the score is the chart's log-likelihood ratio.
    Cusum,
}

impl Method {
    /// Wire code: `poisson`, `negbin`, `ewma`, `ears_c2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Poisson => "poisson",
            Method::NegBin => "negbin",
            Method::Ewma => "ewma",
            Method::C2 => "ears_c2",
            Method::Cusum => "cusum",
        }
    }
}

/// One EWMA weight's contribution from past windows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EwmaPast {
    weight: f64,
    /// Σ_{j≥1} w (1 − w)^j r_j over the past windows.
    z_past: f64,
    /// Variance of the full sum (current window included) under the null.
    var: f64,
}

/// What a window's assessment needs from history, computed once.
#[derive(Debug, Clone)]
pub(crate) struct Frozen {
    /// Expected count from the seasonal profile.
    pub(crate) expected: f64,
    pub(crate) weeks: u32,
    pub(crate) days: f64,
    pub(crate) rate: f64,
    pub(crate) phi: f64,
    /// Events behind the expectation (exposure of the Gamma–Poisson predictive).
    support: f64,
    ewma: Vec<EwmaPast>,
    /// EARS C2 lagged mean and (floored) sd, when enough lagged windows exist.
    c2: Option<(f64, f64)>,
    /// The window test of the series' level.
    method: MethodChoice,
    /// The gates of the series' level.
    pub(crate) gates: LevelGates,
}

impl Frozen {
    /// Heap bytes beyond the struct itself.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.ewma.capacity() * size_of::<EwmaPast>()
    }

    /// Freezes the window `[start, start + len)` of a series with `history`, using `profile`
    /// (the series' profile as of the window's day) to deseasonalise past windows.
    #[cfg(test)]
    pub(crate) fn build(
        history: &History,
        profile: &Profile,
        start: i64,
        len: WindowLen,
        coverage_start: i64,
        cfg: &DetectConfig,
    ) -> Frozen {
        Frozen::build_for(
            history,
            profile,
            start,
            len,
            coverage_start,
            cfg,
            cfg.method,
            cfg.levels_gates,
        )
    }

    /// `Frozen::build` for the window test of `choice` and the `gates` of the series' level.
    #[allow(clippy::too_many_arguments)] // the window, its series' history and its level's rules
    pub(crate) fn build_for(
        history: &History,
        profile: &Profile,
        start: i64,
        len: WindowLen,
        coverage_start: i64,
        cfg: &DetectConfig,
        choice: MethodChoice,
        gates: LevelGates,
    ) -> Frozen {
        let method = choice.window_method();
        let expected = profile.expected_floored(
            start,
            len,
            gates
                .expected_floor_per_hour
                .unwrap_or(cfg.expected_floor_per_hour),
        );
        let weeks = profile.weeks(start, len);
        // The profile's hour cells stand on (weeks + pseudo-weeks) observations of each hour;
        // a 15-minute window sees a quarter of an hour's events.
        let per_hour_scale = if len == WindowLen::M15 { 4.0 } else { 1.0 };
        let support = (expected * per_hour_scale * (f64::from(weeks) + cfg.shrink_weeks)).max(1e-6);
        let phi = profile.dispersion(start, len);
        let variance = |e: f64| (e * (1.0 + phi * e)).max(0.25);

        // Past windows (j = 1 is the previous one) that lie inside the covered history.
        let lag = |j: u32| -> Option<(f64, f64)> {
            let s = start - i64::from(j) * len.seconds();
            (s >= coverage_start).then(|| {
                (
                    history.sum(s, s + len.seconds()),
                    profile.expected(s, len, cfg),
                )
            })
        };

        let needs_ewma = matches!(method, MethodChoice::Ewma | MethodChoice::Auto);
        let needs_c2 = method == MethodChoice::C2;

        let mut ewma = Vec::new();
        if needs_ewma {
            let past: Vec<(f64, f64)> = (1..=cfg.ewma_lags).map_while(lag).collect();
            for &w in &cfg.ewma_weights {
                let mut z_past = 0.0;
                let mut var = w * w;
                let mut decay = 1.0;
                for (x, e) in &past {
                    decay *= 1.0 - w;
                    z_past += w * decay * (x - e) / variance(*e).sqrt();
                    var += (w * decay).powi(2);
                }
                ewma.push(EwmaPast {
                    weight: w,
                    z_past,
                    var,
                });
            }
        }

        let mut c2 = None;
        if needs_c2 {
            let from = cfg.c2_guard + 1;
            let ys: Vec<f64> = (from..from + cfg.c2_baseline)
                .map_while(lag)
                .map(|(x, e)| x * expected / e)
                .collect();
            if ys.len() >= 3 {
                let n = ys.len() as f64;
                let mean = ys.iter().sum::<f64>() / n;
                let sd = (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
                c2 = Some((mean, sd.max(cfg.c2_min_sigma)));
            }
        }

        Frozen {
            expected,
            weeks,
            days: profile.days,
            rate: profile.rate,
            phi,
            support,
            ewma,
            c2,
            method,
            gates,
        }
    }

    /// The baseline part of an alert.
    pub(crate) fn info(&self, method: Method) -> BaselineInfo {
        let (lagged_mean, lagged_sd) = match (method, self.c2) {
            (Method::C2, Some((m, s))) => (Some(m), Some(s)),
            _ => (None, None),
        };
        BaselineInfo {
            kind: if self.weeks > 0 {
                "hour_of_week"
            } else {
                "smoothed_rate"
            }
            .to_owned(),
            weeks: self.weeks,
            history_days: self.days,
            rate_per_hour: self.rate,
            dispersion: self.phi,
            profile_expected: self.expected,
            lagged_mean,
            lagged_sd,
            cusum: None,
        }
    }
}

/// The verdict on one window at one count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Assessment {
    pub(crate) method: Method,
    /// The expected count the method compares against.
    pub(crate) expected: f64,
    pub(crate) p_value: f64,
    pub(crate) level: Option<Level>,
}

impl Assessment {
    /// `−log10 p`, the alert's score (comparable across methods).
    pub(crate) fn score(&self) -> f64 {
        -self.p_value.max(1e-300).log10()
    }
}

/// Judges `count` events against a frozen window.
pub(crate) fn assess(frozen: &Frozen, count: u32, cfg: &DetectConfig) -> Assessment {
    if frozen.method == MethodChoice::Auto {
        // Sparse windows: the negative binomial alone (a normal approximation would be wrong
        // there). Dense ones: also the EWMA, which accumulates a rise over several windows,
        // and the smaller p-value decides (doubled with `dense_bonferroni`).
        let nb = assess_with(Method::NegBin, frozen, count, cfg);
        let dense = frozen.expected >= cfg.dense_min_expected
            && frozen.weeks >= 4
            && !frozen.ewma.is_empty();
        if !dense {
            return nb;
        }
        let ewma = assess_with(Method::Ewma, frozen, count, cfg);
        let mut best = if ewma.p_value < nb.p_value { ewma } else { nb };
        if cfg.dense_bonferroni {
            // Two tests of one window: the smaller p-value of two is about twice as likely to
            // fall under a gate as either alone.
            best.p_value = (2.0 * best.p_value).min(1.0);
            best.level = level_of(count, best.expected, best.p_value, &frozen.gates, cfg);
        }
        return best;
    }
    let method = match frozen.method {
        MethodChoice::Auto | MethodChoice::Cusum | MethodChoice::AutoCusum => Method::NegBin,
        MethodChoice::Poisson => Method::Poisson,
        MethodChoice::NegBin => Method::NegBin,
        MethodChoice::Ewma => Method::Ewma,
        MethodChoice::C2 => Method::C2,
    };
    assess_with(method, frozen, count, cfg)
}

/// Judges `count` with one method.
fn assess_with(method: Method, frozen: &Frozen, count: u32, cfg: &DetectConfig) -> Assessment {
    let e = frozen.expected;
    let x = f64::from(count);
    let (expected, p_value) = match method {
        Method::Poisson => (e, poisson_sf(count, e)),
        Method::NegBin => {
            let size = 1.0 / (frozen.phi + 1.0 / frozen.support);
            (e, negbin_sf(count, e, size))
        }
        Method::Ewma => {
            let r0 = (x - e) / (e * (1.0 + frozen.phi * e)).max(0.25).sqrt();
            let p = frozen
                .ewma
                .iter()
                .map(|w| normal_sf((w.weight * r0 + w.z_past) / w.var.sqrt()))
                .fold(1.0_f64, f64::min);
            (e, p)
        }
        Method::C2 => {
            let (mean, sd) = frozen.c2.unwrap_or((e, e.sqrt().max(1.0)));
            (mean, normal_sf((x - mean) / sd))
        }
        // Not a window test; a window never asks for it.
        Method::Cusum => (e, poisson_sf(count, e)),
    };
    let level = level_of(count, expected, p_value, &frozen.gates, cfg);
    Assessment {
        method,
        expected,
        p_value,
        level,
    }
}

/// The highest level whose gates `count` passes, after the minimum-count gates.
pub(crate) fn level_of(
    count: u32,
    expected: f64,
    p_value: f64,
    gates: &LevelGates,
    cfg: &DetectConfig,
) -> Option<Level> {
    let x = f64::from(count);
    let (min_observed, min_excess) = gates.min_counts(cfg);
    if count < min_observed || x - expected < min_excess {
        return None;
    }
    let ratio = x / expected.max(1e-9);
    [Level::Red, Level::Orange, Level::Yellow]
        .into_iter()
        .find(|l| {
            let g = gates.gate(*l);
            p_value <= g.max_p && ratio >= g.min_ratio
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MONDAY: i64 = 1_709_481_600; // 2024-03-04T00:00:00+08:00

    /// A series with a steady `per_hour` rate for eight weeks before MONDAY.
    fn steady(per_hour: f32) -> (History, Profile, i64) {
        let mut h = History::default();
        let start = MONDAY - 8 * 7 * 86_400;
        // Through Monday too: the lagged windows of EWMA and C2 look at the day itself.
        for hour in 0..8 * 168 + 24 {
            h.add(start + hour * 3600, per_hour);
        }
        let p = Profile::build(&h, MONDAY, start, &DetectConfig::default());
        (h, p, start)
    }

    fn cfg(method: MethodChoice) -> DetectConfig {
        DetectConfig {
            method,
            ..DetectConfig::default()
        }
    }

    #[test]
    fn poisson_uses_the_profile_expectation() {
        let c = cfg(MethodChoice::Poisson);
        let (h, p, cov) = steady(2.0);
        let f = Frozen::build(&h, &p, MONDAY + 10 * 3600, WindowLen::H1, cov, &c);
        assert!((f.expected - 2.0).abs() < 1e-6);
        let a = assess(&f, 10, &c);
        assert_eq!(a.method, Method::Poisson);
        assert!((a.p_value - poisson_sf(10, 2.0)).abs() < 1e-12);
        assert!(a.p_value < 1e-4 && a.level == Some(Level::Yellow), "{a:?}");
        assert_eq!(assess(&f, 4, &c).level, None, "below min_observed");
        assert_eq!(assess(&f, 2, &c).level, None);
    }

    #[test]
    fn negative_binomial_is_more_cautious_than_poisson() {
        let (h, p, cov) = steady(0.5);
        let c = cfg(MethodChoice::NegBin);
        let f = Frozen::build(&h, &p, MONDAY + 10 * 3600, WindowLen::H1, cov, &c);
        let nb = assess(&f, 6, &c);
        let po = poisson_sf(6, f.expected);
        assert_eq!(nb.method, Method::NegBin);
        assert!(
            nb.p_value > po && nb.p_value < 10.0 * po,
            "{} vs {po}",
            nb.p_value
        );
    }

    #[test]
    fn ewma_carries_a_sustained_rise_and_flags_a_jump() {
        let c = cfg(MethodChoice::Ewma);
        let (mut h, p, cov) = steady(10.0);
        let start = MONDAY + 10 * 3600;
        let quiet = Frozen::build(&h, &p, start, WindowLen::H1, cov, &c);
        let at_expected = assess(&quiet, 10, &c);
        assert!((at_expected.p_value - 0.5).abs() < 0.01, "{at_expected:?}");
        // With quiet past windows the sudden weight (0.9) decides:
        // z = w r0 / sqrt(w² Σ_{j=0..=8} (1 - w)^{2j}).
        let jump = assess(&quiet, 30, &c);
        let r0 = 20.0 / 10.0_f64.sqrt();
        let var: f64 = (0..=8).map(|j| (0.9 * 0.1_f64.powi(j)).powi(2)).sum();
        assert!(
            (jump.p_value - normal_sf(0.9 * r0 / var.sqrt())).abs() < 1e-12,
            "{jump:?}"
        );
        // A rise over the previous three hours makes the same count more significant.
        for j in 1..=3 {
            h.add(start - j * 3600, 8.0);
        }
        let rising = Frozen::build(&h, &p, start, WindowLen::H1, cov, &c);
        assert!(assess(&rising, 20, &c).p_value < assess(&quiet, 20, &c).p_value);
    }

    #[test]
    fn c2_uses_mean_and_sd_of_lagged_windows() {
        let c = cfg(MethodChoice::C2);
        let (mut h, p, cov) = steady(10.0);
        let start = MONDAY + 12 * 3600;
        // Lagged windows 3..=9 back: 10 plus 0,1,…,6 → mean 13, sd √(28/6) < minSigma? no: 2.16.
        for j in 3..=9_i64 {
            h.add(start - j * 3600, (j - 3) as f32);
        }
        let f = Frozen::build(&h, &p, start, WindowLen::H1, cov, &c);
        let a = assess(&f, 25, &c);
        assert_eq!(a.method, Method::C2);
        assert!((a.expected - 13.0).abs() < 1e-6, "{a:?}");
        let sd = (28.0_f64 / 6.0).sqrt();
        assert!((a.p_value - normal_sf(12.0 / sd)).abs() < 1e-9);
        // The minSigma floor: identical lagged windows have sd 0 → sd = 1.
        let (h2, p2, cov2) = steady(10.0);
        let flat = Frozen::build(&h2, &p2, start, WindowLen::H1, cov2, &c);
        assert!((assess(&flat, 13, &c).p_value - normal_sf(3.0)).abs() < 1e-9);
    }

    #[test]
    fn auto_switches_on_density() {
        let c = cfg(MethodChoice::Auto);
        let (h, p, cov) = steady(30.0);
        let dense = Frozen::build(&h, &p, MONDAY, WindowLen::H1, cov, &c);
        // Dense: the smaller of the EWMA and negative-binomial p-values, doubled for the two
        // tests (`dense_bonferroni`, on by default) or as it is.
        let a = assess(&dense, 60, &c);
        let nb = assess_with(Method::NegBin, &dense, 60, &c);
        let ew = assess_with(Method::Ewma, &dense, 60, &c);
        assert!(c.dense_bonferroni);
        assert_eq!(a.p_value, (2.0 * nb.p_value.min(ew.p_value)).min(1.0));
        let plain = DetectConfig {
            dense_bonferroni: false,
            ..c.clone()
        };
        assert_eq!(
            assess(&dense, 60, &plain).p_value,
            nb.p_value.min(ew.p_value)
        );
        // The level is judged on the doubled p-value.
        assert_eq!(
            a.level,
            level_of(60, a.expected, a.p_value, &dense.gates, &c)
        );
        let sparse = Frozen::build(&h, &p, MONDAY, WindowLen::M15, cov, &c);
        assert_eq!(assess(&sparse, 10, &c).method, Method::NegBin);
    }

    #[test]
    fn levels_need_both_p_value_and_ratio() {
        let c = DetectConfig::default();
        assert_eq!(
            level_of(5, 0.1, 1e-12, &c.levels_gates, &c),
            Some(Level::Red)
        );
        assert_eq!(
            level_of(5, 2.2, 1e-12, &c.levels_gates, &c),
            None,
            "excess below 3"
        );
        assert_eq!(
            level_of(30, 15.0, 1e-7, &c.levels_gates, &c),
            Some(Level::Orange)
        );
        assert_eq!(
            level_of(30, 15.0, 1e-9, &c.levels_gates, &c),
            Some(Level::Orange),
            "ratio 2 < 3 caps at orange"
        );
        assert_eq!(
            level_of(20, 15.0, 1e-9, &c.levels_gates, &c),
            None,
            "ratio 1.33 < 1.5"
        );
        assert_eq!(
            level_of(4, 0.01, 1e-20, &c.levels_gates, &c),
            None,
            "below min_observed"
        );
    }
}
