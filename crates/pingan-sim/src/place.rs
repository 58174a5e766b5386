//! Where incidents happen: compounds weighted by households (with burglary and fraud hot spots),
//! roads and junctions built from the real road names of each town, transport hubs and malls,
//! 七宝老街, and the 虹桥 nightlife strip; plus the doorplates a QR report can come from.
//!
//! Every point is checked against the area index so the town of the label is the town the point
//! lies in; a point that would fall into a neighbouring town is drawn again.

use std::collections::BTreeMap;

use pingan_domain::area::{AreaIndex, Compound, Doorplate, PlateId, Poi, PoiKind, PoiShape};
use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand_chacha::ChaCha8Rng;

use crate::mix::Where;

/// Burglary hot spots by compound name and their weight multiplier: 上海康城 topped the "most
/// burglar-friendly compound" ranking in every early release; 金色西郊城 was on it twice.
const BURGLARY_HOT: &[(&str, f64)] = &[("上海康城", 12.0), ("金色西郊城", 8.0)];
/// How many further compounds (chosen by the seed-independent order of ids) get a burglary boost.
const BURGLARY_EXTRA_HOT: usize = 8;
/// "十大耳根最软区域": compounds with the most fraud cases.
const FRAUD_HOT: &[(&str, f64)] = &[("爱博二村", 10.0)];
/// Share of fraud victims who are students near the 吴泾 vocational college (part-time-job scams).
const FRAUD_COLLEGE_SHARE: f64 = 0.06;

/// A place chosen for one incident.
#[derive(Debug, Clone)]
pub struct Spot {
    /// Town code (the label's town).
    pub town_code: String,
    /// Town name, e.g. `七宝镇`.
    pub town_name: String,
    /// Compound, when the incident is in one.
    pub compound: Option<&'static Compound>,
    /// POI, when the incident is at one.
    pub poi: Option<&'static Poi>,
    /// Latitude of the incident.
    pub lat: f64,
    /// Longitude of the incident.
    pub lon: f64,
    /// A road of the town, e.g. `莘松路`.
    pub road: String,
    /// A crossing road of the same town.
    pub road2: String,
    /// A building number inside the compound (号).
    pub building: u32,
    /// A room number (室).
    pub room: u32,
    /// A street number (号) on `road`, for places that are not in a compound or at a POI.
    pub number: u32,
}

impl Spot {
    /// How a caller names the place in the text, e.g. `上海康城`, `七宝老街`, `莘松路沪闵路路口`.
    pub fn name(&self) -> String {
        if let Some(c) = self.compound {
            c.name_zh.clone()
        } else if let Some(p) = self.poi {
            p.name_zh
                .split('（')
                .next()
                .unwrap_or(&p.name_zh)
                .to_owned()
        } else {
            format!("{}{}号", self.road, self.number)
        }
    }

    /// The address an operator types, e.g. `莘松路958弄12号301室` or `莘松路近沪闵路`.
    pub fn address(&self, detailed: bool) -> String {
        match (self.compound, self.poi) {
            (Some(c), _) if detailed => {
                format!("{}{}号{}室", c.address_zh(), self.building, self.room)
            }
            (Some(c), _) => format!("{}{}", c.address_zh(), c.name_zh),
            (None, Some(p)) => format!(
                "{}{}",
                self.town_name,
                p.name_zh.split('（').next().unwrap_or(&p.name_zh)
            ),
            (None, None) => format!("{}近{}", self.road, self.road2),
        }
    }
}

/// The place model.
#[derive(Debug)]
pub struct Places {
    areas: &'static AreaIndex,
    compounds: Vec<&'static Compound>,
    by_households: WeightedIndex<f64>,
    burglary: WeightedIndex<f64>,
    fraud: WeightedIndex<f64>,
    town_weights: WeightedIndex<f64>,
    town_codes: Vec<String>,
    roads: BTreeMap<String, Vec<String>>,
    compounds_of_town: BTreeMap<String, Vec<usize>>,
    transit: Vec<&'static Poi>,
    qibao: Option<&'static Poi>,
    nightlife: Vec<&'static Poi>,
    college: Option<&'static Poi>,
    /// (town suffix, ordinal, plate count) per compound index.
    plates: Vec<Option<(u16, u16, u32)>>,
    /// Street plates per town suffix.
    street_plates: BTreeMap<u16, u32>,
}

