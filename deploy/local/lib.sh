# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are used by the scripts that source this file
# Shared helpers for deploy/local/*.sh (which run under `set -euo pipefail`). Source it; do not execute it.
#
# Everything is relative to the repository root, computed from this file's
# location, so the repo can be cloned anywhere (e.g. /tmp/ci-check).

LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(cd "$LOCAL_DIR/../.." && pwd)"

CACHE_DIR="$ROOT_DIR/.cache"
DEV_DIR="$ROOT_DIR/.dev"
PID_DIR="$DEV_DIR/pids"

# --- Kafka ------------------------------------------------------------------
KAFKA_POM="$LOCAL_DIR/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM" | head -n1)"
KAFKA_LIBS="$CACHE_DIR/kafka/libs"
KAFKA_DIR="$DEV_DIR/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOGS="$KAFKA_DIR/logs"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_CLIENT_PROPS="$KAFKA_DIR/client.properties"
KAFKA_PID="$PID_DIR/kafka.pid"
KAFKA_HOST=127.0.0.1
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
# Fixed cluster id: base64url("pingan-local-dev") = 16 bytes, as KRaft wants.
KAFKA_CLUSTER_ID="cGluZ2FuLWxvY2FsLWRldg"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
KAFKA_TOPICS=(
  pingan.call110.v1
  pingan.qrscan.v1
  pingan.enriched.v1
  pingan.alerts.v1
  pingan.call110.v1.dlq
  pingan.qrscan.v1.dlq
  pingan.enriched.v1.dlq
)
KAFKA_TOPIC_PARTITIONS=4

# --- ClickHouse -------------------------------------------------------------
CH_DIR="$DEV_DIR/clickhouse"
CH_ETC="$CH_DIR/etc"
CH_LOGS="$CH_DIR/log"
CH_PID="$PID_DIR/clickhouse.pid"
CH_HOST=127.0.0.1
CH_HTTP_PORT=8123
CH_TCP_PORT=9000

START_TIMEOUT="${PINGAN_LOCAL_START_TIMEOUT:-90}" # seconds, per service
STOP_TIMEOUT="${PINGAN_LOCAL_STOP_TIMEOUT:-30}"   # seconds before SIGKILL

# --- output -----------------------------------------------------------------
if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
  C_BOLD=$'\033[1m' C_GREEN=$'\033[32m' C_YELLOW=$'\033[33m' C_RED=$'\033[31m' C_OFF=$'\033[0m'
else
  C_BOLD='' C_GREEN='' C_YELLOW='' C_RED='' C_OFF=''
fi
step() { printf '%s==> %s%s\n' "$C_BOLD" "$*" "$C_OFF"; }
info() { printf '    %s\n' "$*"; }
ok()   { printf '%s    ok: %s%s\n' "$C_GREEN" "$*" "$C_OFF"; }
warn() { printf '%s    warning: %s%s\n' "$C_YELLOW" "$*" "$C_OFF" >&2; }
die()  { printf '%serror: %s%s\n' "$C_RED" "$*" "$C_OFF" >&2; exit 1; }

# Print the last lines of a log file to stderr (used when a start fails).
show_log_tail() {
  local f="$1" n="${2:-40}"
  if [[ -s "$f" ]]; then
    printf -- '---- last %s lines of %s ----\n' "$n" "$f" >&2
    tail -n "$n" "$f" >&2 || true
    printf -- '---- end of %s ----\n' "$f" >&2
  fi
}

# --- processes --------------------------------------------------------------
# read_pid FILE -> prints the pid or nothing.
read_pid() {
  local f="$1" pid=''
  if [[ -f "$f" ]]; then read -r pid <"$f" 2>/dev/null || true; fi
  [[ "$pid" =~ ^[0-9]+$ ]] && printf '%s' "$pid"
  return 0
}

# pid_alive PID [PATTERN]: process exists, is not a zombie, and (if PATTERN is
# given) its command line contains PATTERN -- guards against pid reuse.
pid_alive() {
  local pid="$1" pattern="${2:-}" state cmdline
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/stat" ]]; then
    state="$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)"
    [[ "$state" == Z ]] && return 1
  fi
  if [[ -n "$pattern" && -r "/proc/$pid/cmdline" ]]; then
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    [[ "$cmdline" == *"$pattern"* ]] || return 1
  fi
  return 0
}

# service_pid NAME -> pid of our running service (empty if not running).
service_pid() {
  local name="$1" pid
  case "$name" in
    kafka)      pid="$(read_pid "$KAFKA_PID")"; pid_alive "$pid" kafka.Kafka && printf '%s' "$pid" ;;
    clickhouse) pid="$(read_pid "$CH_PID")"; pid_alive "$pid" clickhouse && printf '%s' "$pid" ;;
  esac
  return 0
}

