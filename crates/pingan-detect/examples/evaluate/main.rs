//! Evaluation harness for `pingan-detect`.
//!
//! Simulates 12 weeks of Minhang 110 traffic (8 weeks of baseline that seed the detector, then
//! 4 test weeks streamed event by event), injects labelled spikes into the test weeks, and
//! replays them through every method. Prints, per method and spike size, the detection rate,
//! the share detected within two windows, the median detection delay and the false alerts per
//! town per week.
//!
//! ```text
//! cargo run --release -p pingan-detect --example evaluate [-- --seed N]
//! ```
//!
//! # The simulated city
//! * ~1,300 calls a day over the 14 towns of `AreaIndex::builtin()`, weighted by their
//!   compounds' households; half are disputes. Hour-of-day rhythm (quiet 02–05, peaks late
//!   morning and evening), a little more on weekends.
//! * 60% of events fall in a compound (weighted by households), the rest on the street around
//!   a compound. H3 res-8 cells are approximated by a 0.0078° × 0.009° grid (≈ 0.75 km², the
//!   res-8 cell area) so the crate needs no geo dependency; the detector treats cell codes as
//!   opaque strings either way.
//! * 虹桥镇 nightlife: extra PUB_DRUNK / PUB_FIGHT 21:00–01:00 around the 吴中路 bar strip,
//!   more on Friday and Saturday nights. 七宝镇: DSP_TOURIST around 七宝老街 in the daytime,
//!   more on weekends.
//! * Noise the detector must ignore: 8% of calls are followed by a flagged repeat call, and
//!   three times a week one doorplate calls 8 times within 40 minutes.
//!
//! # Injected spikes (test weeks only)
//! A spike of size k adds (k − 1) × E extra events, where E is the *true* expected count of a
//! reference series over a reference interval (from the simulator's rates, not the detector's
//! estimate):
//!
//! | spike | where | when | reference E | target window |
//! |---|---|---|---|---|
//! | fraud wave (FRAUD_FAKE_GOV/CS) | one compound | 4 h on a weekday, 09–17 | town × FRAUD over that day | 1 d |
//! | drunk fights (PUB_DRUNK/FIGHT) | 虹桥镇, 吴中路 strip | 22:00–01:00, two nights a week | town × PUB over 22:00–01:00 | 1 h |
//! | tourist disputes (DSP_TOURIST) | 七宝镇, 七宝老街 | 10:00–18:00 on a "holiday" (a different weekday each week) | town × DSP_TOURIST that day | 1 d |
//! | burglary series (CRIM_BURGLARY) | one compound | 3 days, mostly at night | town × CRIM_BURGLARY over 3 days | 1 d |
//!
//! A spike counts as detected by an alert of the same town and category whose window overlaps
//! the spike and whose `created_at` is after the spike started; "≤ 2 windows" means within two
//! target windows of the start. False alerts are all alerts of a run without spikes.
#![allow(clippy::print_stdout, clippy::print_stderr)] // the harness's output is its report

use std::collections::HashMap;
use std::error::Error;
use std::time::Instant;

use chrono::{DateTime, FixedOffset, TimeZone};
use pingan_detect::{
    AlertRecord, DetectArea, DetectConfig, DetectEvent, Detector, MethodChoice, SeriesLevel,
    WindowLen,
};
use pingan_domain::area::AreaIndex;
use pingan_domain::taxonomy::Taxonomy;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod amoc;
mod shapes;

/// Monday 2024-01-08 00:00 +08:00: the first baseline week.
const START: i64 = 1_704_643_200;
const BASELINE_WEEKS: i64 = 8;
const TEST_WEEKS: i64 = 4;
const WEEK: i64 = 7 * 86_400;
const CALLS_PER_DAY: f64 = 1_300.0;
const HONGQIAO: &str = "310112107";
const QIBAO: &str = "310112102";

/// Share of calls per category.
const CATEGORY_MIX: [(&str, f64); 10] = [
    ("DSP", 0.50),
    ("TRF", 0.12),
    ("HELP", 0.10),
    ("PUB", 0.08),
    ("CRIM", 0.06),
    ("FRAUD", 0.05),
    ("NONP", 0.05),
    ("HAZ", 0.02),
    ("RPT", 0.01),
    ("OTH", 0.01),
];

/// Relative subtype weights inside a category (others weigh 1).
const SUBTYPE_WEIGHTS: [(&str, f64); 12] = [
    ("CRIM_BURGLARY", 1.5),
    ("CRIM_CYCLE_THEFT", 3.0),
    ("DSP_NEIGHBOUR", 4.0),
    ("DSP_FAMILY", 3.0),
    ("DSP_CONSUMER", 2.0),
    ("DSP_TRAFFIC", 2.0),
    ("DSP_TOURIST", 0.1),
    ("TRF_ACCIDENT", 3.0),
    ("TRF_PARKING", 3.0),
    ("PUB_NOISE", 2.0),
    ("OTH_DUPLICATE", 0.0),
    ("FRAUD_FAKE_GOV", 1.5),
];

/// Hour-of-day rhythm (mean 1).
const RHYTHM: [f64; 24] = [
    0.55, 0.4, 0.3, 0.25, 0.25, 0.3, 0.5, 0.8, 1.1, 1.25, 1.3, 1.3, 1.25, 1.2, 1.2, 1.2, 1.25, 1.3,
    1.35, 1.4, 1.4, 1.3, 1.1, 0.8,
];

#[derive(Debug, Clone)]
struct Place {
    compound: Option<String>,
    station: String,
    lat: f64,
    lon: f64,
}

#[derive(Debug)]
struct TownSim {
    code: String,
    weight: f64,
    /// (compound id, station, lat, lon, cumulative households weight)
    compounds: Vec<(String, String, f64, f64, f64)>,
}

