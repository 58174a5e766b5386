//! One way to wire a Kafka-consuming stage: source → transform → sink → dead letters → offsets.
//!
//! Every service that reads Kafka builds its stage here instead of repeating the channels, the
//! tasks and the shutdown order: the source task keeps polling and cuts batches, the runner
//! transforms and writes them, and the source stores a batch's offsets only after the runner
//! acknowledged it. When the runner stops (shutdown or a fatal error) the source is told to
//! stop too, and drains and commits what is durable before [`StageBuilder::run`] returns.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error_span, info};

use crate::client::KafkaConfig;
use crate::dlq::DeadLetters;
use crate::metrics::StageMetrics;
use crate::runner::{self, RetryPolicy, RunnerError, Stage};
use crate::source::{KafkaSource, SourceError, SourceSettings};
use crate::stage::{AfterDurable, CommittedOffsets, ResumePosition, Sink, Transform};

/// Batches cut by the source but not yet taken by the runner.
const BATCH_CHANNEL: usize = 4;

/// Why a stage stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StageRunError {
    /// The consumer could not be created, or failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The sink or the dead-letter topic failed fatally.
    #[error(transparent)]
    Runner(#[from] RunnerError),
}

/// A Kafka-consuming stage being put together.
#[must_use = "a stage does nothing until it is run"]
pub struct StageBuilder<T, S: Sink> {
    stage: Stage<T, S>,
    source: SourceSettings,
    resume: Arc<dyn ResumePosition>,
}

impl<T, S: Sink> std::fmt::Debug for StageBuilder<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageBuilder")
            .field("stage", &self.stage)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl<T, S> StageBuilder<T, S>
where
    T: Transform,
    S: Sink<Item = T::Out>,
{
    /// A stage named `source.stage` reading as `source` says, with default retries, no
    /// dead-letter topic (rejected records are fatal), resuming from committed offsets.
    pub fn new(source: SourceSettings, transform: T, sink: S, metrics: StageMetrics) -> Self {
        StageBuilder {
            stage: Stage {
                name: source.stage,
                transform,
                sink,
                dead_letters: None,
                metrics,
                retry: RetryPolicy::default(),
                after_durable: None,
            },
            source,
            resume: Arc::new(CommittedOffsets),
        }
    }

    /// Records that cannot be decoded, or that the transform or the sink reject, go here.
    pub fn dead_letters(mut self, dead_letters: DeadLetters) -> Self {
        self.stage.dead_letters = Some(dead_letters);
        self
    }

    /// How retryable sink errors are retried.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.stage.retry = retry;
        self
    }

    /// A sink that keeps its own position: where a partition really resumes.
    pub fn resume_from(mut self, position: Arc<dyn ResumePosition>) -> Self {
        self.resume = position;
        self
    }

    /// Told about every batch the sink made durable, before its offsets are stored.
    pub fn after_durable(mut self, hook: impl AfterDurable<S::Item>) -> Self {
        self.stage.after_durable = Some(Box::new(hook));
        self
    }

    /// Runs until `shutdown` or a fatal error; the source has committed what is durable when
    /// this returns. A fatal error cancels `shutdown` for everything sharing it.
    pub async fn run(
        self,
        kafka: &KafkaConfig,
        shutdown: CancellationToken,
    ) -> Result<(), StageRunError> {
        let name = self.stage.name;
        let source = match KafkaSource::new(
            kafka,
            self.source.clone(),
            self.resume,
            self.stage.metrics.clone(),
        ) {
            Ok(s) => s,
            Err(e) => {
                shutdown.cancel();
                return Err(e.into());
            }
        };
        let (batches_tx, batches_rx) = mpsc::channel(BATCH_CHANNEL);
        let (acks_tx, acks_rx) = mpsc::unbounded_channel();
        let span = error_span!("stage", stage = name);
        info!(stage = name, topics = ?self.source.topics, group = %self.source.group_id, "stage starting");
        let src = tokio::spawn(
            source
                .run(batches_tx, acks_rx, shutdown.clone())
                .instrument(span.clone()),
        );
        let result = runner::run(self.stage, batches_rx, acks_tx, shutdown.clone())
            .instrument(span)
            .await;
        // The runner stops on shutdown or on a fatal error; either way the source must drain and
        // commit what is durable before we return.
        shutdown.cancel();
        let source = src.await;
        result?;
        match source {
            Ok(r) => r.map_err(StageRunError::from),
            // The source task panicked: nothing more to commit; the runner's result stands.
            Err(_) => Ok(()),
        }
    }
}
