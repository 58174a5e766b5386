//! Record identity against real Kafka and ClickHouse (CONTRACT §9): an `event_id` belongs to the
//! first record stored under it. A QR report carrying a stored call's id, or a resent call with
//! a changed body, never changes the stored row; it is counted
//! (`pingan_event_id_conflicts_total`) and dead-lettered as `event_id_conflict`. The raw table is
//! read without `FINAL`, so a second row under the id would show even before a merge.

use std::time::Duration;

use chrono::TimeZone;
use pingan_domain::events::{EnrichedEvent, Source};
use pingan_pipeline::metrics::StageMetrics;
use pingan_pipeline::producer::{OutRecord, Publisher};
use pingan_runtime::config::ClickHouseConfig;
use pingan_tests::{TestEnv, unique, wait_until};
use tokio_util::sync::CancellationToken;

const TOWN: &str = "310112102";

struct Fixture {
    env: TestEnv,
    topic: String,
    ch: ClickHouseConfig,
    shutdown: CancellationToken,
    registry: prometheus::Registry,
    task: tokio::task::JoinHandle<Result<(), pingan_aggregator::AggregatorError>>,
}

impl Fixture {
    async fn start() -> Fixture {
        let env = TestEnv::from_env();
        let topic = unique("pingan_t_identity");
        env.create_topic(&topic, 2).await;
        env.create_topic(&format!("{topic}.dlq"), 1).await;
        let ch = env.migrated_database().await;
        let registry = prometheus::Registry::new();
        let settings = pingan_aggregator::AggregatorSettings {
            config: pingan_aggregator::AggregatorConfig {
                topic: topic.clone(),
                group_id: unique("pingan_t_identity"),
                batch_max_events: 100,
                batch_max_age_ms: 100,
                insert_timeout_ms: 5_000,
                admin_listen: None,
                ..Default::default()
            },
            kafka: env.kafka_config(),
            clickhouse: ch.clone(),
            registry: registry.clone(),
            stage_metrics: StageMetrics::register(&registry).unwrap(),
        };
        let shutdown = CancellationToken::new();
        let sd = shutdown.clone();
        let task = tokio::spawn(async move { pingan_aggregator::run(settings, sd).await });
        Fixture {
            env,
            topic,
            ch,
            shutdown,
            registry,
            task,
        }
    }

    async fn produce(&self, evs: &[&EnrichedEvent]) {
        let p = Publisher::new(&self.env.kafka_config(), "test", Duration::from_secs(60)).unwrap();
        let payloads: Vec<Vec<u8>> = evs.iter().map(|e| serde_json::to_vec(e).unwrap()).collect();
        p.publish(payloads.iter().map(|v| OutRecord {
            topic: &self.topic,
            // One town, one key: the records of a test stay in order on one partition.
            key: Some(TOWN.as_bytes()),
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

    /// Raw rows under `id` (no FINAL): (source, description) of each.
    async fn rows(&self, id: uuid::Uuid) -> Vec<(String, String)> {
        self.client()
            .query("SELECT source, description FROM incidents WHERE toString(event_id) = ?")
            .bind(id.to_string())
            .fetch_all()
            .await
            .unwrap()
    }

    async fn wait_stored(&self, id: uuid::Uuid) {
        wait_until(
            &format!("event {id} stored"),
            Duration::from_secs(60),
            || async move { !self.rows(id).await.is_empty() },
        )
        .await;
    }

    fn conflicts(&self) -> f64 {
        self.registry
            .gather()
            .iter()
            .find(|f| f.name() == "pingan_event_id_conflicts_total")
            .and_then(|f| f.get_metric().first().map(|m| m.get_counter().get_value()))
            .unwrap_or(-1.0)
    }

    fn dead_letter_reasons(&self, want: usize) -> Vec<String> {
        pingan_tests::read_topic(
            &self.env,
            &format!("{}.dlq", self.topic),
            Duration::from_secs(30),
            {
                let mut seen = 0;
                move |_| {
                    seen += 1;
                    seen >= want
                }
            },
        )
        .into_iter()
        .map(|(_, reason)| reason)
        .collect()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let client = self.client();
        self.task.await.unwrap().unwrap();
        let _ = client
            .query(&format!("DROP DATABASE IF EXISTS {}", self.ch.database))
            .execute()
            .await;
    }
}

fn call(description: &str) -> EnrichedEvent {
    let t = pingan_domain::time::shanghai()
        .with_ymd_and_hms(2019, 12, 30, 21, 15, 0)
        .unwrap();
    let mut e = pingan_tests::enriched_event(
        uuid::Uuid::now_v7(),
        Some(TOWN),
        "FRAUD",
        "FRAUD_FAKE_GOV",
        t,
        "冒充",
    );
    e.description = description.into();
    e.source_ref = Some("CAD-20191230-0001".into());
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qr_report_reusing_a_stored_calls_event_id_leaves_the_call_unchanged() {
    let _infra = pingan_tests::infra_shared().await;
    let fx = Fixture::start().await;
    let original = call("自称公安局要求转账到安全账户");
    fx.produce(&[&original]).await;
    fx.wait_stored(original.event_id).await;

    // A citizen's report that reached the enriched topic with the call's id (ingest namespaces
    // QR ids, so this is the defence behind it), then an unrelated event to know it was read.
    let mut qr = call("我家门口有人吵架");
    qr.event_id = original.event_id;
    qr.source = Source::Qr;
    qr.source_ref = Some("MHQR-101-00100215".into());
    qr.category = "DSP".into();
    qr.subtype = "DSP_NEIGHBOUR".into();
    let marker = call("标记事件");
    fx.produce(&[&qr, &marker]).await;
    fx.wait_stored(marker.event_id).await;

    assert_eq!(
        fx.rows(original.event_id).await,
        [("call".to_owned(), original.description.clone())],
        "one raw row under the id, and it is the call's"
    );
    assert_eq!(fx.conflicts(), 1.0);
    assert_eq!(fx.dead_letter_reasons(1), ["event_id_conflict"]);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_call_with_a_changed_body_changes_nothing_stored_and_is_dead_lettered() {
    let _infra = pingan_tests::infra_shared().await;
    let fx = Fixture::start().await;
    let original = call("家中被盗，丢失现金两千元");
    fx.produce(&[&original]).await;
    fx.wait_stored(original.event_id).await;

    let mut changed = original.clone();
    changed.description = "家中被盗，丢失现金两万元".into();
    // An exact resend (a retry) is not a conflict; inside one batch the first body wins too.
    let exact = original.clone();
    let second = call("电动车被盗");
    let mut second_changed = second.clone();
    second_changed.description = "电动车和头盔被盗".into();
    let marker = call("标记事件");
    fx.produce(&[&changed, &exact, &second, &second_changed, &marker])
        .await;
    fx.wait_stored(marker.event_id).await;

    let rows = fx.rows(original.event_id).await;
    assert!(
        rows.iter()
            .all(|r| *r == ("call".to_owned(), original.description.clone())),
        "only the first body is stored: {rows:?}"
    );
    assert_eq!(
        fx.rows(second.event_id).await,
        [("call".to_owned(), second.description.clone())]
    );
    assert_eq!(
        fx.conflicts(),
        2.0,
        "the changed resend and the changed twin"
    );
    assert_eq!(
        fx.dead_letter_reasons(2),
        ["event_id_conflict", "event_id_conflict"]
    );
    fx.stop().await;
}
