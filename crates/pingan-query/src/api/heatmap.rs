//! `GET /v1/heatmap`: distinct events per H3 cell as a GeoJSON FeatureCollection (polygons from
//! `h3o`). The night map is `hours=21-3`.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::params::Params;
use super::{ApiError, AppState, Row, params, rfc3339, tabular};
use crate::auth::{Principal, ReadRole};
use crate::model::{CellCount, CellsSpec, Dim, Filter, H3Res};

/// Dimensions the heat map filters on.
pub const DIMS: [Dim; 6] = [
    Dim::Town,
    Dim::Station,
    Dim::Compound,
    Dim::Category,
    Dim::Subtype,
    Dim::Source,
];

/// Parses the parameters of `/v1/heatmap`.
pub fn parse(p: &Params, now: chrono::DateTime<chrono::Utc>) -> Result<(CellsSpec, u64), ApiError> {
    let range = p.range(now, 86_400, 20 * 366 * 86_400)?;
    let res = match p.get("res") {
        None => H3Res::R8,
        Some(v) => H3Res::parse(v)
            .ok_or_else(|| ApiError::bad("res", format!("res={v:?} must be 7, 8 or 9")))?,
    };
    let limit = usize::try_from(p.uint("limit", 5000, 1, 20_000)?).unwrap_or(5000);
    let min_count = p.uint("min_count", 1, 1, 1_000_000)?;
    let filter = Filter {
        range,
        hours: p.hours()?,
        weekdays_only: false,
        dims: p.dim_filters(&DIMS)?,
    };
    Ok((CellsSpec { filter, res, limit }, min_count))
}

/// A GeoJSON polygon ring `[[lon, lat], …]` (closed) of an H3 cell.
pub fn cell_ring(cell: &str) -> Option<(Vec<[f64; 2]>, [f64; 2])> {
    let idx: h3o::CellIndex = cell.parse().ok()?;
    let mut ring: Vec<[f64; 2]> = idx
        .boundary()
        .iter()
        .map(|ll| [round6(ll.lng()), round6(ll.lat())])
        .collect();
    let first = *ring.first()?;
    ring.push(first);
    let c = h3o::LatLng::from(idx);
    Some((ring, [round6(c.lng()), round6(c.lat())]))
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The FeatureCollection for `cells`.
pub fn feature_collection(cells: &[CellCount], res: H3Res) -> Vec<Value> {
    cells
        .iter()
        .filter_map(|c| {
            let (ring, centre) = cell_ring(&c.cell)?;
            Some(json!({
                "type": "Feature",
                "id": c.cell,
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"h3": c.cell, "res": res.number(), "count": c.count, "lon": centre[0], "lat": centre[1]},
            }))
        })
        .collect()
}

/// The handler.
pub async fn handler(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let allowed = [
        "from",
        "to",
        "hours",
        "res",
        "limit",
        "min_count",
        "format",
        "town",
        "station",
        "compound",
        "category",
        "subtype",
        "source",
    ];
    let p = params(&who, q, &allowed)?;
    let format = p.format()?;
    let (spec, min_count) = parse(&p, s.now())?;
    // A resolution-9 cell is about 0.1 km², a few buildings: close to an exact coordinate,
    // which viewers never get (CONTRACT §9).
    if who.role < ReadRole::Analyst && spec.res == H3Res::R9 {
        return Err(ApiError::forbidden(
            Some("res"),
            "res=9 (building-level cells) needs the analyst role; viewers may use 7 or 8",
        ));
    }
    let mut cells = s.store.cells(&spec).await?;
    cells.retain(|c| c.count >= min_count);
    if format == super::params::Format::Csv {
        let rows: Vec<Row> = cells
            .iter()
            .map(|c| {
                let mut r = Row::default();
                let centre = cell_ring(&c.cell).map(|x| x.1);
                r.put("h3", c.cell.clone())
                    .put("res", spec.res.number())
                    .put("lat", centre.map_or(Value::Null, |c| Value::from(c[1])))
                    .put("lon", centre.map_or(Value::Null, |c| Value::from(c[0])))
                    .put("count", c.count);
                r
            })
            .collect();
        let columns: Vec<String> = ["h3", "res", "lat", "lon", "count"]
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        return Ok(tabular(format, "heatmap", &columns, &rows, || Value::Null));
    }
    let total: u64 = cells.iter().map(|c| c.count).sum();
    let max = cells.iter().map(|c| c.count).max().unwrap_or(0);
    let body = json!({
        "type": "FeatureCollection",
        "features": feature_collection(&cells, spec.res),
        "properties": {
            "res": spec.res.number(),
            "from": rfc3339(spec.filter.range.from()),
            "to": rfc3339(spec.filter.range.to()),
            "hours": spec.filter.hours.map(|h| format!("{}-{}", h.start, h.end)),
            "cells": cells.len(),
            "max": max,
            "sum": total,
        },
    });
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json")],
        body.to_string(),
    )
        .into_response())
}
