//! Command-line interface.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Needs, PinganConfig};

/// pingan — live 110-call and QR-doorplate incident pipeline for a police command center.
///
/// Calls and citizens' QR reports flow ingest (HTTP → Kafka) → classify (Chinese text → incident
/// type, location → area, routing) → aggregate (→ ClickHouse), and `serve` answers live counts and
/// draws the command-center dashboard.
///
/// Configuration: defaults work on one machine with `make up`; override with `--config FILE`
/// (TOML, see deploy/config/pingan.example.toml) or env vars `PINGAN__SECTION__KEY`, e.g.
/// `PINGAN__KAFKA__BOOTSTRAP_SERVERS=10.0.0.5:9092`.
///
/// Production by default: `ingest` and `serve` refuse to start without their secrets (pii.key,
/// qr.keys, ingest.api_tokens, serve.tokens); `--dev` (or PINGAN__DEV=true) accepts the public
/// development keys and an open API instead, with a warning. `pingan demo` is always --dev.
///
/// Exit codes: 0 ok, 1 fatal runtime error, 2 bad configuration (every problem is listed).
#[derive(Debug, Parser)]
#[command(
    name = "pingan",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    /// TOML configuration file (also: PINGAN_CONFIG).
    #[arg(long, global = true, env = "PINGAN_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Validate the configuration for the command, print it with secrets redacted, and exit
    /// (0 ok, 2 invalid).
    #[arg(long, global = true)]
    check_config: bool,

    /// Development mode (also PINGAN__DEV=true): accept the public development keys and, without
    /// serve.tokens, an open query API; logs a warning and the dashboard shows DEV. Never use it
    /// for real calls.
    #[arg(long, global = true)]
    dev: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// HTTP ingest service: POST /v1/calls (CAD feed) and /v1/qr-scans (citizens) → Kafka.
    Ingest,
    /// Classifier service: raw topics → pingan.enriched.v1 (+ DLQ); offline with --stdin;
    /// --eval to measure it on labelled texts; `train` to fit its model.
    #[command(args_conflicts_with_subcommands = true)]
    Classify {
        /// Offline mode: read calls/QR reports as JSON lines on stdin, write enriched JSON lines
        /// on stdout. No Kafka, no network. Example:
        /// echo '{"description":"有人冒充公检法让我转账"}' | pingan classify --stdin
        #[arg(long)]
        stdin: bool,
        /// Evaluate on labelled JSON-lines files or directories of them (see
        /// schemas/classifier/README.md): accuracy, macro-F1, per category and source,
        /// confusions and calibration. Example: pingan classify --eval
        /// schemas/classifier/corpus/blind
        #[arg(long, value_name = "PATH", num_args = 1.., conflicts_with = "stdin")]
        eval: Vec<PathBuf>,
        /// With --eval: also list every misclassified text. Looking at a blind set's errors
        /// makes it development data; do it on the training corpus, not the blind set.
        #[arg(long, requires = "eval")]
        show_misses: bool,
        /// With --eval or --stdin: the rules alone, without the model (for comparison).
        #[arg(long)]
        rules_only: bool,
        /// With --eval or --stdin: use this model file instead of the one built in.
        #[arg(long, value_name = "FILE", conflicts_with = "rules_only")]
        model: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<ClassifyCommand>,
    },
    /// Aggregator service: pingan.enriched.v1 → ClickHouse, live rollups, spike detection.
    Aggregate,
    /// Query API and command-center dashboard.
    Serve,
    /// Create or update the ClickHouse database and tables (idempotent).
    ///
    /// With --cluster, on every replica of a ClickHouse cluster as Replicated tables.
    Migrate(crate::commands::MigrateArgs),
    /// Create or check the Kafka topics as `[topics]` lays them out.
    ///
    /// Creates the seven pipeline topics with the partitions, replication factor and
    /// min.insync.replicas of `[topics]` (idempotent), or with --check only compares; lists
    /// every topic that differs and exits 1 if any does. Example, one development broker:
    /// PINGAN__TOPICS__REPLICATION_FACTOR=1 PINGAN__TOPICS__MIN_INSYNC_REPLICAS=1 pingan topics
    Topics(crate::commands::TopicsArgs),
    /// Realistic synthetic traffic for Minhang (seeded): to the ingest API, to Kafka, or stdout.
    Simulate(crate::demo::SimulateArgs),
    /// Everything in one process plus the simulator; prints the dashboard URL.
    Demo(crate::demo::DemoArgs),
    /// Dead letters: records a stage could not process, stored in ClickHouse by the aggregator
    /// (`dead_letters`) with their original bytes, reason and origin. List and inspect them,
    /// then, once the cause is fixed, replay them to their origin topic: they take the normal
    /// path again and are counted once (counts are distinct event ids; replays are recorded
    /// and not repeated unless --again).
    Dlq {
        #[command(subcommand)]
        command: crate::dlq::DlqCommand,
    },
    /// QR doorplate tools.
    Qr {
        #[command(subcommand)]
        command: QrCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ClassifyCommand {
    /// Train the model on the labelled corpus and write the model file (deterministic for a
    /// seed): k-fold and leave-one-writer-out cross-validation, temperature calibration, and
    /// a report. Example: pingan classify train (the defaults train the shipped model).
    Train(crate::commands::TrainArgs),
}

#[derive(Debug, Subcommand)]
enum QrCommand {
    /// Print the signed URL path a doorplate's QR code encodes: `/qr/<plate_id>?sig=<signature>`.
    Sign {
        /// Doorplate id, e.g. MHQR-101-00000001.
        plate_id: String,
    },
}

/// Exit code for a bad configuration.
const EXIT_CONFIG: u8 = 2;

/// The secrets a command needs outside development mode.
fn needs(command: &Command) -> Needs {
    match command {
        Command::Ingest => Needs::Ingest,
        Command::Serve => Needs::Serve,
        Command::Qr { .. } | Command::Simulate(_) => Needs::Keys,
        Command::Demo(_) => Needs::Demo,
        Command::Classify { .. }
        | Command::Aggregate
        | Command::Migrate(_)
        | Command::Topics(_)
        | Command::Dlq { .. } => Needs::Nothing,
    }
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    // A value of the wrong type is reported with its key and left at its default, so the
    // checks below still run and every problem is listed in one go.
    let (config, mut problems) = pingan_runtime::config::load_partial::<PinganConfig>(
        cli.config.as_deref(),
        &pingan_runtime::config::process_env(),
    );
    let Some(mut config) = config else {
        return config_error(&problems);
    };
    // `pingan demo` is a laptop demonstration: it always runs with the development keys.
    config.dev |= cli.dev || matches!(cli.command, Command::Demo(_));
    problems.extend(config.problems(needs(&cli.command)));
    if !problems.is_empty() {
        return config_error(&problems);
    }
    if cli.check_config {
        let _ = std::io::stdout().write_all(config.redacted_toml().as_bytes());
        return ExitCode::SUCCESS;
    }
    // Offline classification writes JSON to stdout: keep the log quiet unless asked.
    let quiet = matches!(
        cli.command,
        Command::Classify { stdin: true, .. } | Command::Dlq { .. }
    ) || matches!(&cli.command, Command::Classify { eval, .. } if !eval.is_empty());
    pingan_runtime::telemetry::init(
        config.log.format,
        if quiet { "warn" } else { &config.log.filter },
    );
    if config.dev && !quiet {
        tracing::warn!(
            "development mode (--dev / PINGAN__DEV=true): public development keys and an open API are accepted; never use it for real calls"
        );
    }
    match cli.command {
        Command::Ingest => ingest(&config),
        Command::Classify {
            action: Some(ClassifyCommand::Train(args)),
            ..
        } => crate::commands::classify_train(&args),
        Command::Classify {
            stdin,
            eval,
            show_misses,
            rules_only,
            model,
            action: None,
        } => crate::commands::classify(
            &config,
            &crate::commands::ClassifyArgs {
                stdin,
                eval,
                show_misses,
                rules_only,
                model,
            },
        ),
        Command::Aggregate => crate::commands::aggregate(&config),
        Command::Serve => serve(&config),
        Command::Migrate(args) => crate::commands::migrate(&config, &args),
        Command::Topics(args) => crate::commands::topics(&config, &args),
        Command::Simulate(args) => crate::demo::simulate(&config, args),
        Command::Demo(args) => crate::demo::demo(&config, args),
        Command::Dlq { command } => crate::dlq::run(&config, command),
        Command::Qr {
            command: QrCommand::Sign { plate_id },
        } => qr_sign(&config, &plate_id),
    }
}

fn config_error(problems: &[String]) -> ExitCode {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "pingan: invalid configuration:");
    for p in problems {
        let _ = writeln!(err, "  - {p}");
    }
    ExitCode::from(EXIT_CONFIG)
}

