use std::collections::BTreeMap;

use super::*;
use crate::config::{LevelGate, LevelGates, MethodChoice};

const MONDAY: i64 = 1_709_481_600; // 2024-03-04T00:00:00+08:00
const TOWN: &str = "310112102";
const TOWN2: &str = "310112107";

fn at(secs: i64) -> DateTime<FixedOffset> {
    to_time(secs)
}

fn area(town: &str, compound: Option<&str>) -> DetectArea {
    DetectArea {
        town_code: Some(town.to_owned()),
        station_code: Some(format!("PS-{town}")),
        compound_id: compound.map(str::to_owned),
        h3_r8: compound.map(|c| format!("cell-{c}")),
        h3_ring: compound
            .map(|c| vec![format!("cell-{c}"), "cell-shared".to_owned()])
            .unwrap_or_default(),
        poi_id: None,
        link_cells: Vec::new(),
    }
}

fn event(id: u128, t: i64, area: DetectArea, subtype: &str) -> DetectEvent {
    let category = subtype.split('_').next().unwrap_or("OTH").to_owned();
    DetectEvent {
        event_id: id,
        event_time: at(t),
        area,
        category,
        subtype: subtype.to_owned(),
        repeat: false,
        reporter_key: Some(format!("caller-{id}")),
        keywords: vec!["kw".into()],
    }
}

/// A detector with eight weeks of history: one dispute an hour in TOWN outside compounds and
/// nothing else.
fn seeded(cfg: DetectConfig) -> Detector {
    let mut d = Detector::new(cfg).unwrap();
    let start = MONDAY - 8 * 7 * 86_400;
    for h in 0..8 * 168 {
        d.seed_hour(
            &area(TOWN, None),
            "DSP",
            "DSP_NEIGHBOUR",
            at(start + h * 3600),
            1,
        )
        .unwrap();
        d.seed_hour(
            &area(TOWN2, None),
            "DSP",
            "DSP_NEIGHBOUR",
            at(start + h * 3600),
            1,
        )
        .unwrap();
    }
    d
}

fn fraud_wave(first_id: u128, n: u32, t0: i64, compound: &str) -> Vec<DetectEvent> {
    (0..n)
        .map(|i| {
            event(
                first_id + u128::from(i),
                t0 + i64::from(i) * 120,
                area(TOWN, Some(compound)),
                "FRAUD_FAKE_GOV",
            )
        })
        .collect()
}

fn run(d: &mut Detector, events: &[DetectEvent]) -> Vec<AlertRecord> {
    run_all(d, events).alerts
}

/// Ingests and evaluates each event in turn; every alert and suppression, in order.
fn run_all(d: &mut Detector, events: &[DetectEvent]) -> Evaluation {
    let mut out = Evaluation::default();
    for e in events {
        d.ingest(e).unwrap();
        let ev = d.evaluate(e.event_time);
        out.alerts.extend(ev.alerts);
        out.suppressed.extend(ev.suppressed);
    }
    out
}

#[test]
fn a_compound_fraud_wave_alerts_once_per_key_and_escalates_monotonically() {
    let mut d = seeded(DetectConfig::default());
    let t0 = MONDAY + 10 * 3600;
    let events = fraud_wave(1, 12, t0, "CP-1");
    let alerts = run(&mut d, &events);
    assert!(!alerts.is_empty());
    let mut by_key: HashMap<String, Vec<&AlertRecord>> = HashMap::new();
    for a in &alerts {
        by_key.entry(a.alert_key.clone()).or_default().push(a);
    }
    for versions in by_key.values() {
        for pair in versions.windows(2) {
            assert!(
                pair[1].level > pair[0].level,
                "only escalations re-emit a key"
            );
            assert_eq!(pair[1].version, pair[0].version + 1);
            assert_eq!(pair[1].created_at, pair[0].created_at);
        }
    }
    let first = &alerts[0];
    assert_eq!(first.category, "FRAUD");
    assert_eq!(first.town_code.as_deref(), Some(TOWN));
    assert!(first.observed >= 5);
    // created_at is the 5th event's time (the minimum count), not a wall clock.
    assert_eq!(first.created_at, at(t0 + 4 * 120));
    assert_eq!(first.id, first.key().unwrap().id());
    // Replaying the same stream, with duplicates, adds nothing.
    let again = run(&mut d, &events);
    assert!(again.is_empty());
    assert_eq!(d.stats().duplicates, 12);
}

