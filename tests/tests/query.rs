//! Query API against real ClickHouse: known rows go into `incidents`, the materialized views
//! fill the rollups, and every endpoint must return exactly the expected numbers — including
//! the midnight-crossing hour window, Asia/Shanghai day and month boundaries, duplicates, the
//! raw-table fallback for unaligned ranges, rankings, heat map and terms.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use pingan_domain::area::AreaIndex;
use pingan_query::metrics::QueryMetrics;
use pingan_query::store::clickhouse::ClickHouseStore;
use pingan_query::{AppState, router};
use pingan_tests::TestEnv;
use serde_json::Value;
use tower::ServiceExt;

/// One known incident.
struct Ev {
    id: u128,
    /// Shanghai local time `YYYY-MM-DD HH:MM:SS`.
    at: &'static str,
    subtype: &'static str,
    town: &'static str,
    compound: Option<&'static str>,
    point: (f64, f64),
    keywords: &'static [&'static str],
}

const QIBAO: &str = "310112102";
const HONGQIAO: &str = "310112107";
const HONGCHUN: &str = "MH-CP-107-001";

/// Cell centres used as event locations: two in 七宝, one in 虹桥.
const P_QIBAO: (f64, f64) = (31.1590, 121.3530);
const P_QIBAO2: (f64, f64) = (31.1700, 121.3300);
const P_HONGQIAO: (f64, f64) = (31.1900, 121.4000);

fn events() -> Vec<Ev> {
    vec![
        // Shanghai day boundary: 23:30 belongs to 2019-12-31, 00:30 to 2020-01-01.
        Ev {
            id: 1,
            at: "2019-12-31 23:30:00",
            subtype: "FRAUD_FAKE_GOV",
            town: QIBAO,
            compound: None,
            point: P_QIBAO,
            keywords: &["公检法", "转账"],
        },
        Ev {
            id: 2,
            at: "2020-01-01 00:30:00",
            subtype: "DSP_NEIGHBOUR",
            town: QIBAO,
            compound: None,
            point: P_QIBAO,
            keywords: &["噪音", "邻居"],
        },
        Ev {
            id: 3,
            at: "2020-01-01 10:15:00",
            subtype: "TRF_CONGESTION",
            town: HONGQIAO,
            compound: None,
            point: P_HONGQIAO,
            keywords: &["拥堵"],
        },
        Ev {
            id: 4,
            at: "2020-01-01 21:05:00",
            subtype: "PUB_DRUNK",
            town: QIBAO,
            compound: None,
            point: P_QIBAO2,
            keywords: &["醉酒", "喝多了"],
        },
        // The night window 21-3 ends at 02:59:59.
        Ev {
            id: 5,
            at: "2020-01-01 02:59:59",
            subtype: "CRIM_BURGLARY",
            town: HONGQIAO,
            compound: Some(HONGCHUN),
            point: P_HONGQIAO,
            keywords: &["入室", "盗窃"],
        },
        Ev {
            id: 6,
            at: "2020-01-01 03:00:00",
            subtype: "CRIM_BURGLARY",
            town: HONGQIAO,
            compound: Some(HONGCHUN),
            point: P_HONGQIAO,
            keywords: &["入室", "盗窃"],
        },
        Ev {
            id: 7,
            at: "2020-01-01 20:59:00",
            subtype: "DSP_NEIGHBOUR",
            town: QIBAO,
            compound: None,
            point: P_QIBAO,
            keywords: &["噪音"],
        },
        // Same month last year, for rankings' YoY.
        Ev {
            id: 8,
            at: "2019-01-01 12:00:00",
            subtype: "CRIM_BURGLARY",
            town: HONGQIAO,
            compound: Some(HONGCHUN),
            point: P_HONGQIAO,
            keywords: &["盗窃"],
        },
    ]
}

fn uuid(n: u128) -> String {
    uuid::Uuid::from_u128(0x0191_0000_0000_7000_8000_0000_0000_0000 | n).to_string()
}

