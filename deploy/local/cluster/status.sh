#!/usr/bin/env bash
# deploy/local/cluster/status.sh
#
# One line per node of the local cluster: pid-file state and whether it answers
# (brokers: registered with the quorum; ZooKeeper: serving; ClickHouse: /ping,
# and its replicated tables writable and caught up); then the KRaft quorum
# leader and the number of under-replicated partitions.
# Exit 0 iff every node answers and nothing is under-replicated or read-only.
set -euo pipefail

# shellcheck source=deploy/local/cluster/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

case "${1:-}" in -h | --help) sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

rc=0
line() { # line NAME OK TEXT
  local mark
  if [[ "$2" == 1 ]]; then mark="${C_GREEN}up  ${C_OFF}"; else mark="${C_RED}DOWN${C_OFF}"; rc=1; fi
  printf '%-13s %s  %s\n' "$1" "$mark" "$3"
}
pid_state() {
  local f pid
  f="$(node_pidfile "$1")"
  pid="$(read_pid "$f")"
  if [[ ! -f "$f" ]]; then printf 'no pid file'
  elif pid_alive "$pid" "$(node_conf "$1")"; then
    if [[ "$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" == T ]]; then printf 'pid %s STOPPED (SIGSTOP)' "$pid"
    else printf 'pid %s alive' "$pid"; fi
  else printf 'pid %s NOT running (stale pid file)' "$pid"
  fi
}

# The Kafka tool JVMs take a few seconds each: run them side by side.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
any_kafka=''
for node in "${KAFKA_NODES[@]}"; do port_open 127.0.0.1 "$(kafka_port "$node")" && any_kafka=1; done
if [[ -n "$any_kafka" && -f "$CLUSTER_KAFKA_CLIENT_PROPS" ]]; then
  kafka_live_brokers >"$tmp/live" &
  cluster_kafka_java org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$CLUSTER_BOOTSTRAP" \
    --command-config "$CLUSTER_KAFKA_CLIENT_PROPS" describe --status >"$tmp/quorum" &
  cluster_kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$CLUSTER_BOOTSTRAP" \
    --command-config "$CLUSTER_KAFKA_CLIENT_PROPS" --describe --under-replicated-partitions >"$tmp/urp" &
  wait || true
fi
live=" $(cat "$tmp/live" 2>/dev/null || true) "

for node in "${KAFKA_NODES[@]}"; do
  port="$(kafka_port "$node")"
  if [[ "$live" == *" ${node#kafka-} "* ]]; then k=1 text="127.0.0.1:$port, registered"
  elif port_open 127.0.0.1 "$port"; then k=0 text="127.0.0.1:$port open, NOT registered"
  else k=0 text="127.0.0.1:$port not answering"; fi
  line "$node" "$k" "$(pid_state "$node"); $text"
done

srvr="$(zk_cmd srvr || true)"
if [[ "$srvr" == *"Mode: standalone"* ]]; then
  line zookeeper 1 "$(pid_state zookeeper); 127.0.0.1:$ZK_PORT serving, $(sed -n 's/^Connections: *//p' <<<"$srvr") connections, $(sed -n 's/^Node count: *//p' <<<"$srvr") znodes"
else
  line zookeeper 0 "$(pid_state zookeeper); 127.0.0.1:$ZK_PORT not serving"
fi

for node in "${CH_NODES[@]}"; do
  url="$(ch_url "$node")"
  if clickhouse_ping "$url"; then
    r="$(CH_QUERY_TIMEOUT=5 ch_query "$node" "SELECT count(), countIf(is_readonly OR is_session_expired), max(absolute_delay), sum(queue_size) FROM system.replicas" || true)"
    read -r n ro delay queue <<<"${r:-? ? ? ?}"
    if [[ "$ro" == 0 ]]; then c=1; else c=0; fi
    line "$node" "$c" "$(pid_state "$node"); $url ok, replica $(ch_replica "$node"): $n replicated tables, $ro read-only, max delay ${delay}s, queue $queue"
  else
    line "$node" 0 "$(pid_state "$node"); $url/ping not answering"
  fi
done

if [[ -s "$tmp/quorum" ]]; then
  leader="$(sed -n 's/^LeaderId: *//p' "$tmp/quorum")"
  voters="$(sed -n 's/^CurrentVoters: *//p' "$tmp/quorum" | grep -o '"id": *[0-9]*' | grep -o '[0-9]*$' | tr '\n' ' ' | sed 's/ $//')"
  urp="$(grep -c 'Partition:' "$tmp/urp" || true)"
  printf 'kraft quorum  leader %s, voters %s; under-replicated partitions: %s\n' "${leader:-?}" "${voters:-?}" "$urp"
  [[ "$urp" == 0 ]] || rc=1
fi
exit "$rc"
