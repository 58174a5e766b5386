//! Spike alerting inside the aggregator: stored events feed a [`Detector`]; alerts go to the
//! ClickHouse `alerts` table, the `pingan.alerts.v1` topic, an optional signed webhook and
//! `pingan_alerts_*` metrics.
//!
//! Only events that ClickHouse acknowledged are fed (the sink forwards them after each durable
//! INSERT), and the detector runs on event time, so what it decides does not depend on when the
//! process started. At start-up it restores the alerts it had emitted (from their stored JSON),
//! seeds hourly history from `incidents`, and replays the stored events of the still-open windows;
//! the alert book then refuses to emit a key twice, across restarts and across replays. The
//! same rebuild runs whenever detection falls behind the sink ([`DetectFeed`]): the sink never
//! waits for detection, and detection never loses an event ClickHouse has.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use clickhouse::Client;
use hmac::{Hmac, Mac};
use pingan_detect::{AlertBook, AlertRecord, DetectArea, DetectConfig, DetectEvent, Detector};
use pingan_pipeline::batch::BatchId;
use pingan_pipeline::producer::{OutRecord, Publisher};
use pingan_pipeline::stage::{AfterDurable, Outbound};
use pingan_runtime::config::Sensitive;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use pingan_pipeline::backoff::Backoff;
use pingan_warehouse::alerts::{REPLAY_SQL, RESTORE_SQL, SEED_SQL, SeedRow};
use pingan_warehouse::rows::{AlertRow, IncidentRow};

/// `[aggregator.alerts]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Run spike detection.
    pub enabled: bool,
    /// Topic for alerts.
    pub topic: String,
    /// How often open windows are evaluated (ms).
    pub tick_ms: u64,
    /// POST every alert (JSON) here; empty disables.
    pub webhook_url: String,
    /// HMAC-SHA256 key for the `X-Pingan-Signature` header of webhook bodies.
    pub webhook_secret: Sensitive,
    /// Stored events that may wait for the detector. When detection falls further behind
    /// (draining a backlog), the sink stops handing it events and the detector re-reads what
    /// ClickHouse stored instead, so neither memory nor the sink's pace depends on detection.
    pub queue_events: usize,
    /// The detector's own settings (`[aggregator.alerts.detect]`: methods, windows, gates,
    /// minimum counts, linking, noise control); unset fields keep the evaluated defaults.
    pub detect: DetectConfig,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            enabled: true,
            topic: pingan_domain::events::TOPIC_ALERTS.into(),
            tick_ms: 5_000,
            webhook_url: String::new(),
            webhook_secret: Sensitive::default(),
            queue_events: 16_000,
            detect: DetectConfig::default(),
        }
    }
}

/// `pingan_alerts_*` metrics.
#[derive(Debug, Clone)]
pub struct AlertMetrics {
    /// `pingan_alerts_emitted_total{level,area_level}`.
    pub emitted: IntCounterVec,
    /// `pingan_alerts_suppressed_total{reason}`.
    pub suppressed: IntCounterVec,
    /// `pingan_alerts_webhook_failures_total`.
    pub webhook_failures: IntCounterVec,
    /// `pingan_alerts_series`: series the detector tracks.
    pub series: IntGauge,
    /// `pingan_alerts_resyncs_total`: times detection fell behind the sink and rebuilt itself
    /// from ClickHouse.
    pub resyncs: IntCounter,
    /// `pingan_alerts_detector_bytes{part}`: the detector's estimated memory by part
    /// (`Detector::memory_census`), refreshed about once a minute.
    pub detector_bytes: IntGaugeVec,
}

