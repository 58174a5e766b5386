//! `make bench`: measures the pipeline on this machine and writes `target/bench/report.{json,md}`.
//!
//! Starts ingest, classifier and aggregator in-process on their own topics and database (like the
//! end-to-end test), then measures:
//! * classifier texts/s on one core (offline `Enricher` over simulated records);
//! * raw Kafka produce rate of the same records, and consume rate reading them back;
//! * end-to-end throughput (ingest HTTP → queryable in ClickHouse) and freshness p50/p99
//!   (ingest 202 → row visible) at a low steady rate and as fast as possible;
//! * the process's peak RSS (all services share it) and the machine's cores and memory.
//!
//! Not measured yet (see the report's `missing`): ClickHouse's own Kafka engine for comparison,
//! query latency over bulk history, per-service RSS.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use pingan_classifier::enrich::{Enricher, RawEvent};
use pingan_domain::events::{TOPIC_CALLS, TOPIC_QR};
use pingan_ingest::publish::{BoxFuture, EventPublisher, Record};
use pingan_ingest::{AppState, IngestSettings};
use pingan_pipeline::client::KafkaSettings;
use pingan_pipeline::metrics::StageMetrics;
use pingan_pipeline::producer::{OutRecord, PublishError, Publisher};
use pingan_runtime::config::ClickHouseSettings;
use pingan_sim::target::{call_record, qr_record};
use pingan_sim::{
    Body, Generator, GeneratorConfig, HttpTarget, KafkaTarget, Ledger, Pacing, RetryPolicy,
    RunOptions, Target,
};
use prometheus::Registry;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Remap {
    inner: Publisher,
    calls: String,
    qr: String,
}

impl EventPublisher for Remap {
    fn publish(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), PublishError>> {
        Box::pin(async move {
            let out = records.iter().map(|r| OutRecord {
                topic: if r.topic == TOPIC_CALLS {
                    &self.calls
                } else if r.topic == TOPIC_QR {
                    &self.qr
                } else {
                    r.topic
                },
                key: Some(r.key.as_slice()),
                payload: r.payload.as_slice(),
                headers: &[],
            });
            self.inner.publish(out).await
        })
    }
    fn probe(&self, timeout: Duration) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.inner.probe(timeout))
    }
    fn queue_depth(&self) -> i64 {
        i64::from(self.inner.in_flight())
    }
    fn flush(&self, timeout: Duration) -> BoxFuture<'_, Result<(), String>> {
        let p = self.inner.clone();
        Box::pin(async move { p.flush(timeout).map_err(|e| e.to_string()) })
    }
}

/// Creates topics (the local broker does not auto-create them), each with its `.dlq`.
async fn create_topics(bootstrap: &str, names: &[&str]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let dlqs: Vec<String> = names.iter().map(|n| format!("{n}.dlq")).collect();
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| NewTopic::new(n, 4, TopicReplication::Fixed(1)))
        .chain(
            dlqs.iter()
                .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1))),
        )
        .collect();
    admin
        .create_topics(
            &topics,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
}

fn suffix() -> String {
    Uuid::new_v4().simple().to_string()[..10].to_owned()
}

