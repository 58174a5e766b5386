//! `pingan classify --stdin`: JSON lines in (calls or QR reports in the ingest input format),
//! enriched JSON lines out. No Kafka, no network.
//!
//! `event_id` is optional (a UUIDv7 is assigned) and a call's `received_at` defaults to now. QR
//! signatures are not checked offline (there is no key here), and phone numbers are dropped: the
//! output never carries a number, hashed or not.

use std::io::{BufRead, Write};

use chrono::Utc;
use pingan_domain::events::{CallInput, QrScanInput};
use pingan_domain::time::shanghai;
use serde_json::{Value, json};

use crate::enrich::{Enricher, RawEvent};

/// Counts of one offline run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OfflineSummary {
    /// Lines classified.
    pub ok: u64,
    /// Lines rejected.
    pub errors: u64,
}

/// Turns one input line into a raw record, or an error message.
pub fn parse_line(line: &str) -> Result<RawEvent, Value> {
    let mut v: Value = serde_json::from_str(line)
        .map_err(|e| json!({"code": "invalid_json", "message": e.to_string()}))?;
    let now = Utc::now();
    let Some(obj) = v.as_object_mut() else {
        return Err(json!({"code": "wrong_type", "message": "each line must be a JSON object"}));
    };
    if obj.contains_key("plate_id") {
        obj.entry("sig")
            .or_insert_with(|| Value::String("offline".into()));
        let q = QrScanInput::validate(&v)
            .map_err(|e| json!({"code": "validation_failed", "details": e}))?;
        let event_id = q.event_id.unwrap_or_else(uuid::Uuid::now_v7);
        return Ok(RawEvent::Qr(q.into_record(
            event_id,
            now.with_timezone(&shanghai()),
            None,
        )));
    }
    obj.entry("received_at")
        .or_insert_with(|| Value::String(now.with_timezone(&shanghai()).to_rfc3339()));
    let mut errors = Vec::new();
    let c = CallInput::validate(&v, 0, now, &mut errors)
        .ok_or_else(|| json!({"code": "validation_failed", "details": errors}))?;
    let event_id = c.event_id.unwrap_or_else(uuid::Uuid::now_v7);
    Ok(RawEvent::Call(c.into_record(event_id, now, None)))
}

/// Classifies every line of `input` into `output`. Invalid lines produce
/// `{"error": …, "line": N}` and processing continues.
pub fn run(
    enricher: &mut Enricher,
    input: impl BufRead,
    mut output: impl Write,
) -> std::io::Result<OfflineSummary> {
    let mut summary = OfflineSummary::default();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line) {
            Ok(raw) => {
                let (event, _) = enricher.enrich(&raw);
                serde_json::to_writer(&mut output, &event)?;
                summary.ok += 1;
            }
            Err(error) => {
                serde_json::to_writer(&mut output, &json!({"error": error, "line": i + 1}))?;
                summary.errors += 1;
            }
        }
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified_and_bad_lines_reported() {
        let input = "{\"description\": \"有人冒充公检法让我转账到安全账户\"}\n\
                     not json\n\
                     {\"description\": \"\"}\n\
                     {\"plate_id\": \"MHQR-101-00000001\", \"kind\": \"help\", \"description\": \"孩子走丢了\"}\n";
        let mut e = Enricher::builtin().unwrap();
        let mut out = Vec::new();
        let s = run(&mut e, input.as_bytes(), &mut out).unwrap();
        assert_eq!(s, OfflineSummary { ok: 2, errors: 2 });
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["subtype"], "FRAUD_FAKE_GOV");
        assert_eq!(lines[1]["line"], 2);
        assert_eq!(lines[2]["error"]["code"], "validation_failed");
        assert_eq!(lines[3]["source"], "qr");
    }
}
