//! `pingan simulate` and `pingan demo`: flags → [`pingan_sim`] and the service libraries.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Timelike};
use clap::{Args, ValueEnum};
use pingan_domain::area::AreaIndex;
use pingan_pipeline::metrics::StageMetrics;
use pingan_sim::target::StatsSnapshot;
use pingan_sim::{
    Generator, GeneratorSettings, HttpTarget, KafkaTarget, Ledger, Pacing, RunOptions, SendRetry,
    Spike, Target, rates,
};
use prometheus::Registry;
use tokio_util::sync::CancellationToken;

use crate::commands::block_on;
use crate::config::PinganConfig;

/// Where `pingan simulate` sends events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SimTarget {
    /// The ingest HTTP API (`--ingest-url`), like the CAD and citizens' phones.
    Http,
    /// Straight to the raw Kafka topics as the records ingest would produce.
    Kafka,
    /// Print the events with their intended labels as JSON lines (no network).
    Stdout,
}

/// Flags of `pingan simulate`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SimulateArgs {
    /// Steady events per second (ignores the daily curve for pacing).
    #[arg(long, conflicts_with_all = ["speedup", "fast"])]
    rate: Option<f64>,
    /// Simulated time runs this many times faster than real time, following the daily curve
    /// (default 1: real time, about 1,300 events a day).
    #[arg(long, conflicts_with = "fast")]
    speedup: Option<f64>,
    /// As fast as the target takes them.
    #[arg(long)]
    fast: bool,
    /// Stop after this many events.
    #[arg(long)]
    count: Option<u64>,
    /// Stop after this much wall time, e.g. 90s, 10m, 2h.
    #[arg(long, value_parser = pingan_runtime::duration::parse_duration)]
    duration: Option<std::time::Duration>,
    /// Simulated clock start (RFC 3339). Default: so that the run ends about now when its
    /// length is known, else now.
    #[arg(long)]
    start: Option<DateTime<FixedOffset>>,
    /// Seed of the generator (same seed, same events).
    #[arg(long, default_value_t = 20_191_231)]
    seed: u64,
    /// Volume multiplier of the baseline (1.0 = 2019 level, about 1,300 a day).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Where to send events.
    #[arg(long, value_enum, default_value_t = SimTarget::Http)]
    target: SimTarget,
    /// Base URL of the ingest API (default: http://<ingest.listen>).
    #[arg(long)]
    ingest_url: Option<String>,
    /// Bearer token for POST /v1/calls when the ingest requires one.
    #[arg(long, env = "PINGAN_SIM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Write this many days of history ending now, as fast as possible, straight to the raw
    /// Kafka topics (the pipeline classifies and stores them): data for query benchmarks.
    #[arg(long, value_name = "DAYS", conflicts_with_all = ["rate", "speedup", "start", "target"])]
    bulk_history: Option<u32>,
    /// Inject a spike: a preset (fraud-wave, drunk-wuzhong, tourist-qibao, burglary-series)
    /// with optional overrides (`drunk-wuzhong:count=50`), or
    /// `subtype=…,area=…,count=…,at=+2h|RFC3339|HH:MM,window=3h`. Repeatable.
    #[arg(long, value_name = "SPEC")]
    spike: Vec<String>,
    /// Write the delivery ledger (one JSON line per event and attempt) to this file.
    #[arg(long, value_name = "FILE")]
    ledger: Option<PathBuf>,
    /// Stamp events with the wall clock at send time (the simulated clock still drives the mix
    /// and the rate): live dashboards with --speedup.
    #[arg(long)]
    wall_clock: bool,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seconds between progress lines on stderr.
    #[arg(long, default_value_t = 5)]
    progress: u64,
}

/// Flags of `pingan demo`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DemoArgs {
    /// Speed-up of the simulated day: 240 gives about 4 events a second (a day in 6 minutes).
    #[arg(long, default_value_t = 240.0)]
    speedup: f64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 20_191_231)]
    seed: u64,
    /// Inject spikes, as in `pingan simulate --spike` (e.g. drunk-wuzhong:at=+1m,window=5m).
    #[arg(long, value_name = "SPEC")]
    spike: Vec<String>,
    /// Skip `migrate` (the database is known to be current).
    #[arg(long)]
    no_migrate: bool,
}

fn err_line(what: &str, msg: impl std::fmt::Display) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "pingan {what}: {msg}");
    ExitCode::FAILURE
}

fn ingest_base(config: &PinganConfig) -> String {
    format!("http://{}", config.ingest.listen)
}

