# pingan — run `make help` for the list of targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
export CARGO_TERM_COLOR ?= auto

-include deploy/local/services.mk
-include tests/browser/browser.mk
-include web/web.mk
-include bench/bench.mk
-include deploy/deploy.mk

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "; printf "pingan targets:\n"} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the pingan binary (debug profile, dependencies optimised)
	$(CARGO) build --locked -p pingan

.PHONY: fmt
fmt: ## Format all Rust code
	$(CARGO) fmt --all

.PHONY: fmt-check
fmt-check: ## Check formatting
	$(CARGO) fmt --all --check

.PHONY: clippy
clippy: ## Clippy on every crate and target, warnings are errors
	$(CARGO) clippy --locked --workspace --all-targets --features pingan-tests/integration -- -D warnings

.PHONY: lint
lint: fmt-check clippy ## fmt check + clippy -D warnings

.PHONY: test-unit
test-unit: ## Unit and in-process component tests (no infrastructure)
	$(CARGO) test --locked --workspace

.PHONY: test-integration
test-integration: up ## Integration tests against the real Kafka and ClickHouse of `make up`
	$(CARGO) build --locked -p pingan
	$(CARGO) test --locked -p pingan-tests --features integration --test integration -- --test-threads=2

.PHONY: test-chdb
test-chdb: ## Schema + every query template on a current ClickHouse engine (chDB from PyPI)
	bash tests/chdb/run.sh

.PHONY: test
test: ## The full test suite: starts local services, runs unit + component + integration + browser + deployment tests
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-chdb
	$(MAKE) --no-print-directory test-integration
	$(MAKE) --no-print-directory test-browser
	$(MAKE) --no-print-directory test-deploy

.PHONY: doc
doc: ## Build the API docs, warnings are errors
	RUSTDOCFLAGS="-D warnings -A rustdoc::private-intra-doc-links" $(CARGO) doc --locked --no-deps --workspace --document-private-items

.PHONY: classifier-model
classifier-model: ## Train the classifier's model on schemas/classifier/corpus/train (deterministic; writes model.bin + model-report.txt)
	$(CARGO) build --locked -p pingan
	./target/debug/pingan classify train

.PHONY: classifier-eval
classifier-eval: ## The shipped classifier on the blind set, model and rules alone (summary only: the blind set stays blind)
	$(CARGO) build --locked -p pingan
	./target/debug/pingan classify --eval schemas/classifier/corpus/blind
	./target/debug/pingan classify --rules-only --eval schemas/classifier/corpus/blind

.PHONY: detect-eval
detect-eval: ## Spike detection's AMOC: 10 held-out seeds (2×/3×/5×), the tuning seeds, the new spike shapes; rewrites the tables in crates/pingan-detect/README.md (long: see its Evaluation)
	$(CARGO) build --locked --release -p pingan-detect --example evaluate
	./target/release/examples/evaluate --amoc --seeds 1001-1010 --sizes 2,3,5 --jobs 2 --readme crates/pingan-detect/README.md --section heldout
	./target/release/examples/evaluate --amoc --seeds 20240304,7,11,42 --sizes 3 --jobs 2 --readme crates/pingan-detect/README.md --section tuning
	./target/release/examples/evaluate --amoc --shapes --seeds 1001-1010 --sizes 3 --loose 1 --jobs 2 --readme crates/pingan-detect/README.md --section shapes

.PHONY: ci
ci: lint doc test ## What CI runs: lint, docs, all tests

.PHONY: demo
demo: up build ## Start local services, build, migrate and run the live demo
	./target/debug/pingan migrate
	./target/debug/pingan --dev demo
