//! Every metric of the ingest service, named `pingan_ingest_*`. Nothing else in the crate
//! constructs a metric; handlers call the typed helpers below.
//!
//! Labels are bounded: `route` is the matched route template (never the raw path, which holds a
//! plate id), `status` a status code, `reason` a stable error code, `topic` one of two topics.

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// Requests by route and status code.
pub const REQUESTS_TOTAL: &str = "pingan_ingest_requests_total";
/// Request duration by route.
pub const REQUEST_DURATION: &str = "pingan_ingest_request_duration_seconds";
/// Records acknowledged by Kafka, by topic.
pub const RECORDS_PRODUCED_TOTAL: &str = "pingan_ingest_records_produced_total";
/// Failed publishes by topic and error code.
pub const PRODUCE_ERRORS_TOTAL: &str = "pingan_ingest_produce_errors_total";
/// Time from enqueueing a request's records to the last delivery report, by topic.
pub const PRODUCE_DURATION: &str = "pingan_ingest_produce_duration_seconds";
/// Rejected requests by route and reason code.
pub const REJECTS_TOTAL: &str = "pingan_ingest_rejected_requests_total";
/// Invalid fields reported in 422 answers, by field error code.
pub const FIELD_ERRORS_TOTAL: &str = "pingan_ingest_invalid_fields_total";
/// Requests being handled right now.
pub const IN_FLIGHT: &str = "pingan_ingest_in_flight_requests";
/// Records queued in the producer or in flight to the broker.
pub const QUEUE_DEPTH: &str = "pingan_ingest_producer_queue_depth_records";

/// The ingest metrics, registered in one [`Registry`].
#[derive(Debug, Clone)]
pub struct IngestMetrics {
    requests: IntCounterVec,
    request_duration: HistogramVec,
    produced: IntCounterVec,
    produce_errors: IntCounterVec,
    produce_duration: HistogramVec,
    rejects: IntCounterVec,
    field_errors: IntCounterVec,
    in_flight: IntGauge,
    queue_depth: IntGauge,
}

/// The metrics could not be registered (a name clash in the registry).
#[derive(Debug, thiserror::Error)]
#[error("cannot register ingest metrics")]
pub struct MetricsError(#[source] pub prometheus::Error);

impl IngestMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<IngestMetrics, MetricsError> {
        Self::build(registry).map_err(MetricsError)
    }

    fn build(registry: &Registry) -> Result<IngestMetrics, prometheus::Error> {
        let latency = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let m = IngestMetrics {
            requests: IntCounterVec::new(
                Opts::new(REQUESTS_TOTAL, "HTTP requests by route and status"),
                &["route", "status"],
            )?,
            request_duration: HistogramVec::new(
                HistogramOpts::new(REQUEST_DURATION, "HTTP request duration by route")
                    .buckets(latency.clone()),
                &["route"],
            )?,
            produced: IntCounterVec::new(
                Opts::new(RECORDS_PRODUCED_TOTAL, "Records acknowledged by Kafka"),
                &["topic"],
            )?,
            produce_errors: IntCounterVec::new(
                Opts::new(
                    PRODUCE_ERRORS_TOTAL,
                    "Publishes that Kafka did not acknowledge, by error code",
                ),
                &["topic", "code"],
            )?,
            produce_duration: HistogramVec::new(
                HistogramOpts::new(
                    PRODUCE_DURATION,
                    "Time until every delivery report of a request arrived",
                )
                .buckets(latency),
                &["topic"],
            )?,
            rejects: IntCounterVec::new(
                Opts::new(
                    REJECTS_TOTAL,
                    "Requests answered with an error, by reason code",
                ),
                &["route", "reason"],
            )?,
            field_errors: IntCounterVec::new(
                Opts::new(
                    FIELD_ERRORS_TOTAL,
                    "Invalid fields in rejected bodies, by error code",
                ),
                &["code"],
            )?,
            in_flight: IntGauge::new(IN_FLIGHT, "Requests being handled")?,
            queue_depth: IntGauge::new(
                QUEUE_DEPTH,
                "Records queued in the producer or in flight to the broker",
            )?,
        };
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.request_duration.clone()))?;
        registry.register(Box::new(m.produced.clone()))?;
        registry.register(Box::new(m.produce_errors.clone()))?;
        registry.register(Box::new(m.produce_duration.clone()))?;
        registry.register(Box::new(m.rejects.clone()))?;
        registry.register(Box::new(m.field_errors.clone()))?;
        registry.register(Box::new(m.in_flight.clone()))?;
        registry.register(Box::new(m.queue_depth.clone()))?;
        Ok(m)
    }

    /// Records a finished request.
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        self.requests
            .with_label_values(&[route, status.as_str()])
            .inc();
        self.request_duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// Records a rejected request.
    pub fn reject(&self, route: &str, reason: &str) {
        self.rejects.with_label_values(&[route, reason]).inc();
    }

    /// Records the field error codes of a 422 answer.
    pub fn field_error(&self, code: &str) {
        self.field_errors.with_label_values(&[code]).inc();
    }

    /// Records a successful publish of `records` records.
    pub fn produced(&self, topic: &str, records: usize, elapsed: Duration) {
        self.produced
            .with_label_values(&[topic])
            .inc_by(records as u64);
        self.produce_duration
            .with_label_values(&[topic])
            .observe(elapsed.as_secs_f64());
    }

    /// Records a failed publish.
    pub fn produce_failed(&self, topic: &str, code: &str, elapsed: Duration) {
        self.produce_errors.with_label_values(&[topic, code]).inc();
        self.produce_duration
            .with_label_values(&[topic])
            .observe(elapsed.as_secs_f64());
    }

    /// A request started.
    pub fn request_started(&self) {
        self.in_flight.inc();
    }

    /// A request finished.
    pub fn request_finished(&self) {
        self.in_flight.dec();
    }

    /// Sets the producer queue depth.
    pub fn set_queue_depth(&self, records: i64) {
        self.queue_depth.set(records);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_register_once_and_render() {
        let r = Registry::new();
        let m = IngestMetrics::register(&r).unwrap();
        m.request("/v1/calls", 202, Duration::from_millis(3));
        m.reject("/v1/calls", "payload_too_large");
        m.produced("pingan.call110.v1", 5, Duration::from_millis(2));
        let names: Vec<String> = r.gather().iter().map(|f| f.name().to_owned()).collect();
        assert!(
            names.iter().all(|n| n.starts_with("pingan_ingest_")),
            "{names:?}"
        );
        assert!(
            IngestMetrics::register(&r).is_err(),
            "a second registration clashes"
        );
    }
}
