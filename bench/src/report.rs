//! The Markdown report (`target/bench/report.md`).

use serde_json::Value;

pub(crate) fn report_md(r: &serde_json::Map<String, Value>) -> String {
    let f = |v: &Value, d: usize| v.as_f64().map_or("-".into(), |x| format!("{x:.d$}"));
    let m = &r["machine"];
    let s = &r["enriched_to_clickhouse"];
    let e2e = r["e2e"].as_array().cloned().unwrap_or_default();
    let (low, high) = (&e2e[0], &e2e[1]);
    let rss = &r["peak_rss_mb"];
    let q = &r["queries"];
    let x = &r["ratios"];
    let (ke, ag) = (&s["kafka_engine"], &s["aggregator"]);
    let rate = |v: &Value| {
        format!(
            "{} ({})",
            f(&v["rows_per_sec_from_join"], 0),
            f(&v["rows_per_sec_wall"], 0)
        )
    };
    let rows: Vec<(&str, String)> = vec![
        (
            "classifier texts/s (one core)",
            f(&r["classifier"]["texts_per_sec_one_core"], 0),
        ),
        (
            "raw Kafka produce ev/s (simulated raw records)",
            f(&r["raw_kafka"]["produce_per_sec"], 0),
        ),
        (
            "raw Kafka consume ev/s (same records)",
            f(&r["raw_kafka"]["consume_per_sec"], 0),
        ),
        (
            "enriched topic: events / avg payload bytes",
            format!("{} / {}", s["events"], f(&s["avg_payload_bytes"], 0)),
        ),
        ("enriched topic: produce ev/s", f(&s["produce_per_sec"], 0)),
        (
            "enriched → bare rdkafka consumer, rows/s",
            f(&s["raw_consume"]["rows_per_sec_sustained"], 0),
        ),
        (
            "enriched → ClickHouse Kafka engine → plain MergeTree, rows/s from group join (wall)",
            rate(ke),
        ),
        (
            "enriched → `pingan aggregate` → incidents + rollups, rows/s from group join (wall)",
            rate(ag),
        ),
        (
            "**aggregator / Kafka engine (plain MergeTree)**",
            format!("**{}**", f(&x["aggregator_over_kafka_engine"], 3)),
        ),
        (
            "rows stored / events on the topic: Kafka engine, aggregator",
            format!(
                "{} / {}, {} / {}",
                ke["distinct_event_ids"], s["events"], ag["rows"], s["events"]
            ),
        ),
        (
            "aggregator / bare consumer",
            f(&x["aggregator_over_raw_enriched_consume"], 3),
        ),
        (
            "Kafka engine (plain) / bare consumer",
            f(&x["kafka_engine_over_raw_enriched_consume"], 3),
        ),
        (
            "e2e low: ingest-acked ev/s",
            f(&low["ingest_acked_per_sec"], 1),
        ),
        (
            "e2e low: freshness p50 / p99 s",
            format!(
                "{} / {}",
                f(&low["freshness_p50_s"], 2),
                f(&low["freshness_p99_s"], 2)
            ),
        ),
        (
            "e2e high: ingest-acked ev/s",
            f(&high["ingest_acked_per_sec"], 0),
        ),
        (
            "e2e high: queryable ev/s",
            f(&high["e2e_events_per_sec"], 0),
        ),
        (
            "e2e high: freshness p50 / p99 s",
            format!(
                "{} / {}",
                f(&high["freshness_p50_s"], 2),
                f(&high["freshness_p99_s"], 2)
            ),
        ),
        (
            "e2e high / raw Kafka produce",
            f(&x["e2e_over_raw_kafka_produce"], 3),
        ),
        (
            "e2e high / raw Kafka consume",
            f(&x["e2e_over_raw_kafka_consume"], 3),
        ),
        (
            "e2e high / Kafka engine (plain)",
            f(&x["e2e_over_kafka_engine"], 3),
        ),
        (
            "peak RSS MB: `pingan classify` (e2e)",
            f(&rss["classify_process"], 0),
        ),
        (
            "peak RSS MB: `pingan aggregate` (e2e)",
            f(&rss["aggregate_process_e2e"], 0),
        ),
        (
            "peak RSS MB: `pingan aggregate` (bulk, step 3)",
            f(&rss["aggregate_process_bulk_step3"], 0),
        ),
        (
            "peak RSS MB: `pingan serve` (e2e, polled)",
            f(&rss["serve_process"], 0),
        ),
        (
            "peak RSS MB: bench process (in-process ingest + simulator + earlier steps)",
            f(&rss["bench_process_with_in_process_ingest"], 0),
        ),
    ];
    let mut md = format!(
        "# pingan bench\n\nMachine: {} cores ({}), {} MB RAM; ClickHouse {}, Kafka {}, librdkafka {} (client). \
         Load average (1 min): {} at start, {} at end; other ClickHouse queries running at start: {}.\n\n\
         | measurement | value |\n|---|---|\n",
        m["cores"],
        m["cpu"].as_str().unwrap_or(""),
        m["mem_total_mb"],
        m["clickhouse"].as_str().unwrap_or("?"),
        m["kafka"].as_str().unwrap_or("?"),
        m["librdkafka_client"].as_str().unwrap_or("?"),
        f(&m["load_avg_1m_start"], 2),
        f(&m["load_avg_1m_end"], 2),
        m["other_clickhouse_queries_at_start"]
            .as_array()
            .map_or(0, Vec::len),
    );
    for (k, v) in rows {
        md.push_str(&format!("| {k} | {v} |\n"));
    }
    md.push_str(&format!(
        "\nQuery latency over {} events of bulk history ({} days), up to {} rounds per query after one warm-up (query_bench caps each query at about 20 s), \
         through the query router in process (`query_bench`: handler + ClickHouse, no TCP){}. {}\n\n\
         | phase | query | p50 ms | p99 ms | max ms | rounds |\n|---|---|---|---|---|---|\n",
        q["events"],
        q["days"],
        q["rounds"],
        if q["ok"].as_bool() == Some(true) {
            ""
        } else {
            " — **query_bench failed, see the bench's stderr**"
        },
        q["sealing"].as_str().map_or(String::new(), |l| format!("query_bench {l}."))
    ));
    for c in q["cases"].as_array().cloned().unwrap_or_default() {
        let phase = c["phase"].as_str().unwrap_or("");
        let name = c["query"].as_str().unwrap_or("");
        if let Some(e) = c["failed"].as_str() {
            md.push_str(&format!("| {phase} | {name} | failed: {e} | | | |\n"));
        } else {
            md.push_str(&format!(
                "| {phase} | {name} | {} | {} | {} | {} |\n",
                f(&c["p50_ms"], 1),
                f(&c["p99_ms"], 1),
                f(&c["max_ms"], 1),
                c["rounds"]
            ));
        }
    }
    md.push_str(&format!(
        "\nWhat the comparisons measure: every reader starts on the same full topic of {} enriched events (the classifier's JSON, key = town). \
         Rows/s \"from group join\" = rows / (time the last row was visible in the target table, polled every 100 ms − time the reader's consumer group became stable with a member), \
         so process start-up and the group join are excluded for both sides; \"wall\" counts from process start / CREATE TABLE. \
         The bare consumer polls messages with rdkafka and touches each payload (from its first message). \
         `pingan aggregate` (release binary, production config) writes every row to `incidents` plus the rollup and audit views of the production schema and runs spike detection; \
         the Kafka engine writes one plain MergeTree (18 scalar and array fields; no rollups). {}\n",
        s["events"],
        s["kafka_engine_does"].as_str().unwrap_or("")
    ));
    md
}
