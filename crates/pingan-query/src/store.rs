//! Where the query API reads from: the [`IncidentStore`] trait, its ClickHouse implementation
//! and an in-memory implementation for tests.
//!
//! Handlers hold an `Arc<dyn IncidentStore>`, so every endpoint can be exercised through axum's
//! `oneshot` against [`memory::MemoryStore`] with no server running. The ClickHouse store reads
//! the rollups (`counts_minute`, `counts_hour`, `cells_hour`, `terms_day`) whenever the request
//! allows it and falls back to the raw `incidents` table otherwise; every count is a distinct
//! count of `event_id`. Whole days the aggregator has sealed are summed from the plain daily
//! counts instead ([`sealed`]), which keeps year-long counts interactive.

pub mod clickhouse;
pub mod memory;
pub mod sealed;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::model::{
    AccessEntry, Alert, CellCount, CellsSpec, CountsResult, CountsSpec, Incident, IncidentsSpec,
    LiveCounts, TermCounts, TermsSpec,
};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or did not answer in time.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The query exceeded the server's memory or time limits (e.g. exact distinct counts over
    /// tens of millions of events on a server with a small `max_memory_usage`).
    #[error("query too expensive: {0}")]
    TooExpensive(String),
    /// The database rejected or failed the query.
    #[error("query failed: {0}")]
    Query(String),
}

/// The result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Read access to incidents, rollups and alerts.
pub trait IncidentStore: Send + Sync + 'static {
    /// Distinct-event counts, grouped and bucketed; returns at most `spec.max_rows + 1` rows.
    fn counts<'a>(&'a self, spec: &'a CountsSpec) -> BoxFuture<'a, StoreResult<CountsResult>>;
    /// Distinct events per H3 cell, largest first.
    fn cells<'a>(&'a self, spec: &'a CellsSpec) -> BoxFuture<'a, StoreResult<Vec<CellCount>>>;
    /// Events per term; `only` restricts to the given terms, `limit` caps the list.
    fn terms<'a>(
        &'a self,
        spec: &'a TermsSpec,
        only: Option<&'a [String]>,
        limit: usize,
    ) -> BoxFuture<'a, StoreResult<TermCounts>>;
    /// Newest incidents first.
    fn incidents<'a>(
        &'a self,
        spec: &'a IncidentsSpec,
    ) -> BoxFuture<'a, StoreResult<Vec<Incident>>>;
    /// Incidents stored at or after `stored_at` (Unix seconds), newest first.
    fn incidents_stored_since(
        &self,
        stored_at: i64,
        limit: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<Incident>>>;
    /// Alerts updated at or after `since`, newest first.
    fn alerts(&self, since: DateTime<Utc>, limit: usize) -> BoxFuture<'_, StoreResult<Vec<Alert>>>;
    /// Today's counters for the live feed.
    fn live_counts(
        &self,
        today_start: DateTime<Utc>,
        hour_ago: DateTime<Utc>,
    ) -> BoxFuture<'_, StoreResult<LiveCounts>>;
    /// Whether the store answers (readiness).
    fn ping(&self) -> BoxFuture<'_, StoreResult<()>>;
    /// Records an incident-level read in the access log.
    fn log_access<'a>(&'a self, entry: &'a AccessEntry) -> BoxFuture<'a, StoreResult<()>>;
    /// Access-log entries at or after `since`, newest first.
    fn access_log(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<AccessEntry>>>;
}
