//! Building an [`AreaIndex`] from its sources, in steps: read the tables, index the ids, place
//! the town polygons, link every row to its parents (checking each link and each point), plan
//! the doorplates. Every step adds to one list of problems, so a bad configuration is reported
//! whole.

use std::collections::HashMap;

use super::doorplate::PlatePlan;
use super::geo::{self, Shape};
use super::grid::CompoundGrid;
use super::tables::read_table;
use super::{
    AreaError, AreaIndex, AreaProblem, AreaSources, BoundingBox, Committee, Compound, Poi,
    PoiShape, RefTable, SafeHouse, Station, Town,
};

/// The six tables as read (rows with a bad cell are already left out and reported).
struct Tables {
    towns: Vec<Town>,
    stations: Vec<Station>,
    committees: Vec<Committee>,
    compounds: Vec<Compound>,
    pois: Vec<Poi>,
    safe_houses: Vec<SafeHouse>,
}

impl Tables {
    fn read(sources: &AreaSources<'_>, p: &mut Vec<AreaProblem>) -> Tables {
        Tables {
            towns: read_table(sources.towns, p),
            stations: read_table(sources.stations, p),
            committees: read_table(sources.committees, p),
            compounds: read_table(sources.compounds, p),
            pois: read_table(sources.pois, p),
            safe_houses: read_table(sources.safe_houses, p),
        }
    }
}

/// Row positions by id.
struct Keys {
    town_by_code: HashMap<String, usize>,
    station_by_code: HashMap<String, usize>,
    committee_by_id: HashMap<String, usize>,
    compound_by_id: HashMap<String, usize>,
    poi_by_id: HashMap<String, usize>,
}

impl Keys {
    /// Indexes every table's ids, reporting duplicates (safe houses only for that).
    fn new(t: &Tables, p: &mut Vec<AreaProblem>) -> Keys {
        let keys = Keys {
            town_by_code: index_by(RefTable::Towns, &t.towns, |x| &x.code, p),
            station_by_code: index_by(RefTable::Stations, &t.stations, |x| &x.code, p),
            committee_by_id: index_by(RefTable::Committees, &t.committees, |x| &x.id, p),
            compound_by_id: index_by(RefTable::Compounds, &t.compounds, |x| &x.id, p),
            poi_by_id: index_by(RefTable::Pois, &t.pois, |x| &x.id, p),
        };
        index_by(RefTable::SafeHouses, &t.safe_houses, |x| &x.id, p);
        keys
    }
}

/// Maps ids to positions, reporting duplicates.
fn index_by<T>(
    table: RefTable,
    rows: &[T],
    key: impl Fn(&T) -> &str,
    problems: &mut Vec<AreaProblem>,
) -> HashMap<String, usize> {
    let mut map = HashMap::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        if map.insert(key(row).to_owned(), i).is_some() {
            problems.push(AreaProblem::Duplicate {
                table,
                id: key(row).to_owned(),
            });
        }
    }
    map
}

/// The town polygons, parallel to the towns table when `complete`.
struct TownGeometry {
    shapes: Vec<Shape>,
    bbox: BoundingBox,
    /// Every town has exactly one polygon; point checks are only meaningful then.
    complete: bool,
}

