//! Real-infrastructure tests: `make test` runs them against the broker and the ClickHouse server
//! of `make up`. One binary, one module per area.
#![cfg(feature = "integration")]
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    unreachable_pub
)]

mod access;
mod aggregator;
mod alerting;
mod classifier;
mod dlq;
mod e2e;
mod identity;
mod ingest;
mod query;
mod smoke;