#[test]
fn the_alert_time_does_not_depend_on_tick_batching() {
    let t0 = MONDAY + 10 * 3600;
    let events = fraud_wave(1, 12, t0, "CP-1");
    let mut per_event = seeded(DetectConfig::default());
    let a = run(&mut per_event, &events);
    let mut batched = seeded(DetectConfig::default());
    for e in &events {
        batched.ingest(e).unwrap();
    }
    let b = batched.evaluate(events[events.len() - 1].event_time).alerts;
    let first = |v: &[AlertRecord]| -> HashMap<String, (DateTime<FixedOffset>, Level)> {
        let mut m = HashMap::new();
        for r in v {
            let e = m
                .entry(r.alert_key.clone())
                .or_insert((r.created_at, r.level));
            e.1 = e.1.max(r.level);
        }
        m
    };
    let (fa, fb) = (first(&a), first(&b));
    for (k, (created, level)) in &fb {
        let (ca, la) = fa.get(k).unwrap_or_else(|| panic!("{k} missing per event"));
        assert_eq!(ca, created, "{k}");
        assert_eq!(la, level, "{k}");
    }
}

#[test]
fn repeat_calls_and_a_single_reporter_never_make_a_spike() {
    let mut d = seeded(DetectConfig::default());
    let t0 = MONDAY + 10 * 3600;
    let mut events = fraud_wave(1, 12, t0, "CP-1");
    for e in &mut events {
        e.repeat = true;
    }
    assert!(run(&mut d, &events).is_empty());
    assert_eq!(d.stats().repeats, 12);

    let mut d = seeded(DetectConfig::default());
    let mut events = fraud_wave(100, 12, t0, "CP-1");
    for e in &mut events {
        e.reporter_key = Some("plate-42".into());
    }
    let Evaluation { alerts, suppressed } = run_all(&mut d, &events);
    assert!(alerts.is_empty());
    assert!(
        suppressed
            .iter()
            .any(|s| s.reason == SuppressionReason::SingleReporter)
    );
}

#[test]
fn sibling_compounds_are_grouped_into_one_town_alert() {
    let mut d = seeded(DetectConfig::default());
    let t0 = MONDAY + 10 * 3600;
    let mut events = fraud_wave(1, 8, t0, "CP-1");
    events.extend(fraud_wave(100, 8, t0 + 60, "CP-2"));
    events.sort_by_key(|e| e.event_time);
    let alerts = run(&mut d, &events);
    let group = alerts
        .iter()
        .rev()
        .find(|a| a.area_level == SeriesLevel::Town && !a.members.is_empty())
        .expect("a town alert with members");
    let codes: Vec<&str> = group.members.iter().map(|m| m.area_code.as_str()).collect();
    assert!(
        codes.contains(&"CP-1") && codes.contains(&"CP-2"),
        "{codes:?}"
    );
    assert_eq!(group.subtype, None);
    assert!(
        group
            .top_subtypes
            .iter()
            .any(|c| c.code == "FRAUD_FAKE_GOV")
    );
    assert!(group.contributors().iter().any(|c| c == "compound:CP-2"));
    // CP-2 never got a compound alert of its own for the window the group covers.
    assert!(!alerts.iter().any(|a| a.area_level == SeriesLevel::Compound
        && a.area_code == "CP-2"
        && a.window == group.window
        && a.window_start == group.window_start));
}

#[test]
fn cooldown_holds_back_same_family_alerts_but_not_escalations() {
    let cfg = DetectConfig {
        group_min_members: 0,
        ..DetectConfig::default()
    };
    let mut d = seeded(cfg);
    let t0 = MONDAY + 10 * 3600;
    let events = fraud_wave(1, 12, t0, "CP-1");
    let Evaluation { alerts, suppressed } = run_all(&mut d, &events);
    // Many series crossed (compound, cell, station, town × category, subtype × windows), but
    // new keys of the same family only pass when they are more severe.
    assert!(
        suppressed
            .iter()
            .any(|s| s.reason == SuppressionReason::Cooldown)
    );
    let new_keys: Vec<&AlertRecord> = alerts.iter().filter(|a| a.version == 1).collect();
    for pair in new_keys.windows(2) {
        assert!(
            pair[1].level > pair[0].level,
            "{} then {}",
            pair[0].summary(),
            pair[1].summary()
        );
    }
}

