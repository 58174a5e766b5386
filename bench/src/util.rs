//! Helpers every step shares: settings from the environment, topics, process figures, ports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use pingan_ingest::IngestSettings;
use pingan_sim::{Generator, GeneratorSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

pub(crate) fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

pub(crate) fn step(msg: &str) {
    eprintln!("[bench {}] {msg}", Utc::now().format("%H:%M:%S"));
}

/// Creates topics (the local broker does not auto-create them), each with its `.dlq`.
pub(crate) async fn create_topics(bootstrap: &str, names: &[&str], partitions: i32) {
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

pub(crate) async fn delete_topics(bootstrap: &str, names: &[String]) {
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

pub(crate) fn suffix() -> String {
    Uuid::new_v4().simple().to_string()[..10].to_owned()
}

pub(crate) fn proc_kb(file: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub(crate) fn generator(settings: &IngestSettings, scale: f64, seed: u64) -> Generator {
    generator_since(settings, scale, seed, chrono::Duration::hours(6))
}

/// [`generator`] starting `ago` in the past: offline steps take many records at once, and
/// validation refuses event times more than 10 minutes in the future.
pub(crate) fn generator_since(
    settings: &IngestSettings,
    scale: f64,
    seed: u64,
    ago: chrono::Duration,
) -> Generator {
    let start = pingan_domain::time::to_shanghai(&(Utc::now() - ago));
    let mut cfg = GeneratorSettings::new(seed, start, settings.signer.clone());
    cfg.scale = scale;
    Generator::new(cfg).unwrap()
}

/// A bare HTTP/1.1 GET; returns the status code.
pub(crate) async fn http_get(addr: &str, path: &str) -> Option<u16> {
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

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The 1-minute load average: the services are shared, so a busy machine is recorded, not hidden.
pub(crate) fn load_avg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
