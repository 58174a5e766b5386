//! Generator properties: determinism, rhythm, mix, reachability, plates, spikes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, FixedOffset, Timelike};
use pingan_domain::area::AreaIndex;
use pingan_domain::events::CallInput;
use pingan_domain::qr::QrSigner;
use pingan_domain::taxonomy::Taxonomy;

use crate::generator::{Body, Generator, GeneratorSettings, SimEvent, Stream};
use crate::spike::Spike;

fn start() -> DateTime<FixedOffset> {
    // A Monday.
    DateTime::parse_from_rfc3339("2019-12-02T00:00:00+08:00").unwrap()
}

fn signer() -> QrSigner {
    QrSigner::single("dev", b"pingan-dev-qr-key-not-for-production")
}

fn generate(seed: u64, n: usize, spikes: Vec<Spike>) -> Vec<SimEvent> {
    let mut cfg = GeneratorSettings::new(seed, start(), signer());
    cfg.spikes = spikes;
    Generator::new(cfg).unwrap().take(n).collect()
}

/// 100k events (about 70 simulated days), generated once for the statistical tests.
fn big() -> &'static [SimEvent] {
    static BIG: std::sync::OnceLock<Vec<SimEvent>> = std::sync::OnceLock::new();
    BIG.get_or_init(|| generate(7, 100_000, Vec::new()))
}

#[test]
fn the_same_seed_gives_the_same_events_and_another_seed_does_not() {
    let a = generate(42, 2_000, Vec::new());
    let b = generate(42, 2_000, Vec::new());
    assert_eq!(a, b);
    let c = generate(43, 2_000, Vec::new());
    assert_ne!(a[..50], c[..50]);
    let ids: BTreeSet<_> = a.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), a.len(), "event ids are unique");
    assert!(
        a.windows(2).all(|w| w[0].event_time <= w[1].event_time),
        "time-ordered"
    );
}

#[test]
fn the_volume_is_about_1300_a_day() {
    let evs = big();
    let days = (evs[evs.len() - 1].event_time - evs[0].event_time).num_seconds() as f64 / 86_400.0;
    let per_day = evs.len() as f64 / days;
    assert!(
        (1_300.0..1_550.0).contains(&per_day),
        "{per_day} per day (baseline + nightlife + repeats)"
    );
}

#[test]
fn the_district_peaks_at_15_and_hongqiao_at_22_or_23() {
    let mut district = [0u32; 24];
    let mut hongqiao = [0u32; 24];
    for e in big() {
        let h = e.event_time.hour() as usize;
        district[h] += 1;
        if e.label.town_code == "310112107" {
            hongqiao[h] += 1;
        }
    }
    let argmax = |v: &[u32; 24]| (0..24).max_by_key(|&h| v[h]).unwrap();
    let argmin = |v: &[u32; 24]| (0..24).min_by_key(|&h| v[h]).unwrap();
    assert!(
        (14..=16).contains(&argmax(&district)),
        "district peak {} {district:?}",
        argmax(&district)
    );
    assert!(
        (3..=6).contains(&argmin(&district)),
        "district trough {}",
        argmin(&district)
    );
    assert!(
        (22..=23).contains(&argmax(&hongqiao)),
        "hongqiao peak {} {hongqiao:?}",
        argmax(&hongqiao)
    );
}

