//! The 194,000 QR doorplates (门牌), generated deterministically instead of stored.
//!
//! A plate id encodes where the plate lives, `MHQR-<town>-<compound><index>`:
//!
//! - `<town>`: the last three digits of the town code (`101` for 莘庄镇 310112101);
//! - `<compound>`: three digits, the compound's ordinal within its town (compounds sorted by id,
//!   starting at `001`), or `000` for street plates (shops and buildings on a road);
//! - `<index>`: five digits, the plate's position within that compound or street set.
//!
//! So `MHQR-101-00100215` is plate 215 of 莘庄镇's first compound. Looking a plate up parses the
//! id and regenerates the plate from a hash of `(seed, town, compound, index)`: O(1), nothing is
//! materialised at startup, and the same reference data and seed always give the same plates.
//! Ids are not secret; the QR code's signature (`pingan qr sign`) is what makes a scan authentic.
//!
//! How many plates a compound gets is fixed when the index is built: a share of
//! [`DoorplateConfig::total`] proportional to its households, after
//! [`DoorplateConfig::street_per_mille`] is set aside for street plates.
//!
//! Within a compound the sequence is: the lane plate (弄牌), the gate plates, one plate per
//! building (楼栋牌), unit plates (楼单元牌) for compounds that use 单元, then room plates (户室牌),
//! cycling over the buildings so every building gets rooms.

use std::fmt;
use std::str::FromStr;

use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::geo;
use super::{AreaIndex, AreaProblem, Compound, RefTable};

/// Largest compound ordinal a plate id can encode (three digits, `000` is the street set).
const MAX_ORDINAL: usize = 999;
/// Largest number of plates in one compound or street set (five digits).
const MAX_PLATES_PER_SLOT: u32 = 100_000;

/// How the doorplate set is generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorplateConfig {
    /// Number of plates in service; the seed article gives 19.4万 for Minhang in 2019.
    pub total: u32,
    /// Seed for address details and positions; plate ids and counts do not depend on it.
    pub seed: u64,
    /// Share of plates on streets rather than in compounds, in thousandths.
    pub street_per_mille: u16,
}

impl Default for DoorplateConfig {
    fn default() -> Self {
        DoorplateConfig {
            total: 194_000,
            seed: 20_191_231,
            street_per_mille: 70,
        }
    }
}

/// A parsed doorplate id such as `MHQR-101-00100215`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlateId {
    town_suffix: u16,
    ordinal: u16,
    index: u32,
}

/// A string that is not a doorplate id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid doorplate id {0:?}: expected MHQR-<3 digits>-<8 digits>")]
pub struct PlateIdError(pub String);

impl PlateId {
    /// Builds an id from its parts; `None` when a part does not fit its digits.
    pub fn new(town_suffix: u16, ordinal: u16, index: u32) -> Option<PlateId> {
        (town_suffix <= 999 && usize::from(ordinal) <= MAX_ORDINAL && index < MAX_PLATES_PER_SLOT)
            .then_some(PlateId {
                town_suffix,
                ordinal,
                index,
            })
    }

    /// Last three digits of the town code.
    pub fn town_suffix(self) -> u16 {
        self.town_suffix
    }

    /// Compound ordinal within the town; 0 for street plates.
    pub fn compound_ordinal(self) -> u16 {
        self.ordinal
    }

    /// Position within the compound or street set.
    pub fn index(self) -> u32 {
        self.index
    }
}

impl fmt::Display for PlateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MHQR-{:03}-{:03}{:05}",
            self.town_suffix, self.ordinal, self.index
        )
    }
}

impl FromStr for PlateId {
    type Err = PlateIdError;

    fn from_str(s: &str) -> Result<PlateId, PlateIdError> {
        let err = || PlateIdError(s.to_owned());
        let rest = s.strip_prefix("MHQR-").ok_or_else(err)?;
        let (town, number) = rest.split_once('-').ok_or_else(err)?;
        let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(town, 3) || !digits(number, 8) {
            return Err(err());
        }
        let (ordinal, index) = number.split_at(3);
        let parse = |t: &str| t.parse::<u32>().map_err(|_| err());
        let (town, ordinal, index) = (parse(town)?, parse(ordinal)?, parse(index)?);
        PlateId::new(
            u16::try_from(town).map_err(|_| err())?,
            u16::try_from(ordinal).map_err(|_| err())?,
            index,
        )
        .ok_or_else(err)
    }
}