impl TownGeometry {
    /// Places exactly one GeoJSON feature per known town.
    fn new(
        geojson: &str,
        towns: &[Town],
        town_by_code: &HashMap<String, usize>,
        p: &mut Vec<AreaProblem>,
    ) -> TownGeometry {
        let mut shapes: Vec<Option<Shape>> = vec![None; towns.len()];
        match geo::parse_feature_collection(geojson) {
            Err(reasons) => p.extend(reasons.into_iter().map(|reason| AreaProblem::Malformed {
                table: RefTable::Geometry,
                line: 0,
                column: None,
                reason,
            })),
            Ok(features) => {
                for f in features {
                    match town_by_code.get(&f.code) {
                        None => p.push(AreaProblem::UnknownReference {
                            table: RefTable::Geometry,
                            id: f.code.clone(),
                            field: "code",
                            value: f.code,
                        }),
                        Some(&t) if shapes[t].is_some() => {
                            p.push(AreaProblem::Duplicate {
                                table: RefTable::Geometry,
                                id: f.code,
                            });
                        }
                        Some(&t) => shapes[t] = Some(f.shape),
                    }
                }
            }
        }
        let mut bbox = BoundingBox::EMPTY;
        for (t, s) in towns.iter().zip(&shapes) {
            match s {
                Some(s) => bbox.union(s.bbox()),
                None => p.push(AreaProblem::Coverage {
                    town: t.code.clone(),
                    reason: "has no polygon in the town GeoJSON".to_owned(),
                }),
            }
        }
        let shapes: Vec<Shape> = shapes.into_iter().flatten().collect();
        TownGeometry {
            complete: shapes.len() == towns.len(),
            shapes,
            bbox,
        }
    }
}

/// How rows hang together: what links each step found.
struct Links {
    /// Parallel to towns: stations serving the town.
    town_stations: Vec<Vec<usize>>,
    /// Parallel to towns: the town's committees.
    town_committees: Vec<Vec<usize>>,
    /// Parallel to committees: the committee's station.
    committee_station: Vec<usize>,
    /// Parallel to compounds: the compound's town.
    compound_town: Vec<usize>,
    /// Parallel to pois: polygon footprints (circles are checked by distance).
    poi_shapes: Vec<Option<Shape>>,
}

/// Cross-checks rows against the ids and the geometry, collecting problems.
struct Checker<'a> {
    t: &'a Tables,
    keys: &'a Keys,
    geometry: &'a TownGeometry,
    p: &'a mut Vec<AreaProblem>,
}