#[derive(Debug)]
struct Sim {
    towns: Vec<TownSim>,
    /// (code, category index, weight within category)
    subtypes: Vec<(String, usize, f64)>,
    nightlife: (f64, f64),
    old_street: (f64, f64),
    /// Start of a holiday week whose traffic is unusual (`shapes.rs`), if any.
    holiday: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Scenario {
    Fraud,
    Drunk,
    Tourist,
    Burglary,
    // The shapes the detector was not designed around (`shapes.rs`, `--shapes`).
    RampHours,
    RampDays,
    Border,
    NewHousing,
    Holiday,
    Slow,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::Fraud,
        Scenario::Drunk,
        Scenario::Tourist,
        Scenario::Burglary,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Fraud => "fraud wave",
            Scenario::Drunk => "drunk fights",
            Scenario::Tourist => "tourist disputes",
            Scenario::Burglary => "burglary series",
            Scenario::RampHours => "ramp over 6 h",
            Scenario::RampDays => "ramp over 4 days",
            Scenario::Border => "border brawl",
            Scenario::NewHousing => "new housing",
            Scenario::Holiday => "holiday-week fraud",
            Scenario::Slow => "slow burglary series",
        }
    }

    fn target_window(self) -> i64 {
        match self {
            Scenario::Drunk | Scenario::Border => 3600,
            Scenario::RampHours => 2 * 3600,
            Scenario::Slow => 7 * 86_400,
            _ => 86_400,
        }
    }
}

#[derive(Debug, Clone)]
struct Spike {
    scenario: Scenario,
    town: String,
    category: &'static str,
    start: i64,
    end: i64,
    /// True expected count of the reference series over the reference interval.
    reference: f64,
    place: Place,
    /// The areas an alert must be about to count for this spike (none: any area of `town`).
    /// The new shapes use it: a month-long slow series or a border cluster matched by town
    /// alone would be credited with unrelated alerts.
    areas: Option<Vec<(SeriesLevel, String)>>,
}

fn local_hour(t: i64) -> usize {
    ((t + 8 * 3600).rem_euclid(86_400) / 3600) as usize
}

/// Monday = 0.
fn weekday(t: i64) -> i64 {
    ((t + 8 * 3600).div_euclid(86_400) + 3).rem_euclid(7)
}

fn time(t: i64) -> Result<DateTime<FixedOffset>, Box<dyn Error>> {
    pingan_domain::time::shanghai()
        .timestamp_opt(t, 0)
        .single()
        .ok_or_else(|| "bad time".into())
}

fn grid(lat: f64, lon: f64) -> (i64, i64) {
    ((lat / 0.0078).floor() as i64, (lon / 0.009).floor() as i64)
}

/// The ≈ H3 res-8 grid cell of a point.
fn cell(lat: f64, lon: f64) -> String {
    let (i, j) = grid(lat, lon);
    format!("g{i}_{j}")
}

/// The ≈ k = 1 disk of a point's cell: the grid read as hexagons in offset rows (odd rows
/// shifted half a cell), so each cell has six neighbours like an H3 cell.
fn ring(lat: f64, lon: f64) -> Vec<String> {
    let (i, j) = grid(lat, lon);
    let side = if i.rem_euclid(2) == 1 { 1 } else { -1 };
    [
        (0, 0),
        (0, -1),
        (0, 1),
        (-1, 0),
        (1, 0),
        (-1, side),
        (1, side),
    ]
    .iter()
    .map(|(di, dj)| format!("g{}_{}", i + di, j + dj))
    .collect()
}

/// A 65 m grid cell (the edge of an H3 res-10 cell), then its eight neighbours: the harness's
/// stand-in for the res-10 disk the aggregator passes for linking other callers' reports of
/// one scene.
fn scene_cells(lat: f64, lon: f64) -> Vec<String> {
    let (y, x) = (
        (lat / 0.000585).floor() as i64,
        (lon / 0.00068).floor() as i64,
    );
    let mut cells = vec![format!("s{y}_{x}")];
    for dy in -1..=1 {
        for dx in -1..=1 {
            if (dy, dx) != (0, 0) {
                cells.push(format!("s{}_{}", y + dy, x + dx));
            }
        }
    }
    cells
}

fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    let l = (-lambda).exp();
    let (mut k, mut p) = (0, 1.0);
    loop {
        p *= rng.random::<f64>();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

fn jitter(rng: &mut ChaCha8Rng, (lat, lon): (f64, f64), metres: f64) -> (f64, f64) {
    let d = metres.max(1.0) / 111_000.0;
    (
        lat + rng.random_range(-d..d),
        lon + rng.random_range(-d..d) * 1.17,
    )
}

impl Sim {
    fn new() -> Result<Sim, Box<dyn Error>> {
        let areas = AreaIndex::builtin();
        let tax = Taxonomy::builtin();
        let mut towns = Vec::new();
        for t in areas.towns() {
            let mut acc = 0.0;
            let compounds: Vec<_> = areas
                .compounds()
                .iter()
                .filter(|c| c.town_code == t.code)
                .map(|c| {
                    acc += f64::from(c.households.max(100));
                    (c.id.clone(), c.station_code.clone(), c.lat, c.lon, acc)
                })
                .collect();
            if compounds.is_empty() {
                continue;
            }
            towns.push(TownSim {
                code: t.code.clone(),
                weight: acc,
                compounds,
            });
        }
        let total: f64 = towns.iter().map(|t| t.weight).sum();
        for t in &mut towns {
            t.weight /= total;
        }
        let mut subtypes = Vec::new();
        for (ci, (cat, _)) in CATEGORY_MIX.iter().enumerate() {
            let subs: Vec<(String, f64)> = tax
                .subtypes_of(cat)
                .map(|s| {
                    let w = SUBTYPE_WEIGHTS
                        .iter()
                        .find(|(c, _)| *c == s.code)
                        .map_or(1.0, |(_, w)| *w);
                    (s.code.clone(), w)
                })
                .collect();
            let sum: f64 = subs.iter().map(|s| s.1).sum();
            for (code, w) in subs {
                subtypes.push((code, ci, w / sum));
            }
        }
        let poi = |id: &str| {
            areas
                .poi(id)
                .map(|p| (p.lat, p.lon))
                .ok_or_else(|| format!("no POI {id}"))
        };
        Ok(Sim {
            towns,
            subtypes,
            nightlife: poi("POI-WUZHONG-NIGHTLIFE")?,
            old_street: poi("POI-QIBAO-OLDSTREET")?,
            holiday: None,
        })
    }

    /// True rate per hour of one town × subtype in the hour starting at `t`.
    fn rate(&self, town: usize, sub: usize, t: i64) -> f64 {
        let (code, cat, w) = &self.subtypes[sub];
        let h = local_hour(t);
        let wd = weekday(t);
        let weekend = if wd >= 5 { 1.05 } else { 1.0 };
        let mut r = CALLS_PER_DAY / 24.0
            * self.towns[town].weight
            * CATEGORY_MIX[*cat].1
            * w
            * RHYTHM[h]
            * weekend;
        let tc = self.towns[town].code.as_str();
        if tc == HONGQIAO && (code == "PUB_DRUNK" || code == "PUB_FIGHT") {
            // The nightlife hours belong to the evening before: Friday/Saturday nights are busier.
            let night_of = if h < 3 { (wd + 6) % 7 } else { wd };
            let fri_sat = if night_of == 4 || night_of == 5 {
                1.6
            } else {
                1.0
            };
            r += fri_sat
                * match h {
                    21 => 0.5,
                    22 | 23 => 1.0,
                    0 => 0.6,
                    1 => 0.3,
                    _ => 0.0,
                };
        }
        if tc == QIBAO && code == "DSP_TOURIST" && (9..20).contains(&h) {
            r += if wd >= 5 { 0.9 } else { 0.35 };
        }
        if self.holiday.is_some_and(|h0| (h0..h0 + WEEK).contains(&t)) {
            r *= shapes::holiday_factor(code);
        }
        r
    }

    /// True expected count of town × (category | subtype) over `[from, to)`.
    fn expected(&self, town: usize, what: &str, from: i64, to: i64) -> f64 {
        let mut e = 0.0;
        let mut t = from - from.rem_euclid(3600);
        while t < to {
            let frac = ((to.min(t + 3600) - from.max(t)) as f64 / 3600.0).max(0.0);
            for (i, (code, cat, _)) in self.subtypes.iter().enumerate() {
                if code == what || CATEGORY_MIX[*cat].0 == what {
                    e += self.rate(town, i, t) * frac;
                }
            }
            t += 3600;
        }
        e
    }

    fn town_index(&self, code: &str) -> usize {
        self.towns.iter().position(|t| t.code == code).unwrap_or(0)
    }

    fn random_compound(&self, rng: &mut ChaCha8Rng, town: usize) -> Place {
        let cs = &self.towns[town].compounds;
        let total = cs.last().map_or(1.0, |c| c.4);
        let x = rng.random::<f64>() * total;
        let i = cs.partition_point(|c| c.4 < x).min(cs.len() - 1);
        let (id, station, lat, lon, _) = &cs[i];
        Place {
            compound: Some(id.clone()),
            station: station.clone(),
            lat: *lat,
            lon: *lon,
        }
    }

    /// A place for an ordinary event in `town`.
    fn place(&self, rng: &mut ChaCha8Rng, town: usize) -> Place {
        let p = self.random_compound(rng, town);
        if rng.random::<f64>() < 0.6 {
            let (lat, lon) = jitter(rng, (p.lat, p.lon), 80.0);
            Place { lat, lon, ..p }
        } else {
            let (lat, lon) = jitter(rng, (p.lat, p.lon), 700.0);
            Place {
                compound: None,
                lat,
                lon,
                ..p
            }
        }
    }

    /// A street place near a POI in `town`.
    fn near(&self, rng: &mut ChaCha8Rng, town: usize, poi: (f64, f64), metres: f64) -> Place {
        let station = self.towns[town]
            .compounds
            .first()
            .map(|c| c.1.clone())
            .unwrap_or_default();
        let (lat, lon) = jitter(rng, poi, metres);
        Place {
            compound: None,
            station,
            lat,
            lon,
        }
    }
}

fn keywords(subtype: &str) -> Vec<String> {
    let k: &[&str] = match subtype {
        "FRAUD_FAKE_GOV" => &["公检法", "安全账户"],
        "FRAUD_FAKE_CS" => &["客服", "退款"],
        "PUB_DRUNK" => &["喝醉", "酒吧"],
        "PUB_FIGHT" => &["打架", "酒吧"],
        "DSP_TOURIST" => &["游客", "门票"],
        "CRIM_BURGLARY" => &["撬锁", "被盗"],
        _ => &[],
    };
    k.iter().map(|s| (*s).to_owned()).collect()
}

struct Builder<'a> {
    sim: &'a Sim,
    next_id: u128,
    out: Vec<DetectEvent>,
}

impl Builder<'_> {
    fn push(
        &mut self,
        t: i64,
        town: usize,
        subtype: &str,
        place: &Place,
        reporter: Option<String>,
        repeat: bool,
    ) {
        self.next_id += 1;
        let category = subtype.split('_').next().unwrap_or("OTH").to_owned();
        self.out.push(DetectEvent {
            event_id: self.next_id,
            event_time: pingan_domain::time::shanghai()
                .timestamp_opt(t, 0)
                .single()
                .unwrap_or_default(),
            area: DetectArea {
                town_code: Some(self.sim.towns[town].code.clone()),
                station_code: Some(place.station.clone()),
                compound_id: place.compound.clone(),
                h3_r8: Some(cell(place.lat, place.lon)),
                h3_ring: ring(place.lat, place.lon),
                // From the simulated location, as the classifier does for real calls: baseline
                // and spike events alike land in a hot spot only if their point lies in it.
                poi_id: AreaIndex::builtin()
                    .poi_at(place.lat, place.lon)
                    .map(|p| p.id.clone()),
                link_cells: scene_cells(place.lat, place.lon),
            },
            category,
            subtype: subtype.to_owned(),
            repeat,
            reporter_key: Some(reporter.unwrap_or_else(|| format!("caller-{}", self.next_id))),
            keywords: keywords(subtype),
        });
    }
}

