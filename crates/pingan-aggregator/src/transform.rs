//! Enriched event → ClickHouse row. Pure: the same event always gives the same row.

use std::str::FromStr;

use h3o::{CellIndex, Resolution};
use pingan_domain::events::EnrichedEvent;
use pingan_domain::taxonomy::Taxonomy;
use pingan_pipeline::stage::{Inbound, Outbound, Outcome, RecordError, Transform};

use pingan_warehouse::rows::IncidentRow;

/// The aggregator's transform.
#[derive(Debug, Clone, Copy, Default)]
pub struct ToRows;

fn parent(cell: &str, res: Resolution) -> Option<String> {
    CellIndex::from_str(cell)
        .ok()?
        .parent(res)
        .map(|c| c.to_string())
}

/// Converts one enriched event into a row, refusing codes outside the taxonomy.
pub fn to_row(
    e: EnrichedEvent,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<IncidentRow, RecordError> {
    let tax = Taxonomy::builtin();
    let Some(sub) = tax.subtype(&e.subtype) else {
        return Err(RecordError {
            code: "unknown_subtype",
            message: format!("subtype {:?} is not in the taxonomy", e.subtype),
        });
    };
    if sub.category != e.category {
        return Err(RecordError {
            code: "category_mismatch",
            message: format!(
                "subtype {} belongs to {}, not {}",
                e.subtype, sub.category, e.category
            ),
        });
    }
    let secs = e.event_time.timestamp();
    let Ok(event_time) = u32::try_from(secs) else {
        return Err(RecordError {
            code: "bad_time",
            message: format!("event_time {} is outside 1970..2106", e.event_time),
        });
    };
    let (h3_r8, h3_r7) = match &e.h3 {
        Some(c) => (parent(c, Resolution::Eight), parent(c, Resolution::Seven)),
        None => (None, None),
    };
    Ok(IncidentRow {
        event_id: e.event_id,
        source: e.source.as_str().to_owned(),
        source_ref: e.source_ref.unwrap_or_default(),
        event_time,
        category: e.category,
        subtype: e.subtype,
        department: e.department,
        secondary_departments: e.secondary_departments,
        priority: e.priority.unwrap_or(0),
        district_code: e.area.district_code,
        town_code: e.area.town_code,
        station_code: e.area.station_code,
        compound_id: e.area.compound_id,
        committee_id: e.area.committee_id,
        plate_id: e.area.plate_id,
        poi_id: e.area.poi_id,
        lat: e.location.map(|p| p.lat),
        lon: e.location.map(|p| p.lon),
        h3: e.h3,
        h3_r8,
        h3_r7,
        tags: e.tags,
        keywords: e.keywords,
        classifier_version: e.classifier_version,
        score: e.classification.score,
        rule: e.classification.rule,
        evidence: e.classification.evidence,
        runner_up: e.classification.runner_up.unwrap_or_default(),
        repeat_of: e.repeat_of,
        description: e.description,
        kafka_topic: topic.to_owned(),
        kafka_partition: u16::try_from(partition).unwrap_or(u16::MAX),
        kafka_offset: u64::try_from(offset).unwrap_or(0),
    })
}

impl Transform for ToRows {
    type In = EnrichedEvent;
    type Out = IncidentRow;

    fn transform(
        &mut self,
        input: Inbound<EnrichedEvent>,
    ) -> Result<Outcome<IncidentRow>, RecordError> {
        let row = to_row(
            input.value,
            &input.meta.topic,
            input.meta.partition,
            input.meta.offset,
        )?;
        Ok(Outcome::Emit(Outbound {
            source: input.meta,
            key: None,
            value: row,
        }))
    }
}