#[test]
fn a_restored_book_emits_nothing_twice_after_a_restart() {
    let t0 = MONDAY + 10 * 3600;
    let events = fraud_wave(1, 12, t0, "CP-1");
    let mut d = seeded(DetectConfig::default());
    let first = run(&mut d, &events);
    assert!(!first.is_empty());
    let mut book = AlertBook::new();
    for a in &first {
        book.restore(a).unwrap();
        book.restore(a).unwrap();
    }
    // A new process: seed the same history, restore the book, replay the same events.
    let mut d2 = Detector::with_book(DetectConfig::default(), book).unwrap();
    let start = MONDAY - 8 * 7 * 86_400;
    for h in 0..8 * 168 {
        d2.seed_hour(
            &area(TOWN, None),
            "DSP",
            "DSP_NEIGHBOUR",
            at(start + h * 3600),
            1,
        )
        .unwrap();
        d2.seed_hour(
            &area(TOWN2, None),
            "DSP",
            "DSP_NEIGHBOUR",
            at(start + h * 3600),
            1,
        )
        .unwrap();
    }
    assert!(run(&mut d2, &events).is_empty());
}

#[test]
fn quiet_traffic_at_the_baseline_does_not_alert() {
    let mut d = seeded(DetectConfig::default());
    let events: Vec<DetectEvent> = (0..48)
        .map(|h| {
            event(
                h as u128 + 1,
                MONDAY + h * 3600 + 600,
                area(TOWN, None),
                "DSP_NEIGHBOUR",
            )
        })
        .collect();
    assert!(run(&mut d, &events).is_empty());
}

#[test]
fn cold_start_is_suppressed_and_seeding_cannot_overlap_live_events() {
    let mut d = Detector::new(DetectConfig::default()).unwrap();
    let t0 = MONDAY + 10 * 3600;
    let Evaluation { alerts, suppressed } = run_all(&mut d, &fraud_wave(1, 12, t0, "CP-1"));
    assert!(alerts.is_empty());
    assert!(
        suppressed
            .iter()
            .any(|s| s.reason == SuppressionReason::InsufficientHistory)
    );
    let err = d.seed_hour(&area(TOWN, None), "DSP", "DSP_NEIGHBOUR", at(t0), 1);
    assert!(matches!(err, Err(DetectError::SeedOverlapsLive { .. })));
    assert!(
        d.seed_hour(
            &area(TOWN, None),
            "DSP",
            "DSP_NEIGHBOUR",
            at(t0 - 7 * 86_400),
            1
        )
        .is_ok()
    );
    assert!(matches!(
        d.seed_hour(
            &area(TOWN, None),
            "DSP",
            "DSP_NEIGHBOUR",
            at(t0 - 7 * 86_400 + 60),
            1
        ),
        Err(DetectError::UnalignedHour(_))
    ));
}

#[test]
fn late_events_count_in_history_but_not_in_closed_windows() {
    let mut d = seeded(DetectConfig::default());
    let t0 = MONDAY + 10 * 3600;
    d.ingest(&event(1, t0, area(TOWN, None), "DSP_NEIGHBOUR"))
        .unwrap();
    d.evaluate(at(t0 + 3 * 3600));
    // Its 15-minute and hourly windows closed an hour after they ended; the day is open.
    assert_eq!(
        d.ingest(&event(2, t0 + 60, area(TOWN, None), "DSP_NEIGHBOUR"))
            .unwrap(),
        Ingested::Late
    );
    assert_eq!(d.stats().late, 1);
}

#[test]
fn replay_from_covers_the_oldest_open_window() {
    let d = Detector::new(DetectConfig::default()).unwrap();
    let now = at(MONDAY + 2 * 86_400 + 5 * 3600 + 1234); // Wednesday 05:20
    assert_eq!(
        d.replay_from(now),
        at(MONDAY),
        "the weekly window started Monday"
    );
    let d = Detector::new(DetectConfig {
        windows: vec![WindowLen::M15, WindowLen::H1],
        windows_by_level: Default::default(),
        ..DetectConfig::default()
    })
    .unwrap();
    assert_eq!(d.replay_from(now), at(MONDAY + 2 * 86_400 + 4 * 3600));
    // A 2 h window hopping hourly that still holds 04:20 began at 03:00.
    let d = Detector::new(DetectConfig {
        windows: vec![WindowLen::H2],
        windows_by_level: Default::default(),
        ..DetectConfig::default()
    })
    .unwrap();
    assert_eq!(d.replay_from(now), at(MONDAY + 2 * 86_400 + 3 * 3600));
}

