//! Location resolution: doorplate → compound → committee → station → town → district; coordinates
//! → town (and compound when inside one) + H3 cell; free-text address and description → compound or
//! point of interest by name. Hints from the CAD are checked against the reference data.
//!
//! Nothing here ever refuses an event: an unknown location stays `null` and is counted, because an
//! emergency must not be dropped for lacking an area.

use aho_corasick::{AhoCorasick, MatchKind};
use pingan_domain::area::{AreaIndex, DISTRICT_CODE, PoiKind};
use pingan_domain::events::{EventArea, GeoPoint};

/// How precise the resolved location is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// The doorplate's registered address.
    Plate,
    /// Coordinates from the CAD or the device.
    Gps,
    /// A compound or POI named in the address or text (its centre point).
    Named,
    /// Only a town or station hint.
    Hint,
    /// Nothing known.
    Unknown,
}

/// The resolved location of one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// Area codes.
    pub area: EventArea,
    /// Best known point.
    pub point: Option<GeoPoint>,
    /// H3 resolution-9 cell of the point.
    pub h3: Option<String>,
    /// Precision.
    pub precision: Precision,
    /// The location is a scenic area (routing, `tourist_area` tag).
    pub scenic: bool,
    /// Hints that did not match the reference data (metric label values).
    pub rejected_hints: Vec<&'static str>,
}

/// Name matchers over the reference data, built once.
pub struct Locator {
    areas: &'static AreaIndex,
    /// Compound names and `road + lane弄` strings → compound index.
    names: AhoCorasick,
    targets: Vec<Target>,
}

impl std::fmt::Debug for Locator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locator")
            .field("names", &self.targets.len())
            .finish()
    }
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Compound(usize),
    Poi(usize),
}

/// Why the name matcher could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the place-name matcher: {0}")]
pub struct LocatorError(String);

impl Locator {
    /// A locator over `areas`.
    pub fn new(areas: &'static AreaIndex) -> Result<Locator, LocatorError> {
        let mut patterns = Vec::new();
        let mut targets = Vec::new();
        for (i, c) in areas.compounds().iter().enumerate() {
            // Very short names (two characters) would match inside unrelated words.
            if c.name_zh.chars().count() >= 3 {
                patterns.push(c.name_zh.clone());
                targets.push(Target::Compound(i));
            }
            patterns.push(format!("{}{}弄", c.road_zh, c.lane));
            targets.push(Target::Compound(i));
        }
        for (i, p) in areas.pois().iter().enumerate() {
            if p.name_zh.chars().count() >= 3 {
                patterns.push(p.name_zh.clone());
                targets.push(Target::Poi(i));
            }
        }
        let names = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .map_err(|e| LocatorError(e.to_string()))?;
        Ok(Locator {
            areas,
            names,
            targets,
        })
    }

    fn find_named(&self, text: &str) -> (Option<usize>, Option<usize>) {
        let mut compound = None;
        let mut poi = None;
        for m in self.names.find_iter(text) {
            match self.targets[m.pattern().as_usize()] {
                Target::Compound(i) if compound.is_none() => compound = Some(i),
                Target::Poi(i) if poi.is_none() => poi = Some(i),
                _ => {}
            }
        }
        (compound, poi)
    }

    fn fill_from_point(&self, lat: f64, lon: f64, loc: &mut Located) -> bool {
        let Some(p) = self.areas.locate_point(lat, lon) else {
            return false;
        };
        loc.area.district_code = Some(DISTRICT_CODE.into());
        loc.area.town_code = Some(p.town.code.clone());
        loc.area.station_code = Some(p.station.code.clone());
        loc.area.committee_id = Some(p.committee.id.clone());
        if let Some(c) = p.compound {
            loc.area.compound_id = Some(c.id.clone());
        }
        loc.point = Some(GeoPoint { lat, lon });
        loc.h3 = AreaIndex::h3_res9(lat, lon);
        if let Some(poi) = self.areas.poi_at(lat, lon) {
            loc.area.poi_id = Some(poi.id.clone());
            loc.scenic = poi.kind == PoiKind::ScenicArea;
        }
        true
    }

    /// Resolves a QR report: the plate's registered address is the location of record.
    pub fn locate_plate(&self, plate_id: &str) -> Located {
        let mut loc = empty();
        if let Some(p) = self.areas.doorplate(plate_id) {
            self.fill_from_point(p.lat, p.lon, &mut loc);
            // The registry is authoritative over geometry for the hierarchy.
            loc.area.town_code = Some(p.town_code.to_owned());
            loc.area.station_code = Some(p.station_code.to_owned());
            loc.area.committee_id = Some(p.committee_id.to_owned());
            loc.area.compound_id = p.compound_id.map(str::to_owned);
            loc.area.plate_id = Some(plate_id.to_owned());
            loc.precision = Precision::Plate;
        } else {
            loc.rejected_hints.push("plate_id");
        }
        loc
    }

