//! Step 4: end to end through the services: throughput, freshness and each process's memory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use pingan_ingest::publish::KafkaPublisher;
use pingan_ingest::{AppState, IngestSettings};
use pingan_runtime::config::ClickHouseConfig;
use pingan_sim::{HttpTarget, Ledger, Pacing, RunOptions, SendRetry, Target};
use prometheus::Registry;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::service::Service;
use crate::util::{
    create_topics, free_port, generator, http_get, percentile, proc_kb, step, suffix,
};

/// One end-to-end run: send with `options`, then poll ClickHouse until every acked id is visible,
/// while `serve` is asked for `/v1/counts` as a dashboard would.
pub(crate) async fn e2e(
    name: &str,
    settings: &IngestSettings,
    target: &Target,
    ch: &clickhouse::Client,
    serve_addr: &str,
    options: RunOptions,
    seed: u64,
) -> Value {
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
    let dashboard = {
        let (addr, stop) = (serve_addr.to_owned(), stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while !stop.is_cancelled() {
                match http_get(&addr, "/v1/counts?by=category").await {
                    Some(200) => ok += 1,
                    _ => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            (ok, failed)
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
    let (counts_ok, counts_failed) = dashboard.await.unwrap_or((0, 0));
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
        "serve_counts_requests_ok": counts_ok, "serve_counts_requests_failed": counts_failed,
    })
}

/// Step 4's figures: the two runs and each process's peak RSS.
pub(crate) struct E2e {
    pub(crate) low: Value,
    pub(crate) high: Value,
    pub(crate) rss: Value,
}

/// Step 4: ingest in this process, classify/aggregate/serve as processes of the release binary,
/// on topics and a database of their own.
pub(crate) async fn run(ctx: &mut crate::Ctx) -> E2e {
    let (calls_t, qr_t, enr_t, alerts_t) = (
        format!("pingan_bench_c_{}", suffix()),
        format!("pingan_bench_q_{}", suffix()),
        format!("pingan_bench_e_{}", suffix()),
        format!("pingan_bench_a_{}", suffix()),
    );
    create_topics(&ctx.kafka_addr, &[&calls_t, &qr_t, &enr_t], 4).await;
    create_topics(&ctx.kafka_addr, &[&alerts_t], 1).await;
    ctx.topics.extend([
        calls_t.clone(),
        qr_t.clone(),
        enr_t.clone(),
        alerts_t.clone(),
    ]);
    let chs = ClickHouseConfig {
        url: ctx.ch_url.clone(),
        database: format!("pingan_bench_e2e_{}", suffix()),
        ..Default::default()
    };
    ctx.dbs.push(chs.database.clone());
    pingan_warehouse::migrate::apply(&chs, |_| {})
        .await
        .unwrap();
    let ch = pingan_warehouse::client(&chs, pingan_warehouse::Role::Writer);
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = ctx.ingest.clone();
    // The settings hold `&'static str` topic names; this process is short-lived.
    settings.calls_topic = Box::leak(calls_t.clone().into_boxed_str());
    settings.qr_topic = Box::leak(qr_t.clone().into_boxed_str());
    let publisher = KafkaPublisher::new(&ctx.kafka, settings.publish_deadline).unwrap();
    let state = AppState::new(settings.clone(), Arc::new(publisher), &Registry::new()).unwrap();
    let ingest = tokio::spawn(pingan_ingest::serve(listener, state, shutdown.clone()));
    let serve_addr = format!("127.0.0.1:{}", free_port());
    let common = vec![
        (
            "PINGAN__KAFKA__BOOTSTRAP_SERVERS".to_owned(),
            ctx.kafka_addr.clone(),
        ),
        ("PINGAN__CLICKHOUSE__URL".to_owned(), ctx.ch_url.clone()),
        (
            "PINGAN__CLICKHOUSE__DATABASE".to_owned(),
            chs.database.clone(),
        ),
    ];
    let with = |extra: &[(&str, String)]| {
        let mut v = common.clone();
        v.extend(extra.iter().map(|(k, x)| ((*k).to_owned(), x.clone())));
        v
    };
    step("e2e: starting pingan classify, aggregate, serve");
    let mut classify = Service::start(
        &ctx.bin,
        "classify",
        &with(&[
            ("PINGAN__CLASSIFIER__TOPICS", format!("{calls_t},{qr_t}")),
            ("PINGAN__CLASSIFIER__OUTPUT_TOPIC", enr_t.clone()),
            (
                "PINGAN__CLASSIFIER__GROUP_ID",
                format!("bench_cls_{}", suffix()),
            ),
            ("PINGAN__CLASSIFIER__ADMIN_LISTEN", String::new()),
        ]),
        &ctx.logs,
    );
    let mut aggregate = Service::start(
        &ctx.bin,
        "aggregate",
        &with(&[
            ("PINGAN__AGGREGATOR__TOPIC", enr_t.clone()),
            (
                "PINGAN__AGGREGATOR__GROUP_ID",
                format!("bench_agg_{}", suffix()),
            ),
            ("PINGAN__AGGREGATOR__ADMIN_LISTEN", String::new()),
            ("PINGAN__AGGREGATOR__ALERTS__TOPIC", alerts_t.clone()),
        ]),
        &ctx.logs,
    );
    let mut serve = Service::start(
        &ctx.bin,
        "serve",
        &with(&[("PINGAN__SERVE__LISTEN", serve_addr.clone())]),
        &ctx.logs,
    );
    let t = Instant::now();
    while http_get(&serve_addr, "/healthz").await != Some(200) {
        serve.assert_running();
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "pingan serve did not answer /healthz"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Consumers start from the earliest offset, so a slow group join costs latency, not data;
    // give it a moment so the low-rate freshness is not the join time.
    tokio::time::sleep(Duration::from_secs(3)).await;
    classify.assert_running();
    aggregate.assert_running();
    let http = Target::Http(
        HttpTarget::new(&format!("http://{addr}"), None, SendRetry::default()).unwrap(),
    );
    step("e2e low: 20 ev/s for 30 s");
    let low = e2e(
        "low: 20 ev/s for 30 s",
        &settings,
        &http,
        &ch,
        &serve_addr,
        RunOptions {
            pacing: Pacing::Rate(20.0),
            count: Some(600),
            ..RunOptions::default()
        },
        3,
    )
    .await;
    println!("e2e low:  {low}");
    step("e2e high: as fast as possible, 20k events");
    let high = e2e(
        "high: as fast as possible, 20k events",
        &settings,
        &http,
        &ch,
        &serve_addr,
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
    classify.assert_running();
    aggregate.assert_running();
    let rss_classify = classify.stop();
    let rss_aggregate = aggregate.stop();
    let rss_serve = serve.stop();
    shutdown.cancel();
    let _ = ingest.await;
    let bench_rss = proc_kb("/proc/self/status", "VmHWM:").map(|k| k as f64 / 1024.0);
    E2e {
        low,
        high,
        rss: json!({
            "classify_process": rss_classify,
            "aggregate_process_e2e": rss_aggregate,
            "serve_process": rss_serve,
            "bench_process_with_in_process_ingest": bench_rss,
            "note": "VmHWM of each `pingan` process just before SIGTERM. Ingest runs inside the bench process (with the simulator and the earlier steps), because `pingan ingest` has no topic setting and would write to the shared contract topics; its figure is an upper bound.",
        }),
    }
}
