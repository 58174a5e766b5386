//! The three event types of the external contract and their strict validation.
//!
//! * [`CallInput`] / [`QrScanInput`]: what ingest accepts over HTTP. Validation walks the JSON
//!   value itself instead of relying on serde's first error, so a caller gets **every** invalid
//!   field of **every** item back in one 422 answer (`index`, `field`, `reason`, `code`).
//! * [`CallRecord`] / [`QrScanRecord`]: the validated, pseudonymised records on
//!   `pingan.call110.v1` / `pingan.qrscan.v1`. Phones only appear as a keyed hash and a mask.
//! * [`EnrichedEvent`]: the classifier's output on `pingan.enriched.v1`.
//!
//! Wire types derive `schemars::JsonSchema`; `schemas/events/*.schema.json` is generated from them
//! and a test fails when the committed files are stale.

use chrono::{DateTime, FixedOffset, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::pii::{self, PhoneToken};

/// The `event_id` of a citizen's QR report. The public QR endpoint never stores an id a client
/// chose: anyone could send a 110 call's id and overwrite or shadow it. A client-supplied id
/// (for idempotent retries) is namespaced instead — a hash of a fixed label, the plate and that
/// id, stamped as a UUIDv8 — so a retry of the same report to the same plate keeps its id while
/// no QR id can equal a call's id (call ids are v7 or the CAD's own; the CAD is authenticated).
/// Without a client id the server assigns a fresh UUIDv7.
pub fn qr_event_id(plate_id: &str, client_id: Option<Uuid>) -> Uuid {
    use sha2::{Digest, Sha256};
    let Some(client_id) = client_id else {
        return Uuid::now_v7();
    };
    let digest = Sha256::new()
        .chain_update(b"pingan-qr-event-id\0")
        .chain_update(plate_id.as_bytes())
        .chain_update([0u8])
        .chain_update(client_id.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Topic of validated 110 call records.
pub const TOPIC_CALLS: &str = "pingan.call110.v1";
/// Topic of validated QR doorplate reports.
pub const TOPIC_QR: &str = "pingan.qrscan.v1";
/// Topic of classified, located, routed events.
pub const TOPIC_ENRICHED: &str = "pingan.enriched.v1";
/// Topic of spike alerts.
pub const TOPIC_ALERTS: &str = "pingan.alerts.v1";

/// Limits of the ingest contract.
pub mod limits {
    /// Most items in one `POST /v1/calls` body.
    pub const MAX_BATCH: usize = 1000;
    /// Longest call description, in characters.
    pub const MAX_CALL_DESCRIPTION: usize = 2000;
    /// Longest QR report description, in characters.
    pub const MAX_QR_DESCRIPTION: usize = 500;
    /// Longest CAD record number.
    pub const MAX_CALL_ID: usize = 64;
    /// Longest free-text address.
    pub const MAX_ADDRESS: usize = 256;
    /// Longest operator category hint and station code.
    pub const MAX_SHORT_TEXT: usize = 64;
    /// How far in the future a `received_at` may lie (clock skew allowance), in seconds.
    pub const MAX_FUTURE_SKEW_SECS: i64 = 600;
}

/// A WGS-84 point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoPoint {
    /// Latitude in degrees, -90..=90.
    pub lat: f64,
    /// Longitude in degrees, -180..=180.
    pub lon: f64,
}

/// One invalid field of one item in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldError {
    /// Position of the item in the request (0 for a single object).
    pub index: usize,
    /// JSON path of the field inside the item, e.g. `location.lat`; empty for the item itself.
    pub field: String,
    /// Human-readable reason.
    pub reason: String,
    /// Stable reason code, also the `reason` label of the reject metric.
    pub code: &'static str,
}

/// The kind of report a citizen picks on the QR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QrKind {
    /// 报警: report a crime or danger.
    Alarm,
    /// 求助: ask for help (lost person …).
    Help,
    /// 纠纷: a dispute to be routed (立码办).
    Dispute,
    /// 咨询: a question.
    Consult,
}

impl QrKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            QrKind::Alarm => "alarm",
            QrKind::Help => "help",
            QrKind::Dispute => "dispute",
            QrKind::Consult => "consult",
        }
    }
}

