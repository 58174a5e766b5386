#!/usr/bin/env bash
# deploy/local/status.sh
#
# For each service: pid-file state, process alive, port answering.
# Exit 0 if Kafka and ClickHouse both answer, 1 otherwise.
# Honours PINGAN__KAFKA__BOOTSTRAP_SERVERS / PINGAN__CLICKHOUSE__URL (external services).
set -euo pipefail

# shellcheck source=deploy/local/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

case "${1:-}" in -h | --help) sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

all_up=0

pid_state() { # pid_state FILE PATTERN -> human text
  local pid
  pid="$(read_pid "$1")"
  if [[ ! -f "$1" ]]; then printf 'no pid file'
  elif [[ -z "$pid" ]]; then printf 'pid file unreadable'
  elif pid_alive "$pid" "$2"; then printf 'pid %s alive' "$pid"
  else printf 'pid %s NOT running (stale pid file)' "$pid"
  fi
}

line() { # line NAME STATE_OK TEXT
  local mark
  if [[ "$2" == 1 ]]; then mark="${C_GREEN}up  ${C_OFF}"; else mark="${C_RED}DOWN${C_OFF}"; all_up=1; fi
  printf '%-11s %s  %s\n' "$1" "$mark" "$3"
}

# --- kafka
kafka_target="${PINGAN__KAFKA__BOOTSTRAP_SERVERS:-$KAFKA_HOST:$KAFKA_PORT}"
if reach="$(first_reachable "$kafka_target")"; then k_ok=1; k_port="port $reach answering"; else k_ok=0; k_port="$kafka_target not answering"; fi
line kafka "$k_ok" "$(pid_state "$KAFKA_PID" kafka.Kafka); $k_port${PINGAN__KAFKA__BOOTSTRAP_SERVERS:+ (PINGAN__KAFKA__BOOTSTRAP_SERVERS)}"

# --- clickhouse
ch_target="${PINGAN__CLICKHOUSE__URL:-http://$CH_HOST:$CH_HTTP_PORT}"
ch_target="${ch_target%/}"
if clickhouse_ping "$ch_target"; then c_ok=1; c_port="$ch_target/ping -> Ok."; else c_ok=0; c_port="$ch_target/ping not answering"; fi
line clickhouse "$c_ok" "$(pid_state "$CH_PID" clickhouse); $c_port${PINGAN__CLICKHOUSE__URL:+ (PINGAN__CLICKHOUSE__URL)}"

exit "$all_up"
