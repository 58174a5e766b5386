//! The Kafka source task: consumes, cuts per-partition batches, applies backpressure and stores
//! offsets when the runner says a batch is durable.
//!
//! The task owns the consumer so it can always keep polling (rebalance callbacks and
//! `max.poll.interval.ms` depend on it); when the runner falls behind it pauses the assigned
//! partitions instead of blocking.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::batch::{Batch, BatchId, Lease, OffsetMark, RawRecord, RecordMeta};
use crate::client::KafkaConfig;
use crate::metrics::StageMetrics;
use crate::stage::ResumePosition;

/// How a source consumes and cuts batches.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// Stage name (metric label, client id suffix).
    pub stage: &'static str,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Consumer group.
    pub group_id: String,
    /// Cut a batch at this many records …
    pub max_events: usize,
    /// … or this many payload bytes …
    pub max_bytes: usize,
    /// … or when its oldest record is this old (the floor when `pace` is set).
    pub max_age: Duration,
    /// Lengthen the age as more partitions buffer, to bound the number of cuts per second.
    pub pace: Option<crate::pace::Pace>,
    /// Batches cut but not yet taken by the runner before partitions are paused.
    pub max_ready: usize,
    /// How long shutdown waits for in-flight batches to be acknowledged.
    pub drain_timeout: Duration,
}

/// Why the source stopped.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The consumer could not be created or subscribed.
    #[error("kafka consumer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

#[derive(Debug, Default)]
struct RebalanceEvents {
    /// Partitions taken away: their unsent records are dropped (the next owner, or we after a
    /// re-assignment, reads them again from the committed offset).
    revoked: Vec<(String, i32)>,
    /// Partitions given to us: their "already stored" knowledge must be re-read.
    assigned: Vec<(String, i32)>,
}

/// Consumer context: commits stored offsets synchronously before partitions are revoked, and
/// tells the source loop which partitions changed hands.
pub struct SourceContext {
    events: Arc<Mutex<RebalanceEvents>>,
    /// The claim on each owned partition; ended in the revoke callback (see [`Lease`]).
    leases: Mutex<HashMap<(String, i32), Lease>>,
    stage: &'static str,
    lag: prometheus::IntGaugeVec,
}

impl std::fmt::Debug for SourceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceContext")
            .field("stage", &self.stage)
            .finish()
    }
}

impl ClientContext for SourceContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        // librdkafka's own view of lag (high watermark minus the committed/stored position),
        // refreshed every `statistics.interval.ms`; -1 means "not known yet".
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.lag
                        .with_label_values(&[self.stage, topic, &partition.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            // First stop this instance writing batches it no longer owns, then commit what is
            // durable before another member takes over, so it does not redo it.
            if let Ok(mut leases) = self.leases.lock() {
                for e in tpl.elements() {
                    if let Some(lease) = leases.remove(&(e.topic().to_owned(), e.partition())) {
                        lease.end();
                    }
                }
            }
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                debug!(error = %e, "commit on revoke");
            }
            self.note(tpl, true);
            info!(partitions = tpl.count(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            if let Ok(mut leases) = self.leases.lock() {
                for e in tpl.elements() {
                    leases.insert((e.topic().to_owned(), e.partition()), Lease::new());
                }
            }
            self.note(tpl, false);
            info!(partitions = tpl.count(), "partitions assigned");
        }
    }
}

impl SourceContext {
    /// The current claim on `topic`/`partition` (a fresh one the first time it is asked for
    /// after an assignment).
    fn lease(&self, topic: &str, partition: i32) -> Lease {
        let key = (topic.to_owned(), partition);
        // Revoked in a callback the source loop has not applied yet: its buffered records are
        // about to be dropped, so a batch cut from them now must not get a fresh claim.
        let revoked_pending = self
            .events
            .lock()
            .map(|ev| ev.revoked.contains(&key))
            .unwrap_or(false);
        match self.leases.lock() {
            Ok(mut leases) => match leases.get(&key) {
                Some(lease) => lease.clone(),
                None if revoked_pending => {
                    let ended = Lease::new();
                    ended.end();
                    ended
                }
                None => leases.entry(key).or_default().clone(),
            },
            // A poisoned map cannot say the partition was revoked: a held lease keeps the
            // previous behaviour (write; the sink is idempotent).
            Err(_) => Lease::new(),
        }
    }

    fn note(&self, tpl: &TopicPartitionList, revoked: bool) {
        if let Ok(mut ev) = self.events.lock() {
            let list = if revoked {
                &mut ev.revoked
            } else {
                &mut ev.assigned
            };
            list.extend(
                tpl.elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition())),
            );
        }
    }
}

