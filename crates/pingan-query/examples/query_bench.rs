//! Latency benchmark of `/v1/counts` and `/v1/heatmap` over N synthetic events, and the seeder
//! the dashboard's browser test uses.
//!
//! ```text
//! cargo run --release -p pingan-query --example query_bench -- --events 50000000 --days 730 --db pingan_bench
//! cargo run -p pingan-query --example query_bench -- --seed-only --events 30000 --days 35 --db pingan_browser
//! ```
//!
//! Rows are generated inside ClickHouse with `INSERT … SELECT … FROM numbers(N)` (in chunks),
//! picking places from a pool of points around Minhang's compounds (H3 cells computed here with
//! `h3o`, since ClickHouse 18.16 has no H3 functions), subtypes from a weighted pool and hours
//! from a daily profile; the materialized views fill the rollups as in production. The database
//! is created with the schema files when it does not exist. Requests go through the real router
//! in process (handler + ClickHouse, no TCP), sequentially, after one warm-up round.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use pingan_domain::area::AreaIndex;
use pingan_domain::taxonomy::Taxonomy;
use pingan_query::metrics::QueryMetrics;
use pingan_query::store::clickhouse::ClickHouseStore;
use pingan_query::{AppState, router};
use pingan_runtime::config::ClickHouseConfig;
use tower::ServiceExt;

struct Args {
    events: u64,
    days: u64,
    db: String,
    url: String,
    seed_only: bool,
    keep: bool,
    rounds: usize,
    max_memory: String,
}

fn args() -> Args {
    let mut a = Args {
        events: 1_000_000,
        days: 365,
        db: "pingan_bench".into(),
        url: std::env::var("PINGAN__CLICKHOUSE__URL")
            .unwrap_or_else(|_| "http://127.0.0.1:8123".into()),
        seed_only: false,
        keep: true,
        rounds: 50,
        max_memory: "8000000000".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().expect("flag value");
        match k.as_str() {
            "--events" => a.events = v().parse().expect("--events N"),
            "--days" => a.days = v().parse().expect("--days N"),
            "--db" => a.db = v(),
            "--url" => a.url = v(),
            "--rounds" => a.rounds = v().parse().expect("--rounds N"),
            "--max-memory" => a.max_memory = v(),
            "--seed-only" => a.seed_only = true,
            "--drop" => a.keep = false,
            other => panic!("unknown flag {other}; see the example's doc comment"),
        }
    }
    a
}

/// Applies the schema files (idempotent `IF NOT EXISTS`).
async fn schema(url: &str, db: &str) {
    let root = clickhouse::Client::default()
        .with_url(url)
        .with_validation(false);
    root.query(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
        .execute()
        .await
        .unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/clickhouse");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap().replace("{db}", db);
        let body: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        for stmt in body.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            root.query(stmt)
                .execute()
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        }
    }
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `[(town, station, compound, lat, lon, h3, h3_r8, h3_r7)]` around compounds.
fn points(n: usize) -> Vec<String> {
    let areas = AreaIndex::builtin();
    let compounds = areas.compounds();
    (0..n)
        .map(|i| {
            let c = &compounds[(i * 7919) % compounds.len()];
            // Deterministic jitter within ~the compound's radius.
            let a = (i as f64 * 2.399_963).sin();
            let b = (i as f64 * 1.618_034).cos();
            let lat = c.lat + a * c.radius_m / 111_000.0;
            let lon = c.lon + b * c.radius_m / 95_000.0;
            let h3 = AreaIndex::h3_res9(lat, lon).unwrap();
            let cell: h3o::CellIndex = h3.parse().unwrap();
            let r8 = cell.parent(h3o::Resolution::Eight).unwrap().to_string();
            let r7 = cell.parent(h3o::Resolution::Seven).unwrap().to_string();
            format!(
                "({}, {}, {}, {lat:.6}, {lon:.6}, {}, {}, {})",
                sql_str(&c.town_code),
                sql_str(&c.station_code),
                sql_str(&c.id),
                sql_str(&h3),
                sql_str(&r8),
                sql_str(&r7)
            )
        })
        .collect()
}

