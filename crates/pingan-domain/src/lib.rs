//! The pingan domain: events, taxonomy, routing, areas and the rules that tie them together.
//!
//! This crate is pure — no async runtime, Kafka, ClickHouse or HTTP — so every rule here is tested
//! without infrastructure and the services stay thin.
//!
//! # Layout
//! * [`events`]: the wire contract (call input, QR report input, records, enriched event) and
//!   strict validation that reports every problem at once.
//! * [`taxonomy`]: 10 categories, 62 subtypes, 14 departments (`schemas/taxonomy.tsv`,
//!   `schemas/departments.tsv`).
//! * [`routing`]: subtype + location → responsible departments (`schemas/routing.tsv`).
//! * [`area`]: the Minhang area hierarchy, reference data, geometry and doorplates.
//! * [`pii`]: phone normalisation, keyed hashing, masking, free-text redaction.
//! * [`qr`]: signed doorplate QR codes.
//! * [`time`]: Asia/Shanghai rules (night window, morning peak, hour windows).
//! * [`schema`]: JSON Schemas of the wire types (`schemas/events/`).
#![deny(missing_docs)]

pub mod area;
pub mod events;
pub mod pii;
pub mod qr;
pub mod routing;
pub mod schema;
pub mod taxonomy;
pub mod time;