/// Twelve weeks of baseline traffic, repeats and crank callers.
fn baseline(sim: &Sim, seed: u64) -> Vec<DetectEvent> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut b = Builder {
        sim,
        next_id: 0,
        out: Vec::with_capacity(170_000),
    };
    let hours = (BASELINE_WEEKS + TEST_WEEKS) * 168;
    let (hq, qb) = (sim.town_index(HONGQIAO), sim.town_index(QIBAO));
    for hour in 0..hours {
        let t0 = START + hour * 3600;
        for town in 0..sim.towns.len() {
            for (sub, (code, _, _)) in sim.subtypes.iter().enumerate() {
                let n = poisson(&mut rng, sim.rate(town, sub, t0));
                for _ in 0..n {
                    let t = t0 + rng.random_range(0..3600);
                    let place = if town == hq
                        && (code == "PUB_DRUNK" || code == "PUB_FIGHT")
                        && rng.random::<f64>() < 0.6
                    {
                        sim.near(&mut rng, town, sim.nightlife, 250.0)
                    } else if town == qb && code == "DSP_TOURIST" && rng.random::<f64>() < 0.8 {
                        sim.near(&mut rng, town, sim.old_street, 300.0)
                    } else {
                        sim.place(&mut rng, town)
                    };
                    b.push(t, town, code, &place, None, false);
                    if rng.random::<f64>() < 0.08 {
                        let dt = rng.random_range(60..900);
                        b.push(t + dt, town, code, &place, None, true);
                    }
                }
            }
        }
    }
    // Crank callers: one doorplate, 8 calls in 40 minutes, three times a week.
    for i in 0..(BASELINE_WEEKS + TEST_WEEKS) * 3 {
        let town = rng.random_range(0..sim.towns.len());
        let place = sim.random_compound(&mut rng, town);
        let t0 = START + rng.random_range(0..(BASELINE_WEEKS + TEST_WEEKS) * WEEK);
        let sub = if i % 2 == 0 {
            "DSP_NEIGHBOUR"
        } else {
            "PUB_NOISE"
        };
        for j in 0..8 {
            b.push(
                t0 + j * 300,
                town,
                sub,
                &place,
                Some(format!("plate-crank-{i}")),
                false,
            );
        }
    }
    b.out
}

/// Share of incidents that several people phone in without being linked as repeats.
const UNLINKED_SHARE: f64 = 0.03;

/// Noise the minimum counts exist for: a share of incidents (any subtype, burglaries included)
/// is phoned in by one to three more callers within 15 minutes (until police arrive), at the
/// same place, each from
/// their own number and not flagged as a repeat. Drawn from its own random stream, so the rest
/// of the baseline is the same with or without it.
fn unlinked_callers(base: &[DetectEvent], share: f64, seed: u64) -> Vec<DetectEvent> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xec40);
    let mut out = Vec::new();
    let mut next_id = 1_u128 << 60;
    for e in base.iter().filter(|e| {
        !e.repeat
            && e.reporter_key
                .as_deref()
                .is_some_and(|r| r.starts_with("caller-"))
    }) {
        if rng.random::<f64>() >= share {
            continue;
        }
        for _ in 0..rng.random_range(1..=3) {
            next_id += 1;
            let mut echo = e.clone();
            echo.event_id = next_id;
            echo.event_time += chrono::Duration::seconds(rng.random_range(30..900));
            echo.reporter_key = Some(format!("caller-{next_id}"));
            out.push(echo);
        }
    }
    out
}

/// The labelled spike instances of the test weeks (positions only; sizes come later).
fn schedule(sim: &Sim, seed: u64) -> Vec<Spike> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let test0 = START + BASELINE_WEEKS * WEEK;
    let mut spikes = Vec::new();
    let (hq, qb) = (sim.town_index(HONGQIAO), sim.town_index(QIBAO));
    for week in 0..TEST_WEEKS {
        let w0 = test0 + week * WEEK;
        // Fraud waves on Monday, Wednesday, Friday in different towns.
        for (j, day) in [0_i64, 2, 4].into_iter().enumerate() {
            let town = (week as usize * 3 + j * 5 + 1) % sim.towns.len();
            let start = w0 + day * 86_400 + rng.random_range(9..14) * 3600;
            let day0 = w0 + day * 86_400;
            spikes.push(Spike {
                scenario: Scenario::Fraud,
                town: sim.towns[town].code.clone(),
                category: "FRAUD",
                start,
                end: start + 4 * 3600,
                reference: sim.expected(town, "FRAUD", day0, day0 + 86_400),
                place: sim.random_compound(&mut rng, town),
                areas: None,
            });
        }
        // Drunk fights on two nights a week, on different weekdays from week to week: a surge
        // at the same hour every week would (rightly) become part of the baseline.
        let nights: [[i64; 2]; 4] = [[1, 5], [2, 4], [0, 3], [6, 1]];
        for day in nights[week as usize % 4] {
            let start = w0 + day * 86_400 + 22 * 3600;
            spikes.push(Spike {
                scenario: Scenario::Drunk,
                town: HONGQIAO.to_owned(),
                category: "PUB",
                start,
                end: start + 3 * 3600,
                reference: sim.expected(hq, "PUB", start, start + 3 * 3600),
                place: sim.near(&mut rng, hq, sim.nightlife, 0.0),
                areas: None,
            });
        }
        // Tourist disputes on a "holiday": Sunday, Saturday, a Wednesday, a Monday.
        let holiday = [6_i64, 5, 2, 0][week as usize % 4];
        let day0 = w0 + holiday * 86_400;
        spikes.push(Spike {
            scenario: Scenario::Tourist,
            town: QIBAO.to_owned(),
            category: "DSP",
            start: day0 + 10 * 3600,
            end: day0 + 18 * 3600,
            reference: sim.expected(qb, "DSP_TOURIST", day0, day0 + 86_400),
            place: sim.near(&mut rng, qb, sim.old_street, 0.0),
            areas: None,
        });
        // Two burglary series a week, Tuesday–Thursday, in towns without a fraud wave that day.
        for j in 0..2 {
            let town = (week as usize * 5 + j * 7 + 3) % sim.towns.len();
            let start = w0 + 86_400;
            spikes.push(Spike {
                scenario: Scenario::Burglary,
                town: sim.towns[town].code.clone(),
                category: "CRIM",
                start,
                end: start + 3 * 86_400,
                reference: sim.expected(town, "CRIM_BURGLARY", start, start + 3 * 86_400),
                place: sim.random_compound(&mut rng, town),
                areas: None,
            });
        }
    }
    spikes
}

