//! The classifier: raw calls and QR reports → classified, located, routed events.
//!
//! `pingan classify` consumes `pingan.call110.v1` and `pingan.qrscan.v1` and produces
//! `pingan.enriched.v1` (keyed by town), sending records it cannot decode to `<topic>.dlq`.
//! Offsets are stored only after the enriched records are acknowledged by Kafka. The output is
//! at-least-once and deterministic per `event_id`, so a replay produces identical records that
//! the aggregator's distinct counting absorbs.
//!
//! # Layout
//! * [`text`]: Chinese text → subtype: the rules (lexicon, Aho-Corasick, precedence, negation,
//!   priors), keywords, and the decision with the model.
//! * [`model`]: the linear model over n-grams and rule evidence (features, file, training).
//! * [`evaluation`]: labelled texts and the accuracy/calibration report.
//! * [`locate`]: doorplate / coordinates / names / hints → area hierarchy + H3.
//! * [`repeat`]: repeat-call linking.
//! * [`enrich`]: one raw record → one `EnrichedEvent`.
//! * [`stage`]: the pipeline transform; [`offline`]: `--stdin` mode; [`metrics`].
#![deny(missing_docs)]

pub mod enrich;
pub mod evaluation;
pub mod locate;
pub mod metrics;
pub mod model;
pub mod offline;
pub mod repeat;
pub mod stage;
pub mod text;

use std::time::Duration;

use pingan_domain::events::{EnrichedEvent, TOPIC_CALLS, TOPIC_ENRICHED, TOPIC_QR};
use pingan_pipeline::builder::{StageBuilder, StageRunError};
use pingan_pipeline::client::KafkaConfig;
use pingan_pipeline::dlq::DeadLetters;
use pingan_pipeline::metrics::StageMetrics;
use pingan_pipeline::producer::{Publisher, TypedKafkaSink};
use pingan_pipeline::source::SourceSettings;
use pingan_runtime::admin::{self, Readiness};
use prometheus::Registry;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::info;

/// `[classifier]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierConfig {
    /// Raw topics to consume.
    pub topics: Vec<String>,
    /// Output topic.
    pub output_topic: String,
    /// Consumer group.
    pub group_id: String,
    /// Cut a batch at this many records (per partition) …
    pub batch_max_events: usize,
    /// … or when its oldest record is this old (ms).
    pub batch_max_age_ms: u64,
    /// `host:port` for /healthz, /readyz and /metrics; empty disables (e.g. inside `pingan demo`).
    pub admin_listen: Option<String>,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            topics: vec![TOPIC_CALLS.into(), TOPIC_QR.into()],
            output_topic: TOPIC_ENRICHED.into(),
            group_id: "pingan-classifier".into(),
            batch_max_events: 5_000,
            batch_max_age_ms: 50,
            admin_listen: Some("127.0.0.1:8081".into()),
        }
    }
}

impl ClassifierConfig {
    /// Every problem with these settings.
    pub fn validate(&self, errors: &mut Vec<String>) {
        if self.topics.is_empty() {
            errors.push("classifier.topics is empty".into());
        }
        if self.batch_max_events == 0 || self.batch_max_age_ms == 0 {
            errors.push("classifier.batch_max_events and batch_max_age_ms must be > 0".into());
        }
        if let Some(a) = &self.admin_listen
            && !a.is_empty()
            && a.parse::<std::net::SocketAddr>().is_err()
        {
            errors.push(format!(
                "classifier.admin_listen {a:?} is not a host:port address"
            ));
        }
    }
}

/// Why the classifier stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    /// Setup failed.
    #[error("setup: {0}")]
    Setup(String),
    /// The stage failed.
    #[error(transparent)]
    Stage(#[from] StageRunError),
}

/// What the classifier runs with: its section, the Kafka connection and where its metrics go.
#[derive(Debug, Clone)]
pub struct ClassifierSettings {
    /// `[classifier]`.
    pub config: ClassifierConfig,
    /// `[kafka]`.
    pub kafka: KafkaConfig,
    /// Receives the `pingan_classifier_*` metrics.
    pub registry: Registry,
    /// The standard stage metrics, registered once per registry.
    pub stage_metrics: StageMetrics,
}

/// Runs the classifier service until `shutdown`.
pub async fn run(
    settings: ClassifierSettings,
    shutdown: CancellationToken,
) -> Result<(), ClassifierError> {
    let ClassifierSettings {
        config,
        kafka,
        registry,
        stage_metrics,
    } = settings;
    let setup = |e: &dyn std::fmt::Display| ClassifierError::Setup(e.to_string());
    let enricher = enrich::Enricher::builtin().map_err(|e| setup(&e))?;
    let metrics = metrics::ClassifierMetrics::register(&registry).map_err(|e| setup(&e))?;
    let publisher =
        Publisher::new(&kafka, "classifier", Duration::from_secs(30)).map_err(|e| setup(&e))?;
    let p = publisher.clone();
    let readiness = Readiness::default().with("kafka", move || {
        let p = p.clone();
        Box::pin(async move { p.probe(Duration::from_secs(2)).await })
    });
    let admin_task = admin::spawn_admin(
        config.admin_listen.as_deref(),
        registry.clone(),
        readiness,
        shutdown.clone(),
    )
    .map_err(|e| setup(&format!("classifier.admin_listen: {e}")))?;
    info!(topics = ?config.topics, output = %config.output_topic, version = %enricher.text().version(), "classifier starting");
    let source = SourceSettings {
        stage: "classifier",
        topics: config.topics.clone(),
        group_id: config.group_id.clone(),
        max_events: config.batch_max_events,
        max_bytes: 8 << 20,
        max_age: Duration::from_millis(config.batch_max_age_ms),
        pace: None,
        max_ready: 4,
        drain_timeout: Duration::from_secs(10),
    };
    let result = StageBuilder::new(
        source,
        stage::ClassifyStage::new(enricher, metrics),
        TypedKafkaSink::<EnrichedEvent>::new(publisher.clone(), config.output_topic.clone()),
        stage_metrics,
    )
    .dead_letters(DeadLetters::new(publisher.clone(), "classifier"))
    .run(&kafka, shutdown)
    .await;
    let _ = publisher.flush(Duration::from_secs(5));
    if let Some(t) = admin_task {
        let _ = t.await;
    }
    result.map_err(ClassifierError::from)
}
