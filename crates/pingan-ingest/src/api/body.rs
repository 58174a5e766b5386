//! Reading a JSON body defensively: content type first, then the declared length, then a
//! streaming limit and a read deadline, then strict UTF-8 and strict JSON.
//!
//! The order matters: a 10 GB upload is refused from its `Content-Length` before a byte of it
//! is read, and one that lies about its length (or is chunked) is cut off at the limit.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use http_body_util::LengthLimitError;
use serde_json::Value;

use super::error::ApiError;

/// `Content-Type` must be `application/json`, optionally with `charset=utf-8`, and the body
/// must not be compressed (no decompression means no compression bomb; RFC 7694 answers an
/// unsupported `Content-Encoding` with 415).
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    for enc in headers.get_all(header::CONTENT_ENCODING) {
        if !enc
            .to_str()
            .is_ok_and(|e| e.trim().eq_ignore_ascii_case("identity"))
        {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(ApiError::UnsupportedMediaType);
    };
    let mut parts = ct.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|m| m.eq_ignore_ascii_case("application/json"))
    {
        return Err(ApiError::UnsupportedMediaType);
    }
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("charset")
            && !v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    Ok(())
}

/// Reads the body (at most `limit` bytes, within `timeout`) and parses one JSON value.
pub(crate) async fn read_json(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Value, ApiError> {
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        let declared = len.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok());
        match declared {
            Some(n) if n > limit as u64 => return Err(ApiError::PayloadTooLarge { limit }),
            Some(_) => {}
            None => return Err(ApiError::BodyRead),
        }
    }
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => return Err(ApiError::BodyTimeout),
        Ok(Err(e)) => {
            let inner = e.into_inner();
            let too_large = std::iter::successors(
                Some(inner.as_ref() as &(dyn std::error::Error + 'static)),
                |e| e.source(),
            )
            .any(|e| e.is::<LengthLimitError>());
            return Err(if too_large {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::BodyRead
            });
        }
        Ok(Ok(b)) => b,
    };
    parse_json(&bytes)
}

/// Strict JSON: UTF-8 without a byte order mark, exactly one value, serde_json's recursion
/// limit (128) in force, and no duplicate keys.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(ApiError::MalformedJson {
            reason: "a byte order mark is not allowed".into(),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| ApiError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    if text.trim().is_empty() {
        return Err(ApiError::MalformedJson {
            reason: "the body is empty".into(),
        });
    }
    // One pass that builds the value and refuses duplicate keys: serde_json would keep the last
    // of two equal keys, and a body whose meaning depends on which parser reads it (JSON
    // smuggling) is refused instead.
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde::de::DeserializeSeed::deserialize(strict::StrictValue, &mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| ApiError::MalformedJson {
            reason: e.to_string(),
        })?;
    Ok(value)
}

mod strict {
    //! Builds a [`Value`] like serde_json does, but fails on a duplicate object key.
    use std::fmt;

    use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Number, Value};

    pub(super) struct StrictValue;

    impl<'de> DeserializeSeed<'de> for StrictValue {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for StrictValue {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
            Number::from_f64(v)
                .map(Value::Number)
                .ok_or_else(|| E::custom("number out of range"))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(v) = seq.next_element_seed(StrictValue)? {
                out.push(v);
            }
            Ok(Value::Array(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
                }
                let v = map.next_value_seed(StrictValue)?;
                out.insert(key, v);
            }
            Ok(Value::Object(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ct(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn content_types() {
        assert!(require_json(&ct("application/json")).is_ok());
        assert!(require_json(&ct("Application/JSON; charset=UTF-8")).is_ok());
        assert!(require_json(&ct("application/json; charset=utf-16")).is_err());
        assert!(require_json(&ct("text/plain")).is_err());
        assert!(require_json(&ct("application/jsonx")).is_err());
        assert!(require_json(&HeaderMap::new()).is_err());
        let mut gz = ct("application/json");
        gz.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(require_json(&gz).is_err());
    }

    #[test]
    fn strict_json() {
        let v = parse_json(br#"{"a": [1, -2, 1.5, null, true, {"b": "\u00e9"}]}"#).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": [1, -2, 1.5, null, true, {"b": "é"}]})
        );
        let code = |b: &[u8]| parse_json(b).unwrap_err().code();
        assert_eq!(code(b"\xEF\xBB\xBF{}"), "malformed_json");
        assert_eq!(code(b"{\"a\": \"\xFF\"}"), "invalid_utf8");
        assert_eq!(code(b"{} {}"), "malformed_json");
        assert_eq!(code(b"{\"a\": NaN}"), "malformed_json");
        assert_eq!(code(b"{'a': 1}"), "malformed_json");
        assert_eq!(code(b"{\"a\": 1,}"), "malformed_json");
        assert_eq!(code(b"{\"a\": \"\\ud800\"}"), "malformed_json");
        assert_eq!(code(b""), "malformed_json");
        assert_eq!(
            code(br#"{"a": 1, "b": {"c": 1, "c": 2}}"#),
            "malformed_json"
        );
        assert_eq!(code("[".repeat(10_000).as_bytes()), "malformed_json");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let mut h = ct("application/json");
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("1000000"));
        let err = read_json(&h, Body::from("{}"), 100, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "payload_too_large");
        let err = read_json(
            &ct("application/json"),
            Body::from(vec![b' '; 101]),
            100,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.code(),
            "payload_too_large",
            "a body without a length is cut at the limit"
        );
    }
}