/// The extra events of every spike at size `k`.
fn inject(sim: &Sim, spikes: &[Spike], k: f64, seed: u64) -> Vec<DetectEvent> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1a7e);
    let mut b = Builder {
        sim,
        next_id: 1 << 40,
        out: Vec::new(),
    };
    for s in spikes {
        if shapes::is_shape(s.scenario) {
            let n = shapes::count(s, k);
            for i in 0..n {
                let (subtype, t, place, town) = shapes::extra_event(sim, &mut rng, s, i, n);
                b.push(t, town, subtype, &place, None, false);
            }
            continue;
        }
        let n = ((k - 1.0) * s.reference).round() as i64;
        let town = sim.town_index(&s.town);
        for i in 0..n {
            let (subtype, t, place) = match s.scenario {
                Scenario::Fraud => {
                    let sub = if i % 5 < 3 {
                        "FRAUD_FAKE_GOV"
                    } else {
                        "FRAUD_FAKE_CS"
                    };
                    (sub, rng.random_range(s.start..s.end), s.place.clone())
                }
                Scenario::Drunk => {
                    let sub = if i % 2 == 0 { "PUB_DRUNK" } else { "PUB_FIGHT" };
                    (
                        sub,
                        rng.random_range(s.start..s.end),
                        sim.near(&mut rng, town, sim.nightlife, 250.0),
                    )
                }
                Scenario::Tourist => (
                    "DSP_TOURIST",
                    rng.random_range(s.start..s.end),
                    sim.near(&mut rng, town, sim.old_street, 300.0),
                ),
                _ => {
                    // Mostly at night: pick a day, then an hour in 00–06 (or any hour, 1 in 4).
                    let day = rng.random_range(0..3);
                    let hour = if rng.random::<f64>() < 0.75 {
                        rng.random_range(0..6)
                    } else {
                        rng.random_range(0..24)
                    };
                    let t = s.start + day * 86_400 + hour * 3600 + rng.random_range(0..3600);
                    ("CRIM_BURGLARY", t.min(s.end - 1), s.place.clone())
                }
            };
            b.push(t, town, subtype, &place, None, false);
        }
    }
    b.out
}

struct RunResult {
    alerts: Vec<AlertRecord>,
    suppressed: Vec<pingan_detect::Suppression>,
    events: usize,
    secs: f64,
    /// Series the detector tracked at the end.
    series: usize,
    /// Seconds spent streaming (ingest + evaluate), without building and seeding.
    stream_secs: f64,
}

