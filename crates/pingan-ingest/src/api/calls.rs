//! `POST /v1/calls`: 110 call records from the CAD, one object or an array of up to 1,000.
//!
//! All-or-nothing: the body is validated as a whole (every invalid field of every item is
//! reported in one 422), then every record is produced, and `202` is sent only after Kafka
//! acknowledged all of them. Any produce failure is a 503 and the CAD resends the same body;
//! its `event_id`s make that idempotent downstream.

use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use pingan_domain::events::{CallInput, FieldError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::body::{read_json, require_json};
use super::error::ApiError;
use super::{AppState, RequestId};
use crate::publish::Record;

#[derive(Serialize)]
struct Accepted {
    accepted: usize,
    event_ids: Vec<Uuid>,
}

/// Checks the bearer token when tokens are configured. Compares SHA-256 digests in constant
/// time against every configured token, so neither the token nor its length leaks by timing.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let tokens = &state.inner.settings.api_tokens;
    if tokens.is_empty() {
        return Ok(());
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or(ApiError::Unauthorized)?;
    let given = Sha256::digest(given.as_bytes());
    let mut ok = subtle::Choice::from(0);
    for t in tokens {
        ok |= Sha256::digest(t.expose().as_bytes()).ct_eq(&given);
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

pub(super) async fn post_calls(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    require_json(&headers)?;
    let settings = &state.inner.settings;
    let value = read_json(
        &headers,
        body,
        settings.calls_max_body_bytes,
        settings.body_timeout,
    )
    .await?;
    let now = Utc::now();
    let calls = CallInput::validate_body(&value, now).map_err(ApiError::Validation)?;
    drop(value);
    let mut event_ids = Vec::with_capacity(calls.len());
    let mut records = Vec::with_capacity(calls.len());
    let mut phone_errors = Vec::new();
    for (index, call) in calls.into_iter().enumerate() {
        let event_id = call.event_id.unwrap_or_else(Uuid::now_v7);
        let caller = match call
            .caller_phone
            .as_deref()
            .map(|p| settings.hasher.tokenize(p))
            .transpose()
        {
            Ok(c) => c,
            Err(e) => {
                // Validation already normalised the number; this only guards the invariant.
                phone_errors.push(FieldError {
                    index,
                    field: "caller_phone".into(),
                    reason: e.to_string(),
                    code: "bad_phone",
                });
                continue;
            }
        };
        let record = call.into_record(event_id, now, caller);
        let payload =
            serde_json::to_vec(&record).map_err(|_| ApiError::Internal("serialize_call_record"))?;
        records.push(Record {
            topic: settings.calls_topic,
            key: event_id.to_string().into_bytes(),
            payload,
            headers: vec![("x-request-id", rid.0.clone().into_bytes())],
        });
        event_ids.push(event_id);
    }
    if !phone_errors.is_empty() {
        return Err(ApiError::Validation(phone_errors));
    }
    state.publish(settings.calls_topic, records).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            accepted: event_ids.len(),
            event_ids,
        }),
    )
        .into_response())
}
