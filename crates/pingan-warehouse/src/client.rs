//! The one ClickHouse client builder.
//!
//! Rows go over HTTP as RowBinary with schema validation off: 18.16 lacks
//! `RowBinaryWithNamesAndTypes`, so the row types in [`crate::rows`] must match the column order
//! of their INSERTs (a test per row type checks it against the migrations).

use clickhouse::Client;
use pingan_runtime::config::ClickHouseConfig;

/// What a client is for; each role gets the settings it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Schema changes (`pingan migrate`).
    Migrate,
    /// The aggregator: INSERTs, the audit lookups, sealing, retention, detection's reads.
    Writer,
    /// The query service: bounded reads. A query may run 30 s at most, and a large GROUP BY
    /// spills to disk instead of failing on a small memory limit.
    Reader,
}

/// A client of `settings.database` for `role`.
pub fn client(settings: &ClickHouseConfig, role: Role) -> Client {
    let mut c = Client::default()
        .with_url(&settings.url)
        .with_database(&settings.database)
        .with_user(&settings.user)
        .with_validation(false);
    if !settings.password.is_empty() {
        c = c.with_password(settings.password.expose());
    }
    match role {
        Role::Migrate | Role::Writer => c,
        Role::Reader => c
            .with_setting("max_execution_time", "30")
            .with_setting("max_bytes_before_external_group_by", "400000000"),
    }
}
