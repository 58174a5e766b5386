//! Detector configuration: the raw serde form with documented defaults, checked by
//! [`DetectConfig::validate`].
//!
//! The defaults were picked with `examples/evaluate/`; the README explains each choice and
//! shows the table they came from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::DetectError;
use crate::key::{Level, SeriesKey, SeriesLevel, WindowLen};

/// Which statistic decides whether a window is a spike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodChoice {
    /// Negative-binomial predictive tail everywhere; for dense windows (the switch is
    /// [`DetectConfig::dense_min_expected`]) also the EWMA, and the smaller p-value decides
    /// (doubled first when [`DetectConfig::dense_bonferroni`] is on).
    Auto,
    /// Poisson upper tail `P(X ≥ observed | expected)` everywhere.
    Poisson,
    /// Negative-binomial upper tail with the series' dispersion and the baseline's own
    /// uncertainty (the Gamma–Poisson predictive) everywhere.
    NegBin,
    /// ESSENCE-style EWMA of Pearson residuals against the seasonal baseline everywhere.
    Ewma,
    /// EARS C2 on deseasonalised counts (mean/sd of windows 3–9 back) everywhere.
    C2,
    /// Poisson CUSUM on hourly (dense series) or daily (sparse series) bins against the
    /// hour-of-week expectation, *instead of* the window tests: evidence accumulates across
    /// bins, so a 2–3× rise that no single window proves is still caught. See
    /// [`DetectConfig::cusum_shift`].
    Cusum,
    /// `auto`'s window tests plus the CUSUM.
    AutoCusum,
}

impl MethodChoice {
    /// Whether fixed windows are tested.
    pub fn tests_windows(self) -> bool {
        self != MethodChoice::Cusum
    }

    /// Whether the CUSUM runs.
    pub fn runs_cusum(self) -> bool {
        matches!(self, MethodChoice::Cusum | MethodChoice::AutoCusum)
    }

    /// The window test behind this choice (`auto` for the CUSUM combinations).
    pub(crate) fn window_method(self) -> MethodChoice {
        match self {
            MethodChoice::Cusum | MethodChoice::AutoCusum => MethodChoice::Auto,
            other => other,
        }
    }
}

/// The gates for one alert level: the p-value must be at most `max_p` and observed/expected
/// at least `min_ratio`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelGate {
    /// Largest p-value that still reaches this level.
    pub max_p: f64,
    /// Smallest observed/expected ratio that reaches this level.
    pub min_ratio: f64,
}

/// Gates for yellow, orange and red; a window takes the highest level whose gate it passes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelGates {
    /// 三级.
    #[serde(default = "default_yellow")]
    pub yellow: LevelGate,
    /// 二级.
    #[serde(default = "default_orange")]
    pub orange: LevelGate,
    /// 一级.
    #[serde(default = "default_red")]
    pub red: LevelGate,
    /// Replaces the global `min_observed` for these series (none: the global one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_observed: Option<u32>,
    /// Replaces the global `min_excess` for these series (none: the global one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_excess: Option<f64>,
    /// Replaces the global `expected_floor_per_hour` in these series' window tests (none: the
    /// global one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_floor_per_hour: Option<f64>,
    /// Toward the minimum count, a call counts only if it came at least this many minutes
    /// after the previous one that counted (none: every call counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_gap_minutes: Option<u32>,
}

impl LevelGates {
    /// The gate of `level`.
    pub fn gate(&self, level: Level) -> LevelGate {
        match level {
            Level::Yellow => self.yellow,
            Level::Orange => self.orange,
            Level::Red => self.red,
        }
    }

    /// The minimum counts `(observed, excess)` these gates apply.
    pub fn min_counts(&self, cfg: &DetectConfig) -> (u32, f64) {
        (
            self.min_observed.unwrap_or(cfg.min_observed),
            self.min_excess.unwrap_or(cfg.min_excess),
        )
    }
}

impl Default for LevelGates {
    fn default() -> Self {
        LevelGates {
            yellow: default_yellow(),
            orange: default_orange(),
            red: default_red(),
            min_observed: None,
            min_excess: None,
            expected_floor_per_hour: None,
            min_gap_minutes: None,
        }
    }
}

