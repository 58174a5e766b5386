//! The classifier as a pipeline [`Transform`]: glue between the runner and [`Enricher`].

use pingan_domain::events::EnrichedEvent;
use pingan_pipeline::stage::{Inbound, Outbound, Outcome, RecordError, Transform};

use crate::enrich::{Enricher, RawEvent};
use crate::metrics::ClassifierMetrics;

/// The classifier stage.
#[derive(Debug)]
pub struct ClassifyStage {
    enricher: Enricher,
    metrics: ClassifierMetrics,
}

impl ClassifyStage {
    /// A stage around `enricher`.
    pub fn new(enricher: Enricher, metrics: ClassifierMetrics) -> ClassifyStage {
        ClassifyStage { enricher, metrics }
    }
}

impl Transform for ClassifyStage {
    type In = RawEvent;
    type Out = EnrichedEvent;

    fn transform(
        &mut self,
        input: Inbound<RawEvent>,
    ) -> Result<Outcome<EnrichedEvent>, RecordError> {
        let (event, notes) = self.enricher.enrich(&input.value);
        self.metrics
            .events
            .with_label_values(&[event.source.as_str(), &event.category])
            .inc();
        if notes.unknown_area {
            self.metrics.unknown_area.inc();
        }
        for h in notes.rejected_hints {
            self.metrics.rejected_hints.with_label_values(&[h]).inc();
        }
        if notes.repeat {
            self.metrics.repeats.inc();
        }
        // Keyed by town: one area's events stay on one partition, so whichever aggregator owns
        // that partition sees the area's whole stream (spike detection) in order. Duplicates of
        // an event classify identically and land on the same partition.
        let key = Some(
            event
                .area
                .town_code
                .clone()
                .unwrap_or_else(|| "unknown".to_owned())
                .into_bytes(),
        );
        Ok(Outcome::Emit(Outbound {
            source: input.meta,
            key,
            value: event,
        }))
    }
}