    /// Resolves a 110 call from its coordinates, hints, address and description.
    pub fn locate_call(
        &self,
        location: Option<GeoPoint>,
        town_hint: Option<&str>,
        station_hint: Option<&str>,
        address: Option<&str>,
        description: &str,
    ) -> Located {
        let mut loc = empty();
        if let Some(p) = location {
            if self.fill_from_point(p.lat, p.lon, &mut loc) {
                loc.precision = Precision::Gps;
            } else {
                loc.rejected_hints.push("location");
            }
        }
        let town_hint = town_hint.filter(|t| {
            let ok = self.areas.is_valid_town_code(t);
            if !ok {
                loc.rejected_hints.push("town_code");
            }
            ok
        });
        let station_hint = station_hint.filter(|s| {
            let ok = self.areas.is_valid_station_code(s);
            if !ok {
                loc.rejected_hints.push("station_code");
            }
            ok
        });
        if loc.precision == Precision::Unknown {
            // No usable coordinates: a compound or POI named in the address (then the text) gives
            // a point; town/station hints fill what remains.
            let (mut compound, mut poi) =
                address.map(|a| self.find_named(a)).unwrap_or((None, None));
            if compound.is_none() && poi.is_none() {
                (compound, poi) = self.find_named(description);
            }
            let point = compound
                .map(|i| &self.areas.compounds()[i])
                .map(|c| (c.lat, c.lon))
                .or_else(|| poi.map(|i| &self.areas.pois()[i]).map(|p| (p.lat, p.lon)));
            if let Some((lat, lon)) = point
                && self.fill_from_point(lat, lon, &mut loc)
            {
                loc.precision = Precision::Named;
                if let Some(i) = compound {
                    let c = &self.areas.compounds()[i];
                    loc.area.compound_id = Some(c.id.clone());
                    loc.area.town_code = Some(c.town_code.clone());
                    loc.area.station_code = Some(c.station_code.clone());
                    loc.area.committee_id = Some(c.committee_id.clone());
                }
            }
        }
        if loc.precision == Precision::Unknown {
            if let Some(t) = town_hint {
                loc.area.district_code = Some(DISTRICT_CODE.into());
                loc.area.town_code = Some(t.to_owned());
                loc.precision = Precision::Hint;
            }
            if let Some(s) = station_hint {
                loc.area.district_code = Some(DISTRICT_CODE.into());
                loc.area.station_code = Some(s.to_owned());
                if loc.area.town_code.is_none() {
                    loc.area.town_code = self
                        .areas
                        .station(s)
                        .and_then(|st| st.towns.first().cloned());
                }
                loc.precision = Precision::Hint;
            }
            if let (Some(t), None) = (&loc.area.town_code, &loc.area.station_code) {
                // A town served by a single station determines the station.
                let mut serving = self.areas.stations_serving(t);
                if let (Some(only), None) = (serving.next(), serving.next()) {
                    loc.area.station_code = Some(only.code.clone());
                }
            }
        }
        loc
    }
}

fn empty() -> Located {
    Located {
        area: EventArea::default(),
        point: None,
        h3: None,
        precision: Precision::Unknown,
        scenic: false,
        rejected_hints: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locator() -> Locator {
        Locator::new(AreaIndex::builtin()).unwrap()
    }

    #[test]
    fn a_doorplate_resolves_the_whole_hierarchy() {
        let areas = AreaIndex::builtin();
        let plate = areas.doorplates().nth(12_345).unwrap();
        let loc = locator().locate_plate(&plate.plate_id.to_string());
        assert_eq!(loc.precision, Precision::Plate);
        assert_eq!(loc.area.district_code.as_deref(), Some("310112"));
        assert_eq!(loc.area.town_code.as_deref(), Some(plate.town_code));
        assert_eq!(loc.area.station_code.as_deref(), Some(plate.station_code));
        assert_eq!(loc.area.compound_id.as_deref(), plate.compound_id);
        assert!(loc.h3.is_some());
    }

    #[test]
    fn unknown_plates_and_far_away_points_stay_null() {
        let l = locator();
        let loc = l.locate_plate("MHQR-999-99999999");
        assert_eq!(loc.area, EventArea::default());
        assert_eq!(loc.rejected_hints, vec!["plate_id"]);
        let far = l.locate_call(
            Some(GeoPoint {
                lat: 39.9,
                lon: 116.4,
            }),
            None,
            None,
            None,
            "有人打架",
        );
        assert_eq!(far.area.town_code, None);
        assert_eq!(far.precision, Precision::Unknown);
        assert!(far.rejected_hints.contains(&"location"));
    }

    #[test]
    fn coordinates_resolve_town_compound_and_h3() {
        let areas = AreaIndex::builtin();
        let kc = areas
            .compounds()
            .iter()
            .find(|c| c.name_zh == "上海康城")
            .unwrap();
        let loc = locator().locate_call(
            Some(GeoPoint {
                lat: kc.lat,
                lon: kc.lon,
            }),
            None,
            None,
            None,
            "家里被撬",
        );
        assert_eq!(loc.precision, Precision::Gps);
        assert_eq!(loc.area.compound_id.as_deref(), Some(kc.id.as_str()));
        assert_eq!(loc.area.town_code.as_deref(), Some("310112101"));
        assert_eq!(loc.h3.as_deref().map(str::len), Some(15));
    }

    #[test]
    fn named_places_in_text_are_found() {
        let l = locator();
        let loc = l.locate_call(
            None,
            None,
            None,
            Some("闵行区莘松路958弄12号"),
            "报警人称家中被盗",
        );
        assert_eq!(loc.precision, Precision::Named);
        assert_eq!(loc.area.town_code.as_deref(), Some("310112101"));
        let old_street = l.locate_call(None, None, None, None, "七宝老街汤团店给错品种发生纠纷");
        assert!(
            old_street.scenic,
            "七宝老街 is a scenic area: {old_street:?}"
        );
        assert_eq!(old_street.area.town_code.as_deref(), Some("310112102"));
    }

    #[test]
    fn hints_are_validated() {
        let l = locator();
        let ok = l.locate_call(None, Some("310112102"), None, None, "有人打架");
        assert_eq!(ok.area.town_code.as_deref(), Some("310112102"));
        assert_eq!(ok.precision, Precision::Hint);
        let bad = l.locate_call(None, Some("310115001"), Some("NOPE"), None, "有人打架");
        assert_eq!(bad.area.town_code, None);
        assert_eq!(bad.rejected_hints, vec!["town_code", "station_code"]);
    }
}
