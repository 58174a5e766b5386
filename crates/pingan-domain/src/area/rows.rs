//! How each reference table's rows read into records: the columns a table needs and, per
//! record, which cell feeds which field. Checks that span rows or tables live in `build.rs`.

use super::tables::{RefRow, Row};
use super::{
    Committee, Compound, DISTRICT_CODE, Poi, PoiShape, RefTable, SafeHouse, Station, Town,
};

/// Valid WGS-84 latitudes.
pub(crate) const LAT_RANGE: std::ops::RangeInclusive<f64> = -90.0..=90.0;
/// Valid WGS-84 longitudes.
pub(crate) const LON_RANGE: std::ops::RangeInclusive<f64> = -180.0..=180.0;
/// A compound's extent for point lookup, in metres.
const COMPOUND_RADIUS_M: std::ops::RangeInclusive<f64> = 1.0..=5_000.0;

impl RefRow for Town {
    const TABLE: RefTable = RefTable::Towns;
    const REQUIRED: &'static [&'static str] = &[
        "code",
        "name_zh",
        "name_en",
        "kind",
        "alias_zh",
        "verification",
    ];

    fn read(r: &mut Row<'_>) -> Option<Town> {
        let code = r.text("code");
        let (name_zh, name_en, kind) = (r.text("name_zh"), r.text("name_en"), r.code("kind"));
        let (alias_zh, verification) = (r.opt_text("alias_zh"), r.code("verification"));
        let well_formed = code.len() == 9
            && code.starts_with(DISTRICT_CODE)
            && code.bytes().all(|b| b.is_ascii_digit());
        if r.is_sound() && !well_formed {
            r.invalid(
                "code",
                format!("town code {code:?} is not 9 digits starting {DISTRICT_CODE}"),
            );
        }
        Some(Town {
            code,
            name_zh,
            name_en,
            kind: kind?,
            alias_zh,
            verification: verification?,
        })
    }
}

impl RefRow for Station {
    const TABLE: RefTable = RefTable::Stations;
    const REQUIRED: &'static [&'static str] = &[
        "code",
        "name_zh",
        "name_en",
        "verification",
        "towns",
        "address_zh",
        "lat",
        "lon",
    ];

    fn read(r: &mut Row<'_>) -> Option<Station> {
        let (code, name_zh, name_en) = (r.text("code"), r.text("name_zh"), r.text("name_en"));
        let verification = r.code("verification");
        let towns = r
            .text("towns")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        Some(Station {
            code,
            name_zh,
            name_en,
            towns,
            address_zh: r.opt_text("address_zh"),
            lat: r.number_in("lat", LAT_RANGE),
            lon: r.number_in("lon", LON_RANGE),
            note: r.opt_text("note"),
            // Last: every cell is read (and checked) before a missing code ends the row.
            verification: verification?,
        })
    }
}

impl RefRow for Committee {
    const TABLE: RefTable = RefTable::Committees;
    const REQUIRED: &'static [&'static str] = &[
        "id",
        "name_zh",
        "name_en",
        "kind",
        "town",
        "station",
        "lat",
        "lon",
        "synthetic",
    ];

    fn read(r: &mut Row<'_>) -> Option<Committee> {
        let (id, name_zh, name_en) = (r.text("id"), r.text("name_zh"), r.text("name_en"));
        let kind = r.code("kind");
        Some(Committee {
            id,
            name_zh,
            name_en,
            town_code: r.text("town"),
            station_code: r.text("station"),
            lat: r.number_in("lat", LAT_RANGE),
            lon: r.number_in("lon", LON_RANGE),
            synthetic: r.flag("synthetic"),
            kind: kind?,
        })
    }
}

