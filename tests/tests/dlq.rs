//! Dead letters you can act on, against real Kafka and ClickHouse: a batch with one record the
//! server rejects stores all the others (the batch is split, not dead-lettered whole); the bad
//! record reaches `dead_letters` and `pingan dlq list`; after the fix, `pingan dlq replay` sends
//! it through the normal path and it is counted exactly once — also when replayed twice; an
//! unreadable record is corrected by hand and its fixed bytes replayed (`--payload`).

use std::process::Command;
use std::time::Duration;

use chrono::TimeZone;
use pingan_aggregator::AggregatorConfig;
use pingan_aggregator::dead_letters::DeadLetterStoreConfig;
use pingan_pipeline::metrics::StageMetrics;
use pingan_pipeline::producer::{OutRecord, Publisher};
use pingan_tests::{TestEnv, unique, wait_until};
use tokio_util::sync::CancellationToken;

/// The description that the test's server-side check refuses.
const POISON: &str = "POISON-pill";

fn event(i: u128, description: &str) -> pingan_domain::events::EnrichedEvent {
    let t = pingan_domain::time::shanghai()
        .with_ymd_and_hms(2019, 12, 30, 10, 0, 0)
        .unwrap()
        // A minute apart: the batch spans December 2019 and January 2020 (two INSERTs), and
        // the bad record (i = 10,000) is in January, after December was stored.
        + chrono::Duration::minutes(i as i64);
    let mut e = pingan_tests::enriched_event(
        uuid::Uuid::from_u128(0xd1a0_0000_0000_0000_0000_0000_0000_0000 + i),
        Some("310112102"),
        "CRIM",
        "CRIM_PICKPOCKET",
        t,
        "测试",
    );
    e.description = description.into();
    e
}

async fn count(client: &clickhouse::Client, sql: &str) -> u64 {
    client.query(sql).fetch_one().await.unwrap()
}