# stop_pid NAME PIDFILE PATTERN SIGNAL: stop exactly the process in PIDFILE.
stop_pid() {
  local name="$1" file="$2" pattern="$3" pid waited=0
  pid="$(read_pid "$file")"
  if [[ -z "$pid" ]]; then
    info "$name: no pid file, nothing to stop"
    rm -f "$file"
    return 0
  fi
  if ! pid_alive "$pid" "$pattern"; then
    info "$name: pid $pid from $file is not running (stale pid file removed)"
    rm -f "$file"
    return 0
  fi
  step "stopping $name (pid $pid, SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  while pid_alive "$pid" "$pattern"; do
    if ((waited >= STOP_TIMEOUT * 2)); then
      warn "$name did not stop after ${STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  pid_alive "$pid" "$pattern" && die "$name (pid $pid) is still running"
  rm -f "$file"
  ok "$name stopped"
}

# --- network ----------------------------------------------------------------
# port_open HOST PORT: a TCP connect succeeds within ~1s.
port_open() {
  # shellcheck disable=SC2016  # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# first_reachable "h1:p1,h2:p2" -> prints the first host:port that accepts TCP.
first_reachable() {
  local list="$1" item host port
  local -a items
  IFS=',' read -r -a items <<<"$list"
  for item in "${items[@]}"; do
    item="${item// /}"
    item="${item#*://}"
    host="${item%:*}"
    port="${item##*:}"
    host="${host#[}"; host="${host%]}"
    [[ -n "$host" && "$port" =~ ^[0-9]+$ ]] || continue
    if port_open "$host" "$port"; then printf '%s:%s' "$host" "$port"; return 0; fi
  done
  return 1
}

# http_get URL -> body (curl if present, bash /dev/tcp otherwise).
http_get() {
  local url="$1"
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 5 "$url" 2>/dev/null
    return
  fi
  local rest="${url#http://}" hostport path host port
  hostport="${rest%%/*}"; path="/${rest#*/}"; [[ "$rest" == */* ]] || path=/
  host="${hostport%:*}"; port="${hostport##*:}"; [[ "$hostport" == *:* ]] || port=80
  # shellcheck disable=SC2016  # expanded by the inner bash
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$3" "$1" >&3
    sed "1,/^\r\{0,1\}$/d" <&3' _ "$host" "$port" "$path" 2>/dev/null
}

# clickhouse_ping BASE_URL: true if /ping answers "Ok.".
clickhouse_ping() {
  local base="${1%/}" body
  body="$(http_get "$base/ping" || true)"
  [[ "$body" == Ok.* ]]
}

# --- misc -------------------------------------------------------------------
# as_root CMD...: run as root (directly, or with non-interactive sudo).
as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    die "need root (or passwordless sudo) to run: $*"
  fi
}

clickhouse_bin() {
  local c
  for c in "$(command -v clickhouse-server 2>/dev/null || true)" /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
    [[ -n "$c" && -x "$c" ]] && { printf '%s' "$c"; return 0; }
  done
  return 1
}

kafka_java() {
  # Short-lived tool JVMs: small heap, C1 only -> faster start-up.
  java -Xms32m -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$LOCAL_DIR/kafka/log4j2-tools.xml" \
    -cp "$KAFKA_LIBS/*" "$@"
}

# --- installs (shared by up.sh and cluster/up.sh) ---------------------------
# maven_libs_ready DIR POM: DIR holds the jars of this exact POM (stamp = its sha256).
maven_libs_ready() {
  local dir="$1" pom="$2"
  [[ -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$(sha256sum "$pom" | cut -d' ' -f1)" ]]
}

# install_maven_libs LABEL POM DIR MAIN_JAR: copy the runtime dependencies of POM
# from Maven Central into DIR (atomically, via DIR.tmp.$$), unless DIR already holds
# them; MAIN_JAR must be among them. The mvn log goes next to DIR.
install_maven_libs() {
  local label="$1" pom="$2" dir="$3" main_jar="$4"
  maven_libs_ready "$dir" "$pom" && return 0
  command -v java >/dev/null 2>&1 || die "java not found ($label needs Java 17+; apt-get install openjdk-17-jre-headless)"
  command -v mvn >/dev/null 2>&1 || die "mvn not found (apt-get install maven)"
  step "installing $label jars from Maven Central into ${dir#"$ROOT_DIR"/}"
  local tmp="$dir.tmp.$$" t=$SECONDS
  rm -rf "$tmp"
  mkdir -p "$tmp"
  local mvn_log
  mvn_log="$(dirname "$dir")/mvn.log"
  if ! mvn -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" </dev/null >"$mvn_log" 2>&1; then
    rm -rf "$tmp"
    grep -E 'ERROR|BUILD' "$mvn_log" | tail -n 20 >&2 || true
    die "mvn could not fetch the $label jars (full log: $mvn_log)"
  fi
  [[ -f "$tmp/$main_jar" ]] || { rm -rf "$tmp"; die "$main_jar missing after mvn"; }
  sha256sum "$pom" | cut -d' ' -f1 >"$tmp/.stamp"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  ok "$(find "$dir" -name '*.jar' | wc -l) jars in $((SECONDS - t))s"
}

kafka_libs_ready() { maven_libs_ready "$KAFKA_LIBS" "$KAFKA_POM"; }
install_kafka_libs() { install_maven_libs "Kafka $KAFKA_VERSION" "$KAFKA_POM" "$KAFKA_LIBS" "kafka_2.13-$KAFKA_VERSION.jar"; }

# listener_pids PORT -> pids listening on 127.0.0.1:PORT (needs `ss -p`; may be empty).
listener_pids() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

stop_system_clickhouse() {
  # The Debian package may have started (and enabled) a service-managed
  # instance with /etc/clickhouse-server/config.xml on our ports. We never
  # depend on it; stop and disable it. Only a provably package-managed
  # instance is touched: the systemd unit, or -- without systemd -- the exact
  # listener pid whose command line uses the package config. Never by name
  # (the package's init.d script stops *every* clickhouse-server binary).
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    if systemctl is-active --quiet clickhouse-server 2>/dev/null; then
      warn "stopping the system clickhouse-server service (systemd unit) started by the package"
      as_root systemctl stop clickhouse-server || true
    fi
    if systemctl is-enabled --quiet clickhouse-server 2>/dev/null; then
      as_root systemctl disable clickhouse-server >/dev/null 2>&1 || true
    fi
  fi
  local port pid cmdline
  for port in "$CH_HTTP_PORT" "$CH_TCP_PORT"; do
    for pid in $(listener_pids "$port"); do
      cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
      if [[ "$cmdline" == *clickhouse* && "$cmdline" == */etc/clickhouse-server/config.xml* ]]; then
        warn "stopping the package-started clickhouse-server (pid $pid: $cmdline)"
        as_root kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 60); do pid_alive "$pid" || break; sleep 0.5; done
        pid_alive "$pid" && { as_root kill -KILL "$pid" 2>/dev/null || true; }
      fi
    done
  done
  if [[ -x /etc/init.d/clickhouse-server ]] && command -v update-rc.d >/dev/null 2>&1 &&
    compgen -G '/etc/rc[2-5].d/S*clickhouse-server' >/dev/null; then
    as_root update-rc.d clickhouse-server disable >/dev/null 2>&1 || true
  fi
}

