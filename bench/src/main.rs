//! `make bench`: measures the pipeline on this machine and writes `target/bench/report.{json,md}`.
//!
//! Everything runs against the local Kafka and ClickHouse (`make up`) on topics and databases
//! named for this run, which are deleted at the end. Steps, in order, one module each:
//! 1. [`classifier`]: texts/s on one core, offline (`Enricher` over simulated records, with the
//!    model and with the rules alone) and through `pingan classify --stdin`;
//! 2. [`kafka`]: raw Kafka produce rate of simulated raw records, and consume rate reading them
//!    back;
//! 3. [`sink`]: the enriched topic into ClickHouse: N enriched events (classifier output for
//!    simulated records, each copy with a fresh `event_id`) are written to a fresh topic, then
//!    read by (a) a plain rdkafka consumer (no processing: the upper bound), (b) ClickHouse
//!    18.16's own Kafka table engine + a materialized view into a plain MergeTree, (c) `pingan
//!    aggregate` (the release binary, as a process) into a fresh migrated database with every
//!    rollup;
//! 4. [`e2e`]: end to end: ingest HTTP (in this process; `pingan ingest` has no topic setting and
//!    would write to the shared contract topics) → `pingan classify` → `pingan aggregate` →
//!    ClickHouse, with `pingan serve` polled on `/v1/counts`, at a low rate and as fast as
//!    possible; throughput, freshness, and the peak RSS (VmHWM) of each service process;
//! 5. [`query`]: query latency of `/v1/counts` and `/v1/heatmap` over bulk history, by running
//!    the `query_bench` example of `pingan-query` (its seeder and request loop through the
//!    router);
//! 6. [`machine`]: cores, memory, CPU, server and client versions, load.
//!
//! [`report`] renders the Markdown report. Sizes: `PINGAN_BENCH_AGG_EVENTS` (default 400 000)
//! and `PINGAN_BENCH_QUERY_EVENTS` (default 2 000 000; 50 000 000 for the full-scale figure),
//! `PINGAN_BENCH_QUERY_DAYS` (365), `PINGAN_BENCH_QUERY_ROUNDS` (20). Progress goes to stderr,
//! results to stdout and the report.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

mod classifier;
mod e2e;
mod kafka;
mod machine;
mod query;
mod report;
mod service;
mod sink;
mod util;

use std::path::PathBuf;

use pingan_ingest::IngestSettings;
use pingan_pipeline::client::KafkaConfig;
use serde_json::{Value, json};

use crate::util::{delete_topics, env_u64, step, target_dir};

/// What every step needs, and what the run created (deleted at the end).
pub(crate) struct Ctx {
    pub(crate) kafka_addr: String,
    pub(crate) ch_url: String,
    pub(crate) kafka: KafkaConfig,
    /// The server's `default` database.
    pub(crate) root: clickhouse::Client,
    /// Ingest settings of the in-process ingest and the simulator (no QR rate limits: the
    /// simulator is one client address).
    pub(crate) ingest: IngestSettings,
    /// `target/release/pingan`.
    pub(crate) bin: PathBuf,
    /// `target/release/examples/query_bench`.
    pub(crate) query_bin: PathBuf,
    /// `target/bench/logs`.
    pub(crate) logs: PathBuf,
    pub(crate) topics: Vec<String>,
    pub(crate) dbs: Vec<String>,
}

impl Ctx {
    fn from_env() -> Ctx {
        let kafka_addr =
            std::env::var("PINGAN_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into());
        let ch_url = std::env::var("PINGAN_TEST_CLICKHOUSE_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:8123".into());
        let target = target_dir();
        let bin = target.join("release/pingan");
        let query_bin = target.join("release/examples/query_bench");
        for b in [&bin, &query_bin] {
            assert!(
                b.exists(),
                "{} is missing: `make bench` builds it (cargo build --release -p pingan; -p pingan-query --example query_bench)",
                b.display()
            );
        }
        let logs = target.join("bench/logs");
        std::fs::create_dir_all(&logs).unwrap();
        let mut ingest = IngestSettings::for_tests();
        let unlimited = pingan_ingest::config::RateSettings {
            per_minute: 10_000_000,
            burst: 100_000,
        };
        ingest.qr_client_rate = unlimited;
        ingest.qr_plate_rate = unlimited;
        Ctx {
            kafka: KafkaConfig {
                bootstrap_servers: kafka_addr.clone(),
                ..Default::default()
            },
            root: clickhouse::Client::default()
                .with_url(&ch_url)
                .with_validation(false),
            kafka_addr,
            ch_url,
            ingest,
            bin,
            query_bin,
            logs,
            topics: Vec::new(),
            dbs: Vec::new(),
        }
    }

    /// Drops what this run created (never anything else: names carry this run's suffixes).
    async fn clean_up(&self) {
        step("cleaning up topics and databases");
        for db in &self.dbs {
            let _ = self
                .root
                .query(&format!("DROP DATABASE IF EXISTS {db}"))
                .execute()
                .await;
        }
        delete_topics(&self.kafka_addr, &self.topics).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let agg_events = env_u64("PINGAN_BENCH_AGG_EVENTS", 400_000);
    let mut ctx = Ctx::from_env();
    let before = machine::Load::now(&ctx.root).await;
    let mut results = serde_json::Map::new();

    let (classified, enriched) = classifier::run(&ctx).await;
    results.insert("classifier".into(), classified);
    let raw = kafka::run(&mut ctx).await;
    results.insert("raw_kafka".into(), raw.clone());
    let (store, agg_bulk_rss) = sink::run(&mut ctx, &enriched, agg_events).await;
    results.insert("enriched_to_clickhouse".into(), store.clone());
    let end_to_end = e2e::run(&mut ctx).await;
    results.insert("e2e".into(), json!([end_to_end.low, end_to_end.high]));
    let mut rss = end_to_end.rss;
    rss["aggregate_process_bulk_step3"] = json!(agg_bulk_rss);
    results.insert("peak_rss_mb".into(), rss);
    results.insert("queries".into(), query::run(&mut ctx).await);

    // Ratios of our pipeline against the limits measured in this same run.
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let e2e_rate = end_to_end.high["e2e_events_per_sec"]
        .as_f64()
        .unwrap_or(0.0);
    let engine_rate = num(&store["kafka_engine"]["rows_per_sec_from_join"]);
    let raw_enr_consume = num(&store["raw_consume"]["rows_per_sec_sustained"]);
    let agg_rate = num(&store["aggregator"]["rows_per_sec_from_join"]);
    results.insert(
        "ratios".into(),
        json!({
            "e2e_over_raw_kafka_produce": e2e_rate / num(&raw["produce_per_sec"]),
            "e2e_over_raw_kafka_consume": e2e_rate / num(&raw["consume_per_sec"]),
            "e2e_over_kafka_engine": e2e_rate / engine_rate,
            "aggregator_over_kafka_engine": agg_rate / engine_rate,
            "aggregator_over_raw_enriched_consume": agg_rate / raw_enr_consume,
            "kafka_engine_over_raw_enriched_consume": engine_rate / raw_enr_consume,
        }),
    );
    results.insert("machine".into(), machine::describe(&ctx, before).await);
    ctx.clean_up().await;

    let out_dir = target_dir().join("bench");
    std::fs::write(
        out_dir.join("report.json"),
        serde_json::to_string_pretty(&Value::Object(results.clone())).unwrap(),
    )
    .unwrap();
    let md = report::report_md(&results);
    std::fs::write(out_dir.join("report.md"), &md).unwrap();
    println!("\n{md}\nwritten: target/bench/report.json, target/bench/report.md");
}
