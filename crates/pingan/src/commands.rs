//! The service commands: build a runtime, wire metrics and shutdown, call the library.

use std::future::Future;
use std::io::Write;
use std::process::ExitCode;

use pingan_pipeline::metrics::StageMetrics;
use prometheus::Registry;

use crate::config::PinganConfig;

/// Runs `fut` on a multi-threaded runtime; errors are printed with their chain and exit 1.
pub(crate) fn block_on<F, E>(what: &str, fut: F) -> ExitCode
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "pingan {what}: cannot start the async runtime: {e}"
            );
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "{what} failed");
            let _ = writeln!(std::io::stderr(), "pingan {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `pingan migrate`.
pub(crate) fn migrate(config: &PinganConfig) -> ExitCode {
    let settings = config.clickhouse.clone();
    block_on("migrate", async move {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "migrating {} on {}", settings.database, settings.url);
        let report = pingan_aggregator::migrate::apply(&settings, |line| {
            let _ = writeln!(std::io::stdout(), "  {line}");
        })
        .await?;
        let _ = writeln!(
            out,
            "done: server {}, {} applied now, {} already applied{}{}",
            report.server_version,
            report.applied.len(),
            report.already_applied,
            report
                .dimension_rows
                .map(|n| format!(", {n} dimension rows loaded"))
                .unwrap_or_default(),
            if report.is_noop() {
                " (nothing to do)"
            } else {
                ""
            }
        );
        Ok::<(), pingan_aggregator::migrate::MigrateError>(())
    })
}

/// `pingan aggregate`.
pub(crate) fn aggregate(config: &PinganConfig) -> ExitCode {
    let config = config.clone();
    block_on("aggregate", async move {
        let shutdown = pingan_runtime::shutdown::on_signals();
        let registry = Registry::new();
        let stage = StageMetrics::register(&registry).map_err(|e| e.to_string())?;
        pingan_aggregator::run(
            config.aggregator,
            &config.kafka,
            &config.clickhouse,
            registry,
            stage,
            shutdown,
        )
        .await
        .map_err(|e| e.to_string())
    })
}

/// `pingan classify` (service), `--stdin` (offline) or `--eval FILE`.
pub(crate) fn classify(
    config: &PinganConfig,
    stdin: bool,
    eval: Option<&std::path::Path>,
) -> ExitCode {
    if let Some(path) = eval {
        return classify_eval(path);
    }
    if stdin {
        let mut enricher = match pingan_classifier::enrich::Enricher::builtin() {
            Ok(e) => e,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "pingan classify: {e}");
                return ExitCode::FAILURE;
            }
        };
        let stdin = std::io::stdin().lock();
        let stdout = std::io::BufWriter::new(std::io::stdout().lock());
        return match pingan_classifier::offline::run(&mut enricher, stdin, stdout) {
            Ok(s) => {
                if s.errors > 0 {
                    let _ = writeln!(
                        std::io::stderr(),
                        "pingan classify: {} line(s) classified, {} rejected",
                        s.ok,
                        s.errors
                    );
                }
                ExitCode::SUCCESS
            }
            // A closed pipe (`| head`) is not an error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "pingan classify: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = config.clone();
    block_on("classify", async move {
        let shutdown = pingan_runtime::shutdown::on_signals();
        let registry = Registry::new();
        let stage = StageMetrics::register(&registry).map_err(|e| e.to_string())?;
        pingan_classifier::run(config.classifier, &config.kafka, registry, stage, shutdown)
            .await
            .map_err(|e| e.to_string())
    })
}

fn classify_eval(path: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "pingan classify --eval: cannot read {}: {e}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let classifier = match pingan_classifier::text::TextClassifier::builtin() {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "pingan classify --eval: {e}");
            return ExitCode::FAILURE;
        }
    };
    match pingan_classifier::text::evaluate(&classifier, &text) {
        Ok(report) => {
            let _ = writeln!(std::io::stdout(), "{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "pingan classify --eval: {e}");
            ExitCode::FAILURE
        }
    }
}