install_clickhouse() {
  clickhouse_bin >/dev/null && return 0
  command -v apt-get >/dev/null 2>&1 ||
    die "clickhouse-server is not installed and apt-get is unavailable; install ClickHouse or set PINGAN__CLICKHOUSE__URL"
  step "installing clickhouse-server from Debian (apt)"
  local t=$SECONDS added_policy=''
  export DEBIAN_FRONTEND=noninteractive
  # Keep the package's postinst from starting a system service: a policy-rc.d
  # that denies all actions (only if the machine has none already).
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# temporary, created by pingan deploy/local/up.sh\nexit 101\n' |
      as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  local rc=0
  {
    if ! apt-cache show clickhouse-server >/dev/null 2>&1 ||
      [[ "$(apt-cache policy clickhouse-server | awk '/Candidate:/ { print $2 }')" == "(none)" ]]; then
      info "apt-get update"
      as_root apt-get update -qq
    fi
    as_root apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      clickhouse-server clickhouse-client >"$DEV_DIR/apt-clickhouse.log" 2>&1 ||
      { show_log_tail "$DEV_DIR/apt-clickhouse.log"; false; }
  } || rc=$?
  [[ -n "$added_policy" ]] && as_root rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || die "apt-get install clickhouse-server failed"
  stop_system_clickhouse
  clickhouse_bin >/dev/null || die "clickhouse-server binary not found after install"
  ok "clickhouse-server $(dpkg-query -W -f='${Version}' clickhouse-server 2>/dev/null || true) installed in $((SECONDS - t))s"
}

# take_lock: serialise up/down runs (e.g. `make -j up test`) with flock on fd 9.
# Processes we start must close fd 9 (`9>&-`), or they would hold the lock forever.
take_lock() {
  command -v flock >/dev/null 2>&1 || return 0
  mkdir -p "$DEV_DIR"
  exec 9>"$DEV_DIR/.services.lock"
  if ! flock -n 9; then
    info "waiting for another deploy/local script (lock ${DEV_DIR#"$ROOT_DIR"/}/.services.lock)"
    flock -w 900 9 || die "another deploy/local script holds $DEV_DIR/.services.lock"
  fi
}

parse_services() {
  # parse_services ARG -> sets SERVICES array (kafka clickhouse)
  case "${1:-all}" in
    all | '') SERVICES=(kafka clickhouse) ;;
    kafka) SERVICES=(kafka) ;;
    clickhouse | ch) SERVICES=(clickhouse) ;;
    *) die "unknown service '${1}' (expected all, kafka or clickhouse)" ;;
  esac
}