/// Why the place model could not be built from the reference data.
#[derive(Debug, thiserror::Error)]
pub enum PlacesError {
    /// A weight table was empty or invalid.
    #[error("reference data has no usable {0}")]
    Empty(&'static str),
}

fn town_suffix(code: &str) -> Option<u16> {
    code.get(code.len().saturating_sub(3)..)?.parse().ok()
}

impl Places {
    /// The model over `areas`.
    pub fn new(areas: &'static AreaIndex) -> Result<Places, PlacesError> {
        let compounds: Vec<&Compound> = areas.compounds().iter().collect();
        let households: Vec<f64> = compounds
            .iter()
            .map(|c| f64::from(c.households.max(50)))
            .collect();
        let by_households =
            WeightedIndex::new(&households).map_err(|_| PlacesError::Empty("compounds"))?;
        // The extra burglary hot spots: the largest synthetic compounds, a stable choice.
        let mut by_size: Vec<usize> = (0..compounds.len()).collect();
        by_size.sort_by(|&a, &b| {
            compounds[b]
                .households
                .cmp(&compounds[a].households)
                .then(compounds[a].id.cmp(&compounds[b].id))
        });
        let extra: Vec<usize> = by_size
            .into_iter()
            .filter(|&i| compounds[i].synthetic)
            .take(BURGLARY_EXTRA_HOT)
            .collect();
        let boost = |table: &[(&str, f64)], extra: &[usize]| -> Vec<f64> {
            compounds
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let named = table
                        .iter()
                        .find(|(n, _)| *n == c.name_zh)
                        .map_or(1.0, |(_, m)| *m);
                    households[i] * named * if extra.contains(&i) { 4.0 } else { 1.0 }
                })
                .collect()
        };
        let burglary = WeightedIndex::new(boost(BURGLARY_HOT, &extra))
            .map_err(|_| PlacesError::Empty("compounds"))?;
        let fraud = WeightedIndex::new(boost(FRAUD_HOT, &[]))
            .map_err(|_| PlacesError::Empty("compounds"))?;