/// The simulated start when none is given: ends the run about now when its length is known.
fn default_start(args: &SimulateArgs, pacing: Pacing) -> DateTime<FixedOffset> {
    let now = Generator::now();
    let per_sec = rates::mean_per_day(args.scale) / 86_400.0;
    let span_secs = match (pacing, args.duration, args.count) {
        _ if args.wall_clock => 0.0,
        (Pacing::Speedup(x), Some(d), _) => d.as_secs_f64() * x,
        (_, _, Some(n)) => n as f64 / per_sec,
        (Pacing::Rate(r), Some(d), _) => d.as_secs_f64() * r / per_sec,
        _ => 0.0,
    };
    now - chrono::Duration::seconds(span_secs as i64)
}

/// `pingan simulate`.
pub(crate) fn simulate(config: &PinganConfig, args: SimulateArgs) -> ExitCode {
    let settings = match config.key_settings() {
        Ok(s) => s,
        Err(e) => return err_line("simulate", e),
    };
    let pacing = match (
        args.rate,
        args.speedup,
        args.fast || args.bulk_history.is_some(),
    ) {
        (_, _, true) => Pacing::Fast,
        (Some(r), _, _) if r > 0.0 => Pacing::Rate(r),
        (_, Some(x), _) if x > 0.0 => Pacing::Speedup(x),
        (None, None, _) => Pacing::Speedup(1.0),
        _ => return err_line("simulate", "--rate and --speedup must be positive"),
    };
    let now = Generator::now();
    let (start, until) = match args.bulk_history {
        Some(days) => {
            let midnight = now
                .with_hour(0)
                .and_then(|t| t.with_minute(0))
                .and_then(|t| t.with_second(0))
                .unwrap_or(now);
            (
                midnight - chrono::Duration::days(i64::from(days)),
                Some(now),
            )
        }
        None => (
            args.start.unwrap_or_else(|| default_start(&args, pacing)),
            None,
        ),
    };
    let mut gen_config = GeneratorSettings::new(args.seed, start, settings.signer.clone());
    gen_config.scale = args.scale;
    for spec in &args.spike {
        match Spike::parse(spec, start) {
            Ok(s) => gen_config.spikes.push(s),
            Err(e) => return err_line("simulate", e),
        }
    }
    let mut generator = match Generator::new(gen_config) {
        Ok(g) => g,
        Err(e) => return err_line("simulate", e),
    };
    if args.target == SimTarget::Stdout && args.bulk_history.is_none() {
        return print_events(&mut generator, args.count.unwrap_or(20));
    }
    let ledger = match &args.ledger {
        Some(p) => match Ledger::to_file(p) {
            Ok(l) => l,
            Err(e) => {
                return err_line(
                    "simulate",
                    format!("cannot create the ledger {}: {e}", p.display()),
                );
            }
        },
        None => Ledger::default(),
    };
    let options = RunOptions {
        pacing,
        count: args.count,
        duration: args.duration,
        until,
        wall_clock: args.wall_clock,
        concurrency: args.concurrency.max(1),
        progress_every: Duration::from_secs(args.progress.max(1)),
    };
    let kafka_target = args.target == SimTarget::Kafka || args.bulk_history.is_some();
    let ingest_url = args
        .ingest_url
        .clone()
        .unwrap_or_else(|| ingest_base(config));
    let kafka = config.kafka.clone();
    let hasher = settings.hasher;
    block_on("simulate", async move {
        let target = if kafka_target {
            Target::Kafka(
                KafkaTarget::new(&kafka, hasher, SendRetry::default())
                    .map_err(|e| e.to_string())?,
            )
        } else {
            Target::Http(
                HttpTarget::new(&ingest_url, args.token.clone(), SendRetry::default())
                    .map_err(|e| e.to_string())?,
            )
        };
        let where_to = if kafka_target {
            format!("kafka {}", kafka.bootstrap_servers)
        } else {
            ingest_url.clone()
        };
        let _ = writeln!(
            std::io::stderr(),
            "simulate: seed {} from {} ({pacing:?}) → {where_to}{}",
            args.seed,
            start.to_rfc3339(),
            args.ledger
                .as_ref()
                .map(|p| format!(", ledger {}", p.display()))
                .unwrap_or_default()
        );
        let shutdown = pingan_runtime::shutdown::on_signals();
        let report =
            pingan_sim::run::run(&mut generator, &target, &options, &ledger, &shutdown, |p| {
                let _ = writeln!(std::io::stderr(), "simulate: {p}");
            })
            .await;
        if let Target::Kafka(k) = &target {
            let _ = k.publisher().flush(Duration::from_secs(10));
        }
        ledger.finish().map_err(|e| format!("ledger: {e}"))?;
        let _ = writeln!(
            std::io::stdout(),
            "{}",
            serde_json::to_string(&report).unwrap_or_default()
        );
        if report.stats.gave_up > 0 {
            return Err(format!(
                "{} event(s) were not acknowledged",
                report.stats.gave_up
            ));
        }
        Ok::<(), String>(())
    })
}

