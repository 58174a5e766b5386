#!/usr/bin/env bash
# tests/browser/run.sh — the QR form in a real headless Chromium, end to end (issue 3).
#
# Starts `pingan ingest` (the debug binary, built first) on a free local port against the local
# broker of `make up`, signs a doorplate with `pingan qr sign`, drives Debian's chromium through
# tests/browser/qr-form.mjs (open the signed URL, fill in, submit, see the 事件编号), then checks
# that the event id is on pingan.qrscan.v1. Screenshot: target/artifacts/qr-form.png.
#
# Needs: node + npm, /usr/bin/chromium (`apt-get install -y chromium`), Kafka from `make up`.
# Env: PINGAN_BROWSER_PORT (default: a free port), PINGAN_BROWSER_PLATE (default MHQR-101-00100215).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PORT="${PINGAN_BROWSER_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
PLATE="${PINGAN_BROWSER_PLATE:-MHQR-101-00100215}"
BIN="$ROOT/target/debug/pingan"
LOG="$ROOT/target/artifacts/browser-ingest.log"
mkdir -p "$ROOT/target/artifacts"

[[ -x /usr/bin/chromium || -n "${CHROMIUM:-}" ]] || { echo "run.sh: /usr/bin/chromium missing: apt-get install -y chromium" >&2; exit 1; }
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
cargo build --locked -p pingan >/dev/null

PINGAN__INGEST__LISTEN="127.0.0.1:$PORT" "$BIN" --dev ingest >"$LOG" 2>&1 &
INGEST_PID=$!
cleanup() {
  if kill -0 "$INGEST_PID" 2>/dev/null; then
    kill -TERM "$INGEST_PID" 2>/dev/null || true
    wait "$INGEST_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$INGEST_PID" 2>/dev/null || { echo "run.sh: pingan ingest exited; log:" >&2; cat "$LOG" >&2; exit 1; }
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "run.sh: ingest not ready; log:" >&2; cat "$LOG" >&2; exit 1; }

SIGNED="$("$BIN" --dev qr sign "$PLATE")"
echo "signed path: $SIGNED"
RESULT="$(node tests/browser/qr-form.mjs "http://127.0.0.1:$PORT" "$SIGNED")"
echo "browser: $RESULT"
EVENT_ID="$(sed -n 's/.*"event_id":"\([0-9a-f-]*\)".*/\1/p' <<<"$RESULT")"
[[ -n "$EVENT_ID" ]] || { echo "run.sh: no event id from the browser" >&2; exit 1; }

# The event must be on the topic, keyed by its id.
# shellcheck source=deploy/local/lib.sh
source "$ROOT/deploy/local/lib.sh"
FOUND="$(java -cp "$KAFKA_LIBS/*" org.apache.kafka.tools.consumer.ConsoleConsumer \
  --bootstrap-server "${PINGAN__KAFKA__BOOTSTRAP_SERVERS:-127.0.0.1:9092}" --topic pingan.qrscan.v1 \
  --from-beginning --timeout-ms 15000 --property print.key=true 2>/dev/null | grep -c "^$EVENT_ID" || true)"
if [[ "$FOUND" -ge 1 ]]; then
  echo "ok: event $EVENT_ID is on pingan.qrscan.v1; screenshot target/artifacts/qr-form.png"
else
  echo "run.sh: event $EVENT_ID not found on pingan.qrscan.v1" >&2
  exit 1
fi
