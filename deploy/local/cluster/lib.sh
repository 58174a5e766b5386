# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are used by the scripts that source this file
# Layout, ports and helpers of the local cluster (`make up-cluster`), shared by
# deploy/local/cluster/*.sh. Source it; do not execute it. It sources ../lib.sh
# (paths, output, pid-file and install helpers of the single-node scripts).
#
# Nodes (each one process with one pid file in .dev/cluster/pids/NODE.pid):
#   kafka-1 kafka-2 kafka-3   Kafka KRaft, broker + controller in one JVM each
#   zookeeper                 ZooKeeper, standalone (ClickHouse replication + ON CLUSTER DDL)
#   clickhouse-1 clickhouse-2 ClickHouse 18.16, two replicas of one shard
# Ports are fixed, on 127.0.0.1 only, all below the kernel's ephemeral range
# (32768+) and clear of the single-node services (9092/9093, 8123/9000).

# shellcheck source=deploy/local/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"

CLUSTER_SRC="$LOCAL_DIR/cluster"
CLUSTER_DIR="$DEV_DIR/cluster"
CLUSTER_PIDS="$CLUSTER_DIR/pids"
# Generous: three JVMs and two ClickHouse servers share two cores on a cold start.
CLUSTER_START_TIMEOUT="${PINGAN_LOCAL_START_TIMEOUT:-180}"