#[test]
fn every_method_detects_a_strong_compound_spike() {
    for method in [
        MethodChoice::Auto,
        MethodChoice::Poisson,
        MethodChoice::NegBin,
        MethodChoice::Ewma,
        MethodChoice::C2,
    ] {
        let mut d = seeded(DetectConfig {
            method,
            ..DetectConfig::default()
        });
        let alerts = run(&mut d, &fraud_wave(1, 15, MONDAY + 10 * 3600, "CP-1"));
        assert!(!alerts.is_empty(), "{method:?}");
    }
}

/// Eight weeks of one dispute an hour in a compound, so that compound, cell and disk series
/// have history even when town and station series are switched off.
fn seeded_in_compounds(cfg: DetectConfig) -> Detector {
    let mut d = Detector::new(cfg).unwrap();
    let start = MONDAY - 8 * 7 * 86_400;
    for h in 0..8 * 168 {
        d.seed_hour(
            &area(TOWN, Some("CP-Q")),
            "DSP",
            "DSP_NEIGHBOUR",
            at(start + h * 3600),
            1,
        )
        .unwrap();
    }
    d
}

#[test]
fn a_cluster_split_between_two_cells_is_seen_whole_by_the_disk_they_share() {
    let cfg = DetectConfig {
        levels: vec![SeriesLevel::Compound, SeriesLevel::Cell, SeriesLevel::Ring],
        per_subtype: false,
        // The window tests on disks; six events are far below what the CUSUM's threshold
        // needs in a near-empty series (h / ln ρ ≈ 10).
        methods_by_level: BTreeMap::from([(SeriesLevel::Ring, MethodChoice::Auto)]),
        ..DetectConfig::default()
    };
    let mut d = seeded_in_compounds(cfg);
    let t0 = MONDAY + 10 * 3600;
    // Three calls in each of two neighbouring compounds: below the minimum count of 5 in either
    // compound or cell, six in the disk both belong to.
    let mut events = fraud_wave(1, 3, t0, "CP-A");
    events.extend(fraud_wave(10, 3, t0 + 60, "CP-B"));
    events.sort_by_key(|e| e.event_time);
    let alerts = run(&mut d, &events);
    assert!(!alerts.is_empty());
    for a in &alerts {
        assert_eq!(
            (a.area_level, a.area_code.as_str()),
            (SeriesLevel::Ring, "cell-shared"),
            "{}",
            a.summary()
        );
        assert_eq!(a.town_code.as_deref(), Some(TOWN));
    }
    // Each own-cell disk holds only three events.
    assert!(alerts.iter().all(|a| a.observed >= 5));
}

#[test]
fn a_burst_across_an_hour_boundary_alerts_in_the_hopping_window_that_holds_it() {
    let cfg = DetectConfig {
        windows: vec![WindowLen::H1, WindowLen::H2],
        levels: vec![SeriesLevel::Compound],
        per_subtype: false,
        ..DetectConfig::default()
    };
    let mut d = seeded_in_compounds(cfg);
    // 10:54 … 11:04: three calls in each clock hour, six in the 2 h window from 10:00.
    let t0 = MONDAY + 10 * 3600 + 54 * 60;
    let alerts = run(&mut d, &fraud_wave(1, 6, t0, "CP-1"));
    assert!(!alerts.is_empty());
    for a in &alerts {
        assert_eq!(a.window, WindowLen::H2, "{}", a.summary());
        assert_eq!(a.window_start, at(MONDAY + 10 * 3600));
        assert!(a.observed >= 5, "{}", a.summary());
    }
    // The window from 11:00 holds only the last three.
    let later = AlertKey::new(
        SeriesKey::category(SeriesLevel::Compound, "CP-1", "FRAUD"),
        WindowLen::H2,
        at(MONDAY + 11 * 3600),
    )
    .unwrap();
    assert_eq!(d.window_count(&later), Some(3));
}

fn cusum_only() -> DetectConfig {
    DetectConfig {
        method: MethodChoice::Cusum,
        ..DetectConfig::default()
    }
}

/// `per_hour` neighbour disputes an hour in TOWN (outside compounds) for `hours` hours from
/// `t0`, evenly spread.
fn rise(first_id: u128, t0: i64, hours: i64, per_hour: i64) -> Vec<DetectEvent> {
    (0..hours * per_hour)
        .map(|i| {
            event(
                first_id + i as u128,
                t0 + i * 3600 / per_hour + 30,
                area(TOWN, None),
                "DSP_NEIGHBOUR",
            )
        })
        .collect()
}

