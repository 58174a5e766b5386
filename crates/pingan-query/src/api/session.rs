//! The dashboard login (`/v1/session`) and the access log (`GET /v1/access-log`, admins).
//!
//! The dashboard trades a read token for a session cookie once (`POST /v1/session`), so the
//! token never sits in page script or storage: the cookie is `HttpOnly` (script cannot read
//! it), `SameSite=Strict` (no other site can make the browser send it) and `Secure` when the
//! dashboard is reached over TLS.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiError, AppState, Row, params, rfc3339, tabular};
use crate::auth::{self, AuthFailure, Principal};

fn describe(p: &Principal, dev: bool) -> serde_json::Value {
    json!({"name": p.name, "role": p.role.as_str(), "scope": p.scope.code(), "dev": dev})
}

/// `GET /v1/session`: who the dashboard is logged in as (`401` when not), and whether the
/// service runs in development mode (the DEV marker).
pub async fn current(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match s.access.authenticate(&headers) {
        Ok(p) => axum::Json(describe(&p, s.access.dev())).into_response(),
        Err(f) => ApiError::Unauthorized(f).into_response(),
    }
}

/// `POST /v1/session` with `{"token": "<secret>"}`: sets the session cookie.
pub async fn login(State(s): State<AppState>, headers: HeaderMap, body: String) -> Response {
    let token = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_owned));
    let Some(token) = token else {
        return ApiError::bad("token", "send {\"token\": \"<read token>\"} as JSON")
            .into_response();
    };
    match s.access.login(token.trim()) {
        Some((id, p)) => (
            StatusCode::OK,
            [(
                header::SET_COOKIE,
                auth::session_set_cookie(&id, auth::over_tls(&headers)),
            )],
            axum::Json(describe(&p, s.access.dev())),
        )
            .into_response(),
        None if s.access.is_open() => axum::Json(describe(&Principal::dev(), true)).into_response(),
        None => ApiError::Unauthorized(AuthFailure::Invalid).into_response(),
    }
}

/// `DELETE /v1/session`: logs out.
pub async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    s.access.logout(&headers);
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, auth::session_clear_cookie())],
    )
        .into_response()
}

/// `GET /v1/access-log?since=&limit=&format=`: who read incident-level data, newest first
/// (admins only; the router checks the role).
pub async fn access_log(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(&who, q, &["since", "limit", "format"])?;
    let format = p.format()?;
    let since = p
        .time("since")?
        .unwrap_or_else(|| s.now() - chrono::Duration::days(7));
    let limit = usize::try_from(p.uint("limit", 500, 1, 10_000)?).unwrap_or(500);
    let entries = s.store.access_log(since, limit).await?;
    let rows: Vec<Row> = entries
        .iter()
        .map(|e| {
            let mut r = Row::default();
            r.put("at", rfc3339(e.at))
                .put("principal", e.principal.clone())
                .put("role", e.role.clone())
                .put("scope", e.scope.clone())
                .put("endpoint", e.endpoint.clone())
                .put("filters", e.filters.clone())
                .put("rows", e.rows);
            r
        })
        .collect();
    let columns: Vec<String> = [
        "at",
        "principal",
        "role",
        "scope",
        "endpoint",
        "filters",
        "rows",
    ]
    .iter()
    .map(|c| (*c).to_owned())
    .collect();
    Ok(tabular(
        format,
        "access-log",
        &columns,
        &rows,
        || json!({ "entries": rows }),
    ))
}
