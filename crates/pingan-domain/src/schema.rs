//! JSON Schemas of the wire types, generated from the Rust types.
//!
//! `schemas/events/*.schema.json` are these schemas, committed so non-Rust consumers (the CAD
//! vendor, BI tools) can validate against them; a test fails when a committed file is stale
//! (`PINGAN_BLESS=1 cargo test -p pingan-domain schema` rewrites them).

use schemars::schema_for;
use serde_json::Value;

use crate::events::{CallInput, CallRecord, EnrichedEvent, QrScanInput, QrScanRecord};

/// `(file stem, schema)` for every wire type.
pub fn all() -> Vec<(&'static str, Value)> {
    vec![
        ("call-input.v1", schema_for!(CallInput).to_value()),
        ("qr-scan-input.v1", schema_for!(QrScanInput).to_value()),
        ("pingan.call110.v1", schema_for!(CallRecord).to_value()),
        ("pingan.qrscan.v1", schema_for!(QrScanRecord).to_value()),
        ("pingan.enriched.v1", schema_for!(EnrichedEvent).to_value()),
    ]
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::events::{CallInput, CallRecord, EnrichedEvent, QrScanInput, QrScanRecord};

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/events")
    }

    #[test]
    fn committed_schemas_match_the_rust_types() {
        let bless = std::env::var_os("PINGAN_BLESS").is_some();
        for (stem, schema) in all() {
            let path = dir().join(format!("{stem}.schema.json"));
            let want = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            if bless {
                std::fs::write(&path, &want).unwrap();
                continue;
            }
            let got = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                got,
                want,
                "{} is stale: run PINGAN_BLESS=1 cargo test -p pingan-domain schema",
                path.display()
            );
        }
    }

    fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(text: &str, name: &str) {
        let value: Value = serde_json::from_str(text).unwrap();
        let typed: T = serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("{name} does not decode: {e}"));
        let back = serde_json::to_value(&typed).unwrap();
        assert_eq!(back, value, "{name} does not round-trip unchanged");
    }

    #[test]
    fn golden_examples_decode_and_round_trip() {
        let ex = dir().join("examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(&ex).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            match name.split('.').next().unwrap() {
                "call-input" => round_trip::<CallInput>(&text, &name),
                "qr-scan-input" => round_trip::<QrScanInput>(&text, &name),
                "call110" => round_trip::<CallRecord>(&text, &name),
                "qrscan" => round_trip::<QrScanRecord>(&text, &name),
                "enriched" => round_trip::<EnrichedEvent>(&text, &name),
                other => panic!("unknown example kind {other} ({name})"),
            }
            seen += 1;
        }
        assert!(seen >= 5, "every wire type has a golden example");
    }

    #[test]
    fn call_input_examples_also_pass_strict_validation() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-29T12:00:00+08:00")
            .unwrap()
            .with_timezone(&chrono::Utc);
        for entry in std::fs::read_dir(dir().join("examples")).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("call-input")
            {
                let v: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                assert!(
                    CallInput::validate_body(&v, now).is_ok(),
                    "{}",
                    path.display()
                );
            }
        }
    }
}