#[test]
fn cusum_catches_a_rise_no_window_proves_and_keys_it_by_the_day_of_its_first_alarm() {
    // Four an hour against one expected, from 22:00 across midnight: one hour alone is
    // P(X ≥ 4 | 1) ≈ 0.02, far from any window gate.
    let t0 = MONDAY + 22 * 3600;
    let events = rise(1, t0, 5, 4);
    let mut d = seeded(cusum_only());
    let alerts = run(&mut d, &events);
    let town: Vec<&AlertRecord> = alerts
        .iter()
        .filter(|a| a.area_level == SeriesLevel::Town && a.subtype.is_none())
        .collect();
    assert_eq!(town.len(), 1, "{alerts:#?}");
    let a = town[0];
    assert_eq!(a.method, Method::Cusum);
    assert_eq!(a.window, WindowLen::D1);
    let first = a.created_at.timestamp();
    assert_eq!(a.window_start.timestamp(), WindowLen::D1.start_of(first));
    assert!(events.iter().any(|e| e.event_time.timestamp() == first));
    let info = a.baseline.cusum.as_ref().unwrap();
    assert_eq!(info.bin, WindowLen::H1);
    assert_eq!(info.span_start.timestamp(), t0);
    assert!(info.statistic >= d.config().cusum_threshold);
    assert!(a.observed >= 5 && f64::from(a.observed) > a.expected);
    assert!((a.score - info.statistic / std::f64::consts::LN_10).abs() < 1e-9);
    assert_eq!(a.top_subtypes[0].code, "DSP_NEIGHBOUR");
    // Replaying the same events emits nothing.
    assert!(run(&mut d, &events).is_empty());
}

#[test]
fn cusum_ignores_one_reporter_calling_again_and_again() {
    let t0 = MONDAY + 10 * 3600;
    let mut events = rise(1, t0, 5, 4);
    // Without the cap these would alarm (as above).
    assert!(!run(&mut seeded(cusum_only()), &events).is_empty());
    for e in &mut events {
        e.reporter_key = Some("plate-1".into());
    }
    let mut d = seeded(cusum_only());
    assert!(run(&mut d, &events).is_empty());
}

const HOT_SPOT: &str = "POI-STRIP";

fn hot_spot() -> DetectArea {
    DetectArea {
        poi_id: Some(HOT_SPOT.to_owned()),
        ..area(TOWN, None)
    }
}

/// `seeded`, plus one street fight an hour in the hot spot for eight weeks.
fn seeded_hot_spot(cfg: DetectConfig) -> Detector {
    let mut d = seeded(cfg);
    let start = MONDAY - 8 * 7 * 86_400;
    for h in 0..8 * 168 {
        d.seed_hour(&hot_spot(), "PUB", "PUB_FIGHT", at(start + h * 3600), 1)
            .unwrap();
    }
    d
}

/// `n` fights in the hot spot, `gap` seconds apart from `t0`.
fn brawl(first_id: u128, n: u32, t0: i64, gap: i64) -> Vec<DetectEvent> {
    (0..n)
        .map(|i| {
            event(
                first_id + u128::from(i),
                t0 + i64::from(i) * gap,
                hot_spot(),
                "PUB_FIGHT",
            )
        })
        .collect()
}

#[test]
fn a_hot_spot_pages_on_a_burst_below_the_city_wide_gate_once_per_key() {
    // Five in an hour against one expected: P ≈ 5·10⁻³, inside the hot spot's yellow gate
    // and far outside the town's.
    let t0 = MONDAY + 22 * 3600;
    // Twelve minutes apart, so no 15-minute window of the town is unusual either.
    let events = brawl(1, 5, t0, 720);
    let mut d = seeded_hot_spot(DetectConfig::default());
    let alerts = run(&mut d, &events);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a.area_level, SeriesLevel::Poi);
    assert_eq!(a.area_code, HOT_SPOT);
    assert_eq!(a.town_code.as_deref(), Some(TOWN));
    assert_eq!(a.level, Level::Yellow);
    assert!(a.p_value > d.config().levels_gates.yellow.max_p);
    assert!(a.p_value <= d.config().gates_for(SeriesLevel::Poi).yellow.max_p);
    assert_eq!(a.created_at, at(t0 + 4 * 720), "at the minimum count");
    // The same events replayed, with duplicates, emit nothing.
    assert!(run(&mut d, &events).is_empty());

    // Without the hot spot's own gates the same burst is silent everywhere.
    let mut strict = DetectConfig::default();
    strict.gates_by_level.clear();
    assert!(run(&mut seeded_hot_spot(strict), &events).is_empty());
}

