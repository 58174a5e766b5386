//! `make bench`: measures the pipeline on this machine and writes `target/bench/report.{json,md}`.
//!
//! Everything runs against the local Kafka and ClickHouse (`make up`) on topics and databases
//! named for this run, which are deleted at the end. Steps, in order:
//! 1. classifier texts/s on one core (offline `Enricher` over simulated records);
//! 2. raw Kafka produce rate of simulated raw records, and consume rate reading them back;
//! 3. the enriched topic into ClickHouse: N enriched events (classifier output for simulated
//!    records, each copy with a fresh `event_id`) are written to a fresh topic, then read by
//!    (a) a plain rdkafka consumer (no processing: the upper bound), (b) ClickHouse 18.16's own
//!    Kafka table engine + a materialized view into a plain MergeTree, (c) `pingan aggregate`
//!    (the release binary, as a process) into a fresh migrated database with every rollup;
//! 4. end to end: ingest HTTP (in this process; `pingan ingest` has no topic setting and would
//!    write to the shared contract topics) → `pingan classify` → `pingan aggregate` →
//!    ClickHouse, with `pingan serve` polled on `/v1/counts`, at a low rate and as fast as
//!    possible; throughput, freshness, and the peak RSS (VmHWM) of each service process;
//! 5. query latency of `/v1/counts` and `/v1/heatmap` over bulk history, by running the
//!    `query_bench` example of `pingan-query` (its seeder and request loop through the router);
//! 6. the machine: cores, memory, CPU, server and client versions.
//!
//! Sizes: `PINGAN_BENCH_AGG_EVENTS` (default 400 000) and `PINGAN_BENCH_QUERY_EVENTS` (default
//! 2 000 000; 50 000 000 for the full-scale figure), `PINGAN_BENCH_QUERY_DAYS` (365),
//! `PINGAN_BENCH_QUERY_ROUNDS` (20). Progress goes to stderr, results to stdout and the report.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use pingan_classifier::enrich::{Enricher, RawEvent};
use pingan_domain::events::EnrichedEvent;
use pingan_ingest::publish::KafkaPublisher;
use pingan_ingest::{AppState, IngestSettings};
use pingan_pipeline::client::KafkaSettings;
use pingan_pipeline::producer::{OutRecord, Publisher};
use pingan_runtime::config::ClickHouseSettings;
use pingan_sim::target::{call_record, qr_record};
use pingan_sim::{
    Body, Generator, GeneratorConfig, HttpTarget, KafkaTarget, Ledger, Pacing, RetryPolicy,
    RunOptions, Target,
};
use prometheus::Registry;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    )
}

fn step(msg: &str) {
    eprintln!("[bench {}] {msg}", Utc::now().format("%H:%M:%S"));
}

/// Creates topics (the local broker does not auto-create them), each with its `.dlq`.
async fn create_topics(bootstrap: &str, names: &[&str], partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let dlqs: Vec<String> = names.iter().map(|n| format!("{n}.dlq")).collect();
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(1)))
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