struct PartitionBuffer {
    records: Vec<RawRecord>,
    bytes: usize,
    started: Instant,
}

/// A running Kafka source. Create with [`KafkaSource::new`], then [`KafkaSource::run`].
pub struct KafkaSource {
    consumer: StreamConsumer<SourceContext>,
    events: Arc<Mutex<RebalanceEvents>>,
    cfg: SourceSettings,
    resume: Arc<dyn ResumePosition>,
    metrics: StageMetrics,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("cfg", &self.cfg)
            .finish()
    }
}

type Tp = (Arc<str>, i32);

/// What the sink holds of a partition: stored offsets with the fingerprints stored there.
type Stored = HashMap<i64, Vec<Option<u64>>>;

impl KafkaSource {
    /// Creates the consumer and subscribes to the configured topics.
    pub fn new(
        settings: &KafkaConfig,
        cfg: SourceSettings,
        resume: Arc<dyn ResumePosition>,
        metrics: StageMetrics,
    ) -> Result<KafkaSource, SourceError> {
        let events = Arc::new(Mutex::new(RebalanceEvents::default()));
        let ctx = SourceContext {
            events: events.clone(),
            leases: Mutex::new(HashMap::new()),
            stage: cfg.stage,
            lag: metrics.lag.clone(),
        };
        let consumer: StreamConsumer<SourceContext> = settings
            .consumer_config(cfg.stage, &cfg.group_id)
            .create_with_context(ctx)?;
        let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(KafkaSource {
            consumer,
            events,
            cfg,
            resume,
            metrics,
        })
    }