#[test]
fn a_hot_spot_never_pages_below_the_minimum_counts() {
    let mut cfg = DetectConfig::default();
    let loose = LevelGate {
        max_p: 0.5,
        min_ratio: 1.0,
    };
    cfg.gates_by_level.insert(
        SeriesLevel::Poi,
        LevelGates {
            yellow: loose,
            orange: loose,
            red: loose,
            ..LevelGates::default()
        },
    );
    cfg.cusum_threshold_by_level.insert(SeriesLevel::Poi, 0.1);
    cfg.methods_by_level
        .insert(SeriesLevel::Poi, MethodChoice::AutoCusum);
    let mut d = seeded_hot_spot(cfg);
    // Four calls against one expected: every gate passes but the minimum of five.
    assert!(run(&mut d, &brawl(1, 4, MONDAY + 22 * 3600, 120)).is_empty());
}

#[test]
fn a_hot_spot_alert_escalates_monotonically_under_one_key() {
    let t0 = MONDAY + 22 * 3600;
    // The town's short windows page too; without cooldown the hot spot's first, yellow
    // version is not held back by them.
    let mut d = seeded_hot_spot(DetectConfig {
        cooldown_minutes: 0,
        ..DetectConfig::default()
    });
    let alerts = run(&mut d, &brawl(1, 25, t0, 120));
    let mut by_key: BTreeMap<&str, Vec<&AlertRecord>> = BTreeMap::new();
    for a in alerts.iter().filter(|a| a.area_level == SeriesLevel::Poi) {
        by_key.entry(a.alert_key.as_str()).or_default().push(a);
    }
    let hour = by_key
        .get("poi|POI-STRIP|PUB|*|1h|2024-03-04T22:00:00+08:00")
        .expect("the hot spot's hour alerts");
    assert!(hour.len() >= 2, "{hour:#?}");
    assert_eq!(hour[0].level, Level::Yellow);
    assert_eq!(hour[hour.len() - 1].level, Level::Red);
    for versions in by_key.values() {
        for pair in versions.windows(2) {
            assert!(pair[1].level > pair[0].level);
            assert_eq!(pair[1].version, pair[0].version + 1);
            assert_eq!(pair[1].created_at, pair[0].created_at);
        }
    }
    assert!(run(&mut d, &brawl(1, 25, t0, 120)).is_empty());
    // Red keeps the city-wide gate: a red page means the same everywhere.
    assert_eq!(
        d.config().gates_for(SeriesLevel::Poi).red,
        d.config().levels_gates.red
    );
}

#[test]
fn a_hot_spot_cusum_uses_its_own_threshold() {
    // Three an hour against one expected for four hours: S ≈ 4 × (3 ln 2.5 − 1.5) ≈ 5,
    // below the city-wide h = 9, above a hot spot's h = 4.
    let t0 = MONDAY + 20 * 3600;
    let events: Vec<DetectEvent> = (0..12)
        .map(|i| event(1 + i as u128, t0 + i * 1200 + 30, hot_spot(), "PUB_FIGHT"))
        .collect();
    let cfg = |h: Option<f64>| {
        let mut c = DetectConfig::default();
        c.gates_by_level.clear();
        c.methods_by_level
            .insert(SeriesLevel::Poi, MethodChoice::Cusum);
        if let Some(h) = h {
            c.cusum_threshold_by_level.insert(SeriesLevel::Poi, h);
        }
        c
    };
    assert!(run(&mut seeded_hot_spot(cfg(None)), &events).is_empty());
    let mut d = seeded_hot_spot(cfg(Some(4.0)));
    let alerts = run(&mut d, &events);
    let poi: Vec<&AlertRecord> = alerts
        .iter()
        .filter(|a| a.area_level == SeriesLevel::Poi)
        .collect();
    assert_eq!(poi.len(), 1, "{alerts:#?}");
    let info = poi[0].baseline.cusum.as_ref().unwrap();
    assert_eq!(info.threshold, 4.0);
    assert!(info.statistic >= 4.0 && info.statistic < 9.0);
    assert!(run(&mut d, &events).is_empty());
}

/// `n` calls of `subtype` in one compound, one every eight hours, each from its own caller.
fn series(first_id: u128, n: u32, subtype: &str) -> Vec<DetectEvent> {
    (0..n)
        .map(|i| {
            event(
                first_id + u128::from(i),
                MONDAY + 2 * 3600 + i64::from(i) * 8 * 3600,
                area(TOWN, Some("CP-B")),
                subtype,
            )
        })
        .collect()
}

