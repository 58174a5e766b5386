//! The HTTP API: routes, shared state, errors and output formats.
//!
//! Every handler parses its query string into typed values ([`params`](mod@params)), asks the
//! [`IncidentStore`] and renders JSON (or CSV for tabular endpoints). Errors carry the stable
//! body `{"error": {"code", "message", "details": [{"field", "reason"}]}}`.

pub mod assets;
pub mod counts;
pub mod feeds;
pub mod heatmap;
pub mod labels;
pub mod live;
pub mod params;
pub mod rankings;
pub mod report;
pub mod terms;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Value, json};

use crate::hub::LiveHub;
use crate::metrics::QueryMetrics;
use crate::store::{IncidentStore, StoreError};
use params::{Format, Params};

/// Every route the service answers, as written in `openapi.json`.
pub const ROUTES: &[&str] = &[
    "/",
    "/openapi.json",
    "/v1/meta",
    "/v1/areas.geojson",
    "/v1/counts",
    "/v1/alerts",
    "/v1/incidents",
    "/v1/rankings",
    "/v1/heatmap",
    "/v1/terms",
    "/v1/report",
    "/v1/live",
];

/// The OpenAPI 3.1 document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// A clock, injectable so tests can pin "now".
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// State shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    /// Where data comes from.
    pub store: Arc<dyn IncidentStore>,
    /// Metrics.
    pub metrics: QueryMetrics,
    /// Live push hub.
    pub live: LiveHub,
    /// Current time.
    pub clock: Clock,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `store` with the system clock and a live hub that nobody polls yet.
    pub fn new(store: Arc<dyn IncidentStore>, metrics: QueryMetrics) -> AppState {
        AppState {
            store,
            metrics,
            live: LiveHub::new(),
            clock: Arc::new(Utc::now),
        }
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}