    /// Runs until `shutdown`: sends cut batches on `batches` and stores offsets received on
    /// `acks`. On shutdown it drops unsent batches (they will be redelivered), waits up to the
    /// drain timeout for in-flight acknowledgements, then commits synchronously.
    pub async fn run(
        self,
        batches: mpsc::Sender<Batch>,
        mut acks: mpsc::UnboundedReceiver<OffsetMark>,
        shutdown: CancellationToken,
    ) -> Result<(), SourceError> {
        let stage = self.cfg.stage;
        let mut buffers: BTreeMap<Tp, PartitionBuffer> = BTreeMap::new();
        let mut ready: VecDeque<Batch> = VecDeque::new();
        // Per partition: offsets the sink already holds, looked up on the first record after an
        // assignment (see `ResumePosition`).
        let mut resume_at: HashMap<Tp, Stored> = HashMap::new();
        // Last offset received per partition: a record that does not follow it (a new
        // assignment, a rewind after a rebalance or an offset reset) triggers a fresh lookup.
        let mut last_seen: HashMap<Tp, i64> = HashMap::new();
        let mut quiet_errors: HashSet<String> = HashSet::new();
        let mut paused = false;
        let mut tick = tokio::time::interval((self.cfg.max_age / 4).max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rate = crate::pace::RateMeter::default();
        let mut last_tick = Instant::now();
        loop {
            self.apply_rebalance_events(&mut buffers, &mut resume_at, &mut ready, paused);
            last_seen.retain(|tp, _| resume_at.contains_key(tp));
            let want_pause = ready.len() >= self.cfg.max_ready;
            if want_pause != paused {
                self.set_paused(want_pause);
                paused = want_pause;
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(mark) = acks.recv() => self.store(&mark),
                permit = batches.reserve(), if !ready.is_empty() => {
                    let Ok(permit) = permit else { break };
                    if let Some(b) = ready.pop_front() {
                        permit.send(b);
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let rate = rate.tick(now.duration_since(last_tick));
                    last_tick = now;
                    let age = self
                        .cfg
                        .pace
                        .map_or(self.cfg.max_age, |p| p.age(self.cfg.max_age, buffers.len(), rate));
                    self.metrics.batch_age.with_label_values(&[stage]).set(age.as_secs_f64());
                    let aged: Vec<Tp> = buffers
                        .iter()
                        .filter(|(_, b)| now.duration_since(b.started) >= age)
                        .map(|(tp, _)| tp.clone())
                        .collect();
                    for tp in aged {
                        if let Some(b) = cut(&mut buffers, &tp, self.lease_of(&tp)) {
                            ready.push_back(b);
                        }
                    }
                }
                msg = self.consumer.recv() => {
                    let m = match msg {
                        Ok(m) => {
                            if !quiet_errors.is_empty() {
                                quiet_errors.clear();
                                info!(stage, "kafka consumer recovered");
                            }
                            m
                        }
                        Err(e) => {
                            // librdkafka repeats transport errors many times a second while a
                            // broker is away: say it once, then again only when it changes.
                            let text = e.to_string();
                            if quiet_errors.insert(text.clone()) {
                                warn!(stage, error = %text, "kafka consumer error");
                            } else {
                                debug!(stage, error = %text, "kafka consumer error (repeated)");
                            }
                            continue;
                        }
                    };
                    rate.record();
                    let topic: Arc<str> = Arc::from(m.topic());
                    let tp: Tp = (topic.clone(), m.partition());
                    let offset = m.offset();
                    let record = RawRecord {
                        meta: RecordMeta {
                            topic,
                            partition: m.partition(),
                            offset,
                            key: m.key().map(<[u8]>::to_vec),
                            timestamp_ms: m.timestamp().to_millis(),
                            headers: m
                                .headers()
                                .map(|h| h.iter().map(|x| (x.key.to_owned(), x.value.map(<[u8]>::to_vec).unwrap_or_default())).collect())
                                .unwrap_or_default(),
                        },
                        payload: m.payload().map(<[u8]>::to_vec),
                    };
                    drop(m);
                    // The poll that returned this record may have run rebalance callbacks first:
                    // apply them before the record is buffered, so dropping a revoked
                    // partition's unsent records can never drop this one.
                    self.apply_rebalance_events(&mut buffers, &mut resume_at, &mut ready, paused);
                    last_seen.retain(|tp, _| resume_at.contains_key(tp));
                    match last_seen.get(&tp) {
                        Some(last) if offset == last + 1 => {}
                        Some(last) if offset > last + 1 && resume_at.contains_key(&tp) => {
                            // Same assignment, no rewind: the offsets between were deleted
                            // (retention ran ahead of us) or lost.
                            self.metrics
                                .offset_gaps
                                .with_label_values(&[stage, &tp.0])
                                .inc_by(u64::try_from(offset - last - 1).unwrap_or(0));
                            warn!(stage, topic = %tp.0, partition = tp.1, after = last, next = offset, "offsets skipped: records deleted or lost before they were read");
                        }
                        _ => {
                            let Some(stored) = self.lookup_stored(&tp, offset, &shutdown).await else { break };
                            resume_at.insert(tp.clone(), stored);
                        }
                    }
                    last_seen.insert(tp.clone(), offset);
                    if self.already_stored(&mut resume_at, &tp, offset, record.payload.as_deref()) {
                        // The sink already holds this record: it was written before a crash
                        // and redelivered because its offset had not been committed yet.
                        self.metrics.discarded.with_label_values(&[stage, "already_stored"]).inc();
                        continue;
                    }
                    let size = record.payload.as_ref().map_or(0, Vec::len);
                    let buf = buffers.entry(tp.clone()).or_insert_with(|| PartitionBuffer {
                        records: Vec::new(),
                        bytes: 0,
                        started: Instant::now(),
                    });
                    buf.records.push(record);
                    buf.bytes += size;
                    if (buf.records.len() >= self.cfg.max_events || buf.bytes >= self.cfg.max_bytes)
                        && let Some(b) = cut(&mut buffers, &tp, self.lease_of(&tp))
                    {
                        ready.push_back(b);
                    }
                }
            }
        }
        drop(ready);
        drop(batches);
        let deadline = Instant::now() + self.cfg.drain_timeout;
        while let Ok(Some(mark)) = tokio::time::timeout_at(deadline.into(), acks.recv()).await {
            self.store(&mark);
        }
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing stored yet, or the group is gone; the committed offsets stay where they were.
            debug!(stage, error = %e, "final commit");
        }
        info!(stage, "source stopped");
        Ok(())
    }

    fn apply_rebalance_events(
        &self,
        buffers: &mut BTreeMap<Tp, PartitionBuffer>,
        resume_at: &mut HashMap<Tp, Stored>,
        ready: &mut VecDeque<Batch>,
        paused: bool,
    ) {
        let (revoked, assigned) = match self.events.lock() {
            Ok(mut ev) if !ev.revoked.is_empty() || !ev.assigned.is_empty() => (
                std::mem::take(&mut ev.revoked),
                std::mem::take(&mut ev.assigned),
            ),
            _ => return,
        };
        let same = |t: &str, p: i32, topic: &str, partition: i32| t == topic && p == partition;
        for (topic, partition) in &revoked {
            buffers.retain(|(t, p), _| !same(t, *p, topic, *partition));
            ready.retain(|b| !same(&b.id.topic, b.id.partition, topic, *partition));
            resume_at.retain(|(t, p), _| !same(t, *p, topic, *partition));
        }
        for (topic, partition) in &assigned {
            // Another member may have written more meanwhile: re-read what the sink holds.
            resume_at.retain(|(t, p), _| !same(t, *p, topic, *partition));
        }
        if paused {
            self.set_paused(true);
        }
    }

    fn set_paused(&self, pause: bool) {
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let r = if pause {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        };
        if let Err(e) = r {
            debug!(stage = self.cfg.stage, pause, error = %e, "pause/resume");
        }
    }

    /// Offsets `>= from` the sink already holds; `None` when shutdown interrupted the lookup.
    async fn lookup_stored(
        &self,
        tp: &Tp,
        from: i64,
        shutdown: &CancellationToken,
    ) -> Option<Stored> {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        for attempt in 0.. {
            match self.resume.stored_from(&tp.0, tp.1, from).await {
                Ok(stored) => {
                    if !stored.is_empty() {
                        info!(
                            stage = self.cfg.stage,
                            topic = %tp.0,
                            partition = tp.1,
                            from,
                            already_stored = stored.len(),
                            "skipping records the sink already holds"
                        );
                    }
                    let mut out = Stored::default();
                    for (offset, fingerprint) in stored {
                        out.entry(offset).or_default().push(fingerprint);
                    }
                    return Some(out);
                }
                Err(e) => {
                    warn!(stage = self.cfg.stage, topic = %tp.0, partition = tp.1, error = %e, "cannot read the sink's position, retrying");
                    if !backoff.sleep(attempt, shutdown).await {
                        return None;
                    }
                }
            }
        }
        None
    }

    /// Whether the sink already holds this record: its offset is stored with a matching
    /// fingerprint. A mismatch means the stored record is another one under the same offset (the
    /// topic was re-created, or a broker lost its log): it is counted, the partition's remaining
    /// stored offsets are forgotten (they belong to the old log too), and the record is written.
    fn already_stored(
        &self,
        resume_at: &mut HashMap<Tp, Stored>,
        tp: &Tp,
        offset: i64,
        payload: Option<&[u8]>,
    ) -> bool {
        let Some(stored) = resume_at.get_mut(tp) else {
            return false;
        };
        let Some(fingerprints) = stored.remove(&offset) else {
            return false;
        };
        let ours = payload.and_then(|p| self.resume.fingerprint(p));
        let same = match ours {
            None => true,
            Some(fp) => fingerprints.iter().any(|f| f.is_none_or(|f| f == fp)),
        };
        if !same {
            self.metrics
                .position_mismatches
                .with_label_values(&[self.cfg.stage, &tp.0])
                .inc();
            warn!(stage = self.cfg.stage, topic = %tp.0, partition = tp.1, offset, "the sink holds another record under this offset: the topic was re-created or a broker lost its log; writing the new records");
            stored.clear();
        }
        same
    }

    fn lease_of(&self, tp: &Tp) -> Lease {
        self.consumer.context().lease(&tp.0, tp.1)
    }

    fn store(&self, mark: &OffsetMark) {
        let mut tpl = TopicPartitionList::new();
        if let Err(e) = tpl.add_partition_offset(
            &mark.topic,
            mark.partition,
            Offset::Offset(mark.next_offset()),
        ) {
            warn!(error = %e, "cannot build offset list");
            return;
        }
        match self.consumer.store_offsets(&tpl) {
            Ok(()) => {
                self.metrics
                    .stored_offset
                    .with_label_values(&[self.cfg.stage, &mark.topic, &mark.partition.to_string()])
                    .set(mark.next_offset());
            }
            // The partition was revoked meanwhile: its new owner redelivers, and sinks are
            // idempotent, so this is expected during rebalances.
            Err(e) => {
                debug!(topic = %mark.topic, partition = mark.partition, error = %e, "offset not stored")
            }
        }
    }
}

fn cut(buffers: &mut BTreeMap<Tp, PartitionBuffer>, tp: &Tp, lease: Lease) -> Option<Batch> {
    let buf = buffers.remove(tp)?;
    let first = buf.records.first()?.meta.offset;
    let last = buf.records.last()?.meta.offset;
    Some(Batch {
        id: BatchId {
            topic: tp.0.clone(),
            partition: tp.1,
            first,
            last,
        },
        records: buf.records,
        lease,
    })
}