#[test]
fn two_burglaries_in_one_compound_page_as_a_near_repeat_but_other_subtypes_need_five() {
    let mut d = seeded(DetectConfig::default());
    let alerts = run(&mut d, &series(1, 2, "CRIM_BURGLARY"));
    assert!(!alerts.is_empty(), "a near-repeat burglary pages");
    for a in &alerts {
        assert_eq!(
            a.subtype.as_deref(),
            Some("CRIM_BURGLARY"),
            "{}",
            a.summary()
        );
        assert_eq!(
            a.area_level,
            SeriesLevel::Compound,
            "only where the subtype rule applies: {}",
            a.summary()
        );
        assert!(a.observed >= 2);
        assert_eq!(a.level, Level::Yellow, "{}", a.summary());
    }

    // One burglary is not a series; two or four cycle thefts keep the global minimum of five.
    let mut d = seeded(DetectConfig::default());
    assert!(run(&mut d, &series(1, 1, "CRIM_BURGLARY")).is_empty());
    let mut d = seeded(DetectConfig::default());
    assert!(run(&mut d, &series(1, 4, "CRIM_CYCLE_THEFT")).is_empty());

    // Without the rule, two (or four) burglaries are below the minimum count.
    let cfg = DetectConfig {
        min_counts_by_subtype: BTreeMap::new(),
        ..DetectConfig::default()
    };
    let mut d = seeded(cfg);
    assert!(run(&mut d, &series(1, 4, "CRIM_BURGLARY")).is_empty());
}

#[test]
fn longer_windows_around_a_paged_cluster_are_not_paged_again() {
    let mut d = seeded(DetectConfig::default());
    let mut out = run_all(&mut d, &series(1, 2, "CRIM_BURGLARY"));
    let ev = d.evaluate(at(MONDAY + 7 * 86_400));
    out.alerts.extend(ev.alerts);
    out.suppressed.extend(ev.suppressed);
    // The day's window pages; the 3-day and weekly windows see the same two burglaries.
    let windows: Vec<_> = out.alerts.iter().map(|a| a.window).collect();
    assert_eq!(windows, [WindowLen::D1], "{:?}", out.alerts);
    assert!(
        out.suppressed
            .iter()
            .any(|s| s.reason == SuppressionReason::Nested && s.alert_key.contains("|3d|")),
        "{:?}",
        out.suppressed
    );
}

#[test]
fn one_caller_repeating_a_burglary_is_not_a_series() {
    let mut d = seeded(DetectConfig::default());
    let mut calls = series(1, 3, "CRIM_BURGLARY");
    for c in &mut calls {
        c.reporter_key = Some("plate-victim".into());
    }
    // Hours apart and not flagged as repeats, but one household: one burglary.
    assert!(run(&mut d, &calls).is_empty());
    // A second household an hour later is the series.
    let mut d = seeded(DetectConfig::default());
    calls[1].reporter_key = Some("plate-next-door".into());
    assert!(!run(&mut d, &calls).is_empty());
}

/// A call at `t` in fine cell `cell` (neighbours: the cells either side).
fn scene_call(id: u128, t: i64, subtype: &str, cell: i32) -> DetectEvent {
    let mut e = event(id, t, area(TOWN, Some("CP-S")), subtype);
    e.area.link_cells = [cell, cell - 1, cell + 1]
        .iter()
        .map(|c| format!("fine-{c}"))
        .collect();
    e
}

