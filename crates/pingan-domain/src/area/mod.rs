//! Minhang's area hierarchy and geography: towns, police stations, committees, compounds,
//! buildings and QR doorplates, plus POIs and safe houses, with point lookup.
//!
//! The hierarchy follows DOMAIN.md §7: district (区, `310112`) → town (街镇) → police station
//! area (派出所辖区) → residents'/village committee (居委/村委) → compound (小区, 路 + 弄) →
//! building (号) → doorplate (号/室). Stations and towns do not nest one-to-one: a town may
//! have several stations (虹桥镇: 虹桥 and 龙柏), so a station lists the towns it serves and an
//! address's station comes from its committee (or, for a bare point, the nearest serving station).
//!
//! All reference data is embedded (`schemas/reference/`, read with `include_str!`), so this
//! module does no I/O. [`AreaIndex::from_sources`] accepts the same formats from strings, which
//! is how configuration replaces any table or the town geometry; it reports every problem found.
//! Which rows are real and which are synthetic is recorded per row and in
//! `schemas/reference/README.md`.
//!
//! # Layout
//! - `area/mod.rs` (this file): record types, [`AreaIndex`] and its lookups (points, ancestors,
//!   labels).
//! - `area/tables.rs`: the one TSV table reader (columns by header name, every bad cell
//!   reported with file, line and column); `area/rows.rs`: each table's columns and record.
//! - `area/build.rs`: [`AreaIndex::from_sources`] in steps (read, index ids, place polygons,
//!   link and check rows, plan doorplates).
//! - `area/error.rs`: [`RefTable`], [`AreaProblem`], [`AreaError`].
//! - `area/geo.rs`: point-in-polygon, distances, GeoJSON town polygons; `area/grid.rs`: the
//!   compound lookup grid.
//! - `area/doorplate.rs`: [`PlateId`] and the deterministic generator for the 194,000 QR plates.

mod build;
mod doorplate;
mod error;
mod geo;
mod grid;
mod rows;
mod tables;

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use self::geo::Shape;
use self::grid::CompoundGrid;
use self::rows::{LAT_RANGE, LON_RANGE};
use self::tables::TableCode;

pub use self::doorplate::{
    Doorplate, DoorplateConfig, Doorplates, PlateId, PlateIdError, PlateType,
};
pub use self::error::{AreaError, AreaProblem, Column, RefTable};
pub use self::geo::BoundingBox;

/// The district code of 闵行区.
pub const DISTRICT_CODE: &str = "310112";
/// The district's Chinese name.
pub const DISTRICT_NAME_ZH: &str = "闵行区";
/// The district's English name.
pub const DISTRICT_NAME_EN: &str = "Minhang District";

const TOWNS_TSV: &str = include_str!("../../../../schemas/reference/towns.tsv");
const STATIONS_TSV: &str = include_str!("../../../../schemas/reference/stations.tsv");
const COMMITTEES_TSV: &str = include_str!("../../../../schemas/reference/committees.tsv");
const COMPOUNDS_TSV: &str = include_str!("../../../../schemas/reference/compounds.tsv");
const POIS_TSV: &str = include_str!("../../../../schemas/reference/pois.tsv");
const SAFE_HOUSES_TSV: &str = include_str!("../../../../schemas/reference/safe_houses.tsv");
const TOWNS_GEOJSON: &str = include_str!("../../../../schemas/reference/towns.approx.geojson");

/// A level of the area hierarchy, from the district down to a single doorplate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaLevel {
    /// 区: always `310112`.
    District,
    /// 街道/镇 (and the 莘庄工业区 functional zone), 9-digit statistical code.
    Town,
    /// 派出所, a synthetic mnemonic such as `MH-PS-QIBAO`.
    Station,
    /// 居委/村委, e.g. `MH-CM-102-03`.
    Committee,
    /// 小区, e.g. `MH-CP-101-001`.
    Compound,
    /// 楼栋, `<compound id>#<building number>`, e.g. `MH-CP-101-001#12`.
    Building,
    /// A QR doorplate, e.g. `MHQR-101-00100215`.
    Doorplate,
}

