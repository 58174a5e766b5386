//! Step 6: the machine, the versions, and how busy the shared services were.

use std::path::Path;

use serde_json::{Value, json};

use crate::util::{load_avg, proc_kb};

/// Queries other clients are running on the shared ClickHouse (they compete with the bench).
pub(crate) async fn other_queries(root: &clickhouse::Client) -> Vec<String> {
    root.query("SELECT concat(toString(round(elapsed)), ' s: ', substring(query, 1, 60)) FROM system.processes WHERE query NOT LIKE '%system.processes%'")
        .fetch_all::<String>()
        .await
        .unwrap_or_default()
}

/// The broker's version from the jar `make up` runs (`kafka_<scala>-<version>.jar`).
pub(crate) fn kafka_broker_version() -> String {
    let libs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/kafka/libs");
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

/// How busy the shared machine was when the run started.
pub(crate) struct Load {
    load_avg: Option<f64>,
    other_queries: Vec<String>,
}

impl Load {
    pub(crate) async fn now(root: &clickhouse::Client) -> Load {
        Load {
            load_avg: load_avg(),
            other_queries: other_queries(root).await,
        }
    }
}

/// Step 6: the machine and the versions, with the load at the start and the end.
pub(crate) async fn describe(ctx: &crate::Ctx, start: Load) -> Value {
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
    let ch_version: String = ctx
        .root
        .query("SELECT version()")
        .fetch_one()
        .await
        .unwrap_or_default();
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    json!({ "cores": cores, "mem_total_mb": mem_kb.map(|k| k / 1024), "cpu": cpu,
            "clickhouse": ch_version, "kafka": kafka_broker_version(), "librdkafka_client": librdkafka,
            "load_avg_1m_start": start.load_avg, "load_avg_1m_end": load_avg(),
            "other_clickhouse_queries_at_start": start.other_queries })
}
