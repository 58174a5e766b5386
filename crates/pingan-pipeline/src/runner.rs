//! The generic stage runner: decode → transform → sink → dead letters → acknowledge.

use std::ops::Range;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, debug_span, error, warn};

use crate::backoff::Backoff;
use crate::batch::{Batch, BatchId, Lease, OffsetMark};
use crate::dlq::{DeadLetter, DeadLetters};
use crate::metrics::StageMetrics;
use crate::stage::{
    Ack, AfterDurable, Disposition, Inbound, Outbound, Outcome, Sink, StageError, Transform,
};

/// How a stage retries a batch after a retryable sink error.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Waits between attempts.
    pub backoff: Backoff,
    /// Give up (fatal) after retrying this long for one batch.
    pub max_elapsed: Duration,
    /// When the sink rejects a batch's data (`Disposition::DeadLetter`), the batch is split in
    /// halves and each half written again, down to the single bad records, with at most this
    /// many writes per batch; whatever is still unresolved then goes to the dead-letter topic
    /// as it stands. One bad record in 50,000 costs about 2·log2(50,000) ≈ 32 writes. 1 turns
    /// splitting off.
    pub max_split_writes: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
            max_elapsed: Duration::from_secs(600),
            max_split_writes: 200,
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

/// The outcome of writing one batch's items.
enum Written {
    /// Everything not listed is durable; the listed items (index, code, message) were rejected
    /// by the sink and go to the dead-letter topic.
    Done {
        ack: Ack,
        rejected: Vec<(usize, &'static str, String)>,
    },
    /// Shutdown while waiting to retry: leave the batch unacknowledged.
    Stopped,
    /// The partition was revoked meanwhile: drop the batch, its new owner redelivers it.
    Fenced,
    /// Give up.
    Failed(&'static str, String),
}

/// The identity of the items `range` of a batch: its topic and partition, from the first to the
/// last item's offset. Deterministic, so a sink may use it as an idempotency key like a batch's.
fn sub_batch_id<T>(id: &BatchId, items: &[Outbound<T>], range: &Range<usize>) -> BatchId {
    if *range == (0..items.len()) {
        return id.clone();
    }
    BatchId {
        topic: id.topic.clone(),
        partition: id.partition,
        first: items[range.start].source.offset,
        last: items[range.end - 1].source.offset,
    }
}

/// Writes `items`, retrying retryable errors; when the sink rejects the data itself, splits the
/// rejected range in halves and writes those, so only the records the sink really refuses are
/// dead-lettered (at most `max_split_writes` writes; beyond that a rejected range is
/// dead-lettered whole). Halves are written in offset order.
async fn write_splitting<T, S>(
    stage: &mut Stage<T, S>,
    id: &BatchId,
    items: &[Outbound<S::Item>],
    lease: &Lease,
    span: &tracing::Span,
    shutdown: &CancellationToken,
) -> Written
where
    T: Transform,
    S: Sink<Item = T::Out>,
{
    let name = stage.name;
    let m = stage.metrics.clone();
    let mut pending: Vec<Range<usize>> = Vec::with_capacity(64);
    pending.push(0..items.len());
    let mut writes = 0usize;
    let mut ack = Ack::StoreOffsets;
    let mut rejected = Vec::new();
    while let Some(range) = pending.pop() {
        let sub = sub_batch_id(id, items, &range);
        let slice = &items[range.clone()];
        let mut retry = BatchRetry::new(stage.retry);
        // Retries of a transient error are bounded by the retry policy, not counted here.
        writes += 1;
        loop {
            if !lease.held() {
                return Written::Fenced;
            }
            let e = match stage.sink.write(&sub, slice).instrument(span.clone()).await {
                Ok(a) => {
                    // Items the sink refused to store (an event id that belongs to another
                    // record) are dead-lettered and kept from the after-durable hook.
                    let mut refused = stage.sink.take_refused();
                    refused.retain(|r| r.index < slice.len());
                    refused.sort_unstable_by_key(|r| r.index);
                    refused.dedup_by_key(|r| r.index);
                    m.emitted
                        .with_label_values(&[name])
                        .inc_by((slice.len() - refused.len()) as u64);
                    if let Some(hook) = stage.after_durable.as_mut() {
                        let mut from = 0;
                        for r in &refused {
                            if r.index > from {
                                hook.stored(&sub, &slice[from..r.index]);
                            }
                            from = r.index + 1;
                        }
                        if from < slice.len() {
                            hook.stored(&sub, &slice[from..]);
                        }
                    }
                    rejected.extend(
                        refused
                            .into_iter()
                            .map(|r| (range.start + r.index, r.code, r.message)),
                    );
                    if a == Ack::CommittedBySink {
                        ack = a;
                    }
                    break;
                }
                Err(e) => e,
            };
            match retry.on_error(name, &e, &m, shutdown).await {
                Next::Again => {}
                Next::Stopped => return Written::Stopped,
                Next::DeadLetter(code, message) => {
                    // Every range still queued costs a write too.
                    if range.len() > 1 && writes + pending.len() + 2 <= stage.retry.max_split_writes
                    {
                        let mid = range.start + range.len() / 2;
                        m.split_writes.with_label_values(&[name]).inc();
                        warn!(stage = name, batch = %sub, code, records = range.len(), "sink rejected the data; writing each half on its own");
                        // A stack: the first half is written first.
                        pending.push(mid..range.end);
                        pending.push(range.start..mid);
                    } else {
                        rejected.extend(range.clone().map(|i| (i, code, message.clone())));
                    }
                    break;
                }
                Next::Fail(code, message) => return Written::Failed(code, message),
            }
        }
    }
    rejected.sort_unstable_by_key(|(i, _, _)| *i);
    Written::Done { ack, rejected }
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
        let lease = batch.lease.clone();
        if !lease.held() {
            m.fenced_batches.with_label_values(&[name]).inc();
            debug!(stage = name, batch = %id, "partition revoked before the batch was written; dropped (its new owner redelivers it)");
            continue;
        }
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
            let value = match T::decode(&payload) {
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
            match write_splitting(&mut stage, &id, &out, &lease, &span, &shutdown).await {
                Written::Done { ack, rejected } => {
                    // `rejected` is in ascending order of index: drain the payloads in step.
                    let mut rejected = rejected.into_iter().peekable();
                    for (i, (meta, payload)) in out_payloads.drain(..).enumerate() {
                        if let Some((_, code, message)) = rejected.next_if(|(j, _, _)| *j == i) {
                            dead.push(DeadLetter {
                                meta,
                                payload,
                                code,
                                message,
                            });
                        }
                    }
                    ack
                }
                Written::Stopped => return Ok(()),
                Written::Fenced => {
                    m.fenced_batches.with_label_values(&[name]).inc();
                    warn!(stage = name, batch = %id, "partition revoked while the batch was retried; dropped (its new owner redelivers it)");
                    continue;
                }
                Written::Failed(code, message) => {
                    error!(stage = name, batch = %id, code, error = %message, "sink failed; stopping without acknowledging the batch");
                    return Err(RunnerError::Sink { code, message });
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::batch::RecordMeta;
    use crate::stage::RecordError;

    /// Passes numbers through.
    struct Identity;

    impl Transform for Identity {
        type In = u64;
        type Out = u64;
        fn transform(&mut self, input: Inbound<u64>) -> Result<Outcome<u64>, RecordError> {
            Ok(Outcome::Emit(Outbound {
                source: input.meta,
                key: None,
                value: input.value,
            }))
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("rejected")]
    struct Rejected;

    impl StageError for Rejected {
        fn disposition(&self) -> Disposition {
            Disposition::DeadLetter
        }
        fn code(&self) -> &'static str {
            "rejected"
        }
    }

    /// Refuses any write holding a value in `bad`, like a server refusing a whole INSERT for
    /// one unparsable row; keeps what it stored and every write's id.
    #[derive(Default)]
    struct Picky {
        bad: Vec<u64>,
        stored: Vec<u64>,
        writes: Vec<BatchId>,
    }

    impl Sink for Picky {
        type Item = u64;
        type Error = Rejected;
        async fn write(&mut self, id: &BatchId, items: &[Outbound<u64>]) -> Result<Ack, Rejected> {
            self.writes.push(id.clone());
            if items.iter().any(|o| self.bad.contains(&o.value)) {
                return Err(Rejected);
            }
            self.stored.extend(items.iter().map(|o| o.value));
            Ok(Ack::StoreOffsets)
        }
    }

    fn items(n: u64) -> Vec<Outbound<u64>> {
        (0..n)
            .map(|i| Outbound {
                source: RecordMeta {
                    topic: Arc::from("t"),
                    partition: 0,
                    offset: 1000 + i as i64,
                    key: None,
                    timestamp_ms: None,
                    headers: Vec::new(),
                },
                key: None,
                value: i,
            })
            .collect()
    }

    fn stage(bad: Vec<u64>, max_split_writes: usize) -> Stage<Identity, Picky> {
        Stage {
            name: "test",
            transform: Identity,
            sink: Picky {
                bad,
                ..Picky::default()
            },
            dead_letters: None,
            metrics: StageMetrics::register(&prometheus::Registry::new()).unwrap(),
            retry: RetryPolicy {
                max_split_writes,
                ..RetryPolicy::default()
            },
            after_durable: None,
        }
    }

    async fn write(stage: &mut Stage<Identity, Picky>, items: &[Outbound<u64>]) -> Vec<usize> {
        let id = BatchId {
            topic: Arc::from("t"),
            partition: 0,
            first: items[0].source.offset,
            last: items[items.len() - 1].source.offset,
        };
        let span = tracing::Span::none();
        match write_splitting(
            stage,
            &id,
            items,
            &Lease::new(),
            &span,
            &CancellationToken::new(),
        )
        .await
        {
            Written::Done { rejected, .. } => rejected.into_iter().map(|(i, _, _)| i).collect(),
            _ => panic!("the write neither stopped nor failed"),
        }
    }

    fn batch(first: i64, n: i64, lease: Lease) -> Batch {
        let records = (first..first + n)
            .map(|offset| crate::batch::RawRecord {
                meta: RecordMeta {
                    topic: Arc::from("t"),
                    partition: 0,
                    offset,
                    key: None,
                    timestamp_ms: None,
                    headers: Vec::new(),
                },
                payload: Some(offset.to_string().into_bytes()),
            })
            .collect();
        Batch {
            id: BatchId {
                topic: Arc::from("t"),
                partition: 0,
                first,
                last: first + n - 1,
            },
            records,
            lease,
        }
    }

    /// A batch whose partition was revoked before the runner got to it is dropped unwritten and
    /// unacknowledged; the batches of partitions still owned are written and acknowledged.
    #[tokio::test]
    async fn batches_of_a_revoked_partition_are_not_written() {
        let s = stage(Vec::new(), 200);
        let metrics = s.metrics.clone();
        let (tx, rx) = mpsc::channel(8);
        let (ack_tx, mut ack_rx) = mpsc::unbounded_channel();
        let revoked = Lease::new();
        revoked.end();
        tx.send(batch(0, 10, revoked)).await.unwrap();
        tx.send(batch(10, 5, Lease::new())).await.unwrap();
        drop(tx);
        // The runner owns the stage; read what the sink stored through the acks and metrics.
        run(s, rx, ack_tx, CancellationToken::new()).await.unwrap();
        let mut acked = Vec::new();
        while let Ok(mark) = ack_rx.try_recv() {
            acked.push(mark.last);
        }
        assert_eq!(
            acked,
            vec![14],
            "only the owned partition's batch is acknowledged"
        );
        assert_eq!(metrics.fenced_batches.with_label_values(&["test"]).get(), 1);
        assert_eq!(metrics.emitted.with_label_values(&["test"]).get(), 5);
    }

    /// A batch retried while its partition is revoked stops retrying instead of holding the
    /// stage for the whole retry budget.
    #[tokio::test]
    async fn a_retried_batch_stops_when_its_partition_is_revoked() {
        let mut s = stage(Vec::new(), 200);
        s.retry.backoff = crate::backoff::Backoff::new(
            std::time::Duration::from_millis(1),
            std::time::Duration::from_millis(1),
        );
        let lease = Lease::new();
        lease.end();
        let all = items(3);
        let id = BatchId {
            topic: Arc::from("t"),
            partition: 0,
            first: 1000,
            last: 1002,
        };
        let span = tracing::Span::none();
        let w = write_splitting(&mut s, &id, &all, &lease, &span, &CancellationToken::new()).await;
        assert!(matches!(w, Written::Fenced));
        assert!(s.sink.writes.is_empty());
    }

    #[tokio::test]
    async fn one_bad_record_in_50_000_costs_it_alone_and_a_few_dozen_writes() {
        let all = items(50_000);
        let mut s = stage(vec![31_337], 200);
        let rejected = write(&mut s, &all).await;
        assert_eq!(rejected, vec![31_337]);
        assert_eq!(s.sink.stored.len(), 49_999);
        let mut stored = s.sink.stored.clone();
        stored.sort_unstable();
        stored.dedup();
        assert_eq!(stored.len(), 49_999, "nothing is stored twice");
        assert!(!stored.contains(&31_337));
        assert!(
            s.sink.writes.len() <= 2 * 17,
            "{} writes",
            s.sink.writes.len()
        );
        // The first write is the batch itself; the parts are named by their own offsets.
        assert_eq!(
            (s.sink.writes[0].first, s.sink.writes[0].last),
            (1000, 50_999)
        );
        assert_eq!(
            (s.sink.writes[1].first, s.sink.writes[1].last),
            (1000, 25_999)
        );
        let stored_in_order = s.sink.stored.windows(2).all(|w| w[0] < w[1]);
        assert!(stored_in_order, "halves are written in offset order");
    }

    #[tokio::test]
    async fn several_bad_records_are_all_found() {
        let all = items(1_000);
        let bad = vec![0, 1, 500, 999];
        let mut s = stage(bad.clone(), 200);
        let rejected = write(&mut s, &all).await;
        assert_eq!(rejected, vec![0, 1, 500, 999]);
        assert_eq!(s.sink.stored.len(), 996);
    }

    #[tokio::test]
    async fn the_write_budget_bounds_the_search_and_dead_letters_the_rest() {
        let all = items(1_000);
        // Every record bad: an unbounded search would write 1,999 times.
        let mut s = stage((0..1_000).collect(), 20);
        let rejected = write(&mut s, &all).await;
        assert!(s.sink.writes.len() <= 20, "{} writes", s.sink.writes.len());
        assert_eq!(rejected, (0..1_000).collect::<Vec<_>>());
        assert!(s.sink.stored.is_empty());
        // Splitting off: the batch goes as it is.
        let mut s = stage(vec![3], 1);
        assert_eq!(write(&mut s, &all).await.len(), 1_000);
        assert_eq!(s.sink.writes.len(), 1);
    }
}
