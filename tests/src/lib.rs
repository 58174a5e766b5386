//! Integration harness for pingan: the real-infrastructure tier of the test pyramid.
//!
//! Tests in `tests/tests/integration.rs` run only with `--features integration` and talk to a
//! real Kafka broker and a real ClickHouse server started by `make up`. When either is missing
//! they **fail** with a hint, never skip: a green run must mean the infrastructure was exercised.
//!
//! # Layout
//! * [`TestEnv`]: where the services are (`PINGAN_TEST_KAFKA`, `PINGAN_TEST_CLICKHOUSE_URL`).
//! * [`unique`]: per-test names for topics, groups and databases.
//! * [`wait_until`]: poll a condition instead of sleeping.
//! * [`services`]: kill and restart the local services through `deploy/local/*.sh`.
//! * [`lossy::LossyProxy`]: loses the reply to an INSERT on demand (the ambiguous-outcome fault).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr
)]

pub mod lossy;

use std::future::Future;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

/// Where the test infrastructure is.
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// Kafka bootstrap servers.
    pub kafka: String,
    /// ClickHouse HTTP URL.
    pub clickhouse_url: String,
}

fn reachable(hostport: &str) -> bool {
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok())
}

impl TestEnv {
    /// Reads the environment and probes both services; panics with a hint when one is missing.
    pub fn from_env() -> TestEnv {
        let kafka = std::env::var("PINGAN_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into());
        let clickhouse_url = std::env::var("PINGAN_TEST_CLICKHOUSE_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:8123".into());
        let first = kafka.split(',').next().unwrap_or_default().to_owned();
        assert!(
            reachable(&first),
            "Kafka is not reachable at {kafka}: run `make up` (or set PINGAN_TEST_KAFKA)"
        );
        let ch_hostport = clickhouse_url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_owned();
        assert!(
            reachable(&ch_hostport),
            "ClickHouse is not reachable at {clickhouse_url}: run `make up` (or set PINGAN_TEST_CLICKHOUSE_URL)"
        );
        TestEnv {
            kafka,
            clickhouse_url,
        }
    }

    /// Kafka settings pointing at the test broker.
    pub fn kafka_config(&self) -> pingan_pipeline::client::KafkaConfig {
        pingan_pipeline::client::KafkaConfig {
            bootstrap_servers: self.kafka.clone(),
            ..Default::default()
        }
    }

    /// A ClickHouse client (validation off: the local server is 18.16).
    pub fn clickhouse(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.clickhouse_url)
            .with_validation(false)
    }

    /// Settings of a fresh database with a unique name, migrated like `pingan migrate` does.
    pub async fn migrated_database(&self) -> pingan_runtime::config::ClickHouseConfig {
        let settings = pingan_runtime::config::ClickHouseConfig {
            url: self.clickhouse_url.clone(),
            database: unique("pingan_t"),
            ..Default::default()
        };
        pingan_warehouse::migrate::apply(&settings, |_| {})
            .await
            .expect("migrate a test database");
        settings
    }

    /// Creates a topic with `partitions` partitions (replication 1) and waits until it exists.
    pub async fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka)
            .create()
            .expect("admin client");
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let res = admin
            .create_topics(
                [&topic],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .expect("create topic");
        for r in res {
            if let Err((t, e)) = r {
                assert_eq!(
                    e,
                    rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
                    "cannot create topic {t}: {e}"
                );
            }
        }
    }
}

impl TestEnv {
    /// Deletes `name` and creates it again empty (a new incarnation: offsets start at 0), waiting
    /// until the broker has finished the deletion.
    pub async fn recreate_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka)
            .create()
            .expect("admin client");
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        admin
            .delete_topics(&[name], &options)
            .await
            .expect("delete topic");
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let res = admin
                .create_topics([&topic], &options)
                .await
                .expect("create topic");
            match res.into_iter().next() {
                Some(Ok(_)) => return,
                // The deletion is still in progress.
                Some(Err(_)) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                other => panic!("cannot re-create topic {name}: {other:?}"),
            }
        }
    }
}

/// `prefix` plus a random suffix, safe as a topic, group or database name.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .get(..12)
            .unwrap_or("x")
    )
}

/// Polls `probe` every 100 ms until it returns `true`; panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if probe().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

static INFRA: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Taken (shared) by every test that uses Kafka or ClickHouse, so a fault test that kills a
/// service can wait for exclusive use.
pub async fn infra_shared() -> tokio::sync::RwLockReadGuard<'static, ()> {
    INFRA.read().await
}

/// Taken by fault tests that kill or restart a shared service: no other infrastructure test runs
/// meanwhile. The services must be up again before the guard is dropped.
pub async fn infra_exclusive() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    INFRA.write().await
}

/// Kill and restart the local services through the project's scripts (fault tests).
pub mod services {
    use std::path::PathBuf;
    use std::process::Command;

    fn script(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("deploy/local")
            .join(name)
    }

    fn run(name: &str, arg: &str) {
        let status = Command::new("bash")
            .arg(script(name))
            .arg(arg)
            .status()
            .expect("run services script");
        assert!(status.success(), "deploy/local/{name} {arg} failed");
    }

