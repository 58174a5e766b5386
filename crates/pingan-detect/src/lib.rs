//! Spike detection for pingan: per area × type series on tumbling windows, a seasonal
//! baseline, surveillance statistics, and alerts with a stable key.
//!
//! The crate is pure — no async runtime, Kafka, ClickHouse or clock — so every rule here is
//! tested without infrastructure, and the evaluation harness (`examples/evaluate/`) replays
//! weeks of simulated traffic through exactly the code the aggregator runs.
//!
//! # Model
//! * A **series** is an area ([`SeriesLevel`]: town, station, compound, H3 res-8 cell) × a
//!   category or a subtype ([`SeriesKey`]). Repeat calls are never counted, and one reporter
//!   counts at most `max_per_reporter` times per window.
//! * Each series is counted in tumbling **windows** aligned in Asia/Shanghai
//!   ([`WindowLen`]: 15 min, 1 h, 1 day, 1 week). A window is judged every time it receives
//!   events — early while open — against an expectation frozen when it is first judged, so a
//!   strong spike alerts before the window ends and the verdict only ever rises.
//! * The **baseline** is an hour-of-week profile over the trailing weeks, shrunk towards the
//!   series' hour-of-day and flat rates when sparse ([`baseline`](crate::BaselineInfo)).
//! * **Methods**: negative-binomial (Gamma–Poisson predictive) or Poisson tails for sparse
//!   windows, ESSENCE-style EWMA or EARS C2 for dense ones, or a Poisson CUSUM over hourly or
//!   daily bins that accumulates evidence across windows ([`MethodChoice`], chosen per area
//!   level). Levels need minimum counts, a p-value (for the CUSUM: a likelihood-ratio
//!   threshold) and an observed/expected ratio ([`LevelGates`]).
//! * **Alerts** have a stable key (series × window) and a deterministic id; an escalation
//!   re-emits the same key with a higher version; the [`AlertBook`] makes replays emit
//!   nothing twice. Noise control: cooldown per town × category, grouping of sibling
//!   compounds/cells into one town alert, reporter cap.
//!
//! # Use from the aggregator
//! ```
//! use pingan_detect::{DetectConfig, DetectEvent, Detector, DetectArea};
//! let mut d = Detector::new(DetectConfig::default())?;
//! let t = chrono::DateTime::parse_from_rfc3339("2024-03-04T10:00:00+08:00").unwrap();
//! // At start-up: seed hourly history for the hours before `d.replay_from(now)` …
//! let area = DetectArea { town_code: Some("310112102".into()), ..DetectArea::default() };
//! d.seed_hour(&area, "DSP", "DSP_TOURIST", t - chrono::Duration::days(7), 3)?;
//! // … then ingest stored events, and evaluate on every tick.
//! let ev = DetectEvent {
//!     event_id: 1,
//!     event_time: t,
//!     area,
//!     category: "DSP".into(),
//!     subtype: "DSP_TOURIST".into(),
//!     repeat: false,
//!     reporter_key: None,
//!     keywords: vec!["门票".into()],
//! };
//! d.ingest(&ev)?;
//! let evaluation = d.evaluate(t);
//! for alert in evaluation.alerts {
//!     // persist (ClickHouse `alerts`, ReplacingMergeTree by alert_key, version) and publish
//!     println!("{}", alert.summary());
//! }
//! # Ok::<(), pingan_detect::DetectError>(())
//! ```
#![deny(missing_docs)]

mod alert;
mod baseline;
mod config;
mod cusum;
mod detector;
mod error;
mod key;
mod method;
pub mod stats;

pub use alert::{AlertBook, AlertRecord, Count, GroupMember, Suppression, SuppressionReason};
pub use baseline::BaselineInfo;
pub use config::{DetectConfig, LevelGate, LevelGates, MethodChoice};
pub use cusum::CusumInfo;
pub use detector::{DetectArea, DetectEvent, Detector, DetectorStats, Evaluation, Ingested};
pub use error::DetectError;
pub use key::{AlertKey, Level, SeriesKey, SeriesLevel, WindowLen};
pub use method::Method;
