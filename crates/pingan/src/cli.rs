//! Command-line interface.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::PinganConfig;

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
/// Exit codes: 0 ok, 1 fatal runtime error, 2 bad configuration (every problem is listed).
#[derive(Debug, Parser)]
#[command(name = "pingan", version, propagate_version = true, max_term_width = 100)]
pub(crate) struct Cli {
    /// TOML configuration file (also: PINGAN_CONFIG).
    #[arg(long, global = true, env = "PINGAN_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Validate the configuration, print it with secrets redacted, and exit (0 ok, 2 invalid).
    #[arg(long, global = true)]
    check_config: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// HTTP ingest service: POST /v1/calls (CAD feed) and /v1/qr-scans (citizens) → Kafka.
    Ingest,
    /// Classifier service: raw topics → pingan.enriched.v1 (+ DLQ); or offline with --stdin.
    Classify {
        /// Offline mode: read calls/QR reports as JSON lines on stdin, write enriched JSON lines
        /// on stdout. No Kafka, no network.
        #[arg(long)]
        stdin: bool,
    },
    /// Aggregator service: pingan.enriched.v1 → ClickHouse, live rollups, spike detection.
    Aggregate,
    /// Query API and command-center dashboard.
    Serve,
    /// Create or update the ClickHouse database and tables (idempotent).
    Migrate,
    /// Realistic synthetic traffic for Minhang (seeded).
    Simulate,
    /// Everything in one process plus the simulator; prints the dashboard URL.
    Demo,
    /// QR doorplate tools.
    Qr {
        #[command(subcommand)]
        command: QrCommand,
    },
}

#[derive(Debug, Subcommand)]
enum QrCommand {
    /// Print the signed URL path a doorplate's QR code encodes: /qr/<plate_id>?sig=<signature>.
    Sign {
        /// Doorplate id, e.g. MHQR-101-00000001.
        plate_id: String,
    },
}

/// Exit code for a bad configuration.
const EXIT_CONFIG: u8 = 2;

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let config: PinganConfig = match pingan_runtime::config::load(cli.config.as_deref(), &pingan_runtime::config::process_env()) {
        Ok(c) => c,
        Err(e) => return config_error(&e.0),
    };
    let problems = config.problems();
    if !problems.is_empty() {
        return config_error(&problems);
    }
    if cli.check_config {
        let text = toml::to_string_pretty(&config).unwrap_or_else(|e| format!("# cannot render: {e}\n"));
        let _ = std::io::stdout().write_all(text.as_bytes());
        return ExitCode::SUCCESS;
    }
    pingan_runtime::telemetry::init(config.log.format, &config.log.filter);
    match cli.command {
        Command::Ingest => not_yet("ingest", 3),
        Command::Classify { stdin: _ } => not_yet("classify", 4),
        Command::Aggregate => crate::commands::aggregate(&config),
        Command::Serve => not_yet("serve", 6),
        Command::Migrate => crate::commands::migrate(&config),
        Command::Simulate => not_yet("simulate", 8),
        Command::Demo => not_yet("demo", 8),
        Command::Qr { command: QrCommand::Sign { plate_id: _ } } => not_yet("qr sign", 3),
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

fn not_yet(what: &str, issue: u32) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "pingan {what}: not implemented yet (tracked in issue #{issue})");
    ExitCode::FAILURE
}
