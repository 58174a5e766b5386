//! The access log (`access_log`, `schemas/clickhouse/0010_access_log.sql`): who read
//! incident-level data through the query API. The query service writes one row per such read
//! before answering and lists them for admins.

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};

/// Table name.
pub const TABLE: &str = "access_log";

/// One row of `access_log`, in column order.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct AccessLogRow {
    /// When, seconds since the epoch (the column is `DateTime('Asia/Shanghai')`).
    pub at: u32,
    /// The read token's name (never its secret).
    pub principal: String,
    /// `viewer`, `analyst` or `admin`.
    pub role: String,
    /// The token's area scope: `*` or an area code.
    pub scope: String,
    /// Endpoint path, e.g. `/v1/incidents`.
    pub endpoint: String,
    /// The request's query string (its filters).
    pub filters: String,
    /// Rows answered.
    pub row_count: u64,
}

/// The newest entries at or after a time: `?` = Unix seconds, then the limit.
pub const LIST_SQL: &str = "SELECT toUInt32(at) AS at, principal, role, scope, endpoint, filters, row_count \
     FROM access_log WHERE at >= toDateTime(?) ORDER BY at DESC, principal LIMIT ?";

/// Appends one entry.
pub async fn append(client: &Client, row: &AccessLogRow) -> clickhouse::error::Result<()> {
    let mut insert = client.insert::<AccessLogRow>(TABLE).await?;
    insert.write(row).await?;
    insert.end().await
}

/// The newest `limit` entries at or after `since` (Unix seconds).
pub async fn list(
    client: &Client,
    since: i64,
    limit: u64,
) -> clickhouse::error::Result<Vec<AccessLogRow>> {
    client
        .query(LIST_SQL)
        .bind(since)
        .bind(limit)
        .fetch_all::<AccessLogRow>()
        .await
}

pub(crate) fn templates() -> Vec<(&'static str, String)> {
    vec![(
        "serve_access_log",
        LIST_SQL
            .replacen('?', "1577808000", 1)
            .replacen('?', "500", 1),
    )]
}