        let mut town_households: BTreeMap<String, f64> = BTreeMap::new();
        let mut roads: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut compounds_of_town: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, c) in compounds.iter().enumerate() {
            *town_households.entry(c.town_code.clone()).or_default() += households[i];
            let r = roads.entry(c.town_code.clone()).or_default();
            if !r.contains(&c.road_zh) {
                r.push(c.road_zh.clone());
            }
            compounds_of_town
                .entry(c.town_code.clone())
                .or_default()
                .push(i);
        }
        let town_codes: Vec<String> = town_households.keys().cloned().collect();
        let town_weights =
            WeightedIndex::new(town_households.values().copied().collect::<Vec<_>>())
                .map_err(|_| PlacesError::Empty("towns"))?;

        // Plate ordinals: compounds sorted by id within their town, from 001.
        let mut plates = vec![None; compounds.len()];
        for idx in compounds_of_town.values() {
            let mut sorted = idx.clone();
            sorted.sort_by(|&a, &b| compounds[a].id.cmp(&compounds[b].id));
            for (ord, &i) in sorted.iter().enumerate() {
                let c = compounds[i];
                let (Some(suffix), Ok(ordinal)) =
                    (town_suffix(&c.town_code), u16::try_from(ord + 1))
                else {
                    continue;
                };
                let count = areas.doorplates().count_in_compound(&c.id).unwrap_or(0);
                if count > 0 {
                    plates[i] = Some((suffix, ordinal, count));
                }
            }
        }
        let mut street_plates = BTreeMap::new();
        for t in areas.towns() {
            let Some(suffix) = town_suffix(&t.code) else {
                continue;
            };
            let exists = |i: u32| {
                PlateId::new(suffix, 0, i)
                    .and_then(|id| areas.doorplates().get_id(id))
                    .is_some()
            };
            // Street plates are numbered densely from 0: binary-search the count.
            let (mut lo, mut hi) = (0u32, 100_000u32);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if exists(mid) { lo = mid + 1 } else { hi = mid }
            }
            if lo > 0 {
                street_plates.insert(suffix, lo);
            }
        }

        let pois = areas.pois();
        let transit = pois
            .iter()
            .filter(|p| {
                matches!(
                    p.kind,
                    PoiKind::TransportHub
                        | PoiKind::Commercial
                        | PoiKind::Market
                        | PoiKind::Airport
                )
            })
            .collect();
        let nightlife = pois
            .iter()
            .filter(|p| {
                p.town_code == "310112107"
                    && matches!(p.kind, PoiKind::Nightlife | PoiKind::Commercial)
            })
            .collect();
        Ok(Places {
            areas,
            compounds,
            by_households,
            burglary,
            fraud,
            town_weights,
            town_codes,
            roads,
            compounds_of_town,
            transit,
            qibao: pois.iter().find(|p| p.id == "POI-QIBAO-OLDSTREET"),
            nightlife,
            college: pois.iter().find(|p| p.id == "POI-WUJING-COLLEGE"),
            plates,
            street_plates,
        })
    }

    /// The area index the model draws from.
    pub fn areas(&self) -> &'static AreaIndex {
        self.areas
    }

    /// Every compound.
    pub fn compounds(&self) -> &[&'static Compound] {
        &self.compounds
    }

    /// A place for an incident of kind `place`.
    pub(crate) fn pick(&self, place: Where, rng: &mut ChaCha8Rng) -> Spot {
        match place {
            Where::Home => self.in_compound(self.by_households.sample(rng), rng),
            Where::HomeBurglary => self.in_compound(self.burglary.sample(rng), rng),
            Where::HomeFraud => match self.college {
                Some(p) if rng.random_bool(FRAUD_COLLEGE_SHARE) => self.at_poi(p, rng),
                _ => self.in_compound(self.fraud.sample(rng), rng),
            },
            Where::Street | Where::Venue => self.on_street(None, rng),
            Where::Transit => match self.transit.len() {
                0 => self.on_street(None, rng),
                n if rng.random_bool(0.6) => self.at_poi(self.transit[rng.random_range(0..n)], rng),
                _ => self.on_street(None, rng),
            },
            Where::Tourist => match self.qibao {
                Some(p) => self.at_poi(p, rng),
                None => self.on_street(None, rng),
            },
            Where::Nightlife => match self.nightlife.len() {
                0 => self.on_street(Some("310112107"), rng),
                n if rng.random_bool(0.8) => {
                    self.at_poi(self.nightlife[rng.random_range(0..n)], rng)
                }
                _ => self.on_street(Some("310112107"), rng),
            },
            Where::Anywhere => {
                if rng.random_bool(0.55) {
                    self.in_compound(self.by_households.sample(rng), rng)
                } else {
                    self.on_street(None, rng)
                }
            }
        }
    }

    /// A place inside a given area: a compound id, a POI id or a town code (spike injection).
    pub fn pick_in(&self, area: &str, rng: &mut ChaCha8Rng) -> Option<Spot> {
        if let Some(i) = self.compounds.iter().position(|c| c.id == area) {
            return Some(self.in_compound(i, rng));
        }
        if let Some(p) = self.areas.poi(area) {
            return Some(self.at_poi(p, rng));
        }
        if self.areas.town(area).is_some() {
            let idx = self.compounds_of_town.get(area)?;
            return Some(if rng.random_bool(0.6) {
                self.in_compound(idx[rng.random_range(0..idx.len())], rng)
            } else {
                self.on_street(Some(area), rng)
            });
        }
        None
    }

    /// A doorplate near `spot`: a plate of its compound, else a street plate of its town.
    pub(crate) fn plate_for(
        &self,
        spot: &Spot,
        rng: &mut ChaCha8Rng,
    ) -> Option<Doorplate<'static>> {
        let plates = self.areas.doorplates();
        if let Some(c) = spot.compound
            && let Some(i) = self.compounds.iter().position(|x| x.id == c.id)
            && let Some((suffix, ordinal, count)) = self.plates[i]
        {
            let id = PlateId::new(suffix, ordinal, rng.random_range(0..count))?;
            return plates.get_id(id);
        }
        let suffix = town_suffix(&spot.town_code)?;
        let count = *self.street_plates.get(&suffix)?;
        plates.get_id(PlateId::new(suffix, 0, rng.random_range(0..count))?)
    }

    fn roads_of(&self, town: &str, rng: &mut ChaCha8Rng) -> (String, String) {
        let Some(list) = self.roads.get(town).filter(|l| !l.is_empty()) else {
            return ("沪闵路".into(), "莘松路".into());
        };
        let a = rng.random_range(0..list.len());
        let b = if list.len() > 1 {
            (a + 1 + rng.random_range(0..list.len() - 1)) % list.len()
        } else {
            a
        };
        let second = if a == b {
            "沪闵路".to_owned()
        } else {
            list[b].clone()
        };
        (list[a].clone(), second)
    }

    fn spot(
        &self,
        town: &str,
        compound: Option<&'static Compound>,
        poi: Option<&'static Poi>,
        lat: f64,
        lon: f64,
        rng: &mut ChaCha8Rng,
    ) -> Spot {
        let (road, road2) = match compound {
            Some(c) => (c.road_zh.clone(), self.roads_of(town, rng).1),
            None => self.roads_of(town, rng),
        };
        let buildings = compound.map_or(20, |c| c.buildings.max(1));
        let floor = rng.random_range(1..=18);
        Spot {
            town_code: town.to_owned(),
            town_name: self
                .areas
                .town(town)
                .map_or_else(|| "闵行区".to_owned(), |t| t.name_zh.clone()),
            compound,
            poi,
            lat,
            lon,
            road,
            road2,
            building: rng.random_range(1..=buildings),
            room: floor * 100 + rng.random_range(1..=4),
            number: rng.random_range(1..=400) * 2 + 1,
        }
    }

    fn in_compound(&self, i: usize, rng: &mut ChaCha8Rng) -> Spot {
        let c = self.compounds[i];
        let (lat, lon) = self.jitter_in(c.lat, c.lon, c.radius_m * 0.7, &c.town_code, rng);
        self.spot(&c.town_code, Some(c), None, lat, lon, rng)
    }

    fn at_poi(&self, p: &'static Poi, rng: &mut ChaCha8Rng) -> Spot {
        let radius = match &p.shape {
            PoiShape::Circle { radius_m } => radius_m * 0.7,
            PoiShape::Polygon { .. } => 120.0,
        };
        let mut point = (p.lat, p.lon);
        for _ in 0..8 {
            let cand = offset(p.lat, p.lon, radius, rng);
            if self
                .areas
                .poi_at(cand.0, cand.1)
                .is_some_and(|x| x.id == p.id)
            {
                point = cand;
                break;
            }
        }
        self.spot(&p.town_code, None, Some(p), point.0, point.1, rng)
    }

    /// A point on a road of `town` (or of a town drawn by households).
    fn on_street(&self, town: Option<&str>, rng: &mut ChaCha8Rng) -> Spot {
        let town = match town {
            Some(t) => t.to_owned(),
            None => self.town_codes[self.town_weights.sample(rng)].clone(),
        };
        let anchor = self
            .compounds_of_town
            .get(&town)
            .filter(|v| !v.is_empty())
            .map(|v| self.compounds[v[rng.random_range(0..v.len())]])
            .map_or((31.11, 121.38), |c| (c.lat, c.lon));
        let (lat, lon) = self.jitter_in(anchor.0, anchor.1, 700.0, &town, rng);
        self.spot(&town, None, None, lat, lon, rng)
    }

    /// A point within `radius_m` of the centre that lies in `town`; the centre after 8 misses.
    fn jitter_in(
        &self,
        lat: f64,
        lon: f64,
        radius_m: f64,
        town: &str,
        rng: &mut ChaCha8Rng,
    ) -> (f64, f64) {
        for _ in 0..8 {
            let p = offset(lat, lon, radius_m, rng);
            if self.areas.town_at(p.0, p.1).is_some_and(|t| t.code == town) {
                return p;
            }
        }
        (lat, lon)
    }
}

/// A uniform point in the disc of `radius_m` around a centre (equirectangular, fine at 1 km).
fn offset(lat: f64, lon: f64, radius_m: f64, rng: &mut ChaCha8Rng) -> (f64, f64) {
    let r = radius_m * rng.random::<f64>().sqrt();
    let a = rng.random::<f64>() * std::f64::consts::TAU;
    let dlat = r * a.cos() / 111_320.0;
    let dlon = r * a.sin() / (111_320.0 * lat.to_radians().cos());
    (round6(lat + dlat), round6(lon + dlon))
}

/// Six decimals (~0.1 m): what a CAD sends, and stable through JSON.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
