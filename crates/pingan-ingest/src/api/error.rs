//! [`ApiError`]: every error answer of the ingest API, with its status and stable code.
//!
//! The body is always `{"error": {"code", "message", "details": [{"index", "field", "reason",
//! "code"}]}}`. 4xx messages speak to the caller; 5xx messages are generic and the cause stays in
//! the server log. The code also goes into the response extensions ([`ErrorCode`]) so the
//! observing middleware can count rejects by reason without parsing bodies.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pingan_domain::events::FieldError;
use pingan_domain::qr::SignatureError;
use serde::Serialize;

/// The stable code of an error answer, stored in the response extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

/// The emergency hint every rate-limited citizen sees.
pub const DIAL_110: &str = "提交过于频繁，请稍后再试。紧急情况请直接拨打110。(Too many reports; try again later. In an emergency dial 110.)";

/// An error answer of the ingest API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: a bearer token is required and was missing or wrong.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// 415: the body is not declared as `application/json`.
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// 413: the body exceeds the route's limit.
    #[error("the body exceeds {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 408: the body did not arrive in time.
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// 400: the body could not be read.
    #[error("the request body could not be read")]
    BodyRead,
    /// 400: the body is not valid UTF-8.
    #[error("the body is not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// 400: the body is not one well-formed JSON value.
    #[error("malformed JSON: {reason}")]
    MalformedJson {
        /// What the parser saw, with line and column.
        reason: String,
    },
    /// 422: items failed validation; every problem of every item is listed.
    #[error("{} invalid field(s); nothing was accepted", .0.len())]
    Validation(Vec<FieldError>),
    /// 403: the doorplate signature is not valid.
    #[error("the doorplate signature is not valid")]
    BadSignature(#[source] SignatureError),
    /// 404: the doorplate is not in service.
    #[error("unknown doorplate")]
    UnknownPlate,
    /// 429: too many reports from this address or for this plate.
    #[error("rate limited")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// 503: Kafka did not acknowledge the records in time; retry with the same event ids.
    #[error("the event store is not accepting records right now; retry with the same event_id(s)")]
    Unavailable {
        /// Seconds to wait before retrying.
        retry_after_secs: u64,
        /// The stable code of the cause (`kafka_queue_full`, `kafka_timeout` …).
        cause: &'static str,
    },
    /// 503: the request as a whole took too long.
    #[error("the request took too long; retry with the same event_id(s)")]
    RequestTimeout {
        /// Seconds to wait before retrying.
        retry_after_secs: u64,
    },
    /// 404: no such route.
    #[error("no such endpoint")]
    NotFound,
    /// 405: the route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 500: a bug; the cause is logged, not sent.
    #[error("internal error")]
    Internal(&'static str),
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'static str,
    message: String,
    details: &'a [FieldError],
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::BodyRead | ApiError::InvalidUtf8 { .. } | ApiError::MalformedJson { .. } => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadSignature(_) => StatusCode::FORBIDDEN,
            ApiError::UnknownPlate | ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } | ApiError::RequestTimeout { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::BodyTimeout => "body_timeout",
            ApiError::BodyRead => "body_read_failed",
            ApiError::InvalidUtf8 { .. } => "invalid_utf8",
            ApiError::MalformedJson { .. } => "malformed_json",
            ApiError::Validation(_) => "validation_failed",
            ApiError::BadSignature(_) => "bad_signature",
            ApiError::UnknownPlate => "unknown_plate",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "kafka_unavailable",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Internal(_) => "internal",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::RateLimited { .. } => DIAL_110.to_owned(),
            ApiError::UnknownPlate => "该门牌未登记 (this doorplate is not registered)".to_owned(),
            ApiError::BadSignature(_) => {
                "二维码无效或已被篡改 (the doorplate signature is not valid)".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let details: &[FieldError] = match &self {
            ApiError::Validation(d) => d,
            _ => &[],
        };
        let body = Body {
            error: Inner {
                code,
                message: self.message(),
                details,
            },
        };
        let mut resp = (status, Json(body)).into_response();
        let retry = match &self {
            ApiError::RateLimited { retry_after_secs }
            | ApiError::Unavailable {
                retry_after_secs, ..
            }
            | ApiError::RequestTimeout { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        if let Some(secs) = retry {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(self, ApiError::Unauthorized) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"pingan-ingest\""),
            );
        }
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp.extensions_mut().insert(ErrorCode(code));
        if let ApiError::Validation(d) = &self {
            resp.extensions_mut()
                .insert(FieldCodes(d.iter().map(|e| e.code).collect()));
        }
        if let ApiError::Unavailable { cause, .. } = &self {
            resp.extensions_mut().insert(Cause(cause));
        }
        if let ApiError::Internal(what) = &self {
            resp.extensions_mut().insert(Cause(what));
        }
        resp
    }
}

/// The field error codes of a 422 answer (for the invalid-field metric).
#[derive(Debug, Clone)]
pub struct FieldCodes(pub Vec<&'static str>);

/// The internal cause of a 5xx answer (for the log line).
#[derive(Debug, Clone, Copy)]
pub struct Cause(pub &'static str);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_distinct_code_and_a_json_body() {
        let all = [
            ApiError::Unauthorized,
            ApiError::UnsupportedMediaType,
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::BodyTimeout,
            ApiError::BodyRead,
            ApiError::InvalidUtf8 { offset: 0 },
            ApiError::MalformedJson {
                reason: String::new(),
            },
            ApiError::Validation(Vec::new()),
            ApiError::BadSignature(SignatureError::Mismatch),
            ApiError::UnknownPlate,
            ApiError::RateLimited {
                retry_after_secs: 1,
            },
            ApiError::Unavailable {
                retry_after_secs: 1,
                cause: "kafka_timeout",
            },
            ApiError::RequestTimeout {
                retry_after_secs: 1,
            },
            ApiError::NotFound,
            ApiError::MethodNotAllowed,
            ApiError::Internal("x"),
        ];
        let mut codes: Vec<_> = all.iter().map(ApiError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        for e in all {
            let code = e.code();
            let resp = e.into_response();
            assert_eq!(resp.extensions().get::<ErrorCode>(), Some(&ErrorCode(code)));
        }
    }
}
