//! Alert records and the book of alerts already emitted.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::baseline::BaselineInfo;
use crate::error::DetectError;
use crate::key::{AlertKey, Level, SeriesKey, SeriesLevel, WindowLen};
use crate::method::Method;

/// A code with a count: a contributing subtype or keyword.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// Subtype code or keyword.
    pub code: String,
    /// Events in the window carrying it.
    pub count: u32,
}

/// A compound or cell folded into a town alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMember {
    /// `compound` or `h3_r8`.
    pub area_level: SeriesLevel,
    /// Compound id or cell.
    pub area_code: String,
    /// Its (effective) count in the window.
    pub observed: u32,
    /// Its expected count.
    pub expected: f64,
    /// Its own level.
    pub level: Level,
}

/// One alert, as published on `pingan.alerts.v1` and stored in the ClickHouse `alerts` table
/// (one row per `alert_key`; an escalation or a grown group rewrites it with a higher
/// `version`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Deterministic id: hash of `alert_key` ([`AlertKey::id`]).
    pub id: String,
    /// Canonical key ([`AlertKey::canonical`]).
    pub alert_key: String,
    /// Area level.
    pub area_level: SeriesLevel,
    /// Area code.
    pub area_code: String,
    /// Town the area belongs to (for compounds and cells: the town of their events); the
    /// family used for cooldown.
    pub town_code: Option<String>,
    /// Category code.
    pub category: String,
    /// Subtype code; `None` when the alert is per category.
    pub subtype: Option<String>,
    /// Window length.
    pub window: WindowLen,
    /// Window start (Asia/Shanghai).
    pub window_start: DateTime<FixedOffset>,
    /// Window end, exclusive.
    pub window_end: DateTime<FixedOffset>,
    /// Events counted in the window (repeat calls excluded, at most `max_per_reporter` per
    /// reporter).
    pub observed: u32,
    /// Events before the per-reporter cap.
    pub raw_count: u32,
    /// Expected count the method compared against.
    pub expected: f64,
    /// Where the expectation came from.
    pub baseline: BaselineInfo,
    /// The statistic that fired.
    pub method: Method,
    /// `−log10(p_value)`.
    pub score: f64,
    /// Tail probability of a count at least this large under the baseline.
    pub p_value: f64,
    /// Level.
    pub level: Level,
    /// Most frequent subtypes in the window (category alerts only).
    pub top_subtypes: Vec<Count>,
    /// Most frequent keywords in the window.
    pub top_keywords: Vec<Count>,
    /// For a town alert that groups spiking compounds or cells: them.
    pub members: Vec<GroupMember>,
    /// Event time of the event that first made the window alert (never the wall clock).
    pub created_at: DateTime<FixedOffset>,
    /// Event time of the event behind this version (escalation or a new group member).
    pub updated_at: DateTime<FixedOffset>,
    /// 1 for the first emission, +1 for every escalation or group growth.
    pub version: u64,
}

impl AlertRecord {
    /// The record's key, rebuilt from its fields.
    pub fn key(&self) -> Result<AlertKey, DetectError> {
        let series = SeriesKey {
            area_level: self.area_level,
            area_code: self.area_code.clone(),
            category: self.category.clone(),
            subtype: self.subtype.clone(),
        };
        AlertKey::new(series, self.window, self.window_start)
    }

    /// The `contributors Array(String)` column: `subtype:CODE=n`, `keyword:WORD=n` and
    /// `compound:ID` / `h3_r8:CELL` for group members.
    pub fn contributors(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        out.extend(
            self.members
                .iter()
                .map(|m| format!("{}:{}", m.area_level, m.area_code)),
        );
        out.extend(
            self.top_subtypes
                .iter()
                .map(|c| format!("subtype:{}={}", c.code, c.count)),
        );
        out.extend(
            self.top_keywords
                .iter()
                .map(|c| format!("keyword:{}={}", c.code, c.count)),
        );
        out
    }

    /// One line for people: what was seen, against what, by which method.
    pub fn summary(&self) -> String {
        let what = self.subtype.as_deref().unwrap_or(&self.category);
        let b = &self.baseline;
        let baseline = match (b.lagged_mean, b.lagged_sd) {
            (Some(m), Some(s)) => format!("lagged windows mean {m:.1} sd {s:.1}"),
            _ if b.weeks > 0 => format!("same hours over {} trailing weeks", b.weeks),
            _ => format!("smoothed rate over {:.1} days", b.history_days),
        };
        let mut s = format!(
            "{} {} {} {} {}: {} observed vs {:.1} expected ({}), {} p={:.2e}",
            self.level,
            self.area_level,
            self.area_code,
            what,
            self.window,
            self.observed,
            self.expected,
            baseline,
            self.method.as_str(),
            self.p_value
        );
        if !self.members.is_empty() {
            let m: Vec<&str> = self.members.iter().map(|m| m.area_code.as_str()).collect();
            s.push_str(&format!("; spiking: {}", m.join(", ")));
        }
        s
    }
}

/// Why a would-be alert was not emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// Another alert of the same town × category at the same or a higher level fired less than
    /// `cooldown_minutes` earlier.
    Cooldown,
    /// The window alerts only when one reporter's events are counted without the cap.
    SingleReporter,
    /// The series' baseline covers fewer than `min_history_days`.
    InsufficientHistory,
    /// A shorter window of the same series, lying inside this one, already alerted at the same
    /// or a higher level: the longer window sees the same cluster at a coarser scale (two
    /// burglaries paged today are not news again in the 3-day and the weekly window).
    Nested,
}