/// `pingan ingest`: serves until SIGINT/SIGTERM, then drains and flushes.
fn ingest(config: &PinganConfig) -> ExitCode {
    let settings = match config.ingest_settings() {
        Ok(s) => s,
        Err(e) => return config_error(&e.0),
    };
    crate::commands::block_on("ingest", async move {
        let shutdown = pingan_runtime::shutdown::on_signals();
        pingan_ingest::run(settings, shutdown).await
    })
}

/// `pingan qr sign <plate_id>`: prints the signed path of a doorplate in service.
fn qr_sign(config: &PinganConfig, plate_id: &str) -> ExitCode {
    let settings = match config.key_settings() {
        Ok(s) => s,
        Err(e) => return config_error(&e.0),
    };
    if pingan_domain::area::AreaIndex::builtin()
        .doorplate(plate_id)
        .is_none()
    {
        let _ = writeln!(
            std::io::stderr(),
            "pingan qr sign: unknown doorplate id {plate_id:?}: not a doorplate in service (ids look like MHQR-101-00100215)"
        );
        return ExitCode::FAILURE;
    }
    if settings.dev_qr_key {
        let _ = writeln!(
            std::io::stderr(),
            "pingan qr sign: warning: qr.keys is not set, signing with the public development key"
        );
    }
    match settings.signer.signed_path(plate_id) {
        Some(path) => {
            let _ = writeln!(std::io::stdout(), "{path}");
            ExitCode::SUCCESS
        }
        None => {
            let _ = writeln!(
                std::io::stderr(),
                "pingan qr sign: qr.current names no configured key"
            );
            ExitCode::FAILURE
        }
    }
}

/// `pingan serve`: the query API and dashboard until SIGINT/SIGTERM.
fn serve(config: &PinganConfig) -> ExitCode {
    let Ok(listen) = config.serve.listen.parse() else {
        return config_error(&[format!(
            "serve.listen {:?} is not a host:port address",
            config.serve.listen
        )]);
    };
    let tokens = match config.read_tokens() {
        Ok(t) => t,
        Err(e) => return config_error(&e),
    };
    let settings =
        pingan_query::QuerySettings::new(listen, config.clickhouse.clone(), tokens, config.dev);
    crate::commands::block_on("serve", async move {
        let shutdown = pingan_runtime::shutdown::on_signals();
        pingan_query::run(settings, shutdown).await
    })
}
