#!/usr/bin/env bash
# deploy/local/cluster/down.sh [all|kafka|zookeeper|clickhouse|NODE...] [--purge]
#
# Stops exactly the processes deploy/local/cluster/up.sh started, found through
# their pid files in .dev/cluster/pids/ (never by name; each pid is checked
# against the node's own config path on its command line). SIGTERM, wait up to
# PINGAN_LOCAL_STOP_TIMEOUT seconds (default 30), then SIGKILL. Order: the
# ClickHouse replicas, then ZooKeeper, then the brokers one by one (the last
# broker standing gets SIGKILL after 5 s: see stop_brokers). The single-node
# services of `make up` (.dev/pids/) are never touched.
# --purge also deletes the stopped nodes' data (.dev/cluster/NODE).
set -euo pipefail

# shellcheck source=deploy/local/cluster/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

purge='' args=()
for arg in "$@"; do
  case "$arg" in
    --purge) purge=1 ;;
    -h | --help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$arg") ;;
  esac
done
expand_nodes "${args[@]}"

mkdir -p "$CLUSTER_PIDS"
take_lock

# stop_nodes NODE...: stop them side by side, each with stop_pid from ../lib.sh.
stop_nodes() {
  local node pids=() rc=0 p
  for node in "$@"; do
    resume "$node"
    stop_pid "$node" "$(node_pidfile "$node")" "$(node_conf "$node")" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return "$rc"
}

# A node paused by `kill.sh NODE STOP` would not act on SIGTERM: resume it first.
resume() {
  local pid
  pid="$(node_pid "$1")"
  [[ -z "$pid" ]] || kill -CONT "$pid" 2>/dev/null || true
}

# stop_brokers NODE...: one after the other. A broker's controlled shutdown
# (leaders moved away, clean log close) needs the KRaft quorum -- a majority of
# the three combined nodes -- to approve it, so while two or more stay up each
# stop is clean. The very last broker of the cluster can never get that
# approval (it would wait 5 minutes): it gets SIGTERM, LAST_BROKER_GRACE
# seconds, then SIGKILL, and recovers its logs at the next start.
LAST_BROKER_GRACE="${PINGAN_CLUSTER_LAST_BROKER_GRACE:-5}"
stop_brokers() {
  local node running=0 rc=0 pid waited
  for node in "${KAFKA_NODES[@]}"; do [[ -z "$(node_pid "$node")" ]] || running=$((running + 1)); done
  for node in "$@"; do
    pid="$(node_pid "$node")"
    if [[ -z "$pid" ]] || ((running > 1)); then
      resume "$node"
      stop_pid "$node" "$(node_pidfile "$node")" "$(node_conf "$node")" || rc=1
      [[ -z "$pid" ]] || running=$((running - 1))
      continue
    fi
    step "stopping $node (pid $pid), the last broker: no quorum left to approve a controlled shutdown"
    resume "$node"
    kill -TERM "$pid" 2>/dev/null || true
    waited=0
    while pid_alive "$pid" "$(node_conf "$node")" && ((waited < LAST_BROKER_GRACE * 2)); do sleep 0.5; waited=$((waited + 1)); done
    if pid_alive "$pid" "$(node_conf "$node")"; then
      info "$node: SIGKILL after ${LAST_BROKER_GRACE}s (expected; its logs are recovered at the next start)"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do pid_alive "$pid" "$(node_conf "$node")" || break; sleep 0.1; done
    fi
    if pid_alive "$pid" "$(node_conf "$node")"; then
      warn "$node (pid $pid) is still running"
      rc=1
    else
      rm -f "$(node_pidfile "$node")"
      ok "$node stopped"
    fi
  done
  return "$rc"
}

rc=0
group=()
for node in "${CH_NODES[@]}"; do [[ " ${NODES[*]} " == *" $node "* ]] && group+=("$node"); done
((${#group[@]} == 0)) || stop_nodes "${group[@]}" || rc=1
[[ " ${NODES[*]} " != *" zookeeper "* ]] || stop_nodes zookeeper || rc=1
group=()
for node in "${KAFKA_NODES[@]}"; do [[ " ${NODES[*]} " == *" $node "* ]] && group+=("$node"); done
((${#group[@]} == 0)) || stop_brokers "${group[@]}" || rc=1

if [[ -n "$purge" ]]; then
  for node in "${NODES[@]}"; do
    if [[ -n "$(node_pid "$node")" ]]; then
      warn "$node still running: data kept"
    else
      step "purging $node data (${CLUSTER_DIR#"$ROOT_DIR"/}/$node)"
      rm -rf "$(node_dir "$node")"
    fi
  done
fi
exit "$rc"
