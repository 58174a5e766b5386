//! The generic stage runner: decode → transform → sink → dead letters → acknowledge.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug_span, error, warn};

use crate::backoff::Backoff;
use crate::batch::{Batch, OffsetMark};
use crate::dlq::{DeadLetter, DeadLetters};
use crate::metrics::StageMetrics;
use crate::stage::{Ack, AfterDurable, Disposition, Inbound, Outcome, Sink, StageError, Transform};

/// How a stage retries a batch after a retryable sink error.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Waits between attempts.
    pub backoff: Backoff,
    /// Give up (fatal) after retrying this long for one batch.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
            max_elapsed: Duration::from_secs(600),
        }
    }
}

/// Why a stage stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The sink failed fatally or ran out of retries.
    #[error("sink failed ({code}): {message}")]
    Sink {
        /// Stable code.
        code: &'static str,
        /// Detail.
        message: String,
    },
    /// Dead letters could not be written.
    #[error("dead-letter write failed: {0}")]
    DeadLetters(String),
}

/// Everything a running stage needs besides its batches.
pub struct Stage<T, S: Sink> {
    /// Stage name (metric label, span field).
    pub name: &'static str,
    /// The pure transform.
    pub transform: T,
    /// The idempotent sink.
    pub sink: S,
    /// Where undecodable or rejected records go; `None` makes such records fatal.
    pub dead_letters: Option<DeadLetters>,
    /// Standard metrics.
    pub metrics: StageMetrics,
    /// Backoff for retryable errors.
    pub retry: RetryPolicy,
    /// Told about every batch made durable (see [`AfterDurable`]).
    pub after_durable: Option<Box<dyn AfterDurable<S::Item>>>,
}

impl<T, S: Sink> std::fmt::Debug for Stage<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("name", &self.name)
            .field("retry", &self.retry)
            .field("after_durable", &self.after_durable.is_some())
            .finish_non_exhaustive()
    }
}

