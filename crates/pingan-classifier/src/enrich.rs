//! Classification of one raw event into an [`EnrichedEvent`]: text → subtype, location → area,
//! subtype + location → departments, time + text + location → tags.
//!
//! Everything except repeat-call linking is a pure function of the raw record, so a replay gives
//! byte-identical output for the same `event_id`.

use pingan_domain::area::AreaIndex;
use pingan_domain::events::{
    CallRecord, ClassificationInfo, EnrichedEvent, GeoPoint, QrScanRecord, Source, TOPIC_ENRICHED,
};
use pingan_domain::pii::redact_text;
use pingan_domain::routing::{RouteContext, Router};
use pingan_domain::taxonomy::Taxonomy;
use pingan_domain::time::{is_morning_peak, is_night};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::locate::{Locator, LocatorError};
use crate::repeat::RepeatDetector;
use crate::text::{LexiconError, TextClassifier, TextInput};

/// A record from one of the raw topics, recognised by its `schema` field.
#[derive(Debug, Clone, PartialEq)]
pub enum RawEvent {
    /// From `pingan.call110.v1`.
    Call(CallRecord),
    /// From `pingan.qrscan.v1`.
    Qr(QrScanRecord),
}

impl<'de> Deserialize<'de> for RawEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawEvent, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match v.get("schema").and_then(|s| s.as_str()) {
            Some(pingan_domain::events::TOPIC_CALLS) => serde_json::from_value(v)
                .map(RawEvent::Call)
                .map_err(D::Error::custom),
            Some(pingan_domain::events::TOPIC_QR) => serde_json::from_value(v)
                .map(RawEvent::Qr)
                .map_err(D::Error::custom),
            Some(other) => Err(D::Error::custom(format!("unknown schema {other:?}"))),
            None => Err(D::Error::custom("missing field `schema`")),
        }
    }
}

impl RawEvent {
    /// The event id.
    pub fn event_id(&self) -> uuid::Uuid {
        match self {
            RawEvent::Call(c) => c.event_id,
            RawEvent::Qr(q) => q.event_id,
        }
    }
}

/// Why the enricher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EnricherError {
    /// The lexicon is invalid.
    #[error(transparent)]
    Lexicon(#[from] LexiconError),
    /// The place-name matcher could not be built.
    #[error(transparent)]
    Locator(#[from] LocatorError),
}

/// Words in a text that place an incident inside a residential compound when the location did not
/// resolve one (routing of parking, utility and property problems to housing).
const COMPOUND_CUES: &[&str] = &[
    "小区",
    "地库",
    "地下车库",
    "车位",
    "楼道",
    "单元门",
    "物业",
    "业委会",
    "居民楼",
];

/// Whether the text places the incident inside a residential compound (小区里, 地库, 楼道 …).
pub fn text_suggests_compound(text: &str) -> bool {
    COMPOUND_CUES.iter().any(|c| text.contains(c))
}

/// Extra outputs of one classification, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrichNotes {
    /// The event has no town.
    pub unknown_area: bool,
    /// Hints that did not match the reference data.
    pub rejected_hints: Vec<&'static str>,
    /// The event repeats an earlier one.
    pub repeat: bool,
}

/// The classifier's core.
#[derive(Debug)]
pub struct Enricher {
    text: TextClassifier,
    version: String,
    locator: Locator,
    repeats: RepeatDetector,
}

impl Enricher {
    /// The enricher with the built-in lexicon and reference data.
    pub fn builtin() -> Result<Enricher, EnricherError> {
        Self::with_text(TextClassifier::builtin()?)
    }

    /// The enricher with another text classifier (a model file, or the rules alone).
    pub fn with_text(text: TextClassifier) -> Result<Enricher, EnricherError> {
        Ok(Enricher {
            version: text.version(),
            text,
            locator: Locator::new(AreaIndex::builtin())?,
            repeats: RepeatDetector::default(),
        })
    }

    /// The text classifier.
    pub fn text(&self) -> &TextClassifier {
        &self.text
    }