#[test]
fn other_callers_about_one_scene_are_one_incident_but_victims_are_not() {
    let mut d = seeded(DetectConfig::default());
    let t = MONDAY + 20 * 3600;
    let cases = [
        // A fight phoned in by three bystanders from their own phones, in neighbouring cells.
        (1, 0, "PUB_FIGHT", 10, Ingested::Counted),
        (2, 120, "PUB_FIGHT", 11, Ingested::Linked),
        (3, 600, "PUB_FIGHT", 10, Ingested::Linked),
        // Another subtype, a cell two away, or 40 minutes later is another incident.
        (4, 60, "PUB_NOISE", 10, Ingested::Counted),
        (5, 60, "PUB_FIGHT", 12, Ingested::Counted),
        (6, 2400, "PUB_FIGHT", 10, Ingested::Counted),
    ];
    for (id, dt, subtype, cell, want) in cases {
        let got = d.ingest(&scene_call(id, t + dt, subtype, cell)).unwrap();
        assert_eq!(got, want, "call {id}");
    }
    // The victim and a neighbour phoning about one break-in are one burglary.
    assert_eq!(
        d.ingest(&scene_call(7, t, "CRIM_BURGLARY", 40)).unwrap(),
        Ingested::Counted
    );
    assert_eq!(
        d.ingest(&scene_call(8, t + 240, "CRIM_BURGLARY", 41))
            .unwrap(),
        Ingested::Linked
    );
    // Fraud victims calling from one building are each a victim.
    for i in 0..3 {
        assert_eq!(
            d.ingest(&scene_call(10 + i, t + 60 * i as i64, "FRAUD_FAKE_GOV", 20))
                .unwrap(),
            Ingested::Counted
        );
    }
    assert_eq!(d.stats().linked, 3);

    // Linking off: every call counts.
    let mut d = seeded(DetectConfig {
        link_minutes: 0,
        ..DetectConfig::default()
    });
    for i in 0..3 {
        assert_eq!(
            d.ingest(&scene_call(i, t + 60 * i as i64, "PUB_FIGHT", 10))
                .unwrap(),
            Ingested::Counted
        );
    }
}

#[test]
fn bystanders_calling_about_one_brawl_never_page() {
    let mut d = seeded(DetectConfig::default());
    let t = MONDAY + 21 * 3600;
    // One brawl, eight callers within twenty minutes: one incident, below every minimum.
    let calls: Vec<_> = (0..8)
        .map(|i| {
            scene_call(
                100 + i,
                t + 150 * i as i64,
                "PUB_FIGHT",
                30 + (i % 2) as i32,
            )
        })
        .collect();
    assert!(run(&mut d, &calls).is_empty());
}

#[test]
fn neighbours_phoning_about_one_break_in_are_not_a_burglary_series() {
    let mut d = seeded(DetectConfig::default());
    // Three callers within ten minutes: burglary is victim-reported (never linked as one
    // scene), but a series needs calls at least an hour apart.
    let calls: Vec<_> = (0..3)
        .map(|i| {
            event(
                1 + i,
                MONDAY + 2 * 3600 + 300 * i as i64,
                area(TOWN, Some("CP-B")),
                "CRIM_BURGLARY",
            )
        })
        .collect();
    assert!(run(&mut d, &calls).is_empty());
}

#[test]
fn suppression_reasons_label_metrics_as_they_serialise() {
    for r in [
        SuppressionReason::Cooldown,
        SuppressionReason::SingleReporter,
        SuppressionReason::InsufficientHistory,
        SuppressionReason::Nested,
    ] {
        assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
    }
}

#[test]
fn one_reporter_counts_at_most_twice_per_window_whatever_the_arrival_order() {
    let mut d = seeded(DetectConfig::default());
    let t0 = MONDAY + 10 * 3600;
    // One doorplate reports five times within 15 minutes (arriving newest first), then once
    // more the next hour; another reporter once.
    let mut events: Vec<DetectEvent> = (0..5)
        .rev()
        .map(|i| {
            event(
                1 + i,
                t0 + i as i64 * 60,
                area(TOWN, Some("CP-1")),
                "DSP_NEIGHBOUR",
            )
        })
        .collect();
    events.push(event(
        9,
        t0 + 3600,
        area(TOWN, Some("CP-1")),
        "DSP_NEIGHBOUR",
    ));
    for e in &mut events {
        e.reporter_key = Some("plate-7".into());
    }
    events.push(event(
        10,
        t0 + 120,
        area(TOWN, Some("CP-1")),
        "DSP_NEIGHBOUR",
    ));
    for e in &events {
        d.ingest(e).unwrap();
    }
    let count = |len: WindowLen, start: i64| {
        d.window_count(&AlertKey {
            series: SeriesKey::category(SeriesLevel::Compound, "CP-1", "DSP"),
            window: len,
            window_start: start,
        })
    };
    assert_eq!(
        count(WindowLen::M15, t0),
        Some(3),
        "two of the plate's five, plus the other"
    );
    assert_eq!(count(WindowLen::H1, t0), Some(3));
    assert_eq!(
        count(WindowLen::H1, t0 + 3600),
        Some(1),
        "a new window counts it again"
    );
    assert_eq!(
        count(WindowLen::D1, MONDAY),
        Some(3),
        "the day holds two of the plate's six"
    );
}
