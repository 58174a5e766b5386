//! Process plumbing shared by every pingan service: layered configuration, telemetry,
//! cooperative shutdown and the operations endpoints (`/healthz`, `/readyz`, `/metrics`).
//!
//! It is deliberately small and knows nothing about Kafka, ClickHouse or the domain, so each
//! service library stays `run(config, shutdown)` and the binary only dispatches.
//!
//! # Layout
//! * [`config`]: defaults → TOML file → `PINGAN__SECTION__KEY` env vars, with every problem listed;
//!   [`config::Sensitive`] for secrets; [`config::ClickHouseConfig`] shared by two services.
//! * [`duration`]: the one parser of human durations (`250ms`, `5s`, `2m`, `1h`, `2d`).
//! * [`telemetry`]: `tracing` subscriber (pretty or JSON).
//! * [`shutdown`]: SIGINT/SIGTERM → `CancellationToken`.
//! * [`admin`]: health, readiness and Prometheus metrics routes.
#![deny(missing_docs)]

pub mod admin;
pub mod config;
pub mod duration;
pub mod shutdown;
pub mod telemetry;
