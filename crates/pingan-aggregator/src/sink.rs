//! The idempotent ClickHouse sink.
//!
//! One batch (one Kafka partition's offset range) becomes one INSERT per ClickHouse partition
//! (month) it touches — in practice one — with a deterministic `query_id`. After a failure whose
//! outcome is unknown (timeout, connection reset after the body was sent, the server killed after
//! committing the part) the sink waits until the server no longer runs that `query_id`, then
//! counts the batch's offsets in `insert_audit`: if they are all there the insert had succeeded.
//! When that cannot be asked either (ClickHouse is down) the month stays *unsure*, and every later
//! attempt asks before it sends the rows again. Months already written in an earlier attempt of
//! the same batch are not sent twice.
//!
//! Before a batch is written the sink asks what is stored under its `event_id`s
//! ([`pingan_warehouse::identity`]): a record whose id already belongs to a stored record (or an
//! earlier record of the batch) with a different body is not written — the first record keeps
//! its id — but counted (`pingan_event_id_conflicts_total`) and handed back to the runner, which
//! dead-letters it as `event_id_conflict`. Exact repeats pass and fold as before. Two aggregator
//! instances writing conflicting bodies of one id in the same instant (different partitions) can
//! both pass the check; the ingest side makes that practically unreachable (QR ids are
//! namespaced, calls come from the authenticated CAD).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use clickhouse::Client;
use pingan_pipeline::batch::BatchId;
use pingan_pipeline::stage::{
    Ack, BoxFuture, Disposition, Outbound, Refused, ResumePosition, Sink, StageError,
};
use pingan_runtime::config::ClickHouseConfig;
use tracing::{info, warn};

use crate::config::AggregatorConfig;
use crate::metrics::AggregatorMetrics;
use pingan_warehouse::audit::{
    PARTITION_RUNNING_SQL, RUNNING_SQL, StoredRecord, stored_from, stored_in_range,
};
use pingan_warehouse::identity::{self, Identity};
use pingan_warehouse::rows::IncidentRow;

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// ClickHouse could not be reached or the outcome is unknown: retry the same batch.
    #[error("insert failed: {0}")]
    Insert(#[source] clickhouse::error::Error),
    /// An earlier INSERT of the batch is still running on the server: look again later.
    #[error("insert {0} still running on the server; its outcome is not known yet")]
    Unresolved(String),
    /// ClickHouse rejected the data itself: the batch goes to the dead-letter topic.
    #[error("rejected by clickhouse: {0}")]
    Rejected(String),
}

impl StageError for SinkError {
    fn disposition(&self) -> Disposition {
        match self {
            SinkError::Insert(_) | SinkError::Unresolved(_) => Disposition::Retry,
            SinkError::Rejected(_) => Disposition::DeadLetter,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            SinkError::Insert(_) => "clickhouse_insert",
            SinkError::Unresolved(_) => "clickhouse_unresolved",
            SinkError::Rejected(_) => "clickhouse_rejected",
        }
    }
}

fn is_data_rejection(e: &clickhouse::error::Error) -> bool {
    match e {
        clickhouse::error::Error::BadResponse(m) => {
            // Parse and type errors are about the rows themselves; everything else (too many
            // parts, memory limit, table missing during a migration …) may pass on retry.
            [
                "Cannot parse",
                "Type mismatch",
                "Cannot read all data",
                "Code: 27,",
                "Code: 53,",
                "Code: 70,",
            ]
            .iter()
            .any(|p| m.contains(p))
        }
        _ => false,
    }
}

/// The fingerprint of a stored event (see `ResumePosition`): its id, folded to 64 bits.
fn fingerprint(id: &uuid::Uuid) -> u64 {
    let (hi, lo) = id.as_u64_pair();
    hi ^ lo.rotate_left(17)
}

/// What each partition already holds, read from the insert audit in ClickHouse.
#[derive(Clone)]
pub struct ClickHousePosition {
    client: Client,
}

impl std::fmt::Debug for ClickHousePosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClickHousePosition")
    }
}