impl Serialize for PlateId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PlateId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PlateId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The physical kind of plate (after the Tianjin 2021 plate spec cited in DOMAIN §3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateType {
    /// 大门牌: a compound gate, or a shop/building door on a road.
    Gate,
    /// 弄牌: the lane plate at a compound's main entrance.
    Lane,
    /// 楼栋牌: a building.
    Building,
    /// 楼单元牌: a stairwell unit of a building.
    Unit,
    /// 楼户室牌: a flat.
    Room,
}

impl PlateType {
    /// The wire code, e.g. `room`.
    pub fn as_str(self) -> &'static str {
        match self {
            PlateType::Gate => "gate",
            PlateType::Lane => "lane",
            PlateType::Building => "building",
            PlateType::Unit => "unit",
            PlateType::Room => "room",
        }
    }
}

/// One QR doorplate and the standard address it stands for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Doorplate<'a> {
    /// The id encoded in the QR code.
    pub plate_id: PlateId,
    /// What the plate is fixed to.
    pub plate_type: PlateType,
    /// Standard address, 路 → 弄 → 号 → 室, e.g. `莘松路958弄12号301室`.
    pub address_zh: String,
    /// The same address in English, e.g. `Room 301, No. 12, Lane 958, Xinsong Road`.
    pub address_en: String,
    /// Town (街镇) code.
    pub town_code: &'a str,
    /// Police station responsible for the address.
    pub station_code: &'a str,
    /// Residents'/village committee of the address.
    pub committee_id: &'a str,
    /// Compound, `None` for street plates.
    pub compound_id: Option<&'a str>,
    /// Building number (号) within the compound.
    pub building_no: Option<u32>,
    /// Unit (单元) within the building.
    pub unit_no: Option<u32>,
    /// Room number (室), e.g. 301.
    pub room_no: Option<u32>,
    /// Latitude, WGS-84.
    pub lat: f64,
    /// Longitude, WGS-84.
    pub lon: f64,
}

impl Doorplate<'_> {
    /// The building's area code (`<compound_id>#<building_no>`), when the plate is in a building.
    pub fn building_code(&self) -> Option<String> {
        Some(format!("{}#{}", self.compound_id?, self.building_no?))
    }
}

/// Per-town plate allocation.
#[derive(Debug, Clone)]
struct TownPlates {
    suffix: u16,
    street: u32,
    /// Indices into `AreaIndex::compounds`, in ordinal order (ordinal = position + 1), with counts.
    compounds: Vec<(usize, u32)>,
    /// Distinct roads of the town's compounds, sorted, for street addresses.
    roads: Vec<(String, String)>,
}

/// A contiguous block of plates in global order (for `nth`, `iter`, `sample`).
#[derive(Debug, Clone, Copy)]
struct Slot {
    town: usize,
    ordinal: u16,
    start: u32,
    count: u32,
}

/// The precomputed allocation that makes plate lookup O(1): a few kilobytes for 194,000 plates.
#[derive(Debug, Clone)]
pub(crate) struct PlatePlan {
    config: DoorplateConfig,
    towns: Vec<TownPlates>,
    slots: Vec<Slot>,
}

/// Splits `total` over `weights` by largest remainder, ties to the lower index; every share is
/// at least `floor` when `total` allows.
fn apportion(total: u32, weights: &[u64], floor: u32) -> Vec<u32> {
    let n = u32::try_from(weights.len()).unwrap_or(u32::MAX);
    let base = if total >= floor.saturating_mul(n) {
        floor
    } else {
        0
    };
    let rest = u64::from(total - base * n);
    // All-zero weights (e.g. compounds without households) mean an equal split.
    let equal = weights.iter().all(|&w| w == 0);
    let weight = |w: u64| if equal { 1 } else { w };
    let sum: u64 = weights.iter().map(|&w| weight(w)).sum::<u64>().max(1);
    let mut shares: Vec<(u64, u64, usize)> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| (rest * weight(w) / sum, rest * weight(w) % sum, i))
        .collect();
    let assigned: u64 = shares.iter().map(|s| s.0).sum();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| shares[b].1.cmp(&shares[a].1).then(a.cmp(&b)));
    for &i in order
        .iter()
        .take(usize::try_from(rest - assigned).unwrap_or(0))
    {
        shares[i].0 += 1;
    }
    shares
        .iter()
        .map(|s| base + u32::try_from(s.0).unwrap_or(u32::MAX))
        .collect()
}

