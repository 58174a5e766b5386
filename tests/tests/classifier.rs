//! The classifier service against the real broker: raw records in, enriched records out with the
//! codes the offline classifier gives; a poison record goes to the dead-letter topic and the stream
//! continues; after kill -9 and restarts no input event is missing from the output topic.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::TimeZone;
use pingan_classifier::enrich::{Enricher, RawEvent};
use pingan_domain::events::{CallRecord, EnrichedEvent, GeoPoint, TOPIC_CALLS};
use pingan_pipeline::producer::{OutRecord, Publisher};
use pingan_tests::{KillOnDrop, TestEnv, read_topic, unique};

const DESCRIPTIONS: &[&str] = &[
    "报警人称家中被撬门入室盗窃，丢了首饰",
    "有人冒充公检法说我涉嫌洗钱，让我转账到安全账户",
    "饭店门口有人喝多了打人",
    "楼上邻居半夜装修太吵，协商不成吵起来了",
    "七宝老街汤团店给错品种，顾客要求退钱发生纠纷",
    "小区门口车被堵住了，要求挪车",
    "厨房着火冒烟了",
    "老人走失了，穿灰色外套",
    "无声电话",
    "网上兼职刷单，垫付了三千块提现不了",
];

fn records(n: usize) -> Vec<CallRecord> {
    let tz = pingan_domain::time::shanghai();
    let base = tz.with_ymd_and_hms(2020, 1, 6, 8, 0, 0).unwrap();
    (0..n)
        .map(|i| CallRecord {
            schema: TOPIC_CALLS.into(),
            event_id: uuid::Uuid::from_u128(0xC1A5_0000_0000 + i as u128),
            call_id: Some(format!("T-{i}")),
            received_at: base + chrono::Duration::seconds(i as i64 * 37),
            ingested_at: chrono::Utc::now(),
            description: DESCRIPTIONS[i % DESCRIPTIONS.len()].into(),
            caller: None,
            address: None,
            location: (i % 3 == 0).then_some(GeoPoint {
                lat: 31.16 + (i % 7) as f64 * 0.01,
                lon: 121.35 + (i % 5) as f64 * 0.01,
            }),
            town_code: (i % 3 == 1).then(|| "310112102".to_owned()),
            station_code: None,
            operator_category: None,
            priority: None,
        })
        .collect()
}

fn spawn_classifier(env: &TestEnv, raw: &str, out: &str, group: &str) -> KillOnDrop {
    KillOnDrop(
        Command::new(pingan_tests::pingan_bin())
            .arg("classify")
            .env("PINGAN__KAFKA__BOOTSTRAP_SERVERS", &env.kafka)
            .env("PINGAN__CLASSIFIER__TOPICS", raw)
            .env("PINGAN__CLASSIFIER__OUTPUT_TOPIC", out)
            .env("PINGAN__CLASSIFIER__GROUP_ID", group)
            .env("PINGAN__CLASSIFIER__BATCH_MAX_EVENTS", "200")
            .env("PINGAN__CLASSIFIER__ADMIN_LISTEN", "")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn pingan classify"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_records_are_classified_poison_goes_to_the_dlq_and_kill_9_loses_nothing() {
    let env = TestEnv::from_env();
    let _infra = pingan_tests::infra_shared().await;
    let raw = unique("pingan_t_raw");
    let out = unique("pingan_t_enriched");
    for (t, p) in [(&raw, 4), (&format!("{raw}.dlq"), 1), (&out, 4)] {
        env.create_topic(t, p).await;
    }
    let recs = records(6_000);
    let payloads: Vec<(Vec<u8>, Vec<u8>)> = recs
        .iter()
        .map(|r| {
            (
                r.event_id.to_string().into_bytes(),
                serde_json::to_vec(r).unwrap(),
            )
        })
        .collect();
    let p = Publisher::new(&env.kafka_config(), "test", Duration::from_secs(60)).unwrap();
    p.publish(payloads[..3_000].iter().map(|(k, v)| OutRecord {
        topic: &raw,
        key: Some(k),
        payload: v,
        headers: &[],
    }))
    .await
    .unwrap();
    p.publish([OutRecord {
        topic: &raw,
        key: Some(b"poison"),
        payload: b"{\"schema\": \"pingan.call110.v1\", broken",
        headers: &[],
    }])
    .await
    .unwrap();
    p.publish(payloads[3_000..].iter().map(|(k, v)| OutRecord {
        topic: &raw,
        key: Some(k),
        payload: v,
        headers: &[],
    }))
    .await
    .unwrap();

    let group = unique("pingan_t_cls");
    // Kill -9 twice while it works, then let a third instance finish.
    for _ in 0..2 {
        let child = spawn_classifier(&env, &raw, &out, &group);
        let (env2, out2) = (env.clone(), out.clone());
        let seen = tokio::task::spawn_blocking(move || {
            let mut n = 0;
            read_topic(&env2, &out2, Duration::from_secs(60), |_| {
                n += 1;
                n >= 500
            })
            .len()
        })
        .await
        .unwrap();
        assert!(seen >= 500, "the classifier makes progress before the kill");
        drop(child);
    }
    let child = spawn_classifier(&env, &raw, &out, &group);
    let want: BTreeSet<uuid::Uuid> = recs.iter().map(|r| r.event_id).collect();
    let got: BTreeMap<uuid::Uuid, EnrichedEvent> = {
        let (env2, out2, want2) = (env.clone(), out.clone(), want.clone());
        let msgs = tokio::task::spawn_blocking(move || {
            let mut ids = BTreeSet::new();
            read_topic(&env2, &out2, Duration::from_secs(180), |(p, _)| {
                if let Ok(e) = serde_json::from_slice::<EnrichedEvent>(p) {
                    ids.insert(e.event_id);
                }
                ids.len() >= want2.len()
            })
        })
        .await
        .unwrap();
        msgs.iter()
            .filter_map(|(p, _)| serde_json::from_slice::<EnrichedEvent>(p).ok())
            .map(|e| (e.event_id, e))
            .collect()
    };
    drop(child);
    let missing: Vec<_> = want
        .iter()
        .filter(|id| !got.contains_key(id))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "after kill -9 and restarts every input event is on the output topic; missing e.g. {missing:?}"
    );
    assert_eq!(got.len(), want.len(), "nothing invented");

    // Same codes as the offline classifier (deterministic, no wall clock).
    let mut offline = Enricher::builtin().unwrap();
    for r in recs.iter().step_by(97) {
        // Through JSON, as the service receives it.
        let r: pingan_domain::events::CallRecord =
            serde_json::from_slice(&serde_json::to_vec(r).unwrap()).unwrap();
        let (expected, _) = offline.enrich(&RawEvent::Call(r.clone()));
        let e = &got[&r.event_id];
        assert_eq!(
            (&e.category, &e.subtype, &e.department),
            (&expected.category, &expected.subtype, &expected.department),
            "{}",
            r.description
        );
        assert_eq!(
            e.area, expected.area,
            "{} {:?} {:?}",
            r.description, r.location, r.town_code
        );
    }

    let env2 = env.clone();
    let dlq_topic = format!("{raw}.dlq");
    let dlq = tokio::task::spawn_blocking(move || {
        read_topic(&env2, &dlq_topic, Duration::from_secs(20), |_| true)
    })
    .await
    .unwrap();
    assert_eq!(dlq.len(), 1, "the poison record, once");
    assert_eq!(dlq[0].1, "invalid_json");
}