/// An API error with its HTTP status and stable code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A malformed or out-of-range parameter (`400 bad_parameter`).
    #[error("{message}")]
    BadParameter {
        /// The parameter.
        param: String,
        /// What is wrong, for a person.
        message: String,
    },
    /// No such route (`404 not_found`).
    #[error("not found")]
    NotFound,
    /// The store failed (`503 store_unavailable` or `500 internal`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    /// A `bad_parameter` error.
    pub fn bad(param: &str, message: impl Into<String>) -> ApiError {
        ApiError::BadParameter {
            param: param.to_owned(),
            message: message.into(),
        }
    }

    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(StoreError::TooExpensive(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Store(StoreError::Query(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadParameter { .. } => "bad_parameter",
            ApiError::NotFound => "not_found",
            ApiError::Store(StoreError::Unavailable(_)) => "store_unavailable",
            ApiError::Store(StoreError::TooExpensive(_)) => "query_too_expensive",
            ApiError::Store(StoreError::Query(_)) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (message, details) = match &self {
            ApiError::BadParameter { param, message } => (
                message.clone(),
                json!([{ "field": param, "reason": message }]),
            ),
            ApiError::NotFound => ("no such resource; see /openapi.json".to_owned(), json!([])),
            ApiError::Store(e) => {
                tracing::warn!(error = %e, "store query failed");
                match e {
                    StoreError::Unavailable(_) => (
                        "the database is not reachable; retry shortly".to_owned(),
                        json!([]),
                    ),
                    StoreError::TooExpensive(_) => (
                        "the database could not answer within its memory or time limits; \
                         narrow the range or the filters, or use fewer dimensions"
                            .to_owned(),
                        json!([]),
                    ),
                    StoreError::Query(_) => ("internal error".to_owned(), json!([])),
                }
            }
        };
        let mut resp = (
            self.status(),
            axum::Json(
                json!({"error": {"code": self.code(), "message": message, "details": details}}),
            ),
        )
            .into_response();
        if matches!(self, ApiError::Store(StoreError::Unavailable(_))) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

/// Parses a query string into [`Params`], allowing only `allowed` names.
pub fn params(
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
    allowed: &[&str],
) -> Result<Params, ApiError> {
    let Query(pairs) =
        q.map_err(|e| ApiError::bad("query", format!("malformed query string: {e}")))?;
    Params::new(pairs, allowed)
}

/// A JSON object whose keys keep their insertion order (column order in CSV).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row(pub Vec<(String, Value)>);

impl Row {
    /// Appends a field.
    pub fn put(&mut self, k: impl Into<String>, v: impl Into<Value>) -> &mut Row {
        self.0.push((k.into(), v.into()));
        self
    }
}

impl Serialize for Row {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

fn csv_field(v: &Value) -> String {
    let s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(";"),
        other => other.to_string(),
    };
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(['=', '+', '-', '@']) && v.is_string() {
        // Quote, and defuse spreadsheet formulas in text cells.
        let s = if s.starts_with(['=', '+', '-', '@']) && v.is_string() {
            format!("'{s}")
        } else {
            s
        };
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Renders rows as CSV with `columns` as the header.
pub fn to_csv(columns: &[String], rows: &[Row]) -> String {
    let mut out = String::from("\u{feff}");
    out.push_str(
        &columns
            .iter()
            .map(|c| csv_field(&Value::String(c.clone())))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push_str("\r\n");
    for r in rows {
        let line: Vec<String> = columns
            .iter()
            .map(|c| {
                r.0.iter()
                    .find(|(k, _)| k == c)
                    .map(|(_, v)| csv_field(v))
                    .unwrap_or_default()
            })
            .collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// JSON `body`, or CSV of `rows` when asked for.
pub fn tabular(
    format: Format,
    name: &str,
    columns: &[String],
    rows: &[Row],
    body: impl FnOnce() -> Value,
) -> Response {
    match format {
        Format::Json => axum::Json(body()).into_response(),
        Format::Csv => {
            let disposition = format!("attachment; filename=\"{name}.csv\"");
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/csv; charset=utf-8"),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        HeaderValue::from_str(&disposition)
                            .unwrap_or(HeaderValue::from_static("attachment")),
                    ),
                ],
                to_csv(columns, rows),
            )
                .into_response()
        }
    }
}

/// The router of the query API and dashboard (without the admin routes).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::file))
        .route("/openapi.json", get(openapi))
        .route("/v1/meta", get(labels::meta))
        .route("/v1/areas.geojson", get(labels::areas_geojson))
        .route("/v1/counts", get(counts::handler))
        .route("/v1/alerts", get(feeds::alerts))
        .route("/v1/incidents", get(feeds::incidents))
        .route("/v1/rankings", get(rankings::handler))
        .route("/v1/heatmap", get(heatmap::handler))
        .route("/v1/terms", get(terms::handler))
        .route("/v1/report", get(report::handler))
        .route("/v1/live", get(live::sse))
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn track(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let start = Instant::now();
    let resp = next.run(req).await;
    s.metrics.observe_http(
        &route,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// RFC 3339 in Asia/Shanghai, e.g. `2020-01-01T00:00:00+08:00`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.with_timezone(&pingan_domain::time::shanghai())
        .to_rfc3339()
}

#[cfg(test)]
pub(crate) mod tests_support {
    use crate::model::Incident;

    /// A fraud call in 七宝镇 at `time`.
    pub(crate) fn incident(id: &str, time: &str, stored_at: i64) -> Incident {
        Incident {
            event_id: id.to_owned(),
            source: "call".into(),
            event_time: chrono::DateTime::parse_from_rfc3339(time)
                .unwrap()
                .with_timezone(&pingan_domain::time::shanghai()),
            category: "FRAUD".into(),
            subtype: "FRAUD_FAKE_GOV".into(),
            department: Some("ANTIFRAUD".into()),
            priority: 2,
            district: Some("310112".into()),
            town: Some("310112102".into()),
            station: Some("MH-PS-QIBAO".into()),
            compound: Some("MH-CP-102-001".into()),
            lat: Some(31.16),
            lon: Some(121.35),
            h3: pingan_domain::area::AreaIndex::h3_res9(31.16, 121.35),
            tags: vec![],
            keywords: vec!["冒充".into(), "公检法".into()],
            description: "自称公安局要求转账".into(),
            stored_at,
        }
    }
}

#[cfg(test)]
mod tests;