fn default_yellow() -> LevelGate {
    LevelGate {
        max_p: 1e-4,
        min_ratio: 1.5,
    }
}
fn default_orange() -> LevelGate {
    LevelGate {
        max_p: 1e-6,
        min_ratio: 2.0,
    }
}
fn default_red() -> LevelGate {
    LevelGate {
        max_p: 1e-8,
        min_ratio: 3.0,
    }
}

/// Everything tunable about detection (`[aggregator.alerts.detect]`; every field optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Window lengths evaluated for every series, unless `windows_by_level` lists its level.
    #[serde(default = "default_windows")]
    pub windows: Vec<WindowLen>,
    /// Window lengths for particular area levels, replacing `windows` there. Every extra
    /// window is another test per series, so the long and hopping ones are kept where the
    /// spikes they catch live: 3-day windows on compounds (a burglary series), 1–4 h windows
    /// on declared hot spots (a night on a bar street, an afternoon on a scenic street), and
    /// only short windows on the overlapping H3 disks (a night-time burst on a street).
    #[serde(default = "default_windows_by_level")]
    pub windows_by_level: BTreeMap<SeriesLevel, Vec<WindowLen>>,
    /// Area levels kept as series.
    #[serde(default = "default_levels")]
    pub levels: Vec<SeriesLevel>,
    /// Keep a series per area × category.
    #[serde(default = "yes")]
    pub per_category: bool,
    /// Keep a series per area × subtype.
    #[serde(default = "yes")]
    pub per_subtype: bool,
    /// Which statistic decides, unless `methods_by_level` names the level.
    #[serde(default = "default_method")]
    pub method: MethodChoice,
    /// Method per area level, replacing `method` there.
    #[serde(default = "default_methods_by_level")]
    pub methods_by_level: BTreeMap<SeriesLevel, MethodChoice>,
    /// CUSUM: the rate multiple ρ the chart is designed to detect. The per-bin increment is
    /// the Poisson log-likelihood ratio of ρ·e against e, `x ln ρ − (ρ − 1) e`, so the
    /// reference value is k = (ρ − 1)/ln ρ times the expectation.
    #[serde(default = "default_cusum_shift")]
    pub cusum_shift: f64,
    /// CUSUM decision threshold h for yellow, in natural-log likelihood-ratio units; orange
    /// and red need h + ln 100 and h + ln 10⁴ (the factor 100 between the window p-gates).
    #[serde(default = "default_cusum_threshold")]
    pub cusum_threshold: f64,
    /// CUSUM threshold h for particular area levels, replacing `cusum_threshold` there.
    #[serde(default = "default_cusum_threshold_by_level")]
    pub cusum_threshold_by_level: BTreeMap<SeriesLevel, f64>,
    /// Series whose flat rate is at least this many events per hour get hourly bins; sparser
    /// ones daily bins, where subtracting k·e hour by hour would forget an event before the
    /// next one arrives.
    #[serde(default = "default_cusum_hourly_min_rate")]
    pub cusum_hourly_min_rate: f64,
    /// Hourly bins looked back over (the chart restarts from 0 there, so its value is a
    /// function of the events in this span only: the same after a replay or a restart).
    #[serde(default = "default_cusum_lookback_hours")]
    pub cusum_lookback_hours: u32,
    /// Daily bins looked back over.
    #[serde(default = "default_cusum_lookback_days")]
    pub cusum_lookback_days: u32,
    /// Trailing weeks of the hour-of-week baseline.
    #[serde(default = "default_baseline_weeks")]
    pub baseline_weeks: u32,
    /// Pseudo-weeks with which an hour-of-week cell is shrunk towards the series' smoothed
    /// hour-of-day rate (sparse cells lean on the smoother rate, dense ones on themselves).
    #[serde(default = "default_shrink_weeks")]
    pub shrink_weeks: f64,
    /// Pseudo-days with which the hour-of-day rate is shrunk towards the flat overall rate.
    #[serde(default = "default_shrink_days")]
    pub shrink_days: f64,
    /// Floor of the expected count per hour of window, so a series never seen before does not
    /// get an expectation of zero.
    #[serde(default = "default_expected_floor")]
    pub expected_floor_per_hour: f64,
    /// No alerts from a series whose baseline covers fewer days than this (cold start).
    #[serde(default = "default_min_history_days")]
    pub min_history_days: f64,
    /// Windows whose expected count is at least this are "dense" (the `auto` switch).
    #[serde(default = "default_dense_min_expected")]
    pub dense_min_expected: f64,
    /// `auto` on a dense window takes the smaller of two p-values (negative binomial, EWMA);
    /// with this on it doubles it first (Bonferroni), so testing a window twice does not make
    /// it twice as likely to page.
    #[serde(default = "yes")]
    pub dense_bonferroni: bool,
    /// Never alert with fewer (effective) events than this in the window.
    #[serde(default = "default_min_observed")]
    pub min_observed: u32,
    /// Never alert unless observed − expected is at least this.
    #[serde(default = "default_min_excess")]
    pub min_excess: f64,
    /// p-value and ratio gates per level.
    #[serde(default)]
    pub levels_gates: LevelGates,
    /// Gates for particular area levels, replacing `levels_gates` there (the minimum counts
    /// stay). The declared hot spots get a looser p-value gate: a dozen pre-declared places
    /// watched prospectively need far less protection against multiple testing than the
    /// ~10⁵ scanned series (README, Evaluation).
    #[serde(default = "default_gates_by_level")]
    pub gates_by_level: BTreeMap<SeriesLevel, LevelGates>,
    /// Smaller minimum counts for one subtype's own series at some area levels. Default:
    /// `CRIM_BURGLARY` on compounds pages from 2 burglaries at least an hour apart and from
    /// different reporters (excess ≥ 1.5, yellow p ≤ 3e-3). Each burglary call
    /// is a different household's loss, not bystanders phoning about one scene, and a second
    /// burglary in the same compound within days is the near-repeat pattern police act on
    /// (the risk to neighbours is raised for days after a break-in). The ratio gates are
    /// unchanged, and the category series (all of `CRIM`) keep the global minimum (README,
    /// Evaluation).
    #[serde(default = "default_min_counts_by_subtype")]
    pub min_counts_by_subtype: BTreeMap<String, SubtypeMinCounts>,
    /// EWMA smoothing weights; the smallest p-value over the weights is used (ESSENCE uses
    /// 0.4 for gradual and 0.9 for sudden events).
    #[serde(default = "default_ewma_weights")]
    pub ewma_weights: Vec<f64>,
    /// Past windows folded into the EWMA.
    #[serde(default = "default_ewma_lags")]
    pub ewma_lags: u32,
    /// EARS C2 guard band: windows skipped between the baseline and the current window.
    #[serde(default = "default_c2_guard")]
    pub c2_guard: u32,
    /// EARS C2 baseline length in windows.
    #[serde(default = "default_c2_baseline")]
    pub c2_baseline: u32,
    /// EARS C2 floor of the baseline standard deviation (Burkom's minSigma).
    #[serde(default = "default_c2_min_sigma")]
    pub c2_min_sigma: f64,
    /// After an alert, further *new* alerts of the same family (town × category) at the same
    /// or a lower level are suppressed for this long; escalations always pass.
    #[serde(default = "default_cooldown_minutes")]
    pub cooldown_minutes: u32,
    /// Hold back a longer window of a series around a shorter one of the same series that
    /// already alerted at the same or a higher level (suppression `nested`): the same cluster
    /// seen at a coarser scale. Off: every window pages on its own.
    #[serde(default = "yes")]
    pub hold_nested_windows: bool,
    /// Compounds or cells of one town spiking for the same category in the same window become
    /// one town alert once there are this many (0 disables grouping).
    #[serde(default = "default_group_min_members")]
    pub group_min_members: u32,
    /// Events counted per reporter (doorplate or caller) per window; more are not counted, so
    /// one person calling again and again cannot make a spike.
    #[serde(default = "default_max_per_reporter")]
    pub max_per_reporter: u32,
    /// A call of a scene subtype within this many minutes of a counted call of the same
    /// subtype in the same neighbourhood (`DetectArea::link_cells`) is the same incident phoned
    /// in by someone else: it is not counted again. 0 turns linking off. The classifier's own
    /// repeat rule links only the same phone or doorplate (DOMAIN: `OTH_DUPLICATE`); bystanders
    /// calling about one fight, accident or fire from their own phones are what this catches.
    #[serde(default = "default_link_minutes")]
    pub link_minutes: u32,
    /// Categories or subtypes where every call is a different victim (fraud, theft): never
    /// linked, however close the calls are. Burglary is not among them: a break-in is a
    /// scene — the victim, a neighbour and the property manager phone within minutes — while a
    /// series is different households on different nights.
    #[serde(default = "default_victim_reported")]
    pub victim_reported: Vec<String>,
    /// How long a window keeps accepting late events after it ends.
    #[serde(default = "default_allowed_lateness_minutes")]
    pub allowed_lateness_minutes: u32,
    /// Contributing subtypes and keywords listed per alert.
    #[serde(default = "default_top_n")]
    pub top_n: usize,
}

