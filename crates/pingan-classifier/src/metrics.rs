//! `pingan_classifier_*` metrics.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// Classifier-specific metrics (the standard stage set comes from the pipeline runner).
#[derive(Debug, Clone)]
pub struct ClassifierMetrics {
    /// `pingan_classifier_events_total{source,category}`.
    pub events: IntCounterVec,
    /// `pingan_classifier_unknown_area_total`: events without a town.
    pub unknown_area: IntCounter,
    /// `pingan_classifier_rejected_hints_total{hint}`: CAD hints not in the reference data.
    pub rejected_hints: IntCounterVec,
    /// `pingan_classifier_repeat_calls_total`.
    pub repeats: IntCounter,
}

impl ClassifierMetrics {
    /// Creates and registers the metrics (once per registry).
    pub fn register(registry: &Registry) -> prometheus::Result<ClassifierMetrics> {
        let events = IntCounterVec::new(
            Opts::new("pingan_classifier_events_total", "Events classified."),
            &["source", "category"],
        )?;
        let unknown_area = IntCounter::new(
            "pingan_classifier_unknown_area_total",
            "Events whose town could not be resolved.",
        )?;
        let rejected_hints = IntCounterVec::new(
            Opts::new(
                "pingan_classifier_rejected_hints_total",
                "Location hints not in the reference data.",
            ),
            &["hint"],
        )?;
        let repeats = IntCounter::new(
            "pingan_classifier_repeat_calls_total",
            "Events linked to an earlier report.",
        )?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(unknown_area.clone()))?;
        registry.register(Box::new(rejected_hints.clone()))?;
        registry.register(Box::new(repeats.clone()))?;
        Ok(ClassifierMetrics {
            events,
            unknown_area,
            rejected_hints,
            repeats,
        })
    }
}
