#!/usr/bin/env bash
# deploy/test.sh [SECTION...] -- checks of everything under deploy/ (`make test-deploy`).
#
# Sections (default: all, in this order):
#   image       Containerfile rules, health-check script syntax, the image's pingan.toml
#   helm        helm lint/template of the chart (default and production-like values), typed
#               decode and structure of every object, refusals (HPA above partitions, https
#               ClickHouse), `pingan --check-config` of the rendered config for each service
#   systemd     systemd-analyze verify of the units, `pingan --check-config` of their config
#   compose     compose-go load + structure of deploy/local/compose.yaml, `pingan --check-config`
#               of each pingan service's environment
#   prometheus  promtool check config / check rules / test rules, a firing and a silent test
#               case for every alert
#   grafana     dashboards generated from generate.py, their structure
#   metrics     every metric in rules and dashboards is registered by the code; the four
#               services are started from the pingan binary on spare loopback ports (Kafka and
#               ClickHouse unreachable: nothing else is touched), exercised, and what their
#               /metrics expose must match the code scan
#
# Tools are built once from the Go module proxy into .cache/tools/ (helm, promtool, deploy-checks;
# progress is printed); the pingan binary is $PINGAN_BIN or target/debug/pingan (`make
# test-deploy` builds it first). Ports for the metrics section: $PINGAN_DEPLOY_TEST_PORT
# (default 18980) and the three above it. The last line is "test-deploy: N passed, M failed".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=deploy/tools/lib.sh
source "$ROOT/deploy/tools/lib.sh"

