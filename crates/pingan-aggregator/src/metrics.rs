//! `pingan_aggregator_*` metrics.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Aggregator-specific metrics (the standard stage set comes from the pipeline runner).
#[derive(Debug, Clone)]
pub struct AggregatorMetrics {
    /// `pingan_aggregator_rows_written_total`.
    pub rows_written: IntCounter,
    /// `pingan_aggregator_insert_seconds`.
    pub insert_seconds: Histogram,
    /// `pingan_aggregator_insert_outcomes_total{outcome}`: ok, rejected, failed (outcome unknown,
    /// retried), resolved_present (a lost reply whose rows were stored), resolved_absent (they
    /// were not, so they are sent again).
    pub insert_outcomes: IntCounterVec,
    /// `pingan_aggregator_batch_rows`.
    pub batch_rows: Histogram,
    /// `pingan_event_id_conflicts_total`: records refused because their `event_id` already
    /// belongs to a stored record with another body (dead-lettered as `event_id_conflict`).
    pub event_id_conflicts: IntCounter,
}

impl AggregatorMetrics {
    /// Creates and registers the metrics (once per registry).
    pub fn register(registry: &Registry) -> prometheus::Result<AggregatorMetrics> {
        let rows_written = IntCounter::new(
            "pingan_aggregator_rows_written_total",
            "Rows inserted into ClickHouse.",
        )?;
        let insert_seconds = Histogram::with_opts(
            HistogramOpts::new("pingan_aggregator_insert_seconds", "Latency of one INSERT.")
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
        )?;
        let insert_outcomes = IntCounterVec::new(
            Opts::new(
                "pingan_aggregator_insert_outcomes_total",
                "INSERT outcomes.",
            ),
            &["outcome"],
        )?;
        let batch_rows = Histogram::with_opts(
            HistogramOpts::new("pingan_aggregator_batch_rows", "Rows per INSERT.")
                .buckets(vec![1.0, 10.0, 100.0, 1000.0, 10000.0, 50000.0]),
        )?;
        registry.register(Box::new(rows_written.clone()))?;
        registry.register(Box::new(insert_seconds.clone()))?;
        registry.register(Box::new(insert_outcomes.clone()))?;
        let event_id_conflicts = IntCounter::new(
            "pingan_event_id_conflicts_total",
            "Records refused because their event_id already belongs to a stored record with a \
             different body (the first record stays; the later one is dead-lettered as \
             event_id_conflict).",
        )?;
        registry.register(Box::new(batch_rows.clone()))?;
        registry.register(Box::new(event_id_conflicts.clone()))?;
        Ok(AggregatorMetrics {
            rows_written,
            insert_seconds,
            insert_outcomes,
            batch_rows,
            event_id_conflicts,
        })
    }
}

/// Metrics of the maintenance task (sealing closed days, retention).
#[derive(Debug, Clone)]
pub struct MaintenanceMetrics {
    /// `pingan_aggregator_sealed_days_total`.
    pub sealed_days: IntCounter,
    /// `pingan_aggregator_unsealed_days`: closed days read from `counts_hour` after the last pass.
    pub unsealed_days: IntGauge,
    /// `pingan_aggregator_seal_seconds`: time to seal one day.
    pub seal_seconds: Histogram,
    /// `pingan_aggregator_partitions_dropped_total`.
    pub partitions_dropped: IntCounter,
    /// `pingan_aggregator_maintenance_errors_total`.
    pub errors: IntCounter,
}

impl MaintenanceMetrics {
    /// Creates and registers the metrics (once per registry).
    pub fn register(registry: &Registry) -> prometheus::Result<MaintenanceMetrics> {
        let m = MaintenanceMetrics {
            sealed_days: IntCounter::new(
                "pingan_aggregator_sealed_days_total",
                "Days sealed (or re-sealed after late events) into counts_day.",
            )?,
            unsealed_days: IntGauge::new(
                "pingan_aggregator_unsealed_days",
                "Closed days with writes that are not sealed yet (read from counts_hour).",
            )?,
            seal_seconds: Histogram::with_opts(
                HistogramOpts::new("pingan_aggregator_seal_seconds", "Time to seal one day.")
                    .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            )?,
            partitions_dropped: IntCounter::new(
                "pingan_aggregator_partitions_dropped_total",
                "Month partitions dropped by retention.",
            )?,
            errors: IntCounter::new(
                "pingan_aggregator_maintenance_errors_total",
                "Maintenance passes that failed (retried at the next interval).",
            )?,
        };
        registry.register(Box::new(m.sealed_days.clone()))?;
        registry.register(Box::new(m.unsealed_days.clone()))?;
        registry.register(Box::new(m.seal_seconds.clone()))?;
        registry.register(Box::new(m.partitions_dropped.clone()))?;
        registry.register(Box::new(m.errors.clone()))?;
        Ok(m)
    }
}
