#!/usr/bin/env bash
# deploy/local/kill.sh <kafka|clickhouse>
#
# Fault injection: kill -9 the service started by up.sh (by its pid file, never
# by name) and wait until it is gone. The pid file is left behind, stale, as after
# a real crash; `deploy/local/up.sh <service>` restarts it with its data intact.
set -euo pipefail

# shellcheck source=deploy/local/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

case "${1:-}" in
  kafka) name=kafka file="$KAFKA_PID" pattern=kafka.Kafka ;;
  clickhouse | ch) name=clickhouse file="$CH_PID" pattern=clickhouse ;;
  -h | --help) sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "usage: deploy/local/kill.sh <kafka|clickhouse>" ;;
esac

pid="$(read_pid "$file")"
pid_alive "$pid" "$pattern" || die "$name is not running (pid file: ${file#"$ROOT_DIR"/} -> '${pid}')"
step "kill -9 $name (pid $pid)"
kill -KILL "$pid"
for _ in $(seq 1 100); do
  pid_alive "$pid" "$pattern" || { ok "$name (pid $pid) killed"; exit 0; }
  sleep 0.1
done
die "$name (pid $pid) still alive after SIGKILL"
