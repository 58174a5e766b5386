//! Spike shapes the detector was not designed around (issue 22): a rise over hours, a rise
//! over days, a cluster on a town border, a compound with no history, a spike in a holiday
//! week whose own traffic is unusual, and a slow series. `--amoc --shapes` runs them on the
//! held-out seeds; they are scheduled apart from the four designed spikes (a run of their
//! own), and each is matched only by alerts about its own areas (`Spike::areas`).
//!
//! | shape | what | size *k* adds | target window |
//! |---|---|---|---|
//! | ramp over 6 h | HELP_MEDICAL calls in one compound, density rising linearly from 0 over 6 h (from 08–11 on a weekday) | (k − 1) × the town's HELP over the 6 h | 2 h |
//! | ramp over 4 days | CRIM_CYCLE_THEFT on the streets (≈ 300 m) around one compound, density rising linearly over Monday–Thursday | (k − 1) × the town's bicycle thefts over the 4 days | 1 d |
//! | border brawl | PUB_FIGHT / PUB_DRUNK within ≈ 250 m of a grid corner between the nearest compounds of two towns, 20:00–24:00; each call is in the town of the nearer compound | (k − 1) × both towns' PUB over the 4 h | 1 h |
//! | new housing | a fraud wave (4 h) in a compound that is not in the reference data and has traffic only from the first test week: one on day 3 (2 days of history), one in week 3 | (k − 1) × the town's FRAUD that day | 1 d |
//! | holiday-week fraud | the third test week is a Spring-Festival-like week (every rate × 0.6, family disputes × 1.4, nightlife × 0.8); fraud waves (4 h, one compound) on its Tuesday and Thursday | (k − 1) × the town's FRAUD that (holiday) day | 1 d |
//! | slow burglary series | one extra burglary a week for the 4 test weeks in one compound (at night) | 4 burglaries whatever *k* | 7 d |

use pingan_detect::{DetectEvent, SeriesLevel};
use pingan_domain::area::AreaIndex;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{
    BASELINE_WEEKS, Builder, Place, START, Scenario, Sim, Spike, TEST_WEEKS, WEEK, cell, jitter,
    poisson, ring,
};

/// The shapes, in report order.
pub(crate) const SHAPES: [Scenario; 6] = [
    Scenario::RampHours,
    Scenario::RampDays,
    Scenario::Border,
    Scenario::NewHousing,
    Scenario::Holiday,
    Scenario::Slow,
];

/// The holiday week: the third test week.
pub(crate) fn holiday_start() -> i64 {
    START + (BASELINE_WEEKS + 2) * WEEK
}

pub(crate) fn is_shape(s: Scenario) -> bool {
    SHAPES.contains(&s)
}

/// How a subtype's rate changes in the holiday week: the city empties (× 0.6), families meet
/// (family disputes × 1.4), bars are quieter (× 0.8).
pub(crate) fn holiday_factor(subtype: &str) -> f64 {
    if subtype == "DSP_FAMILY" {
        1.4
    } else if subtype.starts_with("PUB_") {
        0.8
    } else {
        0.6
    }
}

/// Extra events of spike `s` at size `k`.
pub(crate) fn count(s: &Spike, k: f64) -> i64 {
    match s.scenario {
        Scenario::Slow => TEST_WEEKS,
        _ => ((k - 1.0) * s.reference).round() as i64,
    }
}

/// A new compound about 600 m north-east of `near`, with `near`'s station.
fn new_compound(id: String, near: &Place) -> Place {
    let (lat, lon) = (near.lat + 0.004, near.lon + 0.0045);
    Place {
        compound: Some(id),
        station: near.station.clone(),
        lat,
        lon,
    }
}

