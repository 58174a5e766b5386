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
//! - `area.rs` (this file): record types, [`AreaIndex`] (validation, lookups, ancestors, labels).
//! - `area/data.rs`: reading TSV tables by column name, collecting problems per row.
//! - `area/geo.rs`: point-in-polygon, distances, GeoJSON town polygons.
//! - `area/doorplate.rs`: [`PlateId`] and the deterministic generator for the 194,000 QR plates.

mod data;
mod doorplate;
mod geo;

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use self::data::{TableCode, TableRows};
use self::geo::Shape;

pub use self::doorplate::{
    Doorplate, DoorplateConfig, Doorplates, PlateId, PlateIdError, PlateType,
};
pub use self::geo::BoundingBox;

/// The district code of 闵行区.
pub const DISTRICT_CODE: &str = "310112";
/// The district's Chinese name.
pub const DISTRICT_NAME_ZH: &str = "闵行区";
/// The district's English name.
pub const DISTRICT_NAME_EN: &str = "Minhang District";

const TOWNS_TSV: &str = include_str!("../../../schemas/reference/towns.tsv");
const STATIONS_TSV: &str = include_str!("../../../schemas/reference/stations.tsv");
const COMMITTEES_TSV: &str = include_str!("../../../schemas/reference/committees.tsv");
const COMPOUNDS_TSV: &str = include_str!("../../../schemas/reference/compounds.tsv");
const POIS_TSV: &str = include_str!("../../../schemas/reference/pois.tsv");
const SAFE_HOUSES_TSV: &str = include_str!("../../../schemas/reference/safe_houses.tsv");
const TOWNS_GEOJSON: &str = include_str!("../../../schemas/reference/towns.approx.geojson");

/// Compound lookup grid cell size in degrees (about 1 km), small enough that a cell holds a
/// handful of compounds.
const GRID_DEG: f64 = 0.01;

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

/// A reference table, for error reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `towns.tsv`.
    Towns,
    /// `stations.tsv`.
    Stations,
    /// `committees.tsv`.
    Committees,
    /// `compounds.tsv`.
    Compounds,
    /// `pois.tsv`.
    Pois,
    /// `safe_houses.tsv`.
    SafeHouses,
    /// The town GeoJSON.
    Geometry,
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Table::Towns => "towns",
            Table::Stations => "stations",
            Table::Committees => "committees",
            Table::Compounds => "compounds",
            Table::Pois => "pois",
            Table::SafeHouses => "safe_houses",
            Table::Geometry => "geometry",
        })
    }
}

/// One problem found in the reference data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AreaProblem {
    /// A row or the table itself cannot be read.
    #[error("{table} line {line}: {reason}")]
    Malformed {
        /// Table.
        table: Table,
        /// 1-based line, 0 for the whole table.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Two rows share an id.
    #[error("{table}: duplicate id {id}")]
    Duplicate {
        /// Table.
        table: Table,
        /// The repeated id.
        id: String,
    },
    /// A reference to an id that does not exist.
    #[error("{table} {id}: {field} {value:?} does not exist")]
    UnknownReference {
        /// Table of the referring row.
        table: Table,
        /// Id of the referring row.
        id: String,
        /// Referring column.
        field: &'static str,
        /// The missing id.
        value: String,
    },
    /// A row contradicts another (e.g. a compound's committee lies in another town).
    #[error("{table} {id}: {reason}")]
    Inconsistent {
        /// Table.
        table: Table,
        /// Row id.
        id: String,
        /// What contradicts what.
        reason: String,
    },
    /// A row's point lies outside the town it claims.
    #[error("{table} {id}: point ({lat}, {lon}) lies in {found}, not in its town {expected}")]
    OutsideTown {
        /// Table.
        table: Table,
        /// Row id.
        id: String,
        /// Latitude.
        lat: f64,
        /// Longitude.
        lon: f64,
        /// The town code the row names.
        expected: String,
        /// Where the point actually falls (`no town` outside the district box).
        found: String,
    },
    /// A town lacks something every town needs (a station, a committee, a polygon).
    #[error("town {town}: {reason}")]
    Coverage {
        /// Town code.
        town: String,
        /// What is missing.
        reason: String,
    },
}

