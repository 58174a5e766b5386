//! Planar geometry for district-sized areas: point-in-polygon, distances, and GeoJSON parsing.
//!
//! Minhang spans about 30 km, so an equirectangular projection around the point of interest is
//! accurate to well under a metre for the distances used here (compound radii, nearest town);
//! that keeps the code free of a geodesy dependency.

use serde_json::Value;

/// Metres per degree of latitude (WGS-84 mean, good to 0.5 % anywhere).
const M_PER_DEG_LAT: f64 = 110_574.0;
/// Metres per degree of longitude at the equator; scaled by `cos(lat)`.
const M_PER_DEG_LON_EQUATOR: f64 = 111_320.0;

/// A `[lon, lat]` pair, in the GeoJSON axis order.
pub(crate) type LonLat = [f64; 2];

/// Metres per degree of longitude at `lat`.
fn m_per_deg_lon(lat: f64) -> f64 {
    M_PER_DEG_LON_EQUATOR * lat.to_radians().cos()
}

/// Distance in metres between two nearby points.
pub(crate) fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let dx = (lon2 - lon1) * m_per_deg_lon((lat1 + lat2) / 2.0);
    let dy = (lat2 - lat1) * M_PER_DEG_LAT;
    dx.hypot(dy)
}

/// Moves a point by `east_m`/`north_m` metres.
pub(crate) fn offset(lat: f64, lon: f64, east_m: f64, north_m: f64) -> (f64, f64) {
    (
        lat + north_m / M_PER_DEG_LAT,
        lon + east_m / m_per_deg_lon(lat),
    )
}

/// An axis-aligned box in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    /// Western edge (degrees east).
    pub min_lon: f64,
    /// Southern edge (degrees north).
    pub min_lat: f64,
    /// Eastern edge.
    pub max_lon: f64,
    /// Northern edge.
    pub max_lat: f64,
}

impl BoundingBox {
    /// A box that contains nothing; `extend` grows it.
    pub(crate) const EMPTY: BoundingBox = BoundingBox {
        min_lon: f64::INFINITY,
        min_lat: f64::INFINITY,
        max_lon: f64::NEG_INFINITY,
        max_lat: f64::NEG_INFINITY,
    };

    /// Whether the point lies inside or on the edge of the box.
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        lon >= self.min_lon && lon <= self.max_lon && lat >= self.min_lat && lat <= self.max_lat
    }

    pub(crate) fn extend(&mut self, [lon, lat]: LonLat) {
        self.min_lon = self.min_lon.min(lon);
        self.max_lon = self.max_lon.max(lon);
        self.min_lat = self.min_lat.min(lat);
        self.max_lat = self.max_lat.max(lat);
    }

    pub(crate) fn union(&mut self, other: &BoundingBox) {
        self.extend([other.min_lon, other.min_lat]);
        self.extend([other.max_lon, other.max_lat]);
    }
}

/// One polygon: an exterior ring and optional holes, each stored without the closing point.
#[derive(Debug, Clone)]
struct PolygonRings {
    exterior: Vec<LonLat>,
    holes: Vec<Vec<LonLat>>,
}

/// The geometry of one area: one or more polygons (GeoJSON `Polygon` or `MultiPolygon`).
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    polygons: Vec<PolygonRings>,
    bbox: BoundingBox,
}

