//! The detector: fans events out to series and windows, evaluates dirty windows on a tick and
//! turns verdicts into alert records through the alert book and noise control.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::alert::{
    AlertBook, AlertRecord, Count, GroupMember, Suppression, SuppressionReason, family,
};
use crate::baseline::BaselineInfo;
use crate::baseline::{History, Profile};
use crate::config::DetectConfig;
use crate::cusum::{self, Bin, CusumInfo};
use crate::error::DetectError;
use crate::key::{AlertKey, Level, SeriesKey, SeriesLevel, WindowLen, to_time};
use crate::method::{Assessment, Frozen, Method, assess};

/// The area codes of one event at each level the detector knows (`None` when unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DetectArea {
    /// Town code.
    pub town_code: Option<String>,
    /// Station code.
    pub station_code: Option<String>,
    /// Compound id.
    pub compound_id: Option<String>,
    /// H3 resolution-8 cell.
    pub h3_r8: Option<String>,
    /// The k = 1 disk of `h3_r8` (the cell and its neighbours): the centres of the
    /// [`SeriesLevel::Ring`] disks that contain this event. Empty when the cell is unknown. The
    /// caller computes it, so the detector stays free of geo code and treats cells as opaque.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub h3_ring: Vec<String>,
    /// The declared hot spot (POI id) whose footprint contains the event, if any
    /// (`AreaIndex::poi_at` on the event's location).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poi_id: Option<String>,
    /// The event's own fine cell (about 100 m) first, then the cells around it: a call of the
    /// same scene subtype counted within `link_minutes` in any of them is the same incident
    /// (`DetectConfig::link_minutes`). Empty: never linked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_cells: Vec<String>,
}

impl DetectArea {
    fn codes(&self, level: SeriesLevel) -> Vec<&str> {
        match level {
            SeriesLevel::Town => self.town_code.as_deref().into_iter().collect(),
            SeriesLevel::Station => self.station_code.as_deref().into_iter().collect(),
            SeriesLevel::Compound => self.compound_id.as_deref().into_iter().collect(),
            SeriesLevel::Cell => self.h3_r8.as_deref().into_iter().collect(),
            SeriesLevel::Ring => self.h3_ring.iter().map(String::as_str).collect(),
            SeriesLevel::Poi => self.poi_id.as_deref().into_iter().collect(),
        }
    }
}

/// One stored event, as the aggregator hands it over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectEvent {
    /// Stable event id (`Uuid::as_u128`); duplicates are ignored.
    pub event_id: u128,
    /// When the incident was reported.
    pub event_time: DateTime<FixedOffset>,
    /// Where.
    pub area: DetectArea,
    /// Category code.
    pub category: String,
    /// Subtype code.
    pub subtype: String,
    /// A repeat call about an incident already reported (`repeat_of` set): never counted.
    pub repeat: bool,
    /// Who reported it (doorplate id or hashed caller); at most `max_per_reporter` events of
    /// one reporter count per window.
    pub reporter_key: Option<String>,
    /// Keywords, for the alert's explanation.
    pub keywords: Vec<String>,
}

/// What [`Detector::ingest`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Counted in every open window of its series.
    Counted,
    /// Seen before (same `event_id`): ignored.
    Duplicate,
    /// A repeat call: remembered as seen, not counted.
    Repeat,
    /// Another caller about an incident already counted nearby: remembered, not counted.
    Linked,
    /// Added to history, but at least one of its windows had already closed.
    Late,
}

/// Events at least `gap` seconds after the previous one counted, each reporter at most once,
/// in time order: the households of a series (a victim phoning again hours later is still one
/// burglary). `events` are a series' events, already ascending in time.
fn spaced_count(events: &[(i64, Option<Sym>)], gap: i64) -> u32 {
    let mut last = None;
    let mut seen: Vec<Sym> = Vec::new();
    let mut n = 0;
    for &(t, reporter) in events {
        if last.is_some_and(|l| t - l < gap) || reporter.is_some_and(|r| seen.contains(&r)) {
            continue;
        }
        n += 1;
        last = Some(t);
        seen.extend(reporter);
    }
    n
}

/// The result of one evaluation tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// New alerts and new versions of existing ones (escalations, grown groups), to persist
    /// and publish in this order.
    pub alerts: Vec<AlertRecord>,
    /// Would-be alerts held back by noise control (each key and level reported once).
    pub suppressed: Vec<Suppression>,
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DetectorStats {
    /// Events counted.
    pub counted: u64,
    /// Duplicates ignored.
    pub duplicates: u64,
    /// Repeat calls ignored.
    pub repeats: u64,
    /// Calls linked to an incident already counted (other callers, same scene).
    pub linked: u64,
    /// Late events.
    pub late: u64,
    /// Series known.
    pub series: usize,
    /// Windows held in memory.
    pub open_windows: usize,
    /// Baseline profiles cached (one per series and local day in use).
    pub profiles: usize,
}

type Sym = u32;
type WinKey = (u32, WindowLen, i64);
/// A counted event of a reporter: its time and the series it fed.
type ReporterEvent = (i64, Arc<[u32]>);

/// Interned strings: series windows hold many repeated codes.
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<String, Sym>,
    names: Vec<String>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> Sym {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = self.names.len() as Sym;
        self.names.push(s.to_owned());
        self.ids.insert(s.to_owned(), id);
        id
    }

    fn name(&self, id: Sym) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }

    fn lookup(&self, s: &str) -> Option<Sym> {
        self.ids.get(s).copied()
    }
}

#[derive(Debug)]
struct Series {
    key: SeriesKey,
    /// Town of the series' events (its own code for town series).
    town: Option<String>,
    history: History,
    /// Live events of a series whose level runs the CUSUM.
    cusum: Option<Box<CusumLive>>,
    /// (time, reporter) of the events of a series whose level tests windows, ascending in
    /// time: each window's alert time and spacing are read from its range. Kept once per
    /// series rather than once per window an event falls in (six to nine), which was most of
    /// the detector's memory.
    events: Vec<(i64, Option<Sym>)>,
}

