//! The aggregator: `pingan.enriched.v1` → ClickHouse, exactly once in every count it serves.
//!
//! # Delivery semantics
//! * Each batch is one Kafka partition's contiguous offset range and becomes **one** INSERT (one
//!   block, one ClickHouse partition per month — batches are split at month boundaries) with a
//!   deterministic `query_id` derived from the batch id; on servers that support it the batch id is
//!   also the `insert_deduplication_token`.
//! * Rows carry `kafka_topic/partition/offset`. On partition assignment the source resumes from
//!   `max(kafka_offset) + 1` read from ClickHouse ([`sink::ClickHouseSink`] implements
//!   `ResumePosition`), so a crash between the insert and the offset commit re-inserts nothing.
//! * An ambiguous failure (timeout, connection reset after the body was sent) is resolved by
//!   waiting until the `query_id` is no longer running and counting the batch's offsets in
//!   ClickHouse: all there → success; none → retry with the same bytes.
//! * Rollups are materialized views holding `uniqExact` states of `event_id`, so upstream
//!   duplicates (the same event re-sent by a client) never count twice.
//!
//! # Layout
//! * [`config`]: `[aggregator]` settings.
//! * The schema, migrations, row types and SQL are `pingan-warehouse`'s.
//! * [`transform`]: enriched event → row (pure).
//! * [`sink`]: the idempotent ClickHouse sink.
//! * [`maintenance`]: sealing closed days into plain daily counts; retention.
//! * [`alerting`]: spike detection on stored events (alerts to ClickHouse, Kafka, webhook).
//! * [`metrics`]: the `pingan_aggregator_*` metrics.
#![deny(missing_docs)]

pub mod alerting;
pub mod config;
pub mod maintenance;
pub mod metrics;
pub mod sink;
pub mod transform;

use std::sync::Arc;
use std::time::Duration;

use pingan_pipeline::client::KafkaSettings;
use pingan_pipeline::dlq::DeadLetters;
use pingan_pipeline::metrics::StageMetrics;
use pingan_pipeline::producer::Publisher;
use pingan_pipeline::runner::{self, RetryPolicy, Stage};
use pingan_pipeline::source::{KafkaSource, SourceConfig};
use pingan_runtime::admin::{self, Readiness};
use pingan_runtime::config::ClickHouseSettings;
use prometheus::Registry;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error_span, info};

pub use config::AggregatorConfig;

/// Why the aggregator stopped.
#[derive(Debug, thiserror::Error)]
pub enum AggregatorError {
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// Kafka consumer or producer.
    #[error("kafka: {0}")]
    Kafka(String),
    /// The stage failed.
    #[error(transparent)]
    Stage(#[from] runner::RunnerError),
    /// The admin server failed.
    #[error("admin server: {0}")]
    Admin(#[from] std::io::Error),
}

/// Runs the aggregator until `shutdown`; `registry` receives its metrics.
pub async fn run(
    config: AggregatorConfig,
    kafka: &KafkaSettings,
    clickhouse: &ClickHouseSettings,
    registry: Registry,
    stage_metrics: StageMetrics,
    shutdown: CancellationToken,
) -> Result<(), AggregatorError> {
    let mut sink = sink::ClickHouseSink::new(
        clickhouse,
        &config,
        metrics::AggregatorMetrics::register(&registry)
            .map_err(|e| AggregatorError::Config(e.to_string()))?,
    )
    .await;
    let resume: Arc<dyn pingan_pipeline::stage::ResumePosition> = Arc::new(sink.position());
    let source = KafkaSource::new(
        kafka,
        SourceConfig {
            stage: "aggregator",
            topics: vec![config.topic.clone()],
            group_id: config.group_id.clone(),
            max_events: config.batch_max_events,
            max_bytes: config.batch_max_bytes,
            max_age: config.batch_max_age(),
            pace: config.pace(),
            max_ready: 4,
            drain_timeout: Duration::from_secs(10),
        },
        resume,
        stage_metrics.clone(),
    )
    .map_err(|e| AggregatorError::Kafka(e.to_string()))?;
    let publisher = Publisher::new(kafka, "aggregator", Duration::from_secs(30))
        .map_err(|e| AggregatorError::Kafka(e.to_string()))?;
    let alert_task = if config.alerts.enabled {
        let alert_metrics = alerting::AlertMetrics::register(&registry)
            .map_err(|e| AggregatorError::Config(e.to_string()))?;
        let (feed, rx) = alerting::DetectFeed::new(config.alerts.queue_events);
        sink.forward_stored_to(feed.clone());
        Some(tokio::spawn(alerting::run(
            config.alerts.clone(),
            sink.probe_client(),
            publisher.clone(),
            alert_metrics,
            feed,
            rx,
            shutdown.clone(),
        )))
    } else {
        None
    };
    let maintenance_task = if config.maintenance.enabled {
        let m = maintenance::MaintenanceMetrics::register(&registry)
            .map_err(|e| AggregatorError::Config(e.to_string()))?;
        Some(tokio::spawn(maintenance::run(
            config.maintenance.clone(),
            sink.probe_client(),
            m,
            shutdown.clone(),
        )))
    } else {
        None
    };
    let readiness = {
        let p = publisher.clone();
        let ch = sink.probe_client();
        Readiness::default()
            .with("kafka", move || {
                let p = p.clone();
                Box::pin(async move { p.probe(Duration::from_secs(2)).await })
            })
            .with("clickhouse", move || {
                let ch = ch.clone();
                Box::pin(async move {
                    ch.query("SELECT 1")
                        .execute()
                        .await
                        .map_err(|e| e.to_string())
                })
            })
    };
    let admin_task = match config.admin_listen.as_deref() {
        Some(addr) if !addr.is_empty() => {
            let addr = addr
                .parse()
                .map_err(|e| AggregatorError::Config(format!("aggregator.admin_listen: {e}")))?;
            let router = admin::router(registry.clone(), readiness);
            Some(tokio::spawn(admin::serve(
                addr,
                router,
                shutdown.clone(),
                None,
            )))
        }
        _ => None,
    };
    let stage = Stage {
        name: "aggregator",
        transform: transform::ToRows,
        sink,
        dead_letters: Some(DeadLetters::new(publisher.clone(), "aggregator")),
        metrics: stage_metrics,
        retry: RetryPolicy {
            max_elapsed: config.retry_max_elapsed(),
            ..RetryPolicy::default()
        },
    };
    let (btx, brx) = mpsc::channel(4);
    let (atx, arx) = mpsc::unbounded_channel();
    let span = error_span!("stage", service = "aggregator", stage = "aggregator");
    info!(topic = %config.topic, group = %config.group_id, "aggregator starting");
    let src = tokio::spawn(
        source
            .run(btx, arx, shutdown.clone())
            .instrument(span.clone()),
    );
    let result = runner::run(stage, brx, atx, shutdown.clone())
        .instrument(span)
        .await;
    // The runner stops on shutdown or on a fatal error; either way the source must drain and
    // commit what is durable before we return.
    shutdown.cancel();
    let _ = src.await;
    if let Some(t) = alert_task {
        let _ = t.await;
    }
    if let Some(t) = maintenance_task {
        let _ = t.await;
    }
    let _ = publisher.flush(Duration::from_secs(5));
    if let Some(t) = admin_task {
        let _ = t.await;
    }
    result.map_err(AggregatorError::from)
}
