//! Aggregator against real Kafka and ClickHouse: every event exactly once, rollups equal distinct
//! raw counts, poison records to the dead-letter topic, and the fault scenarios of
//! research/RELIABILITY.md §5.1 (kill -9 of the aggregator, ClickHouse and broker restarts,
//! duplicate storm).

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone};
use pingan_aggregator::AggregatorConfig;
use pingan_domain::area::AreaIndex;
use pingan_domain::events::{EnrichedEvent, Source};
use pingan_domain::taxonomy::Taxonomy;
use pingan_pipeline::metrics::StageMetrics;
use pingan_pipeline::producer::{OutRecord, Publisher};
use pingan_runtime::config::ClickHouseConfig;
use pingan_tests::lossy::LossyProxy;
use pingan_tests::{KillOnDrop, TestEnv, services, unique, wait_until};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio_util::sync::CancellationToken;

/// Synthetic enriched events: random subtypes, towns and times over a few days of Dec 2019.
fn events(n: usize, seed: u64) -> Vec<EnrichedEvent> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tax = Taxonomy::builtin();
    let towns = AreaIndex::builtin().towns();
    let base = pingan_domain::time::shanghai()
        .with_ymd_and_hms(2019, 12, 29, 0, 0, 0)
        .unwrap();
    (0..n)
        .map(|_| {
            let s = &tax.subtypes()[rng.random_range(0..tax.subtypes().len())];
            let town = if rng.random_bool(0.05) {
                None
            } else {
                Some(towns[rng.random_range(0..towns.len())].code.clone())
            };
            let t: DateTime<FixedOffset> =
                base + chrono::Duration::seconds(rng.random_range(0..4 * 86_400));
            let mut e = pingan_tests::enriched_event(
                uuid::Uuid::from_u128(rng.random()),
                town.as_deref(),
                &s.category,
                &s.code,
                t,
                "测试",
            );
            e.priority = s.default_priority;
            if rng.random_bool(0.2) {
                e.source = Source::Qr;
            }
            e
        })
        .collect()
}

struct Fixture {
    env: TestEnv,
    topic: String,
    group: String,
    ch: ClickHouseConfig,
}

impl Fixture {
    async fn new() -> Fixture {
        Fixture::on_topic("pingan_t_enriched", 4).await
    }

    /// A fixture on a fresh topic named after `prefix`, with `partitions` partitions.
    async fn on_topic(prefix: &str, partitions: i32) -> Fixture {
        let env = TestEnv::from_env();
        let topic = unique(prefix);
        env.create_topic(&topic, partitions).await;
        env.create_topic(&format!("{topic}.dlq"), 1).await;
        let ch = env.migrated_database().await;
        Fixture {
            env,
            topic,
            group: unique("pingan_t_agg"),
            ch,
        }
    }

