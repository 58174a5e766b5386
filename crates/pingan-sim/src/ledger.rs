//! The delivery ledger (RELIABILITY.md §5.0): one JSON line per event per delivery attempt, with
//! the generator's intended label, so a checker can prove no loss (every acked id is stored), no
//! invention (everything stored was sent) and no double counting.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::generator::SimEvent;

/// What became of one delivery attempt (the ledger's `outcome` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// 202 (or the Kafka delivery report): durable.
    Acked,
    /// A 4xx that retrying cannot fix (validation, signature): never stored.
    Rejected,
    /// 503, 429, timeout or connection error: retried with the same event id.
    Retry,
    /// Retries exhausted or the run stopped: the event may or may not be stored.
    GaveUp,
}

/// One ledger line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Event id.
    pub event_id: Uuid,
    /// `call` or `qr`.
    pub source: String,
    /// Intended subtype.
    pub subtype: String,
    /// Intended category.
    pub category: String,
    /// Intended town.
    pub town_code: String,
    /// Spike name, for injected events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spike: Option<String>,
    /// Earlier event of a repeat call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_of: Option<Uuid>,
    /// The event time sent (a QR report's event time is set by ingest on receipt).
    pub event_time: DateTime<FixedOffset>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// HTTP status, when there was an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Whether this attempt was acknowledged.
    pub acked: bool,
    /// What became of the attempt.
    pub outcome: Delivery,
    /// When the request was sent.
    pub t_send: DateTime<Utc>,
    /// When the answer arrived.
    pub t_done: DateTime<Utc>,
    /// Error code or message for failed attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl LedgerEntry {
    /// The entry for one attempt at `ev`.
    pub fn new(
        ev: &SimEvent,
        attempt: u32,
        status: Option<u16>,
        outcome: Delivery,
        t_send: DateTime<Utc>,
        error: Option<String>,
    ) -> LedgerEntry {
        LedgerEntry {
            event_id: ev.event_id,
            source: ev.source().to_owned(),
            subtype: ev.label.subtype.clone(),
            category: ev.label.category.clone(),
            town_code: ev.label.town_code.clone(),
            spike: ev.label.spike.clone(),
            repeat_of: ev.label.repeat_of,
            event_time: ev.event_time,
            attempt,
            status,
            acked: outcome == Delivery::Acked,
            outcome,
            t_send,
            t_done: Utc::now(),
            error,
        }
    }
}

/// Where ledger lines go: a JSON-lines file, and optionally memory (tests, benchmarks).
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    inner: Arc<Mutex<LedgerInner>>,
}

#[derive(Debug, Default)]
struct LedgerInner {
    file: Option<BufWriter<File>>,
    keep: bool,
    entries: Vec<LedgerEntry>,
    error: Option<String>,
}

impl Ledger {
    /// A ledger writing JSON lines to `path` (created or truncated).
    pub fn to_file(path: &Path) -> std::io::Result<Ledger> {
        let file = BufWriter::new(File::create(path)?);
        Ok(Ledger {
            inner: Arc::new(Mutex::new(LedgerInner {
                file: Some(file),
                ..LedgerInner::default()
            })),
        })
    }

    /// A ledger that keeps every entry in memory.
    pub fn in_memory() -> Ledger {
        Ledger {
            inner: Arc::new(Mutex::new(LedgerInner {
                keep: true,
                ..LedgerInner::default()
            })),
        }
    }

    /// Records `entries`. A write error is remembered and reported by [`Ledger::finish`] rather
    /// than stopping the traffic.
    pub fn record(&self, entries: impl IntoIterator<Item = LedgerEntry>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        for e in entries {
            if let Some(f) = inner.file.as_mut() {
                let line = serde_json::to_string(&e).map_err(|err| err.to_string());
                let res = line.and_then(|l| writeln!(f, "{l}").map_err(|err| err.to_string()));
                if let Err(err) = res {
                    inner.error.get_or_insert(err);
                }
            }
            if inner.keep {
                inner.entries.push(e);
            }
        }
    }

    /// The entries kept in memory.
    pub fn entries(&self) -> Vec<LedgerEntry> {
        self.inner
            .lock()
            .map(|i| i.entries.clone())
            .unwrap_or_default()
    }

    /// Flushes the file; the first write error, if any.
    pub fn finish(&self) -> Result<(), String> {
        let Ok(mut inner) = self.inner.lock() else {
            return Err("ledger lock poisoned".into());
        };
        if let Some(f) = inner.file.as_mut()
            && let Err(e) = f.flush()
        {
            inner.error.get_or_insert(e.to_string());
        }
        inner.error.clone().map_or(Ok(()), Err)
    }
}

/// Reads a ledger file back.
pub fn read(path: &Path) -> std::io::Result<Vec<LedgerEntry>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })
        .collect()
}
