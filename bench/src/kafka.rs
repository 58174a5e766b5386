//! Step 2: raw Kafka produce and consume rates of simulated raw records, the floor every stage
//! sits on.

use std::time::{Duration, Instant};

use pingan_sim::{KafkaTarget, Ledger, RunOptions, SendRetry, Target};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::Ctx;
use crate::util::{create_topics, generator, step, suffix};

/// `{events, produce_per_sec, consume_per_sec}`.
pub(crate) async fn run(ctx: &mut Ctx) -> Value {
    step("raw Kafka produce/consume of 50k simulated raw records");
    let (raw_calls, raw_qr) = (
        format!("pingan_bench_calls_{}", suffix()),
        format!("pingan_bench_qr_{}", suffix()),
    );
    create_topics(&ctx.kafka_addr, &[&raw_calls, &raw_qr], 4).await;
    ctx.topics.extend([raw_calls.clone(), raw_qr.clone()]);
    let kt = Target::Kafka(
        KafkaTarget::new(&ctx.kafka, ctx.ingest.hasher.clone(), SendRetry::default())
            .unwrap()
            .with_topics(&raw_calls, &raw_qr),
    );
    let mut g = generator(&ctx.ingest, 50.0, 2);
    let r = pingan_sim::run::run(
        &mut g,
        &kt,
        &RunOptions {
            count: Some(50_000),
            ..RunOptions::default()
        },
        &Ledger::default(),
        &CancellationToken::new(),
        |_| {},
    )
    .await;
    let produce = r.acked_per_sec();
    let consumer: BaseConsumer = ctx
        .kafka
        .consumer_config("bench", &format!("bench_{}", suffix()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&raw_calls, &raw_qr]).unwrap();
    let t = Instant::now();
    let mut n = 0u64;
    while n < r.stats.acked && t.elapsed() < Duration::from_secs(120) {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            n += 1;
        }
    }
    let consume = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "raw kafka: produce {produce:.0} ev/s, consume {consume:.0} ev/s ({} events)",
        r.stats.acked
    );
    json!({ "events": r.stats.acked, "produce_per_sec": produce, "consume_per_sec": consume })
}