    fn config(&self) -> AggregatorConfig {
        AggregatorConfig {
            topic: self.topic.clone(),
            group_id: self.group.clone(),
            batch_max_events: 500,
            batch_max_age_ms: 200,
            insert_timeout_ms: 5_000,
            admin_listen: None,
            dead_letters: pingan_aggregator::dead_letters::DeadLetterStoreConfig {
                topics: vec![format!("{}.dlq", self.topic)],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    async fn produce(&self, evs: &[EnrichedEvent], extra_raw: &[&[u8]]) {
        let p = Publisher::new(&self.env.kafka_config(), "test", Duration::from_secs(60)).unwrap();
        let payloads: Vec<(Vec<u8>, Vec<u8>)> = evs
            .iter()
            .map(|e| {
                (
                    e.area.town_code.clone().unwrap_or_default().into_bytes(),
                    serde_json::to_vec(e).unwrap(),
                )
            })
            .collect();
        for chunk in payloads.chunks(1000) {
            p.publish(chunk.iter().map(|(k, v)| OutRecord {
                topic: &self.topic,
                key: Some(k),
                payload: v,
                headers: &[],
            }))
            .await
            .unwrap();
        }
        p.publish(extra_raw.iter().map(|v| OutRecord {
            topic: &self.topic,
            key: Some(b"poison"),
            payload: v,
            headers: &[],
        }))
        .await
        .unwrap();
        p.flush(Duration::from_secs(5)).unwrap();
    }

    fn client(&self) -> clickhouse::Client {
        pingan_warehouse::client(&self.ch, pingan_warehouse::Role::Writer)
    }

    async fn distinct_events(&self) -> u64 {
        self.client()
            .query("SELECT uniqExact(event_id) FROM incidents")
            .fetch_one()
            .await
            .unwrap_or(0)
    }

    /// (inserted rows, distinct (partition, offset)) from the insert audit, which is never folded:
    /// equal when no Kafka record was ever inserted twice.
    async fn rows_and_positions(&self) -> (u64, u64) {
        self.client()
            .query("SELECT count(), uniqExact(kafka_partition, kafka_offset) FROM insert_audit")
            .fetch_one()
            .await
            .unwrap()
    }

    /// The insert audit holds each Kafka record exactly once (`why` says which fault must not
    /// have duplicated one), `rows` of them, and the rollups equal distinct raw counts.
    async fn assert_stored_once(&self, rows: u64, evs: &[EnrichedEvent], why: &str) {
        let (inserted, positions) = self.rows_and_positions().await;
        assert_eq!(inserted, positions, "{why}");
        assert_eq!(inserted, rows, "every valid record has its row");
        self.assert_rollups_match(evs).await;
    }

    /// Runs the aggregator in this process against `ch` until [`InProcess::stop`].
    fn run_in_process(&self, ch: ClickHouseConfig) -> InProcess {
        let shutdown = CancellationToken::new();
        let registry = prometheus::Registry::new();
        let stage = StageMetrics::register(&registry).unwrap();
        let settings = pingan_aggregator::AggregatorSettings {
            config: self.config(),
            kafka: self.env.kafka_config(),
            clickhouse: ch,
            registry: registry.clone(),
            stage_metrics: stage,
        };
        let sd = shutdown.clone();
        let task = tokio::spawn(async move { pingan_aggregator::run(settings, sd).await });
        InProcess {
            shutdown,
            registry,
            task,
        }
    }

    async fn wait_for(&self, n: u64, timeout: Duration) {
        wait_until(
            &format!("{n} distinct events in ClickHouse"),
            timeout,
            || async move { self.distinct_events().await >= n },
        )
        .await;
    }

    /// Rollup counts per town × category × hour must equal distinct raw counts.
    async fn assert_rollups_match(&self, evs: &[EnrichedEvent]) {
        let mut expected: BTreeMap<(String, String, i64), BTreeSet<uuid::Uuid>> = BTreeMap::new();
        for e in evs {
            let hour = e.event_time.timestamp() / 3600 * 3600;
            expected
                .entry((
                    e.area.town_code.clone().unwrap_or_default(),
                    e.category.clone(),
                    hour,
                ))
                .or_default()
                .insert(e.event_id);
        }
        let rows: Vec<(String, String, u32, u64)> = self
            .client()
            .query("SELECT town_code, category, toUInt32(hour), uniqExactMerge(events) FROM counts_hour GROUP BY town_code, category, hour")
            .fetch_all()
            .await
            .unwrap();
        let got: BTreeMap<(String, String, i64), u64> = rows
            .into_iter()
            .map(|(t, c, h, n)| ((t, c, i64::from(h)), n))
            .collect();
        let want: BTreeMap<(String, String, i64), u64> = expected
            .into_iter()
            .map(|(k, v)| (k, v.len() as u64))
            .collect();
        assert_eq!(
            got, want,
            "rollup counts equal distinct raw counts per town × category × hour"
        );
        let raw: u64 = self
            .client()
            .query("SELECT uniqExact(event_id) FROM incidents")
            .fetch_one()
            .await
            .unwrap();
        let total: u64 = want.values().sum();
        assert_eq!(raw, total);
    }

    async fn drop_db(&self) {
        let _ = self
            .client()
            .query(&format!("DROP DATABASE IF EXISTS {}", self.ch.database))
            .execute()
            .await;
    }
}

/// An aggregator running as a task of the test.
struct InProcess {
    shutdown: CancellationToken,
    registry: prometheus::Registry,
    task: tokio::task::JoinHandle<Result<(), pingan_aggregator::AggregatorError>>,
}

impl InProcess {
    /// Shuts it down gracefully; it must stop without error.
    async fn stop(self) -> prometheus::Registry {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
        self.registry
    }
}

fn dlq_messages(env: &TestEnv, topic: &str) -> Vec<(Vec<u8>, String)> {
    pingan_tests::read_topic(
        env,
        &format!("{topic}.dlq"),
        Duration::from_secs(15),
        |_| true,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_lands_once_duplicates_never_count_twice_and_poison_goes_to_the_dlq() {
    let _infra = pingan_tests::infra_shared().await;
    let fx = Fixture::new().await;
    let evs = events(3_000, 1);
    // Duplicate storm: 10% of events re-sent with the same id and body.
    let mut sent = evs.clone();
    sent.extend(evs.iter().step_by(10).cloned());
    fx.produce(
        &sent,
        &[
            b"{not json",
            br#"{"schema":"pingan.enriched.v1","event_id":"x"}"#,
        ],
    )
    .await;

    let aggregator = fx.run_in_process(fx.ch.clone());
    fx.wait_for(3_000, Duration::from_secs(90)).await;
    let dlq = dlq_messages(&fx.env, &fx.topic);
    aggregator.stop().await;

    fx.assert_stored_once(
        sent.len() as u64,
        &evs,
        "no Kafka record was inserted twice",
    )
    .await;
    assert!(
        !dlq.is_empty(),
        "poison records reach the dead-letter topic"
    );
    assert!(
        dlq.iter()
            .all(|(_, r)| r == "invalid_json" || r == "schema_mismatch"),
        "{dlq:?}"
    );
    fx.drop_db().await;
}

/// The reply to an INSERT is lost and ClickHouse then stays unreachable for a moment: the sink
/// cannot learn whether the rows landed until it comes back, and must look before sending them
/// again (18.16 has no insert deduplication tokens). Deterministic twin of the kill -9 race in
/// `clickhouse_and_broker_restarts_mid_stream_lose_and_duplicate_nothing`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_whose_reply_is_lost_while_clickhouse_is_unreachable_is_never_sent_twice() {
    let _infra = pingan_tests::infra_shared().await;
    let fx = Fixture::new().await;
    let evs = events(6_000, 4);
    fx.produce(&evs[..1_000], &[]).await;
    let proxy = LossyProxy::start(fx.ch.url.trim_start_matches("http://")).await;
    let ch = ClickHouseConfig {
        url: proxy.url(),
        ..fx.ch.clone()
    };

    let aggregator = fx.run_in_process(ch);
    fx.wait_for(1_000, Duration::from_secs(60)).await;

    proxy.lose_insert_replies(3, Duration::from_millis(1_500));
    fx.produce(&evs[1_000..], &[]).await;
    fx.wait_for(6_000, Duration::from_secs(120)).await;
    let registry = aggregator.stop().await;

    assert_eq!(proxy.lost(), 3, "three INSERT replies were lost");
    let outcomes = |outcome: &str| -> f64 {
        registry
            .gather()
            .iter()
            .filter(|f| f.name() == "pingan_aggregator_insert_outcomes_total")
            .flat_map(|f| f.get_metric())
            .filter(|m| m.get_label().iter().any(|l| l.value() == outcome))
            .map(|m| m.get_counter().get_value())
            .sum()
    };
    assert!(
        outcomes("resolved_present") >= 3.0,
        "each lost insert was found stored once ClickHouse answered again"
    );
    fx.assert_stored_once(6_000, &evs, "a lost reply never makes a batch go in twice")
        .await;
    fx.drop_db().await;
}

fn spawn_aggregator(fx: &Fixture) -> KillOnDrop {
    KillOnDrop(
        Command::new(pingan_tests::pingan_bin())
            .arg("aggregate")
            .env("PINGAN__KAFKA__BOOTSTRAP_SERVERS", &fx.env.kafka)
            .env("PINGAN__CLICKHOUSE__URL", &fx.ch.url)
            .env("PINGAN__CLICKHOUSE__DATABASE", &fx.ch.database)
            .env("PINGAN__AGGREGATOR__TOPIC", &fx.topic)
            .env("PINGAN__AGGREGATOR__GROUP_ID", &fx.group)
            .env("PINGAN__AGGREGATOR__BATCH_MAX_EVENTS", "300")
            .env("PINGAN__AGGREGATOR__BATCH_MAX_AGE_MS", "100")
            .env("PINGAN__AGGREGATOR__INSERT_TIMEOUT_MS", "5000")
            .env("PINGAN__AGGREGATOR__ADMIN_LISTEN", "")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn pingan aggregate"),
    )
}

fn kill9(child: KillOnDrop) {
    drop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_aggregator_mid_stream_loses_and_duplicates_nothing() {
    let _infra = pingan_tests::infra_shared().await;
    let fx = Fixture::new().await;
    let evs = events(20_000, 2);
    fx.produce(&evs, &[]).await;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for round in 0..3 {
        let child = spawn_aggregator(&fx);
        // Let it make some progress, then kill it at a random moment.
        let target = (round + 1) as u64 * 4_000;
        let fxr = &fx;
        wait_until(
            "progress before the kill",
            Duration::from_secs(60),
            || async move { fxr.distinct_events().await >= target.min(19_000) },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
        kill9(child);
    }
    let child = spawn_aggregator(&fx);
    fx.wait_for(20_000, Duration::from_secs(120)).await;
    kill9(child);
    fx.assert_stored_once(20_000, &evs, "a killed aggregator never re-inserts a batch")
        .await;
    fx.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_and_broker_restarts_mid_stream_lose_and_duplicate_nothing() {
    let _infra = pingan_tests::infra_exclusive().await;
    let fx = Fixture::new().await;
    let evs = events(12_000, 3);
    fx.produce(&evs[..6_000], &[]).await;
    let child = spawn_aggregator(&fx);
    wait_until("first events stored", Duration::from_secs(60), || async {
        fx.distinct_events().await >= 1_000
    })
    .await;

    // ClickHouse dies mid-stream; the aggregator must retry, not advance, and not duplicate.
    tokio::task::spawn_blocking(|| services::kill("clickhouse"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::spawn_blocking(|| services::start("clickhouse"))
        .await
        .unwrap();

    // Then the broker dies while more events are produced around it.
    fx.produce(&evs[6_000..9_000], &[]).await;
    tokio::task::spawn_blocking(|| services::kill("kafka"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::spawn_blocking(|| services::start("kafka"))
        .await
        .unwrap();
    fx.produce(&evs[9_000..], &[]).await;

    fx.wait_for(12_000, Duration::from_secs(180)).await;
    kill9(child);
    fx.assert_stored_once(
        12_000,
        &evs,
        "restarts never cause a batch to be inserted twice",
    )
    .await;
    fx.drop_db().await;
}

/// Regression (issue 16): the "was this batch stored" lookup bound every offset of a batch into
/// the query text, and a batch of 60,000 records made 480 KB of SQL, past the server's
/// `max_query_size` (a syntax error at position 262,142 on 18.16). The lookup is a range now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_lookup_of_a_huge_batch_is_one_small_range_query() {
    let _infra = pingan_tests::infra_shared().await;
    let env = TestEnv::from_env();
    let ch = env.migrated_database().await;
    let client = pingan_warehouse::client(&ch, pingan_warehouse::Role::Writer);
    // 100,000 audit rows of one partition, offsets 1,000,000 … 1,099,999 without 1,050,000.
    client
        .query(
            "INSERT INTO insert_audit (kafka_topic, kafka_partition, kafka_offset, event_id) \
             SELECT 'huge', 3, 1000000 + number, toUUID('00000000-0000-0000-0000-000000000000') \
             FROM system.numbers WHERE number != 50000 LIMIT 99999",
        )
        .execute()
        .await
        .unwrap();
    let stored = pingan_warehouse::audit::stored_in_range(&client, "huge", 3, 1_000_000, 1_099_999)
        .await
        .unwrap();
    assert_eq!(stored.len(), 99_999);
    assert!(!stored.iter().any(|r| r.kafka_offset == 1_050_000));
    let other = pingan_warehouse::audit::stored_in_range(&client, "huge", 2, 0, u64::MAX)
        .await
        .unwrap();
    assert!(other.is_empty());
    client
        .query(&format!("DROP DATABASE {}", ch.database))
        .execute()
        .await
        .unwrap();
}

/// Regression (issue 16): positions were keyed by topic name, partition and offset only, so after
/// a topic was deleted and re-created the new records at already-seen offsets were skipped as
/// "already stored" (tried: 100 stored, topic re-created, 100 new produced → 0 stored). Now a
/// redelivered record is skipped only when the event stored at its offset is the same one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_topic_is_noticed_and_its_records_are_stored() {
    let _infra = pingan_tests::infra_shared().await;
    let fx = Fixture::on_topic("pingan_t_reborn", 1).await;
    let first = events(100, 61);
    fx.produce(&first, &[]).await;
    let agg = fx.run_in_process(fx.ch.clone());
    fx.wait_for(100, Duration::from_secs(60)).await;
    agg.stop().await;

    fx.env.recreate_topic(&fx.topic, 1).await;
    let second = events(100, 62);
    fx.produce(&second, &[]).await;
    let agg = fx.run_in_process(fx.ch.clone());
    fx.wait_for(200, Duration::from_secs(60)).await;
    let registry = agg.stop().await;
    let mismatches: f64 =
        pingan_tests::counter_total(&registry, "pingan_stage_position_mismatches_total");
    assert!(mismatches >= 1.0, "the re-created topic is counted");
    let all: Vec<EnrichedEvent> = first.into_iter().chain(second).collect();
    fx.assert_rollups_match(&all).await;
    fx.drop_db().await;
}

/// Offsets that jump between two records of one partition are counted
/// (`pingan_stage_offset_gaps_total`): records deleted by retention before they were read look
/// like this. A transactional producer makes real gaps cheaply (each commit marker takes an
/// offset the consumer never sees): three transactions of ten leave two gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_that_jump_are_counted_and_the_records_around_them_stored() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let _infra = pingan_tests::infra_shared().await;
    let fx = Fixture::on_topic("pingan_t_gaps", 1).await;
    let evs = events(30, 63);
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set(
            "bootstrap.servers",
            &fx.env.kafka_config().bootstrap_servers,
        )
        .set("transactional.id", unique("pingan_t_tx"))
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    for chunk in evs.chunks(10) {
        producer.begin_transaction().unwrap();
        for e in chunk {
            let payload = serde_json::to_vec(e).unwrap();
            producer
                .send(
                    BaseRecord::<[u8], [u8]>::to(&fx.topic)
                        .payload(&payload)
                        .key(b"k"),
                )
                .map_err(|(e, _)| e)
                .unwrap();
        }
        producer
            .commit_transaction(Duration::from_secs(30))
            .unwrap();
    }
    let agg = fx.run_in_process(fx.ch.clone());
    fx.wait_for(30, Duration::from_secs(60)).await;
    let registry = agg.stop().await;
    let gaps: f64 = pingan_tests::counter_total(&registry, "pingan_stage_offset_gaps_total");
    assert_eq!(gaps, 2.0, "two commit markers between three transactions");
    fx.assert_rollups_match(&evs).await;
    fx.drop_db().await;
}
