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
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "pingan {what}: cannot start the async runtime: {e}");
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
            report.dimension_rows.map(|n| format!(", {n} dimension rows loaded")).unwrap_or_default(),
            if report.is_noop() { " (nothing to do)" } else { "" }
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
        pingan_aggregator::run(config.aggregator, &config.kafka, &config.clickhouse, registry, stage, shutdown)
            .await
            .map_err(|e| e.to_string())
    })
}
