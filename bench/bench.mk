# `make bench`: measures the pipeline on this machine against the local Kafka and ClickHouse
# (started by `make up`) and writes target/bench/report.json and report.md.
# Included by the top-level Makefile. The harness is the `pingan-bench` member (bench/src/); it runs
# the release `pingan` binary (classify, aggregate, serve as their own processes) and the
# `query_bench` example of pingan-query, so both are built first.
# Sizes: BENCH_QUERY_EVENTS (bulk history for query latency, default 2000000; 50000000 for the
# full-scale figure) and BENCH_AGG_EVENTS (enriched events for aggregator vs Kafka engine,
# default 400000), e.g. `make bench BENCH_QUERY_EVENTS=50000000`.

BENCH_QUERY_EVENTS ?= 2000000
BENCH_AGG_EVENTS ?= 400000

.PHONY: bench
bench: up ## Benchmark: classifier, raw Kafka, aggregator vs ClickHouse Kafka engine, e2e throughput/freshness, per-service RSS, query latency (target/bench/report.md)
	$(CARGO) build --locked --release -p pingan --bin pingan
	$(CARGO) build --locked --release -p pingan-query --example query_bench
	PINGAN_BENCH_QUERY_EVENTS=$(BENCH_QUERY_EVENTS) PINGAN_BENCH_AGG_EVENTS=$(BENCH_AGG_EVENTS) \
		$(CARGO) run --locked --release -p pingan-bench </dev/null