fn yes() -> bool {
    true
}
fn default_windows() -> Vec<WindowLen> {
    vec![
        WindowLen::M15,
        WindowLen::H1,
        WindowLen::H2,
        WindowLen::D1,
        WindowLen::D7,
    ]
}
fn default_windows_by_level() -> BTreeMap<SeriesLevel, Vec<WindowLen>> {
    BTreeMap::from([
        (
            SeriesLevel::Compound,
            vec![
                WindowLen::M15,
                WindowLen::H1,
                WindowLen::H2,
                WindowLen::D1,
                WindowLen::D3,
                WindowLen::D7,
            ],
        ),
        (SeriesLevel::Ring, vec![WindowLen::H1, WindowLen::H2]),
        // 4 h on hot spots: a tourist surge of one call an hour all afternoon never gathers
        // five calls in 2 h, but does in 4 (README, Evaluation).
        (
            SeriesLevel::Poi,
            vec![WindowLen::H1, WindowLen::H2, WindowLen::H4],
        ),
    ])
}
fn default_levels() -> Vec<SeriesLevel> {
    SeriesLevel::ALL.to_vec()
}
fn default_method() -> MethodChoice {
    MethodChoice::Auto
}
fn default_methods_by_level() -> BTreeMap<SeriesLevel, MethodChoice> {
    // The disks are where a short burst on a street shows; per-window tests there cost the
    // most false alerts (7 disks per event), and the CUSUM both pages less and catches more
    // drunk-fight nights eventually (README, Evaluation).
    BTreeMap::from([(SeriesLevel::Ring, MethodChoice::Cusum)])
}
/// Minimum counts of one subtype's series at some area levels (`min_counts_by_subtype`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubtypeMinCounts {
    /// Never alert with fewer (effective) events than this in the window.
    pub min_observed: u32,
    /// Never alert unless observed − expected is at least this.
    pub min_excess: f64,
    /// Floor of the expected count per hour for these series (none: the global
    /// `expected_floor_per_hour`). The global floor, 0.01/h, is 88 a year: far above what one
    /// compound sees of one crime, and it alone would keep three burglaries in a day from
    /// being significant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_floor_per_hour: Option<f64>,
    /// Calls count toward `min_observed` only when at least this many minutes apart and from
    /// a reporter not counted yet: a series happens to different households, while neighbours
    /// phoning about one break-in within minutes, or the victim phoning again, are one
    /// burglary (`victim_reported` subtypes are never linked as one scene).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_gap_minutes: Option<u32>,
    /// Replaces the yellow p-value gate of these series (none: the level's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yellow_max_p: Option<f64>,
    /// The area levels where it applies.
    pub levels: Vec<SeriesLevel>,
}