/// The live part of a CUSUM series: history holds counts only, but the alarm time, the
/// reporter cap and the explanation need the events.
#[derive(Debug, Default)]
struct CusumLive {
    /// (time, subtype, keywords) of every counted event, ascending in time.
    /// The keywords are shared by the up to 14 CUSUM series an event feeds.
    events: Vec<(i64, Sym, Arc<[Sym]>)>,
    dirty: bool,
}

/// What a CUSUM candidate carries into its record.
#[derive(Debug, Clone)]
struct CusumHit {
    observed: u32,
    expected: f64,
    info: BaselineInfo,
    top_subtypes: Vec<Count>,
    top_keywords: Vec<Count>,
}

#[derive(Debug, Default)]
struct WindowState {
    raw: u32,
    effective: u32,
    subtypes: HashMap<Sym, u32>,
    keywords: HashMap<Sym, u32>,
    frozen: Option<Frozen>,
    dirty: bool,
    /// Highest level already reported as suppressed, per reason.
    suppressed: Vec<(SuppressionReason, Level)>,
}

/// The events of a series (ascending in time) that fall in `[start, start + len)`.
fn in_window(events: &[(i64, Option<Sym>)], len: WindowLen, start: i64) -> &[(i64, Option<Sym>)] {
    let lo = events.partition_point(|e| e.0 < start);
    let hi = events.partition_point(|e| e.0 < start + len.seconds());
    &events[lo..hi.max(lo)]
}

/// When the effective count of a window's `events` first reached `target`, in event-time
/// order (ties by reporter, so the answer does not depend on arrival order).
fn time_of_count(events: &[(i64, Option<Sym>)], target: u32, cap: u32) -> i64 {
    let mut events = events.to_vec();
    events.sort_unstable_by_key(|(t, r)| (*t, *r));
    let mut per: HashMap<Sym, u32> = HashMap::new();
    let mut n = 0;
    for (t, r) in &events {
        let counts = match r {
            Some(r) => {
                let c = per.entry(*r).or_insert(0);
                *c += 1;
                *c <= cap
            }
            None => true,
        };
        if counts {
            n += 1;
            if n >= target {
                return *t;
            }
        }
    }
    events.last().map_or(0, |(t, _)| *t)
}

impl WindowState {
    fn top(&self, which: &HashMap<Sym, u32>, names: &Interner, n: usize) -> Vec<Count> {
        let mut v: Vec<(&str, u32)> = which.iter().map(|(k, c)| (names.name(*k), *c)).collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.into_iter()
            .take(n)
            .map(|(code, count)| Count {
                code: code.to_owned(),
                count,
            })
            .collect()
    }
}

/// A window that reached a level in this tick.
#[derive(Debug, Clone)]
struct Candidate {
    win: WinKey,
    assessment: Assessment,
    level: Level,
    at: i64,
    /// Set for a CUSUM episode; `win` is then (series, 1d, local day of its first alarm).
    cusum: Option<Box<CusumHit>>,
}

/// The spike detector. Pure: no clock, no I/O; time comes from event times and the
/// watermark passed to [`Detector::evaluate`].
///
/// Life cycle in the aggregator:
/// 1. [`Detector::new`] (or [`Detector::with_book`] with the alerts persisted so far);
/// 2. [`Detector::seed_hour`] / [`Detector::seed_history`] with hourly counts (repeat calls
///    excluded) for the hours before [`Detector::replay_from`];
/// 3. [`Detector::ingest`] every stored event from `replay_from` on, then the live stream;
/// 4. [`Detector::evaluate`] on every tick; persist and publish the returned alerts.
#[derive(Debug)]
pub struct Detector {
    cfg: DetectConfig,
    names: Interner,
    series_ids: HashMap<SeriesKey, u32>,
    series: Vec<Series>,
    windows: HashMap<WinKey, WindowState>,
    dirty: Vec<WinKey>,
    cusum_dirty: Vec<u32>,
    /// Boxed: a profile is ~0.9 kB, and a map sized for the busiest hour would otherwise hold
    /// that much per empty slot for the rest of the run.
    profiles: HashMap<(u32, i64), Box<Profile>>,
    seen: HashMap<u128, i64>,
    /// The counted events of each reporter still inside an open window or the CUSUM's
    /// look-back: time and the series it fed. The reporter cap asks how many earlier events of
    /// this reporter a window (or a CUSUM day) holds; most reporters call once, so one short
    /// list per reporter replaces a reporter map in each of the ~100 windows an event falls in,
    /// which made memory grow by 1.4 kB per event while a backlog drained.
    reporters: HashMap<Sym, Vec<ReporterEvent>>,
    /// Newest counted call per (scene subtype, fine cell), for linking other callers.
    scenes: HashMap<(Sym, Sym), i64>,
    book: AlertBook,
    /// Start (hour) of the history the detector knows about.
    coverage_start: Option<i64>,
    /// End of the seeded hours: live events before it are already in the history.
    seeded_until: i64,
    /// Hour of the earliest live event.
    live_from: Option<i64>,
    watermark: i64,
    last_prune: i64,
    /// The 15-minute boundary at or before the horizon when windows were last closed.
    last_close: i64,
    /// The local day when series histories and CUSUM events were last trimmed.
    last_trim_day: i64,
    stats: DetectorStats,
}

impl Detector {
    /// A detector with an empty alert book.
    pub fn new(cfg: DetectConfig) -> Result<Detector, DetectError> {
        Detector::with_book(cfg, AlertBook::new())
    }