/// What to do after a failed write.
enum Next {
    /// Backoff elapsed; try again.
    Again,
    /// Shutdown requested while waiting: leave the batch unacknowledged.
    Stopped,
    /// Move the batch to the dead-letter topic.
    DeadLetter(&'static str, String),
    /// Give up.
    Fail(&'static str, String),
}

/// The retries of one batch.
struct BatchRetry {
    policy: RetryPolicy,
    started: Instant,
    attempt: u32,
}

impl BatchRetry {
    fn new(policy: RetryPolicy) -> BatchRetry {
        BatchRetry {
            policy,
            started: Instant::now(),
            attempt: 0,
        }
    }

    async fn on_error<E: StageError>(
        &mut self,
        name: &str,
        e: &E,
        metrics: &StageMetrics,
        shutdown: &CancellationToken,
    ) -> Next {
        match e.disposition() {
            Disposition::Retry if self.started.elapsed() < self.policy.max_elapsed => {
                metrics.retries.with_label_values(&[name, e.code()]).inc();
                let backoff = self.policy.backoff;
                warn!(stage = name, code = e.code(), error = %e, backoff_ms = backoff.delay(self.attempt).as_millis() as u64, "write failed, retrying");
                if !backoff.sleep(self.attempt, shutdown).await {
                    return Next::Stopped;
                }
                self.attempt += 1;
                Next::Again
            }
            Disposition::DeadLetter => Next::DeadLetter(e.code(), e.to_string()),
            _ => Next::Fail(e.code(), e.to_string()),
        }
    }
}

fn decode_error_code(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Data => "schema_mismatch",
        _ => "invalid_json",
    }
}

/// Runs a stage until the batch channel closes (source stopped) or a fatal error.
///
/// Offsets move only here, and only after the sink **and** the dead-letter topic acknowledged
/// the batch. A shutdown during retries leaves the batch unacknowledged, to be redelivered.
pub async fn run<T, S>(
    mut stage: Stage<T, S>,
    mut batches: mpsc::Receiver<Batch>,
    acks: mpsc::UnboundedSender<OffsetMark>,
    shutdown: CancellationToken,
) -> Result<(), RunnerError>
where
    T: Transform,
    S: Sink<Item = T::Out>,
{
    let name = stage.name;
    let m = stage.metrics.clone();
    while let Some(batch) = batches.recv().await {
        let span = debug_span!("batch", stage = name, topic = %batch.id.topic, partition = batch.id.partition, first = batch.id.first, last = batch.id.last);
        let id = batch.id.clone();
        let n = batch.records.len();
        m.received.with_label_values(&[name]).inc_by(n as u64);
        m.batch_size.with_label_values(&[name]).observe(n as f64);
        let mut out = Vec::with_capacity(n);
        let mut out_payloads = Vec::with_capacity(n);
        let mut dead = Vec::new();
        for rec in batch.records {
            let Some(payload) = rec.payload else {
                dead.push(DeadLetter {
                    meta: rec.meta,
                    payload: Vec::new(),
                    code: "empty_payload",
                    message: "record has no payload".into(),
                });
                continue;
            };
            let value = match serde_json::from_slice::<T::In>(&payload) {
                Ok(v) => v,
                Err(e) => {
                    dead.push(DeadLetter {
                        meta: rec.meta,
                        payload,
                        code: decode_error_code(&e),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            match stage.transform.transform(Inbound {
                meta: rec.meta.clone(),
                value,
            }) {
                Ok(Outcome::Emit(o)) => {
                    out.push(o);
                    out_payloads.push((rec.meta, payload));
                }
                Ok(Outcome::Discard { reason }) => {
                    m.discarded.with_label_values(&[name, reason]).inc()
                }
                Err(e) => dead.push(DeadLetter {
                    meta: rec.meta,
                    payload,
                    code: e.code,
                    message: e.message,
                }),
            }
        }
        let started = Instant::now();
        let ack = if out.is_empty() {
            Ack::StoreOffsets
        } else {
            let mut retry = BatchRetry::new(stage.retry);
            loop {
                let e = match stage.sink.write(&id, &out).instrument(span.clone()).await {
                    Ok(ack) => {
                        let refused = stage.sink.take_refused();
                        if !refused.is_empty() {
                            let mut keep = vec![true; out.len()];
                            for r in refused {
                                if let Some((meta, payload)) = out_payloads.get(r.index) {
                                    keep[r.index] = false;
                                    dead.push(DeadLetter {
                                        meta: meta.clone(),
                                        payload: payload.clone(),
                                        code: r.code,
                                        message: r.message,
                                    });
                                }
                            }
                            let mut flags = keep.into_iter();
                            out.retain(|_| flags.next().unwrap_or(true));
                        }
                        m.emitted
                            .with_label_values(&[name])
                            .inc_by(out.len() as u64);
                        if let Some(hook) = stage.after_durable.as_mut() {
                            hook.stored(&id, &out);
                        }
                        break ack;
                    }
                    Err(e) => e,
                };
                match retry.on_error(name, &e, &m, &shutdown).await {
                    Next::Again => {}
                    Next::Stopped => return Ok(()),
                    Next::DeadLetter(code, message) => {
                        for (meta, payload) in out_payloads.drain(..) {
                            dead.push(DeadLetter {
                                meta,
                                payload,
                                code,
                                message: message.clone(),
                            });
                        }
                        break Ack::StoreOffsets;
                    }
                    Next::Fail(code, message) => {
                        error!(stage = name, batch = %id, code, error = %message, "sink failed; stopping without acknowledging the batch");
                        return Err(RunnerError::Sink { code, message });
                    }
                }
            }
        };
        m.write_seconds
            .with_label_values(&[name])
            .observe(started.elapsed().as_secs_f64());
        if !dead.is_empty() {
            let Some(dlq) = &stage.dead_letters else {
                let first = &dead[0];
                error!(
                    stage = name,
                    code = first.code,
                    offset = first.meta.offset,
                    "record rejected and no dead-letter topic configured"
                );
                return Err(RunnerError::DeadLetters(format!(
                    "{}: {}",
                    first.code, first.message
                )));
            };
            for d in &dead {
                m.dead_letters.with_label_values(&[name, d.code]).inc();
                warn!(stage = name, topic = %d.meta.topic, partition = d.meta.partition, offset = d.meta.offset, code = d.code, "record sent to the dead-letter topic");
            }
            let mut retry = BatchRetry::new(stage.retry);
            loop {
                let Err(e) = dlq.write(&dead).await else {
                    break;
                };
                match retry.on_error(name, &e, &m, &shutdown).await {
                    Next::Again => {}
                    Next::Stopped => return Ok(()),
                    Next::DeadLetter(code, message) | Next::Fail(code, message) => {
                        error!(stage = name, batch = %id, code, error = %message, "dead-letter topic unavailable; stopping without acknowledging the batch");
                        return Err(RunnerError::DeadLetters(format!("{code}: {message}")));
                    }
                }
            }
        }
        if ack == Ack::StoreOffsets
            && acks
                .send(OffsetMark {
                    topic: id.topic.clone(),
                    partition: id.partition,
                    last: id.last,
                })
                .is_err()
        {
            // The source is gone (shutdown); the batch is durable and will be skipped or
            // rewritten idempotently on redelivery.
            return Ok(());
        }
    }
    Ok(())
}
