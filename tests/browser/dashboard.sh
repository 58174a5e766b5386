#!/usr/bin/env bash
# Browser test of the dashboard: a fresh database with ~5 weeks of synthetic events, a real
# `pingan serve` on a free port, headless Chromium (tests/browser/dashboard.mjs).
# Needs: make up (ClickHouse), /usr/bin/chromium (apt-get install -y chromium fonts-noto-cjk),
# web/node_modules (cd web && npm ci). Screenshot: target/artifacts/dashboard.png (not committed).
set -euo pipefail
cd "$(dirname "$0")/../.."
CH=${PINGAN_TEST_CLICKHOUSE_URL:-http://127.0.0.1:8123}
DB=pingan_browser_$(date +%s)_$RANDOM
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
[ -d web/node_modules/playwright-core ] || (cd web && npm ci --no-audit --no-fund)
cargo build -q -p pingan
cargo build -q -p pingan-query --example query_bench
export PINGAN__CLICKHOUSE__URL=$CH PINGAN__CLICKHOUSE__DATABASE=$DB PINGAN__SERVE__LISTEN=127.0.0.1:$PORT
cleanup() {
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  curl -s "$CH/" --data-binary "DROP DATABASE IF EXISTS $DB" >/dev/null || true
}
trap cleanup EXIT
./target/debug/pingan migrate >/dev/null
./target/debug/examples/query_bench --seed-only --events 40000 --days 35 --db "$DB" --url "$CH"
./target/debug/pingan --dev serve > target/browser-serve.log 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
node tests/browser/dashboard.mjs "http://127.0.0.1:$PORT/" "$CH" "$DB" target/artifacts/dashboard.png