/// Every problem found while building an [`AreaIndex`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid area reference data ({} problems): {}", .problems.len(),
    .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct AreaError {
    /// The problems, in table order.
    pub problems: Vec<AreaProblem>,
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

/// A uniform grid over the district listing the compounds whose disc touches each cell.
#[derive(Debug, Clone)]
struct CompoundGrid {
    origin: (f64, f64),
    cols: usize,
    rows: usize,
    cells: Vec<Vec<u32>>,
}

impl CompoundGrid {
    fn new(bbox: &BoundingBox, compounds: &[Compound]) -> CompoundGrid {
        // Truncation is intended: the extent is a few dozen cells.
        let cols = ((bbox.max_lon - bbox.min_lon) / GRID_DEG).ceil().max(0.0) as usize + 1;
        let rows = ((bbox.max_lat - bbox.min_lat) / GRID_DEG).ceil().max(0.0) as usize + 1;
        let mut grid = CompoundGrid {
            origin: (bbox.min_lat, bbox.min_lon),
            cols,
            rows,
            cells: vec![Vec::new(); cols * rows],
        };
        for (i, c) in compounds.iter().enumerate() {
            let (north, east) = geo::offset(c.lat, c.lon, c.radius_m, c.radius_m);
            let (south, west) = geo::offset(c.lat, c.lon, -c.radius_m, -c.radius_m);
            let (r0, c0) = grid.cell(south, west);
            let (r1, c1) = grid.cell(north, east);
            for r in r0..=r1 {
                for col in c0..=c1 {
                    grid.cells[r * cols + col].push(u32::try_from(i).unwrap_or(u32::MAX));
                }
            }
        }
        grid
    }

    /// Cell of a point, clamped to the grid.
    fn cell(&self, lat: f64, lon: f64) -> (usize, usize) {
        let r = ((lat - self.origin.0) / GRID_DEG).floor().max(0.0) as usize;
        let c = ((lon - self.origin.1) / GRID_DEG).floor().max(0.0) as usize;
        (r.min(self.rows - 1), c.min(self.cols - 1))
    }

    fn candidates(&self, lat: f64, lon: f64) -> &[u32] {
        let (r, c) = self.cell(lat, lon);
        &self.cells[r * self.cols + c]
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

const LAT_RANGE: std::ops::RangeInclusive<f64> = -90.0..=90.0;
const LON_RANGE: std::ops::RangeInclusive<f64> = -180.0..=180.0;

fn parse_towns(text: &str, problems: &mut Vec<AreaProblem>) -> Vec<Town> {
    let cols = [
        "code",
        "name_zh",
        "name_en",
        "kind",
        "alias_zh",
        "verification",
    ];
    let table = TableRows::parse(Table::Towns, text, &cols, problems);
    let mut out = Vec::new();
    for mut r in table.cursors() {
        let code = r.text("code");
        let row = (
            r.text("name_zh"),
            r.text("name_en"),
            r.code("kind"),
            r.opt_text("alias_zh"),
            r.code("verification"),
        );
        let line = r.line();
        if r.finish(problems)
            && let (name_zh, name_en, Some(kind), alias_zh, Some(verification)) = row
        {
            let well_formed = code.len() == 9
                && code.starts_with(DISTRICT_CODE)
                && code.bytes().all(|b| b.is_ascii_digit());
            if well_formed {
                out.push(Town {
                    code,
                    name_zh,
                    name_en,
                    kind,
                    alias_zh,
                    verification,
                });
            } else {
                problems.push(AreaProblem::Malformed {
                    table: Table::Towns,
                    line,
                    reason: format!("town code {code:?} is not 9 digits starting {DISTRICT_CODE}"),
                });
            }
        }
    }
    out
}

fn parse_stations(text: &str, problems: &mut Vec<AreaProblem>) -> Vec<Station> {
    let cols = [
        "code",
        "name_zh",
        "name_en",
        "verification",
        "towns",
        "address_zh",
        "lat",
        "lon",
    ];
    let table = TableRows::parse(Table::Stations, text, &cols, problems);
    let mut out = Vec::new();
    for mut r in table.cursors() {
        let code = r.text("code");
        let (name_zh, name_en, verification) =
            (r.text("name_zh"), r.text("name_en"), r.code("verification"));
        let towns: Vec<String> = r
            .text("towns")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        let (address_zh, note) = (r.opt_text("address_zh"), r.opt_text("note"));
        let (lat, lon) = (
            r.coordinate("lat", LAT_RANGE),
            r.coordinate("lon", LON_RANGE),
        );
        if r.finish(problems)
            && let Some(verification) = verification
        {
            out.push(Station {
                code,
                name_zh,
                name_en,
                verification,
                towns,
                address_zh,
                lat,
                lon,
                note,
            });
        }
    }
    out
}

fn parse_committees(text: &str, problems: &mut Vec<AreaProblem>) -> Vec<Committee> {
    let cols = [
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
    let table = TableRows::parse(Table::Committees, text, &cols, problems);
    let mut out = Vec::new();
    for mut r in table.cursors() {
        let (id, name_zh, name_en, kind) = (
            r.text("id"),
            r.text("name_zh"),
            r.text("name_en"),
            r.code("kind"),
        );
        let (town_code, station_code) = (r.text("town"), r.text("station"));
        let (lat, lon) = (
            r.coordinate("lat", LAT_RANGE),
            r.coordinate("lon", LON_RANGE),
        );
        let synthetic = r.flag("synthetic");
        if r.finish(problems)
            && let Some(kind) = kind
        {
            out.push(Committee {
                id,
                name_zh,
                name_en,
                kind,
                town_code,
                station_code,
                lat,
                lon,
                synthetic,
            });
        }
    }
    out
}

fn parse_compounds(text: &str, problems: &mut Vec<AreaProblem>) -> Vec<Compound> {
    let cols = [
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
    let table = TableRows::parse(Table::Compounds, text, &cols, problems);
    let mut out = Vec::new();
    for mut r in table.cursors() {
        let compound = Compound {
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
            lat: r.coordinate("lat", LAT_RANGE),
            lon: r.coordinate("lon", LON_RANGE),
            radius_m: r.coordinate("radius_m", 1.0..=5_000.0),
            synthetic: r.flag("synthetic"),
            town_verified: r.flag("town_verified"),
            note: r.opt_text("note"),
        };
        if r.finish(problems) {
            out.push(compound);
        }
    }
    out
}

fn parse_pois(text: &str, problems: &mut Vec<AreaProblem>) -> Vec<Poi> {
    let cols = [
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
    let table = TableRows::parse(Table::Pois, text, &cols, problems);
    let mut out = Vec::new();
    for mut r in table.cursors() {
        let (id, name_zh, name_en, kind) = (
            r.text("id"),
            r.text("name_zh"),
            r.text("name_en"),
            r.code("kind"),
        );
        let town_code = r.text("town");
        let (lat, lon) = (
            r.coordinate("lat", LAT_RANGE),
            r.coordinate("lon", LON_RANGE),
        );
        let radius_m: f64 = r.parse("radius_m");
        let polygon = r.opt_text("polygon");
        let (verification, note) = (r.code("verification"), r.opt_text("note"));
        let line = r.line();
        if !r.finish(problems) {
            continue;
        }
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
        match (kind, verification, shape) {
            (Some(kind), Some(verification), Some(shape)) => out.push(Poi {
                id,
                name_zh,
                name_en,
                kind,
                town_code,
                lat,
                lon,
                shape,
                verification,
                note,
            }),
            _ => problems.push(AreaProblem::Malformed {
                table: Table::Pois,
                line,
                reason: "needs radius_m > 0 or a polygon of at least 3 `lon,lat` pairs".to_owned(),
            }),
        }
    }
    out
}

fn parse_safe_houses(text: &str, problems: &mut Vec<AreaProblem>) -> Vec<SafeHouse> {
    let cols = [
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
    let table = TableRows::parse(Table::SafeHouses, text, &cols, problems);
    let mut out = Vec::new();
    for mut r in table.cursors() {
        let (id, name_zh, name_en) = (r.text("id"), r.text("name_zh"), r.text("name_en"));
        let host_type = r.code("host_type");
        let (station_code, town_code, address_zh) =
            (r.text("station"), r.text("town"), r.text("address_zh"));
        let (lat, lon) = (
            r.coordinate("lat", LAT_RANGE),
            r.coordinate("lon", LON_RANGE),
        );
        let trained_staff = r.parse("trained_staff");
        let (has_medical_kit, has_warning_light) =
            (r.flag("has_medical_kit"), r.flag("has_warning_light"));
        let synthetic = r.flag("synthetic");
        if r.finish(problems)
            && let Some(host_type) = host_type
        {
            out.push(SafeHouse {
                id,
                name_zh,
                name_en,
                host_type,
                station_code,
                town_code,
                address_zh,
                lat,
                lon,
                trained_staff,
                has_medical_kit,
                has_warning_light,
                synthetic,
            });
        }
    }
    out
}

/// Maps ids to positions, reporting duplicates.
fn index_by<T>(
    table: Table,
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

/// The town containing a point, else the nearest town within the box; `None` outside the box.
/// Returns `(town index, inside a polygon)`.
fn town_index_at(
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

    /// Parses and cross-checks the reference data, reporting every problem found: malformed
    /// rows, duplicate ids, unknown parents, stations that do not serve a row's town, points
    /// outside their town, towns without a station, committee or polygon, doorplate capacity.
    pub fn from_sources(sources: AreaSources<'_>) -> Result<AreaIndex, AreaError> {
        let mut problems = Vec::new();
        let p = &mut problems;
        let towns = parse_towns(sources.towns, p);
        let stations = parse_stations(sources.stations, p);
        let committees = parse_committees(sources.committees, p);
        let compounds = parse_compounds(sources.compounds, p);
        let pois = parse_pois(sources.pois, p);
        let safe_houses = parse_safe_houses(sources.safe_houses, p);

        let town_by_code = index_by(Table::Towns, &towns, |t| &t.code, p);
        let station_by_code = index_by(Table::Stations, &stations, |s| &s.code, p);
        let committee_by_id = index_by(Table::Committees, &committees, |c| &c.id, p);
        let compound_by_id = index_by(Table::Compounds, &compounds, |c| &c.id, p);
        let poi_by_id = index_by(Table::Pois, &pois, |x| &x.id, p);
        index_by(Table::SafeHouses, &safe_houses, |s| &s.id, p);

        // Geometry: exactly one feature per known town.
        let mut shapes: Vec<Option<Shape>> = vec![None; towns.len()];
        match geo::parse_feature_collection(sources.towns_geojson) {
            Err(reasons) => p.extend(reasons.into_iter().map(|reason| AreaProblem::Malformed {
                table: Table::Geometry,
                line: 0,
                reason,
            })),
            Ok(features) => {
                for f in features {
                    match town_by_code.get(&f.code) {
                        None => p.push(AreaProblem::UnknownReference {
                            table: Table::Geometry,
                            id: f.code.clone(),
                            field: "code",
                            value: f.code,
                        }),
                        Some(&t) if shapes[t].is_some() => {
                            p.push(AreaProblem::Duplicate {
                                table: Table::Geometry,
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
        let town_shapes: Vec<Shape> = shapes.into_iter().flatten().collect();
        let geometry_ok = town_shapes.len() == towns.len();

        // Checks that a row's point lies in its town (only meaningful with complete geometry).
        let check_point = |p: &mut Vec<AreaProblem>, table, id: &str, town: &str, lat, lon| {
            if !geometry_ok {
                return;
            }
            let found = town_index_at(&town_shapes, &bbox, lat, lon)
                .map_or_else(|| "no town".to_owned(), |(i, _)| towns[i].code.clone());
            if found != town {
                p.push(AreaProblem::OutsideTown {
                    table,
                    id: id.to_owned(),
                    lat,
                    lon,
                    expected: town.to_owned(),
                    found,
                });
            }
        };
        let unknown = |table, id: &str, field, value: &str| AreaProblem::UnknownReference {
            table,
            id: id.to_owned(),
            field,
            value: value.to_owned(),
        };
        let serves = |station: usize, town: &str| stations[station].towns.iter().any(|t| t == town);

        let mut town_stations = vec![Vec::new(); towns.len()];
        for (i, s) in stations.iter().enumerate() {
            if s.towns.is_empty() {
                p.push(AreaProblem::Inconsistent {
                    table: Table::Stations,
                    id: s.code.clone(),
                    reason: "serves no town".to_owned(),
                });
            }
            for t in &s.towns {
                match town_by_code.get(t) {
                    Some(&ti) => town_stations[ti].push(i),
                    None => p.push(unknown(Table::Stations, &s.code, "towns", t)),
                }
            }
            if geometry_ok && !bbox.contains(s.lat, s.lon) {
                p.push(AreaProblem::Inconsistent {
                    table: Table::Stations,
                    id: s.code.clone(),
                    reason: format!("location ({}, {}) is outside the district", s.lat, s.lon),
                });
            }
        }

        let mut town_committees = vec![Vec::new(); towns.len()];
        let mut committee_station = vec![0; committees.len()];
        for (i, c) in committees.iter().enumerate() {
            let Some(&ti) = town_by_code.get(&c.town_code) else {
                p.push(unknown(Table::Committees, &c.id, "town", &c.town_code));
                continue;
            };
            town_committees[ti].push(i);
            match station_by_code.get(&c.station_code) {
                None => p.push(unknown(
                    Table::Committees,
                    &c.id,
                    "station",
                    &c.station_code,
                )),
                Some(&si) if !serves(si, &c.town_code) => p.push(AreaProblem::Inconsistent {
                    table: Table::Committees,
                    id: c.id.clone(),
                    reason: format!(
                        "station {} does not serve town {}",
                        c.station_code, c.town_code
                    ),
                }),
                Some(&si) => committee_station[i] = si,
            }
            check_point(p, Table::Committees, &c.id, &c.town_code, c.lat, c.lon);
        }

        for (t, town) in towns.iter().enumerate() {
            if town_stations[t].is_empty() {
                p.push(AreaProblem::Coverage {
                    town: town.code.clone(),
                    reason: "no station serves it".to_owned(),
                });
            }
            if town_committees[t].is_empty() {
                p.push(AreaProblem::Coverage {
                    town: town.code.clone(),
                    reason: "has no committee".to_owned(),
                });
            }
        }

        let mut compound_town = vec![0; compounds.len()];
        for (i, c) in compounds.iter().enumerate() {
            let Some(&ti) = town_by_code.get(&c.town_code) else {
                p.push(unknown(Table::Compounds, &c.id, "town", &c.town_code));
                continue;
            };
            compound_town[i] = ti;
            match station_by_code.get(&c.station_code) {
                None => p.push(unknown(Table::Compounds, &c.id, "station", &c.station_code)),
                Some(&si) if !serves(si, &c.town_code) => p.push(AreaProblem::Inconsistent {
                    table: Table::Compounds,
                    id: c.id.clone(),
                    reason: format!(
                        "station {} does not serve town {}",
                        c.station_code, c.town_code
                    ),
                }),
                Some(_) => {}
            }
            match committee_by_id
                .get(&c.committee_id)
                .map(|&k| &committees[k])
            {
                None => p.push(unknown(
                    Table::Compounds,
                    &c.id,
                    "committee",
                    &c.committee_id,
                )),
                Some(k) if k.town_code != c.town_code || k.station_code != c.station_code => {
                    p.push(AreaProblem::Inconsistent {
                        table: Table::Compounds,
                        id: c.id.clone(),
                        reason: format!(
                            "committee {} belongs to town {} / station {}, the compound to {} / {}",
                            k.id, k.town_code, k.station_code, c.town_code, c.station_code
                        ),
                    });
                }
                Some(_) => {}
            }
            if c.buildings == 0 {
                p.push(AreaProblem::Inconsistent {
                    table: Table::Compounds,
                    id: c.id.clone(),
                    reason: "has no buildings".to_owned(),
                });
            }
            check_point(p, Table::Compounds, &c.id, &c.town_code, c.lat, c.lon);
        }

        let mut poi_shapes = Vec::with_capacity(pois.len());
        for x in &pois {
            if !town_by_code.contains_key(&x.town_code) {
                p.push(unknown(Table::Pois, &x.id, "town", &x.town_code));
            }
            check_point(p, Table::Pois, &x.id, &x.town_code, x.lat, x.lon);
            poi_shapes.push(match &x.shape {
                PoiShape::Polygon { ring } => Some(geo::shape_from_ring(ring.clone())),
                PoiShape::Circle { .. } => None,
            });
        }

        for h in &safe_houses {
            if !town_by_code.contains_key(&h.town_code) {
                p.push(unknown(Table::SafeHouses, &h.id, "town", &h.town_code));
            }
            match station_by_code.get(&h.station_code) {
                None => p.push(unknown(
                    Table::SafeHouses,
                    &h.id,
                    "station",
                    &h.station_code,
                )),
                Some(&si) if !serves(si, &h.town_code) => p.push(AreaProblem::Inconsistent {
                    table: Table::SafeHouses,
                    id: h.id.clone(),
                    reason: format!(
                        "station {} does not serve town {}",
                        h.station_code, h.town_code
                    ),
                }),
                Some(_) => {}
            }
            check_point(p, Table::SafeHouses, &h.id, &h.town_code, h.lat, h.lon);
        }

        // Compound ordinals (part of plate ids) follow id order within each town.
        let mut members: Vec<(&str, Vec<usize>)> = towns
            .iter()
            .map(|t| (t.code.as_str(), Vec::new()))
            .collect();
        for (i, &t) in compound_town.iter().enumerate() {
            members[t].1.push(i);
        }
        for m in &mut members {
            m.1.sort_by(|&a, &b| compounds[a].id.cmp(&compounds[b].id));
        }
        let plates = match doorplate::PlatePlan::new(sources.doorplates, &members, &compounds) {
            Ok(plan) => Some(plan),
            Err(e) => {
                p.extend(e);
                None
            }
        };

        match plates {
            Some(plates) if problems.is_empty() => {
                let grid = CompoundGrid::new(&bbox, &compounds);
                Ok(AreaIndex {
                    towns,
                    stations,
                    committees,
                    compounds,
                    pois,
                    safe_houses,
                    town_by_code,
                    station_by_code,
                    committee_by_id,
                    compound_by_id,
                    poi_by_id,
                    town_shapes,
                    town_stations,
                    town_committees,
                    compound_town,
                    committee_station,
                    poi_shapes,
                    bbox,
                    grid,
                    plates,
                    towns_geojson: sources.towns_geojson.to_owned(),
                })
            }
            _ => Err(AreaError { problems }),
        }
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
        town_index_at(&self.town_shapes, &self.bbox, lat, lon).map(|(t, _)| &self.towns[t])
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
        let (town, in_town_polygon) = town_index_at(&self.town_shapes, &self.bbox, lat, lon)?;
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
