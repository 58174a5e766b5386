//! Step 5: `/v1/counts` and `/v1/heatmap` latency over bulk history (the `query_bench` example
//! of `pingan-query`, run as a process).

use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use crate::util::{env_u64, step, suffix};

/// One query's latency from `query_bench`'s tables.
pub(crate) struct QueryCase {
    /// `before sealing` or `sealed days` (the table it came from).
    phase: &'static str,
    name: String,
    /// `[p50, p99, max]` ms and rounds, or the failure `query_bench` printed.
    result: Result<([f64; 3], u64), String>,
}

/// Reads `query_bench`'s stdout: a table per phase (`before sealing …:` when the seeded database
/// had no sealed days, then `with sealed days:`), lines `name p50 p99 max rounds` or
/// `name failed: <status>`; the closing before/after summary is skipped.
pub(crate) fn parse_query_tables(stdout: &str) -> Vec<QueryCase> {
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

/// Step 5: `query_bench` over bulk history in a database of its own.
pub(crate) async fn run(ctx: &mut crate::Ctx) -> Value {
    let query_events = env_u64("PINGAN_BENCH_QUERY_EVENTS", 2_000_000);
    let query_days = env_u64("PINGAN_BENCH_QUERY_DAYS", 365);
    let query_rounds = env_u64("PINGAN_BENCH_QUERY_ROUNDS", 20);
    let qdb = format!("pingan_bench_q_{}", suffix());
    ctx.dbs.push(qdb.clone());
    step(&format!(
        "query latency: seeding {query_events} events over {query_days} days into {qdb}, {query_rounds} rounds per query"
    ));
    let t = Instant::now();
    let qout = {
        let (qb, qdb, url) = (ctx.query_bin.clone(), qdb.clone(), ctx.ch_url.clone());
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
    let _ = std::fs::write(ctx.logs.join("query_bench.txt"), &qtext);
    let queries = parse_query_tables(&qtext);
    if !qout.status.success() || queries.is_empty() {
        eprintln!("query_bench failed ({}):\n{qtext}", qout.status);
    }
    json!({
        "events": query_events, "days": query_days, "rounds": query_rounds,
        "secs_including_seed": query_secs,
        "ok": qout.status.success(),
        "cases": queries.iter().map(|c| match &c.result {
            Ok(([p50, p99, max], rounds)) => json!({"phase": c.phase, "query": c.name, "p50_ms": p50, "p99_ms": p99, "max_ms": max, "rounds": rounds}),
            Err(e) => json!({"phase": c.phase, "query": c.name, "failed": e}),
        }).collect::<Vec<_>>(),
        "sealing": qtext.lines().find(|l| l.starts_with("sealed ")).map(str::to_owned),
    })
}