    /// Classifies, locates and routes one record.
    pub fn enrich(&mut self, raw: &RawEvent) -> (EnrichedEvent, EnrichNotes) {
        let (
            source,
            source_ref,
            event_time,
            description,
            located,
            qr_kind,
            op_cat,
            op_priority,
            repeat_key,
        ) = match raw {
            RawEvent::Call(c) => (
                Source::Call,
                c.call_id.clone(),
                c.received_at,
                c.description.as_str(),
                self.locator.locate_call(
                    c.location,
                    c.town_code.as_deref(),
                    c.station_code.as_deref(),
                    c.address.as_deref(),
                    &c.description,
                ),
                None,
                c.operator_category.as_deref(),
                c.priority,
                c.caller.as_ref().map(|p| p.hash.clone()),
            ),
            RawEvent::Qr(q) => (
                Source::Qr,
                Some(q.plate_id.clone()),
                q.submitted_at,
                q.description.as_str(),
                self.locator.locate_plate(&q.plate_id),
                Some(q.kind.as_str()),
                None,
                None,
                Some(format!("plate:{}", q.plate_id)),
            ),
        };
        let inside_compound =
            located.area.compound_id.is_some() || text_suggests_compound(description);
        let text = self.text.classify(&TextInput {
            text: description,
            qr_kind,
            operator_category: op_cat,
            inside_compound,
            scenic_area: located.scenic,
        });
        let tax = Taxonomy::builtin();
        let (subtype, category) = match tax.subtype(text.subtype) {
            Some(s) => (s.code.clone(), s.category.clone()),
            None => ("OTH_UNCLASSIFIED".to_owned(), "OTH".to_owned()),
        };
        let route = Router::builtin().route(
            &subtype,
            RouteContext {
                scenic_area: located.scenic,
                inside_compound,
            },
        );
        let priority =
            op_priority.or_else(|| tax.subtype(&subtype).and_then(|s| s.default_priority));
        let mut tags: Vec<String> = text.tags.iter().map(|t| (*t).to_owned()).collect();
        if text.needs_review {
            tags.push("needs_review".into());
        }
        if is_night(&event_time) {
            tags.push("night".into());
        }
        if is_morning_peak(&event_time) {
            tags.push("morning_peak".into());
        }
        if located.scenic {
            tags.push("tourist_area".into());
        }
        let event_id = raw.event_id();
        let repeat_of = repeat_key.and_then(|k| {
            self.repeats.observe(
                &k,
                event_id,
                event_time.timestamp(),
                located.point.map(|p| (p.lat, p.lon)),
                &category,
            )
        });
        if repeat_of.is_some() {
            tags.push("repeat".into());
        }
        tags.sort();
        tags.dedup();
        let notes = EnrichNotes {
            unknown_area: located.area.town_code.is_none(),
            rejected_hints: located.rejected_hints.clone(),
            repeat: repeat_of.is_some(),
        };
        let mut evidence: Vec<String> = text
            .evidence
            .iter()
            .filter(|e| e.counted || e.negated)
            .map(|e| {
                if e.negated {
                    format!("!{}", e.term)
                } else {
                    e.term.clone()
                }
            })
            .collect();
        // The model's heaviest features follow the rules' terms, marked `~`.
        evidence.extend(text.features.iter().map(|(name, _)| format!("~{name}")));
        // Keywords come from the redacted text: a phone, ID or plate number must not reach the
        // terms tables by way of a keyword.
        let description = redact_text(description);
        let event = EnrichedEvent {
            schema: TOPIC_ENRICHED.to_owned(),
            event_id,
            source,
            source_ref,
            event_time,
            category,
            subtype,
            department: route.primary.map(str::to_owned),
            secondary_departments: route.secondary.iter().map(|d| (*d).to_owned()).collect(),
            priority,
            area: located.area,
            location: located.point.map(|p| GeoPoint {
                lat: p.lat,
                lon: p.lon,
            }),
            h3: located.h3,
            tags,
            keywords: self.text.keywords(&description, 8),
            classifier_version: self.version.clone(),
            classification: ClassificationInfo {
                score: text.score,
                rule: text.rule.to_owned(),
                evidence,
                runner_up: text.runner_up.map(|(s, _)| s.to_owned()),
            },
            repeat_of,
            description,
        };
        (event, notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use pingan_domain::events::QrKind;
    use pingan_domain::pii::PhoneToken;

    fn call(desc: &str, t: &str) -> RawEvent {
        RawEvent::Call(CallRecord {
            schema: pingan_domain::events::TOPIC_CALLS.into(),
            event_id: uuid::Uuid::now_v7(),
            call_id: Some("C1".into()),
            received_at: DateTime::parse_from_rfc3339(t).unwrap(),
            ingested_at: chrono::Utc::now(),
            description: desc.into(),
            caller: Some(PhoneToken {
                hash: "hmac-sha256:k1:aa".into(),
                masked: "*******1234".into(),
            }),
            address: None,
            location: None,
            town_code: Some("310112102".into()),
            station_code: None,
            operator_category: None,
            priority: None,
        })
    }

    #[test]
    fn a_consumer_dispute_at_the_old_street_goes_to_scenic_management() {
        let mut e = Enricher::builtin().unwrap();
        let (ev, _) = e.enrich(&call(
            "报警人称在七宝老街汤团店消费时店家给错品种，双方发生纠纷，要求退钱",
            "2019-12-31T14:05:00+08:00",
        ));
        assert_eq!(ev.category, "DSP");
        assert_eq!(ev.department.as_deref(), Some("SCENIC"), "{ev:?}");
        assert!(ev.tags.contains(&"tourist_area".to_owned()));
        assert_eq!(ev.area.town_code.as_deref(), Some("310112102"));
        assert_eq!(ev.classifier_version, e.text().version());
    }

    #[test]
    fn night_alcohol_and_repeats_are_tagged() {
        let mut e = Enricher::builtin().unwrap();
        let first = call("饭店门口有人喝多了打人", "2019-12-31T22:30:00+08:00");
        let (a, _) = e.enrich(&first);
        assert!(
            a.tags.contains(&"night".to_owned()) && a.tags.contains(&"alcohol".to_owned()),
            "{:?}",
            a.tags
        );
        let (b, notes) = e.enrich(&call(
            "刚才饭店门口打架的还在打",
            "2019-12-31T22:34:00+08:00",
        ));
        assert_eq!(b.repeat_of, Some(a.event_id));
        assert!(notes.repeat && b.tags.contains(&"repeat".to_owned()));
    }

    #[test]
    fn the_same_record_gives_the_same_output() {
        let raw = call(
            "有人冒充公检法说我涉嫌洗钱，让我转账到安全账户",
            "2020-01-02T10:00:00+08:00",
        );
        let mut e1 = Enricher::builtin().unwrap();
        let mut e2 = Enricher::builtin().unwrap();
        let a = serde_json::to_string(&e1.enrich(&raw).0).unwrap();
        let b = serde_json::to_string(&e2.enrich(&raw).0).unwrap();
        assert_eq!(a, b);
        assert!(a.contains("FRAUD_FAKE_GOV"), "{a}");
    }

    #[test]
    fn qr_reports_use_the_plate_location_and_phones_never_appear() {
        let mut e = Enricher::builtin().unwrap();
        let plate = AreaIndex::builtin().doorplates().nth(100).unwrap();
        let raw = RawEvent::Qr(QrScanRecord {
            schema: pingan_domain::events::TOPIC_QR.into(),
            event_id: uuid::Uuid::now_v7(),
            plate_id: plate.plate_id.to_string(),
            kind: QrKind::Help,
            description: "老人走失了，请帮忙找一下，电话13812341234".into(),
            contact: None,
            device_location: None,
            submitted_at: DateTime::parse_from_rfc3339("2020-01-02T10:00:00+08:00").unwrap(),
        });
        let (ev, notes) = e.enrich(&raw);
        assert_eq!(ev.source, Source::Qr);
        assert_eq!(
            ev.area.plate_id.as_deref(),
            Some(plate.plate_id.to_string().as_str())
        );
        assert_eq!(ev.area.town_code.as_deref(), Some(plate.town_code));
        assert!(!notes.unknown_area);
        assert!(!ev.description.contains("13812341234"));
        assert_eq!(ev.subtype, "HELP_MISSING_PERSON");
    }

    #[test]
    fn raw_events_decode_by_schema() {
        let raw = call("x", "2020-01-02T10:00:00+08:00");
        let RawEvent::Call(c) = &raw else {
            unreachable!()
        };
        let text = serde_json::to_string(c).unwrap();
        assert_eq!(serde_json::from_str::<RawEvent>(&text).unwrap(), raw);
        assert!(serde_json::from_str::<RawEvent>(r#"{"schema": "nope"}"#).is_err());
        assert!(serde_json::from_str::<RawEvent>(r#"{"event_id": "x"}"#).is_err());
    }
}