impl ClickHousePosition {
    /// Offsets `>= from` of `topic`/`partition` already stored, with the fingerprint of the event
    /// stored there.
    pub async fn stored_from(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
    ) -> Result<pingan_pipeline::stage::StoredOffsets, clickhouse::error::Error> {
        let prefix = format!("pingan-{topic}-{partition}-");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let running: u64 = self
                .client
                .query(PARTITION_RUNNING_SQL)
                .bind(&prefix)
                .fetch_one()
                .await?;
            if running == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let stored = stored_from(
            &self.client,
            topic,
            partition,
            u64::try_from(from).unwrap_or(0),
        )
        .await?;
        Ok(stored
            .into_iter()
            .map(|r| (r.kafka_offset as i64, Some(fingerprint(&r.event_id))))
            .collect())
    }
}

impl ResumePosition for ClickHousePosition {
    fn stored_from<'a>(
        &'a self,
        topic: &'a str,
        partition: i32,
        from: i64,
    ) -> BoxFuture<'a, Result<pingan_pipeline::stage::StoredOffsets, String>> {
        Box::pin(async move {
            self.stored_from(topic, partition, from)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn fingerprint(&self, payload: &[u8]) -> Option<u64> {
        /// Only the id is read; the rest of the enriched event is skipped.
        #[derive(serde::Deserialize)]
        struct Id {
            event_id: uuid::Uuid,
        }
        serde_json::from_slice::<Id>(payload)
            .ok()
            .map(|i| fingerprint(&i.event_id))
    }
}

/// The sink.
pub struct ClickHouseSink {
    client: Client,
    metrics: AggregatorMetrics,
    insert_timeout: Duration,
    /// `Some(true)` when the server supports `insert_deduplication_token` (22.2+); detected lazily.
    dedup_tokens: Option<bool>,
    /// The current batch's progress, so a retry sends only what is not stored.
    progress: Option<Progress>,
    /// Records of the last written batch refused for an `event_id` conflict.
    refused: Vec<Refused>,
    /// Offsets of a rejected batch that an earlier month's INSERT of it had already stored. The
    /// runner then writes the batch again in parts (split to find the bad records); rows in
    /// here are skipped instead of stored twice.
    settled: Option<(BatchId, BTreeSet<u64>)>,
}

impl std::fmt::Debug for ClickHouseSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseSink")
            .field("dedup_tokens", &self.dedup_tokens)
            .finish()
    }
}

impl ClickHouseSink {
    /// A sink writing to `settings.database`.
    pub async fn new(
        settings: &ClickHouseConfig,
        config: &AggregatorConfig,
        metrics: AggregatorMetrics,
    ) -> ClickHouseSink {
        ClickHouseSink {
            client: pingan_warehouse::client(settings, pingan_warehouse::Role::Writer),
            metrics,
            insert_timeout: Duration::from_millis(config.insert_timeout_ms),
            dedup_tokens: None,
            progress: None,
            refused: Vec::new(),
            settled: None,
        }
    }

