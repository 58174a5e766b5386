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
pub mod session;
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

use crate::auth::{Access, AuthFailure, Principal, ReadRole};
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
    "/v1/session",
    "/v1/access-log",
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
    /// Read tokens and dashboard sessions.
    pub access: Arc<Access>,
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
            access: Arc::new(Access::open_dev()),
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
    /// No credentials, or credentials that are not valid (`401 unauthorized`).
    #[error("authentication required")]
    Unauthorized(AuthFailure),
    /// The caller's token is over one of its limits (`429 too_many_requests`).
    #[error("too many requests")]
    TooMany(crate::auth::LimitHit),
    /// The caller's role or scope does not allow this request (`403 forbidden`).
    #[error("{message}")]
    Forbidden {
        /// The parameter that reaches outside the scope, when one does.
        param: Option<String>,
        /// What is not allowed, for a person.
        message: String,
    },
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

    /// A `forbidden` error about parameter `param`.
    pub fn forbidden(param: Option<&str>, message: impl Into<String>) -> ApiError {
        ApiError::Forbidden {
            param: param.map(str::to_owned),
            message: message.into(),
        }
    }

    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
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
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::TooMany(_) => "too_many_requests",
            ApiError::Forbidden { .. } => "forbidden",
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
            ApiError::Unauthorized(AuthFailure::Missing) => (
                "this endpoint needs Authorization: Bearer <token> (or a dashboard login)"
                    .to_owned(),
                json!([]),
            ),
            ApiError::Unauthorized(AuthFailure::Invalid) => {
                ("the token or session is not valid".to_owned(), json!([]))
            }
            ApiError::TooMany(hit) => (
                match hit {
                    crate::auth::LimitHit::Rate => {
                        "this token is over its request rate; retry shortly"
                    }
                    crate::auth::LimitHit::Concurrency => {
                        "this token has too many requests in flight; retry when one finishes"
                    }
                    crate::auth::LimitHit::LiveStreams => {
                        "too many live streams are open; close one (or retry shortly)"
                    }
                }
                .to_owned(),
                json!([]),
            ),
            ApiError::Forbidden { param, message } => (
                message.clone(),
                param
                    .as_ref()
                    .map_or_else(|| json!([]), |p| json!([{ "field": p, "reason": message }])),
            ),
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
        if matches!(self, ApiError::TooMany(_)) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        if matches!(self, ApiError::Unauthorized(_)) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"pingan\""),
            );
        }
        resp
    }
}

/// Parses a query string into [`Params`], allowing only `allowed` names; its dimension filters
/// are narrowed to the scope of `who`.
pub fn params(
    who: &Principal,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
    allowed: &[&str],
) -> Result<Params, ApiError> {
    let Query(pairs) =
        q.map_err(|e| ApiError::bad("query", format!("malformed query string: {e}")))?;
    Ok(Params::new(pairs, allowed)?.scoped(who.scope.clone()))
}

/// How many rows a response carried, for the access log (set by handlers of incident-level
/// reads and exports as a response extension).
#[derive(Debug, Clone, Copy)]
pub struct RowsReturned(pub u64);

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
    let mut resp = match format {
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
    };
    resp.extensions_mut()
        .insert(RowsReturned(u64::try_from(rows.len()).unwrap_or(u64::MAX)));
    resp
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
        .route(
            "/v1/session",
            get(session::current)
                .post(session::login)
                .delete(session::logout),
        )
        .route("/v1/access-log", get(session::access_log))
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
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

/// The role an endpoint needs; CSV export (`format=csv`) needs an analyst anywhere.
fn required_role(path: &str, query: Option<&str>) -> ReadRole {
    let csv = query.is_some_and(|q| q.split('&').any(|kv| kv.eq_ignore_ascii_case("format=csv")));
    match path {
        "/v1/access-log" => ReadRole::Admin,
        "/v1/incidents" => ReadRole::Analyst,
        _ if csv => ReadRole::Analyst,
        _ => ReadRole::Viewer,
    }
}

/// Whether a successful answer to this request is an incident-level read or an export, which
/// the access log records: incident rows, CSV, the access log itself, and a live stream that
/// carries incidents (analysts and admins; its row count is 0, the stream is open-ended).
fn logged(path: &str, role_needed: ReadRole, role: ReadRole) -> bool {
    matches!(path, "/v1/incidents" | "/v1/access-log")
        || role_needed >= ReadRole::Analyst
        || (path == "/v1/live" && role >= ReadRole::Analyst)
}

/// Authenticates every `/v1/*` request (but the login itself), checks the endpoint's role and
/// hands the principal to the handler; records incident-level reads and exports.
async fn authorize(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if !path.starts_with("/v1/") || path == "/v1/session" {
        return next.run(req).await;
    }
    let who = match s.access.authenticate(req.headers()) {
        Ok(p) => p,
        Err(f) => return ApiError::Unauthorized(f).into_response(),
    };
    let needed = required_role(&path, req.uri().query());
    if who.role < needed {
        return ApiError::forbidden(
            None,
            format!(
                "this request needs the {} role; the token {:?} is a {}",
                needed.as_str(),
                who.name,
                who.role.as_str()
            ),
        )
        .into_response();
    }
    // Live streams are limited by count (in the handler), everything else by rate and by
    // requests in flight, per token.
    let _slot = if path == "/v1/live" {
        None
    } else {
        match s.access.admit(&who) {
            Ok(slot) => Some(slot),
            Err(hit) => return ApiError::TooMany(hit).into_response(),
        }
    };
    let filters = req.uri().query().unwrap_or("").to_owned();
    req.extensions_mut().insert(who.clone());
    let resp = next.run(req).await;
    if logged(&path, needed, who.role) && resp.status().is_success() {
        let rows = resp.extensions().get::<RowsReturned>().map_or(0, |r| r.0);
        let entry = crate::model::AccessEntry {
            at: s.now(),
            principal: who.name,
            role: who.role.as_str().to_owned(),
            scope: who.scope.code().to_owned(),
            endpoint: path,
            filters,
            rows,
        };
        // Written before the answer leaves: incident data nobody can account for is not sent
        // (an audit trail that may miss reads is not one).
        if let Err(e) = s.store.log_access(&entry).await {
            tracing::warn!(error = %e, endpoint = %entry.endpoint, "access log write failed; answer withheld");
            return ApiError::Store(e).into_response();
        }
    }
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