fn proc_kb(file: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn generator(settings: &IngestSettings, scale: f64, seed: u64) -> Generator {
    let start = pingan_domain::time::to_shanghai(&(Utc::now() - chrono::Duration::hours(6)));
    let mut cfg = GeneratorConfig::new(seed, start, settings.signer.clone());
    cfg.scale = scale;
    Generator::new(cfg).unwrap()
}

/// One end-to-end run: send with `options`, then poll ClickHouse until every acked id is visible.
async fn e2e(
    name: &str,
    settings: &IngestSettings,
    target: &Target,
    ch: &clickhouse::Client,
    options: RunOptions,
    seed: u64,
) -> serde_json::Value {
    let mut generator = generator(settings, 50.0, seed);
    let ledger = Ledger::in_memory();
    let started = Instant::now();
    let stop = CancellationToken::new();
    // Poll visibility concurrently so freshness is measured while traffic flows.
    let seen: Arc<std::sync::Mutex<BTreeMap<String, chrono::DateTime<Utc>>>> = Arc::default();
    let poller = {
        let (ch, seen, stop) = (ch.clone(), seen.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if let Ok(ids) = ch
                    .query("SELECT toString(event_id) FROM incidents")
                    .fetch_all::<String>()
                    .await
                {
                    let now = Utc::now();
                    let mut s = seen.lock().unwrap();
                    for id in ids {
                        s.entry(id).or_insert(now);
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let report = pingan_sim::run::run(
        &mut generator,
        target,
        &options,
        &ledger,
        &CancellationToken::new(),
        |_| {},
    )
    .await;
    let acked: BTreeMap<String, chrono::DateTime<Utc>> = ledger
        .entries()
        .into_iter()
        .filter(|e| e.acked)
        .map(|e| (e.event_id.to_string(), e.t_done))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline && !acked.keys().all(|k| seen.lock().unwrap().contains_key(k)) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_visible = started.elapsed().as_secs_f64();
    stop.cancel();
    let _ = poller.await;
    let s = seen.lock().unwrap();
    let mut fresh: Vec<f64> = acked
        .iter()
        .filter_map(|(k, t)| {
            s.get(k)
                .map(|v| (*v - *t).num_milliseconds().max(0) as f64 / 1000.0)
        })
        .collect();
    fresh.sort_by(f64::total_cmp);
    let visible = fresh.len();
    json!({
        "run": name,
        "sent": report.stats.sent, "acked": report.stats.acked, "visible": visible,
        "send_secs": report.elapsed_secs, "all_visible_secs": all_visible,
        "ingest_acked_per_sec": report.acked_per_sec(),
        "e2e_events_per_sec": visible as f64 / all_visible,
        "freshness_p50_s": percentile(&fresh, 0.5), "freshness_p99_s": percentile(&fresh, 0.99),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let kafka_addr = std::env::var("PINGAN_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let ch_url = std::env::var("PINGAN_TEST_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let kafka = KafkaSettings {
        bootstrap_servers: kafka_addr.clone(),
        ..Default::default()
    };
    let mut settings = IngestSettings::for_tests();
    settings.qr_client_rate = pingan_ingest::config::RateSettings {
        per_minute: 10_000_000,
        burst: 100_000,
    };
    settings.qr_plate_rate = pingan_ingest::config::RateSettings {
        per_minute: 10_000_000,
        burst: 100_000,
    };
    let mut results = serde_json::Map::new();

    // 1. Classifier texts/s on one core.
    let events: Vec<_> = generator(&settings, 1.0, 1).take(20_000).collect();
    let raws: Vec<RawEvent> = events
        .iter()
        .map(|e| match &e.body {
            Body::Call(c) => {
                RawEvent::Call(call_record(c, e.event_id, Utc::now(), &settings.hasher))
            }
            Body::Qr(q) => RawEvent::Qr(qr_record(q, e.event_id, e.event_time, &settings.hasher)),
        })
        .collect();
    let mut enricher = Enricher::builtin().unwrap();
    let t = Instant::now();
    let mut agree = 0usize;
    for (raw, ev) in raws.iter().zip(&events) {
        if enricher.enrich(raw).0.subtype == ev.label.subtype {
            agree += 1;
        }
    }
    let per_core = raws.len() as f64 / t.elapsed().as_secs_f64();
    results.insert("classifier".into(), json!({ "texts_per_sec_one_core": per_core, "agrees_with_intended_subtype": agree as f64 / raws.len() as f64 }));
    println!(
        "classifier: {per_core:.0} texts/s on one core; agrees with the intended subtype on {:.1}%",
        100.0 * agree as f64 / raws.len() as f64
    );

    // 2. Raw Kafka produce / consume of the same records.
    let (raw_calls, raw_qr) = (
        format!("pingan_bench_calls_{}", suffix()),
        format!("pingan_bench_qr_{}", suffix()),
    );
    create_topics(&kafka_addr, &[&raw_calls, &raw_qr]).await;
    let kt = Target::Kafka(
        KafkaTarget::new(&kafka, settings.hasher.clone(), RetryPolicy::default())
            .unwrap()
            .with_topics(&raw_calls, &raw_qr),
    );
    let mut g = generator(&settings, 50.0, 2);
    let r = pingan_sim::run::run(
        &mut g,
        &kt,
        &RunOptions {
            count: Some(50_000),
            ..RunOptions::default()
        },
        &Ledger::default(),
        &CancellationToken::new(),
        |_| {},
    )
    .await;
    let produce = r.acked_per_sec();
    let consumer: BaseConsumer = kafka
        .consumer_config("bench", &format!("bench_{}", suffix()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&raw_calls, &raw_qr]).unwrap();
    let t = Instant::now();
    let mut n = 0u64;
    while n < r.stats.acked && t.elapsed() < Duration::from_secs(120) {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            n += 1;
        }
    }
    let consume = n as f64 / t.elapsed().as_secs_f64();
    results.insert(
        "raw_kafka".into(),
        json!({ "events": r.stats.acked, "produce_per_sec": produce, "consume_per_sec": consume }),
    );
    println!(
        "raw kafka: produce {produce:.0} ev/s, consume {consume:.0} ev/s ({} events)",
        r.stats.acked
    );

    // 3. End to end through the services.
    let (calls_t, qr_t, enr_t) = (
        format!("pingan_bench_c_{}", suffix()),
        format!("pingan_bench_q_{}", suffix()),
        format!("pingan_bench_e_{}", suffix()),
    );
    create_topics(&kafka_addr, &[&calls_t, &qr_t, &enr_t]).await;
    let chs = ClickHouseSettings {
        url: ch_url,
        database: format!("pingan_bench_{}", suffix()),
        ..Default::default()
    };
    pingan_aggregator::migrate::apply(&chs, |_| {})
        .await
        .unwrap();
    let ch = pingan_aggregator::sink::client(&chs);
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let publisher = Remap {
        inner: Publisher::new(&kafka, "ingest", settings.publish_deadline).unwrap(),
        calls: calls_t.clone(),
        qr: qr_t.clone(),
    };
    let state = AppState::new(settings.clone(), Arc::new(publisher), &Registry::new()).unwrap();
    let ingest = tokio::spawn(pingan_ingest::serve(listener, state, shutdown.clone()));
    let cls = pingan_classifier::ClassifierConfig {
        topics: vec![calls_t, qr_t],
        output_topic: enr_t.clone(),
        group_id: format!("bench_{}", suffix()),
        admin_listen: None,
        ..Default::default()
    };
    let classifier = {
        let (k, s, reg) = (kafka.clone(), shutdown.clone(), Registry::new());
        let st = StageMetrics::register(&reg).unwrap();
        tokio::spawn(async move { pingan_classifier::run(cls, &k, reg, st, s).await })
    };
    let agg = pingan_aggregator::AggregatorConfig {
        topic: enr_t,
        group_id: format!("bench_{}", suffix()),
        admin_listen: None,
        ..Default::default()
    };
    let aggregator = {
        let (k, c, s, reg) = (
            kafka.clone(),
            chs.clone(),
            shutdown.clone(),
            Registry::new(),
        );
        let st = StageMetrics::register(&reg).unwrap();
        tokio::spawn(async move { pingan_aggregator::run(agg, &k, &c, reg, st, s).await })
    };
    let http = Target::Http(
        HttpTarget::new(&format!("http://{addr}"), None, RetryPolicy::default()).unwrap(),
    );
    let low = e2e(
        "low: 20 ev/s for 30 s",
        &settings,
        &http,
        &ch,
        RunOptions {
            pacing: Pacing::Rate(20.0),
            count: Some(600),
            ..RunOptions::default()
        },
        3,
    )
    .await;
    println!("e2e low:  {low}");
    let high = e2e(
        "high: as fast as possible, 20k events",
        &settings,
        &http,
        &ch,
        RunOptions {
            pacing: Pacing::Fast,
            count: Some(20_000),
            concurrency: 8,
            ..RunOptions::default()
        },
        4,
    )
    .await;
    println!("e2e high: {high}");
    shutdown.cancel();
    let _ = ingest.await;
    let _ = classifier.await;
    let _ = aggregator.await;
    let _ = ch
        .query(&format!("DROP DATABASE IF EXISTS {}", chs.database))
        .execute()
        .await;
    let e2e_rate = high["e2e_events_per_sec"].as_f64().unwrap_or(0.0);
    results.insert("e2e".into(), json!([low, high]));
    results.insert("ratios".into(), json!({ "e2e_over_raw_kafka_produce": e2e_rate / produce, "e2e_over_raw_kafka_consume": e2e_rate / consume }));

    // 4. Machine and memory.
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kb = proc_kb("/proc/meminfo", "MemTotal:");
    let hwm_kb = proc_kb("/proc/self/status", "VmHWM:");
    results.insert(
        "machine".into(),
        json!({ "cores": cores, "mem_total_mb": mem_kb.map(|k| k / 1024) }),
    );
    results.insert(
        "peak_rss_mb_all_services_in_one_process".into(),
        json!(hwm_kb.map(|k| k / 1024)),
    );
    results.insert(
        "missing".into(),
        json!([
            "ClickHouse Kafka-engine comparison",
            "query p50/p99 over bulk history",
            "per-service RSS (services share one process here)"
        ]),
    );

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let report = serde_json::Value::Object(results);
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    let f =
        |v: &serde_json::Value, k: &str| v[k].as_f64().map_or("-".into(), |x| format!("{x:.2}"));
    let md = format!(
        "# pingan bench\n\nMachine: {cores} cores, {} MB RAM. Peak RSS (ingest + classifier + aggregator + simulator in one process): {} MB.\n\n\
         | measurement | value |\n|---|---|\n\
         | classifier texts/s (one core) | {per_core:.0} |\n\
         | raw Kafka produce ev/s | {produce:.0} |\n| raw Kafka consume ev/s | {consume:.0} |\n\
         | e2e low: ingest-acked ev/s | {} |\n| e2e low: freshness p50 / p99 s | {} / {} |\n\
         | e2e high: ingest-acked ev/s | {} |\n| e2e high: queryable ev/s | {} |\n| e2e high: freshness p50 / p99 s | {} / {} |\n\
         | e2e / raw Kafka produce | {:.3} |\n\nNot measured yet: ClickHouse Kafka-engine comparison, query latency over bulk history, per-service RSS.\n",
        mem_kb.map_or(0, |k| k / 1024),
        hwm_kb.map_or(0, |k| k / 1024),
        f(&low, "ingest_acked_per_sec"),
        f(&low, "freshness_p50_s"),
        f(&low, "freshness_p99_s"),
        f(&high, "ingest_acked_per_sec"),
        f(&high, "e2e_events_per_sec"),
        f(&high, "freshness_p50_s"),
        f(&high, "freshness_p99_s"),
        e2e_rate / produce,
    );
    std::fs::write(dir.join("report.md"), &md).unwrap();
    println!("\n{md}\nwritten: target/bench/report.json, target/bench/report.md");
}