impl AlertMetrics {
    /// Creates and registers the metrics (once per registry).
    pub fn register(registry: &Registry) -> prometheus::Result<AlertMetrics> {
        let emitted = IntCounterVec::new(
            Opts::new(
                "pingan_alerts_emitted_total",
                "Alerts emitted (new or escalated).",
            ),
            &["level", "area_level"],
        )?;
        let suppressed = IntCounterVec::new(
            Opts::new(
                "pingan_alerts_suppressed_total",
                "Would-be alerts held back by noise control, by reason (cooldown, \
                 single_reporter, insufficient_history, nested).",
            ),
            &["reason"],
        )?;
        let webhook_failures = IntCounterVec::new(
            Opts::new(
                "pingan_alerts_webhook_failures_total",
                "Webhook deliveries that failed after retries.",
            ),
            &["kind"],
        )?;
        let series = IntGauge::new(
            "pingan_alerts_series",
            "Series tracked by the spike detector.",
        )?;
        registry.register(Box::new(emitted.clone()))?;
        registry.register(Box::new(suppressed.clone()))?;
        registry.register(Box::new(webhook_failures.clone()))?;
        let resyncs = IntCounter::new(
            "pingan_alerts_resyncs_total",
            "Times spike detection fell behind the sink and re-read stored events from ClickHouse.",
        )?;
        let detector_bytes = IntGaugeVec::new(
            Opts::new(
                "pingan_alerts_detector_bytes",
                "Estimated memory of the spike detector by part (profiles, history, windows …), \
                 refreshed about once a minute.",
            ),
            &["part"],
        )?;
        registry.register(Box::new(series.clone()))?;
        registry.register(Box::new(resyncs.clone()))?;
        registry.register(Box::new(detector_bytes.clone()))?;
        Ok(AlertMetrics {
            emitted,
            suppressed,
            webhook_failures,
            resyncs,
            series,
            detector_bytes,
        })
    }
}

/// The sink's hand-off of stored events to spike detection: a bounded queue that never holds
/// the sink back. When it is full the events are not queued but `behind` is raised, and the
/// detector rebuilds itself from ClickHouse (where those events already are) once it gets to
/// it. ClickHouse is the source of truth; the queue is only the fast path.
#[derive(Debug, Clone)]
pub struct DetectFeed {
    tx: mpsc::Sender<Vec<DetectEvent>>,
    chunk: usize,
    behind: Arc<AtomicBool>,
}

impl AfterDurable<IncidentRow> for DetectFeed {
    fn stored(&mut self, _: &BatchId, items: &[Outbound<IncidentRow>]) {
        // `false` means detection has stopped; the stage goes on storing.
        let _ = self.offer(items);
    }
}

impl DetectFeed {
    /// A feed holding at most about `queue_events` events, and its receiving end.
    pub fn new(queue_events: usize) -> (DetectFeed, mpsc::Receiver<Vec<DetectEvent>>) {
        let chunk = queue_events.clamp(1, 2_000);
        let (tx, rx) = mpsc::channel((queue_events / chunk).max(1));
        let feed = DetectFeed {
            tx,
            chunk,
            behind: Arc::default(),
        };
        (feed, rx)
    }

    /// Offers durably stored rows to detection. `false` once detection has stopped.
    pub fn offer(&self, rows: &[Outbound<IncidentRow>]) -> bool {
        self.offer_by(rows, |o| detect_event(&o.value))
    }

