//! End-to-end ledger test (RELIABILITY.md §5.0): simulated traffic through the ingest HTTP API,
//! the classifier and the aggregator into ClickHouse, checked against the simulator's ledger.
//!
//! The services run in-process on this test's own topics, consumer groups and database. Expected classifications come from running
//! `pingan_classifier::enrich::Enricher` offline on the same records (regenerated from the
//! seed); the generator's intended labels are a benchmark only and are not asserted here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone, Timelike, Utc};
use pingan_classifier::ClassifierConfig;
use pingan_classifier::enrich::{Enricher, RawEvent};
use pingan_domain::time::shanghai;
use pingan_ingest::publish::KafkaPublisher;
use pingan_ingest::{AppState, IngestSettings};
use pingan_pipeline::metrics::StageMetrics;
use pingan_sim::target::{call_record, qr_record};
use pingan_sim::{
    Body, Generator, GeneratorSettings, HttpTarget, Ledger, Pacing, RunOptions, SendRetry,
    SimEvent, Spike, Target,
};
use pingan_tests::{TestEnv, infra_shared, unique, wait_until};
use prometheus::Registry;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const EVENTS: u64 = 2_000;
const SEED: u64 = 20_191_231;

fn generator(settings: &IngestSettings, start: DateTime<FixedOffset>) -> Generator {
    let mut cfg = GeneratorSettings::new(SEED, start, settings.signer.clone());
    // Ten times the district's volume: 2,000 events span about four simulated hours.
    cfg.scale = 10.0;
    cfg.spikes = vec![Spike::parse("fraud-wave:at=+30m,window=1h,count=20", start).unwrap()];
    Generator::new(cfg).unwrap()
}