/// Weighted `(subtype, category, department)` pool: about half disputes, as in Minhang 2019.
fn subtypes() -> Vec<String> {
    let weight = |cat: &str| match cat {
        "DSP" => 40,
        "TRF" => 14,
        "HELP" => 9,
        "OTH" => 8,
        "PUB" => 7,
        "CRIM" => 7,
        "FRAUD" => 6,
        "HAZ" => 4,
        "RPT" => 3,
        _ => 2,
    };
    let tax = Taxonomy::builtin();
    let mut out = Vec::new();
    for s in tax.subtypes() {
        let n_in_cat = tax.subtypes_of(&s.category).count().max(1);
        let copies = (weight(&s.category) * 20 / n_in_cat).max(1);
        let dept = match s.category.as_str() {
            "DSP" => "MEDIATION",
            "TRF" => "TRAFFIC",
            "FRAUD" => "ANTIFRAUD",
            "HAZ" => "FIRE",
            _ => "POLICE",
        };
        for _ in 0..copies {
            out.push(format!(
                "({}, {}, {})",
                sql_str(&s.code),
                sql_str(&s.category),
                sql_str(dept)
            ));
        }
    }
    out
}

/// Hour-of-day profile (peak 15–16 h, quiet 3–6 h), as an array of hours.
fn hours() -> String {
    let w = [
        4, 3, 2, 1, 1, 1, 2, 4, 6, 6, 6, 6, 6, 6, 7, 8, 8, 7, 6, 6, 6, 6, 5, 5,
    ];
    let mut v = Vec::new();
    for (h, n) in w.iter().enumerate() {
        for _ in 0..*n {
            v.push(h.to_string());
        }
    }
    format!("[{}]", v.join(","))
}

const KEYWORDS: &str = "[['纠纷','吵架'],['噪音','邻居'],['醉酒','喝多了'],['转账','冒充'],['拥堵','堵车'],['盗窃','电瓶车'],['求助','走失'],['漏水','停电']]";

