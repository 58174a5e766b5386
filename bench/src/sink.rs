//! Step 3: the enriched topic into ClickHouse, read by a bare consumer (the upper bound), by
//! ClickHouse's own Kafka table engine and by `pingan aggregate`.

use std::path::Path;
use std::time::{Duration, Instant};

use pingan_domain::events::EnrichedEvent;
use pingan_pipeline::client::KafkaConfig;
use pingan_pipeline::producer::{OutRecord, Publisher};
use pingan_runtime::config::ClickHouseConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::service::Service;
use crate::util::{create_topics, step, suffix};

/// Rows/s while `table` fills up to `target` rows, polled every 100 ms: the rate between the first
/// poll that sees rows and the one that sees them all (startup and group join excluded), and the
/// wall time from `started`.
pub(crate) async fn watch_fill(
    ch: &clickhouse::Client,
    table: &str,
    target: u64,
    started: Instant,
    timeout: Duration,
    label: &str,
) -> Value {
    // A consumer that fails on every block (a view that does not fit the table) never moves:
    // give up after half a minute without progress rather than wait out the whole timeout.
    let stall = Duration::from_secs(30);
    let mut first: Option<(Instant, u64)> = None;
    let mut last_report = Instant::now();
    let mut last_change = Instant::now();
    let mut steps = 0u32;
    let mut n = 0u64;
    while started.elapsed() < timeout && last_change.elapsed() < stall {
        let now_n = ch
            .query(&format!("SELECT count() FROM {table}"))
            .fetch_one::<u64>()
            .await
            .unwrap_or(n);
        let now = Instant::now();
        if now_n != n {
            n = now_n;
            last_change = now;
            steps += 1;
        }
        if n > 0 && first.is_none() {
            first = Some((now, n));
        }
        if n >= target {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            step(&format!("  {label}: {n}/{target} rows"));
            last_report = now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The last row counts when it became visible, not when the watch gave up waiting for more.
    let done = if n >= target {
        Instant::now()
    } else {
        last_change
    };
    let wall = (done - started).as_secs_f64();
    let sustained = match first {
        Some((t, n0)) if n > n0 => (n - n0) as f64 / (done - t).as_secs_f64(),
        _ => f64::NAN,
    };
    if n < target {
        step(&format!(
            "  {label}: gave up at {n}/{target} rows (no progress for {}s or timeout)",
            stall.as_secs()
        ));
    }
    json!({
        "rows": n, "target": target, "complete": n >= target,
        "rows_per_sec_sustained": sustained,
        "rows_per_sec_wall": n as f64 / wall,
        "wall_secs": wall,
        "first_rows_after_secs": first.map(|(t, _)| (t - started).as_secs_f64()),
        "all_rows_after_secs": (done - started).as_secs_f64(),
        "visible_increments": steps,
    })
}

/// Adds `rows_per_sec_from_join`: rows over the time from the consumer group's join to the
/// last row visible (the headline rate: it charges each side for consuming, transforming and
/// inserting, not for starting a process or joining a group).
pub(crate) fn with_join_rate(v: &mut Value, started: Instant, joined: Option<Instant>) {
    let Some(j) = joined else { return };
    let join = j.saturating_duration_since(started).as_secs_f64();
    let all = v["all_rows_after_secs"].as_f64().unwrap_or(f64::NAN);
    let rows = v["rows"].as_f64().unwrap_or(0.0);
    v["group_joined_after_secs"] = json!(join);
    v["rows_per_sec_from_join"] = json!(rows / (all - join));
}

/// The Kafka-engine side of step 3: a `Kafka` table, a plain MergeTree and the view between.
///
/// ClickHouse 18.16 takes format settings for the engine's background consumer only from the
/// server's default profile (not from the CREATE query), so `input_format_skip_unknown_fields`
/// and `date_time_input_format = 'best_effort'` are out of reach, and JSONEachRow rejects the
/// nested `area`, `location` and `classification` objects and the RFC 3339 `event_time`. Each
/// message is therefore read whole as one TabSeparated string (JSON has no raw tabs or
/// newlines) and picked apart in the view with `visitParam*` (first occurrence of a key at any
/// depth, so `area.town_code` is found as `town_code`) and `parseDateTimeBestEffort`.
///
/// Not attempted on the shared server: feeding the production `incidents` table and its
/// rollups. 18.16 does not cascade views (a view writing into `incidents` leaves the rollup
/// views on `incidents` untouched), does not run a view with a subquery from the engine's
/// thread ("There is no query"), and aborted the whole server once when a parse error in the
/// engine's thread met a DROP of its table (MATERIALIZED columns on the engine table are read as
/// input columns).
pub(crate) fn kafka_engine_ddl(db: &str, bootstrap: &str, topic: &str, group: &str) -> Vec<String> {
    let str_ = |k: &str| format!("visitParamExtractString(line, '{k}')");
    let arr = |k: &str| format!("extractAll(visitParamExtractRaw(line, '{k}'), '\"([^\"]*)\"')");
    let fields: Vec<(&str, String)> = vec![
        ("event_id", str_("event_id")),
        ("source", str_("source")),
        (
            "event_time",
            format!("parseDateTimeBestEffort({})", str_("event_time")),
        ),
        ("category", str_("category")),
        ("subtype", str_("subtype")),
        ("department", str_("department")),
        (
            "priority",
            "toUInt8(visitParamExtractUInt(line, 'priority'))".into(),
        ),
        ("district_code", str_("district_code")),
        ("town_code", str_("town_code")),
        ("station_code", str_("station_code")),
        ("compound_id", str_("compound_id")),
        ("lat", "visitParamExtractFloat(line, 'lat')".into()),
        ("lon", "visitParamExtractFloat(line, 'lon')".into()),
        ("h3", str_("h3")),
        ("tags", arr("tags")),
        ("keywords", arr("keywords")),
        ("classifier_version", str_("classifier_version")),
        ("description", str_("description")),
    ];
    let select: Vec<String> = fields.iter().map(|(n, e)| format!("{e} AS {n}")).collect();
    vec![
        format!(
            "CREATE TABLE {db}.ke_incidents (event_id String, source String, \
             event_time DateTime('Asia/Shanghai'), category String, subtype String, \
             department String, priority UInt8, district_code String, town_code String, \
             station_code String, compound_id String, lat Float64, lon Float64, h3 String, \
             tags Array(String), keywords Array(String), classifier_version String, \
             description String) ENGINE = MergeTree PARTITION BY toYYYYMM(event_time) \
             ORDER BY (toDate(event_time), event_id)"
        ),
        format!(
            "CREATE TABLE {db}.ke_queue (line String) \
             ENGINE = Kafka('{bootstrap}', '{topic}', '{group}', 'TabSeparated', '\\n')"
        ),
        format!(
            "CREATE MATERIALIZED VIEW {db}.ke_mv TO {db}.ke_incidents AS SELECT {} \
             FROM {db}.ke_queue",
            select.join(", ")
        ),
    ]
}

/// When `group` first has a member and is stable (partitions assigned), polled from another
/// thread: the moment a consumer can start fetching, so rates can exclude process start-up and
/// the group join.
pub(crate) fn group_joined(
    kafka: KafkaConfig,
    group: String,
    timeout: Duration,
) -> tokio::task::JoinHandle<Option<Instant>> {
    tokio::task::spawn_blocking(move || {
        let probe: BaseConsumer = kafka
            .consumer_config("bench", &format!("pingan_bench_probe_{}", suffix()))
            .create()
            .ok()?;
        let t = Instant::now();
        while t.elapsed() < timeout {
            if let Ok(list) = probe.fetch_group_list(Some(&group), Duration::from_secs(2))
                && list
                    .groups()
                    .iter()
                    .any(|g| g.state() == "Stable" && !g.members().is_empty())
            {
                return Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    })
}

/// Commits offset 0 on every partition for `group`: the 18.16 engine's consumer starts at the
/// end of the topic for a group without committed offsets.
pub(crate) fn commit_start(kafka: &KafkaConfig, group: &str, topic: &str, partitions: i32) {
    use rdkafka::TopicPartitionList;
    let c: BaseConsumer = kafka.consumer_config("bench", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(0))
            .unwrap();
    }
    c.commit(&tpl, CommitMode::Sync).unwrap();
}

/// Runs the Kafka engine over `topic` into a new database `db` and watches `n` rows arrive,
/// then stops it and drops `db`.
pub(crate) async fn run_kafka_engine(
    kafka: &KafkaConfig,
    kafka_addr: &str,
    root: &clickhouse::Client,
    db: &str,
    topic: &str,
    n: u64,
    timeout: Duration,
) -> Value {
    let group = format!("pingan_bench_ke_{}", suffix());
    commit_start(kafka, &group, topic, 4);
    root.query(&format!("CREATE DATABASE {db}"))
        .execute()
        .await
        .unwrap();
    let joined = group_joined(kafka.clone(), group.clone(), timeout);
    let t = Instant::now();
    for stmt in kafka_engine_ddl(db, kafka_addr, topic, &group) {
        root.query(&stmt)
            .execute()
            .await
            .unwrap_or_else(|e| panic!("{e}: {stmt}"));
    }
    let table = format!("{db}.ke_incidents");
    let mut v = watch_fill(root, &table, n, t, timeout, "kafka engine → MergeTree").await;
    with_join_rate(&mut v, t, joined.await.ok().flatten());
    v["distinct_event_ids"] = json!(
        root.query(&format!("SELECT uniqExact(event_id) FROM {table}"))
            .fetch_one::<u64>()
            .await
            .unwrap_or(0)
    );
    // Without a view the engine stops streaming; its thread gets a few seconds to finish the
    // cycle it is in before the table goes (18.16 once aborted when a DROP met a failing read).
    let _ = root
        .query(&format!("DROP TABLE IF EXISTS {db}.ke_mv"))
        .execute()
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = root
        .query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute()
        .await;
    v
}

pub(crate) const KAFKA_ENGINE_NOTE: &str = "ClickHouse 18.16 Kafka engine: one librdkafka consumer inside the server reads the topic; \
each message is read as one TabSeparated string (18.16 applies format settings to the engine only from the server's default profile, \
so JSONEachRow cannot skip the nested area/location/classification objects nor parse the RFC 3339 event_time) and a materialized view \
extracts the fields (visitParam*, parseDateTimeBestEffort); blocks of up to max_block_size (65,536) rows or stream_flush_interval_ms (7.5 s), \
offsets committed after the block is inserted. It does NOT: deduplicate event_id (plain MergeTree; at-least-once, a crash between insert \
and commit re-inserts the block), send poison records to a DLQ (a row that does not parse or fit fails its whole block and the error is only \
in the server log), maintain rollups or the insert audit (18.16 does not cascade views, so each would need its own view on the engine table; not tried on the shared server, see the harness), \
compute H3 parents (no H3 functions in 18.16), detect spikes, or read from the start of the topic for a new group \
(it starts at the end; the bench commits offset 0 for the engine's group first).";

/// Our aggregator and ClickHouse's Kafka engine over the same enriched topic (step 3).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn aggregator_vs_engine(
    kafka: &KafkaConfig,
    kafka_addr: &str,
    ch_url: &str,
    root: &clickhouse::Client,
    pool: &[EnrichedEvent],
    n: u64,
    bin: &Path,
    logs: &Path,
    topics: &mut Vec<String>,
    dbs: &mut Vec<String>,
) -> (Value, Option<f64>) {
    let topic = format!("pingan_bench_enr_{}", suffix());
    let alerts = format!("pingan_bench_alerts_{}", suffix());
    create_topics(kafka_addr, &[&topic], 4).await;
    create_topics(kafka_addr, &[&alerts], 1).await;
    topics.extend([topic.clone(), alerts.clone()]);

    // Fill: the classifier's JSON and key (town code), each copy with its own event_id so no
    // row folds into another.
    step(&format!("enriched topic {topic}: producing {n} events"));
    let publisher = Publisher::new(kafka, "bench", Duration::from_secs(60)).unwrap();
    let t = Instant::now();
    let mut bytes = 0u64;
    let mut i = 0u64;
    while i < n {
        let chunk: Vec<(Vec<u8>, Vec<u8>)> = (i..(i + 10_000).min(n))
            .map(|j| {
                let mut e = pool[(j % pool.len() as u64) as usize].clone();
                e.event_id = Uuid::new_v4();
                let key = e.area.town_code.clone().unwrap_or_else(|| "unknown".into());
                (key.into_bytes(), serde_json::to_vec(&e).unwrap())
            })
            .collect();
        bytes += chunk.iter().map(|(_, v)| v.len() as u64).sum::<u64>();
        publisher
            .publish(chunk.iter().map(|(k, v)| OutRecord {
                topic: &topic,
                key: Some(k),
                payload: v,
                headers: &[],
            }))
            .await
            .unwrap();
        i += chunk.len() as u64;
        if i.is_multiple_of(100_000) {
            step(&format!("  produced {i}/{n}"));
        }
    }
    let produce_secs = t.elapsed().as_secs_f64();
    let _ = publisher.flush(Duration::from_secs(30));
    let avg_bytes = bytes as f64 / n as f64;

    // (a) Upper bound: a bare consumer, no parsing, no writes.
    step("raw consume of the enriched topic");
    let consumer: BaseConsumer = kafka
        .consumer_config("bench", &format!("bench_raw_{}", suffix()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let t = Instant::now();
    let mut got = 0u64;
    let mut first: Option<Instant> = None;
    while got < n && t.elapsed() < Duration::from_secs(300) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            got += 1;
            std::hint::black_box(m.payload());
        }
    }
    let consume_wall = t.elapsed().as_secs_f64();
    let consume_sustained = first.map_or(f64::NAN, |f| got as f64 / f.elapsed().as_secs_f64());
    drop(consumer);

    // (b) ClickHouse's Kafka engine into a plain MergeTree.
    let timeout = Duration::from_secs(120 + n / 1_000);
    let ke_db = format!("pingan_bench_ke_{}", suffix());
    dbs.push(ke_db.clone());
    step(&format!(
        "ClickHouse Kafka engine consuming {n} events into {ke_db}.ke_incidents (plain MergeTree)"
    ));
    let engine = run_kafka_engine(kafka, kafka_addr, root, &ke_db, &topic, n, timeout).await;

    // (c) `pingan aggregate` into a fresh database with the production schema.
    let agg_db = format!("pingan_bench_agg_{}", suffix());
    dbs.push(agg_db.clone());
    let chs = ClickHouseConfig {
        url: ch_url.to_owned(),
        database: agg_db.clone(),
        ..Default::default()
    };
    pingan_warehouse::migrate::apply(&chs, |_| {})
        .await
        .unwrap();
    step(&format!(
        "pingan aggregate consuming {n} events into {agg_db}.incidents (+ rollups)"
    ));
    let agg_group = format!("pingan_bench_agg_{}", suffix());
    let env = vec![
        ("PINGAN__KAFKA__BOOTSTRAP_SERVERS".into(), kafka_addr.into()),
        ("PINGAN__CLICKHOUSE__URL".into(), ch_url.into()),
        ("PINGAN__CLICKHOUSE__DATABASE".into(), agg_db.clone()),
        ("PINGAN__AGGREGATOR__TOPIC".into(), topic.clone()),
        ("PINGAN__AGGREGATOR__GROUP_ID".into(), agg_group.clone()),
        ("PINGAN__AGGREGATOR__ADMIN_LISTEN".into(), String::new()),
        ("PINGAN__AGGREGATOR__ALERTS__TOPIC".into(), alerts),
    ];
    let joined = group_joined(kafka.clone(), agg_group, timeout);
    let t = Instant::now();
    let mut agg = Service::start(bin, "aggregate", &env, logs);
    let agg_ch = pingan_warehouse::client(&chs, pingan_warehouse::Role::Writer);
    let mut ours = watch_fill(&agg_ch, "incidents", n, t, timeout, "pingan aggregate").await;
    with_join_rate(&mut ours, t, joined.await.ok().flatten());
    agg.assert_running();
    let rollup_ok: u64 = agg_ch
        .query("SELECT uniqExactMerge(events) FROM counts_hour")
        .fetch_one()
        .await
        .unwrap_or(0);
    let agg_rss = agg.stop();
    let _ = agg_ch
        .query(&format!("DROP DATABASE IF EXISTS {agg_db}"))
        .execute()
        .await;

    let e = engine["rows_per_sec_from_join"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let o = ours["rows_per_sec_from_join"].as_f64().unwrap_or(f64::NAN);
    let v = json!({
        "events": n, "avg_payload_bytes": avg_bytes,
        "produce_per_sec": n as f64 / produce_secs,
        "raw_consume": { "rows_per_sec_sustained": consume_sustained, "rows_per_sec_wall": got as f64 / consume_wall, "rows": got },
        "kafka_engine": engine,
        "kafka_engine_does": KAFKA_ENGINE_NOTE,
        "aggregator": ours, "aggregator_rollup_counts_hour_total": rollup_ok,
        "aggregator_peak_rss_mb": agg_rss,
        "aggregator_over_kafka_engine": o / e,
        "aggregator_over_raw_consume": o / consume_sustained,
        "kafka_engine_over_raw_consume": e / consume_sustained,
    });
    (v, agg_rss)
}

/// Step 3 with its summary line; returns the figures and the aggregator's peak RSS.
pub(crate) async fn run(
    ctx: &mut crate::Ctx,
    enriched: &[EnrichedEvent],
    n: u64,
) -> (Value, Option<f64>) {
    let (store, rss) = aggregator_vs_engine(
        &ctx.kafka,
        &ctx.kafka_addr,
        &ctx.ch_url,
        &ctx.root,
        enriched,
        n,
        &ctx.bin,
        &ctx.logs,
        &mut ctx.topics,
        &mut ctx.dbs,
    )
    .await;
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    println!(
        "enriched → ClickHouse ({n} events): raw consume {:.0} rows/s, Kafka engine {:.0} rows/s, pingan aggregate {:.0} rows/s, aggregator/engine {:.2}",
        num(&store["raw_consume"]["rows_per_sec_sustained"]),
        num(&store["kafka_engine"]["rows_per_sec_from_join"]),
        num(&store["aggregator"]["rows_per_sec_from_join"]),
        num(&store["aggregator_over_kafka_engine"]),
    );
    (store, rss)
}