fn default_min_counts_by_subtype() -> BTreeMap<String, SubtypeMinCounts> {
    BTreeMap::from([(
        "CRIM_BURGLARY".to_owned(),
        SubtypeMinCounts {
            min_observed: 2,
            min_excess: 1.5,
            // About 4 a year, an average compound's burglaries in the evaluation's city: a
            // compound without history is priced like an average one, not as if it never had
            // a burglary.
            expected_floor_per_hour: Some(0.0005),
            min_gap_minutes: Some(60),
            // A single family declared in advance (one subtype on ~550 compounds), not a scan
            // over ~10⁵ series: it needs less multiple-testing protection, as the hot spots
            // do. 3e-3 lets two burglaries on consecutive nights page from the 3-day window.
            yellow_max_p: Some(3e-3),
            // Compounds only: the cell around a compound would page a second time for the same
            // two burglaries.
            levels: vec![SeriesLevel::Compound],
        },
    )])
}
fn default_gates_by_level() -> BTreeMap<SeriesLevel, LevelGates> {
    BTreeMap::from([(SeriesLevel::Poi, poi_gates())])
}
/// The hot spots' gates: yellow 300× and orange 100× looser than elsewhere, red unchanged (a
/// red page should mean the same everywhere); the ratio floors are the common ones. Yellow at
/// 3e-2 (1e-2 before issue 22) is what pages a weeknight's drunk fights before midnight; the
/// false alerts it adds are paid for by `dense_bonferroni` (README, Evaluation).
fn poi_gates() -> LevelGates {
    LevelGates {
        yellow: LevelGate {
            max_p: POI_YELLOW_P,
            ..default_yellow()
        },
        orange: LevelGate {
            max_p: POI_ORANGE_P,
            ..default_orange()
        },
        ..LevelGates::default()
    }
}
const POI_YELLOW_P: f64 = 3e-2;
const POI_ORANGE_P: f64 = 1e-4;
fn default_cusum_threshold_by_level() -> BTreeMap<SeriesLevel, f64> {
    BTreeMap::new()
}
fn default_cusum_shift() -> f64 {
    2.5
}
fn default_cusum_threshold() -> f64 {
    9.0
}
fn default_cusum_hourly_min_rate() -> f64 {
    0.1
}
fn default_cusum_lookback_hours() -> u32 {
    48
}
fn default_cusum_lookback_days() -> u32 {
    7
}
fn default_baseline_weeks() -> u32 {
    8
}
fn default_shrink_weeks() -> f64 {
    2.0
}
fn default_shrink_days() -> f64 {
    7.0
}
fn default_expected_floor() -> f64 {
    0.01
}
fn default_min_history_days() -> f64 {
    7.0
}
fn default_dense_min_expected() -> f64 {
    5.0
}
fn default_min_observed() -> u32 {
    5
}
fn default_min_excess() -> f64 {
    3.0
}
fn default_ewma_weights() -> Vec<f64> {
    vec![0.4, 0.9]
}
fn default_ewma_lags() -> u32 {
    8
}
fn default_c2_guard() -> u32 {
    2
}
fn default_c2_baseline() -> u32 {
    7
}
fn default_c2_min_sigma() -> f64 {
    1.0
}
fn default_cooldown_minutes() -> u32 {
    180
}
fn default_group_min_members() -> u32 {
    2
}
fn default_max_per_reporter() -> u32 {
    2
}
fn default_link_minutes() -> u32 {
    15
}
fn default_victim_reported() -> Vec<String> {
    [
        "FRAUD",
        "CRIM_PICKPOCKET",
        "CRIM_THEFT_FROM_VEHICLE",
        "CRIM_CYCLE_THEFT",
        "CRIM_THEFT_OTHER",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}
fn default_allowed_lateness_minutes() -> u32 {
    60
}
fn default_top_n() -> usize {
    3
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            windows: default_windows(),
            windows_by_level: default_windows_by_level(),
            levels: default_levels(),
            per_category: true,
            per_subtype: true,
            method: default_method(),
            methods_by_level: default_methods_by_level(),
            cusum_shift: default_cusum_shift(),
            cusum_threshold: default_cusum_threshold(),
            cusum_threshold_by_level: default_cusum_threshold_by_level(),
            cusum_hourly_min_rate: default_cusum_hourly_min_rate(),
            cusum_lookback_hours: default_cusum_lookback_hours(),
            cusum_lookback_days: default_cusum_lookback_days(),
            baseline_weeks: default_baseline_weeks(),
            shrink_weeks: default_shrink_weeks(),
            shrink_days: default_shrink_days(),
            expected_floor_per_hour: default_expected_floor(),
            min_history_days: default_min_history_days(),
            dense_min_expected: default_dense_min_expected(),
            dense_bonferroni: true,
            min_observed: default_min_observed(),
            min_excess: default_min_excess(),
            levels_gates: LevelGates::default(),
            gates_by_level: default_gates_by_level(),
            min_counts_by_subtype: default_min_counts_by_subtype(),
            ewma_weights: default_ewma_weights(),
            ewma_lags: default_ewma_lags(),
            c2_guard: default_c2_guard(),
            c2_baseline: default_c2_baseline(),
            c2_min_sigma: default_c2_min_sigma(),
            cooldown_minutes: default_cooldown_minutes(),
            hold_nested_windows: true,
            group_min_members: default_group_min_members(),
            max_per_reporter: default_max_per_reporter(),
            link_minutes: default_link_minutes(),
            victim_reported: default_victim_reported(),
            allowed_lateness_minutes: default_allowed_lateness_minutes(),
            top_n: default_top_n(),
        }
    }
}