async fn seed(url: &str, db: &str, events: u64, days: u64) {
    let c = clickhouse::Client::default()
        .with_url(url)
        .with_database(db)
        .with_validation(false)
        .with_setting("max_query_size", "10000000")
        .with_setting("max_execution_time", "3600")
        .with_setting("max_memory_usage", "8000000000");
    let pts = points(3000);
    let sts = subtypes();
    let now = chrono::Utc::now().timestamp();
    let start_day = now - (now + 8 * 3600).rem_euclid(86_400) - (days as i64 - 1) * 86_400;
    let chunk = 5_000_000u64;
    let mut done = 0u64;
    let t0 = Instant::now();
    while done < events {
        let n = chunk.min(events - done);
        let sql = format!(
            "INSERT INTO incidents (event_id, source, event_time, category, subtype, department, district_code, town_code, station_code, \
             compound_id, lat, lon, h3, h3_r8, h3_r7, keywords, description) \
             WITH [{pts}] AS pts, [{sts}] AS sts, [{hrs}] AS hrs, {kws} AS kws \
             SELECT generateUUIDv4(), if(h % 5 = 0, 'qr', 'call'), \
                    toDateTime(if(({start_day} + (intDiv(h, 13) % {days}) * 86400 + arrayElement(hrs, 1 + intDiv(h, 17) % length(hrs)) * 3600 + intDiv(h, 19) % 3600 AS t) > {now}, toUInt32(t - {days} * 86400), toUInt32(t))), \
                    arrayElement(sts, 1 + intDiv(h, 7) % {ns}).2, arrayElement(sts, 1 + intDiv(h, 7) % {ns}).1, arrayElement(sts, 1 + intDiv(h, 7) % {ns}).3, '310112', \
                    arrayElement(pts, 1 + h % {np}).1, arrayElement(pts, 1 + h % {np}).2, arrayElement(pts, 1 + h % {np}).3, \
                    arrayElement(pts, 1 + h % {np}).4, arrayElement(pts, 1 + h % {np}).5, arrayElement(pts, 1 + h % {np}).6, \
                    arrayElement(pts, 1 + h % {np}).7, arrayElement(pts, 1 + h % {np}).8, \
                    arrayElement(kws, 1 + intDiv(h, 11) % 8), concat('模拟警情 ', arrayElement(sts, 1 + intDiv(h, 7) % {ns}).1) \
             FROM (SELECT cityHash64(number + {done}) AS h FROM numbers({n}))",
            np = pts.len(),
            ns = sts.len(),
            kws = KEYWORDS,
            pts = pts.join(","),
            sts = sts.join(","),
            hrs = hours().trim_start_matches('[').trim_end_matches(']'),
        );
        c.query(&sql)
            .execute()
            .await
            .unwrap_or_else(|e| panic!("seed insert: {e}"));
        done += n;
        eprintln!(
            "seeded {done}/{events} events ({:.0}s)",
            t0.elapsed().as_secs_f64()
        );
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Stop repeating a query after this many seconds (slow ones still get at least 3 rounds).
const BUDGET_S: f64 = 20.0;

/// Runs every case, prints p50/p99/max and returns the p50s (ms).
async fn run_cases(app: &axum::Router, cases: &[(&str, String)], rounds: usize) -> Vec<f64> {
    println!(
        "{:<48} {:>9} {:>9} {:>9} {:>6}",
        "query", "p50 ms", "p99 ms", "max ms", "rounds"
    );
    let mut p50s = Vec::new();
    for (name, uri) in cases {
        let mut times = Vec::new();
        let mut failed = None;
        let started = Instant::now();
        for i in 0..=rounds {
            let t0 = Instant::now();
            let resp = app
                .clone()
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = resp.status();
            let _ = axum::body::to_bytes(resp.into_body(), 512 << 20)
                .await
                .unwrap();
            if !status.is_success() {
                // Without sealed days a year of exact distinct counts can exceed the server's
                // max_execution_time on a busy machine: report it instead of a latency.
                failed = Some(status);
                break;
            }
            if i > 0 {
                times.push(t0.elapsed());
            }
            if i >= 3 && started.elapsed().as_secs_f64() > BUDGET_S {
                break;
            }
        }
        if let Some(status) = failed {
            println!("{name:<48} {:>30}", format!("failed: {status}"));
            p50s.push(f64::NAN);
            continue;
        }
        times.sort();
        println!(
            "{name:<48} {:>9.1} {:>9.1} {:>9.1} {:>6}",
            pct(&times, 0.5),
            pct(&times, 0.99),
            pct(&times, 1.0),
            times.len()
        );
        let _ = std::io::Write::flush(&mut std::io::stdout());
        p50s.push(pct(&times, 0.5));
    }
    p50s
}

#[tokio::main]
async fn main() {
    let a = args();
    schema(&a.url, &a.db).await;
    let settings = ClickHouseConfig {
        url: a.url.clone(),
        database: a.db.clone(),
        ..Default::default()
    };
    let existing: u64 = pingan_warehouse::client(&settings, pingan_warehouse::Role::Reader)
        .query("SELECT count() FROM incidents")
        .fetch_one()
        .await
        .unwrap();
    if existing < a.events {
        seed(&a.url, &a.db, a.events - existing, a.days).await;
    }
    if a.seed_only {
        return;
    }
    let rows: u64 = pingan_warehouse::client(&settings, pingan_warehouse::Role::Reader)
        .query("SELECT count() FROM incidents")
        .fetch_one()
        .await
        .unwrap();
    let metrics = QueryMetrics::unregistered().unwrap();
    // Exact distinct counts over a year of 25 M events need more than the local server's
    // default 1 GiB per query; `--max-memory` sets the limit the benchmark runs with.
    let bench_client = pingan_warehouse::client(&settings, pingan_warehouse::Role::Reader)
        .with_setting("max_memory_usage", a.max_memory.clone());
    let store = ClickHouseStore::from_client(bench_client, metrics.clone());
    let app = router(AppState::new(Arc::new(store), metrics));
    let now = chrono::Utc::now().timestamp();
    let hour = now - now % 3600 + 3600;
    let iso = |t: i64| {
        pingan_query::api::rfc3339(chrono::DateTime::from_timestamp(t, 0).unwrap())
            .replace('+', "%2B")
    };
    let year = iso(hour - 365 * 86_400);
    let month = iso(hour - 30 * 86_400);
    let day = iso(hour - 86_400);
    let to = iso(hour);
    let cases = [
        (
            "counts: 24 h, by category, minute rollup",
            "/v1/counts?by=category".to_owned(),
        ),
        (
            "counts: 1 year, day × town",
            format!("/v1/counts?from={year}&to={to}&bucket=day&by=town"),
        ),
        (
            "counts: 1 year, month × category, night 21-3",
            format!("/v1/counts?from={year}&to={to}&bucket=month&by=category&hours=21-3"),
        ),
        (
            "counts: 1 year, month × subtype, one town",
            format!("/v1/counts?from={year}&to={to}&bucket=month&by=subtype&town=310112102"),
        ),
        (
            "counts: 30 days, hour, FRAUD in one town",
            format!("/v1/counts?from={month}&to={to}&bucket=hour&category=FRAUD&town=310112102"),
        ),
        (
            "heatmap: 24 h, res 9",
            format!("/v1/heatmap?from={day}&to={to}&res=9"),
        ),
        (
            "heatmap: 30 days, res 8, night",
            format!("/v1/heatmap?from={month}&to={to}&res=8&hours=21-3"),
        ),
        (
            "heatmap: 1 year, res 8",
            format!("/v1/heatmap?from={year}&to={to}&res=8"),
        ),
        (
            "heatmap: 1 year, res 7, DSP",
            format!("/v1/heatmap?from={year}&to={to}&res=7&category=DSP"),
        ),
    ];
    let sealed: u64 = pingan_warehouse::client(&settings, pingan_warehouse::Role::Reader)
        .query("SELECT count() FROM day_seals")
        .fetch_one()
        .await
        .unwrap();
    println!(
        "{rows} events in {}, up to {} rounds or {BUDGET_S} s per query (after one warm-up)",
        a.db, a.rounds
    );
    let mut before = Vec::new();
    if sealed == 0 {
        println!("\nbefore sealing (every count merges uniqExact states from the rollups):");
        before = run_cases(&app, &cases, a.rounds).await;
        let t0 = Instant::now();
        let report = pingan_warehouse::sealed::seal_pass(
            &pingan_warehouse::client(&settings, pingan_warehouse::Role::Writer),
            std::time::Duration::ZERO,
            |p| {
                if p.done % 50 == 0 || p.done == p.of {
                    eprintln!(
                        "  sealed {}/{} days (through {}, {:.0} s)",
                        p.done,
                        p.of,
                        p.day,
                        t0.elapsed().as_secs_f64()
                    );
                }
            },
        )
        .await
        .unwrap();
        println!(
            "\nsealed {} days in {:.1} s ({:.0} ms per day)",
            report.sealed.len(),
            t0.elapsed().as_secs_f64(),
            t0.elapsed().as_secs_f64() * 1000.0 / report.sealed.len().max(1) as f64
        );
    }
    println!("\nwith sealed days:");
    let after = run_cases(&app, &cases, a.rounds).await;
    if !before.is_empty() {
        println!(
            "\n{:<48} {:>12} {:>12} {:>8}",
            "query", "p50 before", "p50 sealed", "speed-up"
        );
        for ((name, _), (b, s)) in cases.iter().zip(before.iter().zip(&after)) {
            if b.is_nan() {
                println!("{name:<48} {:>12} {s:>12.1} {:>8}", "failed", "–");
            } else {
                println!("{name:<48} {b:>12.1} {s:>12.1} {:>7.1}×", b / s.max(0.001));
            }
        }
    }
    if !a.keep {
        let root = clickhouse::Client::default()
            .with_url(&a.url)
            .with_validation(false);
        root.query(&format!("DROP DATABASE IF EXISTS {}", a.db))
            .execute()
            .await
            .unwrap();
    }
}