impl PlatePlan {
    /// Allocates plates to towns and compounds; `towns` are `(code, compound indices)`.
    pub(crate) fn new(
        config: DoorplateConfig,
        towns: &[(&str, Vec<usize>)],
        compounds: &[Compound],
    ) -> Result<PlatePlan, Vec<AreaProblem>> {
        let mut problems = Vec::new();
        let street_total = u32::try_from(
            u64::from(config.total) * u64::from(config.street_per_mille.min(1000)) / 1000,
        )
        .unwrap_or(0);
        let town_weights: Vec<u64> = towns
            .iter()
            .map(|(_, c)| u64::try_from(c.len()).unwrap_or(0) + 1)
            .collect();
        let street = apportion(street_total, &town_weights, 1);
        let all: Vec<usize> = towns.iter().flat_map(|(_, c)| c.iter().copied()).collect();
        let households: Vec<u64> = all
            .iter()
            .map(|&c| u64::from(compounds[c].households))
            .collect();
        let mut per_compound = apportion(config.total - street_total, &households, 1).into_iter();

        let mut plan = PlatePlan {
            config,
            towns: Vec::new(),
            slots: Vec::new(),
        };
        let mut start = 0u32;
        for (t, ((code, members), street)) in towns.iter().zip(street).enumerate() {
            let suffix = code
                .get(6..)
                .and_then(|s| s.parse::<u16>().ok())
                .unwrap_or(0);
            if members.len() > MAX_ORDINAL {
                problems.push(AreaProblem::Inconsistent {
                    table: RefTable::Compounds,
                    id: (*code).to_owned(),
                    reason: format!("{} compounds, plate ids allow {MAX_ORDINAL}", members.len()),
                });
            }
            let mut roads: Vec<(String, String)> = members
                .iter()
                .map(|&c| (compounds[c].road_zh.clone(), compounds[c].road_en.clone()))
                .collect();
            roads.sort();
            roads.dedup();
            let counts: Vec<(usize, u32)> = members
                .iter()
                .map(|&c| (c, per_compound.next().unwrap_or(0)))
                .collect();
            let sets = std::iter::once(street).chain(counts.iter().map(|&(_, n)| n));
            for (ordinal, count) in sets.enumerate() {
                if count >= MAX_PLATES_PER_SLOT {
                    problems.push(AreaProblem::Inconsistent {
                        table: RefTable::Compounds,
                        id: (*code).to_owned(),
                        reason: format!("{count} plates in one set, plate ids allow 99999"),
                    });
                }
                let ordinal = u16::try_from(ordinal).unwrap_or(u16::MAX);
                plan.slots.push(Slot {
                    town: t,
                    ordinal,
                    start,
                    count,
                });
                start += count;
            }
            plan.towns.push(TownPlates {
                suffix,
                street,
                compounds: counts,
                roads,
            });
        }
        if problems.is_empty() {
            Ok(plan)
        } else {
            Err(problems)
        }
    }

    pub(crate) fn total(&self) -> u32 {
        self.config.total
    }

    /// Number of plates allocated to the compound at `compound` (an index into compounds).
    pub(crate) fn count_for_compound(&self, compound: usize) -> Option<u32> {
        self.towns
            .iter()
            .flat_map(|t| &t.compounds)
            .find_map(|&(c, n)| (c == compound).then_some(n))
    }
}

/// splitmix64: a fast, well-mixed, platform-independent hash for deriving plate details.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash(seed: u64, parts: &[u64]) -> u64 {
    parts.iter().fold(mix(seed), |acc, &p| mix(acc ^ p))
}

