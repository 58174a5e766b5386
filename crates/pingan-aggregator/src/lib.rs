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
//! * [`dead_letters`]: the second stage, every `<topic>.dlq` → the `dead_letters` table.
//! * [`maintenance`]: sealing closed days into plain daily counts; retention.
//! * [`alerting`]: spike detection on stored events (alerts to ClickHouse, Kafka, webhook).
//! * [`metrics`]: the `pingan_aggregator_*` metrics.
#![deny(missing_docs)]

pub mod alerting;
pub mod config;
pub mod dead_letters;
pub mod maintenance;
pub mod metrics;
pub mod sink;
pub mod transform;

use std::sync::Arc;
use std::time::Duration;

use pingan_pipeline::builder::{StageBuilder, StageRunError};
use pingan_pipeline::client::KafkaConfig;
use pingan_pipeline::dlq::DeadLetters;
use pingan_pipeline::metrics::StageMetrics;
use pingan_pipeline::producer::Publisher;
use pingan_pipeline::runner::RetryPolicy;
use pingan_pipeline::source::SourceSettings;
use pingan_runtime::admin::{self, Readiness};
use pingan_runtime::config::ClickHouseConfig;
use prometheus::Registry;
use tokio_util::sync::CancellationToken;

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
    Stage(#[from] StageRunError),
}

/// What the aggregator runs with: its section, the connections and where its metrics go.
#[derive(Debug, Clone)]
pub struct AggregatorSettings {
    /// `[aggregator]`.
    pub config: AggregatorConfig,
    /// `[kafka]`.
    pub kafka: KafkaConfig,
    /// `[clickhouse]`.
    pub clickhouse: ClickHouseConfig,
    /// Receives the `pingan_aggregator_*` and `pingan_alerts_*` metrics.
    pub registry: Registry,
    /// The standard stage metrics, registered once per registry.
    pub stage_metrics: StageMetrics,
}

/// Runs the aggregator until `shutdown`.
pub async fn run(
    settings: AggregatorSettings,
    shutdown: CancellationToken,
) -> Result<(), AggregatorError> {
    let AggregatorSettings {
        config,
        kafka,
        clickhouse,
        registry,
        stage_metrics,
    } = settings;
    let config_error = |e: &dyn std::fmt::Display| AggregatorError::Config(e.to_string());
    let sink = sink::ClickHouseSink::new(
        &clickhouse,
        &config,
        metrics::AggregatorMetrics::register(&registry).map_err(|e| config_error(&e))?,
    )
    .await;
    let position: Arc<dyn pingan_pipeline::stage::ResumePosition> = Arc::new(sink.position());
    let publisher = Publisher::new(&kafka, "aggregator", Duration::from_secs(30))
        .map_err(|e| AggregatorError::Kafka(e.to_string()))?;
    let mut detect_feed = None;
    let alert_task = if config.alerts.enabled {
        let alert_metrics =
            alerting::AlertMetrics::register(&registry).map_err(|e| config_error(&e))?;
        let (feed, rx) = alerting::DetectFeed::new(config.alerts.queue_events);
        detect_feed = Some(feed.clone());
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
        let m =
            maintenance::MaintenanceMetrics::register(&registry).map_err(|e| config_error(&e))?;
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
    let admin_task = admin::spawn_admin(
        config.admin_listen.as_deref(),
        registry.clone(),
        readiness,
        shutdown.clone(),
    )
    .map_err(|e| config_error(&format!("aggregator.admin_listen: {e}")))?;
    let source = SourceSettings {
        stage: "aggregator",
        topics: vec![config.topic.clone()],
        group_id: config.group_id.clone(),
        max_events: config.batch_max_events,
        max_bytes: config.batch_max_bytes,
        max_age: config.batch_max_age(),
        pace: config.pace(),
        max_ready: 4,
        drain_timeout: Duration::from_secs(10),
    };
    let mut stage = StageBuilder::new(source, transform::ToRows, sink, stage_metrics.clone())
        .resume_from(position)
        .dead_letters(DeadLetters::new(publisher.clone(), "aggregator"))
        .retry(RetryPolicy {
            max_elapsed: config.retry_max_elapsed(),
            ..RetryPolicy::default()
        });
    // Spike detection learns of rows once ClickHouse has them, never before.
    if let Some(feed) = detect_feed {
        stage = stage.after_durable(feed);
    }
    let dead_letter_stage = config.dead_letters.enabled.then(|| {
        let source = SourceSettings {
            stage: "dead_letters",
            topics: config.dead_letters.topics.clone(),
            group_id: config.dead_letters.group_id(&config.group_id),
            max_events: 10_000,
            max_bytes: 16 << 20,
            max_age: Duration::from_secs(1),
            pace: None,
            max_ready: 2,
            drain_timeout: Duration::from_secs(10),
        };
        let sink = dead_letters::DeadLetterSink::new(
            pingan_warehouse::client(&clickhouse, pingan_warehouse::Role::Writer),
            Duration::from_millis(config.insert_timeout_ms),
        );
        // No dead-letter topic of its own: its rows are plain strings ClickHouse cannot reject,
        // so anything else is retried (and a give-up stops the aggregator, like the main stage).
        StageBuilder::new(
            source,
            dead_letters::ToDeadLetterRow,
            sink,
            stage_metrics.clone(),
        )
        .retry(RetryPolicy {
            max_elapsed: config.retry_max_elapsed(),
            ..RetryPolicy::default()
        })
        .run(&kafka, shutdown.clone())
    });
    // Boxed: two stages' state inline would make every caller's future large.
    let main_stage = Box::pin(stage.run(&kafka, shutdown.clone()));
    let (result, dead_letter_result) = match dead_letter_stage {
        Some(dl) => tokio::join!(main_stage, Box::pin(dl)),
        None => (main_stage.await, Ok(())),
    };
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
    result?;
    dead_letter_result.map_err(AggregatorError::from)
}