fn hour_of(t: DateTime<FixedOffset>) -> i64 {
    let t = t.with_timezone(&shanghai());
    t.with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap()
        .timestamp()
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct Stored {
    id: String,
    rows: u64,
    category: String,
    subtype: String,
    town: String,
    event_time: u32,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct AuditCount {
    id: String,
    rows: u64,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct HourCount {
    town: String,
    category: String,
    hour: u32,
    events: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_traffic_is_stored_exactly_once_as_classified_and_rolled_up() {
    let _infra = infra_shared().await;
    let env = TestEnv::from_env();
    let kafka = env.kafka_config();
    let (calls_t, qr_t, enriched_t) = (
        unique("pingan_t_calls"),
        unique("pingan_t_qr"),
        unique("pingan_t_enriched"),
    );
    for (t, p) in [(&calls_t, 4), (&qr_t, 2), (&enriched_t, 4)] {
        env.create_topic(t, p).await;
        env.create_topic(&format!("{t}.dlq"), 1).await;
    }
    let ch = env.migrated_database().await;

    // Services, each on its own registry (metric names would clash in one).
    let shutdown = CancellationToken::new();
    let mut settings = IngestSettings::for_tests();
    // One client posts every citizen's QR report: lift the per-client limit (not under test here).
    settings.qr_client_rate = pingan_ingest::config::RateSettings {
        per_minute: 1_000_000,
        burst: 10_000,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ingest_addr = listener.local_addr().unwrap();
    // Ingest writes to this test's raw topics (leaked: the settings hold `&'static str` topic
    // names, and a test process is short-lived).
    settings.calls_topic = Box::leak(calls_t.clone().into_boxed_str());
    settings.qr_topic = Box::leak(qr_t.clone().into_boxed_str());
    let publisher = KafkaPublisher::new(&kafka, settings.publish_deadline).unwrap();
    let state = AppState::new(settings.clone(), Arc::new(publisher), &Registry::new()).unwrap();
    let ingest = tokio::spawn(pingan_ingest::serve(listener, state, shutdown.clone()));
    let classifier_cfg = ClassifierConfig {
        topics: vec![calls_t.clone(), qr_t.clone()],
        output_topic: enriched_t.clone(),
        group_id: unique("pingan_t_cls"),
        admin_listen: None,
        ..ClassifierConfig::default()
    };
    let classifier = {
        let (kafka, shutdown, registry) = (kafka.clone(), shutdown.clone(), Registry::new());
        let stage = StageMetrics::register(&registry).unwrap();
        let settings = pingan_classifier::ClassifierSettings {
            config: classifier_cfg,
            kafka,
            registry,
            stage_metrics: stage,
        };
        tokio::spawn(async move { pingan_classifier::run(settings, shutdown).await })
    };
    let aggregator_cfg = pingan_aggregator::AggregatorConfig {
        topic: enriched_t.clone(),
        group_id: unique("pingan_t_agg"),
        batch_max_events: 1_000,
        batch_max_age_ms: 200,
        admin_listen: None,
        ..Default::default()
    };
    let aggregator = {
        let (kafka, ch, shutdown, registry) =
            (kafka.clone(), ch.clone(), shutdown.clone(), Registry::new());
        let stage = StageMetrics::register(&registry).unwrap();
        let settings = pingan_aggregator::AggregatorSettings {
            config: aggregator_cfg,
            kafka,
            clickhouse: ch,
            registry,
            stage_metrics: stage,
        };
        tokio::spawn(async move { pingan_aggregator::run(settings, shutdown).await })
    };

    // Traffic: simulated time starting five hours ago, so every call is in the past.
    let start =
        shanghai().from_utc_datetime(&(Utc::now() - chrono::Duration::hours(5)).naive_utc());
    let mut gen_ = generator(&settings, start);
    let target = Target::Http(
        HttpTarget::new(&format!("http://{ingest_addr}"), None, SendRetry::default()).unwrap(),
    );
    let ledger_path = std::env::temp_dir().join(format!("{}.ledger.jsonl", unique("pingan_e2e")));
    let ledger = Ledger::to_file(&ledger_path).unwrap();
    let options = RunOptions {
        pacing: Pacing::Fast,
        count: Some(EVENTS),
        ..RunOptions::default()
    };
    let report =
        pingan_sim::run::run(&mut gen_, &target, &options, &ledger, &shutdown, |_| {}).await;
    ledger.finish().unwrap();
    assert_eq!(report.stats.sent, EVENTS);
    assert_eq!(report.stats.gave_up, 0, "{report:?}");

    // The ledger as a checker reads it.
    let entries = pingan_sim::ledger::read(&ledger_path).unwrap();
    let _ = std::fs::remove_file(&ledger_path);
    let acked: BTreeMap<Uuid, &pingan_sim::LedgerEntry> = entries
        .iter()
        .filter(|e| e.acked)
        .map(|e| (e.event_id, e))
        .collect();
    let rejected: BTreeSet<Uuid> = entries
        .iter()
        .filter(|e| e.outcome == pingan_sim::Delivery::Rejected)
        .map(|e| e.event_id)
        .collect();
    assert_eq!(acked.len() as u64, report.stats.acked);
    assert!(
        acked.len() as u64 >= EVENTS - 5,
        "nearly everything is accepted: {} acked, rejected {rejected:?}",
        acked.len()
    );

    // Quiescence: every acked id is queryable, and the count stays put.
    let client = pingan_warehouse::client(&ch, pingan_warehouse::Role::Writer);
    let distinct = || {
        let client = client.clone();
        async move {
            client
                .query("SELECT uniqExact(event_id) FROM incidents")
                .fetch_one::<u64>()
                .await
                .unwrap_or(0)
        }
    };
    let want = acked.len() as u64;
    wait_until(
        &format!("{want} acked events in ClickHouse"),
        Duration::from_secs(180),
        || async { distinct().await >= want },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    shutdown.cancel();
    ingest.await.unwrap().unwrap();
    classifier.await.unwrap().unwrap();
    aggregator.await.unwrap().unwrap();

    let stored: Vec<Stored> = client
        .query(
            "SELECT toString(event_id) AS id, count() AS rows, any(category) AS category, any(subtype) AS subtype, \
             ifNull(any(town_code), '') AS town, toUInt32(any(event_time)) AS event_time FROM incidents GROUP BY event_id",
        )
        .fetch_all()
        .await
        .unwrap();
    // A QR event's id is the one ingest stores it under (the generator derives it as ingest does).
    let events: Vec<SimEvent> = generator(&settings, start).take(EVENTS as usize).collect();
    let stored: BTreeMap<Uuid, Stored> = stored
        .into_iter()
        .map(|s| (Uuid::parse_str(&s.id).unwrap(), s))
        .collect();

    // C3 is read where nothing folds it: `incidents` is a ReplacingMergeTree whose merges (and any
    // FINAL) would hide exactly the duplicates this test exists to catch, so the raw table is read
    // without FINAL and `insert_audit` (plain MergeTree, one row per inserted Kafka record) is read
    // as well. No Kafka record may be inserted twice, whatever happened upstream.
    let audit: Vec<AuditCount> = client
        .query(
            "SELECT toString(event_id) AS id, count() AS rows FROM insert_audit GROUP BY event_id",
        )
        .fetch_all()
        .await
        .unwrap();
    let audit: BTreeMap<Uuid, u64> = audit
        .into_iter()
        .map(|a| (Uuid::parse_str(&a.id).unwrap(), a.rows))
        .collect();
    let (records, distinct_records) = client
        .query(
            "SELECT count(), uniqExact(kafka_topic, kafka_partition, kafka_offset) FROM insert_audit",
        )
        .fetch_one::<(u64, u64)>()
        .await
        .unwrap();
    assert_eq!(
        records, distinct_records,
        "a Kafka record was inserted twice"
    );
    // An attempt that timed out may have reached Kafka before the retry did, so an event can be in
    // the enriched topic more than once only if the ledger shows more than one attempt for it.
    let mut attempts: BTreeMap<Uuid, u64> = BTreeMap::new();
    for e in &entries {
        *attempts.entry(e.event_id).or_default() += 1;
    }

    // C1 no loss and C3 exactly once: every acked id is stored, once.
    for id in acked.keys() {
        let s = stored
            .get(id)
            .unwrap_or_else(|| panic!("acked event {id} is not in ClickHouse"));
        let inserted = audit.get(id).copied().unwrap_or(0);
        let allowed = attempts[id];
        assert!(
            (1..=allowed).contains(&inserted),
            "event {id} inserted {inserted} times after {allowed} attempt(s)"
        );
        assert!(
            (1..=inserted).contains(&s.rows),
            "event {id}: {} raw rows but {inserted} inserts",
            s.rows
        );
    }
    let resent = acked.keys().filter(|id| attempts[*id] > 1).count();
    eprintln!(
        "{} acked events, {resent} of them sent more than once",
        acked.len()
    );
    // C2 nothing invented: everything stored was sent and acked, nothing rejected is stored.
    for id in stored.keys() {
        assert!(
            acked.contains_key(id),
            "stored event {id} was never acknowledged"
        );
        assert!(!rejected.contains(id));
    }

    // Offline classification of the same inputs (regenerated from the seed above).
    let mut enricher = Enricher::builtin().unwrap();
    let mut expected_hours: BTreeMap<(String, String, i64), u64> = BTreeMap::new();
    let (mut agree_subtype, mut labelled) = (0u64, 0u64);
    for ev in &events {
        let Some(entry) = acked.get(&ev.event_id) else {
            continue;
        };
        let s = &stored[&ev.event_id];
        let (raw, event_time) = match &ev.body {
            Body::Call(c) => (
                RawEvent::Call(call_record(c, ev.event_id, Utc::now(), &settings.hasher)),
                ev.event_time,
            ),
            Body::Qr(q) => {
                // A QR report's time is ingest's receipt time: it must lie within the attempt.
                let t = shanghai()
                    .timestamp_opt(i64::from(s.event_time), 0)
                    .unwrap();
                let (lo, hi) = (entry.t_send.timestamp() - 1, entry.t_done.timestamp() + 1);
                assert!(
                    (lo..=hi).contains(&t.timestamp()),
                    "QR {} stored at {t}, sent {} acked {}",
                    ev.event_id,
                    entry.t_send,
                    entry.t_done
                );
                (
                    RawEvent::Qr(qr_record(q, ev.event_id, t, &settings.hasher)),
                    t,
                )
            }
        };
        let (enriched, _) = enricher.enrich(&raw);
        let town = enriched.area.town_code.clone().unwrap_or_default();
        assert_eq!(
            (s.category.as_str(), s.subtype.as_str(), s.town.as_str()),
            (
                enriched.category.as_str(),
                enriched.subtype.as_str(),
                town.as_str()
            ),
            "event {} stored differently from the offline classification",
            ev.event_id
        );
        if matches!(ev.body, Body::Call(_)) {
            assert_eq!(
                i64::from(s.event_time),
                event_time.timestamp(),
                "event time of {}",
                ev.event_id
            );
        }
        *expected_hours
            .entry((town, enriched.category.clone(), hour_of(event_time)))
            .or_default() += 1;
        labelled += 1;
        if enriched.subtype == ev.label.subtype {
            agree_subtype += 1;
        }
    }
    assert_eq!(labelled, want);

    // C4 rollups: counts_hour per town × category × hour equals the ledger-derived counts.
    let rollup: Vec<HourCount> = client
        .query(
            "SELECT town_code AS town, category, toUInt32(hour) AS hour, uniqExactMerge(events) AS events \
             FROM counts_hour GROUP BY town_code, category, hour",
        )
        .fetch_all()
        .await
        .unwrap();
    let got: BTreeMap<(String, String, i64), u64> = rollup
        .into_iter()
        .map(|r| ((r.town, r.category, i64::from(r.hour)), r.events))
        .collect();
    assert_eq!(got, expected_hours, "counts_hour differs from the ledger");

    // Benchmark only: how often the classifier agrees with the generator's intent.
    eprintln!(
        "e2e: {want} events acked and stored once; classifier agrees with the intended subtype on {:.1}%",
        100.0 * agree_subtype as f64 / labelled as f64
    );
    let _ = client
        .query(&format!("DROP DATABASE IF EXISTS {}", ch.database))
        .execute()
        .await;
}
