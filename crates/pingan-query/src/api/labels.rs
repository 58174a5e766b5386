//! Chinese and English labels for codes, `/v1/meta` and `/v1/areas.geojson`.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use pingan_domain::area::{AreaIndex, AreaLevel};
use pingan_domain::taxonomy::Taxonomy;
use serde_json::{Value, json};

use super::Row;
use crate::model::Dim;

/// `(zh, en)` for a code of `dim`; unknown (`""`) → 未知/Unknown; an unlabelled code → itself.
pub fn label(dim: Dim, code: &str) -> (String, String) {
    if code.is_empty() {
        return ("未知".to_owned(), "Unknown".to_owned());
    }
    let tax = Taxonomy::builtin();
    let area = |level| {
        AreaIndex::builtin()
            .label(level, code)
            .map(|l| (l.zh, l.en))
    };
    let found = match dim {
        Dim::District => area(AreaLevel::District),
        Dim::Town => area(AreaLevel::Town),
        Dim::Station => area(AreaLevel::Station),
        Dim::Compound => area(AreaLevel::Compound),
        Dim::Category => tax
            .category(code)
            .map(|c| (c.name_zh.clone(), c.name_en.clone())),
        Dim::Subtype => tax
            .subtype(code)
            .map(|s| (s.name_zh.clone(), s.name_en.clone())),
        Dim::Department => tax
            .department(code)
            .map(|d| (d.name_zh.clone(), d.name_en.clone())),
        Dim::Source => match code {
            "call" => Some(("110报警".to_owned(), "110 call".to_owned())),
            "qr" => Some(("扫码报警".to_owned(), "QR doorplate report".to_owned())),
            _ => None,
        },
    };
    found.unwrap_or_else(|| (code.to_owned(), code.to_owned()))
}

/// Appends `dim: code, dim_zh, dim_en` (code `null` when unknown).
pub fn put_labelled(row: &mut Row, dim: Dim, code: &str) {
    let (zh, en) = label(dim, code);
    let name = dim.as_str();
    row.put(
        name,
        if code.is_empty() {
            Value::Null
        } else {
            Value::String(code.to_owned())
        },
    );
    row.put(format!("{name}_zh"), zh);
    row.put(format!("{name}_en"), en);
}

/// CSV/JSON column names for a labelled dimension.
pub fn labelled_columns(dim: Dim) -> [String; 3] {
    let n = dim.as_str();
    [n.to_owned(), format!("{n}_zh"), format!("{n}_en")]
}

/// `GET /v1/meta`: taxonomy, departments, sources and areas with labels, for the dashboard.
pub async fn meta() -> Response {
    let tax = Taxonomy::builtin();
    let areas = AreaIndex::builtin();
    let categories: Vec<Value> = tax
        .categories()
        .iter()
        .map(|c| json!({"code": c.code, "name_zh": c.name_zh, "name_en": c.name_en}))
        .collect();
    let subtypes: Vec<Value> = tax
        .subtypes()
        .iter()
        .map(|s| json!({"code": s.code, "category": s.category, "name_zh": s.name_zh, "name_en": s.name_en}))
        .collect();
    let departments: Vec<Value> = tax
        .departments()
        .iter()
        .map(|d| json!({"code": d.code, "name_zh": d.name_zh, "name_en": d.name_en}))
        .collect();
    let towns: Vec<Value> = areas
        .towns()
        .iter()
        .map(|t| json!({"code": t.code, "name_zh": t.name_zh, "name_en": t.name_en}))
        .collect();
    let stations: Vec<Value> = areas
        .stations()
        .iter()
        .map(|s| json!({"code": s.code, "name_zh": s.name_zh, "name_en": s.name_en, "towns": s.towns, "lat": s.lat, "lon": s.lon}))
        .collect();
    let compounds: Vec<Value> = areas
        .compounds()
        .iter()
        .map(|c| {
            json!({"code": c.id, "name_zh": c.name_zh, "name_en": c.name_en, "town": c.town_code, "station": c.station_code,
                   "households": c.households, "lat": c.lat, "lon": c.lon})
        })
        .collect();
    let bbox = areas.bbox();
    axum::Json(json!({
        "district": {"code": pingan_domain::area::DISTRICT_CODE, "name_zh": pingan_domain::area::DISTRICT_NAME_ZH, "name_en": pingan_domain::area::DISTRICT_NAME_EN},
        "bbox": [bbox.min_lon, bbox.min_lat, bbox.max_lon, bbox.max_lat],
        "categories": categories,
        "subtypes": subtypes,
        "departments": departments,
        "sources": [{"code": "call", "name_zh": "110报警", "name_en": "110 call"}, {"code": "qr", "name_zh": "扫码报警", "name_en": "QR doorplate report"}],
        "towns": towns,
        "stations": stations,
        "compounds": compounds,
    }))
    .into_response()
}

/// `GET /v1/areas.geojson`: the town polygons (approximate) for drawing the map.
pub async fn areas_geojson() -> Response {
    (
        [(header::CONTENT_TYPE, "application/geo+json")],
        AreaIndex::builtin().towns_geojson().to_owned(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_in_both_languages() {
        assert_eq!(label(Dim::Town, "310112102").0, "七宝镇");
        assert_eq!(label(Dim::Category, "FRAUD").0, "诈骗类");
        assert_eq!(label(Dim::Town, "").1, "Unknown");
        assert_eq!(label(Dim::Compound, "MH-NOPE").0, "MH-NOPE");
    }
}