impl DetectConfig {
    /// The windows of series at `level`.
    pub fn windows_for(&self, level: SeriesLevel) -> &[WindowLen] {
        self.windows_by_level.get(&level).unwrap_or(&self.windows)
    }

    /// The method at `level`.
    pub fn method_for(&self, level: SeriesLevel) -> MethodChoice {
        self.methods_by_level
            .get(&level)
            .copied()
            .unwrap_or(self.method)
    }

    /// The gates at `level`.
    pub fn gates_for(&self, level: SeriesLevel) -> &LevelGates {
        self.gates_by_level
            .get(&level)
            .unwrap_or(&self.levels_gates)
    }

    /// The gates of one series: its level's, with the minimum counts of its subtype where
    /// `min_counts_by_subtype` names it for that level.
    pub fn gates_for_series(&self, key: &SeriesKey) -> LevelGates {
        let mut g = *self.gates_for(key.area_level);
        if let Some(m) = key
            .subtype
            .as_deref()
            .and_then(|s| self.min_counts_by_subtype.get(s))
            .filter(|m| m.levels.contains(&key.area_level))
        {
            g.min_observed = Some(m.min_observed);
            g.min_excess = Some(m.min_excess);
            g.expected_floor_per_hour = m.expected_floor_per_hour.or(g.expected_floor_per_hour);
            g.min_gap_minutes = m.min_gap_minutes.or(g.min_gap_minutes);
            if let Some(p) = m.yellow_max_p {
                g.yellow.max_p = p;
            }
        }
        g
    }

