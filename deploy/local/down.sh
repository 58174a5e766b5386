#!/usr/bin/env bash
# deploy/local/down.sh [all|kafka|clickhouse] [--purge]
#
# Stops exactly the processes deploy/local/up.sh started, found through their
# pid files in .dev/pids/ (never by process name): SIGTERM, wait up to
# PINGAN_LOCAL_STOP_TIMEOUT seconds (default 30), then SIGKILL. Removes the pid files.
# Data stays in .dev/kafka and .dev/clickhouse unless --purge is given.
# Services used through PINGAN__KAFKA__BOOTSTRAP_SERVERS / PINGAN__CLICKHOUSE__URL
# were not started by us and are never touched.
set -euo pipefail

# shellcheck source=deploy/local/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

purge='' which=''
for arg in "$@"; do
  case "$arg" in
    --purge) purge=1 ;;
    -h | --help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) [[ -z "$which" ]] || die "only one service argument allowed"; which="$arg" ;;
  esac
done
parse_services "${which:-all}"

mkdir -p "$PID_DIR"
take_lock

for s in "${SERVICES[@]}"; do
  case "$s" in
    kafka)
      stop_pid kafka "$KAFKA_PID" kafka.Kafka
      if [[ -n "$purge" ]]; then
        step "purging Kafka data (${KAFKA_DIR#"$ROOT_DIR"/})"
        rm -rf "$KAFKA_DIR"
      fi
      ;;
    clickhouse)
      stop_pid clickhouse "$CH_PID" clickhouse
      if [[ -n "$purge" ]]; then
        step "purging ClickHouse data (${CH_DIR#"$ROOT_DIR"/})"
        rm -rf "$CH_DIR"
      fi
      ;;
  esac
done