    /// A detector that knows the alerts already emitted (restored from ClickHouse).
    pub fn with_book(cfg: DetectConfig, book: AlertBook) -> Result<Detector, DetectError> {
        cfg.validate()?;
        Ok(Detector {
            cfg,
            names: Interner::default(),
            series_ids: HashMap::new(),
            series: Vec::new(),
            windows: HashMap::new(),
            dirty: Vec::new(),
            cusum_dirty: Vec::new(),
            profiles: HashMap::new(),
            seen: HashMap::new(),
            reporters: HashMap::new(),
            scenes: HashMap::new(),
            book,
            coverage_start: None,
            seeded_until: i64::MIN,
            live_from: None,
            watermark: i64::MIN,
            last_prune: i64::MIN,
            last_close: i64::MIN,
            last_trim_day: i64::MIN,
            stats: DetectorStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DetectConfig {
        &self.cfg
    }

    /// The alerts emitted so far.
    pub fn alert_book(&self) -> &AlertBook {
        &self.book
    }

    /// History buckets held over all series: a walk over every series, for diagnostics (the
    /// aggregator reads [`Detector::stats`] on every tick and that must stay cheap).
    pub fn history_buckets(&self) -> usize {
        self.series.iter().map(|s| s.history.len()).sum()
    }

    /// Estimated heap bytes by part (from lengths and capacities, not the allocator), largest
    /// first: where the detector's memory goes. A walk over every window and series, for
    /// diagnostics.
    pub fn memory_census(&self) -> Vec<(&'static str, usize)> {
        use std::mem::size_of;
        // A hashbrown slot plus its control byte; B-tree entries carry about half again their
        // size in node overhead.
        fn map<K, V>(cap: usize) -> usize {
            cap * (size_of::<(K, V)>() + 1)
        }
        let mut windows = map::<WinKey, WindowState>(self.windows.capacity());
        let mut window_maps = 0;
        let mut frozen = 0;
        for w in self.windows.values() {
            window_maps +=
                map::<Sym, u32>(w.subtypes.capacity()) + map::<Sym, u32>(w.keywords.capacity());
            windows += w.suppressed.capacity() * size_of::<(SuppressionReason, Level)>();
            frozen += w.frozen.as_ref().map_or(0, Frozen::heap_bytes);
        }
        let (mut history, mut events, mut cusum) = (0, 0, 0);
        for s in &self.series {
            history += s.history.heap_bytes();
            events += s.events.capacity() * size_of::<(i64, Option<Sym>)>();
            if let Some(c) = &s.cusum {
                cusum += size_of::<CusumLive>()
                    + c.events.capacity() * size_of::<(i64, Sym, Arc<[Sym]>)>();
            }
        }
        let series = self.series.capacity() * size_of::<Series>()
            + map::<SeriesKey, u32>(self.series_ids.capacity())
            + self
                .series
                .iter()
                .map(|s| 2 * (s.key.area_code.len() + s.key.category.len() + 16))
                .sum::<usize>();
        let names = map::<String, Sym>(self.names.ids.capacity())
            + self.names.names.capacity() * size_of::<String>()
            + 2 * self.names.names.iter().map(String::len).sum::<usize>();
        let mut parts = vec![
            ("windows", windows),
            ("window_maps", window_maps),
            ("window_frozen", frozen),
            ("history", history),
            (
                "profiles",
                map::<(u32, i64), Box<Profile>>(self.profiles.capacity())
                    + self.profiles.len() * size_of::<Profile>(),
            ),
            ("series_events", events),
            ("cusum", cusum),
            ("series", series),
            ("seen_ids", map::<u128, i64>(self.seen.capacity())),
            (
                "reporters",
                map::<Sym, Vec<ReporterEvent>>(self.reporters.capacity())
                    + self
                        .reporters
                        .values()
                        .flat_map(|v| v.iter())
                        .map(|(_, ids)| 24 + 16 + 4 * ids.len())
                        .sum::<usize>(),
            ),
            ("scenes", map::<(Sym, Sym), i64>(self.scenes.capacity())),
            ("names", names),
        ];
        parts.sort_by_key(|p| Reverse(p.1));
        parts
    }

    /// Counters.
    pub fn stats(&self) -> DetectorStats {
        DetectorStats {
            series: self.series.len(),
            open_windows: self.windows.len(),
            profiles: self.profiles.len(),
            ..self.stats
        }
    }

    /// The counted events (repeat calls excluded, reporter cap applied) of a window still held
    /// in memory; `None` once it closed or when it never received an event.
    pub fn window_count(&self, key: &AlertKey) -> Option<u32> {
        let id = self.series_ids.get(&key.series)?;
        self.windows
            .get(&(*id, key.window, key.window_start))
            .map(|w| w.effective)
    }

    /// The earliest event time whose raw events must be replayed through [`Detector::ingest`]
    /// after a restart at `now` (the start of the oldest window that may still be open,
    /// floored to the hour); hours before it are seeded.
    pub fn replay_from(&self, now: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
        let horizon = now.timestamp() - self.lateness();
        let start = self
            .cfg
            .all_windows()
            .iter()
            .map(|w| w.earliest_start_of(horizon))
            .min()
            .unwrap_or(horizon);
        to_time(start.div_euclid(3600) * 3600)
    }

    /// How far back seeded history should reach from [`Detector::replay_from`].
    pub fn history_needed(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.cfg.history_seconds())
    }

    /// Seeds `count` events (repeat calls excluded) of one series in the hour starting at
    /// `hour_start`.
    pub fn seed_history(
        &mut self,
        key: &SeriesKey,
        hour_start: DateTime<FixedOffset>,
        count: u32,
    ) -> Result<(), DetectError> {
        let h = self.check_seed_hour(hour_start)?;
        let town = (key.area_level == SeriesLevel::Town).then(|| key.area_code.clone());
        let id = self.series_id(key, town.as_deref());
        self.add_seed(id, h, count);
        Ok(())
    }

    /// Seeds `count` events of one area × subtype in the hour starting at `hour_start`, fanned
    /// out to every configured series like [`Detector::ingest`] does — one row of
    /// `SELECT toStartOfHour(event_time), town_code, station_code, compound_id, h3_r8,
    /// category, subtype, count() … WHERE repeat_of IS NULL GROUP BY …`.
    pub fn seed_hour(
        &mut self,
        area: &DetectArea,
        category: &str,
        subtype: &str,
        hour_start: DateTime<FixedOffset>,
        count: u32,
    ) -> Result<(), DetectError> {
        let h = self.check_seed_hour(hour_start)?;
        for id in self.series_of(area, category, subtype) {
            self.add_seed(id, h, count);
        }
        Ok(())
    }

    fn check_seed_hour(&self, hour_start: DateTime<FixedOffset>) -> Result<i64, DetectError> {
        let h = hour_start.timestamp();
        if h.rem_euclid(3600) != 0 {
            return Err(DetectError::UnalignedHour(hour_start));
        }
        if let Some(live) = self.live_from
            && h + 3600 > live
        {
            return Err(DetectError::SeedOverlapsLive {
                hour: hour_start,
                live_from: to_time(live),
            });
        }
        Ok(h)
    }

    fn add_seed(&mut self, id: u32, h: i64, count: u32) {
        self.coverage_start = Some(self.coverage_start.map_or(h, |c| c.min(h)));
        self.seeded_until = self.seeded_until.max(h + 3600);
        if count > 0 {
            let s = &mut self.series[id as usize];
            let quarter = count as f32 / 4.0;
            for q in 0..4 {
                s.history.add(h + q * 900, quarter);
            }
        }
    }

    /// Counts one stored event.
    pub fn ingest(&mut self, ev: &DetectEvent) -> Result<Ingested, DetectError> {
        if ev.category.is_empty() || ev.subtype.is_empty() {
            return Err(DetectError::Invalid {
                field: "category/subtype",
                reason: "empty".into(),
            });
        }
        let t = ev.event_time.timestamp();
        if self.seen.contains_key(&ev.event_id) {
            self.stats.duplicates += 1;
            return Ok(Ingested::Duplicate);
        }
        self.seen.insert(ev.event_id, t);
        let hour = t.div_euclid(3600) * 3600;
        self.live_from = Some(self.live_from.map_or(hour, |l| l.min(hour)));
        self.coverage_start = Some(self.coverage_start.map_or(hour, |c| c.min(hour)));
        if ev.repeat {
            self.stats.repeats += 1;
            return Ok(Ingested::Repeat);
        }

        let subtype = self.names.intern(&ev.subtype);
        if self.links_to_counted_scene(ev, subtype, t) {
            self.stats.linked += 1;
            return Ok(Ingested::Linked);
        }
        let horizon = self.horizon();
        let reporter = ev.reporter_key.as_deref().map(|r| self.names.intern(r));
        let keywords: Arc<[Sym]> = ev.keywords.iter().map(|k| self.names.intern(k)).collect();
        let cap = self.cfg.max_per_reporter as usize;
        let mut late = false;
        let ids: Arc<[u32]> = self.series_of(&ev.area, &ev.category, &ev.subtype).into();
        // This reporter's earlier counted events (usually none).
        let earlier: Vec<ReporterEvent> = reporter
            .and_then(|r| self.reporters.get(&r).cloned())
            .unwrap_or_default();
        let earlier_in = |id: u32, from: i64, to: i64| {
            earlier
                .iter()
                .filter(|(et, eids)| *et >= from && *et < to && eids.contains(&id))
                .count()
        };
        for &id in ids.iter() {
            let s = &mut self.series[id as usize];
            if t >= self.seeded_until {
                s.history.add(t, 1.0);
            }
            let choice = self.cfg.method_for(s.key.area_level);
            if choice.runs_cusum() && t >= self.seeded_until {
                let live = s.cusum.get_or_insert_with(Box::default);
                // Per local day; only live events (seeded hours carry no reporters).
                let day = WindowLen::D1.start_of(t);
                let counts = reporter.is_none()
                    || earlier_in(id, day.max(self.seeded_until), day + 86_400) < cap;
                if counts {
                    let pos = live.events.partition_point(|e| e.0 <= t);
                    live.events.insert(pos, (t, subtype, keywords.clone()));
                }
                if !live.dirty {
                    live.dirty = true;
                    self.cusum_dirty.push(id);
                }
            }
            if !choice.tests_windows() {
                continue;
            }
            let pos = s.events.partition_point(|e| e.0 <= t);
            s.events.insert(pos, (t, reporter));
            let per_category = s.key.subtype.is_none();
            for (len, start) in self
                .cfg
                .windows_for(s.key.area_level)
                .iter()
                .flat_map(|&len| len.starts_containing(t).map(move |s| (len, s)))
            {
                if start + len.seconds() <= horizon {
                    late = true;
                    continue;
                }
                let key = (id, len, start);
                // Earlier events of the reporter in this window were all counted into it: a
                // window that was closed for one of them is closed for this one too.
                let counts =
                    reporter.is_none() || earlier_in(id, start, start + len.seconds()) < cap;
                let w = self.windows.entry(key).or_default();
                w.raw += 1;
                if counts {
                    w.effective += 1;
                }
                if per_category {
                    *w.subtypes.entry(subtype).or_insert(0) += 1;
                }
                for k in keywords.iter() {
                    *w.keywords.entry(*k).or_insert(0) += 1;
                }
                if !w.dirty {
                    w.dirty = true;
                    self.dirty.push(key);
                }
            }
        }
        if let Some(r) = reporter {
            match self.reporters.get_mut(&r) {
                Some(v) => v.push((t, ids)),
                // Exact capacity: most reporters never call again.
                None => {
                    self.reporters.insert(r, vec![(t, ids)]);
                }
            }
        }
        if late {
            self.stats.late += 1;
            Ok(Ingested::Late)
        } else {
            self.stats.counted += 1;
            Ok(Ingested::Counted)
        }
    }

    /// Whether `ev` is another caller about a scene counted within `link_minutes` around it;
    /// otherwise remembers it as the scene's newest counted call. Only counted calls start or
    /// renew a scene, so a busy night is not chained into one incident.
    fn links_to_counted_scene(&mut self, ev: &DetectEvent, subtype: Sym, t: i64) -> bool {
        let link = i64::from(self.cfg.link_minutes) * 60;
        let Some(own) = ev.area.link_cells.first() else {
            return false;
        };
        if link == 0
            || self
                .cfg
                .victim_reported
                .iter()
                .any(|v| *v == ev.subtype || *v == ev.category)
        {
            return false;
        }
        let linked = ev.area.link_cells.iter().any(|c| {
            self.names.lookup(c).is_some_and(|cell| {
                self.scenes
                    .get(&(subtype, cell))
                    .is_some_and(|&at| (t - at).abs() <= link)
            })
        });
        if !linked {
            let cell = self.names.intern(own);
            self.scenes.insert((subtype, cell), t);
        }
        linked
    }

    /// Evaluates every window that received events since the last tick (open windows early,
    /// closed ones finally), applies noise control and returns the alerts to publish. Windows
    /// that ended more than `allowed_lateness_minutes` before `watermark` are then closed.
    ///
    /// `watermark` is the aggregator's notion of "now" in event time (e.g. the newest event
    /// time seen, or the wall clock at the edge); it never moves backwards.
    pub fn evaluate(&mut self, watermark: DateTime<FixedOffset>) -> Evaluation {
        self.watermark = self.watermark.max(watermark.timestamp());
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        let mut out = Evaluation::default();
        let mut candidates = Vec::new();
        for win in dirty {
            if let Some(c) = self.judge(win, &mut out) {
                candidates.push(c);
            }
        }
        let mut cusum_dirty = std::mem::take(&mut self.cusum_dirty);
        cusum_dirty.sort_unstable();
        for id in cusum_dirty {
            candidates.extend(self.judge_cusum(id));
        }
        // Shorter windows first among equals: the page names the tightest window, and the
        // longer windows around it are then recognised as the same cluster (`Nested`).
        candidates.sort_by(|a, b| {
            (a.at, Reverse(a.level), a.win.1.seconds())
                .cmp(&(b.at, Reverse(b.level), b.win.1.seconds()))
                .then(a.assessment.p_value.total_cmp(&b.assessment.p_value))
                .then(a.win.cmp(&b.win))
        });
        for c in candidates {
            self.decide(c, &mut out);
        }
        self.prune();
        out
    }

    /// Evaluates one dirty window; a candidate when it reaches a level.
    fn judge(&mut self, win: WinKey, out: &mut Evaluation) -> Option<Candidate> {
        self.freeze(win);
        let (id, len, start) = win;
        let cfg = &self.cfg;
        let w = self.windows.get_mut(&win)?;
        w.dirty = false;
        let frozen = w.frozen.as_ref()?;
        let a = assess(frozen, w.effective, cfg);
        let key_text = || {
            AlertKey {
                series: self.series[id as usize].key.clone(),
                window: len,
                window_start: start,
            }
            .canonical()
        };
        let Some(level) = a.level else {
            // Would the uncapped count alert? Then one reporter is the spike.
            if w.raw > w.effective
                && let Some(raw_level) = assess(frozen, w.raw, cfg).level
                && !w
                    .suppressed
                    .iter()
                    .any(|(r, l)| *r == SuppressionReason::SingleReporter && *l >= raw_level)
            {
                w.suppressed
                    .push((SuppressionReason::SingleReporter, raw_level));
                let at = in_window(&self.series[id as usize].events, len, start)
                    .last()
                    .map_or(start, |e| e.0);
                out.suppressed.push(Suppression {
                    alert_key: key_text(),
                    level: raw_level,
                    reason: SuppressionReason::SingleReporter,
                    at: to_time(at),
                });
            }
            return None;
        };
        if let Some(gap) = frozen.gates.min_gap_minutes
            && spaced_count(
                in_window(&self.series[id as usize].events, len, start),
                i64::from(gap) * 60,
            ) < frozen.gates.min_counts(cfg).0
        {
            return None;
        }
        // The smallest count at which the window reaches this level, and when it got there:
        // the alert's time is a function of the events, not of when the tick ran.
        let first = (frozen.gates.min_counts(cfg).0..=w.effective)
            .find(|c| assess(frozen, *c, cfg).level >= Some(level))
            .unwrap_or(w.effective);
        let at = time_of_count(
            in_window(&self.series[id as usize].events, len, start),
            first,
            cfg.max_per_reporter,
        );
        if frozen.days < cfg.min_history_days {
            if !w
                .suppressed
                .iter()
                .any(|(r, l)| *r == SuppressionReason::InsufficientHistory && *l >= level)
            {
                w.suppressed
                    .push((SuppressionReason::InsufficientHistory, level));
                out.suppressed.push(Suppression {
                    alert_key: key_text(),
                    level,
                    reason: SuppressionReason::InsufficientHistory,
                    at: to_time(at),
                });
            }
            return None;
        }
        Some(Candidate {
            win,
            assessment: a,
            level,
            at,
            cusum: None,
        })
    }

    /// The profile of series `id` for the local day starting at `day`, built once.
    fn profile(&mut self, id: u32, day: i64) -> &Profile {
        let coverage = self.coverage_start.unwrap_or(day);
        let (series, cfg) = (&self.series, &self.cfg);
        self.profiles.entry((id, day)).or_insert_with(|| {
            Box::new(Profile::build(
                &series[id as usize].history,
                day,
                coverage,
                cfg,
            ))
        })
    }

    /// Runs the CUSUM of series `id` over its look-back; a candidate for every episode that
    /// reached a level on live events.
    fn judge_cusum(&mut self, id: u32) -> Vec<Candidate> {
        let Some(latest) = self.series[id as usize].cusum.as_mut().and_then(|c| {
            c.dirty = false;
            c.events.last().map(|e| e.0)
        }) else {
            return Vec::new();
        };
        // One profile, as of the newest event's day, prices every bin of the look-back: a
        // profile per bin's day would cost a profile build per day looked back for every
        // sparse series, and the choice depends only on the events, so it is the same after a
        // replay. Days inside the look-back are then part of the profile's history, which can
        // only raise the expectation of a multi-day rise (conservative).
        let today = WindowLen::D1.start_of(latest);
        let profile = self.profile(id, today).clone();
        if profile.days < self.cfg.min_history_days {
            return Vec::new();
        }
        // Dense series on hourly bins, sparse ones on daily bins.
        let (len, nbins) = if profile.rate >= self.cfg.cusum_hourly_min_rate {
            (WindowLen::H1, i64::from(self.cfg.cusum_lookback_hours))
        } else {
            (WindowLen::D1, i64::from(self.cfg.cusum_lookback_days))
        };
        let step = len.seconds();
        let end = len.start_of(latest);
        let coverage = self.coverage_start.unwrap_or(end);
        let first = (end - (nbins - 1) * step).max(len.start_of(coverage));
        let mut bins = Vec::with_capacity(nbins as usize);
        let mut b = first;
        while b <= end {
            let expected = profile.expected(b, len, &self.cfg);
            let s = &self.series[id as usize];
            let base = if b < self.seeded_until {
                s.history.sum(b, (b + step).min(self.seeded_until)).round() as u32
            } else {
                0
            };
            let from = b.max(self.seeded_until);
            let times = s.cusum.as_ref().map_or_else(Vec::new, |c| {
                let lo = c.events.partition_point(|e| e.0 < from);
                let hi = c.events.partition_point(|e| e.0 < b + step);
                c.events[lo..hi.max(lo)].iter().map(|e| e.0).collect()
            });
            bins.push(Bin {
                start: b,
                expected,
                base,
                times,
            });
            b += step;
        }
        let retained = self
            .horizon()
            .saturating_sub((i64::from(self.cfg.cooldown_minutes) * 60).max(86_400));
        let mut out = Vec::new();
        let th = cusum::Thresholds::of(&self.series[id as usize].key, &self.cfg);
        for ep in cusum::run(&bins, len, th, &self.cfg) {
            let (Some(level), Some(first_alarm)) = (ep.level(), ep.first_alarm()) else {
                continue;
            };
            // Episodes that alarmed on seeded history were judged before the restart; keys
            // older than the book keeps could not be recognised again.
            let day = WindowLen::D1.start_of(first_alarm);
            if first_alarm < self.seeded_until || day + 86_400 < retained {
                continue;
            }
            let at = ep.reached_at(level).unwrap_or(first_alarm);
            let weeks = profile.weeks(end, len);
            let s = &self.series[id as usize];
            let (mut subtypes, mut keywords) = (HashMap::new(), HashMap::new());
            if let Some(c) = s.cusum.as_ref() {
                let lo = c.events.partition_point(|e| e.0 < ep.span_start);
                let hi = c.events.partition_point(|e| e.0 < ep.span_end);
                for (_, st, kws) in &c.events[lo..hi.max(lo)] {
                    if s.key.subtype.is_none() {
                        *subtypes.entry(*st).or_insert(0) += 1;
                    }
                    for k in kws.iter() {
                        *keywords.entry(*k).or_insert(0) += 1;
                    }
                }
            }
            let top = WindowState::default();
            let info = BaselineInfo {
                kind: if weeks > 0 {
                    "hour_of_week"
                } else {
                    "smoothed_rate"
                }
                .to_owned(),
                weeks,
                history_days: profile.days,
                rate_per_hour: profile.rate,
                dispersion: profile.phi,
                profile_expected: ep.expected,
                lagged_mean: None,
                lagged_sd: None,
                cusum: Some(CusumInfo {
                    bin: len,
                    span_start: to_time(ep.span_start),
                    span_end: to_time(ep.span_end),
                    shift: self.cfg.cusum_shift,
                    threshold: th.h,
                    statistic: ep.max_stat,
                }),
            };
            let hit = CusumHit {
                observed: ep.observed,
                expected: ep.expected,
                info,
                top_subtypes: top.top(&subtypes, &self.names, self.cfg.top_n),
                top_keywords: top.top(&keywords, &self.names, self.cfg.top_n),
            };
            out.push(Candidate {
                win: (id, WindowLen::D1, day),
                assessment: Assessment {
                    method: Method::Cusum,
                    expected: ep.expected,
                    // The likelihood-ratio bound: for a fixed start, P(LR ≥ e^S) ≤ e^−S.
                    p_value: (-ep.max_stat).exp(),
                    level: Some(level),
                },
                level,
                at,
                cusum: Some(Box::new(hit)),
            });
        }
        out
    }

    /// Computes the window's history-dependent part once.
    fn freeze(&mut self, win: WinKey) {
        let (id, len, start) = win;
        if self.windows.get(&win).is_none_or(|w| w.frozen.is_some()) {
            return;
        }
        let day = match len {
            WindowLen::D7 => start,
            _ => WindowLen::D1.start_of(start),
        };
        let coverage = self.coverage_start.unwrap_or(start);
        let s = &self.series[id as usize];
        let profile = self
            .profiles
            .entry((id, day))
            .or_insert_with(|| Box::new(Profile::build(&s.history, day, coverage, &self.cfg)));
        let level = s.key.area_level;
        let choice = self.cfg.method_for(level);
        let gates = self.cfg.gates_for_series(&s.key);
        let frozen = Frozen::build_for(
            &s.history, profile, start, len, coverage, &self.cfg, choice, gates,
        );
        if let Some(w) = self.windows.get_mut(&win) {
            w.frozen = Some(frozen);
        }
    }

    /// Book, grouping and cooldown for one candidate.
    fn decide(&mut self, c: Candidate, out: &mut Evaluation) {
        let (id, len, start) = c.win;
        let series = &self.series[id as usize];
        let key = AlertKey {
            series: series.key.clone(),
            window: len,
            window_start: start,
        };
        let town = series.town.clone();

        // An existing key only ever moves up.
        if let Some(entry) = self.book.entries.get(&key) {
            if entry.level >= c.level {
                return;
            }
            let (version, created) = (entry.version + 1, entry.created_at);
            if let Some(rec) = self.record(&key, &c, town.as_deref(), created, version) {
                self.remember(&key, &rec, false);
                out.alerts.push(rec);
            }
            return;
        }

        if self.cfg.hold_nested_windows && self.book.nested_alerted(&key, c.level) {
            self.note_suppressed(&c, &key, SuppressionReason::Nested, out);
            return;
        }

        // Sibling compounds (or cells) of one town: one town alert listing them.
        if self.cfg.group_min_members >= 2
            && key.series.area_level.is_groupable()
            && let Some(town) = town.as_deref()
            && self.try_group(&key, town, &c, out)
        {
            return;
        }

        let fam = family(&key.series, town.as_deref());
        let cooldown = i64::from(self.cfg.cooldown_minutes) * 60;
        if self.book.in_cooldown(&fam, c.at, c.level, cooldown) {
            if let Some(town) = town.as_deref()
                && key.series.area_level.is_groupable()
            {
                // Still a spiking member should a sibling make a group later.
                self.book.add_member(
                    town,
                    &key,
                    key.series.area_level,
                    &key.series.area_code,
                    c.level,
                );
            }
            self.note_suppressed(&c, &key, SuppressionReason::Cooldown, out);
            return;
        }
        if let Some(rec) = self.record(&key, &c, town.as_deref(), c.at, 1) {
            self.remember(&key, &rec, true);
            out.alerts.push(rec);
        }
    }

    /// Reports a held-back candidate once per window, reason and level.
    fn note_suppressed(
        &mut self,
        c: &Candidate,
        key: &AlertKey,
        reason: SuppressionReason,
        out: &mut Evaluation,
    ) {
        if let Some(w) = self.windows.get_mut(&c.win)
            && !w
                .suppressed
                .iter()
                .any(|(r, l)| *r == reason && *l >= c.level)
        {
            w.suppressed.push((reason, c.level));
            out.suppressed.push(Suppression {
                alert_key: key.canonical(),
                level: c.level,
                reason,
                at: to_time(c.at),
            });
        }
    }

    /// Folds a compound/cell candidate into its town's group alert when the group is big
    /// enough; `true` when the candidate was absorbed.
    fn try_group(
        &mut self,
        key: &AlertKey,
        town: &str,
        c: &Candidate,
        out: &mut Evaluation,
    ) -> bool {
        let gk = (
            town.to_owned(),
            key.series.category.clone(),
            key.series.area_level,
            key.window,
            key.window_start,
        );
        let (size, grew) = match self.book.groups.get(&gk) {
            Some(m) => {
                let grew = !m.contains_key(&key.series.area_code);
                (
                    m.len() + usize::from(grew),
                    grew || m.get(&key.series.area_code).is_some_and(|l| *l < c.level),
                )
            }
            None => (1, true),
        };
        if size < self.cfg.group_min_members as usize {
            return false;
        }
        let town_series = SeriesKey::category(SeriesLevel::Town, town, &key.series.category);
        let Some(&town_id) = self.series_ids.get(&town_series) else {
            return false;
        };
        let twin = (town_id, key.window, key.window_start);
        self.freeze(twin);
        let Some(frozen) = self.windows.get(&twin).and_then(|w| w.frozen.as_ref()) else {
            return false;
        };
        let effective = self.windows.get(&twin).map_or(0, |w| w.effective);
        let town_assessment = assess(frozen, effective, &self.cfg);
        self.book.add_member(
            town,
            key,
            key.series.area_level,
            &key.series.area_code,
            c.level,
        );
        let member_max = self
            .book
            .groups
            .get(&gk)
            .and_then(|m| m.values().copied().max())
            .unwrap_or(c.level);
        let level = town_assessment
            .level
            .map_or(member_max, |l| l.max(member_max));
        let gkey = AlertKey {
            series: town_series,
            window: key.window,
            window_start: key.window_start,
        };
        let prior = self
            .book
            .entries
            .get(&gkey)
            .map(|e| (e.level, e.version, e.created_at));
        if let Some((l, _, _)) = prior
            && l >= level
            && !grew
        {
            return true;
        }
        let gc = Candidate {
            win: twin,
            assessment: town_assessment,
            level: prior.map_or(level, |p| p.0.max(level)),
            at: c.at,
            cusum: None,
        };
        let (created, version) = prior.map_or((c.at, 1), |(_, v, cr)| (cr, v + 1));
        if let Some(rec) = self.record(&gkey, &gc, Some(town), created, version) {
            self.remember(&gkey, &rec, prior.is_none());
            out.alerts.push(rec);
        }
        true
    }

    /// The spiking compounds and cells listed on a town category alert: those of groups that
    /// reached `group_min_members`.
    fn members_of(&self, key: &AlertKey, town: &str) -> Vec<GroupMember> {
        if key.series.area_level != SeriesLevel::Town
            || key.series.subtype.is_some()
            || self.cfg.group_min_members < 2
        {
            return Vec::new();
        }
        let mut out = Vec::new();
        for level in [SeriesLevel::Compound, SeriesLevel::Cell] {
            let gk = (
                town.to_owned(),
                key.series.category.clone(),
                level,
                key.window,
                key.window_start,
            );
            let Some(m) = self.book.groups.get(&gk) else {
                continue;
            };
            if m.len() < self.cfg.group_min_members as usize {
                continue;
            }
            for (code, lvl) in m {
                let sk = SeriesKey {
                    area_level: level,
                    area_code: code.clone(),
                    ..key.series.clone()
                };
                let (observed, expected) = self
                    .series_ids
                    .get(&sk)
                    .and_then(|id| self.windows.get(&(*id, key.window, key.window_start)))
                    .map_or((0, 0.0), |w| {
                        (w.effective, w.frozen.as_ref().map_or(0.0, |f| f.expected))
                    });
                out.push(GroupMember {
                    area_level: level,
                    area_code: code.clone(),
                    observed,
                    expected,
                    level: *lvl,
                });
            }
        }
        out
    }

    /// Builds the record of `key` from its window.
    fn record(
        &self,
        key: &AlertKey,
        c: &Candidate,
        town: Option<&str>,
        created_at: i64,
        version: u64,
    ) -> Option<AlertRecord> {
        let a = &c.assessment;
        // What differs between a CUSUM alarm and a window test: where the evidence comes from.
        let (observed, raw_count, expected, baseline, top_subtypes, top_keywords) =
            if let Some(h) = c.cusum.as_deref() {
                (
                    h.observed,
                    h.observed,
                    h.expected,
                    h.info.clone(),
                    h.top_subtypes.clone(),
                    h.top_keywords.clone(),
                )
            } else {
                let w = self.windows.get(&c.win)?;
                let frozen = w.frozen.as_ref()?;
                (
                    w.effective,
                    w.raw,
                    a.expected,
                    frozen.info(a.method),
                    w.top(&w.subtypes, &self.names, self.cfg.top_n),
                    w.top(&w.keywords, &self.names, self.cfg.top_n),
                )
            };
        Some(AlertRecord {
            id: key.id(),
            alert_key: key.canonical(),
            area_level: key.series.area_level,
            area_code: key.series.area_code.clone(),
            town_code: town.map(str::to_owned),
            category: key.series.category.clone(),
            subtype: key.series.subtype.clone(),
            window: key.window,
            window_start: to_time(key.window_start),
            window_end: to_time(key.window_end()),
            observed,
            raw_count,
            expected,
            baseline,
            method: a.method,
            score: a.score(),
            p_value: a.p_value,
            level: c.level,
            top_subtypes,
            top_keywords,
            members: town.map(|t| self.members_of(key, t)).unwrap_or_default(),
            created_at: to_time(created_at),
            updated_at: to_time(c.at.max(created_at)),
            version,
        })
    }

    /// Records an emitted record in the book.
    fn remember(&mut self, key: &AlertKey, rec: &AlertRecord, new_key: bool) {
        self.book.entries.insert(
            key.clone(),
            crate::alert::BookEntry {
                level: rec.level,
                version: rec.version,
                created_at: rec.created_at.timestamp(),
                window_end: key.window_end(),
            },
        );
        if new_key && rec.members.is_empty() {
            self.book
                .families
                .entry(family(&key.series, rec.town_code.as_deref()))
                .or_default()
                .push((rec.created_at.timestamp(), rec.level));
        }
        if let Some(town) = rec.town_code.as_deref()
            && key.series.area_level.is_groupable()
        {
            self.book.add_member(
                town,
                key,
                key.series.area_level,
                &key.series.area_code,
                rec.level,
            );
        }
    }

    /// The series ids an event (or a seeded row) feeds, creating them on first sight.
    fn series_of(&mut self, area: &DetectArea, category: &str, subtype: &str) -> Vec<u32> {
        let mut ids = Vec::with_capacity(self.cfg.levels.len() * 2);
        let levels = self.cfg.levels.clone();
        for (level, code) in levels
            .into_iter()
            .flat_map(|l| area.codes(l).into_iter().map(move |c| (l, c)))
        {
            if self.cfg.per_category {
                let k = SeriesKey::category(level, code, category);
                ids.push(self.series_id(&k, area.town_code.as_deref()));
            }
            if self.cfg.per_subtype {
                let k = SeriesKey::subtype(level, code, category, subtype);
                ids.push(self.series_id(&k, area.town_code.as_deref()));
            }
        }
        ids
    }

    fn series_id(&mut self, key: &SeriesKey, town: Option<&str>) -> u32 {
        if let Some(id) = self.series_ids.get(key) {
            let s = &mut self.series[*id as usize];
            if s.town.is_none() {
                s.town = town.map(str::to_owned);
            }
            return *id;
        }
        let id = self.series.len() as u32;
        let town = if key.area_level == SeriesLevel::Town {
            Some(key.area_code.clone())
        } else {
            town.map(str::to_owned)
        };
        self.series.push(Series {
            key: key.clone(),
            town,
            history: History::default(),
            cusum: None,
            events: Vec::new(),
        });
        self.series_ids.insert(key.clone(), id);
        id
    }

    /// How far back the CUSUM looks (0 when no level runs it), plus a day of slack.
    fn cusum_lookback(&self) -> i64 {
        if !self.cfg.any_cusum() {
            return 0;
        }
        let hours = i64::from(self.cfg.cusum_lookback_hours) * 3600;
        let days = i64::from(self.cfg.cusum_lookback_days) * 86_400;
        hours.max(days) + 86_400
    }

    fn lateness(&self) -> i64 {
        i64::from(self.cfg.allowed_lateness_minutes) * 60
    }

    /// Windows ending at or before this are closed.
    fn horizon(&self) -> i64 {
        self.watermark.saturating_sub(self.lateness())
    }

    /// Closes windows, forgets old profiles, history, event ids and book entries.
    fn prune(&mut self) {
        let horizon = self.horizon();
        if horizon == i64::MIN {
            return;
        }
        // Every window ends on a 15-minute boundary, so the set of closable windows only
        // changes when the horizon crosses one; scanning all windows on every tick would cost
        // more than the events. A window kept a little longer is only memory: `ingest` checks
        // the horizon itself.
        let boundary = horizon.div_euclid(WindowLen::M15.seconds());
        if boundary != self.last_close {
            self.last_close = boundary;
            self.windows
                .retain(|(_, len, start), w| w.dirty || start + len.seconds() > horizon);
            shrink(&mut self.windows);
        }
        // The rest is cheap to keep for a while; do it about once an hour of event time.
        if horizon.saturating_sub(self.last_prune) < 3600 {
            return;
        }
        self.last_prune = horizon;
        let today = WindowLen::D1.start_of(horizon);
        let oldest_open = self
            .cfg
            .all_windows()
            .iter()
            .map(|w| w.earliest_start_of(horizon))
            .min()
            .unwrap_or(today);
        let cusum_from = today - self.cusum_lookback();
        self.profiles
            .retain(|(_, day), _| *day >= oldest_open.min(today - 86_400));
        shrink(&mut self.profiles);
        let keep_from = horizon - self.cfg.history_seconds();
        // Walking ~10^5 series is memory-bound; once a local day is enough (the CUSUM's
        // look-back moves by days, and a day of extra history is a few percent of memory).
        if today != self.last_trim_day {
            self.last_trim_day = today;
            for s in &mut self.series {
                if !s.history.is_empty() {
                    s.history.prune_before(keep_from);
                }
                // Events before the oldest open window belong only to closed windows.
                let closed = s.events.partition_point(|e| e.0 < oldest_open);
                s.events.drain(..closed);
                if let Some(c) = s.cusum.as_mut() {
                    let drop = c.events.partition_point(|e| e.0 < cusum_from);
                    c.events.drain(..drop);
                }
            }
            // Kept as long as an open window or the CUSUM's look-back may hold them.
            let needed_from = oldest_open.min(cusum_from);
            self.reporters.retain(|_, v| {
                v.retain(|(t, _)| *t >= needed_from);
                !v.is_empty()
            });
            shrink(&mut self.reporters);
        }
        self.seen.retain(|_, t| *t >= keep_from);
        shrink(&mut self.seen);
        let link = i64::from(self.cfg.link_minutes) * 60;
        self.scenes.retain(|_, t| *t >= horizon - link);
        let cooldown = i64::from(self.cfg.cooldown_minutes) * 60;
        self.book.prune(horizon - cooldown.max(86_400));
        if let Some(c) = self.coverage_start {
            self.coverage_start = Some(c.max(keep_from.div_euclid(3600) * 3600));
        }
    }
}

/// Gives back a map's memory once it holds under a quarter of what it once did (a backlog drain
/// opens many times the windows and profiles of live running; maps never shrink by themselves).
fn shrink<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 4 * map.len() + 1024 {
        map.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests;
