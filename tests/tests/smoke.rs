//! Smoke tests: the real servers work with the chosen clients and the pipeline's plumbing.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clickhouse::Row;
use pingan_pipeline::backoff::Backoff;
use pingan_pipeline::batch::BatchId;
use pingan_pipeline::builder::StageBuilder;
use pingan_pipeline::metrics::StageMetrics;
use pingan_pipeline::producer::{OutRecord, Publisher};
use pingan_pipeline::runner::RetryPolicy;
use pingan_pipeline::source::SourceSettings;
use pingan_pipeline::stage::{
    Ack, Disposition, Inbound, Outbound, Outcome, RecordError, Sink, StageError, Transform,
};
use pingan_tests::{TestEnv, unique, wait_until};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Ping {
    n: u32,
}

struct Identity;
impl Transform for Identity {
    type In = Ping;
    type Out = u32;
    fn transform(&mut self, input: Inbound<Ping>) -> Result<Outcome<u32>, RecordError> {
        Ok(Outcome::Emit(Outbound {
            source: input.meta,
            key: None,
            value: input.value.n,
        }))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("injected failure")]
struct Injected;
impl StageError for Injected {
    fn disposition(&self) -> Disposition {
        Disposition::Retry
    }
    fn code(&self) -> &'static str {
        "injected"
    }
}

/// Collects items; fails the first `fail_first` writes to prove offsets wait for durability.
#[derive(Clone, Default)]
struct Collect {
    items: Arc<Mutex<Vec<u32>>>,
    batches: Arc<Mutex<Vec<BatchId>>>,
    fail_first: Arc<Mutex<u32>>,
}

impl Sink for Collect {
    type Item = u32;
    type Error = Injected;
    async fn write(&mut self, id: &BatchId, items: &[Outbound<u32>]) -> Result<Ack, Injected> {
        {
            let mut f = self.fail_first.lock().unwrap();
            if *f > 0 {
                *f -= 1;
                return Err(Injected);
            }
        }
        self.items
            .lock()
            .unwrap()
            .extend(items.iter().map(|o| o.value));
        self.batches.lock().unwrap().push(id.clone());
        Ok(Ack::StoreOffsets)
    }
}