    /// `kill -9` a local service (`kafka` or `clickhouse`) by its pid file.
    pub fn kill(service: &str) {
        run("kill.sh", service);
    }

    /// Starts a local service again (data intact) and waits until it answers.
    pub fn start(service: &str) {
        run("up.sh", service);
    }
}

/// Every SQL statement the services send at run time, with sample parameters, by name: the
/// aggregator's fixed statements and the query service's generated ones.
pub fn all_sql_templates() -> Vec<(String, String)> {
    let mut all = pingan_warehouse::templates::all();
    all.extend(pingan_query::sql_templates());
    all.extend(doc_sql_snippets());
    all
}

/// The documents whose SQL a reader may copy.
pub const SQL_DOCUMENTS: [&str; 3] = [
    "README.md",
    "schemas/clickhouse/README.md",
    "deploy/README.md",
];

/// Every statement of every ```` ```sql ```` block in [`SQL_DOCUMENTS`], named
/// `doc_<document>_<block>_<statement>`, with the `pingan.` database qualifier of the schema's
/// tables and views removed (the checks run in their own database). A block fenced
/// ```` ```sql no-run ```` is not run: it changes the server (users, grants), and the text next to
/// it must say so.
pub fn doc_sql_snippets() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let objects: Vec<String> = pingan_warehouse::migrate::MIGRATIONS
        .iter()
        .flat_map(|m| {
            m.sql.split("{db}.").skip(1).filter_map(|rest| {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                (!name.is_empty()).then_some(name)
            })
        })
        .collect();
    let mut out = Vec::new();
    for doc in SQL_DOCUMENTS {
        let text = std::fs::read_to_string(root.join(doc)).unwrap_or_default();
        let slug: String = doc
            .trim_end_matches(".md")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let mut block = 0;
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let fence = line.trim();
            if !fence.starts_with("```sql") {
                continue;
            }
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            block += 1;
            if fence.contains("no-run") {
                continue;
            }
            let mut sql = pingan_warehouse::migrate::statements(&body.join("\n"), "");
            for stmt in &mut sql {
                for o in &objects {
                    *stmt = stmt.replace(&format!("pingan.{o}"), o);
                }
            }
            for (i, stmt) in sql.into_iter().enumerate() {
                out.push((format!("doc_{slug}_{block}_{}", i + 1), stmt));
            }
        }
    }
    out
}

/// The `pingan` binary of this checkout (`make test` builds it before the integration tests).
pub fn pingan_bin() -> std::path::PathBuf {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/pingan");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p pingan` first (make test does)",
        p.display()
    );
    p
}

/// A child process that is killed with SIGKILL when dropped, so a failing test leaves nothing
/// running and a test can "kill -9" a service simply by dropping it.
#[derive(Debug)]
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-9")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

/// Reads `topic` from the beginning with a fresh consumer group until `done` (called with each
/// new message as `(payload, x-pingan-reason header)`) says stop or `timeout` passes. Blocking:
/// call it from `spawn_blocking` in async tests.
pub fn read_topic(
    env: &TestEnv,
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&(Vec<u8>, String)) -> bool,
) -> Vec<(Vec<u8>, String)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &env.kafka)
        .set("group.id", unique("pingan_t_reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader consumer");
    c.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let reason = m
                .headers()
                .and_then(|h| {
                    h.iter()
                        .find(|x| x.key == "x-pingan-reason")
                        .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
                })
                .unwrap_or_default();
            out.push((m.payload().unwrap_or_default().to_vec(), reason));
            if out.last().is_some_and(&mut done) {
                break;
            }
        }
    }
    out
}

/// A minimal enriched event for aggregator and alerting tests: a call in `town` (or nowhere),
/// routed to the police, with one keyword.
pub fn enriched_event(
    event_id: uuid::Uuid,
    town: Option<&str>,
    category: &str,
    subtype: &str,
    event_time: chrono::DateTime<chrono::FixedOffset>,
    keyword: &str,
) -> pingan_domain::events::EnrichedEvent {
    use pingan_domain::events::{
        ClassificationInfo, EnrichedEvent, EventArea, Source, TOPIC_ENRICHED,
    };
    EnrichedEvent {
        schema: TOPIC_ENRICHED.into(),
        event_id,
        source: Source::Call,
        source_ref: None,
        event_time,
        category: category.into(),
        subtype: subtype.into(),
        department: Some("POLICE".into()),
        secondary_departments: vec![],
        priority: Some(3),
        area: EventArea {
            district_code: Some("310112".into()),
            town_code: town.map(str::to_owned),
            ..Default::default()
        },
        location: None,
        h3: None,
        tags: vec![],
        keywords: vec![keyword.into()],
        classifier_version: "test".into(),
        classification: ClassificationInfo {
            score: 1.0,
            rule: "test".into(),
            evidence: vec![],
            runner_up: None,
        },
        repeat_of: None,
        description: "测试".into(),
    }
}

/// The sum of a counter over all its label values in `registry` (0 when it is not registered).
pub fn counter_total(registry: &prometheus::Registry, name: &str) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter().map(|m| m.get_counter().get_value()))
        .sum()
}
