//! Ingest throughput benchmark against the real local broker (not a test).
//!
//! ```text
//! cargo run --release -p pingan-ingest --example ingest_bench -- [--clients 4] [--seconds 15] [--batch 100]
//! ```
//!
//! 1. Creates a private topic `pingan.bench.<id>` (4 partitions) so the shared topics stay clean.
//! 2. Runs the real ingest service in-process (idempotent producer, acks=all, 202 only after
//!    every delivery report) and drives it with N keep-alive HTTP/1.1 clients, each posting
//!    batches of `--batch` calls (with caller phones, so hashing is included) back to back.
//!    Reports accepted events/s and p50/p99/max latency to the 202.
//! 3. In the same run, measures the raw broker produce rate: a plain rdkafka producer with the
//!    same settings producing records of the same size to the same topic, as fast as a bounded
//!    window of outstanding deliveries allows. Prints the ratio ingest/raw.
//! 4. Deletes the topic.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::expect_used,
    clippy::unwrap_used,
    missing_docs
)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use pingan_ingest::publish::KafkaPublisher;
use pingan_ingest::{AppState, IngestConfig, IngestSettings, PiiConfig, QrConfig};
use pingan_pipeline::client::KafkaConfig;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

struct Args {
    clients: usize,
    seconds: u64,
    batch: usize,
    bootstrap: String,
}

fn args() -> Args {
    let mut a = Args {
        clients: 4,
        seconds: 15,
        batch: 100,
        bootstrap: std::env::var("PINGAN__KAFKA__BOOTSTRAP_SERVERS")
            .unwrap_or_else(|_| "127.0.0.1:9092".into()),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--clients" => a.clients = v.parse().expect("--clients N"),
            "--seconds" => a.seconds = v.parse().expect("--seconds S"),
            "--batch" => a.batch = v.parse().expect("--batch B"),
            "--bootstrap" => a.bootstrap = v,
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

fn batch_body(n: usize, client: usize) -> Bytes {
    let now = pingan_domain::time::to_shanghai(&chrono::Utc::now()).to_rfc3339();
    let items: Vec<_> = (0..n)
        .map(|i| {
            json!({
                "call_id": format!("BENCH-{client}-{i:05}"),
                "received_at": now,
                "description": "报警人称七宝老街汤团店给错品种，双方发生纠纷，现场有人推搡，请民警到场处理",
                "caller_phone": format!("138{:08}", client * 100_000 + i),
                "address": "七宝镇青年路与新镇路路口",
                "location": {"lat": 31.156, "lon": 121.3466},
                "town_code": "310112102",
                "priority": 3,
            })
        })
        .collect();
    Bytes::from(serde_json::to_vec(&items).unwrap())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn client_loop(
    addr: std::net::SocketAddr,
    body: Bytes,
    stop: Arc<AtomicBool>,
) -> (usize, usize, Vec<Duration>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (mut accepted, mut failed, mut lat) = (0usize, 0usize, Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let req = hyper::Request::post("/v1/calls")
            .header("content-type", "application/json")
            .header("host", "bench")
            .body(Full::new(body.clone()))
            .unwrap();
        let t = Instant::now();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        if status == 202 {
            lat.push(t.elapsed());
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            accepted += v["accepted"].as_u64().unwrap() as usize;
        } else {
            failed += 1;
        }
    }
    (accepted, failed, lat)
}

async fn raw_produce(kafka: &KafkaConfig, topic: &str, payload: &[u8], seconds: u64) -> f64 {
    let producer: FutureProducer = kafka.producer_config("bench-raw").create().unwrap();
    let window = 20_000;
    let mut pending = VecDeque::with_capacity(window);
    let mut acked = 0usize;
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let mut n = 0u64;
    while Instant::now() < end {
        let key = uuid::Uuid::now_v7().to_string();
        let rec = FutureRecord::to(topic).key(key.as_bytes()).payload(payload);
        match producer.send_result(rec) {
            Ok(f) => pending.push_back(f),
            Err(_) => {
                if let Some(f) = pending.pop_front() {
                    acked += usize::from(matches!(f.await, Ok(Ok(_))));
                }
                continue;
            }
        }
        n += 1;
        if pending.len() >= window
            && let Some(f) = pending.pop_front()
        {
            acked += usize::from(matches!(f.await, Ok(Ok(_))));
        }
        if n.is_multiple_of(1024) {
            tokio::task::yield_now().await;
        }
    }
    while let Some(f) = pending.pop_front() {
        acked += usize::from(matches!(f.await, Ok(Ok(_))));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = producer.flush(Duration::from_secs(10));
    acked as f64 / elapsed
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = args();
    let kafka = KafkaConfig {
        bootstrap_servers: a.bootstrap.clone(),
        ..KafkaConfig::default()
    };
    let topic: &'static str =
        Box::leak(format!("pingan.bench.{}", uuid::Uuid::new_v4().simple()).into_boxed_str());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &a.bootstrap)
        .create()
        .expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    admin
        .create_topics(
            [&NewTopic::new(topic, 4, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .expect("create topic");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Ingest, in-process, writing to the bench topic.
    let mut settings = IngestSettings::from_config(
        &IngestConfig::default(),
        &QrConfig::default(),
        &PiiConfig::default(),
        &kafka,
        true,
    )
    .unwrap();
    settings.calls_topic = topic;
    let publisher = KafkaPublisher::new(&kafka, settings.publish_deadline).unwrap();
    let state = AppState::new(settings, Arc::new(publisher), &prometheus::Registry::new()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(pingan_ingest::serve(listener, state, shutdown.clone()));

    // Warm-up, then the measured run.
    let warm = Arc::new(AtomicBool::new(false));
    let w = tokio::spawn(client_loop(addr, batch_body(a.batch, 999), warm.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    warm.store(true, Ordering::Relaxed);
    let _ = w.await;

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..a.clients)
        .map(|c| tokio::spawn(client_loop(addr, batch_body(a.batch, c), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut accepted, mut failed, mut lat) = (0, 0, Vec::new());
    for t in tasks {
        let (ac, f, l) = t.await.unwrap();
        accepted += ac;
        failed += f;
        lat.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    shutdown.cancel();
    let _ = server.await;
    lat.sort_unstable();
    let ingest_rate = accepted as f64 / elapsed;

    // Raw broker rate with records of the same size.
    let record_size = {
        let body = batch_body(1, 0);
        body.len() + 150 // the CallRecord adds schema, ingested_at and the phone token
    };
    let payload = vec![b'x'; record_size];
    let raw_rate = raw_produce(&kafka, topic, &payload, a.seconds).await;

    let _ = admin.delete_topics(&[topic], &opts).await;
    println!(
        "ingest benchmark: {} clients x {}-record batches, {:.1} s, broker {}",
        a.clients, a.batch, elapsed, a.bootstrap
    );
    println!(
        "  ingest: {accepted} events accepted ({} requests, {failed} non-202) = {ingest_rate:.0} events/s",
        lat.len()
    );
    println!(
        "  latency to 202: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    println!(
        "  raw rdkafka produce (same settings, {record_size}-byte records): {raw_rate:.0} records/s"
    );
    println!("  ratio ingest/raw: {:.2}", ingest_rate / raw_rate);
}