impl SuppressionReason {
    /// Wire code, as serialised: `cooldown`, `single_reporter`, `insufficient_history`,
    /// `nested` (the `reason` label of `pingan_alerts_suppressed_total`).
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::Cooldown => "cooldown",
            SuppressionReason::SingleReporter => "single_reporter",
            SuppressionReason::InsufficientHistory => "insufficient_history",
            SuppressionReason::Nested => "nested",
        }
    }
}

/// A would-be alert that noise control held back (for metrics and the audit log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppression {
    /// Canonical key of the window.
    pub alert_key: String,
    /// The level it would have had.
    pub level: Level,
    /// Why not.
    pub reason: SuppressionReason,
    /// Event time at which it would have fired.
    pub at: DateTime<FixedOffset>,
}

/// Book entry of one emitted key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BookEntry {
    pub(crate) level: Level,
    pub(crate) version: u64,
    pub(crate) created_at: i64,
    pub(crate) window_end: i64,
}

/// Key of a group: the compounds (or cells) of one town spiking for one category in one
/// window.
pub(crate) type GroupKey = (String, String, SeriesLevel, WindowLen, i64);

/// The alerts already emitted: per key the level and version, per family the recent alerts
/// (for cooldown) and per group its members.
///
/// The aggregator persists every emitted [`AlertRecord`]; after a restart it replays them into
/// [`AlertBook::restore`], so a replay of the events finds every key already at its level and
/// emits nothing twice.
#[derive(Debug, Clone, Default)]
pub struct AlertBook {
    pub(crate) entries: HashMap<AlertKey, BookEntry>,
    /// (family, category) → (created_at, level) of emitted new keys.
    pub(crate) families: HashMap<(String, String), Vec<(i64, Level)>>,
    pub(crate) groups: HashMap<GroupKey, BTreeMap<String, Level>>,
}

impl AlertBook {
    /// An empty book.
    pub fn new() -> AlertBook {
        AlertBook::default()
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Level and version recorded for `key`.
    pub fn get(&self, key: &AlertKey) -> Option<(Level, u64)> {
        self.entries.get(key).map(|e| (e.level, e.version))
    }

    /// Takes a persisted record back in (idempotent; the highest version wins).
    pub fn restore(&mut self, rec: &AlertRecord) -> Result<(), DetectError> {
        let key = rec.key()?;
        let created = rec.created_at.timestamp();
        let newer = self
            .entries
            .get(&key)
            .is_none_or(|e| e.version < rec.version);
        if newer {
            let first = !self.entries.contains_key(&key);
            self.entries.insert(
                key.clone(),
                BookEntry {
                    level: rec.level,
                    version: rec.version,
                    created_at: created,
                    window_end: key.window_end(),
                },
            );
            if first && rec.members.is_empty() {
                self.families
                    .entry(family(&key.series, rec.town_code.as_deref()))
                    .or_default()
                    .push((created, rec.level));
            }
        }
        if let Some(town) = rec.town_code.as_deref() {
            if rec.area_level.is_groupable() {
                self.add_member(town, &key, rec.area_level, &rec.area_code, rec.level);
            }
            for m in &rec.members {
                self.add_member(town, &key, m.area_level, &m.area_code, m.level);
            }
        }
        Ok(())
    }

    pub(crate) fn add_member(
        &mut self,
        town: &str,
        key: &AlertKey,
        level: SeriesLevel,
        code: &str,
        lvl: Level,
    ) {
        let g = (
            town.to_owned(),
            key.series.category.clone(),
            level,
            key.window,
            key.window_start,
        );
        let e = self
            .groups
            .entry(g)
            .or_default()
            .entry(code.to_owned())
            .or_insert(lvl);
        *e = (*e).max(lvl);
    }

    /// Whether a new alert of `level` at `at` falls in the cooldown of its family.
    pub(crate) fn in_cooldown(
        &self,
        fam: &(String, String),
        at: i64,
        level: Level,
        cooldown: i64,
    ) -> bool {
        self.families.get(fam).is_some_and(|v| {
            v.iter()
                .any(|(t, l)| *t <= at && at < t + cooldown && *l >= level)
        })
    }

    /// Whether a shorter window of `key`'s series inside `key`'s window alerted at `level` or
    /// higher.
    pub(crate) fn nested_alerted(&self, key: &AlertKey, level: Level) -> bool {
        let end = key.window_end();
        self.entries.iter().any(|(k, e)| {
            e.level >= level
                && k.window.seconds() < key.window.seconds()
                && k.window_start >= key.window_start
                && e.window_end <= end
                && k.series == key.series
        })
    }

    /// Forgets keys whose window ended before `t` and family entries older than `t`.
    pub(crate) fn prune(&mut self, t: i64) {
        self.entries.retain(|_, e| e.window_end >= t);
        self.families.retain(|_, v| {
            v.retain(|(c, _)| *c >= t);
            !v.is_empty()
        });
        self.groups.retain(|g, _| g.4 + g.3.seconds() >= t);
    }
}

/// The cooldown family of a series: its town (or the area itself without one) × category.
pub(crate) fn family(series: &SeriesKey, town: Option<&str>) -> (String, String) {
    let f = match town {
        Some(t) => t.to_owned(),
        None => format!("{}:{}", series.area_level, series.area_code),
    };
    (f, series.category.clone())
}