fn committed(env: &TestEnv, group: &str, topic: &str, partitions: i32) -> i64 {
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &env.kafka)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    got.elements()
        .iter()
        .map(|e| {
            if let Offset::Offset(o) = e.offset() {
                o
            } else {
                0
            }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_round_trip_with_idempotent_producer_and_offsets_stored_after_the_sink() {
    let env = TestEnv::from_env();
    let _infra = pingan_tests::infra_shared().await;
    let topic = unique("pingan_t_smoke");
    let group = unique("pingan_t_group");
    env.create_topic(&topic, 3).await;

    let publisher = Publisher::new(&env.kafka_config(), "test", Duration::from_secs(30)).unwrap();
    let payloads: Vec<(String, Vec<u8>)> = (0..300u32)
        .map(|n| (format!("k{n}"), serde_json::to_vec(&Ping { n }).unwrap()))
        .collect();
    publisher
        .publish(payloads.iter().map(|(k, p)| OutRecord {
            topic: &topic,
            key: Some(k.as_bytes()),
            payload: p,
            headers: &[],
        }))
        .await
        .unwrap();
    publisher.flush(Duration::from_secs(5)).unwrap();

    let registry = prometheus::Registry::new();
    let metrics = StageMetrics::register(&registry).unwrap();
    let sink = Collect::default();
    *sink.fail_first.lock().unwrap() = 2;
    let shutdown = CancellationToken::new();
    let stage = StageBuilder::new(
        SourceSettings {
            stage: "smoke",
            topics: vec![topic.clone()],
            group_id: group.clone(),
            max_events: 50,
            max_bytes: 1 << 20,
            max_age: Duration::from_millis(200),
            pace: None,
            max_ready: 4,
            drain_timeout: Duration::from_secs(5),
        },
        Identity,
        sink.clone(),
        metrics,
    )
    .retry(RetryPolicy {
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(50)),
        max_elapsed: Duration::from_secs(30),
        max_split_writes: 200,
    });
    let run = {
        let (kafka, shutdown) = (env.kafka_config(), shutdown.clone());
        tokio::spawn(async move { stage.run(&kafka, shutdown).await })
    };

    let items = sink.items.clone();
    wait_until(
        "all 300 records reach the sink",
        Duration::from_secs(60),
        || {
            let n = items.lock().unwrap().len();
            async move { n >= 300 }
        },
    )
    .await;
    // Offsets are committed by auto-commit (1 s) of the stored offsets.
    wait_until(
        "committed offsets cover all 300 records",
        Duration::from_secs(30),
        || {
            let c = committed(&env, &group, &topic, 3);
            async move { c == 300 }
        },
    )
    .await;
    shutdown.cancel();
    run.await.unwrap().unwrap();

    let got: BTreeSet<u32> = sink.items.lock().unwrap().iter().copied().collect();
    assert_eq!(
        got,
        (0..300).collect::<BTreeSet<_>>(),
        "every produced record arrives"
    );
    assert_eq!(
        sink.items.lock().unwrap().len(),
        300,
        "the failed writes were retried, not duplicated"
    );
    for b in sink.batches.lock().unwrap().iter() {
        assert!(
            b.last >= b.first && b.partition < 3,
            "batch {b} is one partition's range"
        );
    }
    let retries = registry
        .gather()
        .iter()
        .find(|f| f.name() == "pingan_stage_sink_retries_total")
        .map(|f| f.get_metric().len());
    assert_eq!(retries, Some(1), "retries are counted");
}

#[derive(Debug, Row, Serialize, Deserialize, PartialEq, Clone)]
struct ProbeRow {
    #[serde(with = "clickhouse::serde::uuid")]
    event_id: uuid::Uuid,
    event_time: u32,
    day: u16,
    source: String,
    town_code: Option<String>,
    tags: Vec<String>,
    score: f32,
    kafka_partition: u16,
    kafka_offset: u64,
}

#[tokio::test]
async fn clickhouse_insert_and_select_with_the_project_column_types() {
    let env = TestEnv::from_env();
    let _infra = pingan_tests::infra_shared().await;
    let db = unique("pingan_t");
    let client = env.clickhouse();
    client
        .query(&format!("CREATE DATABASE {db}"))
        .execute()
        .await
        .unwrap();
    client
        .query(&format!(
            "CREATE TABLE {db}.probe (event_id UUID, event_time DateTime('Asia/Shanghai'), day Date, source String, \
             town_code Nullable(String), tags Array(String), score Float32, kafka_partition UInt16, kafka_offset UInt64) \
             ENGINE = MergeTree PARTITION BY toYYYYMM(day) ORDER BY (event_time, event_id)"
        ))
        .execute()
        .await
        .unwrap();
    let rows: Vec<ProbeRow> = (0..100u64)
        .map(|i| ProbeRow {
            event_id: uuid::Uuid::now_v7(),
            event_time: 1_577_800_000 + i as u32,
            day: 18_262,
            source: if i % 2 == 0 {
                "call".into()
            } else {
                "qr".into()
            },
            town_code: if i % 3 == 0 {
                None
            } else {
                Some("310112102".into())
            },
            tags: vec!["night".into(), "七宝".into()],
            score: 0.5,
            kafka_partition: 1,
            kafka_offset: i,
        })
        .collect();
    let mut insert = client
        .clone()
        .with_database(&db)
        .insert::<ProbeRow>("probe")
        .await
        .unwrap();
    for r in &rows {
        insert.write(r).await.unwrap();
    }
    insert.end().await.unwrap();

    let back: Vec<ProbeRow> = client
        .query(&format!(
            "SELECT ?fields FROM {db}.probe ORDER BY kafka_offset"
        ))
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(back, rows);
    let (n, nulls, hour): (u64, u64, u8) = client
        .query(&format!("SELECT count(), countIf(isNull(town_code)), toHour(min(event_time)) FROM {db}.probe WHERE source IN ('call','qr')"))
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((n, nulls), (100, 34));
    assert_eq!(
        hour, 21,
        "1577800000 is 2019-12-31 21:46:40 in Asia/Shanghai"
    );
    client
        .query(&format!("DROP DATABASE {db}"))
        .execute()
        .await
        .unwrap();
}

/// The same statements `tests/chdb` runs on a current release, on this server (18.16 in CI):
/// the query API, the aggregator, alerting and maintenance, on a freshly migrated database.
#[tokio::test]
async fn every_sql_template_runs_on_the_server() {
    let env = TestEnv::from_env();
    let settings = env.migrated_database().await;
    let db = settings.database.clone();
    let client = env.clickhouse().with_database(&db);
    let templates = tokio::task::spawn_blocking(pingan_tests::all_sql_templates)
        .await
        .unwrap();
    assert!(templates.len() > 30, "{}", templates.len());
    let mut failed = Vec::new();
    for (name, sql) in &templates {
        // The client crate treats `?` as a placeholder; templates have none left.
        if let Err(e) = client.query(sql).execute().await {
            failed.push(format!("{name}: {e}"));
        }
    }
    let _ = client
        .query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute()
        .await;
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// `pingan topics` on the real broker: creates what is missing, raises partitions, never lowers
/// them, and refuses a replication factor the cluster cannot hold before creating anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_provisioned_as_configured_and_differences_reported() {
    use pingan_pipeline::topics::{TopicAction, TopicsConfig, TopicsError, provision};
    let env = TestEnv::from_env();
    let kafka = env.kafka_config();
    let name = unique("topics");
    let dlq = format!("{name}.dlq");
    let topics = [name.as_str(), dlq.as_str()];
    let timeout = Duration::from_secs(30);
    let one_broker = |partitions| TopicsConfig {
        partitions,
        replication_factor: 1,
        min_insync_replicas: 1,
    };

    let missing = provision(&kafka, &one_broker(2), &topics, true, timeout)
        .await
        .unwrap();
    assert!(missing.iter().all(|r| r.action == TopicAction::Missing));

    let created = provision(&kafka, &one_broker(2), &topics, false, timeout)
        .await
        .unwrap();
    for r in &created {
        assert_eq!(r.action, TopicAction::Created, "{r:?}");
        assert_eq!((r.partitions, r.replication_factor), (2, 1));
    }
    let again = provision(&kafka, &one_broker(2), &topics, false, timeout)
        .await
        .unwrap();
    for r in &again {
        assert_eq!(r.action, TopicAction::Unchanged, "{r:?}");
        assert!(r.problems.is_empty(), "{r:?}");
        assert_eq!(r.min_insync_replicas, Some(1), "read back from the broker");
    }

    let raised = provision(&kafka, &one_broker(3), &topics, false, timeout)
        .await
        .unwrap();
    assert!(
        raised
            .iter()
            .all(|r| r.action == TopicAction::PartitionsRaised)
    );
    // Fewer configured partitions than exist: reported, never removed.
    let fewer = provision(&kafka, &one_broker(2), &topics, false, timeout)
        .await
        .unwrap();
    for r in &fewer {
        assert_eq!(r.partitions, 3);
        assert!(
            r.problems[0].contains("3 partitions, configured 2"),
            "{r:?}"
        );
    }
    // The default layout (RF 3) is reported as a difference by --check, and refused before
    // anything is created on a one-broker cluster.
    let checked = provision(&kafka, &TopicsConfig::default(), &topics, true, timeout)
        .await
        .unwrap();
    assert!(
        checked.iter().all(|r| r
            .problems
            .iter()
            .any(|p| p.contains("replication factor 1"))),
        "{checked:?}"
    );
    let other = unique("topics-rf3");
    let refused = provision(
        &kafka,
        &TopicsConfig::default(),
        &[other.as_str()],
        false,
        timeout,
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(TopicsError::TooFewBrokers {
                wanted: 3,
                brokers: 1
            })
        ),
        "{refused:?}"
    );
    let after = provision(&kafka, &one_broker(1), &[other.as_str()], true, timeout)
        .await
        .unwrap();
    assert_eq!(after[0].action, TopicAction::Missing, "nothing was created");
}

