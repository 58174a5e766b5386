//! `GET /v1/alerts` (spike alerts, newest first) and `GET /v1/incidents` (latest incidents,
//! paginated with a cursor, no personal data).

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::labels::{label, put_labelled};
use super::params::{DIM_PARAMS, Params};
use super::{ApiError, AppState, Row, params, tabular};
use crate::auth::Principal;
use crate::model::{Alert, Dim, Filter, Incident, IncidentCursor, IncidentsSpec};

/// Labelled JSON row of an alert.
pub fn alert_row(a: &Alert) -> Row {
    let mut r = Row::default();
    let area_dim = match a.area_level.as_str() {
        "district" => Some(Dim::District),
        "town" => Some(Dim::Town),
        "station" => Some(Dim::Station),
        "compound" => Some(Dim::Compound),
        _ => None,
    };
    let (area_zh, area_en) = area_dim.map_or_else(
        || (a.area_code.clone(), a.area_code.clone()),
        |d| label(d, &a.area_code),
    );
    let (cat_zh, cat_en) = label(Dim::Category, &a.category);
    r.put("id", a.id.clone())
        .put("area_level", a.area_level.clone())
        .put("area_code", a.area_code.clone())
        .put("area_zh", area_zh)
        .put("area_en", area_en)
        .put("category", a.category.clone())
        .put("category_zh", cat_zh)
        .put("category_en", cat_en)
        .put(
            "subtype",
            a.subtype.clone().map_or(Value::Null, Value::String),
        );
    let (st_zh, st_en) = a
        .subtype
        .as_deref()
        .map_or((Value::Null, Value::Null), |s| {
            let (zh, en) = label(Dim::Subtype, s);
            (Value::String(zh), Value::String(en))
        });
    r.put("subtype_zh", st_zh)
        .put("subtype_en", st_en)
        .put("window_start", a.window_start.to_rfc3339())
        .put("window_end", a.window_end.to_rfc3339())
        .put("observed", a.observed)
        .put("expected", a.expected)
        .put("score", a.score)
        .put("level", a.level.clone())
        .put("method", a.method.clone())
        .put("p_value", a.p_value)
        .put("baseline", a.baseline.clone())
        .put("created_at", a.created_at.to_rfc3339())
        .put("updated_at", a.updated_at.to_rfc3339());
    r
}

const ALERT_COLUMNS: &[&str] = &[
    "id",
    "area_level",
    "area_code",
    "area_zh",
    "area_en",
    "category",
    "category_zh",
    "category_en",
    "subtype",
    "subtype_zh",
    "subtype_en",
    "window_start",
    "window_end",
    "observed",
    "expected",
    "score",
    "level",
    "method",
    "p_value",
    "baseline",
    "created_at",
    "updated_at",
];

/// `GET /v1/alerts?since=`: alerts created or escalated since `since` (default: 24 h ago).
pub async fn alerts(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(&who, q, &["since", "limit", "format"])?;
    let format = p.format()?;
    let since = p
        .time("since")?
        .unwrap_or_else(|| s.now() - chrono::Duration::hours(24));
    let limit = p.uint("limit", 200, 1, 5000)?;
    let list = s
        .store
        .alerts(since, usize::try_from(limit).unwrap_or(200))
        .await?;
    // Alerts are stored per area, not filterable in SQL by scope: a scoped token sees the
    // alerts of areas inside its scope only.
    let rows: Vec<Row> = list
        .iter()
        .filter(|a| who.scope.covers_alert(&a.area_level, &a.area_code))
        .map(alert_row)
        .collect();
    let columns: Vec<String> = ALERT_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    Ok(tabular(
        format,
        "alerts",
        &columns,
        &rows,
        || json!({ "alerts": rows }),
    ))
}

/// Labelled JSON row of an incident.
pub fn incident_row(i: &Incident) -> Row {
    let mut r = Row::default();
    r.put("event_id", i.event_id.clone())
        .put("event_time", i.event_time.to_rfc3339());
    put_labelled(&mut r, Dim::Source, &i.source);
    put_labelled(&mut r, Dim::Category, &i.category);
    put_labelled(&mut r, Dim::Subtype, &i.subtype);
    put_labelled(
        &mut r,
        Dim::Department,
        i.department.as_deref().unwrap_or(""),
    );
    r.put("priority", i.priority);
    put_labelled(&mut r, Dim::District, i.district.as_deref().unwrap_or(""));
    put_labelled(&mut r, Dim::Town, i.town.as_deref().unwrap_or(""));
    put_labelled(&mut r, Dim::Station, i.station.as_deref().unwrap_or(""));
    put_labelled(&mut r, Dim::Compound, i.compound.as_deref().unwrap_or(""));
    r.put("lat", i.lat.map_or(Value::Null, Value::from))
        .put("lon", i.lon.map_or(Value::Null, Value::from))
        .put("h3", i.h3.clone().map_or(Value::Null, Value::String))
        .put("tags", i.tags.clone())
        .put("keywords", i.keywords.clone())
        .put("description", i.description.clone());
    r
}

/// Parses the parameters of `/v1/incidents`.
pub fn parse(p: &Params, now: chrono::DateTime<chrono::Utc>) -> Result<IncidentsSpec, ApiError> {
    let range = p.range(now, 7 * 86_400, 366 * 86_400)?;
    let filter = Filter {
        range,
        hours: p.hours()?,
        weekdays_only: false,
        dims: p.dim_filters(&Dim::ALL)?,
    };
    let after = p
        .get("cursor")
        .map(|c| {
            IncidentCursor::decode(c).ok_or_else(|| {
                ApiError::bad(
                    "cursor",
                    "cursor must be the next_cursor of a previous page",
                )
            })
        })
        .transpose()?;
    let limit = usize::try_from(p.uint("limit", 50, 1, 500)?).unwrap_or(50);
    Ok(IncidentsSpec {
        filter,
        after,
        limit,
    })
}

/// `GET /v1/incidents`: newest first; `next_cursor` continues the list.
pub async fn incidents(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let mut allowed = vec!["from", "to", "hours", "cursor", "limit", "format"];
    allowed.extend(DIM_PARAMS);
    let p = params(&who, q, &allowed)?;
    let format = p.format()?;
    let spec = parse(&p, s.now())?;
    let list = s.store.incidents(&spec).await?;
    let next = (list.len() == spec.limit)
        .then(|| {
            list.last().map(|i| {
                IncidentCursor {
                    event_time: i.event_time.timestamp(),
                    event_id: i.event_id.clone(),
                }
                .encode()
            })
        })
        .flatten();
    let rows: Vec<Row> = list.iter().map(incident_row).collect();
    let columns: Vec<String> = rows
        .first()
        .map(|r| r.0.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_else(|| {
            incident_row(&Incident {
                event_id: String::new(),
                source: String::new(),
                event_time: crate::model::shanghai_time(0),
                category: String::new(),
                subtype: String::new(),
                department: None,
                priority: 0,
                district: None,
                town: None,
                station: None,
                compound: None,
                lat: None,
                lon: None,
                h3: None,
                tags: vec![],
                keywords: vec![],
                description: String::new(),
                stored_at: 0,
            })
            .0
            .into_iter()
            .map(|(k, _)| k)
            .collect()
        });
    Ok(tabular(
        format,
        "incidents",
        &columns,
        &rows,
        || json!({ "incidents": rows, "next_cursor": next }),
    ))
}