/// Seeds the baseline weeks, then streams the test weeks with a tick every minute.
fn run(
    cfg: &DetectConfig,
    base: &[DetectEvent],
    extra: &[DetectEvent],
) -> Result<RunResult, Box<dyn Error>> {
    let started = Instant::now();
    let mut d = Detector::new(cfg.clone())?;
    let test0 = START + BASELINE_WEEKS * WEEK;
    let mut seed: HashMap<(DetectArea, String, String, i64), u32> = HashMap::new();
    let mut stream: Vec<&DetectEvent> = Vec::new();
    for e in base.iter().chain(extra) {
        let t = e.event_time.timestamp();
        if t < test0 {
            if !e.repeat {
                *seed
                    .entry((
                        e.area.clone(),
                        e.category.clone(),
                        e.subtype.clone(),
                        t - t.rem_euclid(3600),
                    ))
                    .or_insert(0) += 1;
            }
        } else {
            stream.push(e);
        }
    }
    let mut rows: Vec<_> = seed.into_iter().collect();
    rows.sort_by_key(|r| r.0.3);
    for ((area, cat, sub, hour), n) in rows {
        d.seed_hour(&area, &cat, &sub, time(hour)?, n)?;
    }
    stream.sort_by_key(|e| (e.event_time, e.event_id));
    let streaming = Instant::now();
    let mut alerts = Vec::new();
    let mut suppressed = Vec::new();
    // Simulated seconds between evaluations (60 by default; a larger value shows what ingest
    // alone costs, as in a backlog drain where the aggregator ticks every few wall seconds).
    let every: i64 = std::env::var("PINGAN_EVAL_TICK_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let memory = std::env::var_os("PINGAN_EVAL_MEMORY").is_some();
    // `PINGAN_EVAL_TRACE=SUBTYPE@FROM..TO` (unix seconds) prints what became of each event.
    let trace = std::env::var("PINGAN_EVAL_TRACE").ok().and_then(|v| {
        let (sub, span) = v.split_once('@')?;
        let (a, b) = span.split_once("..")?;
        Some((
            sub.to_owned(),
            a.parse::<i64>().ok()?,
            b.parse::<i64>().ok()?,
        ))
    });
    let mut tick = test0;
    for e in &stream {
        let t = e.event_time.timestamp();
        if t >= tick + every {
            if memory && t % 86_400 < every {
                let st = d.stats();
                eprintln!(
                    "  day {}: {} series, {} windows, {} profiles, {} history buckets",
                    (t - test0) / 86_400,
                    st.series,
                    st.open_windows,
                    st.profiles,
                    d.history_buckets()
                );
                let parts: Vec<String> = d
                    .memory_census()
                    .iter()
                    .map(|(part, bytes)| format!("{part} {:.1}", *bytes as f64 / 1e6))
                    .collect();
                eprintln!("    MB: {}", parts.join(", "));
            }
            let ev = d.evaluate(time(tick + every)?);
            alerts.extend(ev.alerts);
            suppressed.extend(ev.suppressed);
            tick = t - t.rem_euclid(every);
        }
        let how = d.ingest(e)?;
        if let Some((sub, from, to)) = &trace {
            let t = e.event_time.timestamp();
            if e.subtype == *sub && t >= *from && t < *to {
                eprintln!(
                    "   event {} {}{} {:?} {:?} poi={:?} r8={:?} {:?}",
                    e.event_time,
                    e.subtype,
                    // Injected events are numbered from 2^40.
                    if e.event_id >= 1 << 40 {
                        " (spike)"
                    } else {
                        ""
                    },
                    e.area.town_code,
                    e.area.compound_id,
                    e.area.poi_id,
                    e.area.h3_r8,
                    how
                );
            }
        }
    }
    alerts.extend(d.evaluate(time(tick + every)?).alerts);
    alerts.extend(
        d.evaluate(time(
            START + (BASELINE_WEEKS + TEST_WEEKS) * WEEK + 8 * 86_400,
        )?)
        .alerts,
    );
    Ok(RunResult {
        alerts,
        suppressed,
        events: stream.len(),
        secs: started.elapsed().as_secs_f64(),
        series: {
            let st = d.stats();
            eprintln!(
                "  detector at the end: {} series, {} windows held, {} counted, {} linked",
                st.series, st.open_windows, st.counted, st.linked
            );
            st.series
        },
        stream_secs: streaming.elapsed().as_secs_f64(),
    })
}

/// Whether `a` is about spike `s`.
fn matches(a: &AlertRecord, s: &Spike) -> bool {
    let area = match &s.areas {
        None => a.town_code.as_deref() == Some(s.town.as_str()),
        Some(areas) => {
            let has = |l: SeriesLevel, c: &str| areas.iter().any(|(al, ac)| *al == l && ac == c);
            has(a.area_level, &a.area_code)
                || a.members.iter().any(|m| has(m.area_level, &m.area_code))
        }
    };
    area && a.category == s.category
        && a.window_start.timestamp() < s.end
        && a.window_end.timestamp() > s.start
        && a.created_at.timestamp() >= s.start
}

#[derive(Debug, Default, Clone)]
struct Score {
    total: usize,
    detected: usize,
    within_two: usize,
    delays: Vec<f64>,
}

impl Score {
    fn median_delay(&self) -> Option<f64> {
        let mut d = self.delays.clone();
        if d.is_empty() {
            return None;
        }
        d.sort_by(f64::total_cmp);
        Some(d[d.len() / 2])
    }
}

fn score(alerts: &[AlertRecord], spikes: &[Spike]) -> (HashMap<Scenario, Score>, usize) {
    let mut by: HashMap<Scenario, Score> = HashMap::new();
    for s in spikes {
        let e = by.entry(s.scenario).or_default();
        e.total += 1;
        let first = alerts
            .iter()
            .filter(|a| matches(a, s))
            .map(|a| a.created_at.timestamp())
            .min();
        if let Some(t) = first {
            e.detected += 1;
            e.delays.push((t - s.start) as f64 / 60.0);
            if t - s.start <= 2 * s.scenario.target_window() {
                e.within_two += 1;
            }
        }
    }
    let unmatched = alerts
        .iter()
        .filter(|a| a.version == 1 && !spikes.iter().any(|s| matches(a, s)))
        .count();
    (by, unmatched)
}

fn method_name(m: MethodChoice) -> &'static str {
    match m {
        MethodChoice::Auto => "auto",
        MethodChoice::Poisson => "poisson",
        MethodChoice::NegBin => "negbin",
        MethodChoice::Ewma => "ewma",
        MethodChoice::C2 => "ears_c2",
        MethodChoice::Cusum => "cusum",
        MethodChoice::AutoCusum => "auto_cusum",
    }
}

