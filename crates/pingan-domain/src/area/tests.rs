//! Tests of the embedded reference data and of the index built from it (no I/O).

use std::collections::HashSet;
use std::time::Instant;

use rand::{Rng, SeedableRng};

use super::*;

fn index() -> &'static AreaIndex {
    AreaIndex::builtin()
}

#[test]
fn builtin_counts() {
    let ix = index();
    assert_eq!(ix.towns().len(), 14);
    assert_eq!(ix.stations().len(), 17);
    assert!(ix.compounds().len() >= 300, "{}", ix.compounds().len());
    assert!(ix.committees().len() >= 14 * 4);
    assert_eq!(ix.safe_houses().len(), 300);
    assert!(ix.pois().len() >= 10);
    assert_eq!(ix.doorplates().len(), 194_000);
    assert!(ix.compounds().iter().filter(|c| c.synthetic).count() >= 400);
}

#[test]
fn startup_and_lookup_are_fast() {
    let t = Instant::now();
    let ix = AreaIndex::from_sources(AreaSources::builtin()).unwrap();
    let build = t.elapsed();
    let ids: Vec<String> = ix
        .doorplates()
        .sample(1000, 7)
        .iter()
        .map(|d| d.plate_id.to_string())
        .collect();
    let t = Instant::now();
    for id in &ids {
        assert!(ix.doorplate(id).is_some());
    }
    let lookup = t.elapsed() / 1000;
    let t = Instant::now();
    let n = ix.doorplates().iter().count();
    let all = t.elapsed();
    println!(
        "area index: build {build:?}, doorplate lookup {lookup:?}, iterate {n} plates {all:?}"
    );
    // Generous bounds: tests run unoptimised on a shared 2-core machine.
    assert!(build.as_millis() < 1_000, "{build:?}");
    assert!(lookup.as_micros() < 1_000, "{lookup:?}");
}

#[test]
fn every_area_ancestors_end_at_the_district() {
    let ix = index();
    let ends_at_district = |level, code: &str| {
        let chain = ix
            .ancestors(level, code)
            .unwrap_or_else(|| panic!("{level} {code} unknown"));
        assert_eq!(
            chain.last(),
            Some(&(AreaLevel::District, DISTRICT_CODE.to_owned())),
            "{level} {code}"
        );
        // Every link of the chain is itself known at its level.
        for (l, c) in &chain {
            assert!(
                ix.label(*l, c).is_some(),
                "{l} {c} in the chain of {level} {code}"
            );
        }
        chain
    };
    assert_eq!(
        ix.ancestors(AreaLevel::District, DISTRICT_CODE),
        Some(vec![])
    );
    for t in ix.towns() {
        ends_at_district(AreaLevel::Town, &t.code);
    }
    for s in ix.stations() {
        ends_at_district(AreaLevel::Station, &s.code);
    }
    for c in ix.committees() {
        ends_at_district(AreaLevel::Committee, &c.id);
    }
    for c in ix.compounds() {
        let chain = ends_at_district(AreaLevel::Compound, &c.id);
        assert_eq!(chain[0], (AreaLevel::Committee, c.committee_id.clone()));
        assert_eq!(chain[2], (AreaLevel::Town, c.town_code.clone()));
        ends_at_district(AreaLevel::Building, &format!("{}#{}", c.id, c.buildings));
    }
    for d in ix.doorplates().sample(3000, 11) {
        let chain = ends_at_district(AreaLevel::Doorplate, &d.plate_id.to_string());
        assert!(chain.contains(&(AreaLevel::Town, d.town_code.to_owned())));
    }
    assert_eq!(ix.ancestors(AreaLevel::Town, "310112999"), None);
    assert_eq!(ix.ancestors(AreaLevel::Building, "MH-CP-101-001#0"), None);
}

