//! The rows the aggregator writes: `incidents` (`schemas/clickhouse/0001_incidents.sql`) and
//! `alerts` (`0003_alerts_dead_letters.sql`), field for field. Rows are sent as RowBinary by
//! column name, so the field order here is the column order of the INSERT, not necessarily of
//! the table.

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One incident row.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct IncidentRow {
    /// Stable event id.
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    /// `call` or `qr`.
    pub source: String,
    /// CAD number or doorplate id, '' when none.
    pub source_ref: String,
    /// Event time, seconds since the epoch (the column is `DateTime('Asia/Shanghai')`).
    pub event_time: u32,
    /// Category code.
    pub category: String,
    /// Subtype code.
    pub subtype: String,
    /// Primary department.
    pub department: Option<String>,
    /// Secondary departments.
    pub secondary_departments: Vec<String>,
    /// Priority 1–4, 0 when none.
    pub priority: u8,
    /// District code.
    pub district_code: Option<String>,
    /// Town code.
    pub town_code: Option<String>,
    /// Station code.
    pub station_code: Option<String>,
    /// Compound id.
    pub compound_id: Option<String>,
    /// Committee id.
    pub committee_id: Option<String>,
    /// Doorplate id.
    pub plate_id: Option<String>,
    /// POI id.
    pub poi_id: Option<String>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// H3 cell, resolution 9.
    pub h3: Option<String>,
    /// Its resolution-8 parent.
    pub h3_r8: Option<String>,
    /// Its resolution-7 parent.
    pub h3_r7: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Classifier version.
    pub classifier_version: String,
    /// Classification score.
    pub score: f32,
    /// Deciding rule.
    pub rule: String,
    /// Matched evidence.
    pub evidence: Vec<String>,
    /// Runner-up subtype, '' when none.
    pub runner_up: String,
    /// Earlier event this one repeats.
    #[serde(with = "clickhouse::serde::uuid::option")]
    pub repeat_of: Option<Uuid>,
    /// Redacted description.
    pub description: String,
    /// Source topic.
    pub kafka_topic: String,
    /// Source partition.
    pub kafka_partition: u16,
    /// Source offset.
    pub kafka_offset: u64,
}

impl IncidentRow {
    /// ClickHouse partition (`toYYYYMM(event_time)` in Asia/Shanghai) of this row.
    pub fn month(&self) -> u32 {
        use chrono::{Datelike, TimeZone};
        let t = pingan_domain::time::shanghai()
            .timestamp_opt(i64::from(self.event_time), 0)
            .single();
        t.map_or(0, |t| t.year() as u32 * 100 + t.month())
    }
}

/// One row of `alerts` (`schemas/clickhouse/0003_alerts_dead_letters.sql`).
#[derive(Debug, Clone, PartialEq, Row, Serialize)]
pub struct AlertRow {
    /// Alert id (key and version).
    pub id: String,
    /// Alert key: one per episode of a series.
    pub alert_key: String,
    /// Series level (`town`, `station`, `compound`, `h3_r8`, `h3_r8_k1`, `poi`).
    pub area_level: String,
    /// Area code at that level.
    pub area_code: String,
    /// Town of the area, when known.
    pub town_code: Option<String>,
    /// Category code.
    pub category: String,
    /// Subtype code; `None` for a per-category alert.
    pub subtype: Option<String>,
    /// Window start, Unix seconds.
    pub window_start: u32,
    /// Window end, Unix seconds.
    pub window_end: u32,
    /// Events counted.
    pub observed: u32,
    /// Events expected.
    pub expected: f64,
    /// The baseline as JSON.
    pub baseline: String,
    /// Test statistic.
    pub score: f64,
    /// Tail probability.
    pub p_value: f64,
    /// `yellow`, `orange` or `red`.
    pub level: String,
    /// Detection method.
    pub method: String,
    /// Contributing event ids.
    pub contributors: Vec<String>,
    /// First emitted, Unix seconds.
    pub created_at: u32,
    /// Last changed, Unix seconds.
    pub updated_at: u32,
    /// Version; rises with the level.
    pub version: u64,
    /// The whole alert record as JSON (what [`crate::alerts::RESTORE_SQL`] reads back).
    pub record: String,
}