/// The value after `--name` on the command line.
fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// `sep`-separated codes parsed by `parse` (`what` names them in the error).
fn codes<T>(
    v: &str,
    sep: char,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, String> {
    v.split(sep)
        .map(|c| parse(c).ok_or(format!("unknown {what} {c}")))
        .collect()
}

/// Every method the harness knows.
const METHODS: [MethodChoice; 7] = [
    MethodChoice::Auto,
    MethodChoice::NegBin,
    MethodChoice::Poisson,
    MethodChoice::Ewma,
    MethodChoice::C2,
    MethodChoice::Cusum,
    MethodChoice::AutoCusum,
];

/// The detector configuration for method `m`: the defaults, changed by the tuning flags.
fn configure(args: &[String], m: MethodChoice) -> Result<DetectConfig, Box<dyn Error>> {
    let methods = METHODS;
    let mut cfg = DetectConfig {
        method: m,
        ..DetectConfig::default()
    };
    // Tuning knobs: `--dense X` (auto's switch), `--yellow-p X`, `--min-observed N`.
    let flag = |name: &str| arg(args, name).and_then(|v| v.parse::<f64>().ok());
    if let Some(x) = flag("--link-minutes") {
        cfg.link_minutes = x as u32;
    }
    if args.iter().any(|a| a == "--no-subtype-min") {
        cfg.min_counts_by_subtype.clear();
    }
    // Burglary-series knobs: `--burglary-min N`, `--burglary-excess X`, `--burglary-gap M`,
    // `--burglary-yellow-p X`, `--burglary-floor X` (events/h),
    // `--burglary-levels compound+h3_r8`.
    if let Some(m) = cfg.min_counts_by_subtype.get_mut("CRIM_BURGLARY") {
        if let Some(x) = flag("--burglary-min") {
            m.min_observed = x as u32;
        }
        if let Some(x) = flag("--burglary-excess") {
            m.min_excess = x;
        }
        if let Some(x) = flag("--burglary-yellow-p") {
            m.yellow_max_p = Some(x);
        }
        if let Some(x) = flag("--burglary-floor") {
            m.expected_floor_per_hour = Some(x);
        }
        if let Some(x) = flag("--burglary-gap") {
            m.min_gap_minutes = Some(x as u32);
        }
        if let Some(v) = arg(args, "--burglary-levels") {
            m.levels = codes(v, '+', "level", SeriesLevel::parse)?;
        }
    }
    // `--victim-reported FRAUD,CRIM_THEFT_OTHER` (`none`: link every subtype).
    if let Some(v) = arg(args, "--victim-reported") {
        cfg.victim_reported = v
            .split(',')
            .filter(|c| *c != "none")
            .map(str::to_owned)
            .collect();
    }
    // `--no-dense-bonferroni`: `auto` takes the smaller p-value as it is (before issue 22).
    if args.iter().any(|a| a == "--no-dense-bonferroni") {
        cfg.dense_bonferroni = false;
    }
    if let Some(x) = flag("--dense") {
        cfg.dense_min_expected = x;
    }
    if let Some(x) = flag("--yellow-p") {
        cfg.levels_gates.yellow.max_p = x;
    }
    if let Some(x) = flag("--min-observed") {
        cfg.min_observed = x as u32;
    }
    // CUSUM knobs: `--cusum-h X`, `--cusum-shift X`, `--cusum-rate X` (hourly bins from).
    if let Some(x) = flag("--cusum-h") {
        cfg.cusum_threshold = x;
    }
    if let Some(x) = flag("--cusum-shift") {
        cfg.cusum_shift = x;
    }
    if let Some(x) = flag("--cusum-rate") {
        cfg.cusum_hourly_min_rate = x;
    }
    // Ablations: `--windows 15m,1h,1d,7d`, `--levels town,station,compound,h3_r8`.
    if let Some(v) = arg(args, "--windows") {
        cfg.windows = codes(v, ',', "window", WindowLen::parse)?;
    }
    // Per-level methods: `--level-methods h3_r8_k1=cusum,compound=auto_cusum`; `--method`
    // then sets the others (the default's own per-level methods are kept unless named).
    if let Some(v) = arg(args, "--level-methods") {
        for item in v.split(',') {
            let (l, m) = item.split_once('=').ok_or(format!("bad {item}"))?;
            let level = SeriesLevel::parse(l).ok_or(format!("unknown level {l}"))?;
            let method = methods
                .iter()
                .copied()
                .find(|x| method_name(*x) == m)
                .ok_or(format!("unknown method {m}"))?;
            cfg.methods_by_level.insert(level, method);
        }
    }
    // Hot-spot knobs: `--poi-yellow-p X`, `--poi-orange-p X`, `--poi-cusum-h X`,
    // `--poi-min N`, and `--level-windows poi=1h+2h+1d` (windows per level, `+`-separated).
    if let Some(x) = flag("--poi-yellow-p") {
        let g = cfg.gates_by_level.entry(SeriesLevel::Poi).or_default();
        g.yellow.max_p = x;
        g.orange.max_p = g.orange.max_p.min(x);
    }
    if let Some(x) = flag("--poi-orange-p") {
        cfg.gates_by_level
            .entry(SeriesLevel::Poi)
            .or_default()
            .orange
            .max_p = x;
    }
    if let Some(x) = flag("--poi-min") {
        cfg.gates_by_level
            .entry(SeriesLevel::Poi)
            .or_default()
            .min_observed = Some(x as u32);
    }
    if let Some(x) = flag("--poi-cusum-h") {
        cfg.cusum_threshold_by_level.insert(SeriesLevel::Poi, x);
    }
    if let Some(v) = arg(args, "--level-windows") {
        for item in v.split(',') {
            let (l, ws) = item.split_once('=').ok_or(format!("bad {item}"))?;
            let level = SeriesLevel::parse(l).ok_or(format!("unknown level {l}"))?;
            let ws = codes(ws, '+', "window", WindowLen::parse)?;
            cfg.windows_by_level.insert(level, ws);
        }
    }
    if let Some(v) = arg(args, "--levels") {
        cfg.levels = codes(v, ',', "level", SeriesLevel::parse)?;
    }
    Ok(cfg)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--amoc") {
        return amoc::main(&args);
    }
    let seed = arg(&args, "--seed")
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_240_304_u64);
    let only: Option<String> = arg(&args, "--method").map(str::to_owned);

    let sim = Sim::new()?;
    let unlinked = arg(&args, "--unlinked")
        .and_then(|s| s.parse().ok())
        .unwrap_or(UNLINKED_SHARE);
    let mut base = baseline(&sim, seed);
    let echoes = unlinked_callers(&base, unlinked, seed);
    eprintln!(
        "baseline: {} events, plus {} unlinked calls about the same incidents (share {unlinked})",
        base.len(),
        echoes.len()
    );
    base.extend(echoes);
    let spikes = schedule(&sim, seed);
    let towns = sim.towns.len() as f64;
    let per_day = base.iter().filter(|e| !e.repeat).count() as f64
        / ((BASELINE_WEEKS + TEST_WEEKS) * 7) as f64;
    println!(
        "simulated {} events ({per_day:.0} counted calls/day, {} repeats) over {} weeks in {} towns; {} labelled spikes per size; seed {seed}",
        base.len(),
        base.iter().filter(|e| e.repeat).count(),
        BASELINE_WEEKS + TEST_WEEKS,
        sim.towns.len(),
        spikes.len()
    );
    for sc in Scenario::ALL {
        let refs: Vec<f64> = spikes
            .iter()
            .filter(|s| s.scenario == sc)
            .map(|s| s.reference)
            .collect();
        let mean = refs.iter().sum::<f64>() / refs.len().max(1) as f64;
        println!(
            "  {:<17} {} instances, reference E ≈ {mean:.1} events (3× adds ≈ {:.0})",
            sc.name(),
            refs.len(),
            2.0 * mean
        );
    }
    println!();
    println!(
        "| method | size | {} | 3×-style overall ≤2w | false alerts / town / week |",
        Scenario::ALL
            .iter()
            .map(|s| format!("{} det / ≤2w / median delay", s.name()))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|---|{}---|---|", "---|".repeat(Scenario::ALL.len()));

    for m in METHODS {
        if only.as_deref().is_some_and(|o| o != method_name(m)) {
            continue;
        }
        let cfg = configure(&args, m)?;
        let quiet = run(&cfg, &base, &[])?;
        let false_rate = quiet.alerts.iter().filter(|a| a.version == 1).count() as f64
            / towns
            / TEST_WEEKS as f64;
        let sizes: Vec<f64> = arg(&args, "--sizes").map_or(vec![2.0, 3.0, 5.0], |v| {
            v.split(',').filter_map(|x| x.parse().ok()).collect()
        });
        for &k in &sizes {
            let extra = inject(&sim, &spikes, k, seed);
            let r = run(&cfg, &base, &extra)?;
            let (by, unmatched) = score(&r.alerts, &spikes);
            if let Ok(which) = std::env::var("PINGAN_EVAL_DEBUG") {
                for s in spikes
                    .iter()
                    .filter(|s| s.scenario.name().starts_with(which.as_str()))
                {
                    eprintln!(
                        "spike {} {} {}..{} E={:.1} k={k}",
                        s.scenario.name(),
                        s.town,
                        time(s.start)?,
                        time(s.end)?,
                        s.reference
                    );
                    for a in r.alerts.iter().filter(|a| {
                        a.town_code.as_deref() == Some(s.town.as_str())
                            && a.category == s.category
                            && a.window_start.timestamp() < s.end + 86_400
                            && a.window_end.timestamp() > s.start - 86_400
                    }) {
                        eprintln!(
                            "   v{} {} @{}{}",
                            a.version,
                            a.summary(),
                            a.created_at,
                            a.baseline.cusum.as_ref().map_or(String::new(), |c| format!(
                                " (cusum {} from {}, S={:.1})",
                                c.bin, c.span_start, c.statistic
                            ))
                        );
                    }
                    for x in r.suppressed.iter().filter(|x| {
                        x.alert_key.contains(s.town.as_str())
                            || x.at.timestamp() >= s.start && x.at.timestamp() < s.end
                    }) {
                        if x.at.timestamp() >= s.start - 3600
                            && x.at.timestamp() < s.end + 86_400
                            && x.alert_key.contains(s.category)
                        {
                            eprintln!(
                                "   suppressed {:?} {} {} @{}",
                                x.reason, x.level, x.alert_key, x.at
                            );
                        }
                    }
                }
            }
            let mut cells = Vec::new();
            let (mut tot, mut two) = (0, 0);
            for sc in Scenario::ALL {
                let s = by.get(&sc).cloned().unwrap_or_default();
                tot += s.total;
                two += s.within_two;
                let delay = s
                    .median_delay()
                    .map_or("–".to_owned(), |d| format!("{d:.0} min"));
                cells.push(format!(
                    "{}/{} / {}/{} / {delay}",
                    s.detected, s.total, s.within_two, s.total
                ));
            }
            println!(
                "| {} | {k}× | {} | {:.0}% | {false_rate:.2} (quiet run); {:.2} unmatched in this run |",
                method_name(m),
                cells.join(" | "),
                100.0 * two as f64 / tot.max(1) as f64,
                unmatched as f64 / towns / TEST_WEEKS as f64,
            );
            eprintln!(
                "  {} {k}×: streamed {} events in {:.1}s ({:.0} events/s, seeding included)",
                method_name(m),
                r.events,
                r.secs,
                r.events as f64 / r.secs.max(1e-9)
            );
        }
        eprintln!(
            "{}: quiet run {} events in {:.1}s ({:.0} events/s, seeding included); detection path alone {:.1}s = {:.0} events/s; {} series",
            method_name(m),
            quiet.events,
            quiet.secs,
            quiet.events as f64 / quiet.secs.max(1e-9),
            quiet.stream_secs,
            quiet.events as f64 / quiet.stream_secs.max(1e-9),
            quiet.series
        );
        {
            // What the false alerts of the default look like.
            // CUSUM alerts are listed by their bin (`cusum:1h`), window alerts by window.
            let mut by_kind: HashMap<(String, String, String), usize> = HashMap::new();
            for a in quiet.alerts.iter().filter(|a| a.version == 1) {
                let window = a
                    .baseline
                    .cusum
                    .as_ref()
                    .map_or(a.window.to_string(), |c| format!("cusum:{}", c.bin));
                *by_kind
                    .entry((a.area_level.to_string(), window, a.level.to_string()))
                    .or_insert(0) += 1;
            }
            let mut v: Vec<_> = by_kind.into_iter().collect();
            v.sort();
            eprintln!("  quiet-run alerts by level/window/colour: {v:?}");
            let mut by_category: HashMap<String, usize> = HashMap::new();
            for a in quiet.alerts.iter().filter(|a| a.version == 1) {
                let what = a.subtype.clone().unwrap_or_else(|| a.category.clone());
                *by_category.entry(what).or_insert(0) += 1;
            }
            let mut c: Vec<_> = by_category.into_iter().collect();
            c.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            eprintln!("  quiet-run alerts by category/subtype: {c:?}");
            // `PINGAN_EVAL_FALSE=all` lists every false alert, with its time.
            let all = std::env::var("PINGAN_EVAL_FALSE").is_ok_and(|v| v == "all");
            for a in quiet.alerts.iter().filter(|a| a.version == 1).take(if all {
                usize::MAX
            } else {
                8
            }) {
                eprintln!("    {} @{}", a.summary(), a.created_at);
            }
        }
    }
    Ok(())
}
