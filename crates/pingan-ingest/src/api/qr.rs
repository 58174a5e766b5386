//! The public QR doorplate endpoints: `POST /v1/qr-scans` and the form at `GET /qr/{plate_id}`.
//!
//! Order of checks for a report, cheapest refusal first and nothing touching Kafka before the
//! signature is verified:
//!
//! 1. per-client rate limit (429), so a flood is shed before any parsing;
//! 2. content type (415), body size (413), body deadline (408), strict JSON (400);
//! 3. the plate signature, in constant time (403), before the rest of the body is judged;
//! 4. field validation (422);
//! 5. the plate must be in service (404);
//! 6. per-plate rate limit (429): only after the signature, so forged requests cannot use up
//!    a real plate's budget;
//! 7. publish, then 202 with the event id.

use std::time::Instant;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use pingan_domain::events::QrScanInput;
use pingan_domain::time::to_shanghai;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::body::{read_json, require_json};
use super::client::client_key;
use super::error::ApiError;
use super::{AppState, RequestId};
use crate::publish::Record;
use crate::qr_form::{self, FormPage, PlaceView};

#[derive(Serialize)]
struct Accepted {
    event_id: Uuid,
}

fn rate_limited(r: crate::ratelimit::RetryAfter) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: r.secs(),
    }
}

pub(super) async fn post_qr_scan(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let s = &state.inner;
    let client = client_key(
        &parts.extensions,
        &parts.headers,
        &s.settings.trusted_proxies,
    );
    s.client_limiter
        .check(&client, Instant::now())
        .map_err(rate_limited)?;
    require_json(&parts.headers)?;
    let value = read_json(
        &parts.headers,
        body,
        s.settings.qr_max_body_bytes,
        s.settings.body_timeout,
    )
    .await?;
    if let (Some(Value::String(plate)), Some(Value::String(sig))) =
        (value.get("plate_id"), value.get("sig"))
    {
        s.settings
            .signer
            .verify(plate, sig)
            .map_err(ApiError::BadSignature)?;
    }
    let input = QrScanInput::validate(&value).map_err(ApiError::Validation)?;
    if s.area.doorplate(&input.plate_id).is_none() {
        return Err(ApiError::UnknownPlate);
    }
    s.plate_limiter
        .check(&input.plate_id, Instant::now())
        .map_err(rate_limited)?;
    // Validation already normalised the number, so this only guards the invariant.
    let contact = input
        .contact_phone
        .as_deref()
        .map(|p| s.settings.hasher.tokenize(p))
        .transpose()
        .map_err(|_| ApiError::Internal("phone_passed_validation_but_not_tokenize"))?;
    // Never the client's own id: see `qr_event_id` (CONTRACT §9, record identity).
    let event_id = pingan_domain::events::qr_event_id(&input.plate_id, input.event_id);
    let record = input.into_record(event_id, to_shanghai(&Utc::now()), contact);
    let payload =
        serde_json::to_vec(&record).map_err(|_| ApiError::Internal("serialize_qr_record"))?;
    let rid = parts
        .extensions
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let rec = Record {
        topic: s.settings.qr_topic,
        key: event_id.to_string().into_bytes(),
        payload,
        headers: vec![("x-request-id", rid.into_bytes())],
    };
    state.publish(s.settings.qr_topic, vec![rec]).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { event_id })).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct FormQuery {
    sig: Option<String>,
}

/// `GET /qr/{plate_id}?sig=…`: the report form, or a clear error page.
pub(super) async fn get_form(
    State(state): State<AppState>,
    Path(plate_id): Path<String>,
    query: Result<Query<FormQuery>, QueryRejection>,
) -> Response {
    let s = &state.inner;
    let sig = query.ok().and_then(|q| q.0.sig).unwrap_or_default();
    let page = if plate_id.len() > 64
        || sig.len() > 128
        || s.settings.signer.verify(&plate_id, &sig).is_err()
    {
        (StatusCode::FORBIDDEN, FormPage::BadSignature)
    } else {
        match s.area.doorplate(&plate_id) {
            None => (StatusCode::NOT_FOUND, FormPage::UnknownPlate),
            Some(plate) => {
                let town = s.area.town(plate.town_code).map(|t| t.name_zh.clone());
                let compound = plate
                    .compound_id
                    .and_then(|c| s.area.compound(c))
                    .map(|c| c.name_zh.clone());
                let place = PlaceView {
                    plate_id: plate_id.clone(),
                    sig,
                    address: plate.address_zh,
                    town,
                    compound,
                };
                (StatusCode::OK, FormPage::Form(place))
            }
        }
    };
    let nonce = Uuid::new_v4().simple().to_string();
    let html = qr_form::render(&page.1, &nonce);
    let mut resp = (page.0, Html(html)).into_response();
    let code = match page.1 {
        FormPage::BadSignature => {
            Some(ApiError::BadSignature(pingan_domain::qr::SignatureError::Mismatch).code())
        }
        FormPage::UnknownPlate => Some(ApiError::UnknownPlate.code()),
        FormPage::Form(_) => None,
    };
    if let Some(code) = code {
        resp.extensions_mut().insert(super::error::ErrorCode(code));
    }
    let h = resp.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&qr_form::content_security_policy(&nonce)) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    resp
}