impl Checker<'_> {
    fn unknown(&mut self, table: RefTable, id: &str, field: &'static str, value: &str) {
        self.p.push(AreaProblem::UnknownReference {
            table,
            id: id.to_owned(),
            field,
            value: value.to_owned(),
        });
    }

    fn inconsistent(&mut self, table: RefTable, id: &str, reason: String) {
        self.p.push(AreaProblem::Inconsistent {
            table,
            id: id.to_owned(),
            reason,
        });
    }

    /// The row's point lies in the town it names (checked only with complete geometry).
    fn point_in_town(&mut self, table: RefTable, id: &str, town: &str, lat: f64, lon: f64) {
        let g = self.geometry;
        if !g.complete {
            return;
        }
        let found = geo::town_index_at(&g.shapes, &g.bbox, lat, lon).map_or_else(
            || "no town".to_owned(),
            |(i, _)| self.t.towns[i].code.clone(),
        );
        if found != town {
            self.p.push(AreaProblem::OutsideTown {
                table,
                id: id.to_owned(),
                lat,
                lon,
                expected: town.to_owned(),
                found,
            });
        }
    }

    /// The row's town exists; its position if so.
    fn known_town(&mut self, table: RefTable, id: &str, town: &str) -> Option<usize> {
        let found = self.keys.town_by_code.get(town).copied();
        if found.is_none() {
            self.unknown(table, id, "town", town);
        }
        found
    }

    /// The row's station exists and serves the row's town; its position if so.
    fn station_serving(
        &mut self,
        table: RefTable,
        id: &str,
        station: &str,
        town: &str,
    ) -> Option<usize> {
        match self.keys.station_by_code.get(station) {
            None => {
                self.unknown(table, id, "station", station);
                None
            }
            Some(&si) if !self.t.stations[si].towns.iter().any(|t| t == town) => {
                let reason = format!("station {station} does not serve town {town}");
                self.inconsistent(table, id, reason);
                None
            }
            Some(&si) => Some(si),
        }
    }

    /// Stations serve known towns and stand inside the district.
    fn link_stations(&mut self) -> Vec<Vec<usize>> {
        let mut town_stations = vec![Vec::new(); self.t.towns.len()];
        for (i, s) in self.t.stations.iter().enumerate() {
            if s.towns.is_empty() {
                self.inconsistent(RefTable::Stations, &s.code, "serves no town".to_owned());
            }
            for town in &s.towns {
                match self.keys.town_by_code.get(town) {
                    Some(&ti) => town_stations[ti].push(i),
                    None => self.unknown(RefTable::Stations, &s.code, "towns", town),
                }
            }
            if self.geometry.complete && !self.geometry.bbox.contains(s.lat, s.lon) {
                let reason = format!("location ({}, {}) is outside the district", s.lat, s.lon);
                self.inconsistent(RefTable::Stations, &s.code, reason);
            }
        }
        town_stations
    }

    /// Committees lie in a known town, on the beat of a station serving it.
    /// Returns `(town → committees, committee → station)`.
    fn link_committees(&mut self) -> (Vec<Vec<usize>>, Vec<usize>) {
        let mut town_committees = vec![Vec::new(); self.t.towns.len()];
        let mut committee_station = vec![0; self.t.committees.len()];
        for (i, c) in self.t.committees.iter().enumerate() {
            let table = RefTable::Committees;
            let Some(ti) = self.known_town(table, &c.id, &c.town_code) else {
                continue;
            };
            town_committees[ti].push(i);
            if let Some(si) = self.station_serving(table, &c.id, &c.station_code, &c.town_code) {
                committee_station[i] = si;
            }
            self.point_in_town(table, &c.id, &c.town_code, c.lat, c.lon);
        }
        (town_committees, committee_station)
    }

    /// Every town has a station and a committee.
    fn check_coverage(&mut self, town_stations: &[Vec<usize>], town_committees: &[Vec<usize>]) {
        for (t, town) in self.t.towns.iter().enumerate() {
            let gaps = [
                (town_stations[t].is_empty(), "no station serves it"),
                (town_committees[t].is_empty(), "has no committee"),
            ];
            for (_, reason) in gaps.into_iter().filter(|(gap, _)| *gap) {
                self.p.push(AreaProblem::Coverage {
                    town: town.code.clone(),
                    reason: reason.to_owned(),
                });
            }
        }
    }

    /// Compounds lie in a known town, under a station serving it and a committee of the same
    /// town and station, and have buildings. Returns compound → town.
    fn link_compounds(&mut self) -> Vec<usize> {
        let mut compound_town = vec![0; self.t.compounds.len()];
        for (i, c) in self.t.compounds.iter().enumerate() {
            let table = RefTable::Compounds;
            let Some(ti) = self.known_town(table, &c.id, &c.town_code) else {
                continue;
            };
            compound_town[i] = ti;
            self.station_serving(table, &c.id, &c.station_code, &c.town_code);
            let committee = self.keys.committee_by_id.get(&c.committee_id);
            match committee.map(|&k| &self.t.committees[k]) {
                None => self.unknown(table, &c.id, "committee", &c.committee_id),
                Some(k) if k.town_code != c.town_code || k.station_code != c.station_code => {
                    let reason = format!(
                        "committee {} belongs to town {} / station {}, the compound to {} / {}",
                        k.id, k.town_code, k.station_code, c.town_code, c.station_code
                    );
                    self.inconsistent(table, &c.id, reason);
                }
                Some(_) => {}
            }
            if c.buildings == 0 {
                self.inconsistent(table, &c.id, "has no buildings".to_owned());
            }
            self.point_in_town(table, &c.id, &c.town_code, c.lat, c.lon);
        }
        compound_town
    }

    /// POIs lie in a known town; returns their polygon footprints.
    fn check_pois(&mut self) -> Vec<Option<Shape>> {
        let mut poi_shapes = Vec::with_capacity(self.t.pois.len());
        for x in &self.t.pois {
            self.known_town(RefTable::Pois, &x.id, &x.town_code);
            self.point_in_town(RefTable::Pois, &x.id, &x.town_code, x.lat, x.lon);
            poi_shapes.push(match &x.shape {
                PoiShape::Polygon { ring } => Some(geo::shape_from_ring(ring.clone())),
                PoiShape::Circle { .. } => None,
            });
        }
        poi_shapes
    }

    /// Safe houses lie in a known town and are run by a station serving it.
    fn check_safe_houses(&mut self) {
        for h in &self.t.safe_houses {
            let table = RefTable::SafeHouses;
            self.known_town(table, &h.id, &h.town_code);
            self.station_serving(table, &h.id, &h.station_code, &h.town_code);
            self.point_in_town(table, &h.id, &h.town_code, h.lat, h.lon);
        }
    }

    /// Every link check, in table order.
    fn link(mut self) -> Links {
        let town_stations = self.link_stations();
        let (town_committees, committee_station) = self.link_committees();
        self.check_coverage(&town_stations, &town_committees);
        let compound_town = self.link_compounds();
        let poi_shapes = self.check_pois();
        self.check_safe_houses();
        Links {
            town_stations,
            town_committees,
            committee_station,
            compound_town,
            poi_shapes,
        }
    }
}