fn pingan(env: &TestEnv, db: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(pingan_tests::pingan_bin())
        .args(args)
        .env("PINGAN__KAFKA__BOOTSTRAP_SERVERS", &env.kafka)
        .env("PINGAN__CLICKHOUSE__URL", &env.clickhouse_url)
        .env("PINGAN__CLICKHOUSE__DATABASE", db)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_record_is_isolated_listed_replayed_after_the_fix_and_counted_once() {
    let _infra = pingan_tests::infra_shared().await;
    let env = TestEnv::from_env();
    let topic = unique("pingan_t_enriched");
    let dlq = format!("{topic}.dlq");
    // One partition: the good records and the bad one share batches.
    env.create_topic(&topic, 1).await;
    env.create_topic(&dlq, 1).await;
    let ch = env.migrated_database().await;
    let client = pingan_warehouse::client(&ch, pingan_warehouse::Role::Writer);
    // A server-side check that refuses one record's data (computed on INSERT, before anything is
    // written): ClickHouse answers "Cannot parse …", a data rejection of the whole INSERT.
    client
        .query(&format!(
            "ALTER TABLE incidents ADD COLUMN poison_check UInt8 DEFAULT toUInt8(if(description = '{POISON}', 'x', '1'))"
        ))
        .execute()
        .await
        .unwrap();

    let mut evs: Vec<_> = (0..3_000).map(|i| event(i, "正常")).collect();
    let poison = event(10_000, POISON);
    evs.insert(1_234, poison.clone());
    let p = Publisher::new(&env.kafka_config(), "test", Duration::from_secs(60)).unwrap();
    let payloads: Vec<Vec<u8>> = evs.iter().map(|e| serde_json::to_vec(e).unwrap()).collect();
    p.publish(payloads.iter().map(|v| OutRecord {
        topic: &topic,
        key: Some(b"310112102"),
        payload: v,
        headers: &[],
    }))
    .await
    .unwrap();
    // And one record no stage can read.
    p.publish([OutRecord {
        topic: &topic,
        key: Some(b"x"),
        payload: b"{not json",
        headers: &[],
    }])
    .await
    .unwrap();
    p.flush(Duration::from_secs(5)).unwrap();

    let config = AggregatorConfig {
        topic: topic.clone(),
        group_id: unique("pingan_t_agg"),
        batch_max_events: 10_000,
        batch_max_age_ms: 1_000,
        insert_timeout_ms: 5_000,
        admin_listen: None,
        dead_letters: DeadLetterStoreConfig {
            topics: vec![dlq.clone()],
            ..DeadLetterStoreConfig::default()
        },
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    let registry = prometheus::Registry::new();
    let settings = pingan_aggregator::AggregatorSettings {
        config,
        kafka: env.kafka_config(),
        clickhouse: ch.clone(),
        registry: registry.clone(),
        stage_metrics: StageMetrics::register(&registry).unwrap(),
    };
    let sd = shutdown.clone();
    let task = tokio::spawn(async move { pingan_aggregator::run(settings, sd).await });

    let c = client.clone();
    wait_until(
        "3,000 good events stored and 2 dead letters in ClickHouse",
        Duration::from_secs(90),
        || {
            let c = c.clone();
            async move {
                count(&c, "SELECT uniqExact(event_id) FROM incidents").await >= 3_000
                    && count(&c, "SELECT count() FROM dead_letters FINAL").await >= 2
            }
        },
    )
    .await;
    let poison_id = poison.event_id.to_string();
    assert_eq!(
        count(&client, "SELECT uniqExact(event_id) FROM incidents").await,
        3_000,
        "every good record of the rejected batch is stored"
    );
    assert_eq!(
        count(
            &client,
            &format!("SELECT count() FROM incidents WHERE event_id = toUUID('{poison_id}')")
        )
        .await,
        0
    );
    let (rows, positions): (u64, u64) = client
        .query("SELECT count(), uniqExact(kafka_offset) FROM insert_audit")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((rows, positions), (3_000, 3_000), "no record stored twice");
    let splits = registry
        .gather()
        .iter()
        .find(|f| f.name() == "pingan_stage_split_writes_total")
        .map_or(0.0, |f| {
            f.get_metric()
                .iter()
                .map(|m| m.get_counter().get_value())
                .sum()
        });
    assert!(splits >= 1.0, "the rejected batch was split");

    // The dead letters are stored with their reason, stage and original bytes, and listed.
    let stored: Vec<(String, String, String)> = client
        .query("SELECT reason, stage, payload FROM dead_letters FINAL ORDER BY `offset`")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[0].0, "clickhouse_rejected");
    assert_eq!(stored[0].1, "aggregator");
    assert_eq!(
        stored[0].2.as_bytes(),
        payloads[1_234].as_slice(),
        "the original bytes"
    );
    assert_eq!(stored[1].0, "invalid_json");
    let (ok, listed) = pingan(
        &env,
        &ch.database,
        &["dlq", "list", "--json", "--topic", &topic, "--since", "1h"],
    );
    assert!(ok, "{listed}");
    let letters: Vec<serde_json::Value> = listed
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 2, "{listed}");
    let letter = letters
        .iter()
        .find(|l| l["reason"] == "clickhouse_rejected")
        .unwrap();
    assert_eq!(letter["event_id"], poison_id.as_str());
    let id = letter["id"].as_str().unwrap().to_owned();
    let unreadable_id = letters
        .iter()
        .find(|l| l["reason"] == "invalid_json")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, filtered) = pingan(
        &env,
        &ch.database,
        &["dlq", "list", "--json", "--reason", "invalid_json"],
    );
    assert!(
        ok && filtered.lines().filter(|l| l.starts_with('{')).count() == 1,
        "{filtered}"
    );

    // Fix the cause, then replay: the record takes the normal path and is counted once.
    client
        .query("ALTER TABLE incidents DROP COLUMN poison_check")
        .execute()
        .await
        .unwrap();
    let (ok, out) = pingan(&env, &ch.database, &["dlq", "replay", &id]);
    assert!(ok && out.contains("replayed 1 dead letter"), "{out}");
    let audit_of_poison =
        format!("SELECT count() FROM insert_audit WHERE event_id = toUUID('{poison_id}')");
    let c = client.clone();
    let q = audit_of_poison.clone();
    wait_until(
        "the replayed record is stored",
        Duration::from_secs(60),
        || {
            let (c, q) = (c.clone(), q.clone());
            async move { count(&c, &q).await >= 1 }
        },
    )
    .await;
    // Replaying it again is refused …
    let (ok, out) = pingan(&env, &ch.database, &["dlq", "replay", &id]);
    assert!(ok && out.contains("already replayed"), "{out}");
    // … and forced, it arrives a second time but is still one event in every count.
    let (ok, out) = pingan(&env, &ch.database, &["dlq", "replay", &id, "--again"]);
    assert!(ok && out.contains("replayed 1 dead letter"), "{out}");
    let c = client.clone();
    let q = audit_of_poison.clone();
    wait_until(
        "the second replay is stored too",
        Duration::from_secs(60),
        || {
            let (c, q) = (c.clone(), q.clone());
            async move { count(&c, &q).await >= 2 }
        },
    )
    .await;
    // The unreadable record is fixed by hand and its corrected bytes replayed.
    let fixed = event(20_000, "修好了");
    let fixed_path = std::env::temp_dir().join(format!("{}.json", unique("pingan_t_fixed")));
    std::fs::write(&fixed_path, serde_json::to_vec(&fixed).unwrap()).unwrap();
    let (ok, out) = pingan(
        &env,
        &ch.database,
        &[
            "dlq",
            "replay",
            &unreadable_id,
            "--payload",
            fixed_path.to_str().unwrap(),
            "--note",
            "fixed by hand",
        ],
    );
    let _ = std::fs::remove_file(&fixed_path);
    assert!(ok && out.contains("replayed 1 dead letter"), "{out}");
    let c = client.clone();
    wait_until(
        "the corrected record is stored",
        Duration::from_secs(60),
        || {
            let c = c.clone();
            async move { count(&c, "SELECT uniqExact(event_id) FROM incidents").await >= 3_002 }
        },
    )
    .await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(
        count(&client, "SELECT uniqExact(event_id) FROM incidents").await,
        3_002
    );
    assert_eq!(
        count(
            &client,
            "SELECT toUInt64(uniqExactMerge(events)) FROM counts_hour"
        )
        .await,
        3_002,
        "the rollups count the replayed record once"
    );
    assert_eq!(
        count(&client, "SELECT count() FROM dead_letter_replays").await,
        3
    );
    assert_eq!(
        count(
            &client,
            "SELECT toUInt64(sum(edited)) FROM dead_letter_replays"
        )
        .await,
        1,
        "the corrected replay is marked as edited"
    );
    let (ok, out) = pingan(&env, &ch.database, &["dlq", "list", "--pending", "--json"]);
    assert!(ok, "{out}");
    let pending = out.lines().filter(|l| l.starts_with('{')).count();
    assert_eq!(pending, 0, "every dead letter was replayed: {out}");

    let _ = client
        .query(&format!("DROP DATABASE IF EXISTS {}", ch.database))
        .execute()
        .await;
}