#[test]
fn the_category_mix_matches_real_110_data() {
    let evs = big();
    let n = evs.len() as f64;
    let mut by_cat: BTreeMap<&str, f64> = BTreeMap::new();
    let mut by_sub: BTreeMap<&str, f64> = BTreeMap::new();
    for e in evs {
        *by_cat.entry(&e.label.category).or_default() += 1.0;
        *by_sub.entry(&e.label.subtype).or_default() += 1.0;
    }
    let share = |c: &str| by_cat.get(c).copied().unwrap_or(0.0) / n;
    let valid = n - by_cat.get("OTH").copied().unwrap_or(0.0);
    let dsp_of_valid = by_cat.get("DSP").copied().unwrap_or(0.0) / valid;
    assert!(
        (0.42..0.55).contains(&dsp_of_valid),
        "disputes {dsp_of_valid} of valid"
    );
    let invalid = by_sub.get("OTH_INVALID").copied().unwrap_or(0.0) / n;
    assert!((0.13..0.23).contains(&invalid), "invalid {invalid}");
    for (cat, lo, hi) in [
        ("FRAUD", 0.025, 0.05),
        ("TRF", 0.07, 0.12),
        ("CRIM", 0.035, 0.07),
        ("HELP", 0.05, 0.09),
    ] {
        assert!((lo..hi).contains(&share(cat)), "{cat} {}", share(cat));
    }
    let fraud: Vec<(&str, f64)> = by_sub
        .iter()
        .filter(|(k, _)| k.starts_with("FRAUD_"))
        .map(|(k, v)| (*k, *v))
        .collect();
    let top = fraud.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    assert_eq!(
        top.0, "FRAUD_TASK",
        "刷单返利 is the most common scam: {fraud:?}"
    );
    let dup = by_sub.get("OTH_DUPLICATE").copied().unwrap_or(0.0) / n;
    assert!((0.02..0.06).contains(&dup), "repeat calls {dup}");
}

#[test]
fn congestion_concentrates_in_the_weekday_morning_peak_and_tourists_on_weekends() {
    let (mut peak, mut congestion, mut tourist_weekend, mut tourist) = (0.0, 0.0, 0.0, 0.0);
    for e in big() {
        if e.label.subtype == "TRF_CONGESTION" {
            congestion += 1.0;
            if pingan_domain::time::is_morning_peak(&e.event_time) {
                peak += 1.0;
            }
        }
        if e.label.subtype == "DSP_TOURIST" {
            tourist += 1.0;
            assert_eq!(e.label.poi_id.as_deref(), Some("POI-QIBAO-OLDSTREET"));
            if crate::rates::is_leisure_day(&e.event_time) {
                tourist_weekend += 1.0;
            }
        }
    }
    // 4 of 24 weekday hours hold well over a third of all congestion calls.
    assert!(peak / congestion > 0.35, "{}", peak / congestion);
    // Weekends are 2/7 of days but hold most tourist disputes.
    assert!(
        tourist_weekend / tourist > 0.45,
        "{}",
        tourist_weekend / tourist
    );
}

#[test]
fn burglary_concentrates_in_hot_compounds() {
    let mut by_compound: BTreeMap<&str, u32> = BTreeMap::new();
    let mut total = 0;
    for e in big().iter().filter(|e| e.label.subtype == "CRIM_BURGLARY") {
        total += 1;
        if let Some(c) = &e.label.compound_id {
            *by_compound.entry(c).or_default() += 1;
        }
    }
    let kangcheng = by_compound.get("MH-CP-101-001").copied().unwrap_or(0);
    let top = by_compound.values().max().copied().unwrap_or(0);
    assert_eq!(kangcheng, top, "上海康城 leads the burglary ranking");
    assert!(
        f64::from(kangcheng) / f64::from(total) > 0.05,
        "{kangcheng} of {total}"
    );
}

#[test]
fn every_subtype_is_reachable() {
    let seen: BTreeSet<&str> = big().iter().map(|e| e.label.subtype.as_str()).collect();
    for s in Taxonomy::builtin().subtypes() {
        assert!(seen.contains(s.code.as_str()), "{} never generated", s.code);
    }
}

#[test]
fn qr_reports_are_about_15_percent_with_real_plates_and_valid_signatures() {
    let evs = big();
    let plates = AreaIndex::builtin().doorplates();
    let s = signer();
    let mut qr = 0.0;
    for e in evs {
        if let Body::Qr(q) = &e.body {
            qr += 1.0;
            let plate = plates
                .get(&q.plate_id)
                .unwrap_or_else(|| panic!("unknown plate {}", q.plate_id));
            assert!(s.verify(&q.plate_id, &q.sig).is_ok());
            assert_eq!(plate.town_code, e.label.town_code);
            assert_eq!(plate.compound_id.map(str::to_owned), e.label.compound_id);
            assert!(q.description.chars().count() <= 500 && !q.description.trim().is_empty());
        }
    }
    let share = qr / evs.len() as f64;
    assert!((0.11..0.17).contains(&share), "QR share {share}");
}