/// Allocates the doorplates; compound ordinals (part of plate ids) follow id order within
/// each town.
fn plan_doorplates(
    sources: &AreaSources<'_>,
    t: &Tables,
    compound_town: &[usize],
    p: &mut Vec<AreaProblem>,
) -> Option<PlatePlan> {
    let mut members: Vec<(&str, Vec<usize>)> = t
        .towns
        .iter()
        .map(|t| (t.code.as_str(), Vec::new()))
        .collect();
    for (i, &town) in compound_town.iter().enumerate() {
        members[town].1.push(i);
    }
    for m in &mut members {
        m.1.sort_by(|&a, &b| t.compounds[a].id.cmp(&t.compounds[b].id));
    }
    PlatePlan::new(sources.doorplates, &members, &t.compounds)
        .map_err(|e| p.extend(e))
        .ok()
}

impl AreaIndex {
    /// Parses and cross-checks the reference data, reporting every problem found: malformed
    /// cells, duplicate ids, unknown parents, stations that do not serve a row's town, points
    /// outside their town, towns without a station, committee or polygon, doorplate capacity.
    pub fn from_sources(sources: AreaSources<'_>) -> Result<AreaIndex, AreaError> {
        let mut problems = Vec::new();
        let p = &mut problems;
        let tables = Tables::read(&sources, p);
        let keys = Keys::new(&tables, p);
        let geometry =
            TownGeometry::new(sources.towns_geojson, &tables.towns, &keys.town_by_code, p);
        let links = Checker {
            t: &tables,
            keys: &keys,
            geometry: &geometry,
            p,
        }
        .link();
        let plates = plan_doorplates(&sources, &tables, &links.compound_town, p);
        match plates {
            Some(plates) if problems.is_empty() => Ok(AreaIndex::assemble(
                tables,
                keys,
                geometry,
                links,
                plates,
                sources.towns_geojson,
            )),
            _ => Err(AreaError { problems }),
        }
    }

    /// The index of checked parts.
    fn assemble(
        t: Tables,
        keys: Keys,
        geometry: TownGeometry,
        links: Links,
        plates: PlatePlan,
        towns_geojson: &str,
    ) -> AreaIndex {
        let grid = CompoundGrid::new(&geometry.bbox, &t.compounds);
        AreaIndex {
            towns: t.towns,
            stations: t.stations,
            committees: t.committees,
            compounds: t.compounds,
            pois: t.pois,
            safe_houses: t.safe_houses,
            town_by_code: keys.town_by_code,
            station_by_code: keys.station_by_code,
            committee_by_id: keys.committee_by_id,
            compound_by_id: keys.compound_by_id,
            poi_by_id: keys.poi_by_id,
            town_shapes: geometry.shapes,
            town_stations: links.town_stations,
            town_committees: links.town_committees,
            compound_town: links.compound_town,
            committee_station: links.committee_station,
            poi_shapes: links.poi_shapes,
            bbox: geometry.bbox,
            grid,
            plates,
            towns_geojson: towns_geojson.to_owned(),
        }
    }
}