    /// The items of a batch that must not be stored: their `event_id` already belongs to a
    /// stored record, or to an earlier item of the batch, with a different body.
    async fn conflicts(
        &self,
        items: &[Outbound<IncidentRow>],
    ) -> Result<Vec<Refused>, clickhouse::error::Error> {
        let mut ids: Vec<uuid::Uuid> = items.iter().map(|o| o.value.event_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut first = identity::stored(&self.client, &ids).await?;
        let mut refused = Vec::new();
        for (index, o) in items.iter().enumerate() {
            let mine = Identity::of(&o.value);
            match first.get(&mine.event_id) {
                Some(owner) if *owner != mine => refused.push(Refused {
                    index,
                    code: "event_id_conflict",
                    message: format!(
                        "event_id {} already belongs to a stored {} record with a different body; the first record stays",
                        mine.event_id, owner.source
                    ),
                }),
                Some(_) => {}
                None => {
                    first.insert(mine.event_id, mine);
                }
            }
        }
        Ok(refused)
    }

    /// The resume-position reader for the source.
    pub fn position(&self) -> ClickHousePosition {
        ClickHousePosition {
            client: self.client.clone(),
        }
    }

    /// A client for readiness probes.
    pub fn probe_client(&self) -> Client {
        self.client.clone()
    }

    async fn detect_capabilities(&mut self) -> bool {
        if let Some(v) = self.dedup_tokens {
            return v;
        }
        match self
            .client
            .query("SELECT version()")
            .fetch_one::<String>()
            .await
        {
            Ok(v) => {
                let mut parts = v.split('.').filter_map(|p| p.parse::<u32>().ok());
                let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
                let supported = (major, minor) >= (22, 2);
                info!(server_version = %v, dedup_tokens = supported, "clickhouse capabilities");
                self.dedup_tokens = Some(supported);
                supported
            }
            Err(_) => false,
        }
    }

    async fn insert(
        &mut self,
        query_id: &str,
        rows: &[&IncidentRow],
    ) -> Result<(), clickhouse::error::Error> {
        let tokens = self.detect_capabilities().await;
        let mut insert = self
            .client
            .insert::<IncidentRow>("incidents")
            .await?
            .with_timeouts(Some(self.insert_timeout), Some(self.insert_timeout))
            .with_setting("query_id", query_id);
        if tokens {
            insert = insert.with_setting("insert_deduplication_token", query_id);
        }
        for r in rows {
            insert.write(*r).await?;
        }
        insert.end().await
    }

    /// After an ambiguous failure: wait for the query to finish on the server, then look whether
    /// the rows of this (batch, month) are stored.
    async fn resolve(
        &self,
        query_id: &str,
        id: &BatchId,
        rows: &[&IncidentRow],
    ) -> Result<Landed, clickhouse::error::Error> {
        let deadline = Instant::now() + self.insert_timeout + Duration::from_secs(5);
        loop {
            let running: u64 = self
                .client
                .query(RUNNING_SQL)
                .bind(query_id)
                .fetch_one()
                .await?;
            if running == 0 {
                break;
            }
            if Instant::now() > deadline {
                return Ok(Landed::StillRunning);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The audit table is not folded by ReplacingMergeTree, so it counts every row of the
        // block even when the block held two records of one event.
        let first = rows.iter().map(|r| r.kafka_offset).min().unwrap_or(0);
        let last = rows.iter().map(|r| r.kafka_offset).max().unwrap_or(0);
        let stored = stored_in_range(&self.client, &id.topic, id.partition, first, last).await?;
        // The same offset and the same event: another record at this offset is a re-created
        // topic's predecessor, not this insert.
        let landed = rows.iter().all(|r| {
            stored.contains(&StoredRecord {
                kafka_offset: r.kafka_offset,
                event_id: r.event_id,
            })
        });
        Ok(if landed { Landed::Yes } else { Landed::No })
    }

    fn outcome(&self, outcome: &str) {
        self.metrics
            .insert_outcomes
            .with_label_values(&[outcome])
            .inc();
    }
}

/// Whether an INSERT whose reply was lost is stored.
enum Landed {
    Yes,
    No,
    /// The server still runs it: the answer is not known yet.
    StillRunning,
}

/// How far the sink got with one batch, kept across the runner's retries of it. (Retries of a
/// batch whose data was rejected come as parts with ids of their own: see `settled`.)
struct Progress {
    id: BatchId,
    /// Months written.
    done: BTreeSet<u32>,
    /// Months whose last INSERT failed without a known outcome. The server may have committed
    /// the part and died before replying, so the next attempt looks in the audit before sending
    /// the rows again: 18.16 has no insert deduplication tokens to absorb a second send.
    unsure: BTreeSet<u32>,
    /// Items refused for an `event_id` conflict, decided once per batch (a retry must not find
    /// the batch's own first attempt and decide differently).
    refused: Vec<Refused>,
}

impl Sink for ClickHouseSink {
    type Item = IncidentRow;
    type Error = SinkError;

    async fn write(
        &mut self,
        id: &BatchId,
        items: &[Outbound<IncidentRow>],
    ) -> Result<Ack, SinkError> {
        self.refused.clear();
        // A part of a rejected batch (same partition, inside its offsets) skips what the batch
        // had stored; any other batch ends that.
        let settled = match &self.settled {
            Some((b, offsets))
                if b.topic == id.topic
                    && b.partition == id.partition
                    && b.first <= id.first
                    && id.last <= b.last =>
            {
                Some(offsets)
            }
            _ => None,
        };
        let settled = settled.cloned();
        let inside_settled = settled.is_some();
        if !inside_settled {
            self.settled = None;
        }
        let mut p = match self.progress.take() {
            Some(p) if &p.id == id => p,
            _ => {
                let refused = self.conflicts(items).await.map_err(SinkError::Insert)?;
                self.metrics.event_id_conflicts.inc_by(refused.len() as u64);
                for r in &refused {
                    warn!(batch = %id, index = r.index, "{}", r.message);
                }
                Progress {
                    id: id.clone(),
                    done: BTreeSet::new(),
                    unsure: BTreeSet::new(),
                    refused,
                }
            }
        };
        let mut months: BTreeMap<u32, Vec<&IncidentRow>> = BTreeMap::new();
        for (i, o) in items.iter().enumerate() {
            if settled
                .as_ref()
                .is_some_and(|s| s.contains(&o.value.kafka_offset))
                || p.refused.iter().any(|r| r.index == i)
            {
                continue;
            }
            months.entry(o.value.month()).or_default().push(&o.value);
        }
        for (month, rows) in &months {
            if p.done.contains(month) {
                continue;
            }
            let query_id = format!("pingan-{id}-{month}");
            if p.unsure.contains(month) {
                match self.resolve(&query_id, id, rows).await {
                    Ok(Landed::Yes) => {
                        self.outcome("resolved_present");
                        info!(batch = %id, month, "an earlier attempt had landed; not sending it again");
                        p.unsure.remove(month);
                        p.done.insert(*month);
                        continue;
                    }
                    Ok(Landed::No) => {
                        self.outcome("resolved_absent");
                        p.unsure.remove(month);
                    }
                    Ok(Landed::StillRunning) => {
                        self.progress = Some(p);
                        return Err(SinkError::Unresolved(query_id));
                    }
                    Err(e) => {
                        self.progress = Some(p);
                        return Err(SinkError::Insert(e));
                    }
                }
            }
            let started = Instant::now();
            match self.insert(&query_id, rows).await {
                Ok(()) => self.outcome("ok"),
                Err(e) if is_data_rejection(&e) => {
                    self.outcome("rejected");
                    let stored: BTreeSet<u64> = months
                        .iter()
                        .filter(|(m, _)| p.done.contains(m))
                        .flat_map(|(_, rows)| rows.iter().map(|r| r.kafka_offset))
                        .collect();
                    if !stored.is_empty() {
                        match &mut self.settled {
                            // A part of the batch being split: the whole batch's set grows.
                            Some((_, offsets)) if inside_settled => offsets.extend(stored),
                            _ => self.settled = Some((id.clone(), stored)),
                        }
                    }
                    return Err(SinkError::Rejected(e.to_string()));
                }
                Err(e) => {
                    warn!(batch = %id, month, error = %e, "insert failed; checking whether it landed");
                    if let Ok(Landed::Yes) = self.resolve(&query_id, id, rows).await {
                        self.outcome("resolved_present");
                        info!(batch = %id, month, "insert had landed despite the error");
                    } else {
                        self.outcome("failed");
                        p.unsure.insert(*month);
                        self.progress = Some(p);
                        return Err(SinkError::Insert(e));
                    }
                }
            }
            self.metrics
                .insert_seconds
                .observe(started.elapsed().as_secs_f64());
            self.metrics.batch_rows.observe(rows.len() as f64);
            self.metrics.rows_written.inc_by(rows.len() as u64);
            p.done.insert(*month);
        }
        self.refused = p.refused;
        Ok(Ack::StoreOffsets)
    }

    fn take_refused(&mut self) -> Vec<Refused> {
        std::mem::take(&mut self.refused)
    }
}