#[test]
fn calls_pass_the_ingest_validation_and_locations_vary() {
    let evs = &big()[..5_000];
    let now = start().with_timezone(&chrono::Utc) + Duration::days(400);
    let (mut with_point, mut town_only, mut nothing, mut calls) = (0, 0, 0, 0);
    for e in evs {
        if let Body::Call(c) = &e.body {
            calls += 1;
            let v = serde_json::to_value(c).unwrap();
            let mut errors = Vec::new();
            assert!(
                CallInput::validate(&v, 0, now, &mut errors).is_some(),
                "{errors:?} for {v}"
            );
            match (&c.location, &c.town_code, &c.address) {
                (Some(_), _, _) => with_point += 1,
                (None, Some(_), _) => town_only += 1,
                (None, None, None) => nothing += 1,
                _ => {}
            }
        }
    }
    let f = |x: i32| f64::from(x) / f64::from(calls);
    assert!(
        f(with_point) > 0.5 && f(town_only) > 0.05 && f(nothing) > 0.03,
        "{with_point} {town_only} {nothing} of {calls}"
    );
}

#[test]
fn points_lie_in_the_labelled_town() {
    let areas = AreaIndex::builtin();
    let (mut ok, mut n) = (0, 0);
    for e in big().iter().take(20_000) {
        if let Body::Call(c) = &e.body
            && let Some(p) = c.location
            && e.label.stream != Stream::Repeat
            && e.label.subtype != "OTH_INVALID"
        {
            n += 1;
            if areas
                .town_at(p.lat, p.lon)
                .is_some_and(|t| t.code == e.label.town_code)
            {
                ok += 1;
            }
        }
    }
    assert!(f64::from(ok) / f64::from(n) > 0.97, "{ok} of {n}");
}

#[test]
fn descriptions_are_varied() {
    let distinct: BTreeSet<&str> = big()
        .iter()
        .take(20_000)
        .map(|e| match &e.body {
            Body::Call(c) => c.description.as_str(),
            Body::Qr(q) => q.description.as_str(),
        })
        .collect();
    assert!(distinct.len() > 5_000, "{} distinct texts", distinct.len());
    assert!(
        crate::texts::shape_count() >= 240,
        "{} template shapes",
        crate::texts::shape_count()
    );
}

#[test]
fn spike_injection_adds_exactly_n_labelled_events_in_the_window() {
    let spike = Spike::parse("drunk-wuzhong:count=37", start()).unwrap();
    let (from, to) = (spike.start, spike.start + spike.window);
    let base = generate(9, 3_000, Vec::new());
    let with = generate(9, 3_000 + 37, vec![spike]);
    let spiked: Vec<&SimEvent> = with.iter().filter(|e| e.label.spike.is_some()).collect();
    assert_eq!(spiked.len(), 37);
    for e in &spiked {
        assert!(e.event_time >= from && e.event_time < to);
        assert_eq!(e.label.subtype, "PUB_DRUNK");
        assert_eq!(e.label.stream, Stream::Spike);
        assert_eq!(e.label.town_code, "310112107");
        assert_eq!(e.label.poi_id.as_deref(), Some("POI-WUZHONG-NIGHTLIFE"));
    }
    // The baseline is unchanged by the injection.
    let rest: Vec<&SimEvent> = with.iter().filter(|e| e.label.spike.is_none()).collect();
    assert!(base.iter().zip(rest).all(|(a, b)| a == b));
}

#[test]
fn unknown_spike_areas_are_refused() {
    let spike = Spike::parse("subtype=PUB_DRUNK,area=NOWHERE,count=3", start()).unwrap();
    let mut cfg = GeneratorSettings::new(1, start(), signer());
    cfg.spikes = vec![spike];
    assert!(Generator::new(cfg).is_err());
}