fn print_events(generator: &mut Generator, n: u64) -> ExitCode {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for _ in 0..n {
        let ev = generator.next_event();
        let body = match &ev.body {
            pingan_sim::Body::Call(c) => serde_json::json!({ "call": c }),
            pingan_sim::Body::Qr(q) => serde_json::json!({ "qr_scan": q }),
        };
        let line =
            serde_json::json!({ "event_time": ev.event_time, "label": ev.label, "body": body });
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}

/// `pingan demo`: migrate, then ingest + classify + aggregate + serve + the simulator in one
/// process, one registry and one shutdown token.
pub(crate) fn demo(config: &PinganConfig, args: DemoArgs) -> ExitCode {
    let mut settings = match config.ingest_settings() {
        Ok(s) => s,
        Err(e) => return err_line("demo", e),
    };
    // The simulator posts every citizen's QR report from one address; the per-client limit
    // is meant for real phones behind NAT, so lift it for the demo (the per-plate limit stays).
    settings.qr_client_rate = pingan_ingest::config::RateSettings {
        per_minute: 1_000_000,
        burst: 10_000,
    };
    let Ok(serve_listen) = config.serve.listen.parse::<std::net::SocketAddr>() else {
        return err_line(
            "demo",
            format!(
                "serve.listen {:?} is not a host:port address",
                config.serve.listen
            ),
        );
    };
    let start = Generator::now();
    let mut gen_config = GeneratorSettings::new(args.seed, start, settings.signer.clone());
    for spec in &args.spike {
        match Spike::parse(spec, start) {
            Ok(s) => gen_config.spikes.push(s),
            Err(e) => return err_line("demo", e),
        }
    }
    let mut generator = match Generator::new(gen_config) {
        Ok(g) => g,
        Err(e) => return err_line("demo", e),
    };
    let config = config.clone();
    block_on("demo", async move {
        let mut out = std::io::stdout();
        if !args.no_migrate {
            let _ = writeln!(
                out,
                "demo: migrating {} on {}",
                config.clickhouse.database, config.clickhouse.url
            );
            let report = pingan_warehouse::migrate::apply(&config.clickhouse, |_| {})
                .await
                .map_err(|e| format!("migrate: {e}"))?;
            let _ = writeln!(
                out,
                "demo: schema current (server {}, {} applied now)",
                report.server_version,
                report.applied.len()
            );
        }
        let shutdown = pingan_runtime::shutdown::on_signals();
        let registry = Registry::new();
        let stage = StageMetrics::register(&registry).map_err(|e| e.to_string())?;
        // One process: the ingest port serves the shared registry; no admin listeners.
        let mut classifier = config.classifier_settings(&registry, &stage);
        classifier.config.admin_listen = None;
        let mut aggregator = config.aggregator_settings(&registry, &stage);
        aggregator.config.admin_listen = None;
        let mut settings = settings;
        settings.registry = registry.clone();
        let ingest_listen = settings.listen;
        let plate = sample_plate();
        let qr_url = plate
            .as_deref()
            .and_then(|p| settings.signer.signed_path(p))
            .map(|p| format!("http://{ingest_listen}{p}"));
        let dev_key = settings.dev_qr_key;

        let mut services = tokio::task::JoinSet::new();
        {
            let shutdown = shutdown.clone();
            services.spawn(async move {
                (
                    "ingest",
                    pingan_ingest::run(settings, shutdown)
                        .await
                        .map_err(|e| e.to_string()),
                )
            });
        }
        {
            let shutdown = shutdown.clone();
            services.spawn(async move {
                (
                    "classify",
                    pingan_classifier::run(classifier, shutdown)
                        .await
                        .map_err(|e| e.to_string()),
                )
            });
        }
        {
            let shutdown = shutdown.clone();
            services.spawn(async move {
                (
                    "aggregate",
                    pingan_aggregator::run(aggregator, shutdown)
                        .await
                        .map_err(|e| e.to_string()),
                )
            });
        }
        {
            let (query, shutdown) = (
                pingan_query::QuerySettings::new(
                    serve_listen,
                    config.clickhouse.clone(),
                    // Tokens when configured (checked at start); none: the open dev API.
                    config.read_tokens().unwrap_or_default(),
                    true,
                ),
                shutdown.clone(),
            );
            services.spawn(async move {
                (
                    "serve",
                    pingan_query::run(query, shutdown)
                        .await
                        .map_err(|e| e.to_string()),
                )
            });
        }
        wait_listening(ingest_listen, &shutdown).await;
        let _ = writeln!(
            out,
            "demo: ingest    http://{ingest_listen}  (POST /v1/calls, /v1/qr-scans; /metrics has the shared registry)"
        );
        let _ = writeln!(out, "demo: dashboard http://{serve_listen}/");
        if let Some(url) = &qr_url {
            let key = if dev_key { " (development QR key)" } else { "" };
            let _ = writeln!(
                out,
                "demo: QR form of doorplate {}{key}: {url}",
                plate.as_deref().unwrap_or_default()
            );
        }
        let _ = writeln!(
            out,
            "demo: simulator posting to the ingest at ~{:.1} events/s (a simulated day every {:.0} min); Ctrl-C stops everything",
            rates::mean_per_day(1.0) * args.speedup / 86_400.0,
            1_440.0 / args.speedup
        );

        let sim_shutdown = shutdown.clone();
        let sim = tokio::spawn(async move {
            let target = Target::Http(
                HttpTarget::new(
                    &format!("http://{ingest_listen}"),
                    None,
                    SendRetry::default(),
                )
                .map_err(|e| e.to_string())?,
            );
            let options = RunOptions {
                pacing: Pacing::Speedup(args.speedup),
                wall_clock: true,
                progress_every: Duration::from_secs(30),
                ..RunOptions::default()
            };
            let report = pingan_sim::run::run(
                &mut generator,
                &target,
                &options,
                &Ledger::default(),
                &sim_shutdown,
                |p| {
                    tracing::info!(
                        sent = p.stats.sent,
                        acked = p.stats.acked,
                        rejected = p.stats.rejected,
                        rate = p.rate,
                        "simulator progress"
                    );
                },
            )
            .await;
            Ok::<StatsSnapshot, String>(report.stats)
        });

        // Run until Ctrl-C or until a service stops on its own (then stop the rest).
        let mut failures = Vec::new();
        tokio::select! {
            // Ctrl-C also stops the services themselves: when both are ready, it was Ctrl-C.
            biased;
            () = shutdown.cancelled() => {}
            Some(done) = services.join_next() => {
                match done {
                    Ok((_, Ok(()))) if shutdown.is_cancelled() => {}
                    Ok((name, Ok(()))) => failures.push(format!("{name} stopped unexpectedly")),
                    Ok((name, Err(e))) => failures.push(format!("{name}: {e}")),
                    Err(e) => failures.push(format!("a service panicked: {e}")),
                }
                shutdown.cancel();
            }
        }
        let _ = writeln!(out, "demo: stopping");
        match sim.await {
            Ok(Ok(stats)) => {
                let _ = writeln!(
                    out,
                    "demo: simulator sent {} events, {} acknowledged, {} rejected",
                    stats.sent, stats.acked, stats.rejected
                );
            }
            Ok(Err(e)) => failures.push(format!("simulator: {e}")),
            Err(e) => failures.push(format!("simulator panicked: {e}")),
        }
        let drained = tokio::time::timeout(Duration::from_secs(40), async {
            while let Some(done) = services.join_next().await {
                match done {
                    Ok((_, Ok(()))) => {}
                    Ok((name, Err(e))) => failures.push(format!("{name}: {e}")),
                    Err(e) => failures.push(format!("a service panicked: {e}")),
                }
            }
        })
        .await;
        if drained.is_err() {
            failures.push("services did not stop within 40 s".into());
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    })
}

/// A doorplate to show in the QR form link: one of 上海康城's room plates, stable across runs.
fn sample_plate() -> Option<String> {
    let plates = AreaIndex::builtin().doorplates();
    plates
        .get("MHQR-101-00100215")
        .or_else(|| plates.nth(0))
        .map(|p| p.plate_id.to_string())
}

/// Waits (up to 15 s) until something listens on `addr`, so the first simulated posts do not
/// race the ingest's bind.
async fn wait_listening(addr: std::net::SocketAddr, shutdown: &CancellationToken) {
    for _ in 0..150 {
        if shutdown.is_cancelled() || tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