#[test]
fn stations_and_towns_cover_each_other() {
    let ix = index();
    for t in ix.towns() {
        assert!(
            ix.stations_serving(&t.code).count() >= 1,
            "{} has no station",
            t.name_zh
        );
        assert!(
            ix.committees()
                .iter()
                .filter(|c| c.town_code == t.code)
                .count()
                >= 3,
            "{}",
            t.name_zh
        );
    }
    for s in ix.stations() {
        assert!(!s.towns.is_empty());
        assert!(
            ix.committees().iter().any(|c| c.station_code == s.code),
            "{} has no committee",
            s.code
        );
    }
    // The many-to-many cases named in DOMAIN §7.
    let names = |town: &str| {
        ix.stations_serving(town)
            .map(|s| s.name_zh.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(names("310112107"), ["虹桥派出所", "龙柏派出所"]);
    assert_eq!(names("310112101"), ["莘庄派出所", "莘松派出所"]);
    assert_eq!(
        ix.station("MH-PS-QIBAO").unwrap().verification,
        Verification::Verified
    );
    assert_eq!(
        ix.station("MH-PS-PUJIN").unwrap().verification,
        Verification::Unverified
    );
}

#[test]
fn compound_centres_locate_to_their_town_and_compound() {
    let ix = index();
    for c in ix.compounds() {
        let loc = ix.locate_point(c.lat, c.lon).unwrap();
        assert!(loc.in_town_polygon);
        assert_eq!(loc.town.code, c.town_code, "{}", c.name_zh);
        assert_eq!(
            loc.compound.map(|x| x.id.as_str()),
            Some(c.id.as_str()),
            "{}",
            c.name_zh
        );
        assert_eq!(loc.station.code, c.station_code);
        assert_eq!(loc.committee.id, c.committee_id);
    }
}

#[test]
fn every_doorplate_resolves_to_its_town() {
    let ix = index();
    let t = Instant::now();
    let mut ids = HashSet::with_capacity(194_000);
    let mut compound_addresses = HashSet::with_capacity(194_000);
    let mut street = 0;
    let mut types = std::collections::HashMap::new();
    for d in ix.doorplates().iter() {
        assert!(ids.insert(d.plate_id), "duplicate {}", d.plate_id);
        *types.entry(d.plate_type).or_insert(0u32) += 1;
        let town = ix.town(d.town_code).unwrap();
        assert_eq!(
            ix.town_at(d.lat, d.lon).map(|t| t.code.as_str()),
            Some(town.code.as_str()),
            "{}",
            d.plate_id
        );
        assert!(
            ix.stations_serving(d.town_code)
                .any(|s| s.code == d.station_code)
        );
        assert_eq!(ix.committee(d.committee_id).unwrap().town_code, d.town_code);
        assert_eq!(format!("{:03}", d.plate_id.town_suffix()), d.town_code[6..]);
        match d.compound_id {
            Some(c) => {
                let c = ix.compound(c).unwrap();
                assert_eq!(c.town_code, d.town_code);
                assert!(d.address_zh.starts_with(&c.address_zh()));
                assert!(compound_addresses.insert(d.address_zh), "duplicate address");
            }
            None => street += 1,
        }
    }
    assert_eq!(ids.len(), 194_000);
    assert!((10_000..20_000).contains(&street), "{street} street plates");
    for ty in [
        PlateType::Gate,
        PlateType::Lane,
        PlateType::Building,
        PlateType::Unit,
        PlateType::Room,
    ] {
        assert!(types.get(&ty).copied().unwrap_or(0) > 0, "no {ty:?} plates");
    }
    println!("checked 194000 plates in {:?}: {types:?}", t.elapsed());
}

#[test]
fn doorplate_lookup_round_trips() {
    let ix = index();
    for d in ix.doorplates().sample(5000, 3) {
        assert_eq!(ix.doorplate(&d.plate_id.to_string()), Some(d.clone()));
        assert_eq!(
            ix.label(AreaLevel::Doorplate, &d.plate_id.to_string())
                .unwrap()
                .zh,
            d.address_zh
        );
    }
    for (i, d) in ix.doorplates().iter().enumerate().step_by(997) {
        assert_eq!(ix.doorplates().nth(i), Some(d));
    }
    assert_eq!(ix.doorplates().nth(194_000), None);
    assert_eq!(ix.doorplate("MHQR-999-00100000"), None);
    assert_eq!(ix.doorplate("MHQR-101-99900000"), None);
    assert_eq!(ix.doorplate("garbage"), None);
    let kangcheng = ix
        .compounds()
        .iter()
        .find(|c| c.name_zh == "上海康城")
        .unwrap();
    let lane = ix.doorplate("MHQR-101-00100000").unwrap();
    assert_eq!(lane.compound_id, Some(kangcheng.id.as_str()));
    assert_eq!(lane.address_zh, "莘松路958弄");
    assert_eq!(lane.plate_type, PlateType::Lane);
    assert!(ix.doorplates().count_in_compound(&kangcheng.id).unwrap() > 1000);
}

#[test]
fn doorplates_are_deterministic() {
    let a = AreaIndex::from_sources(AreaSources::builtin()).unwrap();
    let b = AreaIndex::from_sources(AreaSources::builtin()).unwrap();
    assert_eq!(
        a.doorplates().sample(500, 42),
        b.doorplates().sample(500, 42)
    );
    assert!(
        a.doorplates()
            .iter()
            .take(20_000)
            .eq(b.doorplates().iter().take(20_000))
    );
    assert_ne!(a.doorplates().sample(50, 1), a.doorplates().sample(50, 2));

    let mut other = AreaSources::builtin();
    other.doorplates.seed = 1;
    let c = AreaIndex::from_sources(other).unwrap();
    let (x, y) = (
        a.doorplates().nth(100_000).unwrap(),
        c.doorplates().nth(100_000).unwrap(),
    );
    assert_eq!(x.plate_id, y.plate_id, "ids do not depend on the seed");
    assert_eq!(x.compound_id, y.compound_id);
}

#[test]
fn points_outside_the_box_are_none() {
    let ix = index();
    for (lat, lon) in [
        (0.0, 0.0),
        (31.30, 121.40),
        (31.10, 121.20),
        (30.90, 121.40),
        (31.10, 121.60),
        (f64::NAN, 121.4),
    ] {
        assert!(ix.locate_point(lat, lon).is_none(), "({lat}, {lon})");
        assert!(ix.town_at(lat, lon).is_none());
    }
    let b = ix.bbox();
    assert!((b.min_lon - 121.26).abs() < 0.01 && (b.max_lon - 121.56).abs() < 0.01);
    assert!((b.min_lat - 30.98).abs() < 0.01 && (b.max_lat - 31.25).abs() < 0.01);
}

#[test]
fn random_points_in_the_box_always_find_a_town() {
    let ix = index();
    let b = ix.bbox();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2020);
    let mut outside_polygons = 0;
    for _ in 0..20_000 {
        let lat = rng.random_range(b.min_lat..=b.max_lat);
        let lon = rng.random_range(b.min_lon..=b.max_lon);
        let loc = ix
            .locate_point(lat, lon)
            .unwrap_or_else(|| panic!("({lat}, {lon})"));
        assert!(loc.station.towns.contains(&loc.town.code));
        assert_eq!(loc.committee.town_code, loc.town.code);
        if let Some(c) = loc.compound {
            assert_eq!(c.town_code, loc.town.code);
        }
        outside_polygons += usize::from(!loc.in_town_polygon);
    }
    // The district is a diagonal band, so a good part of its box is neighbouring districts.
    assert!(
        outside_polygons > 0 && outside_polygons < 15_000,
        "{outside_polygons}"
    );
}

#[test]
fn town_polygons_do_not_overlap() {
    let ix = index();
    let b = ix.bbox();
    let (mut lat, step) = (b.min_lat + 0.00037, 0.0011);
    while lat < b.max_lat {
        let mut lon = b.min_lon + 0.00041;
        while lon < b.max_lon {
            let n = ix
                .town_shapes
                .iter()
                .filter(|s| s.contains(lat, lon))
                .count();
            assert!(n <= 1, "({lat}, {lon}) in {n} towns");
            lon += step;
        }
        lat += step;
    }
}

#[test]
fn geography_is_roughly_right() {
    let ix = index();
    let town = |lat, lon| ix.town_at(lat, lon).unwrap().name_zh.as_str();
    assert_eq!(town(31.156, 121.349), "七宝镇"); // 七宝老街
    assert_eq!(town(31.181, 121.390), "虹桥镇"); // 吴中路
    assert_eq!(town(31.23, 121.29), "华漕镇");
    assert_eq!(town(31.10, 121.36), "莘庄镇");
    assert_eq!(town(31.00, 121.52), "浦江镇");
    assert_eq!(town(31.12, 121.49), "浦锦街道");
    assert_eq!(town(31.01, 121.41), "江川路街道");
}

#[test]
fn real_compounds_are_present() {
    let ix = index();
    let by_name = |n: &str| {
        ix.compounds()
            .iter()
            .find(|c| c.name_zh == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    let k = by_name("上海康城");
    assert_eq!(
        (k.buildings, k.households, k.population, k.cameras),
        (298, 12_000, 50_000, 107)
    );
    assert_eq!(
        (k.town_code.as_str(), k.address_zh().as_str()),
        ("310112101", "莘松路958弄")
    );
    assert!(!k.synthetic && k.town_verified);
    assert_eq!(by_name("爱博二村").town_code, "310112008");
    assert_eq!(by_name("红春一公寓").address_zh(), "虹梅路3330弄");
    assert_eq!(by_name("虹延小区").address_zh(), "虹梅路3818弄");
    assert_eq!(by_name("红春一公寓").town_code, "310112107");
    assert!(!by_name("金色西郊城").town_verified);
    assert!(!by_name("好世鹿鸣苑").town_verified);
    assert_eq!(ix.compounds().iter().filter(|c| !c.synthetic).count(), 6);
}

#[test]
fn pois_and_safe_houses() {
    let ix = index();
    assert_eq!(
        ix.poi_at(31.1560, 121.3490).map(|p| p.id.as_str()),
        Some("POI-QIBAO-OLDSTREET")
    );
    assert_eq!(
        ix.poi_at(31.1772, 121.3935).map(|p| p.kind),
        Some(PoiKind::Nightlife)
    );
    assert_eq!(
        ix.poi_at(31.1812, 121.3950).map(|p| p.id.as_str()),
        Some("POI-WUZHONG-NIGHTLIFE")
    );
    assert_eq!(ix.poi_at(31.0, 121.3), None);
    let qibao = ix.poi("POI-QIBAO-OLDSTREET").unwrap();
    assert_eq!(
        (qibao.kind, qibao.town_code.as_str()),
        (PoiKind::ScenicArea, "310112102")
    );
    for id in [
        "POI-LAOWAIJIE",
        "POI-MIXC",
        "POI-HONGQIAO-AIRPORT",
        "POI-SHILIN-NIGHTMARKET",
    ] {
        assert!(ix.poi(id).is_some(), "{id}");
    }

    let houses = ix.safe_houses();
    assert!(
        houses
            .iter()
            .all(|h| h.synthetic && ix.town_at(h.lat, h.lon).unwrap().code == h.town_code)
    );
    assert_eq!(
        houses
            .iter()
            .filter(|h| h.station_code == "MH-PS-HONGQIAO")
            .count(),
        31
    );
    assert_eq!(
        houses
            .iter()
            .filter(|h| h.host_type == HostType::MobileCommandVehicle)
            .count(),
        1
    );
    // Concentrated near nightlife: 虹桥镇 has the most per km² of box.
    let hongqiao = houses.iter().filter(|h| h.town_code == "310112107").count();
    assert!(hongqiao >= 45, "{hongqiao}");
}

#[test]
fn labels_and_code_validation() {
    let ix = index();
    assert_eq!(
        ix.label(AreaLevel::District, "310112").unwrap().zh,
        "闵行区"
    );
    assert_eq!(
        ix.label(AreaLevel::Town, "310112102").unwrap().en,
        "Qibao Town"
    );
    for c in ix.compounds() {
        let l = ix.label(AreaLevel::Compound, &c.id).unwrap();
        assert!(!l.zh.is_empty() && l.en.is_ascii(), "{l:?}");
    }
    for c in ix.committees() {
        assert!(ix.label(AreaLevel::Committee, &c.id).unwrap().en.is_ascii());
    }
    assert!(ix.is_valid_town_code("310112501"));
    assert!(!ix.is_valid_town_code("310112000"));
    assert!(ix.is_valid_station_code("MH-PS-LONGBAI"));
    assert!(!ix.is_valid_station_code("MH-PS-NOPE"));
}

#[test]
fn h3_cells() {
    let cell = AreaIndex::h3_res9(31.156, 121.349).unwrap();
    assert_eq!(cell.len(), 15);
    assert!(cell.starts_with("89"), "{cell}");
    assert_eq!(AreaIndex::h3_res9(91.0, 0.0), None);
    assert_eq!(AreaIndex::h3_res9(f64::NAN, 0.0), None);
}

#[test]
fn geojson_is_a_usable_feature_collection() {
    let ix = index();
    let v: serde_json::Value = serde_json::from_str(ix.towns_geojson()).unwrap();
    assert!(v["note"].as_str().unwrap().contains("APPROXIMATE"));
    let features = v["features"].as_array().unwrap();
    assert_eq!(features.len(), 14);
    for f in features {
        assert!(ix.is_valid_town_code(f["properties"]["code"].as_str().unwrap()));
    }
}

#[test]
fn user_sources_are_validated_with_every_problem_reported() {
    let builtin = AreaSources::builtin();
    // Drop one town's polygon, add a duplicate town, break references.
    let mut geo: serde_json::Value = serde_json::from_str(builtin.towns_geojson).unwrap();
    geo["features"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["properties"]["code"] != "310112501");
    let geojson = geo.to_string();
    let towns = format!("{}310112102\t重复\tDup\ttown\t-\tverified\n", builtin.towns);
    let stations = format!(
        "{}MH-PS-GHOST\t幽灵所\tGhost\tunverified\t310112999\t-\t31.1\t121.4\t-\n",
        builtin.stations
    );
    let compounds = format!(
        "{}MH-CP-102-900\t测试苑\tTest Yuan\t310112102\tMH-PS-QIBAO\tMH-CM-999-01\t新镇路\tXinzhen Road\t1\t1\t1\t1\t1\t31.0\t121.52\t100\tY\tY\t-\n",
        builtin.compounds
    );
    let sources = AreaSources {
        towns: &towns,
        stations: &stations,
        compounds: &compounds,
        towns_geojson: &geojson,
        ..builtin
    };
    let err = AreaIndex::from_sources(sources).unwrap_err();
    let has = |f: &dyn Fn(&AreaProblem) -> bool| err.problems.iter().any(f);
    assert!(
        has(&|p| matches!(
            p,
            AreaProblem::Duplicate {
                table: RefTable::Towns,
                ..
            }
        )),
        "{err}"
    );
    assert!(
        has(&|p| matches!(p, AreaProblem::Coverage { town, .. } if town == "310112501")),
        "{err}"
    );
    assert!(
        has(&|p| matches!(p, AreaProblem::UnknownReference { field: "towns", .. })),
        "{err}"
    );
    assert!(
        has(&|p| matches!(
            p,
            AreaProblem::UnknownReference {
                field: "committee",
                ..
            }
        )),
        "{err}"
    );
    assert!(err.to_string().contains("problems"));

    // Point checks run when the geometry is complete.
    let sources = AreaSources {
        compounds: &compounds,
        ..builtin
    };
    let err = AreaIndex::from_sources(sources).unwrap_err();
    assert!(
        err.problems.iter().any(
            |p| matches!(p, AreaProblem::OutsideTown { expected, .. } if expected == "310112102")
        ),
        "{err}"
    );

    // Malformed rows are reported with their line and every bad field.
    let bad = "id\tname_zh\n";
    let err = AreaIndex::from_sources(AreaSources {
        pois: bad,
        ..builtin
    })
    .unwrap_err();
    assert!(matches!(
        &err.problems[0],
        AreaProblem::Malformed {
            table: RefTable::Pois,
            line: 0,
            ..
        }
    ));
}

#[test]
fn user_geometry_replaces_the_builtin_shapes() {
    // A MultiPolygon collection with the same towns still builds (shapes are user-replaceable).
    let builtin = AreaSources::builtin();
    let mut geo: serde_json::Value = serde_json::from_str(builtin.towns_geojson).unwrap();
    for f in geo["features"].as_array_mut().unwrap() {
        let coords = f["geometry"]["coordinates"].clone();
        f["geometry"] = serde_json::json!({"type": "MultiPolygon", "coordinates": [coords]});
    }
    let text = geo.to_string();
    let ix = AreaIndex::from_sources(AreaSources {
        towns_geojson: &text,
        ..builtin
    })
    .unwrap();
    assert_eq!(ix.town_at(31.156, 121.349).unwrap().code, "310112102");
    assert_eq!(ix.towns_geojson(), text);
}
