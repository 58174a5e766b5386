//! The ClickHouse warehouse: everything about the `pingan` database that more than one service
//! knows.
//!
//! The aggregator writes it and the query service reads it; both depend on this crate as peers
//! and neither knows the other. Whatever names a table or a column, builds a client, or is SQL
//! that either service sends lives here, so a schema change is made in one place and both
//! compatibility checks (ClickHouse 18.16 in `tests/tests/smoke.rs`, a current release through
//! chDB in `tests/chdb/`) run every statement from [`templates::all`].
//!
//! # Layout
//! * [`mod@client`]: the one client builder, with settings per [`client::Role`].
//! * [`migrate`]: the numbered migrations of `schemas/clickhouse/` and the dimension tables.
//! * [`schema`]: table and column names: the live tables and rollups ([`schema::LiveTable`]),
//!   the sealed-day tables ([`schema::SealedTable`]), their dimensions ([`schema::Dim`]) and H3
//!   resolutions ([`schema::H3Res`]).
//! * [`rows`]: the row types written ([`rows::IncidentRow`], [`rows::AlertRow`]).
//! * [`audit`]: the insert audit the aggregator's exactly-once sink reads.
//! * [`sealed`]: sealing closed days into plain counts (writer) and splitting a range into
//!   sealed days and the rest (reader).
//! * [`retention`]: dropping month partitions past the retention limit.
//! * [`alerts`]: what spike detection reads and writes.
//! * [`identity`]: what is stored under an `event_id` (first record wins).
//! * [`access`]: the access log of incident-level reads (query service).
//! * [`dead_letters`]: the dead-letter store (written by the aggregator's dead-letter stage,
//!   read and replayed by `pingan dlq`).
//! * [`templates`]: every fixed statement with sample parameters, for the compatibility checks.
#![deny(missing_docs)]

pub mod access;
pub mod alerts;
pub mod audit;
pub mod client;
pub mod cluster;
pub mod dead_letters;
pub mod identity;
pub mod migrate;
pub mod retention;
pub mod rows;
pub mod schema;
pub mod sealed;
pub mod templates;

pub use client::{Role, client};
