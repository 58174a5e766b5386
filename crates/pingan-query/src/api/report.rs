//! `GET /v1/report`: the Safety Index (平安指数) for any period — totals and YoY per category,
//! dispute share, fraud subtype mix, top compounds for theft, burglary and fraud, night share
//! (21:00–03:00) and morning-peak (07:00–09:00 weekdays) congestion spots.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use pingan_domain::taxonomy::Taxonomy;
use pingan_domain::time::HourWindow;
use serde_json::{Value, json};

use super::heatmap::cell_ring;
use super::labels::label;
use super::rankings::{last_year, pct, rank};
use super::{ApiError, AppState, params, rfc3339};
use crate::auth::Principal;
use crate::model::{Bucket, CellsSpec, CountsResult, CountsSpec, Dim, Filter, H3Res};
use crate::store::IncidentStore;

/// Theft subtypes (盗窃) of the compound ranking.
pub const THEFT: &[&str] = &[
    "CRIM_BURGLARY",
    "CRIM_PICKPOCKET",
    "CRIM_THEFT_FROM_VEHICLE",
    "CRIM_CYCLE_THEFT",
    "CRIM_THEFT_OTHER",
];

async fn counts(
    store: &dyn IncidentStore,
    filter: &Filter,
    by: &[Dim],
) -> Result<CountsResult, ApiError> {
    let spec = CountsSpec {
        filter: filter.clone(),
        by: by.to_vec(),
        bucket: Bucket::None,
        max_rows: 1_000_000,
    };
    Ok(store.counts(&spec).await?)
}

fn by_code(res: &CountsResult) -> HashMap<String, u64> {
    res.rows
        .iter()
        .filter_map(|r| r.dims.first().map(|c| (c.clone(), r.count)))
        .collect()
}

fn share(n: u64, total: u64) -> Value {
    if total == 0 {
        Value::Null
    } else {
        Value::from(((n as f64 / total as f64) * 10_000.0).round() / 10_000.0)
    }
}

/// The compound whose centre is nearest to a point (equirectangular distance: spots are a few
/// hundred metres across, far below where the approximation matters).
fn nearest_compound(
    areas: &pingan_domain::area::AreaIndex,
    lat: f64,
    lon: f64,
) -> Option<&pingan_domain::area::Compound> {
    let k = lat.to_radians().cos();
    areas.compounds().iter().min_by(|a, b| {
        let d = |c: &pingan_domain::area::Compound| {
            let (dy, dx) = (c.lat - lat, (c.lon - lon) * k);
            dy * dy + dx * dx
        };
        d(a).total_cmp(&d(b))
    })
}

async fn top_compounds(
    store: &dyn IncidentStore,
    base: &Filter,
    dim: Dim,
    codes: &[&str],
    min_count: u64,
) -> Result<Vec<Value>, ApiError> {
    let filter = base.clone().with(dim, codes);
    let ranked = rank(store, Dim::Compound, &filter).await?;
    Ok(ranked
        .iter()
        .filter(|r| r.count >= min_count)
        .take(10)
        .enumerate()
        .map(|(i, r)| {
            let (zh, en) = label(Dim::Compound, &r.code);
            json!({"rank": i + 1, "code": r.code, "name_zh": zh, "name_en": en, "count": r.count, "last_year": r.last_year, "yoy_pct": pct(r.count, r.last_year)})
        })
        .collect())
}