/// Even-odd ray casting. Points exactly on an edge shared by two rings fall on one side
/// consistently (the half-open `>` test), so a tiling assigns every point to at most one ring.
fn ring_contains(ring: &[LonLat], lat: f64, lon: f64) -> bool {
    let mut inside = false;
    let mut j = ring.len().wrapping_sub(1);
    for (i, &[xi, yi]) in ring.iter().enumerate() {
        let [xj, yj] = ring[j];
        if (yi > lat) != (yj > lat) && lon < (xj - xi) * (lat - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Distance in metres from a point to the segment `a`–`b`, in a projection centred on the point.
fn segment_distance_m(lat: f64, lon: f64, a: LonLat, b: LonLat) -> f64 {
    let kx = m_per_deg_lon(lat);
    let (ax, ay) = ((a[0] - lon) * kx, (a[1] - lat) * M_PER_DEG_LAT);
    let (bx, by) = ((b[0] - lon) * kx, (b[1] - lat) * M_PER_DEG_LAT);
    let (dx, dy) = (bx - ax, by - ay);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (ax + t * dx).hypot(ay + t * dy)
}

fn ring_distance_m(ring: &[LonLat], lat: f64, lon: f64) -> f64 {
    let n = ring.len();
    (0..n)
        .map(|i| segment_distance_m(lat, lon, ring[i], ring[(i + 1) % n]))
        .fold(f64::INFINITY, f64::min)
}

impl Shape {
    pub(crate) fn bbox(&self) -> &BoundingBox {
        &self.bbox
    }

    /// Whether the point lies inside the shape (outside its holes).
    pub(crate) fn contains(&self, lat: f64, lon: f64) -> bool {
        self.bbox.contains(lat, lon)
            && self.polygons.iter().any(|p| {
                ring_contains(&p.exterior, lat, lon)
                    && !p.holes.iter().any(|h| ring_contains(h, lat, lon))
            })
    }

    /// Distance in metres to the shape: 0 inside, else to the nearest edge.
    pub(crate) fn distance_m(&self, lat: f64, lon: f64) -> f64 {
        if self.contains(lat, lon) {
            return 0.0;
        }
        self.boundary_distance_m(lat, lon)
    }

    /// Distance in metres to the nearest edge (inside or outside).
    pub(crate) fn boundary_distance_m(&self, lat: f64, lon: f64) -> f64 {
        self.polygons
            .iter()
            .flat_map(|p| std::iter::once(&p.exterior).chain(&p.holes))
            .map(|r| ring_distance_m(r, lat, lon))
            .fold(f64::INFINITY, f64::min)
    }
}

/// One feature of a town GeoJSON file, before its code is checked against the town table.
#[derive(Debug)]
pub(crate) struct Feature {
    pub(crate) code: String,
    pub(crate) shape: Shape,
}

fn parse_position(v: &Value) -> Result<LonLat, String> {
    match v.as_array().map(Vec::as_slice) {
        Some([lon, lat, ..]) => match (lon.as_f64(), lat.as_f64()) {
            (Some(lon), Some(lat))
                if (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat) =>
            {
                Ok([lon, lat])
            }
            _ => Err(format!("position {v} is not [lon, lat] in range")),
        },
        _ => Err(format!("position {v} is not an array of two numbers")),
    }
}

fn parse_ring(v: &Value) -> Result<Vec<LonLat>, String> {
    let points = v.as_array().ok_or("a ring is not an array of positions")?;
    let mut ring = points
        .iter()
        .map(parse_position)
        .collect::<Result<Vec<_>, _>>()?;
    // GeoJSON repeats the first position at the end; the algorithms here want it once.
    if ring.len() > 1 && ring.first() == ring.last() {
        ring.pop();
    }
    if ring.len() < 3 {
        return Err(format!(
            "a ring has {} distinct positions, at least 3 are needed",
            ring.len()
        ));
    }
    Ok(ring)
}

fn parse_polygon(v: &Value) -> Result<PolygonRings, String> {
    let rings = v
        .as_array()
        .ok_or("polygon coordinates are not an array of rings")?;
    let mut rings = rings.iter().map(parse_ring);
    let exterior = rings.next().ok_or("a polygon has no exterior ring")??;
    let holes = rings.collect::<Result<Vec<_>, _>>()?;
    Ok(PolygonRings { exterior, holes })
}

/// Builds a shape from `[lon, lat]` rings given as plain data (e.g. a POI outline).
pub(crate) fn shape_from_ring(ring: Vec<LonLat>) -> Shape {
    let mut bbox = BoundingBox::EMPTY;
    ring.iter().for_each(|&p| bbox.extend(p));
    Shape {
        polygons: vec![PolygonRings {
            exterior: ring,
            holes: Vec::new(),
        }],
        bbox,
    }
}

fn parse_feature(f: &Value) -> Result<Feature, String> {
    let props = f
        .get("properties")
        .and_then(Value::as_object)
        .ok_or("feature has no properties")?;
    let code = ["code", "town_code"]
        .iter()
        .find_map(|k| props.get(*k))
        .and_then(|v| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        })
        .ok_or("feature has no string property `code`")?;
    let geometry = f
        .get("geometry")
        .ok_or_else(|| format!("feature {code} has no geometry"))?;
    let coords = geometry
        .get("coordinates")
        .ok_or_else(|| format!("feature {code}: geometry has no coordinates"))?;
    let polygons = match geometry.get("type").and_then(Value::as_str) {
        Some("Polygon") => vec![parse_polygon(coords).map_err(|e| format!("feature {code}: {e}"))?],
        Some("MultiPolygon") => coords
            .as_array()
            .ok_or_else(|| format!("feature {code}: MultiPolygon coordinates are not an array"))?
            .iter()
            .map(|p| parse_polygon(p).map_err(|e| format!("feature {code}: {e}")))
            .collect::<Result<Vec<_>, _>>()?,
        other => {
            return Err(format!(
                "feature {code}: geometry type {other:?} is not Polygon/MultiPolygon"
            ));
        }
    };
    let mut bbox = BoundingBox::EMPTY;
    polygons
        .iter()
        .flat_map(|p| &p.exterior)
        .for_each(|&p| bbox.extend(p));
    Ok(Feature {
        code,
        shape: Shape { polygons, bbox },
    })
}

/// Parses a GeoJSON `FeatureCollection` of town polygons; returns every problem found.
pub(crate) fn parse_feature_collection(text: &str) -> Result<Vec<Feature>, Vec<String>> {
    let root: Value = serde_json::from_str(text).map_err(|e| vec![format!("not JSON: {e}")])?;
    if root.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
        return Err(vec![
            "top-level `type` is not \"FeatureCollection\"".to_owned(),
        ]);
    }
    let features = root
        .get("features")
        .and_then(Value::as_array)
        .ok_or_else(|| vec!["`features` is not an array".to_owned()])?;
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for f in features {
        match parse_feature(f) {
            Ok(feature) => ok.push(feature),
            Err(e) => bad.push(e),
        }
    }
    if bad.is_empty() { Ok(ok) } else { Err(bad) }
}

/// The town containing a point, else the nearest town within the box; `None` outside the box.
/// Returns `(town index, inside a polygon)`.
pub(crate) fn town_index_at(
    shapes: &[Shape],
    bbox: &BoundingBox,
    lat: f64,
    lon: f64,
) -> Option<(usize, bool)> {
    if !bbox.contains(lat, lon) {
        return None;
    }
    if let Some(i) = shapes.iter().position(|s| s.contains(lat, lon)) {
        return Some((i, true));
    }
    shapes
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s.distance_m(lat, lon)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| (i, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_contains_square_and_hole() {
        let f = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"x"},
          "geometry":{"type":"Polygon","coordinates":[[[0,0],[2,0],[2,2],[0,2],[0,0]],[[0.5,0.5],[1.5,0.5],[1.5,1.5],[0.5,1.5]]]}}]}"#;
        let features = parse_feature_collection(f).unwrap();
        let s = &features[0].shape;
        assert!(s.contains(0.25, 0.25));
        assert!(!s.contains(1.0, 1.0), "inside the hole");
        assert!(!s.contains(3.0, 1.0));
        assert!((s.distance_m(1.0, 3.0) - 111_320.0 * 1f64.to_radians().cos()).abs() < 50.0);
    }

    #[test]
    fn bad_geojson_reports_every_feature() {
        let f = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"a"},"geometry":{"type":"Point","coordinates":[0,0]}},
          {"type":"Feature","properties":{},"geometry":null}]}"#;
        assert_eq!(parse_feature_collection(f).unwrap_err().len(), 2);
    }

    #[test]
    fn offset_and_distance_agree() {
        let (lat, lon) = offset(31.1, 121.4, 300.0, 400.0);
        assert!((distance_m(31.1, 121.4, lat, lon) - 500.0).abs() < 0.5);
    }
}