/// A hash mapped to `[0, 1)`.
fn unit(h: u64) -> f64 {
    // 53 high bits fill an f64 mantissa exactly.
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Salts so the different draws for one plate are independent.
const SALT_LAYOUT: u64 = 1;
const SALT_BUILDING_ANGLE: u64 = 2;
const SALT_BUILDING_RADIUS: u64 = 3;
const SALT_GATE: u64 = 4;
const SALT_STREET: u64 = 5;

impl AreaIndex {
    /// Regenerates one plate; `None` when the id is outside the allocation.
    pub(crate) fn plate_at(&self, town: usize, ordinal: u16, index: u32) -> Option<Doorplate<'_>> {
        let plan = &self.plates;
        let tp = plan.towns.get(town)?;
        let id = PlateId::new(tp.suffix, ordinal, index)?;
        if ordinal == 0 {
            return (index < tp.street).then(|| self.street_plate(town, tp, id));
        }
        let &(c, count) = tp.compounds.get(usize::from(ordinal) - 1)?;
        (index < count).then(|| self.compound_plate(c, id))
    }

    fn street_plate(&self, town: usize, tp: &TownPlates, id: PlateId) -> Doorplate<'_> {
        let seed = self.plates.config.seed;
        let t = &self.towns[town];
        let key = [u64::from(tp.suffix), 0, u64::from(id.index)];
        let fallback = (t.name_zh.clone(), t.name_en.clone());
        let n_roads = u32::try_from(tp.roads.len().max(1)).unwrap_or(1);
        let r = id.index % n_roads;
        let (road_zh, road_en) = tp
            .roads
            .get(usize::try_from(r).unwrap_or(0))
            .unwrap_or(&fallback);
        // Odd house numbers, unique per road: an offset per road, then one step per plate.
        let base = hash(seed, &[u64::from(tp.suffix), u64::from(r), SALT_STREET]) % 200;
        let number = u32::try_from(base).unwrap_or(0) * 2 + (id.index / n_roads) * 2 + 1;
        let shape = &self.town_shapes[town];
        let bbox = *shape.bbox();
        let (lat, lon) = (0..1024u64)
            .map(|attempt| {
                let h = hash(seed, &[key[0], key[1], key[2], SALT_STREET, attempt]);
                let lat = bbox.min_lat + unit(h) * (bbox.max_lat - bbox.min_lat);
                let lon = bbox.min_lon + unit(mix(h)) * (bbox.max_lon - bbox.min_lon);
                (lat, lon)
            })
            .find(|&(lat, lon)| shape.contains(lat, lon))
            // Unreachable for any real polygon (1024 misses), but a committee is always inside.
            .unwrap_or_else(|| self.town_anchor(town));
        let (station, committee) = self.beat_at(town, lat, lon);
        Doorplate {
            plate_id: id,
            plate_type: PlateType::Gate,
            address_zh: format!("{road_zh}{number}号"),
            address_en: format!("No. {number}, {road_en}"),
            town_code: &t.code,
            station_code: &self.stations[station].code,
            committee_id: &self.committees[committee].id,
            compound_id: None,
            building_no: None,
            unit_no: None,
            room_no: None,
            lat,
            lon,
        }
    }

    fn compound_plate(&self, c: usize, id: PlateId) -> Doorplate<'_> {
        let seed = self.plates.config.seed;
        let cp = &self.compounds[c];
        let key = [u64::from(id.town_suffix), u64::from(id.ordinal)];
        let layout = hash(seed, &[key[0], key[1], SALT_LAYOUT]);
        let buildings = cp.buildings.max(1);
        let gates = 1 + u32::from(buildings >= 40) + u32::from(buildings >= 150);
        // About one compound in five numbers its stairwells (单元): only where buildings are big.
        let units = if layout.is_multiple_of(5) && cp.households / buildings >= 60 {
            2
        } else {
            0
        };
        let rooms_per_floor = 2 + u32::try_from((layout >> 8) % 3).unwrap_or(0);
        let lane = format!("{}{}弄", cp.road_zh, cp.lane);
        let lane_en = format!("Lane {}, {}", cp.lane, cp.road_en);

        let building_point = |b: u32| {
            let angle = unit(hash(
                seed,
                &[key[0], key[1], u64::from(b), SALT_BUILDING_ANGLE],
            ));
            let dist = unit(hash(
                seed,
                &[key[0], key[1], u64::from(b), SALT_BUILDING_RADIUS],
            ));
            // sqrt spreads buildings evenly over the disc; 0.85 keeps them off its rim.
            let r = 0.85 * cp.radius_m * dist.sqrt();
            let a = angle * std::f64::consts::TAU;
            geo::offset(cp.lat, cp.lon, r * a.cos(), r * a.sin())
        };

        let i = id.index;
        let (plate_type, address_zh, address_en, building, unit_no, room, (lat, lon)) = if i == 0 {
            (
                PlateType::Lane,
                lane,
                lane_en,
                None,
                None,
                None,
                (cp.lat, cp.lon),
            )
        } else if i <= gates {
            let a = unit(hash(seed, &[key[0], key[1], u64::from(i), SALT_GATE]))
                * std::f64::consts::TAU;
            let r = 0.85 * cp.radius_m;
            (
                PlateType::Gate,
                format!("{lane}{i}号门"),
                format!("Gate {i}, {lane_en}"),
                None,
                None,
                None,
                geo::offset(cp.lat, cp.lon, r * a.cos(), r * a.sin()),
            )
        } else if i <= gates + buildings {
            let b = i - gates;
            (
                PlateType::Building,
                format!("{lane}{b}号"),
                format!("No. {b}, {lane_en}"),
                Some(b),
                None,
                None,
                building_point(b),
            )
        } else if i <= gates + buildings * (1 + units) {
            let k = i - gates - buildings - 1;
            let (b, u) = (k / units + 1, k % units + 1);
            (
                PlateType::Unit,
                format!("{lane}{b}号{u}单元"),
                format!("Unit {u}, No. {b}, {lane_en}"),
                Some(b),
                Some(u),
                None,
                building_point(b),
            )
        } else {
            let k = i - gates - buildings * (1 + units) - 1;
            let (b, j) = (k % buildings + 1, k / buildings);
            let room = (j / rooms_per_floor + 1) * 100 + j % rooms_per_floor + 1;
            (
                PlateType::Room,
                format!("{lane}{b}号{room}室"),
                format!("Room {room}, No. {b}, {lane_en}"),
                Some(b),
                None,
                Some(room),
                building_point(b),
            )
        };
        Doorplate {
            plate_id: id,
            plate_type,
            address_zh,
            address_en,
            town_code: &cp.town_code,
            station_code: &cp.station_code,
            committee_id: &cp.committee_id,
            compound_id: Some(&cp.id),
            building_no: building,
            unit_no,
            room_no: room,
            lat,
            lon,
        }
    }
}