/// The handler.
pub async fn handler(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(&who, q, &["from", "to", "town", "min_count"])?;
    let range = p.range(s.now(), 182 * 86_400, 5 * 366 * 86_400)?;
    let min_count = p.uint("min_count", 3, 1, 1_000_000)?;
    let dims = p.dim_filters(&[Dim::Town])?;
    let store = s.store.as_ref();
    let base = Filter {
        range,
        hours: None,
        weekdays_only: false,
        dims,
    };
    let ly_filter = Filter {
        range: last_year(&range),
        ..base.clone()
    };

    let now_cat = counts(store, &base, &[Dim::Category]).await?;
    let ly_cat = counts(store, &ly_filter, &[Dim::Category]).await?;
    let (now_map, ly_map) = (by_code(&now_cat), by_code(&ly_cat));
    let tax = Taxonomy::builtin();
    let categories: Vec<Value> = tax
        .categories()
        .iter()
        .map(|c| {
            let n = now_map.get(&c.code).copied().unwrap_or(0);
            let l = ly_map.get(&c.code).copied().unwrap_or(0);
            json!({"code": c.code, "name_zh": c.name_zh, "name_en": c.name_en, "count": n, "share": share(n, now_cat.total),
                   "last_year": l, "yoy_pct": pct(n, l)})
        })
        .collect();
    let disputes = now_map.get("DSP").copied().unwrap_or(0);

    let fraud = counts(
        store,
        &base.clone().with(Dim::Category, &["FRAUD"]),
        &[Dim::Subtype],
    )
    .await?;
    let fraud_ly = counts(
        store,
        &ly_filter.clone().with(Dim::Category, &["FRAUD"]),
        &[Dim::Subtype],
    )
    .await?;
    let fraud_ly_map = by_code(&fraud_ly);
    let fraud_mix: Vec<Value> = fraud
        .rows
        .iter()
        .filter_map(|r| r.dims.first().map(|c| (c, r.count)))
        .map(|(code, n)| {
            let (zh, en) = label(Dim::Subtype, code);
            let l = fraud_ly_map.get(code).copied().unwrap_or(0);
            json!({"code": code, "name_zh": zh, "name_en": en, "count": n, "share": share(n, fraud.total), "last_year": l, "yoy_pct": pct(n, l)})
        })
        .collect();

    let theft = top_compounds(store, &base, Dim::Subtype, THEFT, min_count).await?;
    let burglary = top_compounds(store, &base, Dim::Subtype, &["CRIM_BURGLARY"], min_count).await?;
    let fraud_top = top_compounds(store, &base, Dim::Category, &["FRAUD"], min_count).await?;

    let night_window = HourWindow { start: 21, end: 3 };
    let night = counts(
        store,
        &Filter {
            hours: Some(night_window),
            ..base.clone()
        },
        &[Dim::Town],
    )
    .await?;
    let night_towns: Vec<Value> = night
        .rows
        .iter()
        .filter_map(|r| {
            r.dims
                .first()
                .filter(|c| !c.is_empty())
                .map(|c| (c, r.count))
        })
        .take(5)
        .map(|(c, n)| {
            let (zh, en) = label(Dim::Town, c);
            json!({"code": c, "name_zh": zh, "name_en": en, "count": n})
        })
        .collect();

    let peak = Filter {
        hours: Some(HourWindow { start: 7, end: 9 }),
        weekdays_only: true,
        ..base.clone()
    }
    .with(Dim::Subtype, &["TRF_CONGESTION"]);
    let spots = store
        .cells(&CellsSpec {
            filter: peak.clone(),
            res: H3Res::R8,
            limit: 10,
        })
        .await?;
    let areas = pingan_domain::area::AreaIndex::builtin();
    let spots: Vec<Value> = spots
        .iter()
        .map(|c| {
            let centre = cell_ring(&c.cell).map(|x| x.1);
            let town = centre.and_then(|p| areas.town_at(p[1], p[0]));
            // Name the spot by the road of the nearest compound: a duty officer knows roads, not
            // hexagon ids.
            let road = centre.and_then(|p| nearest_compound(areas, p[1], p[0]));
            json!({"h3": c.cell, "count": c.count, "lat": centre.map(|p| p[1]), "lon": centre.map(|p| p[0]),
                   "town": town.map(|t| t.code.clone()), "town_zh": town.map(|t| t.name_zh.clone()), "town_en": town.map(|t| t.name_en.clone()),
                   "road_zh": road.map(|r| r.road_zh.clone()), "road_en": road.map(|r| r.road_en.clone())})
        })
        .collect();
    // Congestion per road: calls located at a compound count for the compound's road.
    let mut per_road: HashMap<(&str, &str), u64> = HashMap::new();
    for r in counts(store, &peak, &[Dim::Compound]).await?.rows {
        if let Some(c) = r.dims.first().and_then(|id| areas.compound(id)) {
            *per_road.entry((&c.road_zh, &c.road_en)).or_default() += r.count;
        }
    }
    let mut roads: Vec<((&str, &str), u64)> = per_road.into_iter().collect();
    roads.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let roads: Vec<Value> = roads
        .into_iter()
        .take(10)
        .map(|((zh, en), n)| json!({"road_zh": zh, "road_en": en, "count": n}))
        .collect();
    let peak_total = counts(store, &peak, &[]).await?.total;

    let ly = last_year(&range);
    Ok(axum::Json(json!({
        "period": {"from": rfc3339(range.from()), "to": rfc3339(range.to())},
        "last_year_period": {"from": rfc3339(ly.from()), "to": rfc3339(ly.to())},
        "total": {"count": now_cat.total, "last_year": ly_cat.total, "yoy_pct": pct(now_cat.total, ly_cat.total)},
        "categories": categories,
        "dispute_share": share(disputes, now_cat.total),
        "fraud_mix": fraud_mix,
        "top_compounds": {"theft": theft, "burglary": burglary, "fraud": fraud_top},
        "night": {"hours": "21-3", "count": night.total, "share": share(night.total, now_cat.total), "top_towns": night_towns},
        "morning_peak": {"hours": "7-9", "weekdays_only": true, "congestion_total": peak_total, "spots": spots, "roads": roads},
        "min_count": min_count,
    }))
    .into_response())
}
