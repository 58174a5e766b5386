#!/usr/bin/env bash
# deploy/local/cluster/down.sh [all|kafka|zookeeper|clickhouse|NODE...] [--purge]
#
# Stops exactly the processes deploy/local/cluster/up.sh started, found through
# their pid files in .dev/cluster/pids/ (never by name; each pid is checked
# against the node's own config path on its command line). SIGTERM, wait up to
# PINGAN_LOCAL_STOP_TIMEOUT seconds (default 30), then SIGKILL. Order: the
# ClickHouse replicas, then ZooKeeper, then the three brokers together. The
# single-node services of `make up` (.dev/pids/) are never touched.
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

# stop_nodes NODE...: stop them in parallel (brokers: a lone survivor would wait
# for a controller quorum that is gone), each with stop_pid from ../lib.sh.
stop_nodes() {
  local node pids=() rc=0 p pid
  for node in "$@"; do
    # A node paused by `kill.sh NODE STOP` would not act on SIGTERM: resume it first.
    pid="$(node_pid "$node")"
    [[ -z "$pid" ]] || kill -CONT "$pid" 2>/dev/null || true
    stop_pid "$node" "$(node_pidfile "$node")" "$(node_conf "$node")" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return "$rc"
}

rc=0
group=()
for node in "${CH_NODES[@]}"; do [[ " ${NODES[*]} " == *" $node "* ]] && group+=("$node"); done
((${#group[@]} == 0)) || stop_nodes "${group[@]}" || rc=1
[[ " ${NODES[*]} " != *" zookeeper "* ]] || stop_nodes zookeeper || rc=1
group=()
for node in "${KAFKA_NODES[@]}"; do [[ " ${NODES[*]} " == *" $node "* ]] && group+=("$node"); done
((${#group[@]} == 0)) || stop_nodes "${group[@]}" || rc=1

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