impl RefRow for Compound {
    const TABLE: RefTable = RefTable::Compounds;
    const REQUIRED: &'static [&'static str] = &[
        "id",
        "name_zh",
        "name_en",
        "town",
        "station",
        "committee",
        "road_zh",
        "road_en",
        "lane",
        "buildings",
        "households",
        "population",
        "cameras",
        "lat",
        "lon",
        "radius_m",
        "synthetic",
        "town_verified",
    ];

    fn read(r: &mut Row<'_>) -> Option<Compound> {
        Some(Compound {
            id: r.text("id"),
            name_zh: r.text("name_zh"),
            name_en: r.text("name_en"),
            town_code: r.text("town"),
            station_code: r.text("station"),
            committee_id: r.text("committee"),
            road_zh: r.text("road_zh"),
            road_en: r.text("road_en"),
            lane: r.parse("lane"),
            buildings: r.parse("buildings"),
            households: r.parse("households"),
            population: r.parse("population"),
            cameras: r.parse("cameras"),
            lat: r.number_in("lat", LAT_RANGE),
            lon: r.number_in("lon", LON_RANGE),
            radius_m: r.number_in("radius_m", COMPOUND_RADIUS_M),
            synthetic: r.flag("synthetic"),
            town_verified: r.flag("town_verified"),
            note: r.opt_text("note"),
        })
    }
}

impl RefRow for Poi {
    const TABLE: RefTable = RefTable::Pois;
    const REQUIRED: &'static [&'static str] = &[
        "id",
        "name_zh",
        "name_en",
        "kind",
        "town",
        "lat",
        "lon",
        "radius_m",
        "polygon",
        "verification",
    ];

    fn read(r: &mut Row<'_>) -> Option<Poi> {
        let (id, name_zh, name_en) = (r.text("id"), r.text("name_zh"), r.text("name_en"));
        let (kind, town_code) = (r.code("kind"), r.text("town"));
        let (lat, lon) = (r.number_in("lat", LAT_RANGE), r.number_in("lon", LON_RANGE));
        let radius_m: f64 = r.parse("radius_m");
        let polygon = r.opt_text("polygon");
        let (verification, note) = (r.code("verification"), r.opt_text("note"));
        let shape = match polygon {
            None if radius_m > 0.0 => Some(PoiShape::Circle { radius_m }),
            None => None,
            Some(p) => p
                .split(';')
                .map(|pair| {
                    let (x, y) = pair.split_once(',')?;
                    Some([x.trim().parse().ok()?, y.trim().parse().ok()?])
                })
                .collect::<Option<Vec<[f64; 2]>>>()
                .filter(|ring| ring.len() >= 3)
                .map(|ring| PoiShape::Polygon { ring }),
        };
        if r.is_sound() && shape.is_none() {
            r.invalid(
                "polygon",
                "needs radius_m > 0 or a polygon of at least 3 `lon,lat` pairs".to_owned(),
            );
        }
        Some(Poi {
            id,
            name_zh,
            name_en,
            kind: kind?,
            town_code,
            lat,
            lon,
            shape: shape?,
            verification: verification?,
            note,
        })
    }
}

impl RefRow for SafeHouse {
    const TABLE: RefTable = RefTable::SafeHouses;
    const REQUIRED: &'static [&'static str] = &[
        "id",
        "name_zh",
        "name_en",
        "host_type",
        "station",
        "town",
        "address_zh",
        "lat",
        "lon",
        "trained_staff",
        "has_medical_kit",
        "has_warning_light",
        "synthetic",
    ];

    fn read(r: &mut Row<'_>) -> Option<SafeHouse> {
        let (id, name_zh, name_en) = (r.text("id"), r.text("name_zh"), r.text("name_en"));
        let host_type = r.code("host_type");
        Some(SafeHouse {
            id,
            name_zh,
            name_en,
            station_code: r.text("station"),
            town_code: r.text("town"),
            address_zh: r.text("address_zh"),
            lat: r.number_in("lat", LAT_RANGE),
            lon: r.number_in("lon", LON_RANGE),
            trained_staff: r.parse("trained_staff"),
            has_medical_kit: r.flag("has_medical_kit"),
            has_warning_light: r.flag("has_warning_light"),
            synthetic: r.flag("synthetic"),
            host_type: host_type?,
        })
    }
}