/// A 110 call record as the CAD posts it (`POST /v1/calls`), after validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallInput {
    /// Stable id for idempotent retries; assigned (UUIDv7) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    /// CAD record number (接警单编号), at most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub call_id: Option<String>,
    /// When the call was received, RFC 3339 with an offset.
    pub received_at: DateTime<FixedOffset>,
    /// The operator's free-text summary, 1–2000 characters.
    #[schemars(length(min = 1, max = 2000))]
    pub description: String,
    /// Caller's phone; never leaves ingest in clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_phone: Option<String>,
    /// Free-text address, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub address: Option<String>,
    /// WGS-84 location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<GeoPoint>,
    /// 9-digit town/street code, e.g. `310112102`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{9}$"))]
    pub town_code: Option<String>,
    /// Police station code from the reference data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station_code: Option<String>,
    /// The operator's own category hint (Chinese or a taxonomy code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_category: Option<String>,
    /// 1 = most urgent … 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4))]
    pub priority: Option<u8>,
}

/// A citizen's QR doorplate report (`POST /v1/qr-scans`), after validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QrScanInput {
    /// Doorplate id printed in the QR code.
    pub plate_id: String,
    /// Signature of the plate id (the QR code's credential).
    pub sig: String,
    /// Report kind.
    pub kind: QrKind,
    /// What happened, 1–500 characters.
    #[schemars(length(min = 1, max = 500))]
    pub description: String,
    /// Optional phone for a call-back; never leaves ingest in clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_phone: Option<String>,
    /// Stable id for idempotent retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    /// Where the phone was, a cross-check only: the location of record is the plate's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_location: Option<GeoPoint>,
}

/// A validated call on `pingan.call110.v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRecord {
    /// Always `pingan.call110.v1`.
    pub schema: String,
    /// Stable event id.
    pub event_id: Uuid,
    /// CAD record number.
    #[serde(default)]
    pub call_id: Option<String>,
    /// When the call was received.
    pub received_at: DateTime<FixedOffset>,
    /// When ingest accepted it.
    pub ingested_at: DateTime<Utc>,
    /// Operator's summary.
    pub description: String,
    /// Pseudonymised caller phone.
    #[serde(default)]
    pub caller: Option<PhoneToken>,
    /// Free-text address.
    #[serde(default)]
    pub address: Option<String>,
    /// WGS-84 location.
    #[serde(default)]
    pub location: Option<GeoPoint>,
    /// Town hint (not yet checked against the reference data).
    #[serde(default)]
    pub town_code: Option<String>,
    /// Station hint.
    #[serde(default)]
    pub station_code: Option<String>,
    /// Operator category hint.
    #[serde(default)]
    pub operator_category: Option<String>,
    /// Priority 1–4.
    #[serde(default)]
    pub priority: Option<u8>,
}

/// A validated QR report on `pingan.qrscan.v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QrScanRecord {
    /// Always `pingan.qrscan.v1`.
    pub schema: String,
    /// Stable event id.
    pub event_id: Uuid,
    /// Doorplate id (signature already verified).
    pub plate_id: String,
    /// Report kind.
    pub kind: QrKind,
    /// What happened.
    pub description: String,
    /// Pseudonymised contact phone.
    #[serde(default)]
    pub contact: Option<PhoneToken>,
    /// Device location, a cross-check only.
    #[serde(default)]
    pub device_location: Option<GeoPoint>,
    /// When ingest accepted the report; the event time of a QR report.
    pub submitted_at: DateTime<FixedOffset>,
}

/// Where an event came from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A 110 call.
    Call,
    /// A QR doorplate report.
    Qr,
}

impl Source {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Call => "call",
            Source::Qr => "qr",
        }
    }
}

/// The area an event was resolved to; each level is `null` when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventArea {
    /// District code (`310112` for Minhang).
    pub district_code: Option<String>,
    /// 9-digit town/street code.
    pub town_code: Option<String>,
    /// Police station code.
    pub station_code: Option<String>,
    /// Residential compound id.
    pub compound_id: Option<String>,
    /// Neighbourhood committee id.
    #[serde(default)]
    pub committee_id: Option<String>,
    /// Doorplate id (QR reports).
    #[serde(default)]
    pub plate_id: Option<String>,
    /// Point of interest (scenic area, nightlife street …).
    #[serde(default)]
    pub poi_id: Option<String>,
}