impl AreaLevel {
    /// Every level, from the top.
    pub const ALL: [AreaLevel; 7] = [
        AreaLevel::District,
        AreaLevel::Town,
        AreaLevel::Station,
        AreaLevel::Committee,
        AreaLevel::Compound,
        AreaLevel::Building,
        AreaLevel::Doorplate,
    ];

    /// The wire code, e.g. `town`.
    pub fn as_str(self) -> &'static str {
        match self {
            AreaLevel::District => "district",
            AreaLevel::Town => "town",
            AreaLevel::Station => "station",
            AreaLevel::Committee => "committee",
            AreaLevel::Compound => "compound",
            AreaLevel::Building => "building",
            AreaLevel::Doorplate => "doorplate",
        }
    }
}

impl fmt::Display for AreaLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares a small enum stored in the tables as a snake_case code.
macro_rules! table_code {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal $(| $alias:literal)*,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant,)+ }

        impl $name {
            /// The code as written in the reference tables.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $code,)+ }
            }
        }

        impl TableCode for $name {
            const ALL: &'static [Self] = &[$($name::$variant,)+];
            fn code(self) -> &'static str {
                self.as_str()
            }
            fn aliases(self) -> &'static [&'static str] {
                match self { $($name::$variant => &[$($alias),*],)+ }
            }
        }
    };
}

table_code! {
    /// The administrative type of a town.
    TownKind {
        /// 街道.
        Subdistrict = "subdistrict",
        /// 镇.
        Town = "town",
        /// 功能区 such as 莘庄工业区 (not a 街镇, but it has a town-level code).
        FunctionalZone = "functional_zone",
    }
}

table_code! {
    /// How well a name or fact is sourced (DOMAIN.md's tags).
    Verification {
        /// `[V]`: a named public source.
        Verified = "verified" | "V",
        /// `[V~]`: only a weak source (mirror, repost, contradicting sources); realistic colour.
        Weak = "weak" | "V~",
        /// `[U]`: plausible but unconfirmed; must not be presented as real.
        Unverified = "unverified" | "U",
    }
}

table_code! {
    /// The kind of grassroots committee.
    CommitteeKind {
        /// 居民委员会 (urban residents' committee).
        Residents = "residents",
        /// 村民委员会 (village committee).
        Village = "village",
    }
}

table_code! {
    /// What a point of interest is.
    PoiKind {
        /// Scenic or tourist area (disputes route to market supervision / scenic management).
        ScenicArea = "scenic_area",
        /// Bars, restaurants, KTV.
        Nightlife = "nightlife",
        /// Shopping centre.
        Commercial = "commercial",
        /// Airport.
        Airport = "airport",
        /// Railway/metro/bus hub.
        TransportHub = "transport_hub",
        /// Market or night market.
        Market = "market",
        /// Hospital.
        Hospital = "hospital",
        /// School, college or campus.
        School = "school",
        /// 城中村: a village surrounded by the city, often mixed-use.
        UrbanVillage = "urban_village",
    }
}

table_code! {
    /// Who hosts a safe house (安全屋).
    HostType {
        /// A 24-hour convenience store.
        ConvenienceStore = "convenience_store",
        /// An office building's or company's guard room.
        CompanyGuardRoom = "company_guard_room",
        /// The gate lodge of a residential compound.
        CompoundGateLodge = "compound_gate_lodge",
        /// A mobile command vehicle (the seed's 虹桥号).
        MobileCommandVehicle = "mobile_command_vehicle",
    }
}

/// A town (街道/镇/功能区) of Minhang.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Town {
    /// 9-digit statistical code, e.g. `310112102`.
    pub code: String,
    /// Chinese name, e.g. `七宝镇`.
    pub name_zh: String,
    /// English name, e.g. `Qibao Town`.
    pub name_en: String,
    /// Administrative type.
    pub kind: TownKind,
    /// Another spelling in use (e.g. `古美街道`).
    pub alias_zh: Option<String>,
    /// Sourcing of the code and name.
    pub verification: Verification,
}

