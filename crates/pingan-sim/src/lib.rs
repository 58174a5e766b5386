//! pingan-sim: seeded, realistic synthetic traffic for Minhang's 110 desk and QR doorplates.
//!
//! * [`generator`]: the event process. About 1,300 events a day at the 2019 level with the
//!   district's daily rhythm (peak 15–16 h, trough 03–06 h) and weekly rhythm, a 虹桥 nightlife
//!   stream peaking 22–23 h around 吴中路/老外街, the category mix of real 110 data, places in
//!   compounds, on roads and at POIs, ~15% QR doorplate reports with valid signatures, repeat
//!   callers, and spike injection. Deterministic for a seed; every event carries its intended
//!   [`generator::Label`].
//! * [`texts`]: Chinese descriptions from several hundred template shapes.
//! * [`rates`], [`mix`] (crate-private tables), [`place`]: the volume, subtype and place models.
//! * [`spike`]: spike specs and presets.
//! * [`target`]: senders to the ingest HTTP API (batches of 100, retries with the same event ids)
//!   or straight to the raw Kafka topics.
//! * [`ledger`]: one JSON line per delivery attempt, for the end-to-end checker.
//! * [`run`]: pacing (speed-up, fixed rate, as fast as possible), batching, progress.
//!
//! The binary's `pingan simulate` and `pingan demo` are thin wrappers over [`run::run`].
#![deny(missing_docs)]

pub mod generator;
pub mod ledger;
mod mix;
pub mod place;
pub mod rates;
pub mod run;
pub mod spike;
pub mod target;
pub mod texts;

pub use generator::{Body, Generator, GeneratorSettings, Label, SimEvent, Stream};
pub use ledger::{Delivery, Ledger, LedgerEntry};
pub use run::{Pacing, Progress, RunOptions, RunReport};
pub use spike::Spike;
pub use target::{HttpTarget, KafkaTarget, SendRetry, Target};

#[cfg(test)]
mod tests;