/// All doorplates of an [`AreaIndex`]: lookup, iteration and sampling, generated on demand.
#[derive(Debug, Clone, Copy)]
pub struct Doorplates<'a> {
    pub(crate) index: &'a AreaIndex,
}

impl<'a> Doorplates<'a> {
    /// Number of plates in service.
    pub fn len(&self) -> usize {
        usize::try_from(self.index.plates.total()).unwrap_or(usize::MAX)
    }

    /// Whether there are no plates (only with a zero `total`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The generation parameters.
    pub fn config(&self) -> DoorplateConfig {
        self.index.plates.config
    }

    /// Looks a plate up by its id string; `None` for malformed or unallocated ids.
    pub fn get(&self, plate_id: &str) -> Option<Doorplate<'a>> {
        self.get_id(plate_id.parse().ok()?)
    }

    /// Looks a plate up by its parsed id.
    pub fn get_id(&self, id: PlateId) -> Option<Doorplate<'a>> {
        let town = self
            .index
            .plates
            .towns
            .iter()
            .position(|t| t.suffix == id.town_suffix)?;
        self.index.plate_at(town, id.ordinal, id.index)
    }

    /// The plate at position `n` of [`Doorplates::iter`].
    pub fn nth(&self, n: usize) -> Option<Doorplate<'a>> {
        let n = u32::try_from(n).ok()?;
        let slots = &self.index.plates.slots;
        let k = slots.partition_point(|s| s.start + s.count <= n);
        let s = slots.get(k)?;
        self.index.plate_at(s.town, s.ordinal, n - s.start)
    }

    /// Every plate, town by town, street plates first then compounds in ordinal order.
    pub fn iter(&self) -> impl Iterator<Item = Doorplate<'a>> + 'a {
        let index = self.index;
        index.plates.slots.iter().flat_map(move |s| {
            (0..s.count).filter_map(move |i| index.plate_at(s.town, s.ordinal, i))
        })
    }

    /// `n` distinct plates chosen uniformly with a seeded ChaCha8 generator (all of them when
    /// `n` exceeds the total), in the order drawn.
    pub fn sample(&self, n: usize, seed: u64) -> Vec<Doorplate<'a>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let len = self.len();
        rand::seq::index::sample(&mut rng, len, n.min(len))
            .into_iter()
            .filter_map(|i| self.nth(i))
            .collect()
    }

    /// Number of plates allocated to a compound.
    pub fn count_in_compound(&self, compound_id: &str) -> Option<u32> {
        let c = *self.index.compound_by_id.get(compound_id)?;
        self.index.plates.count_for_compound(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plate_id_round_trips_and_rejects_garbage() {
        let id: PlateId = "MHQR-101-00100215".parse().unwrap();
        assert_eq!(
            (id.town_suffix(), id.compound_ordinal(), id.index()),
            (101, 1, 215)
        );
        assert_eq!(id.to_string(), "MHQR-101-00100215");
        for bad in [
            "",
            "MHQR-101-0010021",
            "MHQR-1O1-00100215",
            "QR-101-00100215",
            "MHQR-101-001002150",
        ] {
            assert!(bad.parse::<PlateId>().is_err(), "{bad}");
        }
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"MHQR-101-00100215\"");
    }

    #[test]
    fn apportion_is_exact_and_proportional() {
        let s = apportion(100, &[1, 1, 2], 1);
        assert_eq!(s.iter().sum::<u32>(), 100);
        assert_eq!(s, vec![25, 25, 50]);
        assert_eq!(apportion(7, &[0, 0, 0], 1).iter().sum::<u32>(), 7);
    }
}