/// A police station (派出所) of the Minhang branch of the Shanghai PSB.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Station {
    /// Synthetic mnemonic code, e.g. `MH-PS-QIBAO` (real unit codes were not researched).
    pub code: String,
    /// Chinese name, e.g. `七宝派出所`.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// Whether the station's name is confirmed; unverified names must not be shown as real.
    pub verification: Verification,
    /// Town codes served; the first is the station's home town (used by [`AreaIndex::ancestors`]).
    pub towns: Vec<String>,
    /// Street address where known.
    pub address_zh: Option<String>,
    /// Approximate latitude.
    pub lat: f64,
    /// Approximate longitude.
    pub lon: f64,
    /// Source or caveat.
    pub note: Option<String>,
}

/// A residents' or village committee (居委/村委).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Committee {
    /// Id, e.g. `MH-CM-102-03`.
    pub id: String,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// Residents' or village committee.
    pub kind: CommitteeKind,
    /// Town the committee belongs to.
    pub town_code: String,
    /// Station whose beat covers the committee.
    pub station_code: String,
    /// Latitude of the committee's area centre.
    pub lat: f64,
    /// Longitude of the committee's area centre.
    pub lon: f64,
    /// Invented rather than real.
    pub synthetic: bool,
}

/// A residential compound (小区), addressed as 路 + 弄.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Compound {
    /// Id, e.g. `MH-CP-101-001`.
    pub id: String,
    /// Chinese name, e.g. `上海康城`.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// Town.
    pub town_code: String,
    /// Responsible police station (the committee's).
    pub station_code: String,
    /// Committee.
    pub committee_id: String,
    /// Road, e.g. `莘松路`.
    pub road_zh: String,
    /// Road in English, e.g. `Xinsong Road`.
    pub road_en: String,
    /// Lane number (弄).
    pub lane: u32,
    /// Number of buildings.
    pub buildings: u32,
    /// Number of households.
    pub households: u32,
    /// Residents.
    pub population: u32,
    /// Surveillance cameras.
    pub cameras: u32,
    /// Latitude of the centre.
    pub lat: f64,
    /// Longitude of the centre.
    pub lon: f64,
    /// Extent used for point lookup, in metres.
    pub radius_m: f64,
    /// Invented rather than real.
    pub synthetic: bool,
    /// Whether the compound's town is confirmed (false for 金色西郊城 and 好世鹿鸣苑).
    pub town_verified: bool,
    /// Provenance for real rows.
    pub note: Option<String>,
}

impl Compound {
    /// The standard address of the compound, e.g. `莘松路958弄`.
    pub fn address_zh(&self) -> String {
        format!("{}{}弄", self.road_zh, self.lane)
    }

    /// The address in English, e.g. `Lane 958, Xinsong Road`.
    pub fn address_en(&self) -> String {
        format!("Lane {}, {}", self.lane, self.road_en)
    }
}

/// The footprint of a POI.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum PoiShape {
    /// A disc around the POI's point.
    Circle {
        /// Radius in metres.
        radius_m: f64,
    },
    /// A polygon of `[lon, lat]` positions (e.g. a street strip).
    Polygon {
        /// The ring, without the repeated closing position.
        ring: Vec<[f64; 2]>,
    },
}

/// A point of interest or hot spot (scenic area, nightlife strip, airport, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Poi {
    /// Id, e.g. `POI-QIBAO-OLDSTREET`.
    pub id: String,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// What it is.
    pub kind: PoiKind,
    /// Town.
    pub town_code: String,
    /// Representative latitude.
    pub lat: f64,
    /// Representative longitude.
    pub lon: f64,
    /// Footprint.
    pub shape: PoiShape,
    /// Sourcing of the name and town.
    pub verification: Verification,
    /// Source or caveat.
    pub note: Option<String>,
}

/// A safe house (安全屋): a 24-hour manned refuge with trained staff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SafeHouse {
    /// Id, e.g. `MH-SH-0001`.
    pub id: String,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// Host.
    pub host_type: HostType,
    /// Station that runs it.
    pub station_code: String,
    /// Town.
    pub town_code: String,
    /// Address.
    pub address_zh: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Staff trained for emergencies.
    pub trained_staff: u32,
    /// Has an emergency/medical kit.
    pub has_medical_kit: bool,
    /// Marked by a warning light.
    pub has_warning_light: bool,
    /// Invented rather than real.
    pub synthetic: bool,
}

/// Chinese and English names of an area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: String,
}