/// How the classifier reached its decision, for audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassificationInfo {
    /// Confidence 0..1.
    pub score: f32,
    /// Rule or group that decided.
    pub rule: String,
    /// Matched lexicon terms (negated ones prefixed with `!`).
    pub evidence: Vec<String>,
    /// Best subtype of another group, when any.
    #[serde(default)]
    pub runner_up: Option<String>,
}

/// A classified, located, routed event on `pingan.enriched.v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrichedEvent {
    /// Always `pingan.enriched.v1`.
    pub schema: String,
    /// Stable event id from ingest.
    pub event_id: Uuid,
    /// `call` or `qr`.
    pub source: Source,
    /// CAD record number or doorplate id.
    #[serde(default)]
    pub source_ref: Option<String>,
    /// When the incident was reported.
    pub event_time: DateTime<FixedOffset>,
    /// Category code, e.g. `FRAUD`.
    pub category: String,
    /// Subtype code, e.g. `FRAUD_FAKE_GOV`.
    pub subtype: String,
    /// Primary responsible department; `null` for invalid/duplicate calls.
    pub department: Option<String>,
    /// Secondary departments.
    #[serde(default)]
    pub secondary_departments: Vec<String>,
    /// Priority 1–4 (the operator's, else the subtype default).
    #[serde(default)]
    pub priority: Option<u8>,
    /// Resolved area.
    pub area: EventArea,
    /// Best known point.
    #[serde(default)]
    pub location: Option<GeoPoint>,
    /// H3 resolution-9 cell; `null` without coordinates.
    pub h3: Option<String>,
    /// Tags: night, morning_peak, alcohol, tourist_area, injury, weapon, repeat.
    pub tags: Vec<String>,
    /// Keywords for word-frequency analysis.
    pub keywords: Vec<String>,
    /// Version of the rules that produced this event.
    pub classifier_version: String,
    /// Audit trail of the decision.
    pub classification: ClassificationInfo,
    /// Earlier event this one repeats, when it is a repeat call.
    #[serde(default)]
    pub repeat_of: Option<Uuid>,
    /// Description with phone-like digit runs masked.
    #[serde(default)]
    pub description: String,
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

struct Checker<'a> {
    index: usize,
    obj: &'a Map<String, Value>,
    errors: &'a mut Vec<FieldError>,
}

impl<'a> Checker<'a> {
    fn err(&mut self, field: &str, code: &'static str, reason: impl Into<String>) {
        self.errors.push(FieldError {
            index: self.index,
            field: field.to_owned(),
            reason: reason.into(),
            code,
        });
    }

    fn unknown_fields(&mut self, known: &[&str]) {
        let unknown: Vec<String> = self
            .obj
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown {
            self.err(
                &k,
                "unknown_field",
                format!("unknown field; allowed: {}", known.join(", ")),
            );
        }
    }