    /// The CUSUM threshold h at `level`.
    pub fn cusum_threshold_for(&self, level: SeriesLevel) -> f64 {
        self.cusum_threshold_by_level
            .get(&level)
            .copied()
            .unwrap_or(self.cusum_threshold)
    }

    /// Whether any configured level runs the CUSUM.
    pub fn any_cusum(&self) -> bool {
        self.levels.iter().any(|l| self.method_for(*l).runs_cusum())
    }

    /// Every window length used at any configured level.
    pub fn all_windows(&self) -> Vec<WindowLen> {
        let mut all: Vec<WindowLen> = self
            .levels
            .iter()
            .flat_map(|l| self.windows_for(*l).iter().copied())
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Checks every constraint and reports all violations at once.
    pub fn validate(&self) -> Result<(), DetectError> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, msg: &str| {
            if !ok {
                problems.push(msg.to_owned());
            }
        };
        check(!self.windows.is_empty(), "windows must not be empty");
        check(
            self.windows_by_level.values().all(|w| !w.is_empty()),
            "windows_by_level entries must not be empty",
        );
        check(!self.levels.is_empty(), "levels must not be empty");
        check(
            self.per_category || self.per_subtype,
            "per_category or per_subtype must be on",
        );
        check(
            (1..=26).contains(&self.baseline_weeks),
            "baseline_weeks must be 1..=26",
        );
        check(
            self.shrink_weeks.is_finite() && self.shrink_weeks > 0.0,
            "shrink_weeks must be > 0",
        );
        check(
            self.shrink_days.is_finite() && self.shrink_days > 0.0,
            "shrink_days must be > 0",
        );
        check(
            self.expected_floor_per_hour.is_finite() && self.expected_floor_per_hour > 0.0,
            "expected_floor_per_hour must be > 0",
        );
        check(
            self.min_history_days.is_finite() && self.min_history_days >= 0.0,
            "min_history_days must be >= 0",
        );
        check(
            self.dense_min_expected.is_finite() && self.dense_min_expected > 0.0,
            "dense_min_expected must be > 0",
        );
        check(self.min_observed >= 1, "min_observed must be >= 1");
        check(
            self.min_excess.is_finite() && self.min_excess >= 0.0,
            "min_excess must be >= 0",
        );
        for (sub, m) in &self.min_counts_by_subtype {
            check(
                m.min_observed >= 1,
                &format!("min_counts_by_subtype.{sub}.min_observed must be >= 1"),
            );
            check(
                m.min_excess.is_finite() && m.min_excess >= 0.0,
                &format!("min_counts_by_subtype.{sub}.min_excess must be >= 0"),
            );
            check(
                m.expected_floor_per_hour
                    .is_none_or(|f| f.is_finite() && f > 0.0),
                &format!("min_counts_by_subtype.{sub}.expected_floor_per_hour must be > 0"),
            );
            check(
                m.yellow_max_p.is_none_or(|p| p > 0.0 && p <= 1.0),
                &format!("min_counts_by_subtype.{sub}.yellow_max_p must be in (0, 1]"),
            );
            check(
                !m.levels.is_empty(),
                &format!("min_counts_by_subtype.{sub}.levels must not be empty"),
            );
        }
        let all_gates = std::iter::once(("levels_gates".to_owned(), &self.levels_gates)).chain(
            self.gates_by_level
                .iter()
                .map(|(l, g)| (format!("gates_by_level.{l}"), g)),
        );
        for (what, g) in all_gates {
            check(
                g.min_observed.is_none_or(|m| m >= 1),
                &format!("{what}.min_observed must be >= 1"),
            );
            check(
                g.min_excess.is_none_or(|m| m.is_finite() && m >= 0.0),
                &format!("{what}.min_excess must be >= 0"),
            );
            check(
                g.expected_floor_per_hour
                    .is_none_or(|f| f.is_finite() && f > 0.0),
                &format!("{what}.expected_floor_per_hour must be > 0"),
            );
            for (name, gate) in [("yellow", g.yellow), ("orange", g.orange), ("red", g.red)] {
                check(
                    gate.max_p > 0.0 && gate.max_p < 1.0,
                    &format!("{what}.{name}.max_p must be in (0, 1)"),
                );
                check(
                    gate.min_ratio.is_finite() && gate.min_ratio >= 1.0,
                    &format!("{what}.{name}.min_ratio must be >= 1"),
                );
            }
            check(
                g.yellow.max_p >= g.orange.max_p && g.orange.max_p >= g.red.max_p,
                &format!("{what}: p-value gates must tighten from yellow to red"),
            );
            check(
                g.yellow.min_ratio <= g.orange.min_ratio && g.orange.min_ratio <= g.red.min_ratio,
                &format!("{what}: ratio gates must rise from yellow to red"),
            );
        }
        check(
            !self.ewma_weights.is_empty()
                && self.ewma_weights.iter().all(|w| *w > 0.0 && *w <= 1.0),
            "ewma_weights must be non-empty and each in (0, 1]",
        );
        check(
            (1..=64).contains(&self.ewma_lags),
            "ewma_lags must be 1..=64",
        );
        check(
            (2..=28).contains(&self.c2_baseline),
            "c2_baseline must be 2..=28",
        );
        check(self.c2_guard <= 14, "c2_guard must be <= 14");
        check(
            self.c2_min_sigma.is_finite() && self.c2_min_sigma > 0.0,
            "c2_min_sigma must be > 0",
        );
        check(
            self.group_min_members != 1,
            "group_min_members must be 0 (off) or >= 2",
        );
        check(
            self.cusum_shift.is_finite() && self.cusum_shift > 1.0,
            "cusum_shift must be > 1",
        );
        check(
            self.cusum_threshold.is_finite() && self.cusum_threshold > 0.0,
            "cusum_threshold must be > 0",
        );
        check(
            self.cusum_threshold_by_level
                .values()
                .all(|h| h.is_finite() && *h > 0.0),
            "cusum_threshold_by_level entries must be > 0",
        );
        check(
            self.cusum_hourly_min_rate.is_finite() && self.cusum_hourly_min_rate >= 0.0,
            "cusum_hourly_min_rate must be >= 0",
        );
        check(
            (2..=24 * 14).contains(&self.cusum_lookback_hours),
            "cusum_lookback_hours must be 2..=336",
        );
        check(
            (2..=28).contains(&self.cusum_lookback_days),
            "cusum_lookback_days must be 2..=28",
        );
        check(self.max_per_reporter >= 1, "max_per_reporter must be >= 1");
        check(self.top_n <= 20, "top_n must be <= 20");
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DetectError::Config(problems))
        }
    }

    /// Seconds of history the detector must keep (and the aggregator must seed): the baseline
    /// weeks plus the look-back of EWMA and C2 on the longest window, plus a day of slack.
    pub fn history_seconds(&self) -> i64 {
        let longest = self
            .all_windows()
            .iter()
            .map(|w| w.seconds())
            .max()
            .unwrap_or(86_400);
        let lookback = i64::from(self.ewma_lags.max(self.c2_guard + self.c2_baseline)) * longest;
        (i64::from(self.baseline_weeks) * 7 * 86_400).max(lookback) + 2 * 86_400
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = DetectConfig::default();
        c.validate().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        let back: DetectConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(c, back);
        let empty: DetectConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, c);
    }

    #[test]
    fn validation_reports_every_problem() {
        let c = DetectConfig {
            windows: vec![],
            min_observed: 0,
            group_min_members: 1,
            ..DetectConfig::default()
        };
        match c.validate() {
            Err(DetectError::Config(p)) => assert_eq!(p.len(), 3, "{p:?}"),
            other => panic!("{other:?}"),
        }
        assert!(serde_json::from_str::<DetectConfig>(r#"{"nope": 1}"#).is_err());
    }

    #[test]
    fn hot_spots_have_their_own_checked_gates() {
        let c = DetectConfig::default();
        let poi = c.gates_for(SeriesLevel::Poi);
        assert!(poi.yellow.max_p > c.levels_gates.yellow.max_p);
        assert_eq!(poi.red, c.levels_gates.red);
        assert_eq!(c.gates_for(SeriesLevel::Ring), &c.levels_gates);
        assert_eq!(c.cusum_threshold_for(SeriesLevel::Poi), c.cusum_threshold);
        let json = r#"{"gates_by_level": {"poi": {"yellow": {"max_p": 1e-7, "min_ratio": 1.5}}},
                      "cusum_threshold_by_level": {"poi": 0.0}}"#;
        let bad: DetectConfig = serde_json::from_str(json).unwrap();
        match bad.validate() {
            Err(DetectError::Config(p)) => {
                assert_eq!(p.len(), 2, "{p:?}");
                assert!(p[0].starts_with("gates_by_level.poi"), "{p:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn subtype_minimums_apply_only_to_their_subtype_at_their_levels() {
        let c = DetectConfig::default();
        let burglary = |level| SeriesKey {
            area_level: level,
            area_code: "X".into(),
            category: "CRIM".into(),
            subtype: Some("CRIM_BURGLARY".into()),
        };
        let g = c.gates_for_series(&burglary(SeriesLevel::Compound));
        assert_eq!(g.min_counts(&c), (2, 1.5));
        assert_eq!(g.min_gap_minutes, Some(60));
        assert_eq!(g.expected_floor_per_hour, Some(0.0005));
        assert_eq!(g.yellow.max_p, 3e-3);
        // The looser yellow gate is the rule's only; the compound's other series keep 1e-4.
        let theft = SeriesKey {
            subtype: Some("CRIM_CYCLE_THEFT".into()),
            ..burglary(SeriesLevel::Compound)
        };
        assert_eq!(c.gates_for_series(&theft).yellow.max_p, 1e-4);
        // Other levels, and the category series, keep the global minimum.
        for level in [SeriesLevel::Town, SeriesLevel::Cell] {
            let g = c.gates_for_series(&burglary(level));
            assert_eq!((g.min_counts(&c), g.yellow.max_p), ((5, 3.0), 1e-4));
        }
        let crim = SeriesKey::category(SeriesLevel::Compound, "X", "CRIM");
        assert_eq!(c.gates_for_series(&crim).min_counts(&c), (5, 3.0));

        let json = r#"{"min_counts_by_subtype": {"CRIM_BURGLARY":
                        {"min_observed": 0, "min_excess": -1, "yellow_max_p": 2,
                         "levels": []}}}"#;
        let bad: DetectConfig = serde_json::from_str(json).unwrap();
        match bad.validate() {
            Err(DetectError::Config(p)) => assert_eq!(p.len(), 4, "{p:?}"),
            other => panic!("{other:?}"),
        }
    }
}
