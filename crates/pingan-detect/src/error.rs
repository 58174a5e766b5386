//! Errors of the detector.

use chrono::{DateTime, FixedOffset};

use crate::key::WindowLen;

/// What the detector refuses to do.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The configuration is invalid; every problem is listed.
    #[error("invalid detector configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    /// A window start that is not aligned to its window length.
    #[error("window start {start} is not aligned to a {window} window")]
    UnalignedWindow {
        /// Window length.
        window: WindowLen,
        /// The offending start.
        start: DateTime<FixedOffset>,
    },
    /// History seeded for an hour that does not start on the hour.
    #[error("history hour {0} does not start on the hour")]
    UnalignedHour(DateTime<FixedOffset>),
    /// History seeded for an hour at or after the first live event: it would be counted twice.
    #[error("history hour {hour} overlaps live events ingested from {live_from}")]
    SeedOverlapsLive {
        /// The seeded hour.
        hour: DateTime<FixedOffset>,
        /// Start of the hour of the first live event.
        live_from: DateTime<FixedOffset>,
    },
    /// An event or alert record with a field the detector cannot use.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Field name.
        field: &'static str,
        /// Why.
        reason: String,
    },
}