async fn delete_topics(bootstrap: &str, names: &[String]) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let all: Vec<String> = names
        .iter()
        .flat_map(|n| [n.clone(), format!("{n}.dlq")])
        .collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    // A topic without a `.dlq` answers "unknown topic" for that name only: nothing to clean.
    let _ = admin
        .delete_topics(
            &refs,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await;
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

/// A service run as its own process of the release binary, so its memory is its own.
struct Service {
    name: &'static str,
    child: Child,
}

impl Service {
    fn start(bin: &Path, command: &str, env: &[(String, String)], logs: &Path) -> Service {
        let name: &'static str = match command {
            "classify" => "classify",
            "aggregate" => "aggregate",
            "serve" => "serve",
            other => panic!("no service {other}"),
        };
        let log = std::fs::File::create(logs.join(format!("{name}.log"))).unwrap();
        let child = Command::new(bin)
            .arg(command)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("PINGAN__LOG__FILTER", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} {command}: {e}", bin.display()));
        Service { name, child }
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "pingan {} exited early ({status}); see target/bench/logs/{}.log",
                self.name, self.name
            );
        }
    }

    /// Peak resident set so far (the kernel's high-water mark), in MB.
    fn peak_rss_mb(&self) -> Option<f64> {
        proc_kb(&format!("/proc/{}/status", self.child.id()), "VmHWM:").map(|k| k as f64 / 1024.0)
    }

    /// SIGTERM (graceful: the service stores what is durable), then the peak RSS read just
    /// before it.
    fn stop(mut self) -> Option<f64> {
        let hwm = self.peak_rss_mb();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return hwm;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        hwm
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // A panicking bench must not leave consumers running in someone else's broker.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A bare HTTP/1.1 GET; returns the status code.
async fn http_get(addr: &str, path: &str) -> Option<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    std::str::from_utf8(buf.get(..12)?)
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Rows/s while `table` fills up to `target` rows, polled every 100 ms: the rate between the first
/// poll that sees rows and the one that sees them all (startup and group join excluded), and the
/// wall time from `started`.
async fn watch_fill(
    ch: &clickhouse::Client,
    table: &str,
    target: u64,
    started: Instant,
    timeout: Duration,
    label: &str,
) -> Value {
    // A consumer that fails on every block (a view that does not fit the table) never moves:
    // give up after half a minute without progress rather than wait out the whole timeout.
    let stall = Duration::from_secs(30);
    let mut first: Option<(Instant, u64)> = None;
    let mut last_report = Instant::now();
    let mut last_change = Instant::now();
    let mut steps = 0u32;
    let mut n = 0u64;
    while started.elapsed() < timeout && last_change.elapsed() < stall {
        let now_n = ch
            .query(&format!("SELECT count() FROM {table}"))
            .fetch_one::<u64>()
            .await
            .unwrap_or(n);
        let now = Instant::now();
        if now_n != n {
            n = now_n;
            last_change = now;
            steps += 1;
        }
        if n > 0 && first.is_none() {
            first = Some((now, n));
        }
        if n >= target {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            step(&format!("  {label}: {n}/{target} rows"));
            last_report = now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The last row counts when it became visible, not when the watch gave up waiting for more.
    let done = if n >= target {
        Instant::now()
    } else {
        last_change
    };
    let wall = (done - started).as_secs_f64();
    let sustained = match first {
        Some((t, n0)) if n > n0 => (n - n0) as f64 / (done - t).as_secs_f64(),
        _ => f64::NAN,
    };
    if n < target {
        step(&format!(
            "  {label}: gave up at {n}/{target} rows (no progress for {}s or timeout)",
            stall.as_secs()
        ));
    }
    json!({
        "rows": n, "target": target, "complete": n >= target,
        "rows_per_sec_sustained": sustained,
        "rows_per_sec_wall": n as f64 / wall,
        "wall_secs": wall,
        "first_rows_after_secs": first.map(|(t, _)| (t - started).as_secs_f64()),
        "all_rows_after_secs": (done - started).as_secs_f64(),
        "visible_increments": steps,
    })
}

/// Adds `rows_per_sec_from_join`: rows over the time from the consumer group's join to the
/// last row visible (the headline rate: it charges each side for consuming, transforming and
/// inserting, not for starting a process or joining a group).
fn with_join_rate(v: &mut Value, started: Instant, joined: Option<Instant>) {
    let Some(j) = joined else { return };
    let join = j.saturating_duration_since(started).as_secs_f64();
    let all = v["all_rows_after_secs"].as_f64().unwrap_or(f64::NAN);
    let rows = v["rows"].as_f64().unwrap_or(0.0);
    v["group_joined_after_secs"] = json!(join);
    v["rows_per_sec_from_join"] = json!(rows / (all - join));
}

/// One end-to-end run: send with `options`, then poll ClickHouse until every acked id is visible,
/// while `serve` is asked for `/v1/counts` as a dashboard would.
async fn e2e(
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

/// The Kafka-engine side of step 3: a `Kafka` table, a plain MergeTree and the view between.
///
/// ClickHouse 18.16 takes format settings for the engine's background consumer only from the
/// server's default profile (not from the CREATE query), so `input_format_skip_unknown_fields`
/// and `date_time_input_format = 'best_effort'` are out of reach, and JSONEachRow rejects the
/// nested `area`, `location` and `classification` objects and the RFC 3339 `event_time`. Each
/// message is therefore read whole as one TabSeparated string (JSON has no raw tabs or
/// newlines) and picked apart in the view with `visitParam*` (first occurrence of a key at any
/// depth, so `area.town_code` is found as `town_code`) and `parseDateTimeBestEffort`.
///
/// Not attempted on the shared server: feeding the production `incidents` table and its
/// rollups. 18.16 does not cascade views (a view writing into `incidents` leaves the rollup
/// views on `incidents` untouched), does not run a view with a subquery from the engine's
/// thread ("There is no query"), and aborted the whole server once when a parse error in the
/// engine's thread met a DROP of its table (MATERIALIZED columns on the engine table are read as
/// input columns).
fn kafka_engine_ddl(db: &str, bootstrap: &str, topic: &str, group: &str) -> Vec<String> {
    let str_ = |k: &str| format!("visitParamExtractString(line, '{k}')");
    let arr = |k: &str| format!("extractAll(visitParamExtractRaw(line, '{k}'), '\"([^\"]*)\"')");
    let fields: Vec<(&str, String)> = vec![
        ("event_id", str_("event_id")),
        ("source", str_("source")),
        (
            "event_time",
            format!("parseDateTimeBestEffort({})", str_("event_time")),
        ),
        ("category", str_("category")),
        ("subtype", str_("subtype")),
        ("department", str_("department")),
        (
            "priority",
            "toUInt8(visitParamExtractUInt(line, 'priority'))".into(),
        ),
        ("district_code", str_("district_code")),
        ("town_code", str_("town_code")),
        ("station_code", str_("station_code")),
        ("compound_id", str_("compound_id")),
        ("lat", "visitParamExtractFloat(line, 'lat')".into()),
        ("lon", "visitParamExtractFloat(line, 'lon')".into()),
        ("h3", str_("h3")),
        ("tags", arr("tags")),
        ("keywords", arr("keywords")),
        ("classifier_version", str_("classifier_version")),
        ("description", str_("description")),
    ];
    let select: Vec<String> = fields.iter().map(|(n, e)| format!("{e} AS {n}")).collect();
    vec![
        format!(
            "CREATE TABLE {db}.ke_incidents (event_id String, source String, \
             event_time DateTime('Asia/Shanghai'), category String, subtype String, \
             department String, priority UInt8, district_code String, town_code String, \
             station_code String, compound_id String, lat Float64, lon Float64, h3 String, \
             tags Array(String), keywords Array(String), classifier_version String, \
             description String) ENGINE = MergeTree PARTITION BY toYYYYMM(event_time) \
             ORDER BY (toDate(event_time), event_id)"
        ),
        format!(
            "CREATE TABLE {db}.ke_queue (line String) \
             ENGINE = Kafka('{bootstrap}', '{topic}', '{group}', 'TabSeparated', '\\n')"
        ),
        format!(
            "CREATE MATERIALIZED VIEW {db}.ke_mv TO {db}.ke_incidents AS SELECT {} \
             FROM {db}.ke_queue",
            select.join(", ")
        ),
    ]
}

/// When `group` first has a member and is stable (partitions assigned), polled from another
/// thread: the moment a consumer can start fetching, so rates can exclude process start-up and
/// the group join.
fn group_joined(
    kafka: KafkaSettings,
    group: String,
    timeout: Duration,
) -> tokio::task::JoinHandle<Option<Instant>> {
    tokio::task::spawn_blocking(move || {
        let probe: BaseConsumer = kafka
            .consumer_config("bench", &format!("pingan_bench_probe_{}", suffix()))
            .create()
            .ok()?;
        let t = Instant::now();
        while t.elapsed() < timeout {
            if let Ok(list) = probe.fetch_group_list(Some(&group), Duration::from_secs(2))
                && list
                    .groups()
                    .iter()
                    .any(|g| g.state() == "Stable" && !g.members().is_empty())
            {
                return Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    })
}

/// Commits offset 0 on every partition for `group`: the 18.16 engine's consumer starts at the
/// end of the topic for a group without committed offsets.
fn commit_start(kafka: &KafkaSettings, group: &str, topic: &str, partitions: i32) {
    use rdkafka::TopicPartitionList;
    let c: BaseConsumer = kafka.consumer_config("bench", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(0))
            .unwrap();
    }
    c.commit(&tpl, CommitMode::Sync).unwrap();
}

/// Runs the Kafka engine over `topic` into a new database `db` and watches `n` rows arrive,
/// then stops it and drops `db`.
async fn run_kafka_engine(
    kafka: &KafkaSettings,
    kafka_addr: &str,
    root: &clickhouse::Client,
    db: &str,
    topic: &str,
    n: u64,
    timeout: Duration,
) -> Value {
    let group = format!("pingan_bench_ke_{}", suffix());
    commit_start(kafka, &group, topic, 4);
    root.query(&format!("CREATE DATABASE {db}"))
        .execute()
        .await
        .unwrap();
    let joined = group_joined(kafka.clone(), group.clone(), timeout);
    let t = Instant::now();
    for stmt in kafka_engine_ddl(db, kafka_addr, topic, &group) {
        root.query(&stmt)
            .execute()
            .await
            .unwrap_or_else(|e| panic!("{e}: {stmt}"));
    }
    let table = format!("{db}.ke_incidents");
    let mut v = watch_fill(root, &table, n, t, timeout, "kafka engine → MergeTree").await;
    with_join_rate(&mut v, t, joined.await.ok().flatten());
    v["distinct_event_ids"] = json!(
        root.query(&format!("SELECT uniqExact(event_id) FROM {table}"))
            .fetch_one::<u64>()
            .await
            .unwrap_or(0)
    );
    // Without a view the engine stops streaming; its thread gets a few seconds to finish the
    // cycle it is in before the table goes (18.16 once aborted when a DROP met a failing read).
    let _ = root
        .query(&format!("DROP TABLE IF EXISTS {db}.ke_mv"))
        .execute()
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = root
        .query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute()
        .await;
    v
}

const KAFKA_ENGINE_NOTE: &str = "ClickHouse 18.16 Kafka engine: one librdkafka consumer inside the server reads the topic; \
each message is read as one TabSeparated string (18.16 applies format settings to the engine only from the server's default profile, \
so JSONEachRow cannot skip the nested area/location/classification objects nor parse the RFC 3339 event_time) and a materialized view \
extracts the fields (visitParam*, parseDateTimeBestEffort); blocks of up to max_block_size (65,536) rows or stream_flush_interval_ms (7.5 s), \
offsets committed after the block is inserted. It does NOT: deduplicate event_id (plain MergeTree; at-least-once, a crash between insert \
and commit re-inserts the block), send poison records to a DLQ (a row that does not parse or fit fails its whole block and the error is only \
in the server log), maintain rollups or the insert audit (18.16 does not cascade views, so each would need its own view on the engine table; not tried on the shared server, see the harness), \
compute H3 parents (no H3 functions in 18.16), detect spikes, or read from the start of the topic for a new group \
(it starts at the end; the bench commits offset 0 for the engine's group first).";

/// Our aggregator and ClickHouse's Kafka engine over the same enriched topic (step 3).
#[allow(clippy::too_many_arguments)]
async fn aggregator_vs_engine(
    kafka: &KafkaSettings,
    kafka_addr: &str,
    ch_url: &str,
    root: &clickhouse::Client,
    pool: &[EnrichedEvent],
    n: u64,
    bin: &Path,
    logs: &Path,
    topics: &mut Vec<String>,
    dbs: &mut Vec<String>,
) -> (Value, Option<f64>) {
    let topic = format!("pingan_bench_enr_{}", suffix());
    let alerts = format!("pingan_bench_alerts_{}", suffix());
    create_topics(kafka_addr, &[&topic], 4).await;
    create_topics(kafka_addr, &[&alerts], 1).await;
    topics.extend([topic.clone(), alerts.clone()]);

    // Fill: the classifier's JSON and key (town code), each copy with its own event_id so no
    // row folds into another.
    step(&format!("enriched topic {topic}: producing {n} events"));
    let publisher = Publisher::new(kafka, "bench", Duration::from_secs(60)).unwrap();
    let t = Instant::now();
    let mut bytes = 0u64;
    let mut i = 0u64;
    while i < n {
        let chunk: Vec<(Vec<u8>, Vec<u8>)> = (i..(i + 10_000).min(n))
            .map(|j| {
                let mut e = pool[(j % pool.len() as u64) as usize].clone();
                e.event_id = Uuid::new_v4();
                let key = e.area.town_code.clone().unwrap_or_else(|| "unknown".into());
                (key.into_bytes(), serde_json::to_vec(&e).unwrap())
            })
            .collect();
        bytes += chunk.iter().map(|(_, v)| v.len() as u64).sum::<u64>();
        publisher
            .publish(chunk.iter().map(|(k, v)| OutRecord {
                topic: &topic,
                key: Some(k),
                payload: v,
                headers: &[],
            }))
            .await
            .unwrap();
        i += chunk.len() as u64;
        if i.is_multiple_of(100_000) {
            step(&format!("  produced {i}/{n}"));
        }
    }
    let produce_secs = t.elapsed().as_secs_f64();
    let _ = publisher.flush(Duration::from_secs(30));
    let avg_bytes = bytes as f64 / n as f64;

    // (a) Upper bound: a bare consumer, no parsing, no writes.
    step("raw consume of the enriched topic");
    let consumer: BaseConsumer = kafka
        .consumer_config("bench", &format!("bench_raw_{}", suffix()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let t = Instant::now();
    let mut got = 0u64;
    let mut first: Option<Instant> = None;
    while got < n && t.elapsed() < Duration::from_secs(300) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            got += 1;
            std::hint::black_box(m.payload());
        }
    }
    let consume_wall = t.elapsed().as_secs_f64();
    let consume_sustained = first.map_or(f64::NAN, |f| got as f64 / f.elapsed().as_secs_f64());
    drop(consumer);

    // (b) ClickHouse's Kafka engine into a plain MergeTree.
    let timeout = Duration::from_secs(120 + n / 1_000);
    let ke_db = format!("pingan_bench_ke_{}", suffix());
    dbs.push(ke_db.clone());
    step(&format!(
        "ClickHouse Kafka engine consuming {n} events into {ke_db}.ke_incidents (plain MergeTree)"
    ));
    let engine = run_kafka_engine(kafka, kafka_addr, root, &ke_db, &topic, n, timeout).await;

    // (c) `pingan aggregate` into a fresh database with the production schema.
    let agg_db = format!("pingan_bench_agg_{}", suffix());
    dbs.push(agg_db.clone());
    let chs = ClickHouseSettings {
        url: ch_url.to_owned(),
        database: agg_db.clone(),
        ..Default::default()
    };
    pingan_warehouse::migrate::apply(&chs, |_| {})
        .await
        .unwrap();
    step(&format!(
        "pingan aggregate consuming {n} events into {agg_db}.incidents (+ rollups)"
    ));
    let agg_group = format!("pingan_bench_agg_{}", suffix());
    let env = vec![
        ("PINGAN__KAFKA__BOOTSTRAP_SERVERS".into(), kafka_addr.into()),
        ("PINGAN__CLICKHOUSE__URL".into(), ch_url.into()),
        ("PINGAN__CLICKHOUSE__DATABASE".into(), agg_db.clone()),
        ("PINGAN__AGGREGATOR__TOPIC".into(), topic.clone()),
        ("PINGAN__AGGREGATOR__GROUP_ID".into(), agg_group.clone()),
        ("PINGAN__AGGREGATOR__ADMIN_LISTEN".into(), String::new()),
        ("PINGAN__AGGREGATOR__ALERTS__TOPIC".into(), alerts),
    ];
    let joined = group_joined(kafka.clone(), agg_group, timeout);
    let t = Instant::now();
    let mut agg = Service::start(bin, "aggregate", &env, logs);
    let agg_ch = pingan_warehouse::client(&chs, pingan_warehouse::Role::Writer);
    let mut ours = watch_fill(&agg_ch, "incidents", n, t, timeout, "pingan aggregate").await;
    with_join_rate(&mut ours, t, joined.await.ok().flatten());
    agg.assert_running();
    let rollup_ok: u64 = agg_ch
        .query("SELECT uniqExactMerge(events) FROM counts_hour")
        .fetch_one()
        .await
        .unwrap_or(0);
    let agg_rss = agg.stop();
    let _ = agg_ch
        .query(&format!("DROP DATABASE IF EXISTS {agg_db}"))
        .execute()
        .await;

    let e = engine["rows_per_sec_from_join"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let o = ours["rows_per_sec_from_join"].as_f64().unwrap_or(f64::NAN);
    let v = json!({
        "events": n, "avg_payload_bytes": avg_bytes,
        "produce_per_sec": n as f64 / produce_secs,
        "raw_consume": { "rows_per_sec_sustained": consume_sustained, "rows_per_sec_wall": got as f64 / consume_wall, "rows": got },
        "kafka_engine": engine,
        "kafka_engine_does": KAFKA_ENGINE_NOTE,
        "aggregator": ours, "aggregator_rollup_counts_hour_total": rollup_ok,
        "aggregator_peak_rss_mb": agg_rss,
        "aggregator_over_kafka_engine": o / e,
        "aggregator_over_raw_consume": o / consume_sustained,
        "kafka_engine_over_raw_consume": e / consume_sustained,
    });
    (v, agg_rss)
}

/// One query's latency from `query_bench`'s tables.
struct QueryCase {
    /// `before sealing` or `sealed days` (the table it came from).
    phase: &'static str,
    name: String,
    /// `[p50, p99, max]` ms and rounds, or the failure `query_bench` printed.
    result: Result<([f64; 3], u64), String>,
}

/// Reads `query_bench`'s stdout: a table per phase (`before sealing …:` when the seeded database
/// had no sealed days, then `with sealed days:`), lines `name p50 p99 max rounds` or
/// `name failed: <status>`; the closing before/after summary is skipped.
fn parse_query_tables(stdout: &str) -> Vec<QueryCase> {
    let mut phase: Option<&'static str> = None;
    let mut out = Vec::new();
    for l in stdout.lines() {
        if l.starts_with("before sealing") {
            phase = Some("before sealing");
            continue;
        }
        if l.starts_with("with sealed days") {
            phase = Some("sealed days");
            continue;
        }
        if l.trim().is_empty() || l.starts_with("sealed ") {
            continue;
        }
        let Some(ph) = phase else { continue };
        if l.contains("p50 before") {
            phase = None;
            continue;
        }
        let name: String = l.chars().take(48).collect::<String>().trim().to_owned();
        let rest: String = l.chars().skip(48).collect();
        if name == "query" || name.is_empty() {
            continue;
        }
        if let Some(f) = rest.trim().strip_prefix("failed:") {
            out.push(QueryCase {
                phase: ph,
                name,
                result: Err(f.trim().to_owned()),
            });
            continue;
        }
        let nums: Vec<f64> = rest
            .split_whitespace()
            .filter_map(|t| t.parse().ok())
            .collect();
        if let [p50, p99, max, rounds] = nums[..] {
            out.push(QueryCase {
                phase: ph,
                name,
                result: Ok(([p50, p99, max], rounds as u64)),
            });
        }
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let kafka_addr = std::env::var("PINGAN_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let ch_url = std::env::var("PINGAN_TEST_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let agg_events = env_u64("PINGAN_BENCH_AGG_EVENTS", 400_000);
    let query_events = env_u64("PINGAN_BENCH_QUERY_EVENTS", 2_000_000);
    let query_days = env_u64("PINGAN_BENCH_QUERY_DAYS", 365);
    let query_rounds = env_u64("PINGAN_BENCH_QUERY_ROUNDS", 20);
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
    let out_dir = target.join("bench");
    let logs = out_dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let kafka = KafkaSettings {
        bootstrap_servers: kafka_addr.clone(),
        ..Default::default()
    };
    let root = clickhouse::Client::default()
        .with_url(&ch_url)
        .with_validation(false);
    let mut settings = IngestSettings::for_tests();
    settings.qr_client_rate = pingan_ingest::config::RateSettings {
        per_minute: 10_000_000,
        burst: 100_000,
    };
    settings.qr_plate_rate = pingan_ingest::config::RateSettings {
        per_minute: 10_000_000,
        burst: 100_000,
    };
    let load_start = load_avg();
    let busy_start = other_queries(&root).await;
    let mut results = serde_json::Map::new();
    let mut topics: Vec<String> = Vec::new();
    let mut dbs: Vec<String> = Vec::new();

    // 1. Classifier texts/s on one core.
    step("classifier texts/s (offline, one core)");
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
    let mut enriched: Vec<EnrichedEvent> = Vec::with_capacity(raws.len());
    for (raw, ev) in raws.iter().zip(&events) {
        let out = enricher.enrich(raw).0;
        if out.subtype == ev.label.subtype {
            agree += 1;
        }
        enriched.push(out);
    }
    let per_core = raws.len() as f64 / t.elapsed().as_secs_f64();
    results.insert("classifier".into(), json!({ "texts_per_sec_one_core": per_core, "agrees_with_intended_subtype": agree as f64 / raws.len() as f64 }));
    println!(
        "classifier: {per_core:.0} texts/s on one core; agrees with the intended subtype on {:.1}%",
        100.0 * agree as f64 / raws.len() as f64
    );

    // 2. Raw Kafka produce / consume of the same raw records.
    step("raw Kafka produce/consume of 50k simulated raw records");
    let (raw_calls, raw_qr) = (
        format!("pingan_bench_calls_{}", suffix()),
        format!("pingan_bench_qr_{}", suffix()),
    );
    create_topics(&kafka_addr, &[&raw_calls, &raw_qr], 4).await;
    topics.extend([raw_calls.clone(), raw_qr.clone()]);
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
    drop(consumer);
    results.insert(
        "raw_kafka".into(),
        json!({ "events": r.stats.acked, "produce_per_sec": produce, "consume_per_sec": consume }),
    );
    println!(
        "raw kafka: produce {produce:.0} ev/s, consume {consume:.0} ev/s ({} events)",
        r.stats.acked
    );

    // 3. Enriched topic → ClickHouse: bare consumer, Kafka engine, our aggregator.
    let (store, agg_bulk_rss) = aggregator_vs_engine(
        &kafka,
        &kafka_addr,
        &ch_url,
        &root,
        &enriched,
        agg_events,
        &bin,
        &logs,
        &mut topics,
        &mut dbs,
    )
    .await;
    println!(
        "enriched → ClickHouse ({agg_events} events): raw consume {:.0} rows/s, Kafka engine {:.0} rows/s, pingan aggregate {:.0} rows/s, aggregator/engine {:.2}",
        store["raw_consume"]["rows_per_sec_sustained"]
            .as_f64()
            .unwrap_or(f64::NAN),
        store["kafka_engine"]["rows_per_sec_from_join"]
            .as_f64()
            .unwrap_or(f64::NAN),
        store["aggregator"]["rows_per_sec_from_join"]
            .as_f64()
            .unwrap_or(f64::NAN),
        store["aggregator_over_kafka_engine"]
            .as_f64()
            .unwrap_or(f64::NAN),
    );
    results.insert("enriched_to_clickhouse".into(), store.clone());

    // 4. End to end through the services, classifier/aggregator/serve as their own processes.
    let (calls_t, qr_t, enr_t, alerts_t) = (
        format!("pingan_bench_c_{}", suffix()),
        format!("pingan_bench_q_{}", suffix()),
        format!("pingan_bench_e_{}", suffix()),
        format!("pingan_bench_a_{}", suffix()),
    );
    create_topics(&kafka_addr, &[&calls_t, &qr_t, &enr_t], 4).await;
    create_topics(&kafka_addr, &[&alerts_t], 1).await;
    topics.extend([
        calls_t.clone(),
        qr_t.clone(),
        enr_t.clone(),
        alerts_t.clone(),
    ]);
    let chs = ClickHouseSettings {
        url: ch_url.clone(),
        database: format!("pingan_bench_e2e_{}", suffix()),
        ..Default::default()
    };
    dbs.push(chs.database.clone());
    pingan_warehouse::migrate::apply(&chs, |_| {})
        .await
        .unwrap();
    let ch = pingan_warehouse::client(&chs, pingan_warehouse::Role::Writer);
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The settings hold `&'static str` topic names; this process is short-lived.
    settings.calls_topic = Box::leak(calls_t.clone().into_boxed_str());
    settings.qr_topic = Box::leak(qr_t.clone().into_boxed_str());
    let publisher = KafkaPublisher::new(&kafka, settings.publish_deadline).unwrap();
    let state = AppState::new(settings.clone(), Arc::new(publisher), &Registry::new()).unwrap();
    let ingest = tokio::spawn(pingan_ingest::serve(listener, state, shutdown.clone()));
    let serve_addr = format!("127.0.0.1:{}", free_port());
    let common = vec![
        (
            "PINGAN__KAFKA__BOOTSTRAP_SERVERS".to_owned(),
            kafka_addr.clone(),
        ),
        ("PINGAN__CLICKHOUSE__URL".to_owned(), ch_url.clone()),
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
        &bin,
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
        &logs,
    );
    let mut aggregate = Service::start(
        &bin,
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
        &logs,
    );
    let mut serve = Service::start(
        &bin,
        "serve",
        &with(&[("PINGAN__SERVE__LISTEN", serve_addr.clone())]),
        &logs,
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
        HttpTarget::new(&format!("http://{addr}"), None, RetryPolicy::default()).unwrap(),
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
    let e2e_rate = high["e2e_events_per_sec"].as_f64().unwrap_or(0.0);
    results.insert("e2e".into(), json!([low, high]));
    results.insert(
        "peak_rss_mb".into(),
        json!({
            "classify_process": rss_classify,
            "aggregate_process_e2e": rss_aggregate,
            "aggregate_process_bulk_step3": agg_bulk_rss,
            "serve_process": rss_serve,
            "bench_process_with_in_process_ingest": bench_rss,
            "note": "VmHWM of each `pingan` process just before SIGTERM. Ingest runs inside the bench process (with the simulator and the earlier steps), because `pingan ingest` has no topic setting and would write to the shared contract topics; its figure is an upper bound.",
        }),
    );

    // 5. Query latency over bulk history, through the router (query_bench).
    let qdb = format!("pingan_bench_q_{}", suffix());
    dbs.push(qdb.clone());
    step(&format!(
        "query latency: seeding {query_events} events over {query_days} days into {qdb}, {query_rounds} rounds per query"
    ));
    let t = Instant::now();
    let qout = {
        let (qb, qdb, url) = (query_bin.clone(), qdb.clone(), ch_url.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(qb)
                .args([
                    "--events",
                    &query_events.to_string(),
                    "--days",
                    &query_days.to_string(),
                    "--db",
                    &qdb,
                    "--url",
                    &url,
                    "--rounds",
                    &query_rounds.to_string(),
                    "--drop",
                ])
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
        })
        .await
        .unwrap()
        .unwrap()
    };
    let query_secs = t.elapsed().as_secs_f64();
    let qtext = String::from_utf8_lossy(&qout.stdout).into_owned();
    let _ = std::fs::write(logs.join("query_bench.txt"), &qtext);
    let queries = parse_query_tables(&qtext);
    if !qout.status.success() || queries.is_empty() {
        eprintln!("query_bench failed ({}):\n{qtext}", qout.status);
    }
    results.insert(
        "queries".into(),
        json!({
            "events": query_events, "days": query_days, "rounds": query_rounds,
            "secs_including_seed": query_secs,
            "ok": qout.status.success(),
            "cases": queries.iter().map(|c| match &c.result {
                Ok(([p50, p99, max], rounds)) => json!({"phase": c.phase, "query": c.name, "p50_ms": p50, "p99_ms": p99, "max_ms": max, "rounds": rounds}),
                Err(e) => json!({"phase": c.phase, "query": c.name, "failed": e}),
            }).collect::<Vec<_>>(),
            "sealing": qtext.lines().find(|l| l.starts_with("sealed ")).map(str::to_owned),
        }),
    );

    // Ratios of our pipeline against the limits measured in this same run.
    let engine_rate = store["kafka_engine"]["rows_per_sec_from_join"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let raw_enr_consume = store["raw_consume"]["rows_per_sec_sustained"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let agg_rate = store["aggregator"]["rows_per_sec_from_join"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let ratios = json!({
        "e2e_over_raw_kafka_produce": e2e_rate / produce,
        "e2e_over_raw_kafka_consume": e2e_rate / consume,
        "e2e_over_kafka_engine": e2e_rate / engine_rate,
        "aggregator_over_kafka_engine": agg_rate / engine_rate,
        "aggregator_over_raw_enriched_consume": agg_rate / raw_enr_consume,
        "kafka_engine_over_raw_enriched_consume": engine_rate / raw_enr_consume,
    });
    results.insert("ratios".into(), ratios.clone());

    // 6. Machine.
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kb = proc_kb("/proc/meminfo", "MemTotal:");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let ch_version: String = root
        .query("SELECT version()")
        .fetch_one()
        .await
        .unwrap_or_default();
    let kafka_version = kafka_broker_version();
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    results.insert(
        "machine".into(),
        json!({ "cores": cores, "mem_total_mb": mem_kb.map(|k| k / 1024), "cpu": cpu,
                "clickhouse": ch_version, "kafka": kafka_version, "librdkafka_client": librdkafka,
                "load_avg_1m_start": load_start, "load_avg_1m_end": load_avg(),
                "other_clickhouse_queries_at_start": busy_start }),
    );

    // Clean up what this run created (never anything else: names carry this run's suffixes).
    step("cleaning up topics and databases");
    for db in &dbs {
        let _ = root
            .query(&format!("DROP DATABASE IF EXISTS {db}"))
            .execute()
            .await;
    }
    delete_topics(&kafka_addr, &topics).await;

    std::fs::write(
        out_dir.join("report.json"),
        serde_json::to_string_pretty(&Value::Object(results.clone())).unwrap(),
    )
    .unwrap();
    let md = report_md(&results);
    std::fs::write(out_dir.join("report.md"), &md).unwrap();
    println!("\n{md}\nwritten: target/bench/report.json, target/bench/report.md");
}

/// The 1-minute load average: the services are shared, so a busy machine is recorded, not hidden.
fn load_avg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Queries other clients are running on the shared ClickHouse (they compete with the bench).
async fn other_queries(root: &clickhouse::Client) -> Vec<String> {
    root.query("SELECT concat(toString(round(elapsed)), ' s: ', substring(query, 1, 60)) FROM system.processes WHERE query NOT LIKE '%system.processes%'")
        .fetch_all::<String>()
        .await
        .unwrap_or_default()
}

/// The broker's version from the jar `make up` runs (`kafka_<scala>-<version>.jar`).
fn kafka_broker_version() -> String {
    let libs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/kafka/libs");
    std::fs::read_dir(libs)
        .ok()
        .and_then(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .find(|n| n.starts_with("kafka_2.") && n.ends_with(".jar"))
        })
        .and_then(|n| {
            n.trim_end_matches(".jar")
                .split_once('-')
                .map(|(_, v)| v.to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn report_md(r: &serde_json::Map<String, Value>) -> String {
    let f = |v: &Value, d: usize| v.as_f64().map_or("-".into(), |x| format!("{x:.d$}"));
    let m = &r["machine"];
    let s = &r["enriched_to_clickhouse"];
    let e2e = r["e2e"].as_array().cloned().unwrap_or_default();
    let (low, high) = (&e2e[0], &e2e[1]);
    let rss = &r["peak_rss_mb"];
    let q = &r["queries"];
    let x = &r["ratios"];
    let (ke, ag) = (&s["kafka_engine"], &s["aggregator"]);
    let rate = |v: &Value| {
        format!(
            "{} ({})",
            f(&v["rows_per_sec_from_join"], 0),
            f(&v["rows_per_sec_wall"], 0)
        )
    };
    let rows: Vec<(&str, String)> = vec![
        (
            "classifier texts/s (one core)",
            f(&r["classifier"]["texts_per_sec_one_core"], 0),
        ),
        (
            "raw Kafka produce ev/s (simulated raw records)",
            f(&r["raw_kafka"]["produce_per_sec"], 0),
        ),
        (
            "raw Kafka consume ev/s (same records)",
            f(&r["raw_kafka"]["consume_per_sec"], 0),
        ),
        (
            "enriched topic: events / avg payload bytes",
            format!("{} / {}", s["events"], f(&s["avg_payload_bytes"], 0)),
        ),
        ("enriched topic: produce ev/s", f(&s["produce_per_sec"], 0)),
        (
            "enriched → bare rdkafka consumer, rows/s",
            f(&s["raw_consume"]["rows_per_sec_sustained"], 0),
        ),
        (
            "enriched → ClickHouse Kafka engine → plain MergeTree, rows/s from group join (wall)",
            rate(ke),
        ),
        (
            "enriched → `pingan aggregate` → incidents + rollups, rows/s from group join (wall)",
            rate(ag),
        ),
        (
            "**aggregator / Kafka engine (plain MergeTree)**",
            format!("**{}**", f(&x["aggregator_over_kafka_engine"], 3)),
        ),
        (
            "rows stored / events on the topic: Kafka engine, aggregator",
            format!(
                "{} / {}, {} / {}",
                ke["distinct_event_ids"], s["events"], ag["rows"], s["events"]
            ),
        ),
        (
            "aggregator / bare consumer",
            f(&x["aggregator_over_raw_enriched_consume"], 3),
        ),
        (
            "Kafka engine (plain) / bare consumer",
            f(&x["kafka_engine_over_raw_enriched_consume"], 3),
        ),
        (
            "e2e low: ingest-acked ev/s",
            f(&low["ingest_acked_per_sec"], 1),
        ),
        (
            "e2e low: freshness p50 / p99 s",
            format!(
                "{} / {}",
                f(&low["freshness_p50_s"], 2),
                f(&low["freshness_p99_s"], 2)
            ),
        ),
        (
            "e2e high: ingest-acked ev/s",
            f(&high["ingest_acked_per_sec"], 0),
        ),
        (
            "e2e high: queryable ev/s",
            f(&high["e2e_events_per_sec"], 0),
        ),
        (
            "e2e high: freshness p50 / p99 s",
            format!(
                "{} / {}",
                f(&high["freshness_p50_s"], 2),
                f(&high["freshness_p99_s"], 2)
            ),
        ),
        (
            "e2e high / raw Kafka produce",
            f(&x["e2e_over_raw_kafka_produce"], 3),
        ),
        (
            "e2e high / raw Kafka consume",
            f(&x["e2e_over_raw_kafka_consume"], 3),
        ),
        (
            "e2e high / Kafka engine (plain)",
            f(&x["e2e_over_kafka_engine"], 3),
        ),
        (
            "peak RSS MB: `pingan classify` (e2e)",
            f(&rss["classify_process"], 0),
        ),
        (
            "peak RSS MB: `pingan aggregate` (e2e)",
            f(&rss["aggregate_process_e2e"], 0),
        ),
        (
            "peak RSS MB: `pingan aggregate` (bulk, step 3)",
            f(&rss["aggregate_process_bulk_step3"], 0),
        ),
        (
            "peak RSS MB: `pingan serve` (e2e, polled)",
            f(&rss["serve_process"], 0),
        ),
        (
            "peak RSS MB: bench process (in-process ingest + simulator + earlier steps)",
            f(&rss["bench_process_with_in_process_ingest"], 0),
        ),
    ];
    let mut md = format!(
        "# pingan bench\n\nMachine: {} cores ({}), {} MB RAM; ClickHouse {}, Kafka {}, librdkafka {} (client). \
         Load average (1 min): {} at start, {} at end; other ClickHouse queries running at start: {}.\n\n\
         | measurement | value |\n|---|---|\n",
        m["cores"],
        m["cpu"].as_str().unwrap_or(""),
        m["mem_total_mb"],
        m["clickhouse"].as_str().unwrap_or("?"),
        m["kafka"].as_str().unwrap_or("?"),
        m["librdkafka_client"].as_str().unwrap_or("?"),
        f(&m["load_avg_1m_start"], 2),
        f(&m["load_avg_1m_end"], 2),
        m["other_clickhouse_queries_at_start"]
            .as_array()
            .map_or(0, Vec::len),
    );
    for (k, v) in rows {
        md.push_str(&format!("| {k} | {v} |\n"));
    }
    md.push_str(&format!(
        "\nQuery latency over {} events of bulk history ({} days), up to {} rounds per query after one warm-up (query_bench caps each query at about 20 s), \
         through the query router in process (`query_bench`: handler + ClickHouse, no TCP){}. {}\n\n\
         | phase | query | p50 ms | p99 ms | max ms | rounds |\n|---|---|---|---|---|---|\n",
        q["events"],
        q["days"],
        q["rounds"],
        if q["ok"].as_bool() == Some(true) {
            ""
        } else {
            " — **query_bench failed, see the bench's stderr**"
        },
        q["sealing"].as_str().map_or(String::new(), |l| format!("query_bench {l}."))
    ));
    for c in q["cases"].as_array().cloned().unwrap_or_default() {
        let phase = c["phase"].as_str().unwrap_or("");
        let name = c["query"].as_str().unwrap_or("");
        if let Some(e) = c["failed"].as_str() {
            md.push_str(&format!("| {phase} | {name} | failed: {e} | | | |\n"));
        } else {
            md.push_str(&format!(
                "| {phase} | {name} | {} | {} | {} | {} |\n",
                f(&c["p50_ms"], 1),
                f(&c["p99_ms"], 1),
                f(&c["max_ms"], 1),
                c["rounds"]
            ));
        }
    }
    md.push_str(&format!(
        "\nWhat the comparisons measure: every reader starts on the same full topic of {} enriched events (the classifier's JSON, key = town). \
         Rows/s \"from group join\" = rows / (time the last row was visible in the target table, polled every 100 ms − time the reader's consumer group became stable with a member), \
         so process start-up and the group join are excluded for both sides; \"wall\" counts from process start / CREATE TABLE. \
         The bare consumer polls messages with rdkafka and touches each payload (from its first message). \
         `pingan aggregate` (release binary, production config) writes every row to `incidents` plus the rollup and audit views of the production schema and runs spike detection; \
         the Kafka engine writes one plain MergeTree (18 scalar and array fields; no rollups). {}\n",
        s["events"],
        s["kafka_engine_does"].as_str().unwrap_or("")
    ));
    md
}
