//! Component tests: the whole router over [`MemoryStore`] through `oneshot`, no I/O.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use super::tests_support::incident;
use super::{AppState, OPENAPI, ROUTES, router};
use crate::metrics::QueryMetrics;
use crate::model::{Alert, shanghai_time};
use crate::store::memory::MemoryStore;

fn app(store: MemoryStore) -> axum::Router {
    let mut state = AppState::new(Arc::new(store), QueryMetrics::unregistered().unwrap());
    let now = chrono::DateTime::parse_from_rfc3339("2020-01-01T12:00:00+08:00")
        .unwrap()
        .with_timezone(&chrono::Utc);
    state.clock = Arc::new(move || now);
    router(state)
}

fn sample() -> MemoryStore {
    let s = MemoryStore::new();
    let mut a = incident(
        "00000000-0000-4000-8000-000000000001",
        "2019-12-31T23:30:00+08:00",
        1,
    );
    a.town = Some("310112107".into());
    let b = incident(
        "00000000-0000-4000-8000-000000000002",
        "2020-01-01T00:30:00+08:00",
        2,
    );
    let b_dup = b.clone();
    let mut c = incident(
        "00000000-0000-4000-8000-000000000003",
        "2020-01-01T10:00:00+08:00",
        3,
    );
    c.category = "DSP".into();
    c.subtype = "DSP_NEIGHBOUR".into();
    c.town = None;
    s.insert([a, b, b_dup, c]);
    s
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String, String) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(resp.into_body(), 10 << 20)
        .await
        .unwrap();
    (status, ctype, String::from_utf8(body.to_vec()).unwrap())
}