    fn offer_by<T>(&self, rows: &[T], event: impl Fn(&T) -> DetectEvent) -> bool {
        if self.behind.load(Ordering::Acquire) {
            // Detection will re-read these from ClickHouse anyway.
            return !self.tx.is_closed();
        }
        for chunk in rows.chunks(self.chunk) {
            let events = chunk.iter().map(&event).collect();
            match self.tx.try_send(events) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.behind.store(true, Ordering::Release);
                    return true;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
        true
    }

    /// Whether events were left out since the last call (and clears it).
    fn take_behind(&self) -> bool {
        self.behind.swap(false, Ordering::AcqRel)
    }
}

/// Builds the detector input for a stored row.
pub fn detect_event(row: &IncidentRow) -> DetectEvent {
    DetectEvent {
        event_id: row.event_id.as_u128(),
        event_time: pingan_domain::time::shanghai()
            .timestamp_opt(i64::from(row.event_time), 0)
            .single()
            .unwrap_or_else(|| {
                pingan_domain::time::shanghai()
                    .from_utc_datetime(&chrono::DateTime::<Utc>::UNIX_EPOCH.naive_utc())
            }),
        area: DetectArea {
            town_code: row.town_code.clone(),
            station_code: row.station_code.clone(),
            compound_id: row.compound_id.clone(),
            h3_ring: ring(row.h3_r8.as_deref()),
            h3_r8: row.h3_r8.clone(),
            // The classifier already located the call in a POI footprint (`poi_at`).
            poi_id: row.poi_id.clone(),
            link_cells: scene_cells(row.lat, row.lon),
        },
        category: row.category.clone(),
        subtype: row.subtype.clone(),
        repeat: row.repeat_of.is_some(),
        reporter_key: row.plate_id.clone(),
        keywords: row.keywords.clone(),
    }
}

/// The res-10 cell (about 65 m across) of a location, then its six neighbours: the
/// neighbourhood where another caller's report of the same scene subtype is the same incident.
fn scene_cells(lat: Option<f64>, lon: Option<f64>) -> Vec<String> {
    let (Some(lat), Some(lon)) = (lat, lon) else {
        return Vec::new();
    };
    let Ok(ll) = h3o::LatLng::new(lat, lon) else {
        return Vec::new();
    };
    let own = ll.to_cell(h3o::Resolution::Ten);
    std::iter::once(own)
        .chain(own.grid_disk::<Vec<_>>(1).into_iter().filter(|c| *c != own))
        .map(|c| c.to_string())
        .collect()
}

/// The k = 1 disk of a res-8 cell: the centres of the disks (`h3_r8_k1` series) the event
/// belongs to. Empty for an unknown or unparsable cell.
fn ring(cell: Option<&str>) -> Vec<String> {
    cell.and_then(|c| c.parse::<h3o::CellIndex>().ok())
        .map(|c| {
            c.grid_disk::<Vec<_>>(1)
                .into_iter()
                .map(|n| n.to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn secs(t: DateTime<FixedOffset>) -> u32 {
    u32::try_from(t.timestamp()).unwrap_or(0)
}

fn alert_row(a: &AlertRecord) -> AlertRow {
    AlertRow {
        id: a.id.clone(),
        alert_key: a.alert_key.clone(),
        area_level: a.area_level.as_str().to_owned(),
        area_code: a.area_code.clone(),
        town_code: a.town_code.clone(),
        category: a.category.clone(),
        subtype: a.subtype.clone(),
        window_start: secs(a.window_start),
        window_end: secs(a.window_end),
        observed: a.observed,
        expected: a.expected,
        baseline: serde_json::to_string(&a.baseline).unwrap_or_default(),
        score: a.score,
        p_value: a.p_value,
        level: a.level.as_str().to_owned(),
        method: a.method.as_str().to_owned(),
        contributors: a.contributors(),
        created_at: secs(a.created_at),
        updated_at: secs(a.updated_at),
        version: a.version,
        record: serde_json::to_string(a).unwrap_or_default(),
    }
}

/// Stored events per step of the start-up replay.
const REPLAY_CHUNK: usize = 2_000;
fn opt(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

/// Restores the alert book, seeds history and replays open windows.
async fn prepare(
    client: &Client,
    cfg: &DetectConfig,
    now: DateTime<FixedOffset>,
) -> Result<(Box<Detector>, Option<DateTime<FixedOffset>>), String> {
    let probe = Detector::new(cfg.clone()).map_err(|e| e.to_string())?;
    let replay_from = probe.replay_from(now);
    let history_from = replay_from - probe.history_needed();
    let mut book = AlertBook::default();
    let records: Vec<String> = client
        .query(RESTORE_SQL)
        .bind(replay_from.timestamp())
        .fetch_all()
        .await
        .map_err(|e| e.to_string())?;
    for r in &records {
        if let Ok(rec) = serde_json::from_str::<AlertRecord>(r) {
            let _ = book.restore(&rec);
        }
    }
    let hours: Vec<SeedRow> = client
        .query(SEED_SQL)
        .bind(history_from.timestamp())
        .bind(replay_from.timestamp())
        .fetch_all()
        .await
        .map_err(|e| e.to_string())?;
    let seeded = hours.len();
    // Seeding weeks of hours is CPU work: not on the async workers, where the sink runs.
    let cfg = cfg.clone();
    let det = tokio::task::spawn_blocking(move || -> Result<Detector, String> {
        let mut det = Detector::with_book(cfg, book).map_err(|e| e.to_string())?;
        let tz = pingan_domain::time::shanghai();
        for (town, station, compound, cell, poi, category, subtype, hour, n) in hours {
            let area = DetectArea {
                town_code: opt(town),
                station_code: opt(station),
                compound_id: opt(compound),
                h3_ring: ring(Some(cell.as_str())),
                h3_r8: opt(cell),
                poi_id: opt(poi),
                link_cells: Vec::new(),
            };
            if let Some(h) = tz.timestamp_opt(i64::from(hour), 0).single() {
                let _ = det.seed_hour(&area, &category, &subtype, h, n);
            }
        }
        Ok(det)
    })
    .await
    .map_err(|e| e.to_string())??;
    // The week so far, streamed in chunks: a rebuild after a backlog holds one chunk of rows
    // at a time, not the backlog.
    let mut det = Box::new(det);
    let mut cursor = client
        .query(REPLAY_SQL)
        .bind(replay_from.timestamp())
        .fetch::<IncidentRow>()
        .map_err(|e| e.to_string())?;
    let mut replayed = 0usize;
    let mut newest = None;
    loop {
        let mut chunk = Vec::with_capacity(REPLAY_CHUNK);
        while chunk.len() < REPLAY_CHUNK {
            match cursor.next().await.map_err(|e| e.to_string())? {
                Some(row) => chunk.push(detect_event(&row)),
                None => break,
            }
        }
        let last = chunk.len() < REPLAY_CHUNK;
        replayed += chunk.len();
        newest = newest.max(chunk.iter().map(|e| e.event_time).max());
        det = off_runtime(det, move |d| {
            for ev in &chunk {
                let _ = d.ingest(ev);
            }
        })
        .await
        .ok_or("spike detection panicked while replaying")?
        .0;
        if last {
            break;
        }
    }
    info!(
        restored_alerts = records.len(),
        seeded_hours = seeded,
        replayed_events = replayed,
        "spike detector ready"
    );
    Ok((det, newest))
}

/// Runs the alerting task until `shutdown` or until the sink's sender is dropped.
pub async fn run(
    config: AlertingConfig,
    client: Client,
    publisher: Publisher,
    metrics: AlertMetrics,
    feed: DetectFeed,
    mut events: mpsc::Receiver<Vec<DetectEvent>>,
    shutdown: CancellationToken,
) {
    let Some((mut det, mut watermark)) = rebuild(&client, &config.detect, &shutdown).await else {
        return;
    };
    let http = (!config.webhook_url.is_empty()).then(WebhookClient::new);
    let mut tick = tokio::time::interval(Duration::from_millis(config.tick_ms.max(100)));
    let mut census_due = Instant::now();
    loop {
        if feed.take_behind() {
            // The sink left events out rather than wait. Whatever is still queued is in
            // ClickHouse too; the rebuild reads all of it, and events queued after this point
            // are fed on top (the detector ignores ids it has seen).
            metrics.resyncs.inc();
            warn!("spike detection fell behind the sink; rebuilding it from the stored events");
            // The rebuild replays the week so far: never hold two detectors at once.
            drop(det);
            while events.try_recv().is_ok() {}
            let Some((d, newest)) = rebuild(&client, &config.detect, &shutdown).await else {
                return;
            };
            det = d;
            watermark = watermark.max(newest);
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            batch = events.recv() => {
                let Some(batch) = batch else { break };
                watermark = watermark.max(batch.iter().map(|e| e.event_time).max());
                // Counting a chunk is CPU work (tens of series per event): off the async
                // workers, so the sink and the source keep their latency.
                let Some((d, ())) = off_runtime(det, move |d| {
                    for ev in &batch {
                        let _ = d.ingest(ev);
                    }
                })
                .await
                else {
                    return;
                };
                det = d;
            }
            _ = tick.tick() => {
                let Some(w) = watermark else { continue };
                // The census walks every window and series: once a minute, not every tick.
                let census = Instant::now() >= census_due;
                let Some((d, (evaluation, parts))) = off_runtime(det, move |d| {
                    (d.evaluate(w), census.then(|| d.memory_census()))
                })
                .await
                else {
                    return;
                };
                det = d;
                metrics.series.set(i64::try_from(det.stats().series).unwrap_or(i64::MAX));
                for (part, bytes) in parts.unwrap_or_default() {
                    metrics
                        .detector_bytes
                        .with_label_values(&[part])
                        .set(i64::try_from(bytes).unwrap_or(i64::MAX));
                }
                if census {
                    census_due = Instant::now() + Duration::from_secs(60);
                }
                for s in &evaluation.suppressed {
                    metrics.suppressed.with_label_values(&[s.reason.as_str()]).inc();
                }
                for alert in evaluation.alerts {
                    emit(&config, &client, &publisher, &metrics, http.as_ref(), &alert, &shutdown).await;
                }
            }
        }
    }
}

/// The detector as of what ClickHouse holds now (retried until ClickHouse answers), and the
/// newest event time it replayed. `None` on shutdown.
async fn rebuild(
    client: &Client,
    cfg: &DetectConfig,
    shutdown: &CancellationToken,
) -> Option<(Box<Detector>, Option<DateTime<FixedOffset>>)> {
    loop {
        let now = Utc::now().with_timezone(&pingan_domain::time::shanghai());
        match prepare(client, cfg, now).await {
            Ok(x) => return Some(x),
            Err(e) => {
                warn!(error = %e, "cannot prepare the spike detector, retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        }
    }
}

/// Runs `f` on the detector on tokio's blocking pool and hands the detector back. `None` when
/// `f` panicked (a detector bug): alerting stops with an error in the log rather than taking
/// the aggregator down, and the events stay stored for the next start's replay.
async fn off_runtime<T: Send + 'static>(
    mut det: Box<Detector>,
    f: impl FnOnce(&mut Detector) -> T + Send + 'static,
) -> Option<(Box<Detector>, T)> {
    match tokio::task::spawn_blocking(move || {
        let out = f(&mut det);
        (det, out)
    })
    .await
    {
        Ok(x) => Some(x),
        Err(e) => {
            error!(error = %e, "spike detection failed; alerting stops until the aggregator restarts");
            None
        }
    }
}

async fn emit(
    config: &AlertingConfig,
    client: &Client,
    publisher: &Publisher,
    metrics: &AlertMetrics,
    http: Option<&WebhookClient>,
    alert: &AlertRecord,
    shutdown: &CancellationToken,
) {
    info!(alert = %alert.summary(), version = alert.version, "spike alert");
    metrics
        .emitted
        .with_label_values(&[alert.level.as_str(), alert.area_level.as_str()])
        .inc();
    let row = alert_row(alert);
    // ClickHouse first: it is what `/v1/alerts` and a restart read. Retried until it lands, so
    // an alert is never published without being recorded.
    let backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    for attempt in 0.. {
        let r = async {
            let mut ins = client.insert::<AlertRow>("alerts").await?;
            ins.write(&row).await?;
            ins.end().await
        }
        .await;
        match r {
            Ok(()) => break,
            Err(e) => {
                warn!(error = %e, "cannot store alert, retrying");
                if !backoff.sleep(attempt, shutdown).await {
                    return;
                }
            }
        }
    }
    let body = serde_json::to_vec(&alert_json(alert)).unwrap_or_default();
    if let Err(e) = publisher
        .publish([OutRecord {
            topic: &config.topic,
            key: Some(alert.alert_key.as_bytes()),
            payload: &body,
            headers: &[],
        }])
        .await
    {
        warn!(error = %e, "cannot publish alert to kafka");
    }
    if let Some(http) = http
        && !config.webhook_url.is_empty()
    {
        let sig = sign(config.webhook_secret.expose().as_bytes(), &body);
        let mut delivered = false;
        let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(8));
        for attempt in 0..5u32 {
            match http.post(&config.webhook_url, &body, &sig).await {
                Ok(status) if (200..300).contains(&status) => {
                    delivered = true;
                    break;
                }
                Ok(status) => warn!(status, attempt, "webhook rejected the alert"),
                Err(e) => warn!(error = %e, attempt, "webhook delivery failed"),
            }
            if !backoff.sleep(attempt, shutdown).await {
                break;
            }
        }
        if !delivered {
            metrics
                .webhook_failures
                .with_label_values(&["delivery"])
                .inc();
        }
    }
}

/// The alert as published: the contract's `/v1/alerts` fields plus the explanation.
pub fn alert_json(a: &AlertRecord) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "alert_key": a.alert_key,
        "area_level": a.area_level.as_str(),
        "area_code": a.area_code,
        "town_code": a.town_code,
        "category": a.category,
        "subtype": a.subtype,
        "window_start": a.window_start.to_rfc3339(),
        "window_end": a.window_end.to_rfc3339(),
        "observed": a.observed,
        "expected": a.expected,
        "score": a.score,
        "p_value": a.p_value,
        "level": a.level.as_str(),
        "method": a.method.as_str(),
        "baseline": a.baseline,
        "contributors": a.contributors(),
        "summary": a.summary(),
        "created_at": a.created_at.to_rfc3339(),
        "updated_at": a.updated_at.to_rfc3339(),
        "version": a.version,
    })
}

/// `sha256=<hex>` HMAC of the body, for the `X-Pingan-Signature` header.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        unreachable!("HMAC-SHA256 accepts keys of any length")
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A minimal HTTP/1 client for the alert webhook (plain `http://`; put a TLS-terminating proxy in
/// front for `https://` receivers).
#[derive(Clone)]
pub struct WebhookClient {
    inner: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<hyper::body::Bytes>,
    >,
}

impl std::fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookClient")
    }
}

impl WebhookClient {
    /// A client with default settings.
    pub fn new() -> WebhookClient {
        WebhookClient {
            inner:
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build(hyper_util::client::legacy::connect::HttpConnector::new()),
        }
    }

    /// POSTs `body` as JSON with the signature header; returns the status code.
    pub async fn post(&self, url: &str, body: &[u8], signature: &str) -> Result<u16, String> {
        let req = hyper::Request::post(url)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("x-pingan-signature", signature)
            .body(http_body_util::Full::new(
                hyper::body::Bytes::copy_from_slice(body),
            ))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(Duration::from_secs(10), self.inner.request(req))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        Ok(resp.status().as_u16())
    }
}

impl Default for WebhookClient {
    fn default() -> Self {
        WebhookClient::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scene_cells_are_the_own_res10_cell_then_its_neighbours() {
        // 七宝老街.
        let cells = scene_cells(Some(31.1553), Some(121.3505));
        assert_eq!(cells.len(), 7);
        let own: h3o::CellIndex = cells[0].parse().unwrap();
        assert_eq!(own.resolution(), h3o::Resolution::Ten);
        let ll = h3o::LatLng::new(31.1553, 121.3505).unwrap();
        assert_eq!(own, ll.to_cell(h3o::Resolution::Ten));
        for c in &cells[1..] {
            let n: h3o::CellIndex = c.parse().unwrap();
            assert_eq!(own.grid_distance(n).unwrap(), 1);
        }
        assert!(scene_cells(None, Some(121.35)).is_empty());
        assert!(scene_cells(Some(f64::NAN), Some(121.35)).is_empty());
    }

    #[test]
    fn a_full_feed_raises_behind_instead_of_waiting() {
        let (feed, mut rx) = DetectFeed::new(1);
        let event = |i: &u128| DetectEvent {
            event_id: *i,
            event_time: Utc::now().with_timezone(&pingan_domain::time::shanghai()),
            area: DetectArea::default(),
            category: "PUB".into(),
            subtype: "PUB_FIGHT".into(),
            repeat: false,
            reporter_key: None,
            keywords: Vec::new(),
        };
        // One-event queue: the first chunk fits, the second finds it full and is left out.
        assert!(feed.offer_by(&[1, 2, 3], event));
        // While behind, nothing more is queued: detection will re-read it from ClickHouse.
        assert!(feed.offer_by(&[4, 5], event));
        assert_eq!(rx.try_recv().unwrap()[0].event_id, 1);
        assert!(rx.try_recv().is_err());
        assert!(feed.take_behind(), "the sink left events out");
        assert!(!feed.take_behind(), "taking the flag clears it");
        assert!(feed.offer_by(&[6], event));
        assert_eq!(rx.try_recv().unwrap()[0].event_id, 6);
        drop(rx);
        assert!(!feed.offer_by(&[7], event), "detection stopped");
    }
}
