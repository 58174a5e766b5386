//! The standard stage metrics, emitted per batch by the runner only, so every stage is comparable.

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Metrics of every stage, labelled by `stage`.
#[derive(Debug, Clone)]
pub struct StageMetrics {
    /// `pingan_stage_received_events_total{stage}`.
    pub received: IntCounterVec,
    /// `pingan_stage_emitted_events_total{stage}`.
    pub emitted: IntCounterVec,
    /// `pingan_stage_discarded_events_total{stage,reason}`.
    pub discarded: IntCounterVec,
    /// `pingan_stage_dead_letters_total{stage,code}`.
    pub dead_letters: IntCounterVec,
    /// `pingan_stage_sink_retries_total{stage,code}`.
    pub retries: IntCounterVec,
    /// Rejected sink writes split in halves to find the bad records.
    pub split_writes: IntCounterVec,
    /// `pingan_stage_batch_events{stage}`.
    pub batch_size: HistogramVec,
    /// `pingan_stage_sink_write_seconds{stage}`.
    pub write_seconds: HistogramVec,
    /// `pingan_stage_committed_offset{stage,topic,partition}`: last stored offset.
    pub stored_offset: IntGaugeVec,
    /// `pingan_stage_lag_events{stage,topic,partition}`: high watermark minus stored offset.
    pub lag: IntGaugeVec,
    /// `pingan_stage_batch_age_seconds{stage}`: the age at which batches are cut now (adaptive).
    pub batch_age: GaugeVec,
    /// `pingan_stage_position_mismatches_total{stage,topic}`: redelivered records the sink holds
    /// another record under the same offset for (a re-created topic, a broker that lost its
    /// log); they are written, not skipped.
    pub position_mismatches: IntCounterVec,
    /// `pingan_stage_offset_gaps_total{stage,topic}`: offsets skipped between two records of a
    /// partition (deleted by retention before they were read, or lost).
    pub offset_gaps: IntCounterVec,
    /// `pingan_stage_fenced_batches_total{stage}`: batches dropped unwritten (or whose retries
    /// stopped) because their partition was revoked meanwhile; the new owner redelivers them.
    pub fenced_batches: IntCounterVec,
}

impl StageMetrics {
    /// Creates the metrics and registers them in `registry`. Call once per registry and clone the
    /// result into every stage of the process; the `stage` label tells them apart.
    pub fn register(registry: &Registry) -> prometheus::Result<StageMetrics> {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone())).map(|()| c)
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGaugeVec::new(Opts::new(name, help), &["stage", "topic", "partition"])?;
            registry.register(Box::new(g.clone())).map(|()| g)
        };
        let hist = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), &["stage"])?;
            registry.register(Box::new(h.clone())).map(|()| h)
        };
        Ok(StageMetrics {
            received: counter(
                "pingan_stage_received_events_total",
                "Records received from Kafka.",
                &["stage"],
            )?,
            emitted: counter(
                "pingan_stage_emitted_events_total",
                "Records written by the sink.",
                &["stage"],
            )?,
            discarded: counter(
                "pingan_stage_discarded_events_total",
                "Records deliberately dropped.",
                &["stage", "reason"],
            )?,
            dead_letters: counter(
                "pingan_stage_dead_letters_total",
                "Records sent to the dead-letter topic.",
                &["stage", "code"],
            )?,
            retries: counter(
                "pingan_stage_sink_retries_total",
                "Sink write retries.",
                &["stage", "code"],
            )?,
            split_writes: counter(
                "pingan_stage_split_writes_total",
                "Batches (or parts of one) whose data the sink rejected, split in halves to find the bad records.",
                &["stage"],
            )?,
            batch_size: hist(
                "pingan_stage_batch_events",
                "Records per batch.",
                vec![1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0],
            )?,
            write_seconds: hist(
                "pingan_stage_sink_write_seconds",
                "Sink write latency per batch.",
                vec![
                    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            )?,
            stored_offset: gauge(
                "pingan_stage_stored_offset",
                "Last offset stored for commit.",
            )?,
            lag: gauge(
                "pingan_stage_lag_events",
                "High watermark minus the next offset to process.",
            )?,
            position_mismatches: counter(
                "pingan_stage_position_mismatches_total",
                "Redelivered records whose offset the sink holds for another record (re-created topic or lost log).",
                &["stage", "topic"],
            )?,
            offset_gaps: counter(
                "pingan_stage_offset_gaps_total",
                "Offsets skipped between two consecutive records of a partition.",
                &["stage", "topic"],
            )?,
            fenced_batches: counter(
                "pingan_stage_fenced_batches_total",
                "Batches dropped unwritten because their partition was revoked meanwhile.",
                &["stage"],
            )?,
            batch_age: {
                let g = GaugeVec::new(
                    Opts::new(
                        "pingan_stage_batch_age_seconds",
                        "Age at which a partition's batch is cut now (grows with busy partitions).",
                    ),
                    &["stage"],
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
        })
    }
}