# --- Kafka: three combined broker+controller nodes ---------------------------
KAFKA_NODES=(kafka-1 kafka-2 kafka-3)
# Fixed cluster id: base64url("pingan-cluster-3") = 16 bytes, as KRaft wants.
CLUSTER_KAFKA_ID="cGluZ2FuLWNsdXN0ZXItMw"
CLUSTER_KAFKA_HEAP_OPTS="${PINGAN_CLUSTER_KAFKA_HEAP_OPTS:--Xms128m -Xmx384m}"
kafka_port() { printf '%s' $((19090 + ${1#kafka-})); }            # kafka-N -> 1909N (clients)
kafka_controller_port() { printf '%s' $((19190 + ${1#kafka-})); } # kafka-N -> 1919N (KRaft quorum)
CLUSTER_BOOTSTRAP="127.0.0.1:19091,127.0.0.1:19092,127.0.0.1:19093"
CLUSTER_QUORUM_VOTERS="1@127.0.0.1:19191,2@127.0.0.1:19192,3@127.0.0.1:19193"
CLUSTER_KAFKA_RF=3
CLUSTER_KAFKA_MIN_ISR=2
CLUSTER_KAFKA_CLIENT_PROPS="$CLUSTER_DIR/kafka-client.properties"
CLUSTER_KAFKA_TOOLS_LOG="$CLUSTER_DIR/kafka-tools.log"

# --- ZooKeeper ----------------------------------------------------------------
ZK_POM="$CLUSTER_SRC/zookeeper/pom.xml"
ZK_VERSION="$(sed -n 's:.*<zookeeper.version>\(.*\)</zookeeper.version>.*:\1:p' "$ZK_POM" | head -n1)"
ZK_LIBS="$CACHE_DIR/zookeeper/libs"
ZK_PORT=12181
ZK_HEAP_OPTS="${PINGAN_CLUSTER_ZK_HEAP_OPTS:--Xms32m -Xmx128m}"

# --- ClickHouse: two replicas of one shard ----------------------------------
CH_NODES=(clickhouse-1 clickhouse-2)
CH_CLUSTER="pingan_cluster"     # <remote_servers> name: ... ON CLUSTER pingan_cluster
CH_DDL_PATH="/clickhouse/task_queue/ddl"
ch_http_port() { printf '%s' $((18120 + ${1#clickhouse-})); }        # clickhouse-N -> 1812N
ch_tcp_port() { printf '%s' $((19000 + ${1#clickhouse-})); }         # clickhouse-N -> 1900N
ch_interserver_port() { printf '%s' $((19010 + ${1#clickhouse-})); } # clickhouse-N -> 1901N (replica fetches)
ch_replica() { printf 'r%s' "${1#clickhouse-}"; }                    # {replica} macro
ch_url() { printf 'http://127.0.0.1:%s' "$(ch_http_port "$1")"; }

ALL_NODES=("${KAFKA_NODES[@]}" zookeeper "${CH_NODES[@]}")

# --- nodes --------------------------------------------------------------------
node_dir() { printf '%s/%s' "$CLUSTER_DIR" "$1"; }
node_pidfile() { printf '%s/%s.pid' "$CLUSTER_PIDS" "$1"; }

# node_conf NODE -> the config file on the node's command line; its absolute path
# is what pid_alive matches, so a reused pid (or the single-node services, or
# another clone's cluster) can never be taken for this node.
node_conf() {
  case "$1" in
    kafka-*) printf '%s/server.properties' "$(node_dir "$1")" ;;
    zookeeper) printf '%s/zoo.cfg' "$(node_dir "$1")" ;;
    clickhouse-*) printf '%s/etc/config.xml' "$(node_dir "$1")" ;;
    *) die "unknown node '$1'" ;;
  esac
}

# node_ports NODE -> the TCP ports it listens on.
node_ports() {
  case "$1" in
    kafka-*) printf '%s %s' "$(kafka_port "$1")" "$(kafka_controller_port "$1")" ;;
    zookeeper) printf '%s' "$ZK_PORT" ;;
    clickhouse-*) printf '%s %s %s' "$(ch_http_port "$1")" "$(ch_tcp_port "$1")" "$(ch_interserver_port "$1")" ;;
  esac
}

# node_pid NODE -> pid of the running node (empty if not running).
node_pid() {
  local pid
  pid="$(read_pid "$(node_pidfile "$1")")"
  pid_alive "$pid" "$(node_conf "$1")" && printf '%s' "$pid"
  return 0
}

# expand_nodes ARG... -> sets NODES to the selected nodes, in start order.
# Accepts all, kafka, zookeeper (zk), clickhouse (ch) and single node names.
expand_nodes() {
  NODES=()
  local a n
  (($# > 0)) || set -- all
  for a in "$@"; do
    case "$a" in
      all) NODES+=("${ALL_NODES[@]}") ;;
      kafka) NODES+=("${KAFKA_NODES[@]}") ;;
      zookeeper | zk) NODES+=(zookeeper) ;;
      clickhouse | ch) NODES+=("${CH_NODES[@]}") ;;
      kafka-[123] | clickhouse-[12]) NODES+=("$a") ;;
      *) die "unknown node or group '$a' (all, kafka, zookeeper, clickhouse, ${ALL_NODES[*]})" ;;
    esac
  done
  # de-duplicate, keep ALL_NODES order
  local -a picked=()
  for n in "${ALL_NODES[@]}"; do
    [[ " ${NODES[*]} " == *" $n "* ]] && picked+=("$n")
  done
  NODES=("${picked[@]}")
}

# spawn_node NODE CWD CMD...: start CMD detached (own session, stdin closed, fd 9
# -- the lock -- closed) with stdout/stderr appended to NODE_DIR/stdout.log; the
# wrapper writes its pid to the node's pid file and execs CMD, so the pid file
# holds exactly the server's pid (same pattern as ../up.sh).
spawn_node() {
  local node="$1" cwd="$2" pidfile out
  shift 2
  pidfile="$(node_pidfile "$node")"
  out="$(node_dir "$node")/stdout.log"
  mkdir -p "$CLUSTER_PIDS" "$(node_dir "$node")"
  rm -f "$pidfile"
  printf '\n==== %s starting %s (cluster/up.sh) ====\n' "$(date -u +%FT%TZ)" "$node" >>"$out"
  # shellcheck disable=SC2016  # expanded by the inner bash
  setsid bash -c 'echo $$ >"$0"; cd "$1" || exit 1; shift; exec "$@"' "$pidfile" "$cwd" "$@" \
    >>"$out" 2>&1 </dev/null 9>&- &
  for _ in $(seq 1 20); do [[ -s "$pidfile" ]] && break; sleep 0.1; done
  info "$node: pid $(read_pid "$pidfile")"
}

# --- ClusterAdmin: the Kafka steps of up.sh in one JVM --------------------------
CLUSTER_ADMIN_SRC="$CLUSTER_SRC/kafka/ClusterAdmin.java"
CLUSTER_ADMIN_CLASSES="$CACHE_DIR/kafka/cluster-admin"

# build_cluster_admin: javac it against the Kafka jars, once per source + jar set.
build_cluster_admin() {
  local stamp
  stamp="$(cat "$CLUSTER_ADMIN_SRC" "$KAFKA_LIBS/.stamp" | sha256sum | cut -d' ' -f1)"
  [[ -f "$CLUSTER_ADMIN_CLASSES/.stamp" && "$(cat "$CLUSTER_ADMIN_CLASSES/.stamp")" == "$stamp" ]] && return 0
  command -v javac >/dev/null 2>&1 || die "javac not found (apt-get install openjdk-17-jdk-headless)"
  local tmp="$CLUSTER_ADMIN_CLASSES.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  javac -nowarn -d "$tmp" -cp "$KAFKA_LIBS/*" "$CLUSTER_ADMIN_SRC" >"$tmp/javac.log" 2>&1 ||
    { cat "$tmp/javac.log" >&2; rm -rf "$tmp"; die "javac $CLUSTER_ADMIN_SRC failed"; }
  printf '%s\n' "$stamp" >"$tmp/.stamp"
  rm -rf "$CLUSTER_ADMIN_CLASSES"
  mv "$tmp" "$CLUSTER_ADMIN_CLASSES"
}

# cluster_admin ARGS...: run it (see ClusterAdmin.java); client logs to the tools log.
cluster_admin() {
  mkdir -p "$CLUSTER_DIR"
  java -Xms32m -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$LOCAL_DIR/kafka/log4j2-tools.xml" \
    -cp "$KAFKA_LIBS/*:$CLUSTER_ADMIN_CLASSES" ClusterAdmin "$CLUSTER_BOOTSTRAP" "$@" 2>>"$CLUSTER_KAFKA_TOOLS_LOG"
}

# --- probes -------------------------------------------------------------------
# cluster_kafka_java CLASS ARGS...: a Kafka tool (short-lived JVM), stderr to the tools log.
cluster_kafka_java() {
  mkdir -p "$CLUSTER_DIR"
  kafka_java "$@" 2>>"$CLUSTER_KAFKA_TOOLS_LOG"
}

# kafka_live_brokers -> ids of the brokers that the cluster metadata lists as
# registered and unfenced (empty if no broker answers).
kafka_live_brokers() {
  cluster_kafka_java org.apache.kafka.tools.BrokerApiVersionsCommand \
    --bootstrap-server "$CLUSTER_BOOTSTRAP" --command-config "$CLUSTER_KAFKA_CLIENT_PROPS" |
    sed -n 's/^[^ ]* (id: \([0-9]*\) .*/\1/p' | sort -n | tr '\n' ' ' | sed 's/ $//'
}

# zk_cmd WORD -> ZooKeeper's answer to a four-letter command (ruok, srvr, mntr).
zk_cmd() {
  # shellcheck disable=SC2016  # expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1; printf "%s" "$2" >&3; cat <&3' _ "$ZK_PORT" "$1" 2>/dev/null
}

# ch_stale_replicas NODE -> how many replicated tables on NODE are read-only or
# not yet activated by the running process (is_active znode missing, or older
# than the server: still the session of a killed predecessor). Fails if NODE
# does not answer.
ch_stale_replicas() {
  local node="$1" rows path stale=0 fresh
  rows="$(ch_query "$node" "SELECT replica_path, is_readonly OR is_session_expired FROM system.replicas")" || return 1
  while IFS=$'\t' read -r path ro; do
    [[ -n "$path" ]] || continue
    if [[ "$ro" == 1 ]]; then stale=$((stale + 1)); continue; fi
    fresh="$(ch_query "$node" "SELECT count() FROM system.zookeeper
      WHERE path = '$path' AND name = 'is_active' AND ctime >= now() - uptime()")" || return 1
    [[ "$fresh" == 1 ]] || stale=$((stale + 1))
  done <<<"$rows"
  printf '%s' "$stale"
}

# ch_query NODE SQL [SETTINGS] -> result (TabSeparated); SETTINGS is a URL query
# string ("insert_quorum=2&..."). On an HTTP error it fails and prints
# ClickHouse's exception text ("Code: NNN, e.displayText() = ...").
ch_query() {
  curl -sS --fail-with-body --max-time "${CH_QUERY_TIMEOUT:-30}" "$(ch_url "$1")/?${3:-}" --data-binary "$2"
}
