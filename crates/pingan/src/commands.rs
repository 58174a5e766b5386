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

/// Flags of `pingan migrate`.
#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    /// Create the schema on every replica of this cluster (a `remote_servers` name of the
    /// servers' configuration): statements run ON CLUSTER and tables are Replicated*MergeTree
    /// under /clickhouse/tables/{shard}/DATABASE/TABLE with the servers' {shard} and
    /// {replica} macros. Connect to any one replica. Example, the cluster of `make up-cluster`:
    /// PINGAN__CLICKHOUSE__URL=http://127.0.0.1:18121 pingan migrate --cluster pingan_cluster
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,
}

/// `pingan migrate`.
pub(crate) fn migrate(config: &PinganConfig, args: &MigrateArgs) -> ExitCode {
    use pingan_warehouse::migrate::Layout;
    let settings = config.clickhouse.clone();
    let layout = args.cluster.clone().map_or(Layout::Single, Layout::Cluster);
    block_on("migrate", async move {
        let mut out = std::io::stdout();
        let on = match &layout {
            Layout::Single => String::new(),
            Layout::Cluster(name) => format!(" (cluster {name}, replicated tables)"),
        };
        let _ = writeln!(
            out,
            "migrating {} on {}{on}",
            settings.database, settings.url
        );
        let report = pingan_warehouse::migrate::apply_to(&settings, &layout, |line| {
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
        Ok::<(), pingan_warehouse::migrate::MigrateError>(())
    })
}

/// Flags of `pingan topics`.
#[derive(Debug, clap::Args)]
pub(crate) struct TopicsArgs {
    /// Only compare the topics with `[topics]`; create and change nothing.
    #[arg(long)]
    check: bool,
    /// How long to wait for the cluster's answers.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = duration_arg)]
    timeout: std::time::Duration,
}

fn duration_arg(s: &str) -> Result<std::time::Duration, String> {
    pingan_runtime::duration::parse_duration(s).map_err(|e| e.to_string())
}

/// The topics of `design/CONTRACT.md` §4: the four streams and the dead-letter topics of the
/// three consumed ones.
fn pipeline_topics() -> Vec<String> {
    use pingan_domain::events::{TOPIC_ALERTS, TOPIC_CALLS, TOPIC_ENRICHED, TOPIC_QR};
    let mut topics: Vec<String> = [TOPIC_CALLS, TOPIC_QR, TOPIC_ENRICHED, TOPIC_ALERTS]
        .map(String::from)
        .to_vec();
    topics.extend([TOPIC_CALLS, TOPIC_QR, TOPIC_ENRICHED].map(pingan_pipeline::dlq::dlq_topic));
    topics
}

/// `pingan topics`: exit 0 when every topic matches `[topics]`, 1 when one differs or the
/// cluster cannot be reached.
pub(crate) fn topics(config: &PinganConfig, args: &TopicsArgs) -> ExitCode {
    use pingan_pipeline::topics::{TopicAction, provision};
    let names = pipeline_topics();
    let layout = config.topics.clone();
    let kafka = config.kafka.clone();
    let (check, timeout) = (args.check, args.timeout);
    let mut differ = false;
    let code = block_on("topics", async {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let reports = provision(&kafka, &layout, &refs, check, timeout).await?;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{:<24} {:>10} {:>3} {:>7}  action",
            "topic", "partitions", "rf", "min.isr"
        );
        for r in &reports {
            let action = match r.action {
                TopicAction::Created => "created",
                TopicAction::PartitionsRaised => "partitions raised",
                TopicAction::Unchanged => "ok",
                TopicAction::Missing => "MISSING",
            };
            let isr = r
                .min_insync_replicas
                .map_or_else(|| "?".to_string(), |v| v.to_string());
            let _ = writeln!(
                out,
                "{:<24} {:>10} {:>3} {:>7}  {action}",
                r.topic, r.partitions, r.replication_factor, isr
            );
            for p in &r.problems {
                differ = true;
                let _ = writeln!(out, "    differs: {p}");
            }
        }
        if layout.replication_factor < 2 {
            let _ = writeln!(
                out,
                "warning: replication factor {}: losing one broker's disk loses acknowledged records",
                layout.replication_factor
            );
        }
        Ok::<(), pingan_pipeline::topics::TopicsError>(())
    });
    if code == ExitCode::SUCCESS && differ {
        let _ = writeln!(
            std::io::stderr(),
            "pingan topics: some topics differ from [topics] (see above)"
        );
        return ExitCode::FAILURE;
    }
    code
}

/// `pingan aggregate`.
pub(crate) fn aggregate(config: &PinganConfig) -> ExitCode {
    let config = config.clone();
    block_on("aggregate", async move {
        let shutdown = pingan_runtime::shutdown::on_signals();
        let registry = Registry::new();
        let stage = StageMetrics::register(&registry).map_err(|e| e.to_string())?;
        pingan_aggregator::run(config.aggregator_settings(&registry, &stage), shutdown)
            .await
            .map_err(|e| e.to_string())
    })
}

/// Flags of `pingan classify` without a subcommand.
#[derive(Debug)]
pub(crate) struct ClassifyArgs {
    pub(crate) stdin: bool,
    pub(crate) eval: Vec<std::path::PathBuf>,
    pub(crate) show_misses: bool,
    pub(crate) rules_only: bool,
    pub(crate) model: Option<std::path::PathBuf>,
}

/// The text classifier the flags ask for: built-in, rules only, or with a model file.
fn text_classifier(args: &ClassifyArgs) -> Result<pingan_classifier::text::TextClassifier, String> {
    use pingan_classifier::text::TextClassifier;
    if args.rules_only {
        return TextClassifier::rules_only().map_err(|e| e.to_string());
    }
    match &args.model {
        None => TextClassifier::builtin().map_err(|e| e.to_string()),
        Some(path) => {
            let bytes =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let model = pingan_classifier::model::LinearModel::from_bytes(&bytes)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(TextClassifier::rules_only()
                .map_err(|e| e.to_string())?
                .with_model(model))
        }
    }
}

/// `pingan classify` (service), `--stdin` (offline) or `--eval PATH…`.
pub(crate) fn classify(config: &PinganConfig, args: &ClassifyArgs) -> ExitCode {
    if !args.eval.is_empty() {
        return classify_eval(args);
    }
    if args.stdin {
        let text = match text_classifier(args) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "pingan classify: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut enricher = match pingan_classifier::enrich::Enricher::with_text(text) {
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
        pingan_classifier::run(config.classifier_settings(&registry, &stage), shutdown)
            .await
            .map_err(|e| e.to_string())
    })
}