/// Where a point lies in the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PointLocation<'a> {
    /// The town whose polygon contains the point (or the nearest one, see `in_town_polygon`).
    pub town: &'a Town,
    /// The compound's station, else the station serving the town nearest the point.
    pub station: &'a Station,
    /// The compound's committee, else the nearest committee of that station in the town.
    pub committee: &'a Committee,
    /// The compound whose radius contains the point, if any.
    pub compound: Option<&'a Compound>,
    /// False when the point is in no polygon (a gap, the river) and the nearest town was used.
    pub in_town_polygon: bool,
}

/// The texts an [`AreaIndex`] is built from; start from [`AreaSources::builtin`] and replace
/// what configuration overrides.
#[derive(Debug, Clone, Copy)]
pub struct AreaSources<'a> {
    /// `towns.tsv`: code, name_zh, name_en, kind, alias_zh, verification.
    pub towns: &'a str,
    /// `stations.tsv`: code, name_zh, name_en, verification, towns (comma list), address_zh,
    /// lat, lon, note.
    pub stations: &'a str,
    /// `committees.tsv`: id, name_zh, name_en, kind, town, station, lat, lon, synthetic.
    pub committees: &'a str,
    /// `compounds.tsv`: id, name_zh, name_en, town, station, committee, road_zh, road_en, lane,
    /// buildings, households, population, cameras, lat, lon, radius_m, synthetic,
    /// town_verified, note.
    pub compounds: &'a str,
    /// `pois.tsv`: id, name_zh, name_en, kind, town, lat, lon, radius_m, polygon, verification,
    /// note.
    pub pois: &'a str,
    /// `safe_houses.tsv`: id, name_zh, name_en, host_type, station, town, address_zh, lat, lon,
    /// trained_staff, has_medical_kit, has_warning_light, synthetic.
    pub safe_houses: &'a str,
    /// A GeoJSON FeatureCollection with one Polygon/MultiPolygon per town (property `code`).
    pub towns_geojson: &'a str,
    /// Doorplate generation.
    pub doorplates: DoorplateConfig,
}

impl AreaSources<'static> {
    /// The reference data shipped in `schemas/reference/`.
    pub fn builtin() -> AreaSources<'static> {
        AreaSources {
            towns: TOWNS_TSV,
            stations: STATIONS_TSV,
            committees: COMMITTEES_TSV,
            compounds: COMPOUNDS_TSV,
            pois: POIS_TSV,
            safe_houses: SAFE_HOUSES_TSV,
            towns_geojson: TOWNS_GEOJSON,
            doorplates: DoorplateConfig::default(),
        }
    }
}

/// The validated area reference data with its lookup structures.
///
/// Build it once ([`AreaIndex::builtin`] or [`AreaIndex::from_sources`]) and share it; every
/// method is a pure lookup.
pub struct AreaIndex {
    towns: Vec<Town>,
    stations: Vec<Station>,
    committees: Vec<Committee>,
    compounds: Vec<Compound>,
    pois: Vec<Poi>,
    safe_houses: Vec<SafeHouse>,
    town_by_code: HashMap<String, usize>,
    station_by_code: HashMap<String, usize>,
    committee_by_id: HashMap<String, usize>,
    compound_by_id: HashMap<String, usize>,
    poi_by_id: HashMap<String, usize>,
    /// Parallel to `towns`.
    town_shapes: Vec<Shape>,
    /// Parallel to `towns`: stations serving the town.
    town_stations: Vec<Vec<usize>>,
    /// Parallel to `towns`: the town's committees.
    town_committees: Vec<Vec<usize>>,
    /// Parallel to `compounds`: index of the compound's town.
    compound_town: Vec<usize>,
    /// Parallel to `committees`: index of the committee's station.
    committee_station: Vec<usize>,
    /// Parallel to `pois`: polygon footprints (circles are checked by distance).
    poi_shapes: Vec<Option<Shape>>,
    bbox: BoundingBox,
    grid: CompoundGrid,
    plates: doorplate::PlatePlan,
    towns_geojson: String,
}