    /// A string field: `Ok(None)` when absent or null and optional.
    fn string(&mut self, field: &str, required: bool, min: usize, max: usize) -> Option<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => {
                if required {
                    self.err(field, "required", "is required");
                }
                None
            }
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if s.contains('\u{0}') {
                    self.err(
                        field,
                        "control_character",
                        "must not contain NUL characters",
                    );
                    None
                } else if n < min || (min > 0 && s.trim().is_empty()) {
                    self.err(
                        field,
                        "too_short",
                        format!("must have at least {min} non-blank character(s)"),
                    );
                    None
                } else if n > max {
                    self.err(
                        field,
                        "too_long",
                        format!("has {n} characters, at most {max} allowed"),
                    );
                    None
                } else {
                    Some(s.clone())
                }
            }
            Some(other) => {
                self.err(
                    field,
                    "wrong_type",
                    format!("must be a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn uuid(&mut self, field: &str) -> Option<Uuid> {
        let s = self.string(field, false, 1, 64)?;
        match Uuid::parse_str(&s) {
            Ok(u) if !u.is_nil() => Some(u),
            Ok(_) => {
                self.err(field, "bad_uuid", "must not be the nil UUID");
                None
            }
            Err(_) => {
                self.err(
                    field,
                    "bad_uuid",
                    "must be a UUID such as 0190f3a2-7c1e-7b2a-9d1e-3f2a5c7e9b10",
                );
                None
            }
        }
    }

    fn point(&mut self, field: &str) -> Option<GeoPoint> {
        let v = self.obj.get(field)?;
        let Value::Object(p) = v else {
            if !v.is_null() {
                self.err(
                    field,
                    "wrong_type",
                    format!(
                        "must be an object {{\"lat\", \"lon\"}}, found {}",
                        type_name(v)
                    ),
                );
            }
            return None;
        };
        let mut ok = true;
        for k in p.keys() {
            if k != "lat" && k != "lon" {
                self.err(
                    &format!("{field}.{k}"),
                    "unknown_field",
                    "unknown field; allowed: lat, lon",
                );
                ok = false;
            }
        }
        let mut coord = |name: &str, bound: f64| -> Option<f64> {
            let path = format!("{field}.{name}");
            match p.get(name) {
                None | Some(Value::Null) => {
                    self.err(&path, "required", "is required");
                    None
                }
                Some(Value::Number(n)) => match n.as_f64() {
                    Some(x) if x.is_finite() && x.abs() <= bound => Some(x),
                    _ => {
                        self.err(
                            &path,
                            "out_of_range",
                            format!("must be a number between -{bound} and {bound}"),
                        );
                        None
                    }
                },
                Some(other) => {
                    self.err(
                        &path,
                        "wrong_type",
                        format!("must be a number, found {}", type_name(other)),
                    );
                    None
                }
            }
        };
        let lat = coord("lat", 90.0);
        let lon = coord("lon", 180.0);
        match (lat, lon, ok) {
            (Some(lat), Some(lon), true) => Some(GeoPoint { lat, lon }),
            _ => None,
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn not_an_object(index: usize, v: &Value) -> FieldError {
    FieldError {
        index,
        field: String::new(),
        reason: format!("each item must be a JSON object, found {}", type_name(v)),
        code: "wrong_type",
    }
}

/// Parses an RFC 3339 timestamp that carries an explicit offset, within the accepted range.
fn parse_time(
    c: &mut Checker<'_>,
    field: &str,
    now: DateTime<Utc>,
) -> Option<DateTime<FixedOffset>> {
    let s = c.string(field, true, 1, 64)?;
    let Ok(t) = DateTime::parse_from_rfc3339(&s) else {
        c.err(
            field,
            "bad_timestamp",
            "must be RFC 3339 with an offset, e.g. 2019-12-31T21:43:05+08:00",
        );
        return None;
    };
    let floor = DateTime::parse_from_rfc3339("2000-01-01T00:00:00+08:00").ok()?;
    if t < floor {
        c.err(
            field,
            "bad_timestamp",
            "is before 2000-01-01; check the CAD clock",
        );
        return None;
    }
    if t.with_timezone(&Utc) > now + chrono::Duration::seconds(limits::MAX_FUTURE_SKEW_SECS) {
        c.err(
            field,
            "future_timestamp",
            format!(
                "is more than {} minutes in the future",
                limits::MAX_FUTURE_SKEW_SECS / 60
            ),
        );
        return None;
    }
    Some(t)
}

impl CallInput {
    /// The record put on `pingan.call110.v1` for this call: `event_id` is the one it keeps for
    /// life, `caller` the keyed phone token (the clear number never leaves ingest).
    pub fn into_record(
        self,
        event_id: Uuid,
        ingested_at: DateTime<Utc>,
        caller: Option<PhoneToken>,
    ) -> CallRecord {
        CallRecord {
            schema: TOPIC_CALLS.to_owned(),
            event_id,
            call_id: self.call_id,
            received_at: self.received_at,
            ingested_at,
            description: self.description,
            caller,
            address: self.address,
            location: self.location,
            town_code: self.town_code,
            station_code: self.station_code,
            operator_category: self.operator_category,
            priority: self.priority,
        }
    }

    /// Validates one call item; `index` is its position in the request. Every problem is
    /// appended to `errors`; `None` means the item was invalid.
    pub fn validate(
        value: &Value,
        index: usize,
        now: DateTime<Utc>,
        errors: &mut Vec<FieldError>,
    ) -> Option<CallInput> {
        let Value::Object(obj) = value else {
            errors.push(not_an_object(index, value));
            return None;
        };
        let before = errors.len();
        let mut c = Checker { index, obj, errors };
        c.unknown_fields(&[
            "event_id",
            "call_id",
            "received_at",
            "description",
            "caller_phone",
            "address",
            "location",
            "town_code",
            "station_code",
            "operator_category",
            "priority",
        ]);
        let event_id = c.uuid("event_id");
        let call_id = c.string("call_id", false, 1, limits::MAX_CALL_ID);
        let received_at = parse_time(&mut c, "received_at", now);
        let description = c.string("description", true, 1, limits::MAX_CALL_DESCRIPTION);
        let caller_phone = c.string("caller_phone", false, 1, 32);
        if let Some(p) = &caller_phone
            && let Err(e) = pii::normalize_phone(p)
        {
            c.err("caller_phone", "bad_phone", e.to_string());
        }
        let address = c.string("address", false, 1, limits::MAX_ADDRESS);
        let location = c.point("location");
        let town_code = c.string("town_code", false, 9, 9);
        if let Some(t) = &town_code
            && !t.bytes().all(|b| b.is_ascii_digit())
        {
            c.err(
                "town_code",
                "bad_code",
                "must be 9 ASCII digits, e.g. 310112102",
            );
        }
        let station_code = c.string("station_code", false, 1, limits::MAX_SHORT_TEXT);
        let operator_category = c.string("operator_category", false, 1, limits::MAX_SHORT_TEXT);
        let priority = match obj.get("priority") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(p @ 1..=4) => Some(p as u8),
                _ => {
                    c.err(
                        "priority",
                        "out_of_range",
                        "must be an integer from 1 (most urgent) to 4",
                    );
                    None
                }
            },
            Some(other) => {
                c.err(
                    "priority",
                    "wrong_type",
                    format!("must be an integer 1-4, found {}", type_name(other)),
                );
                None
            }
        };
        if c.errors.len() > before {
            return None;
        }
        Some(CallInput {
            event_id,
            call_id,
            received_at: received_at?,
            description: description?,
            caller_phone,
            address,
            location,
            town_code,
            station_code,
            operator_category,
            priority,
        })
    }

    /// Validates a whole `POST /v1/calls` body (one object or an array of up to
    /// [`limits::MAX_BATCH`]). All-or-nothing: any error rejects the request.
    pub fn validate_body(
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<Vec<CallInput>, Vec<FieldError>> {
        let mut errors = Vec::new();
        let items: Vec<&Value> = match body {
            Value::Array(a) if a.is_empty() => {
                return Err(vec![FieldError {
                    index: 0,
                    field: String::new(),
                    reason: "the array is empty".into(),
                    code: "empty_batch",
                }]);
            }
            Value::Array(a) if a.len() > limits::MAX_BATCH => {
                return Err(vec![FieldError {
                    index: limits::MAX_BATCH,
                    field: String::new(),
                    reason: format!(
                        "{} items; at most {} per request",
                        a.len(),
                        limits::MAX_BATCH
                    ),
                    code: "batch_too_large",
                }]);
            }
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let mut out = Vec::with_capacity(items.len());
        let mut seen = std::collections::HashMap::new();
        for (i, v) in items.into_iter().enumerate() {
            if let Some(call) = CallInput::validate(v, i, now, &mut errors) {
                if let Some(id) = call.event_id
                    && let Some(first) = seen.insert(id, i)
                {
                    errors.push(FieldError {
                        index: i,
                        field: "event_id".into(),
                        reason: format!("duplicates the event_id of item {first}"),
                        code: "duplicate_event_id",
                    });
                }
                out.push(call);
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

impl QrScanInput {
    /// The record put on `pingan.qrscan.v1` for this report, received at `submitted_at`;
    /// `contact` is the keyed phone token.
    pub fn into_record(
        self,
        event_id: Uuid,
        submitted_at: DateTime<FixedOffset>,
        contact: Option<PhoneToken>,
    ) -> QrScanRecord {
        QrScanRecord {
            schema: TOPIC_QR.to_owned(),
            event_id,
            plate_id: self.plate_id,
            kind: self.kind,
            description: self.description,
            contact,
            device_location: self.device_location,
            submitted_at,
        }
    }

    /// Validates a `POST /v1/qr-scans` body. The signature is checked by ingest, not here.
    pub fn validate(value: &Value) -> Result<QrScanInput, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Value::Object(obj) = value else {
            return Err(vec![not_an_object(0, value)]);
        };
        let mut c = Checker {
            index: 0,
            obj,
            errors: &mut errors,
        };
        c.unknown_fields(&[
            "plate_id",
            "sig",
            "kind",
            "description",
            "contact_phone",
            "event_id",
            "device_location",
        ]);
        let plate_id = c.string("plate_id", true, 1, 64);
        let sig = c.string("sig", true, 1, 128);
        let kind = match c.string("kind", true, 1, 16).as_deref() {
            Some("alarm") => Some(QrKind::Alarm),
            Some("help") => Some(QrKind::Help),
            Some("dispute") => Some(QrKind::Dispute),
            Some("consult") => Some(QrKind::Consult),
            Some(_) => {
                c.err(
                    "kind",
                    "bad_enum",
                    "must be one of alarm, help, dispute, consult",
                );
                None
            }
            None => None,
        };
        let description = c.string("description", true, 1, limits::MAX_QR_DESCRIPTION);
        let contact_phone = c.string("contact_phone", false, 1, 32);
        if let Some(p) = &contact_phone
            && let Err(e) = pii::normalize_phone(p)
        {
            c.err("contact_phone", "bad_phone", e.to_string());
        }
        let event_id = c.uuid("event_id");
        let device_location = c.point("device_location");
        match (plate_id, sig, kind, description) {
            (Some(plate_id), Some(sig), Some(kind), Some(description)) if errors.is_empty() => {
                Ok(QrScanInput {
                    plate_id,
                    sig,
                    kind,
                    description,
                    contact_phone,
                    event_id,
                    device_location,
                })
            }
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-29T12:00:00+08:00")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn good() -> Value {
        json!({"received_at": "2019-12-31T21:43:05+08:00", "description": "报警人称七宝老街汤团店给错品种，双方发生纠纷"})
    }

    #[test]
    fn a_minimal_call_is_valid() {
        let calls = CallInput::validate_body(&good(), now()).unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].received_at.offset().local_minus_utc(), 8 * 3600);
    }

    #[test]
    fn every_invalid_field_of_every_item_is_reported() {
        let body = json!([
            good(),
            {"received_at": "yesterday", "description": "", "priority": 7, "verified": true},
            {"received_at": "2019-12-31T21:43:05", "description": 5, "location": {"lat": 91.0, "lon": "x"}},
            "not an object",
        ]);
        let errs = CallInput::validate_body(&body, now()).unwrap_err();
        let got: Vec<(usize, &str, &str)> = errs
            .iter()
            .map(|e| (e.index, e.field.as_str(), e.code))
            .collect();
        assert!(got.contains(&(1, "verified", "unknown_field")), "{got:?}");
        assert!(
            got.contains(&(1, "received_at", "bad_timestamp")),
            "{got:?}"
        );
        assert!(got.contains(&(1, "description", "too_short")), "{got:?}");
        assert!(got.contains(&(1, "priority", "out_of_range")), "{got:?}");
        assert!(
            got.contains(&(2, "received_at", "bad_timestamp")),
            "missing offset: {got:?}"
        );
        assert!(got.contains(&(2, "description", "wrong_type")), "{got:?}");
        assert!(
            got.contains(&(2, "location.lat", "out_of_range")),
            "{got:?}"
        );
        assert!(got.contains(&(2, "location.lon", "wrong_type")), "{got:?}");
        assert!(got.contains(&(3, "", "wrong_type")), "{got:?}");
        assert!(
            !got.iter().any(|(i, _, _)| *i == 0),
            "item 0 is valid: {got:?}"
        );
    }

    #[test]
    fn limits_are_enforced() {
        let mut v = good();
        v["description"] = json!("案".repeat(2001));
        v["call_id"] = json!("x".repeat(65));
        v["town_code"] = json!("31011210A");
        let errs = CallInput::validate_body(&v, now()).unwrap_err();
        let codes: Vec<_> = errs.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert!(codes.contains(&("description", "too_long")));
        assert!(codes.contains(&("call_id", "too_long")));
        assert!(codes.contains(&("town_code", "bad_code")));
        let many = Value::Array(vec![good(); limits::MAX_BATCH + 1]);
        assert_eq!(
            CallInput::validate_body(&many, now()).unwrap_err()[0].code,
            "batch_too_large"
        );
        assert_eq!(
            CallInput::validate_body(&json!([]), now()).unwrap_err()[0].code,
            "empty_batch"
        );
    }

    #[test]
    fn timestamps_far_in_the_future_or_before_2000_are_rejected() {
        let mut v = good();
        v["received_at"] = json!("2026-11-29T13:00:00+08:00");
        assert_eq!(
            CallInput::validate_body(&v, now()).unwrap_err()[0].code,
            "future_timestamp"
        );
        v["received_at"] = json!("2026-11-29T12:05:00+08:00");
        assert!(
            CallInput::validate_body(&v, now()).is_ok(),
            "5 minutes of skew is tolerated"
        );
        v["received_at"] = json!("1970-01-01T00:00:00Z");
        assert_eq!(
            CallInput::validate_body(&v, now()).unwrap_err()[0].code,
            "bad_timestamp"
        );
    }

    #[test]
    fn qr_ids_are_namespaced_and_stable() {
        let call_id: Uuid = "0190f3a2-7c1e-7b2a-9d1e-3f2a5c7e9b10".parse().unwrap();
        let a = qr_event_id("MHQR-101-00100215", Some(call_id));
        assert_ne!(a, call_id, "a QR report cannot take a call's id");
        assert_eq!(a.get_version_num(), 8);
        assert_eq!(
            a,
            qr_event_id("MHQR-101-00100215", Some(call_id)),
            "retries keep the id"
        );
        assert_ne!(a, qr_event_id("MHQR-101-00100216", Some(call_id)));
        assert_eq!(qr_event_id("MHQR-101-00100215", None).get_version_num(), 7);
    }

    #[test]
    fn duplicate_event_ids_in_one_request_are_rejected() {
        let mut a = good();
        a["event_id"] = json!("0190f3a2-7c1e-7b2a-9d1e-3f2a5c7e9b10");
        let errs = CallInput::validate_body(&json!([a.clone(), a]), now()).unwrap_err();
        assert_eq!((errs[0].index, errs[0].code), (1, "duplicate_event_id"));
    }

    #[test]
    fn bad_phones_and_uuids_are_reported() {
        let mut v = good();
        v["caller_phone"] = json!("call me maybe");
        v["event_id"] = json!("not-a-uuid");
        let errs = CallInput::validate_body(&v, now()).unwrap_err();
        let codes: Vec<_> = errs.iter().map(|e| e.code).collect();
        assert!(
            codes.contains(&"bad_phone") && codes.contains(&"bad_uuid"),
            "{codes:?}"
        );
    }

    #[test]
    fn qr_reports_are_validated_strictly() {
        let ok = json!({"plate_id": "MHQR-102-00000001", "sig": "v1.abc", "kind": "dispute", "description": "给错了汤团品种"});
        assert_eq!(QrScanInput::validate(&ok).unwrap().kind, QrKind::Dispute);
        let bad = json!({"plate_id": "MHQR-102-00000001", "sig": "v1.abc", "kind": "party", "description": "", "town_code": "310112102"});
        let errs = QrScanInput::validate(&bad).unwrap_err();
        let codes: Vec<_> = errs.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert!(codes.contains(&("kind", "bad_enum")));
        assert!(codes.contains(&("description", "too_short")));
        assert!(
            codes.contains(&("town_code", "unknown_field")),
            "mass assignment of area is refused"
        );
    }

    #[test]
    fn records_round_trip_through_json() {
        let rec = CallRecord {
            schema: TOPIC_CALLS.into(),
            event_id: Uuid::now_v7(),
            call_id: Some("310112-20191231-004312".into()),
            received_at: DateTime::parse_from_rfc3339("2019-12-31T21:43:05+08:00").unwrap(),
            ingested_at: now(),
            description: "报警人称有人打架".into(),
            caller: Some(PhoneToken {
                hash: "hmac-sha256:k1:00".into(),
                masked: "*******1234".into(),
            }),
            address: None,
            location: Some(GeoPoint {
                lat: 31.156,
                lon: 121.3466,
            }),
            town_code: Some("310112102".into()),
            station_code: None,
            operator_category: None,
            priority: Some(2),
        };
        let text = serde_json::to_string(&rec).unwrap();
        assert_eq!(serde_json::from_str::<CallRecord>(&text).unwrap(), rec);
    }
}