fn classify_eval(args: &ClassifyArgs) -> ExitCode {
    let fail = |e: &dyn std::fmt::Display| {
        let _ = writeln!(std::io::stderr(), "pingan classify --eval: {e}");
        ExitCode::FAILURE
    };
    let set = match pingan_classifier::model::TrainingSet::read(&args.eval) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let classifier = match text_classifier(args) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let report = pingan_classifier::evaluation::evaluate(&classifier, &set.cases);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "classifier {} on {} file(s), data sha256 {}",
        classifier.version(),
        set.files.len(),
        &set.sha256[..16]
    );
    if args.show_misses {
        let _ = writeln!(out, "{report}");
    } else {
        let _ = write!(out, "{}", report.summary());
        let _ = writeln!(
            out,
            "\n(--show-misses lists the misclassified texts; on a blind set that ends its blindness)"
        );
    }
    ExitCode::SUCCESS
}

/// `pingan classify train`.
#[derive(Debug, clap::Args)]
pub(crate) struct TrainArgs {
    /// Labelled JSON-lines files or directories of them.
    #[arg(long = "corpus", value_name = "PATH", num_args = 1.., default_values = ["schemas/classifier/corpus/train", "schemas/classifier/eval.jsonl"])]
    corpus: Vec<std::path::PathBuf>,
    /// Where to write the model.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "schemas/classifier/model.bin"
    )]
    out: std::path::PathBuf,
    /// Where to write the training report (cross-validation tables).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "schemas/classifier/model-report.txt"
    )]
    report: std::path::PathBuf,
    /// Seed of the example order and the folds.
    #[arg(long, default_value_t = pingan_classifier::model::TrainConfig::default().seed)]
    seed: u64,
    /// Cross-validation folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Passes over the data.
    #[arg(long, default_value_t = pingan_classifier::model::TrainConfig::default().epochs)]
    epochs: usize,
    /// L2 penalty.
    #[arg(long, default_value_t = pingan_classifier::model::TrainConfig::default().l2)]
    l2: f32,
    /// Learning rate.
    #[arg(long, default_value_t = pingan_classifier::model::TrainConfig::default().learning_rate)]
    learning_rate: f32,
    /// Longest character n-gram.
    #[arg(long, default_value_t = pingan_classifier::model::FeatureConfig::default().max_n)]
    max_n: usize,
    /// Minimum number of training texts a feature must occur in.
    #[arg(long, default_value_t = pingan_classifier::model::TrainConfig::default().min_count)]
    min_count: usize,
    /// Skip leave-one-writer-out (faster).
    #[arg(long)]
    no_writer_cv: bool,
}

