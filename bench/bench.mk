# `make bench`: measures the pipeline on this machine against the local Kafka and ClickHouse
# (started by `make up`) and writes target/bench/report.json and report.md.
# Included by the top-level Makefile. The harness is crates/pingan-sim/examples/bench.rs.

.PHONY: bench
bench: up ## Benchmark: classifier texts/s, raw Kafka rate, end-to-end throughput and freshness (target/bench/report.md)
	$(CARGO) run --locked --release -p pingan-sim --example bench