impl fmt::Debug for AreaIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The full tables are thousands of lines; counts are what a log or panic message needs.
        f.debug_struct("AreaIndex")
            .field("towns", &self.towns.len())
            .field("stations", &self.stations.len())
            .field("committees", &self.committees.len())
            .field("compounds", &self.compounds.len())
            .field("pois", &self.pois.len())
            .field("safe_houses", &self.safe_houses.len())
            .field("doorplates", &self.plates.total())
            .field("bbox", &self.bbox)
            .finish_non_exhaustive()
    }
}

impl AreaIndex {
    /// The index built from the data shipped in `schemas/reference/`, built once.
    ///
    /// # Panics
    /// Never in a released build: the embedded data is validated by this module's tests.
    #[allow(clippy::expect_used)]
    pub fn builtin() -> &'static AreaIndex {
        static BUILTIN: OnceLock<AreaIndex> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            AreaIndex::from_sources(AreaSources::builtin())
                .expect("invariant: builtin reference data is validated by tests")
        })
    }

    /// All towns, in table order.
    pub fn towns(&self) -> &[Town] {
        &self.towns
    }

    /// All police stations.
    pub fn stations(&self) -> &[Station] {
        &self.stations
    }

    /// All committees.
    pub fn committees(&self) -> &[Committee] {
        &self.committees
    }

    /// All compounds.
    pub fn compounds(&self) -> &[Compound] {
        &self.compounds
    }

    /// All POIs.
    pub fn pois(&self) -> &[Poi] {
        &self.pois
    }

    /// All safe houses.
    pub fn safe_houses(&self) -> &[SafeHouse] {
        &self.safe_houses
    }

    /// The town GeoJSON the index was built from (for the dashboard map).
    pub fn towns_geojson(&self) -> &str {
        &self.towns_geojson
    }

    /// The district's bounding box (of the town polygons); points outside it locate to `None`.
    pub fn bbox(&self) -> BoundingBox {
        self.bbox
    }

    /// A town by 9-digit code.
    pub fn town(&self, code: &str) -> Option<&Town> {
        self.town_by_code.get(code).map(|&i| &self.towns[i])
    }

    /// A station by code.
    pub fn station(&self, code: &str) -> Option<&Station> {
        self.station_by_code.get(code).map(|&i| &self.stations[i])
    }

    /// A committee by id.
    pub fn committee(&self, id: &str) -> Option<&Committee> {
        self.committee_by_id.get(id).map(|&i| &self.committees[i])
    }

    /// A compound by id.
    pub fn compound(&self, id: &str) -> Option<&Compound> {
        self.compound_by_id.get(id).map(|&i| &self.compounds[i])
    }

    /// A POI by id.
    pub fn poi(&self, id: &str) -> Option<&Poi> {
        self.poi_by_id.get(id).map(|&i| &self.pois[i])
    }

    /// The stations serving a town.
    pub fn stations_serving(&self, town_code: &str) -> impl Iterator<Item = &Station> + '_ {
        let list = self
            .town_by_code
            .get(town_code)
            .map(|&t| self.town_stations[t].as_slice());
        list.unwrap_or_default().iter().map(|&s| &self.stations[s])
    }

    /// Whether `code` is a known town code (for validating `town_code` hints at ingest).
    pub fn is_valid_town_code(&self, code: &str) -> bool {
        self.town_by_code.contains_key(code)
    }

    /// Whether `code` is a known station code.
    pub fn is_valid_station_code(&self, code: &str) -> bool {
        self.station_by_code.contains_key(code)
    }

    /// All doorplates: lookup, iteration, sampling.
    pub fn doorplates(&self) -> Doorplates<'_> {
        Doorplates { index: self }
    }

    /// A doorplate by id, regenerated in O(1); `None` for malformed or unallocated ids.
    pub fn doorplate(&self, plate_id: &str) -> Option<Doorplate<'_>> {
        self.doorplates().get(plate_id)
    }

    /// The resolution-9 H3 cell (about 0.1 km²) of a point, as its hex string; `None` for
    /// coordinates that are not valid WGS-84.
    pub fn h3_res9(lat: f64, lon: f64) -> Option<String> {
        // h3o only rejects non-finite input and would wrap e.g. latitude 91.
        if !(LAT_RANGE.contains(&lat) && LON_RANGE.contains(&lon)) {
            return None;
        }
        let ll = h3o::LatLng::new(lat, lon).ok()?;
        Some(ll.to_cell(h3o::Resolution::Nine).to_string())
    }

    /// The town of a point: the polygon containing it, else the nearest polygon when the point
    /// is inside the district's box (gaps, the river); `None` outside the box.
    pub fn town_at(&self, lat: f64, lon: f64) -> Option<&Town> {
        geo::town_index_at(&self.town_shapes, &self.bbox, lat, lon).map(|(t, _)| &self.towns[t])
    }

    /// The station (nearest serving the town) and committee (nearest of that station in the
    /// town, else nearest in the town) for a point that is not in a compound.
    fn beat_at(&self, town: usize, lat: f64, lon: f64) -> (usize, usize) {
        let dist = |a: f64, b: f64| geo::distance_m(lat, lon, a, b);
        let station = self.town_stations[town]
            .iter()
            .copied()
            .min_by(|&a, &b| {
                let (a, b) = (&self.stations[a], &self.stations[b]);
                dist(a.lat, a.lon).total_cmp(&dist(b.lat, b.lon))
            })
            .unwrap_or(0);
        let nearest = |only_station: bool| {
            self.town_committees[town]
                .iter()
                .copied()
                .filter(|&c| !only_station || self.committee_station[c] == station)
                .min_by(|&a, &b| {
                    let (a, b) = (&self.committees[a], &self.committees[b]);
                    dist(a.lat, a.lon).total_cmp(&dist(b.lat, b.lon))
                })
        };
        (
            station,
            nearest(true).or_else(|| nearest(false)).unwrap_or(0),
        )
    }

    /// A point known to lie inside a town (its first committee's centre).
    fn town_anchor(&self, town: usize) -> (f64, f64) {
        self.town_committees[town]
            .first()
            .map_or((self.bbox.min_lat, self.bbox.min_lon), |&c| {
                (self.committees[c].lat, self.committees[c].lon)
            })
    }

    /// The compound of `town` whose disc contains the point; the nearest centre wins when discs
    /// overlap.
    fn compound_at(&self, town: usize, lat: f64, lon: f64) -> Option<usize> {
        self.grid
            .candidates(lat, lon)
            .iter()
            .filter_map(|&c| usize::try_from(c).ok())
            .filter(|&c| self.compound_town[c] == town)
            .map(|c| {
                (
                    c,
                    geo::distance_m(lat, lon, self.compounds[c].lat, self.compounds[c].lon),
                )
            })
            .filter(|&(c, d)| d <= self.compounds[c].radius_m)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(c, _)| c)
    }

    /// Resolves a point to town, station, committee and compound; `None` outside the district
    /// box. See [`PointLocation`] for how each level is chosen.
    pub fn locate_point(&self, lat: f64, lon: f64) -> Option<PointLocation<'_>> {
        let (town, in_town_polygon) = geo::town_index_at(&self.town_shapes, &self.bbox, lat, lon)?;
        let compound = self.compound_at(town, lat, lon).map(|c| &self.compounds[c]);
        let (station, committee) = match compound {
            Some(c) => (
                self.station(&c.station_code)?,
                self.committee(&c.committee_id)?,
            ),
            None => {
                let (s, c) = self.beat_at(town, lat, lon);
                (&self.stations[s], &self.committees[c])
            }
        };
        Some(PointLocation {
            town: &self.towns[town],
            station,
            committee,
            compound,
            in_town_polygon,
        })
    }

    /// The POI whose footprint contains the point; the smallest footprint wins (老外街 inside a
    /// larger strip).
    pub fn poi_at(&self, lat: f64, lon: f64) -> Option<&Poi> {
        self.pois
            .iter()
            .zip(&self.poi_shapes)
            .filter_map(|(x, shape)| match (&x.shape, shape) {
                (PoiShape::Circle { radius_m }, _) => (geo::distance_m(lat, lon, x.lat, x.lon)
                    <= *radius_m)
                    .then(|| (x, std::f64::consts::PI * radius_m * radius_m)),
                (PoiShape::Polygon { .. }, Some(s)) => s.contains(lat, lon).then(|| {
                    let b = s.bbox();
                    let w = geo::distance_m(b.min_lat, b.min_lon, b.min_lat, b.max_lon);
                    let h = geo::distance_m(b.min_lat, b.min_lon, b.max_lat, b.min_lon);
                    (x, w * h)
                }),
                (PoiShape::Polygon { .. }, None) => None,
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(x, _)| x)
    }

    fn committee_chain(&self, committee: &Committee) -> Vec<(AreaLevel, String)> {
        vec![
            (AreaLevel::Committee, committee.id.clone()),
            (AreaLevel::Station, committee.station_code.clone()),
            (AreaLevel::Town, committee.town_code.clone()),
            (AreaLevel::District, DISTRICT_CODE.to_owned()),
        ]
    }

    fn compound_chain(&self, compound: &Compound) -> Option<Vec<(AreaLevel, String)>> {
        let mut chain = vec![(AreaLevel::Compound, compound.id.clone())];
        chain.extend(self.committee_chain(self.committee(&compound.committee_id)?));
        Some(chain)
    }

    /// The building `<compound id>#<number>`.
    fn building(&self, code: &str) -> Option<(&Compound, u32)> {
        let (compound, number) = code.rsplit_once('#')?;
        let compound = self.compound(compound)?;
        let number: u32 = number.parse().ok()?;
        (1..=compound.buildings)
            .contains(&number)
            .then_some((compound, number))
    }

    /// The areas above `code`, nearest first, ending with the district `310112` (empty for the
    /// district itself); `None` when the code is unknown at that level. A station's town is its
    /// home town (first listed), since stations may serve several.
    pub fn ancestors(&self, level: AreaLevel, code: &str) -> Option<Vec<(AreaLevel, String)>> {
        let district = || (AreaLevel::District, DISTRICT_CODE.to_owned());
        match level {
            AreaLevel::District => (code == DISTRICT_CODE).then(Vec::new),
            AreaLevel::Town => self.town(code).map(|_| vec![district()]),
            AreaLevel::Station => {
                let s = self.station(code)?;
                Some(vec![
                    (AreaLevel::Town, s.towns.first()?.clone()),
                    district(),
                ])
            }
            AreaLevel::Committee => {
                let mut chain = self.committee_chain(self.committee(code)?);
                chain.remove(0);
                Some(chain)
            }
            AreaLevel::Compound => {
                let mut chain = self.compound_chain(self.compound(code)?)?;
                chain.remove(0);
                Some(chain)
            }
            AreaLevel::Building => self.compound_chain(self.building(code)?.0),
            AreaLevel::Doorplate => {
                let plate = self.doorplate(code)?;
                let mut chain = Vec::new();
                if let Some(b) = plate.building_code() {
                    chain.push((AreaLevel::Building, b));
                }
                match plate.compound_id.and_then(|c| self.compound(c)) {
                    Some(c) => chain.extend(self.compound_chain(c)?),
                    None => chain.extend(self.committee_chain(self.committee(plate.committee_id)?)),
                }
                Some(chain)
            }
        }
    }

    /// Chinese and English names for any code at any level; `None` when unknown.
    pub fn label(&self, level: AreaLevel, code: &str) -> Option<Label> {
        let label = |zh: &str, en: &str| Label {
            zh: zh.to_owned(),
            en: en.to_owned(),
        };
        match level {
            AreaLevel::District => {
                (code == DISTRICT_CODE).then(|| label(DISTRICT_NAME_ZH, DISTRICT_NAME_EN))
            }
            AreaLevel::Town => self.town(code).map(|t| label(&t.name_zh, &t.name_en)),
            AreaLevel::Station => self.station(code).map(|s| label(&s.name_zh, &s.name_en)),
            AreaLevel::Committee => self.committee(code).map(|c| label(&c.name_zh, &c.name_en)),
            AreaLevel::Compound => self.compound(code).map(|c| label(&c.name_zh, &c.name_en)),
            AreaLevel::Building => self.building(code).map(|(c, n)| Label {
                zh: format!("{}{}号", c.name_zh, n),
                en: format!("No. {}, {}", n, c.name_en),
            }),
            AreaLevel::Doorplate => self.doorplate(code).map(|d| Label {
                zh: d.address_zh,
                en: d.address_en,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