pub(crate) fn classify_train(args: &TrainArgs) -> ExitCode {
    use pingan_classifier::model::{FeatureConfig, TrainConfig, TrainingSet};
    let fail = |e: &dyn std::fmt::Display| {
        let _ = writeln!(std::io::stderr(), "pingan classify train: {e}");
        ExitCode::FAILURE
    };
    let set = match TrainingSet::read(&args.corpus) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let rules = match pingan_classifier::text::TextClassifier::rules_only() {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let config = TrainConfig {
        seed: args.seed,
        epochs: args.epochs,
        learning_rate: args.learning_rate,
        l2: args.l2,
        min_count: args.min_count,
        features: FeatureConfig {
            max_n: args.max_n,
            ..FeatureConfig::default()
        },
    };
    let mut err = std::io::stderr();
    for (f, n) in &set.files {
        let _ = writeln!(err, "  {n:>5}  {}", f.display());
    }
    let started = std::time::Instant::now();
    let mut progress = |line: &str| {
        let _ = writeln!(
            std::io::stderr(),
            "[{:>6.1}s] {line}",
            started.elapsed().as_secs_f64()
        );
    };
    let trained = pingan_classifier::model::train(
        &rules,
        &set,
        &config,
        args.folds,
        !args.no_writer_cv,
        &mut progress,
    );
    let bytes = trained.model.to_bytes();
    if let Err(e) = std::fs::write(&args.out, &bytes) {
        return fail(&format!("cannot write {}: {e}", args.out.display()));
    }
    let mut report = String::new();
    report.push_str(&format!(
        "model {} ({} features, {:.1} MB, temperature {:.2})\ntraining data sha256 {} ({} examples)\nsettings {}\n\n",
        trained.model.name(),
        trained.model.header().features,
        bytes.len() as f64 / 1e6,
        trained.model.header().temperature,
        set.sha256,
        set.cases.len(),
        serde_json::to_string(&config).unwrap_or_default(),
    ));
    report.push_str(&format!(
        "== {}-fold cross-validation ==\n{}\n",
        args.folds,
        trained.cross_validation.summary()
    ));
    if let Some(w) = &trained.by_writer {
        report.push_str(&format!("== leave one writer out ==\n{}\n", w.summary()));
    }
    report.push_str(&format!(
        "== rules alone on the training texts ==\n{}\n",
        trained.rules_only.summary()
    ));
    if let Err(e) = std::fs::write(&args.report, &report) {
        return fail(&format!("cannot write {}: {e}", args.report.display()));
    }
    let _ = writeln!(
        std::io::stdout(),
        "{report}wrote {} and {}",
        args.out.display(),
        args.report.display()
    );
    ExitCode::SUCCESS
}