fn values(evs: &[&Ev]) -> String {
    let tax = pingan_domain::taxonomy::Taxonomy::builtin();
    evs.iter()
        .map(|e| {
            let cat = &tax.subtype(e.subtype).unwrap().category;
            let h3 = AreaIndex::h3_res9(e.point.0, e.point.1).unwrap();
            let cell: h3o::CellIndex = h3.parse().unwrap();
            let r8 = cell.parent(h3o::Resolution::Eight).unwrap().to_string();
            let r7 = cell.parent(h3o::Resolution::Seven).unwrap().to_string();
            let compound = e.compound.map_or("NULL".to_owned(), |c| format!("'{c}'"));
            let kw: Vec<String> = e.keywords.iter().map(|k| format!("'{k}'")).collect();
            format!(
                "('{}', 'call', '{}', '{cat}', '{}', 'POLICE', '310112', '{}', NULL, {compound}, {}, {}, '{h3}', '{r8}', '{r7}', [{}], '测试描述')",
                uuid(e.id),
                e.at,
                e.subtype,
                e.town,
                e.point.0,
                e.point.1,
                kw.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn insert(client: &clickhouse::Client, evs: &[&Ev]) {
    let sql = format!(
        "INSERT INTO incidents (event_id, source, event_time, category, subtype, department, district_code, town_code, \
         station_code, compound_id, lat, lon, h3, h3_r8, h3_r7, keywords, description) VALUES {}",
        values(evs)
    );
    client.query(&sql).execute().await.unwrap();
}

struct Fixture {
    app: axum::Router,
    client: clickhouse::Client,
    db: String,
}

impl Fixture {
    async fn new() -> Fixture {
        let env = TestEnv::from_env();
        let settings = env.migrated_database().await;
        let db = settings.database.clone();
        let client = env.clickhouse().with_database(&db);
        let all = events();
        let refs: Vec<&Ev> = all.iter().collect();
        insert(&client, &refs).await;
        // A duplicate of event 2 in a separate INSERT (another part): it must count once.
        insert(&client, &[&all[1]]).await;
        let metrics = QueryMetrics::unregistered().unwrap();
        let store = Arc::new(ClickHouseStore::new(&settings, metrics.clone()));
        Fixture {
            app: router(AppState::new(store, metrics)),
            client,
            db,
        }
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let resp = self
            .app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 10 << 20)
            .await
            .unwrap();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, v)
    }

    async fn ok(&self, uri: &str) -> Value {
        let (s, v) = self.get(uri).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
        v
    }

    async fn drop_db(self) {
        let _ = self
            .client
            .query(&format!("DROP DATABASE IF EXISTS {}", self.db))
            .execute()
            .await;
    }
}

const DAY_RANGE: &str = "from=2019-12-31T00:00:00%2B08:00&to=2020-01-02T00:00:00%2B08:00";

fn pairs(v: &Value, key: &str) -> Vec<(String, u64)> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[key].as_str().unwrap_or("").to_owned(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn counts_are_exact_per_bucket_area_type_and_window() {
    let f = Fixture::new().await;

    // Shanghai day boundaries, duplicates once; total = distinct events.
    let v = f.ok(&format!("/v1/counts?{DAY_RANGE}&bucket=day")).await;
    assert_eq!(
        pairs(&v, "bucket"),
        [
            ("2019-12-31T00:00:00+08:00".to_owned(), 1),
            ("2020-01-01T00:00:00+08:00".to_owned(), 6)
        ],
        "{v}"
    );
    assert_eq!(v["total"], 7);

    // Month buckets (the 2019-01 row is outside the range).
    let v = f.ok("/v1/counts?from=2019-12-01T00:00:00%2B08:00&to=2020-02-01T00:00:00%2B08:00&bucket=month").await;
    assert_eq!(
        pairs(&v, "bucket"),
        [
            ("2019-12-01T00:00:00+08:00".to_owned(), 1),
            ("2020-01-01T00:00:00+08:00".to_owned(), 6)
        ],
        "{v}"
    );

    // The midnight-crossing window: 23:30, 00:30, 21:05 and 02:59:59 — not 03:00 nor 20:59.
    let v = f.ok(&format!("/v1/counts?{DAY_RANGE}&hours=21-3")).await;
    assert_eq!(v["total"], 4, "{v}");
    assert_eq!(v["rows"][0]["count"], 4);
    let v = f
        .ok(&format!("/v1/counts?{DAY_RANGE}&hours=21-3&bucket=day"))
        .await;
    assert_eq!(
        pairs(&v, "bucket"),
        [
            ("2019-12-31T00:00:00+08:00".to_owned(), 1),
            ("2020-01-01T00:00:00+08:00".to_owned(), 3)
        ],
        "{v}"
    );

    // Group by town with labels; filter by category (comma = any of).
    let v = f.ok(&format!("/v1/counts?{DAY_RANGE}&by=town")).await;
    assert_eq!(
        pairs(&v, "town"),
        [(QIBAO.to_owned(), 4), (HONGQIAO.to_owned(), 3)],
        "{v}"
    );
    assert_eq!(v["rows"][0]["town_zh"], "七宝镇");
    assert_eq!(v["rows"][0]["town_en"], "Qibao Town");
    let v = f
        .ok(&format!(
            "/v1/counts?{DAY_RANGE}&by=category,town&category=CRIM,DSP"
        ))
        .await;
    assert_eq!(v["total"], 4, "{v}");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().any(|r| r["category"] == "CRIM"
        && r["town"] == HONGQIAO
        && r["count"] == 2
        && r["category_zh"] == "刑事类"));
    assert!(
        rows.iter()
            .any(|r| r["category"] == "DSP" && r["town"] == QIBAO && r["count"] == 2)
    );

    // Hour buckets from the hour rollup and from the minute rollup / raw table agree.
    let hourly = f
        .ok(&format!(
            "/v1/counts?{DAY_RANGE}&bucket=hour&town={HONGQIAO}"
        ))
        .await;
    assert_eq!(
        pairs(&hourly, "bucket"),
        [
            ("2020-01-01T02:00:00+08:00".to_owned(), 1),
            ("2020-01-01T03:00:00+08:00".to_owned(), 1),
            ("2020-01-01T10:00:00+08:00".to_owned(), 1)
        ],
        "{hourly}"
    );
    let minute_aligned = f.ok("/v1/counts?from=2020-01-01T02:59:00%2B08:00&to=2020-01-01T03:01:00%2B08:00&bucket=minute").await;
    assert_eq!(
        pairs(&minute_aligned, "bucket"),
        [
            ("2020-01-01T02:59:00+08:00".to_owned(), 1),
            ("2020-01-01T03:00:00+08:00".to_owned(), 1)
        ],
        "{minute_aligned}"
    );
    // Unaligned bounds read the raw table: [02:59:30, 03:00:00] holds exactly event 5.
    let raw = f
        .ok("/v1/counts?from=2020-01-01T02:59:30%2B08:00&to=2020-01-01T03:00:00%2B08:00")
        .await;
    assert_eq!(raw["total"], 1, "{raw}");
    let raw = f
        .ok("/v1/counts?from=2020-01-01T00:30:00%2B08:00&to=2020-01-01T00:30:01%2B08:00&by=subtype")
        .await;
    assert_eq!(
        pairs(&raw, "subtype"),
        [("DSP_NEIGHBOUR".to_owned(), 1)],
        "duplicate counted once: {raw}"
    );

    // 5m / 15m buckets.
    let v = f
        .ok("/v1/counts?from=2020-01-01T00:00:00%2B08:00&to=2020-01-01T01:00:00%2B08:00&bucket=15m")
        .await;
    assert_eq!(
        pairs(&v, "bucket"),
        [("2020-01-01T00:30:00+08:00".to_owned(), 1)]
    );

    // CSV.
    let (s, csv) = f
        .get(&format!("/v1/counts?{DAY_RANGE}&by=town&format=csv"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let csv = csv.as_str().unwrap().to_owned();
    assert!(csv.contains("town,town_zh,town_en,count"), "{csv}");
    assert!(csv.contains("310112102,七宝镇,Qibao Town,4"), "{csv}");
    f.drop_db().await;
}

async fn seal(f: &Fixture) -> Vec<String> {
    // A day is sealed only once its last write is in a past second of the server clock.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    pingan_warehouse::sealed::seal_pass(&f.client, std::time::Duration::ZERO, |_| {})
        .await
        .unwrap()
        .sealed
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[tokio::test]
async fn sealed_days_answer_the_same_and_late_events_unseal_them() {
    let f = Fixture::new().await;
    let uris = [
        format!("/v1/counts?{DAY_RANGE}&bucket=day"),
        format!("/v1/counts?{DAY_RANGE}&by=town"),
        format!("/v1/counts?{DAY_RANGE}&by=category,town&category=CRIM,DSP"),
        format!("/v1/counts?{DAY_RANGE}&hours=21-3&bucket=day"),
        format!("/v1/counts?{DAY_RANGE}&hours=21-3&by=town"),
        "/v1/counts?from=2018-12-01T00:00:00%2B08:00&to=2020-02-01T00:00:00%2B08:00&bucket=month&by=subtype".to_owned(),
        // Partial days at both ends come from the hourly rollup, the whole day between from
        // the sealed one.
        "/v1/counts?from=2019-12-31T23:00:00%2B08:00&to=2020-01-02T01:00:00%2B08:00&by=source,department".to_owned(),
        "/v1/counts?from=2019-12-31T12:00:00%2B08:00&to=2020-01-01T12:00:00%2B08:00&hours=21-3".to_owned(),
        format!("/v1/heatmap?{DAY_RANGE}&res=8"),
        "/v1/heatmap?from=2019-12-31T10:00:00%2B08:00&to=2020-01-02T00:00:00%2B08:00&res=7&category=CRIM,DSP".to_owned(),
        "/v1/heatmap?from=2019-12-31T10:00:07%2B08:00&to=2020-01-02T00:00:00%2B08:00&res=8".to_owned(),
    ];
    let mut before = Vec::new();
    for u in &uris {
        before.push(f.ok(u).await);
    }
    assert_eq!(
        seal(&f).await,
        ["2019-01-01", "2019-12-31", "2020-01-01"],
        "every written, closed day is sealed"
    );
    for (u, b) in uris.iter().zip(&before) {
        assert_eq!(&f.ok(u).await, b, "sealed days change the answer of {u}");
    }
    let sealed_cells: u64 = f
        .client
        .query("SELECT count() FROM cells_day")
        .fetch_one()
        .await
        .unwrap();
    assert!(sealed_cells > 0);
    assert!(
        before[8]["features"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{}",
        before[8]
    );
    assert!(seal(&f).await.is_empty(), "a second pass has nothing to do");

    // A marker row only the sealed table has, under the day's current seal, shows the sealed day
    // is what is read ...
    f.client
        .query("INSERT INTO counts_day SELECT toDate('2020-01-01'), seal, '310112', '310112999', '', 'DSP', 'DSP_NEIGHBOUR', 'call', 'POLICE', 5 \
                FROM day_seals WHERE day = '2020-01-01' ORDER BY sealed_as_of DESC, seal DESC LIMIT 1")
        .execute()
        .await
        .unwrap();
    let by_town = format!("/v1/counts?{DAY_RANGE}&by=town");
    let v = f.ok(&by_town).await;
    assert!(
        pairs(&v, "town").contains(&("310112999".to_owned(), 5)),
        "{v}"
    );

    // ... until a late event reaches the day: then it is read from the hourly rollup at once.
    let late = Ev {
        id: 9,
        at: "2020-01-01 12:00:00",
        subtype: "DSP_NEIGHBOUR",
        town: QIBAO,
        compound: None,
        point: P_QIBAO,
        keywords: &["噪音"],
    };
    insert(&f.client, &[&late]).await;
    let v = f.ok(&by_town).await;
    assert_eq!(
        pairs(&v, "town"),
        [(QIBAO.to_owned(), 5), (HONGQIAO.to_owned(), 3)],
        "{v}"
    );
    // The next pass re-seals that day only, with the late event in it, under a new seal: the
    // old seal's rows (the marker among them) are no longer read, so nothing adds up twice.
    assert_eq!(seal(&f).await, ["2020-01-01"]);
    let v = f.ok(&by_town).await;
    assert_eq!(
        pairs(&v, "town"),
        [(QIBAO.to_owned(), 5), (HONGQIAO.to_owned(), 3)],
        "{v}"
    );
    let v = f.ok(&format!("/v1/counts?{DAY_RANGE}&bucket=day")).await;
    assert_eq!(v["total"], 8, "{v}");
    f.drop_db().await;
}

#[tokio::test]
async fn retention_drops_whole_months_older_than_configured() {
    let f = Fixture::new().await;
    assert!(!seal(&f).await.is_empty());
    // Keep everything from 2019-12-15 on: January 2019 is wholly older and goes, December
    // 2019 is only partly older and stays.
    let today = chrono::Utc::now()
        .with_timezone(&pingan_domain::time::shanghai())
        .date_naive();
    let cutoff = chrono::NaiveDate::from_ymd_opt(2019, 12, 15).unwrap();
    let days = u32::try_from((today - cutoff).num_days()).unwrap();
    let dropped = pingan_warehouse::retention::retention_pass(&f.client, days)
        .await
        .unwrap();
    assert!(!dropped.is_empty());
    assert!(dropped.iter().all(|(_, p)| p == "201901"), "{dropped:?}");
    for table in ["incidents", "counts_hour", "counts_day", "day_seals"] {
        assert!(
            dropped.iter().any(|(t, _)| t == table),
            "{table}: {dropped:?}"
        );
    }
    let v = f
        .ok("/v1/counts?from=2018-12-01T00:00:00%2B08:00&to=2020-02-01T00:00:00%2B08:00&bucket=month")
        .await;
    assert_eq!(
        pairs(&v, "bucket"),
        [
            ("2019-12-01T00:00:00+08:00".to_owned(), 1),
            ("2020-01-01T00:00:00+08:00".to_owned(), 6)
        ],
        "{v}"
    );
    let raw: u64 = f
        .client
        .query("SELECT count() FROM incidents WHERE toYYYYMM(event_time) = 201901")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(raw, 0);
    // Nothing left to drop.
    assert!(
        pingan_warehouse::retention::retention_pass(&f.client, days)
            .await
            .unwrap()
            .is_empty()
    );
    f.drop_db().await;
}

#[tokio::test]
async fn malformed_parameters_get_400_with_a_clear_message() {
    let f = Fixture::new().await;
    for (uri, needle) in [
        ("/v1/counts?from=yesterday", "RFC 3339"),
        ("/v1/counts?bucket=week", "unknown bucket"),
        ("/v1/counts?by=street", "unknown dimension"),
        ("/v1/counts?hours=25-3", "hour window"),
        (
            "/v1/counts?from=2020-01-02T00:00:00%2B08:00&to=2020-01-01T00:00:00%2B08:00",
            "earlier",
        ),
        (
            "/v1/counts?from=2000-01-01T00:00:00%2B08:00&to=2020-01-01T00:00:00%2B08:00&bucket=minute",
            "buckets exceed",
        ),
        ("/v1/counts?category=NOPE", "category"),
        ("/v1/counts?town=x'%20OR%201=1", "town code"),
        ("/v1/heatmap?res=5", "res"),
        ("/v1/rankings?level=street", "level"),
        ("/v1/incidents?cursor=abc", "cursor"),
    ] {
        let (s, v) = f.get(uri).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_eq!(v["error"]["code"], "bad_parameter", "{uri}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{uri}: {msg}");
    }
    f.drop_db().await;
}

#[tokio::test]
async fn rankings_heatmap_terms_incidents_and_alerts() {
    let f = Fixture::new().await;

    // Rankings: 红春一公寓 has 2 burglaries in January 2020 and 1 in January 2019.
    let v = f.ok("/v1/rankings?level=compound&subtype=CRIM_BURGLARY&from=2020-01-01&to=2020-02-01&min_count=1").await;
    let top = &v["rows"][0];
    assert_eq!(top["code"], HONGCHUN, "{v}");
    assert_eq!(
        (
            top["count"].as_u64(),
            top["last_year"].as_u64(),
            top["yoy_pct"].as_f64()
        ),
        (Some(2), Some(1), Some(100.0)),
        "{v}"
    );
    assert_eq!(top["name_zh"], "红春一公寓");
    let v = f.ok("/v1/rankings?level=compound&subtype=CRIM_BURGLARY&from=2020-01-01&to=2020-02-01&min_count=3").await;
    assert_eq!(
        v["rows"].as_array().unwrap().len(),
        0,
        "suppressed below min_count: {v}"
    );
    assert_eq!(v["suppressed"], 1);
    let v = f
        .ok("/v1/rankings?level=town&from=2020-01-01&to=2020-01-02&min_count=1")
        .await;
    assert_eq!(v["rows"][0]["code"], QIBAO, "{v}"); // 3 each on 2020-01-01: ties break by code
    assert_eq!(v["rows"][0]["count"], 3);

    // Heat map: the 七宝 cell holds events 1, 2 (once), 7; the night map keeps 1 and 2 only there.
    let q_cell = AreaIndex::h3_res9(P_QIBAO.0, P_QIBAO.1).unwrap();
    let v = f.ok(&format!("/v1/heatmap?{DAY_RANGE}&res=9")).await;
    let first = &v["features"][0];
    assert!(first["properties"]["count"] == 3, "{v}");
    let cells: Vec<(&str, u64)> = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["properties"]["h3"].as_str().unwrap(),
                f["properties"]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(cells.contains(&(q_cell.as_str(), 3)), "{cells:?}");
    assert_eq!(first["geometry"]["type"], "Polygon");
    assert_eq!(
        first["geometry"]["coordinates"][0]
            .as_array()
            .unwrap()
            .len(),
        7,
        "hexagon ring closed"
    );
    let night = f
        .ok(&format!("/v1/heatmap?{DAY_RANGE}&res=9&hours=21-3"))
        .await;
    let night_cells: Vec<(&str, u64)> = night["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["properties"]["h3"].as_str().unwrap(),
                f["properties"]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        night_cells.contains(&(q_cell.as_str(), 2)),
        "{night_cells:?}"
    );
    assert_eq!(night["properties"]["sum"], 4);
    // Unaligned range or station filter → raw table, same semantics.
    let raw = f
        .ok("/v1/heatmap?from=2019-12-31T23:00:01%2B08:00&to=2020-01-01T01:00:00%2B08:00&res=7")
        .await;
    assert_eq!(raw["properties"]["sum"], 2, "{raw}");

    // Terms: 噪音 appears in events 2 and 7 (2 distinct events), 入室 in 5 and 6.
    let v = f
        .ok("/v1/terms?from=2020-01-01&to=2020-01-02&min_count=1")
        .await;
    let terms: Vec<(String, u64)> = v["terms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["term"].as_str().unwrap().to_owned(),
                t["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(terms[..4].contains(&("噪音".to_owned(), 2)), "{terms:?}");
    assert!(terms[..4].contains(&("入室".to_owned(), 2)), "{terms:?}");
    let v = f
        .ok(&format!(
            "/v1/terms?from=2020-01-01&to=2020-01-02&town={QIBAO}&category=PUB&min_count=1"
        ))
        .await;
    assert_eq!(v["terms"].as_array().unwrap().len(), 2, "{v}");
    // Against 2019-12-31 as background, 噪音 (absent before) is unusual; 公检法 (only before) is not.
    let v = f.ok("/v1/terms?from=2020-01-01&to=2020-01-02&background_from=2019-12-31&background_to=2020-01-01&min_count=2").await;
    let unusual: Vec<&str> = v["unusual"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["term"].as_str().unwrap())
        .collect();
    assert!(unusual.contains(&"噪音"), "{v}");
    assert!(!unusual.contains(&"公检法"), "{v}");

    // Incidents: newest first, paginated, no duplicates, no personal fields.
    let p1 = f.ok(&format!("/v1/incidents?{DAY_RANGE}&limit=4")).await;
    let ids1: Vec<String> = p1["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids1, [uuid(4), uuid(7), uuid(3), uuid(6)], "{p1}");
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2 = f
        .ok(&format!(
            "/v1/incidents?{DAY_RANGE}&limit=4&cursor={cursor}"
        ))
        .await;
    let ids2: Vec<String> = p2["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids2, [uuid(5), uuid(2), uuid(1)], "{p2}");
    assert!(p2["next_cursor"].is_null());
    let first = &p1["incidents"][0];
    assert_eq!(first["event_time"], "2020-01-01T21:05:00+08:00");
    assert_eq!(first["subtype_zh"], "醉酒滋事");
    assert!(first.get("caller_phone").is_none() && first.get("source_ref").is_none());

    // Alerts: one row per key after FINAL, newest first, since-filtered.
    f.client
        .query(
            "INSERT INTO alerts (id, alert_key, area_level, area_code, category, subtype, window_start, window_end, observed, expected, \
             baseline, score, p_value, level, method, contributors, created_at, updated_at, version) VALUES \
             ('a1', 'k1', 'town', '310112107', 'CRIM', 'CRIM_BURGLARY', '2020-01-01 02:00:00', '2020-01-01 03:00:00', 5, 1.2, 'x', 3.1, 0.001, 'orange', 'poisson', [], '2020-01-01 03:00:05', '2020-01-01 03:00:05', 1), \
             ('a1', 'k1', 'town', '310112107', 'CRIM', 'CRIM_BURGLARY', '2020-01-01 02:00:00', '2020-01-01 03:00:00', 7, 1.2, 'x', 4.5, 0.0001, 'red', 'poisson', [], '2020-01-01 03:00:05', '2020-01-01 03:05:00', 2), \
             ('a2', 'k2', 'town', '310112102', 'DSP', NULL, '2020-01-01 20:00:00', '2020-01-01 21:00:00', 6, 2.0, 'x', 2.9, 0.01, 'yellow', 'ewma', [], '2020-01-01 21:00:10', '2020-01-01 21:00:10', 1)",
        )
        .execute()
        .await
        .unwrap();
    let v = f.ok("/v1/alerts?since=2020-01-01T00:00:00%2B08:00").await;
    let alerts = v["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2, "{v}");
    assert_eq!(alerts[0]["id"], "a2");
    assert!(alerts[0]["subtype"].is_null());
    assert_eq!(
        (alerts[1]["observed"].as_u64(), alerts[1]["level"].as_str()),
        (Some(7), Some("red"))
    );
    assert_eq!(alerts[1]["window_start"], "2020-01-01T02:00:00+08:00");
    assert_eq!(alerts[1]["area_zh"], "虹桥镇");
    let v = f.ok("/v1/alerts?since=2020-01-01T12:00:00%2B08:00").await;
    assert_eq!(v["alerts"].as_array().unwrap().len(), 1);

    // Report over the day: categories, dispute share, night share.
    let v = f
        .ok("/v1/report?from=2020-01-01&to=2020-01-02&min_count=1")
        .await;
    assert_eq!(v["total"]["count"], 6, "{v}");
    assert_eq!(v["dispute_share"].as_f64(), Some(0.3333), "{v}");
    assert_eq!(v["night"]["count"], 3, "{v}"); // 00:30, 02:59:59, 21:05
    assert_eq!(v["top_compounds"]["burglary"][0]["code"], HONGCHUN);
    f.drop_db().await;
}

/// The same question asked of `/v1/counts` and of the BI views (`sum(events)`), as
/// `key → count` maps; keys are the API's row fields joined by `|` (a day bucket as its date).
async fn api_counts(f: &Fixture, uri: &str, keys: &[&str]) -> BTreeMap<String, u64> {
    let v = f.ok(uri).await;
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key: Vec<String> = keys
                .iter()
                .map(|k| {
                    let s = r[*k].as_str().unwrap_or("").to_owned();
                    if *k == "bucket" {
                        s[..10].to_owned()
                    } else {
                        s
                    }
                })
                .collect();
            (key.join("|"), r["count"].as_u64().unwrap())
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

async fn view_counts(f: &Fixture, sql: &str) -> BTreeMap<String, u64> {
    let rows: Vec<(String, u64)> = f.client.query(sql).fetch_all().await.unwrap();
    rows.into_iter().filter(|(_, n)| *n > 0).collect()
}

/// The BI views answer every question exactly like the API: before sealing, with sealed days,
/// and after a late event unsealed one.
async fn assert_views_equal_api(f: &Fixture, when: &str) {
    let in_range = "day >= '2019-12-31' AND day < '2020-01-02'";
    let checks: Vec<(String, Vec<&str>, String)> = vec![
        (
            format!("/v1/counts?{DAY_RANGE}&bucket=day"),
            vec!["bucket"],
            format!("SELECT toString(day) AS k, sum(events) FROM ?view WHERE {in_range} GROUP BY k"),
        ),
        (
            format!("/v1/counts?{DAY_RANGE}&by=town"),
            vec!["town"],
            format!("SELECT town_code AS k, sum(events) FROM ?view WHERE {in_range} GROUP BY k"),
        ),
        (
            format!("/v1/counts?{DAY_RANGE}&by=category,town&category=CRIM,DSP"),
            vec!["category", "town"],
            format!("SELECT concat(category, '|', town_code) AS k, sum(events) FROM ?view WHERE {in_range} AND category IN ('CRIM', 'DSP') GROUP BY k"),
        ),
        (
            format!("/v1/counts?{DAY_RANGE}&by=source,department"),
            vec!["source", "department"],
            format!("SELECT concat(source, '|', department) AS k, sum(events) FROM ?view WHERE {in_range} GROUP BY k"),
        ),
        (
            "/v1/counts?from=2018-12-01T00:00:00%2B08:00&to=2020-02-01T00:00:00%2B08:00&by=subtype".to_owned(),
            vec!["subtype"],
            "SELECT subtype AS k, sum(events) FROM ?view WHERE day >= '2018-12-01' AND day < '2020-02-01' GROUP BY k".to_owned(),
        ),
    ];
    for (uri, keys, sql) in &checks {
        let api = api_counts(f, uri, keys).await;
        assert!(!api.is_empty(), "{when}: {uri} has rows");
        for view in ["bi_counts_daily", "bi_counts_hourly"] {
            let got = view_counts(f, &sql.replace("?view", view)).await;
            assert_eq!(got, api, "{when}: {view} differs from {uri}");
        }
        // Raw events, one row each: the same numbers with count().
        let raw = view_counts(
            f,
            &sql.replace("?view", "bi_incidents")
                .replace("sum(events)", "toUInt64(count())"),
        )
        .await;
        assert_eq!(raw, api, "{when}: bi_incidents differs from {uri}");
    }
}

#[tokio::test]
async fn bi_views_equal_the_api_with_live_sealed_and_unsealed_days() {
    let f = Fixture::new().await;
    assert_views_equal_api(&f, "live rollups only").await;
    let sealed = seal(&f).await;
    assert!(sealed.contains(&"2020-01-01".to_owned()), "{sealed:?}");
    let from_seals: u64 = f
        .client
        .query("SELECT toUInt64(countIf(sealed = 1)) FROM bi_counts_daily")
        .fetch_one()
        .await
        .unwrap();
    assert!(from_seals > 0, "the daily view reads sealed days");
    assert_views_equal_api(&f, "sealed days").await;
    // A late event reaches a sealed day: the day is read live again, by the API and the view.
    let late = Ev {
        id: 900,
        at: "2020-01-01 15:00:00",
        subtype: "DSP_NEIGHBOUR",
        town: HONGQIAO,
        compound: None,
        point: P_HONGQIAO,
        keywords: &[],
    };
    insert(&f.client, &[&late]).await;
    assert_views_equal_api(&f, "a sealed day with a late event").await;
    let after = api_counts(&f, &format!("/v1/counts?{DAY_RANGE}&by=town"), &["town"]).await;
    assert_eq!(after[HONGQIAO], 4, "the late event counts: {after:?}");

    // Labels: every level, in Chinese and English.
    let (town_zh, town_en, category_zh, subtype_en): (String, String, String, String) = f
        .client
        .query("SELECT town_zh, town_en, category_zh, subtype_en FROM bi_incidents WHERE town_code = ? LIMIT 1")
        .bind(QIBAO)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(
        (town_zh.as_str(), town_en.as_str()),
        ("七宝镇", "Qibao Town")
    );
    assert!(!category_zh.is_empty() && !subtype_en.is_empty());
    let compound_zh: String = f
        .client
        .query("SELECT any(compound_zh) FROM bi_incidents WHERE compound_id = ?")
        .bind(HONGCHUN)
        .fetch_one()
        .await
        .unwrap();
    assert!(!compound_zh.is_empty(), "compound label");
    f.drop_db().await;
}

/// What the `bi_readonly` profile allows (deploy/local/clickhouse/users.xml): the BI views are
/// readable with the per-query settings drivers send; writes and DDL are refused. The profile's
/// `readonly = 2` is applied per query here, because the user itself exists only once the server
/// was started with the new users.xml (`make up`); when it exists, it is checked too.
#[tokio::test]
async fn the_bi_profile_reads_the_views_and_cannot_write() {
    let f = Fixture::new().await;
    let bi = f.client.clone().with_setting("readonly", "2");
    for view in [
        "bi_counts_hourly",
        "bi_counts_daily",
        "bi_incidents",
        "bi_alerts",
        "bi_dead_letters",
    ] {
        let n: u64 = bi
            .clone()
            .with_setting("max_execution_time", "60")
            .query(&format!("SELECT toUInt64(count()) FROM {view}"))
            .fetch_one()
            .await
            .unwrap_or_else(|e| panic!("{view}: {e}"));
        if view == "bi_incidents" {
            assert_eq!(n, 8, "one row per distinct event");
        }
    }
    let (columns, bare): (u64, u64) = bi
        .query("SELECT toUInt64(count()), toUInt64(countIf(comment = '')) FROM system.columns WHERE database = currentDatabase() AND startsWith(table, 'bi_')")
        .fetch_one()
        .await
        .unwrap();
    assert!(columns > 100, "{columns} columns");
    assert_eq!(
        bare, 0,
        "every column of the bi_* views has a comment BI tools show"
    );
    let write = bi
        .query("INSERT INTO dead_letter_replays (topic) VALUES ('x')")
        .execute()
        .await;
    assert!(write.is_err(), "readonly = 2 refuses writes");
    let ddl = bi.query("DROP TABLE bi_alerts").execute().await;
    assert!(ddl.is_err(), "readonly = 2 refuses DDL");

    let env = TestEnv::from_env();
    let user = env
        .clickhouse()
        .with_user("bi_readonly")
        .with_password("pingan-bi");
    match user.query("SELECT 1").fetch_one::<u8>().await {
        Ok(_) => {
            let write = user
                .query(&format!(
                    "CREATE TABLE {}.x (a UInt8) ENGINE = Memory",
                    f.db
                ))
                .execute()
                .await;
            assert!(write.is_err(), "bi_readonly cannot create tables");
            let readonly: String = user
                .query("SELECT value FROM system.settings WHERE name = 'readonly'")
                .fetch_one()
                .await
                .unwrap();
            assert_eq!(readonly, "2");
        }
        Err(e) => eprintln!(
            "bi_readonly is not on this server yet (restart it with deploy/local/clickhouse/users.xml): {e}"
        ),
    }
    f.drop_db().await;
}
