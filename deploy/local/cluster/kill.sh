#!/usr/bin/env bash
# deploy/local/cluster/kill.sh NODE [KILL|STOP|CONT]
#
# Fault injection on one node of the local cluster (kafka-1..3, zookeeper,
# clickhouse-1..2), found by its pid file and checked against its own config
# path on the command line (never by name). KILL (default) is kill -9 and waits
# until the process is gone; the pid file stays behind, stale, as after a real
# crash, and `deploy/local/cluster/up.sh NODE` restarts the node on its data.
# STOP / CONT pause and resume it (a hung broker or replica).
set -euo pipefail

# shellcheck source=deploy/local/cluster/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

case "${1:-}" in
  -h | --help | '') sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; [[ -n "${1:-}" ]]; exit ;;
esac
node="$1" sig="${2:-KILL}"
case "$sig" in KILL | 9 | -9) sig=KILL ;; STOP | CONT) ;; *) die "signal must be KILL, STOP or CONT" ;; esac
[[ " ${ALL_NODES[*]} " == *" $node "* ]] || die "unknown node '$node' (one of: ${ALL_NODES[*]})"

pidfile="$(node_pidfile "$node")"
pid="$(read_pid "$pidfile")"
pid_alive "$pid" "$(node_conf "$node")" || die "$node is not running (pid file: ${pidfile#"$ROOT_DIR"/} -> '${pid}')"
step "kill -$sig $node (pid $pid)"
kill -"$sig" "$pid"
[[ "$sig" == KILL ]] || { ok "$node (pid $pid) got SIG$sig"; exit 0; }
for _ in $(seq 1 100); do
  pid_alive "$pid" "$(node_conf "$node")" || { ok "$node (pid $pid) killed"; exit 0; }
  sleep 0.1
done
die "$node (pid $pid) still alive after SIGKILL"