async fn json(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let (s, _, b) = get(app, uri).await;
    (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

const RANGE: &str = "from=2019-12-31T00:00:00%2B08:00&to=2020-01-02T00:00:00%2B08:00";

#[tokio::test]
async fn counts_follow_the_contract_shape() {
    let app = app(sample());
    let (s, v) = json(&app, &format!("/v1/counts?{RANGE}&bucket=day&by=town")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total"], 3);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows[0]["bucket"], "2019-12-31T00:00:00+08:00");
    assert_eq!(rows[0]["town"], "310112107");
    assert_eq!(rows[0]["town_zh"], "虹桥镇");
    assert_eq!(rows[1]["bucket"], "2020-01-01T00:00:00+08:00");
    assert_eq!(rows[1]["count"], 1);
    assert!(
        rows.iter()
            .any(|r| r["town"].is_null() && r["town_en"] == "Unknown"),
        "unknown area is null: {v}"
    );
    // No bucket key without a bucket.
    let (_, v) = json(&app, &format!("/v1/counts?{RANGE}")).await;
    assert!(v["rows"][0].get("bucket").is_none());
    assert_eq!(v["rows"][0]["count"], 3);
    // The default range is the last 24 hours.
    let (_, v) = json(&app, "/v1/counts").await;
    assert_eq!(v["total"], 3, "{v}");
    assert_eq!(v["from"], "2019-12-31T12:01:00+08:00");
    assert_eq!(v["to"], "2020-01-01T12:01:00+08:00");
}

#[tokio::test]
async fn bad_parameters_are_400_bad_parameter() {
    let app = app(sample());
    for uri in [
        "/v1/counts?bucket=fortnight",
        "/v1/counts?by=town,town",
        "/v1/counts?hours=3",
        "/v1/counts?from=2020-01-02&to=2020-01-01",
        "/v1/counts?bukcet=day",
        "/v1/counts?subtype=NOT_A_TYPE",
        "/v1/counts?format=xml",
        "/v1/counts?from=1990-01-01&to=2020-01-01&bucket=hour",
        "/v1/alerts?since=soon",
        "/v1/heatmap?res=10",
        "/v1/terms?background_from=2020-01-01",
        "/v1/rankings?top=0",
    ] {
        let (s, v) = json(&app, uri).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_eq!(v["error"]["code"], "bad_parameter", "{uri}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
        assert!(v["error"]["details"][0]["field"].is_string(), "{uri}: {v}");
    }
    let (s, v) = json(&app, "/v1/nothing").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test]
async fn csv_exports_have_a_header_and_labels() {
    let app = app(sample());
    let (s, ctype, body) = get(&app, &format!("/v1/counts?{RANGE}&by=category&format=csv")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(ctype.starts_with("text/csv"));
    let lines: Vec<&str> = body.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines[0], "category,category_zh,category_en,count");
    assert!(
        lines.contains(&"FRAUD,诈骗类,Fraud (telecom / online / in-person),2"),
        "{body}"
    );
    let (_, _, body) = get(&app, &format!("/v1/incidents?{RANGE}&format=csv")).await;
    assert!(body.contains("event_id,event_time"), "{body}");
    let (_, _, body) = get(&app, "/v1/alerts?format=csv").await;
    assert!(
        body.trim_start_matches('\u{feff}')
            .starts_with("id,area_level"),
        "{body}"
    );
}

#[tokio::test]
async fn openapi_lists_every_route_and_every_route_answers() {
    let doc: Value = serde_json::from_str(OPENAPI).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for r in ROUTES {
        assert!(paths.contains_key(*r), "openapi.json lacks {r}");
    }
    assert_eq!(
        paths.len(),
        ROUTES.len(),
        "openapi.json documents a route the router lacks"
    );
    let app = app(sample());
    for r in ROUTES.iter().filter(|r| **r != "/v1/live") {
        let (s, _, body) = get(&app, r).await;
        assert_eq!(s, StatusCode::OK, "{r}: {body}");
    }
}

#[tokio::test]
async fn incidents_paginate_without_repeats() {
    let app = app(sample());
    let (_, p1) = json(&app, &format!("/v1/incidents?{RANGE}&limit=2")).await;
    let ids: Vec<&str> = p1["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "00000000-0000-4000-8000-000000000003",
            "00000000-0000-4000-8000-000000000002"
        ]
    );
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = json(
        &app,
        &format!("/v1/incidents?{RANGE}&limit=2&cursor={cursor}"),
    )
    .await;
    let ids: Vec<&str> = p2["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["00000000-0000-4000-8000-000000000001"]);
    assert!(p2["next_cursor"].is_null());
}

#[tokio::test]
async fn heatmap_is_geojson_hexagons() {
    let app = app(sample());
    let (s, ctype, body) = get(&app, &format!("/v1/heatmap?{RANGE}&res=9")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ctype, "application/geo+json");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "FeatureCollection");
    assert_eq!(v["features"][0]["properties"]["count"], 3);
    assert_eq!(
        v["features"][0]["geometry"]["coordinates"][0]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    let (_, v) = json(&app, &format!("/v1/heatmap?{RANGE}&res=9&hours=21-3")).await;
    assert_eq!(v["properties"]["sum"], 2);
}

#[tokio::test]
async fn alerts_are_newest_first() {
    let store = sample();
    let alert = |id: &str, created: i64| Alert {
        id: id.into(),
        area_level: "town".into(),
        area_code: "310112102".into(),
        category: "FRAUD".into(),
        subtype: None,
        window_start: shanghai_time(created - 3600),
        window_end: shanghai_time(created),
        observed: 9,
        expected: 2.0,
        score: 4.0,
        level: "red".into(),
        method: "poisson".into(),
        created_at: shanghai_time(created),
        updated_at: shanghai_time(created),
        p_value: 0.001,
        baseline: "8w".into(),
    };
    store.insert_alerts([alert("old", 1_577_840_000), alert("new", 1_577_850_000)]);
    let app = app(store);
    let (_, v) = json(&app, "/v1/alerts?since=2019-12-31").await;
    let ids: Vec<&str> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["new", "old"]);
    assert_eq!(v["alerts"][0]["area_zh"], "七宝镇");
    assert!(v["alerts"][0]["subtype"].is_null());
}

#[tokio::test]
async fn dashboard_and_meta_are_served() {
    let app = app(sample());
    let (s, ctype, body) = get(&app, "/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(ctype.starts_with("text/html"));
    assert!(
        body.contains("<html") || body.contains("<!doctype"),
        "{body}"
    );
    let (_, v) = json(&app, "/v1/meta").await;
    assert_eq!(v["towns"].as_array().unwrap().len(), 14);
    assert_eq!(v["categories"].as_array().unwrap().len(), 10);
    let (s, ctype, body) = get(&app, "/v1/areas.geojson").await;
    assert_eq!(
        (s, ctype.as_str()),
        (StatusCode::OK, "application/geo+json")
    );
    assert!(body.contains("FeatureCollection"));
}

#[tokio::test]
async fn rankings_and_report_compose_counts() {
    let app = app(sample());
    let (s, v) = json(
        &app,
        &format!("/v1/rankings?level=town&{RANGE}&min_count=1"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let codes: Vec<&str> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["310112102", "310112107"],
        "unknown town excluded: {v}"
    );
    let (s, v) = json(&app, &format!("/v1/report?{RANGE}&min_count=1")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total"]["count"], 3);
    assert_eq!(v["dispute_share"].as_f64(), Some(0.3333));
    assert_eq!(v["night"]["count"], 2);
}

#[tokio::test]
async fn report_names_morning_peak_congestion_by_road() {
    let s = MemoryStore::new();
    // 2020-01-01 is a Wednesday: 07:30 and 08:10 are in the morning peak, 09:30 is not.
    let jam = |id: &str, t: &str| {
        let mut i = incident(id, t, 1);
        i.category = "TRF".into();
        i.subtype = "TRF_CONGESTION".into();
        i
    };
    s.insert([
        jam(
            "00000000-0000-4000-8000-000000000011",
            "2020-01-01T07:30:00+08:00",
        ),
        jam(
            "00000000-0000-4000-8000-000000000012",
            "2020-01-01T08:10:00+08:00",
        ),
        jam(
            "00000000-0000-4000-8000-000000000013",
            "2020-01-01T09:30:00+08:00",
        ),
    ]);
    let (st, v) = json(&app(s), &format!("/v1/report?{RANGE}&min_count=1")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let peak = &v["morning_peak"];
    assert_eq!(peak["congestion_total"], 2, "{v}");
    let road = &pingan_domain::area::AreaIndex::builtin()
        .compound("MH-CP-102-001")
        .unwrap()
        .road_zh;
    assert_eq!(
        peak["roads"][0]["road_zh"].as_str(),
        Some(road.as_str()),
        "{peak}"
    );
    assert_eq!(peak["roads"][0]["count"], 2);
    assert!(peak["spots"][0]["road_zh"].is_string(), "{peak}");
}

/// The router with read tokens (production mode): a 七宝 viewer, a 七宝 analyst, an admin.
fn secured(store: MemoryStore) -> axum::Router {
    let entries: Vec<pingan_runtime::config::Sensitive> = [
        "wall:viewer:310112102:viewer-secret-00001",
        "ana:analyst:310112102:analyst-secret-0001",
        "ops:admin:*:admin-secret-000000001",
    ]
    .into_iter()
    .map(pingan_runtime::config::Sensitive::new)
    .collect();
    let mut errors = Vec::new();
    let tokens = crate::auth::parse_tokens(&entries, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let mut state = AppState::new(Arc::new(store), QueryMetrics::unregistered().unwrap());
    let now = chrono::DateTime::parse_from_rfc3339("2020-01-01T12:00:00+08:00")
        .unwrap()
        .with_timezone(&chrono::Utc);
    state.clock = Arc::new(move || now);
    state.access = Arc::new(crate::auth::Access::new(tokens, false));
    router(state)
}

async fn get_as(app: &axum::Router, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::get(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn without_a_valid_token_every_v1_endpoint_is_401_with_the_error_body() {
    let app = secured(sample());
    for r in ROUTES.iter().filter(|r| r.starts_with("/v1/")) {
        for token in [None, Some("admin-secret-000000002")] {
            let (s, v) = get_as(&app, r, token).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{r} {token:?}: {v}");
            assert_eq!(v["error"]["code"], "unauthorized", "{v}");
            assert!(v["error"]["details"].is_array());
        }
    }
    let (s, _) = get_as(&app, "/", None).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the dashboard page itself loads (it shows the login)"
    );
}

#[tokio::test]
async fn roles_and_scopes_are_enforced_and_incident_reads_logged() {
    let store = sample();
    let app = secured(store.clone());
    let viewer = Some("viewer-secret-00001");
    let analyst = Some("analyst-secret-0001");
    // Unfiltered: the 七宝 scope only (the sample has one distinct 七宝 event of three).
    let (s, v) = get_as(&app, &format!("/v1/counts?{RANGE}"), viewer).await;
    assert_eq!((s, v["total"].as_u64()), (StatusCode::OK, Some(1)), "{v}");
    let (s, v) = get_as(&app, &format!("/v1/counts?{RANGE}&town=310112107"), viewer).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "forbidden");
    assert_eq!(v["error"]["details"][0]["field"], "town");
    for forbidden in [
        format!("/v1/incidents?{RANGE}"),
        format!("/v1/counts?{RANGE}&format=csv"),
        "/v1/access-log".to_owned(),
        format!("/v1/heatmap?{RANGE}&res=9"),
    ] {
        let (s, v) = get_as(&app, &forbidden, viewer).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{forbidden}: {v}");
    }
    let (s, v) = get_as(&app, &format!("/v1/incidents?{RANGE}"), analyst).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let towns: Vec<&str> = v["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["town"].as_str().unwrap_or(""))
        .collect();
    assert!(
        !towns.is_empty() && towns.iter().all(|t| *t == "310112102"),
        "{towns:?}"
    );
    assert_eq!(
        get_as(&app, "/v1/access-log", analyst).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, log) = get_as(&app, "/v1/access-log", Some("admin-secret-000000001")).await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "aggregate reads are not logged: {log}");
    assert_eq!(entries[0]["principal"], "ana");
    assert_eq!(entries[0]["endpoint"], "/v1/incidents");
    assert_eq!(entries[0]["rows"], towns.len());
}

#[tokio::test]
async fn alerts_outside_the_scope_are_not_shown() {
    let store = MemoryStore::new();
    let alert = |id: &str, level: &str, code: &str| Alert {
        id: id.into(),
        area_level: level.into(),
        area_code: code.into(),
        category: "FRAUD".into(),
        subtype: None,
        window_start: shanghai_time(1_577_846_400),
        window_end: shanghai_time(1_577_850_000),
        observed: 9,
        expected: 2.0,
        score: 4.0,
        level: "red".into(),
        method: "poisson".into(),
        created_at: shanghai_time(1_577_850_000),
        updated_at: shanghai_time(1_577_850_000),
        p_value: 0.001,
        baseline: "8w".into(),
    };
    store.insert_alerts([
        alert("qibao", "town", "310112102"),
        alert("hongqiao", "town", "310112107"),
        alert("district", "district", "310112"),
    ]);
    let app = secured(store);
    let ids = |v: &Value| -> Vec<String> {
        v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, v) = get_as(
        &app,
        "/v1/alerts?since=2019-12-31",
        Some("viewer-secret-00001"),
    )
    .await;
    assert_eq!(ids(&v), ["qibao"]);
    let (_, v) = get_as(
        &app,
        "/v1/alerts?since=2019-12-31",
        Some("admin-secret-000000001"),
    )
    .await;
    assert_eq!(ids(&v).len(), 3);
}

#[tokio::test]
async fn a_token_over_its_rate_gets_429_with_the_error_body() {
    let entries = [pingan_runtime::config::Sensitive::new(
        "wall:viewer:*:viewer-secret-00001",
    )];
    let mut errors = Vec::new();
    let tokens = crate::auth::parse_tokens(&entries, &mut errors);
    let mut state = AppState::new(Arc::new(sample()), QueryMetrics::unregistered().unwrap());
    state.access = Arc::new(crate::auth::Access::new(tokens, false).with_limits(
        crate::auth::Limits {
            per_minute: 0.0,
            burst: 2.0,
            ..crate::auth::Limits::default()
        },
    ));
    let app = router(state);
    let token = Some("viewer-secret-00001");
    assert_eq!(get_as(&app, "/v1/meta", token).await.0, StatusCode::OK);
    assert_eq!(get_as(&app, "/v1/meta", token).await.0, StatusCode::OK);
    let (s, v) = get_as(&app, "/v1/meta", token).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "too_many_requests");
}
