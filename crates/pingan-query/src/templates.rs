//! Every statement the query service sends, with sample parameters, for the compatibility
//! checks (`tests/tests/smoke.rs` on ClickHouse 18.16, `tests/chdb/` on a current release).
//!
//! The SQL is assembled per request, so the list comes from driving the real router over a
//! store that records what it would send (the server address is unreachable; only the text
//! matters), plus the `/v1/counts` plans a store without data never reaches.

use tower::ServiceExt;

use crate::metrics::QueryMetrics;
use crate::store::IncidentStore;
use crate::store::clickhouse::{ClickHouseStore, SqlLog, counts_sql_templates};

/// The query service's statements, named `query_*`.
pub fn sql_templates() -> Vec<(String, String)> {
    let mut out = counts_sql_templates();
    let log = SqlLog::default();
    let settings = pingan_runtime::config::ClickHouseConfig {
        url: "http://127.0.0.1:9".into(),
        ..Default::default()
    };
    let Ok(metrics) = QueryMetrics::unregistered() else {
        return out;
    };
    let store = std::sync::Arc::new(
        ClickHouseStore::new(&settings, metrics.clone()).with_sql_log(log.clone()),
    );
    let app = crate::router(crate::AppState::new(store.clone(), metrics));
    let range = "from=2019-12-01T00:00:00%2B08:00&to=2020-01-01T00:00:00%2B08:00";
    let uris = [
        format!("/v1/counts?{range}&bucket=day&by=town,category&hours=21-3"),
        format!("/v1/counts?{range}&bucket=15m&subtype=FRAUD_FAKE_GOV"),
        "/v1/counts?from=2019-12-01T00:00:07%2B08:00&to=2019-12-02T00:00:00%2B08:00&by=compound"
            .to_owned(),
        format!("/v1/rankings?{range}&level=compound&category=CRIM"),
        format!("/v1/rankings?{range}&level=town&subtype=FRAUD_FAKE_GOV"),
        format!("/v1/heatmap?{range}&res=8&hours=21-3&category=DSP"),
        format!("/v1/heatmap?{range}&res=9&station=310112001"),
        format!("/v1/terms?{range}&town=310112102&category=DSP"),
        format!("/v1/terms?{range}&background_from=2019-11-01&background_to=2019-12-01"),
        "/v1/incidents?limit=20&category=FRAUD".to_owned(),
        "/v1/alerts?since=2019-12-01T00:00:00%2B08:00".to_owned(),
        format!("/v1/report?{range}"),
    ];
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return out;
    };
    rt.block_on(async {
        for uri in &uris {
            if let Ok(req) = axum::http::Request::get(uri.as_str()).body(axum::body::Body::empty())
            {
                let _ = app.clone().oneshot(req).await;
            }
        }
        let now = chrono::Utc::now();
        let _ = store
            .live_counts(
                now - chrono::Duration::hours(10),
                now - chrono::Duration::hours(1),
            )
            .await;
        let _ = store.incidents_stored_since(1_575_129_600, 50).await;
    });
    let mut seen = std::collections::BTreeSet::new();
    let logged = log.lock().map(|l| l.clone()).unwrap_or_default();
    for sql in logged {
        if seen.insert(sql.clone()) {
            out.push((format!("query_api_{:02}", seen.len()), sql));
        }
    }
    out
}