/// The command an operator runs: against `make up`'s broker (RF 1) `--check` passes with the
/// development layout and fails, listing every topic, with the production default.
#[test]
fn the_topics_command_checks_the_pipeline_topics() {
    let env = TestEnv::from_env();
    let run = |extra: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(pingan_tests::pingan_bin());
        cmd.args(["topics", "--check"])
            .env("PINGAN__KAFKA__BOOTSTRAP_SERVERS", &env.kafka);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let dev = run(&[
        ("PINGAN__TOPICS__REPLICATION_FACTOR", "1"),
        ("PINGAN__TOPICS__MIN_INSYNC_REPLICAS", "1"),
    ]);
    let out = String::from_utf8_lossy(&dev.stdout);
    assert!(
        dev.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&dev.stderr)
    );
    for t in [
        "pingan.call110.v1",
        "pingan.enriched.v1.dlq",
        "pingan.alerts.v1",
    ] {
        assert!(out.contains(t), "{out}");
    }
    assert!(out.contains("warning: replication factor 1"), "{out}");
    let prod = run(&[]);
    let out = String::from_utf8_lossy(&prod.stdout);
    assert_eq!(prod.status.code(), Some(1), "{out}");
    assert_eq!(
        out.matches("differs: replication factor 1, configured 3")
            .count(),
        7,
        "{out}"
    );
}