SECTIONS=("$@")
((${#SECTIONS[@]})) || SECTIONS=(image helm systemd compose prometheus grafana metrics)
PINGAN_BIN="${PINGAN_BIN:-$ROOT/target/debug/pingan}"
PORT0="${PINGAN_DEPLOY_TEST_PORT:-18980}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/pingan-deploy-test.XXXXXX")"
# Configurations without their secrets are checked in development mode (production refuses to
# start without pii.key, qr.keys, ingest.api_tokens and serve.tokens).
printf 'PINGAN__DEV=true\n' >"$TMP/dev.env"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

PASSED=0
FAILED=0
FAILURES=()
section() { printf '==> %s\n' "$*"; }
# step NAME CMD...: one check; its output is shown indented when it fails (or with VERBOSE=1).
step() {
  local name="$1" t0=$SECONDS out rc=0
  shift
  out="$("$@" 2>&1)" || rc=$?
  if ((rc == 0)); then
    PASSED=$((PASSED + 1))
    printf '    ok   %s (%ss)\n' "$name" "$((SECONDS - t0))"
    [[ -z "${VERBOSE:-}" ]] || sed 's/^/         /' <<<"$out"
  else
    FAILED=$((FAILED + 1))
    FAILURES+=("$name")
    printf '    FAIL %s (exit %s)\n' "$name" "$rc"
    sed 's/^/         /' <<<"$out" | tail -n 60
  fi
}
# expect_fail NAME PATTERN CMD...: CMD must fail and say PATTERN.
expect_fail() {
  local name="$1" pattern="$2" out rc=0
  shift 2
  out="$("$@" 2>&1)" || rc=$?
  if ((rc != 0)) && grep -q -- "$pattern" <<<"$out"; then
    PASSED=$((PASSED + 1))
    printf '    ok   %s (refused: %s)\n' "$name" "$(grep -m1 -o -- "$pattern.*" <<<"$out" | cut -c1-100)"
  else
    FAILED=$((FAILED + 1))
    FAILURES+=("$name")
    printf '    FAIL %s: expected a failure saying %q (exit %s)\n' "$name" "$pattern" "$rc"
    sed 's/^/         /' <<<"$out" | tail -n 20
  fi
}

# --- tools ---------------------------------------------------------------------------------
section "tools"
HELM="$(ensure_tool helm)"
PROMTOOL="$(ensure_tool promtool)"
CHECKS="$TOOLS_CACHE/deploy-checks"
build_checks() {
  local log="$TOOLS_CACHE/deploy-checks-build.log" t0=$SECONDS
  mkdir -p "$TOOLS_CACHE"
  [[ -x "$CHECKS" ]] || echo "==> building deploy/checks (Go; first run downloads its modules, about a minute)" >&2
  if ! (cd "$ROOT/deploy/checks" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -o "$CHECKS" . </dev/null >"$log" 2>&1); then
    cat "$log" >&2
    echo "error: go build of deploy/checks failed" >&2
    return 1
  fi
  printf '%s' "$((SECONDS - t0))"
}
echo "    helm $HELM_VERSION, promtool $PROMTOOL_VERSION (Prometheus v3.${PROMTOOL_VERSION:4:2}), deploy-checks built in $(build_checks)s"
if [[ ! -x "$PINGAN_BIN" ]]; then
  echo "error: no pingan binary at $PINGAN_BIN (run \`cargo build --locked -p pingan\` or set PINGAN_BIN; \`make test-deploy\` does it)" >&2
  exit 1
fi
echo "    pingan: $PINGAN_BIN ($("$PINGAN_BIN" --version))"

# check_config NAME SERVICE CONFIG_FILE ENV_FILE: `pingan --check-config SERVICE` with exactly
# that file and those PINGAN__ variables (nothing from the caller's environment).
check_config() {
  local svc="$1" conf="$2" envf="$3" out
  local -a envs=()
  if [[ -n "$envf" ]]; then mapfile -t envs < <(grep -E '^PINGAN' "$envf" || true); fi
  out="$(env -i PATH="$PATH" "${envs[@]}" "$PINGAN_BIN" --config "$conf" --check-config "$svc")" || return 1
  # the printed configuration must show what the file set (spot checks by the caller's grep)
  printf '%s\n' "$out"
}

# check_config_expect SERVICE CONFIG_FILE ENV_FILE TEXT...: as check_config, and the printed
# configuration contains each TEXT.
check_config_expect() {
  local svc="$1" conf="$2" envf="$3" out p
  shift 3
  out="$(check_config "$svc" "$conf" "$envf")" || { printf '%s\n' "$out"; return 1; }
  for p in "$@"; do
    grep -qF -- "$p" <<<"$out" || { printf 'the effective configuration lacks %s:\n%s\n' "$p" "$out"; return 1; }
  done
}

# --- image ---------------------------------------------------------------------------------
sec_image() {
  section "image: deploy/image/Containerfile (the image itself: make image)"
  step "Containerfile rules (hadolint-style + pingan's)" "$CHECKS" containerfile -context "$ROOT" deploy/image/Containerfile
  step "healthcheck.sh is valid POSIX sh" sh -n deploy/image/healthcheck.sh
  local s
  for s in ingest classify aggregate serve; do
    step "image pingan.toml accepted by pingan --check-config $s" check_config "$s" deploy/image/pingan.toml "$TMP/dev.env"
  done
}

# --- helm ----------------------------------------------------------------------------------
sec_helm() {
  section "helm: deploy/helm/pingan"
  local chart=deploy/helm/pingan prod=deploy/helm/pingan/ci/production-values.yaml
  step "helm lint --strict (default values)" "$HELM" lint --strict "$chart"
  step "helm lint --strict (production-like values)" "$HELM" lint --strict "$chart" -f "$prod"
  step "helm template (default values)" sh -c "'$HELM' template pingan '$chart' --namespace pingan >'$TMP/default.yaml'"
  step "helm template (production-like values)" sh -c "'$HELM' template pingan '$chart' --namespace pingan -f '$prod' >'$TMP/prod.yaml'"
  step "helm template (existing Secret, no NetworkPolicy, no PodDisruptionBudget)" sh -c "'$HELM' template pingan '$chart' --set secrets.existingSecret=ops-managed --set networkPolicy.enabled=false --set podDisruptionBudget.enabled=false >'$TMP/existing.yaml'"
  step "manifests (default): typed objects, probes, resources, PDBs, policies, migrate hook" \
    "$CHECKS" k8s -partitions 12 -config-out "$TMP/default.toml" "$TMP/default.yaml"
  step "manifests (production-like): the same, and both HPAs within 12 partitions" \
    "$CHECKS" k8s -partitions 12 -expect-hpa -config-out "$TMP/prod.toml" "$TMP/prod.yaml"
  step "existing Secret: the 8 secret env vars (ingest 3, aggregate 2, serve 2, migrate 1) reference it; no Secret, policy or budget rendered" \
    sh -c "grep -c 'name: ops-managed' '$TMP/existing.yaml' | grep -qx 8 && ! grep -q -E 'kind: (NetworkPolicy|Secret|PodDisruptionBudget)' '$TMP/existing.yaml'"
  expect_fail "refuses an HPA above the partition count" "exceeds kafka.partitions" \
    "$HELM" template pingan "$chart" --set classify.autoscaling.enabled=true --set classify.autoscaling.maxReplicas=13
  expect_fail "refuses more aggregate replicas than partitions" "exceeds kafka.partitions" \
    "$HELM" template pingan "$chart" --set aggregate.replicas=4 --set kafka.partitions=3
  expect_fail "refuses https:// ClickHouse (no TLS client yet)" "does not match pattern" \
    "$HELM" template pingan "$chart" --set clickhouse.url=https://clickhouse:8443
  expect_fail "refuses unknown values (schema)" "additional properties" \
    "$HELM" template pingan "$chart" --set ingest.replica=2
  # the rendered configuration, with the env the Deployments give each service
  cat >"$TMP/prod.env" <<'EOF'
PINGAN__CLICKHOUSE__PASSWORD=ci-only-writer-password
PINGAN__AGGREGATOR__ALERTS__WEBHOOK_SECRET=ci-only-webhook-secret
PINGAN__PII__KEY=ci-only-pii-key-0123456789
PINGAN__QR__KEYS=v1:ci-only-qr-key-v1-0123456789,v2:ci-only-qr-key-v2-0123456789
PINGAN__INGEST__API_TOKENS=ci-only-cad-token-0001,ci-only-cad-token-0002
PINGAN__SERVE__TOKENS=ci-wall:viewer:*:ci-only-read-token-0001
EOF
  local s
  for s in ingest classify aggregate serve migrate; do
    step "rendered pingan.toml (default) accepted by pingan --check-config $s" check_config "$s" "$TMP/default.toml" "$TMP/dev.env"
    step "rendered pingan.toml (production-like) + Secret env accepted by pingan --check-config $s" \
      check_config_expect "$s" "$TMP/prod.toml" "$TMP/prod.env" 'retention_days = 730' 'kafka-0.kafka:9092' 'key_id = "k2"'
  done
}

# --- systemd -------------------------------------------------------------------------------
sec_systemd() {
  section "systemd: deploy/systemd"
  if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "    installing Debian's systemd (for systemd-analyze)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd </dev/null >"$TMP/apt.log" 2>&1 ||
      { tail -n 5 "$TMP/apt.log"; }
  fi
  mkdir -p "$TMP/units"
  local f
  # ExecStart points at the binary under test, so that verify also checks it is executable.
  for f in deploy/systemd/*.service deploy/systemd/*.target; do
    sed "s|/usr/local/bin/pingan|$PINGAN_BIN|" "$f" >"$TMP/units/$(basename "$f")"
  done
  step "systemd-analyze verify: every unit parses, no unknown or invalid setting" \
    sh -c "cd '$TMP/units' && out=\$(systemd-analyze verify pingan-*.service pingan.target 2>&1); [ -z \"\$out\" ] || { echo \"\$out\"; exit 1; }"
  step "every service unit is wanted by pingan.target and part of it" \
    sh -c "for s in ingest classify aggregate serve migrate; do grep -q \"pingan-\$s.service\" deploy/systemd/pingan.target && grep -q '^PartOf=pingan.target' deploy/systemd/pingan-\$s.service || exit 1; done"
  local s
  for s in ingest classify aggregate serve migrate; do
    step "deploy/systemd/pingan.toml + pingan.env.example accepted by pingan --check-config $s" \
      check_config "$s" deploy/systemd/pingan.toml deploy/systemd/pingan.env.example
  done
}

# --- compose -------------------------------------------------------------------------------
sec_compose() {
  section "compose: deploy/local/compose.yaml (validated; no container engine runs it here)"
  mkdir -p "$TMP/compose-env"
  step "compose-go loads it; services, image, commands, dependencies, health checks, loopback ports" \
    "$CHECKS" compose -env-out "$TMP/compose-env" deploy/local/compose.yaml
  local s
  for s in migrate ingest classify aggregate serve; do
    step "pingan-$s: the image's pingan.toml + its Compose environment accepted by pingan --check-config" \
      check_config "$s" deploy/image/pingan.toml "$TMP/compose-env/pingan-$s.env"
  done
}

# --- prometheus ----------------------------------------------------------------------------
sec_prometheus() {
  section "prometheus: deploy/prometheus"
  step "promtool check config prometheus.yml (and the rules it loads)" "$PROMTOOL" check config deploy/prometheus/prometheus.yml
  step "promtool check rules pingan-rules.yml" "$PROMTOOL" check rules deploy/prometheus/pingan-rules.yml
  step "promtool test rules pingan-rules.test.yml" "$PROMTOOL" test rules deploy/prometheus/pingan-rules.test.yml
  step "every alert has a firing and a silent test case" \
    "$CHECKS" rules-coverage deploy/prometheus/pingan-rules.yml deploy/prometheus/pingan-rules.test.yml
}

# --- grafana -------------------------------------------------------------------------------
sec_grafana() {
  section "grafana: deploy/grafana"
  step "dashboards are what generate.py writes" python3 deploy/grafana/generate.py --check
  step "dashboard structure (uids, panels, grid, datasource variable)" "$CHECKS" dashboards deploy/grafana/dashboards
}

# --- metrics -------------------------------------------------------------------------------
REQUIRED_METRICS=(
  pingan_stage_received_events_total pingan_stage_emitted_events_total pingan_stage_lag_events
  pingan_stage_batch_age_seconds pingan_stage_dead_letters_total pingan_stage_sink_retries_total
  pingan_aggregator_insert_outcomes_total pingan_alerts_emitted_total pingan_alerts_resyncs_total
  pingan_alerts_detector_bytes pingan_ingest_requests_total pingan_query_http_request_duration_seconds
)

port_free() { ! timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

start_service() { # NAME PORT_ENV PORT
  local svc="$1"
  env -i PATH="$PATH" RUST_LOG=warn \
    PINGAN__KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:1 PINGAN__KAFKA__MESSAGE_TIMEOUT=1s \
    PINGAN__CLICKHOUSE__URL=http://127.0.0.1:1 \
    PINGAN__CLASSIFIER__GROUP_ID=pingan-deploy-test PINGAN__AGGREGATOR__GROUP_ID=pingan-deploy-test \
    "$2=127.0.0.1:$3" "$PINGAN_BIN" --dev "$svc" >"$TMP/$svc.log" 2>&1 </dev/null &
  PIDS+=($!)
}

wait_http() { # URL SECONDS
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.3
  done
}

# Runs inside step's command substitution (a subshell): it stops the services it started itself.
stop_started() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}

exercise_and_scrape() {
  trap stop_started RETURN
  local pi=$PORT0 pc=$((PORT0 + 1)) pa=$((PORT0 + 2)) ps=$((PORT0 + 3)) p
  for p in $pi $pc $pa $ps; do port_free "$p" || { echo "port $p is in use (set PINGAN_DEPLOY_TEST_PORT)"; return 1; }; done
  start_service ingest PINGAN__INGEST__LISTEN $pi
  start_service classify PINGAN__CLASSIFIER__ADMIN_LISTEN $pc
  start_service aggregate PINGAN__AGGREGATOR__ADMIN_LISTEN $pa
  start_service serve PINGAN__SERVE__LISTEN $ps
  local s url
  for s in "ingest $pi" "classify $pc" "aggregate $pa" "serve $ps"; do
    url="http://127.0.0.1:${s#* }/healthz"
    wait_http "$url" 30 || { echo "${s% *} did not answer $url within 30 s:"; tail -n 20 "$TMP/${s% *}.log"; return 1; }
  done
  # traffic that touches the metrics without Kafka or ClickHouse: a malformed call (400), a valid
  # one that Kafka cannot acknowledge (503 after message_timeout), readiness (503), API queries
  # whose ClickHouse query fails (5xx)
  curl -s -o /dev/null -X POST -H 'content-type: application/json' --data '{"calls":[{"nope":1}]}' "http://127.0.0.1:$pi/v1/calls" || true
  curl -s -o /dev/null -X POST -H 'content-type: application/json' --data-binary @schemas/events/examples/call-input.single.json "http://127.0.0.1:$pi/v1/calls" || true
  curl -s -o /dev/null "http://127.0.0.1:$pi/readyz" || true
  curl -s -o /dev/null "http://127.0.0.1:$ps/v1/counts?from=2026-01-01T00:00:00%2B08:00&to=2026-01-02T00:00:00%2B08:00&group_by=category" || true
  curl -s -o /dev/null "http://127.0.0.1:$ps/readyz" || true
  "$CHECKS" metrics -crates crates -allow up \
    -scrape "http://127.0.0.1:$pi/metrics" -scrape "http://127.0.0.1:$pc/metrics" \
    -scrape "http://127.0.0.1:$pa/metrics" -scrape "http://127.0.0.1:$ps/metrics" \
    deploy/prometheus/pingan-rules.yml deploy/grafana/dashboards
}

sec_metrics() {
  section "metrics: rules and dashboards vs the code and the running services"
  local -a req=()
  local m
  for m in "${REQUIRED_METRICS[@]}"; do req+=(-require "$m"); done
  step "every metric in the rules and dashboards is registered by the code; the dashboards cover throughput, lag, freshness, DLQ, retries, detector, ingest status, query latency" \
    "$CHECKS" metrics -crates crates -allow up "${req[@]}" deploy/prometheus/pingan-rules.yml deploy/grafana/dashboards
  step "ingest, classify, aggregate, serve started on 127.0.0.1:$PORT0-$((PORT0 + 3)): /metrics match the code scan (names, types)" \
    exercise_and_scrape
}

T0=$SECONDS
section "deploy/checks itself"
step "gofmt and go vet of deploy/checks" \
  sh -c 'cd deploy/checks && out=$(gofmt -l .) && [ -z "$out" ] || { echo "gofmt: $out"; exit 1; }; go vet ./...'
for s in "${SECTIONS[@]}"; do
  case "$s" in
    image | helm | systemd | compose | prometheus | grafana | metrics) "sec_$s" ;;
    *) echo "unknown section $s" >&2; exit 2 ;;
  esac
done
if ((FAILED > 0)); then
  printf 'failed: %s\n' "${FAILURES[@]}"
fi
echo "test-deploy took $((SECONDS - T0))s"
echo "test-deploy: $PASSED passed, $FAILED failed"
((FAILED == 0))