/// Every area a cluster of radius `metres` around `p` can touch: its cells, the disks that
/// hold them, hot spots, and the compound/station/town codes given.
fn areas_around(
    p: &Place,
    metres: f64,
    codes: &[(SeriesLevel, String)],
) -> Vec<(SeriesLevel, String)> {
    let mut out: Vec<(SeriesLevel, String)> = codes.to_vec();
    let d = metres / 111_000.0;
    let poi = AreaIndex::builtin();
    for dy in [-1.0, -0.5, 0.0, 0.5, 1.0] {
        for dx in [-1.0, -0.5, 0.0, 0.5, 1.0] {
            let (lat, lon) = (p.lat + dy * d, p.lon + dx * d * 1.17);
            out.push((SeriesLevel::Cell, cell(lat, lon)));
            out.extend(ring(lat, lon).into_iter().map(|c| (SeriesLevel::Ring, c)));
            if let Some(x) = poi.poi_at(lat, lon) {
                out.push((SeriesLevel::Poi, x.id.clone()));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The labelled instances of the new shapes (positions only; sizes come later).
pub(crate) fn schedule(sim: &Sim, seed: u64) -> Vec<Spike> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x54a9e);
    let test0 = START + BASELINE_WEEKS * WEEK;
    let n = sim.towns.len();
    let code = |t: usize| sim.towns[t].code.clone();
    let mut out = Vec::new();
    let border = border_pairs(sim);
    for week in 0..TEST_WEEKS {
        let w0 = test0 + week * WEEK;
        let wk = week as usize;
        // Ramp over hours: Tuesday or Thursday morning.
        let town = (wk * 3 + 2) % n;
        let start = w0 + [1_i64, 3][wk % 2] * 86_400 + rng.random_range(8..12) * 3600;
        let place = sim.random_compound(&mut rng, town);
        out.push(Spike {
            scenario: Scenario::RampHours,
            town: code(town),
            category: "HELP",
            start,
            end: start + 6 * 3600,
            reference: sim.expected(town, "HELP", start, start + 6 * 3600),
            areas: Some(areas_around(&place, 100.0, &own(&place, &code(town)))),
            place,
        });
        // Ramp over days: Monday 00:00 to Friday 00:00, streets around a compound.
        let town = (wk * 5 + 6) % n;
        let near = sim.random_compound(&mut rng, town);
        let place = Place {
            compound: None,
            ..near
        };
        out.push(Spike {
            scenario: Scenario::RampDays,
            town: code(town),
            category: "CRIM",
            start: w0,
            end: w0 + 4 * 86_400,
            reference: sim.expected(town, "CRIM_CYCLE_THEFT", w0, w0 + 4 * 86_400),
            areas: Some(areas_around(&place, 450.0, &own(&place, &code(town)))),
            place,
        });
        // Border brawl: a different pair each week, on Wednesday or Saturday evening.
        if let Some((a, b, place)) = border.get((seed as usize + wk * 3) % border.len().max(1)) {
            let start = w0 + [2_i64, 5][wk % 2] * 86_400 + 20 * 3600;
            let (ta, tb) = (sim.town_index(a), sim.town_index(b));
            let reference = sim.expected(ta, "PUB", start, start + 4 * 3600)
                + sim.expected(tb, "PUB", start, start + 4 * 3600);
            let mut codes = vec![
                (SeriesLevel::Town, a.clone()),
                (SeriesLevel::Town, b.clone()),
            ];
            for t in [ta, tb] {
                for c in &sim.towns[t].compounds {
                    codes.push((SeriesLevel::Station, c.1.clone()));
                }
            }
            out.push(Spike {
                scenario: Scenario::Border,
                town: a.clone(),
                category: "PUB",
                start,
                end: start + 4 * 3600,
                reference,
                areas: Some(areas_around(place, 400.0, &codes)),
                place: place.clone(),
            });
        }
    }
    // New housing: week 1 (two days of history) and week 3 (sixteen days).
    for (j, (week, day)) in [(0_i64, 2_i64), (2, 2)].into_iter().enumerate() {
        let town = (j * 7 + 4) % n;
        let near = sim.random_compound(&mut rng, town);
        let place = new_compound(format!("MH-NEW-{j}"), &near);
        let day0 = test0 + week * WEEK + day * 86_400;
        let start = day0 + rng.random_range(9..14) * 3600;
        out.push(Spike {
            scenario: Scenario::NewHousing,
            town: code(town),
            category: "FRAUD",
            start,
            end: start + 4 * 3600,
            reference: sim.expected(town, "FRAUD", day0, day0 + 86_400),
            areas: Some(areas_around(&place, 100.0, &own(&place, &code(town)))),
            place,
        });
    }
    // Fraud waves in the holiday week, Tuesday and Thursday.
    for (j, day) in [1_i64, 3].into_iter().enumerate() {
        let town = (j * 5 + 9) % n;
        let day0 = holiday_start() + day * 86_400;
        let start = day0 + rng.random_range(9..14) * 3600;
        let place = sim.random_compound(&mut rng, town);
        out.push(Spike {
            scenario: Scenario::Holiday,
            town: code(town),
            category: "FRAUD",
            start,
            end: start + 4 * 3600,
            reference: sim.expected(town, "FRAUD", day0, day0 + 86_400),
            areas: Some(areas_around(&place, 100.0, &own(&place, &code(town)))),
            place,
        });
    }
    // Slow series: one burglary a week for the whole test period; compound, its cells and
    // disks only (a town's or station's burglary alert within a month proves nothing).
    for j in 0..2_usize {
        let town = (j * 7 + 1) % n;
        let place = sim.random_compound(&mut rng, town);
        let codes = vec![(
            SeriesLevel::Compound,
            place.compound.clone().unwrap_or_default(),
        )];
        out.push(Spike {
            scenario: Scenario::Slow,
            town: code(town),
            category: "CRIM",
            start: test0,
            end: test0 + TEST_WEEKS * WEEK,
            reference: sim.expected(town, "CRIM_BURGLARY", test0, test0 + TEST_WEEKS * WEEK),
            areas: Some(areas_around(&place, 100.0, &codes)),
            place,
        });
    }
    out
}

/// A place's own compound, station and town codes.
fn own(p: &Place, town: &str) -> Vec<(SeriesLevel, String)> {
    let mut v = vec![
        (SeriesLevel::Town, town.to_owned()),
        (SeriesLevel::Station, p.station.clone()),
    ];
    if let Some(c) = &p.compound {
        v.push((SeriesLevel::Compound, c.clone()));
    }
    v
}

/// Pairs of towns whose compounds come closest, with a street place on a grid corner between
/// the two compounds (so the cluster also straddles four cells), nearest first.
fn border_pairs(sim: &Sim) -> Vec<(String, String, Place)> {
    let mut best: Vec<(f64, String, String, Place)> = Vec::new();
    for (i, a) in sim.towns.iter().enumerate() {
        for b in sim.towns.iter().skip(i + 1) {
            let mut pair: Option<(f64, Place)> = None;
            for ca in &a.compounds {
                for cb in &b.compounds {
                    let d = (ca.2 - cb.2).hypot((ca.3 - cb.3) / 1.17);
                    if pair.as_ref().is_none_or(|p| d < p.0) {
                        let (lat, lon) = ((ca.2 + cb.2) / 2.0, (ca.3 + cb.3) / 2.0);
                        pair = Some((
                            d,
                            Place {
                                compound: None,
                                station: ca.1.clone(),
                                lat: (lat / 0.0078).round() * 0.0078,
                                lon: (lon / 0.009).round() * 0.009,
                            },
                        ));
                    }
                }
            }
            if let Some((d, p)) = pair {
                best.push((d, a.code.clone(), b.code.clone(), p));
            }
        }
    }
    best.sort_by(|x, y| x.0.total_cmp(&y.0));
    best.into_iter()
        .take(6)
        .map(|(_, a, b, p)| (a, b, p))
        .collect()
}

/// The `i`-th of `n` extra events of shape spike `s`: (subtype, time, place, town index).
pub(crate) fn extra_event(
    sim: &Sim,
    rng: &mut ChaCha8Rng,
    s: &Spike,
    i: i64,
    n: i64,
) -> (&'static str, i64, Place, usize) {
    let town = sim.town_index(&s.town);
    let span = (s.end - s.start) as f64;
    // A density rising linearly from 0: the square root of a uniform draw.
    let rising = |rng: &mut ChaCha8Rng| s.start + (span * rng.random::<f64>().sqrt()) as i64;
    match s.scenario {
        Scenario::RampHours => {
            let (lat, lon) = jitter(rng, (s.place.lat, s.place.lon), 80.0);
            let p = Place {
                lat,
                lon,
                ..s.place.clone()
            };
            ("HELP_MEDICAL", rising(rng).min(s.end - 1), p, town)
        }
        Scenario::RampDays => {
            let (lat, lon) = jitter(rng, (s.place.lat, s.place.lon), 300.0);
            let p = Place {
                lat,
                lon,
                ..s.place.clone()
            };
            ("CRIM_CYCLE_THEFT", rising(rng).min(s.end - 1), p, town)
        }
        Scenario::Border => {
            let (lat, lon) = jitter(rng, (s.place.lat, s.place.lon), 250.0);
            // The town of the nearer of the two closest compounds.
            let mut nearest: Option<(f64, usize, String)> = None;
            for (ti, t) in sim.towns.iter().enumerate() {
                for c in &t.compounds {
                    let d = (c.2 - lat).hypot((c.3 - lon) / 1.17);
                    if nearest.as_ref().is_none_or(|x| d < x.0) {
                        nearest = Some((d, ti, c.1.clone()));
                    }
                }
            }
            let (ti, station) = nearest.map_or((town, s.place.station.clone()), |x| (x.1, x.2));
            let sub = if i % 2 == 0 { "PUB_FIGHT" } else { "PUB_DRUNK" };
            let p = Place {
                compound: None,
                station,
                lat,
                lon,
            };
            (sub, rng.random_range(s.start..s.end), p, ti)
        }
        Scenario::NewHousing | Scenario::Holiday => {
            let sub = if i % 5 < 3 {
                "FRAUD_FAKE_GOV"
            } else {
                "FRAUD_FAKE_CS"
            };
            (sub, rng.random_range(s.start..s.end), s.place.clone(), town)
        }
        _ => {
            // Slow: the i-th week's burglary, at night on a random day of that week.
            let week0 = s.start + (i % n.max(1)) * WEEK;
            let t = week0
                + rng.random_range(0..7) * 86_400
                + rng.random_range(0..6) * 3600
                + rng.random_range(0..3600);
            ("CRIM_BURGLARY", t, s.place.clone(), town)
        }
    }
}

/// Ordinary traffic of the new compounds from the first test week on: an average compound's
/// share of its town's calls (60 % of calls fall in one of the town's compounds).
pub(crate) fn background(sim: &Sim, spikes: &[Spike], seed: u64) -> Vec<DetectEvent> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xb0a5);
    let mut b = Builder {
        sim,
        next_id: 1 << 50,
        out: Vec::new(),
    };
    let test0 = START + BASELINE_WEEKS * WEEK;
    for s in spikes.iter().filter(|s| s.scenario == Scenario::NewHousing) {
        let town = sim.town_index(&s.town);
        let share = 0.6 / sim.towns[town].compounds.len().max(1) as f64;
        for hour in 0..TEST_WEEKS * 168 {
            let t0 = test0 + hour * 3600;
            for (sub, (code, _, _)) in sim.subtypes.iter().enumerate() {
                for _ in 0..poisson(&mut rng, share * sim.rate(town, sub, t0)) {
                    let t = t0 + rng.random_range(0..3600);
                    let (lat, lon) = jitter(&mut rng, (s.place.lat, s.place.lon), 80.0);
                    let p = Place {
                        lat,
                        lon,
                        ..s.place.clone()
                    };
                    b.push(t, town, code, &p, None, false);
                }
            }
        }
    }
    b.out
}
