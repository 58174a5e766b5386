#!/usr/bin/env bash
# deploy/local/cluster/smoke.sh      (make smoke-cluster)
#
# Proves the local cluster works through node crashes. Starts it first with
# up.sh (idempotent), and leaves it running and whole at the end.
#
# Kafka: a topic with 3 partitions and RF 3; 3000 records produced with
#   acks=all while the leader of partition 0 is killed with -9; 1000 more with
#   that broker down; everything consumed with it down; the broker restarted,
#   back in every ISR, made preferred leader again, and everything consumed
#   again through it. Acknowledged = consumed, nothing twice.
# ClickHouse: a ReplicatedMergeTree table (and a Distributed one) created ON
#   CLUSTER; rows inserted on replica 1 read on replica 2; each replica in turn
#   killed with -9 while the other takes inserts, restarted, and caught up.
# pingan: `pingan migrate --cluster` lays the schema out as Replicated tables
#   on both replicas (an insert on one shows raw, audit and rollup rows on the
#   other; a second migrate from the other replica is a no-op), and
#   `pingan topics` creates the seven topics at RF 3 / min ISR 2.
#
# One line per check, then "smoke: N passed, M failed"; exit 1 if any failed.
# Env: KEEP=1 keeps the smoke topic and tables; SMOKE_SEED picks the run id.
set -euo pipefail

# shellcheck source=deploy/local/cluster/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

case "${1:-}" in -h | --help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

RUN="${SMOKE_SEED:-$(date +%s)$$}"
TOPIC="smoke.cluster.$RUN"
DB=pingan_smoke
TABLE="events_$RUN"
WORK="$CLUSTER_DIR/smoke/$RUN"
mkdir -p "$WORK"
T0=$SECONDS

passed=0 failed=0
FAILED=()
pass() { passed=$((passed + 1)); printf '%s    PASS %s%s\n' "$C_GREEN" "$*" "$C_OFF"; }
fail() { failed=$((failed + 1)); FAILED+=("$*"); printf '%s    FAIL %s%s\n' "$C_RED" "$*" "$C_OFF"; }
# expect DESC GOT WANT
expect() { if [[ "$2" == "$3" ]]; then pass "$1: $2"; else fail "$1: got '$2', want '$3'"; fi; }
elapsed() { printf '%ss' $((SECONDS - $1)); }

# Whatever happens, leave every node running (a killed node is restarted); a
# run cut short by an error still ends with the summary line, as a failure.
FINISHED=''
on_exit() {
  local rc=$? node dead_nodes=()
  for node in "${ALL_NODES[@]}"; do [[ -n "$(node_pid "$node")" ]] || dead_nodes+=("$node"); done
  if ((${#dead_nodes[@]} > 0)); then
    step "restoring ${dead_nodes[*]}"
    bash "$CLUSTER_SRC/up.sh" "${dead_nodes[@]}" >"$WORK/restore.log" 2>&1 || warn "restore failed: see $WORK/restore.log"
  fi
  if [[ -z "$FINISHED" ]]; then
    fail "smoke run aborted (exit status $rc, last step above; work files: $WORK)"
    printf 'smoke: %s passed, %s failed\n' "$passed" "$failed"
    exit 1
  fi
}
trap on_exit EXIT

step "smoke run $RUN: bringing the cluster up (deploy/local/cluster/up.sh)"
bash "$CLUSTER_SRC/up.sh" >"$WORK/up.log" 2>&1 || { tail -n 30 "$WORK/up.log" >&2; die "cluster/up.sh failed (log: $WORK/up.log)"; }
info "cluster up ($(elapsed "$T0")); work files: ${WORK#"$ROOT_DIR"/}"

# ============================================================================
# Kafka
# ============================================================================
kt() { cluster_kafka_java "$@"; }
kargs=(--bootstrap-server "$CLUSTER_BOOTSTRAP" --command-config "$CLUSTER_KAFKA_CLIENT_PROPS")

# partitions -> "partition leader replicas isr" per line
partitions() {
  kt org.apache.kafka.tools.TopicCommand "${kargs[@]}" --describe --topic "$TOPIC" |
    sed -n 's/.*Partition: *\([0-9]*\).*Leader: *\([-0-9]*\).*Replicas: *\([0-9,]*\).*Isr: *\([0-9,]*\).*/\1 \2 \3 \4/p'
}
# isr_summary -> "p0:isr p1:isr p2:isr" with each ISR sorted
isr_summary() {
  partitions | while read -r p _ _ isr; do printf 'p%s:%s ' "$p" "$(tr ',' '\n' <<<"$isr" | sort -n | paste -sd, -)"; done | sed 's/ $//'
}
# wait_isr WANT_SUMMARY SECONDS -> 0 once isr_summary equals it
wait_isr() {
  local want="$1" deadline=$((SECONDS + $2)) got=''
  while ((SECONDS < deadline)); do
    got="$(isr_summary || true)"
    [[ "$got" == "$want" ]] && return 0
    sleep 1
  done
  printf '%s' "$got" >"$WORK/isr.last"
  return 1
}

# produce PHASE COUNT THROUGHPUT: VerifiableProducer (acks=all, idempotent),
# values "PHASE.N"; one JSON line per send outcome into $WORK/produce-PHASE.jsonl.
# (VerifiableProducer defaults to retries=0, which the idempotent producer refuses.)
cat >"$WORK/producer.properties" <<EOF
enable.idempotence=true
retries=2147483647
acks=all
linger.ms=5
delivery.timeout.ms=120000
request.timeout.ms=10000
EOF
produce() {
  kt org.apache.kafka.tools.VerifiableProducer --bootstrap-server "$CLUSTER_BOOTSTRAP" --topic "$TOPIC" \
    --max-messages "$2" --throughput "$3" --acks -1 --value-prefix "$1" \
    --producer.config "$WORK/producer.properties" >"$WORK/produce-$1.jsonl"
}
acked() { { grep -h '"name":"producer_send_success"' "$@" || true; } | sed 's/.*"value":"\([^"]*\)".*/\1/'; }
send_errors() { cat "$@" | { grep -c '"name":"producer_send_error"' || true; }; }

# consume NAME COUNT: every record of the topic from the beginning, new group.
consume() {
  kt org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$CLUSTER_BOOTSTRAP" --topic "$TOPIC" \
    --group "smoke-$RUN-$1" --from-beginning --max-messages "$2" --timeout-ms 60000 >"$WORK/consume-$1.txt" || true
}
# compare_consumed NAME DESC: consumed records against all acknowledged ones.
compare_consumed() {
  local name="$1" desc="$2" n_acked n_consumed n_unique missing extra
  acked "$WORK"/produce-*.jsonl | sort >"$WORK/acked.sorted"
  sort "$WORK/consume-$name.txt" >"$WORK/consume-$name.sorted"
  n_acked="$(wc -l <"$WORK/acked.sorted")"
  n_consumed="$(wc -l <"$WORK/consume-$name.sorted")"
  n_unique="$(sort -u "$WORK/consume-$name.sorted" | wc -l)"
  missing="$(comm -23 "$WORK/acked.sorted" <(sort -u "$WORK/consume-$name.sorted") | wc -l)"
  extra="$(comm -13 "$WORK/acked.sorted" <(sort -u "$WORK/consume-$name.sorted") | wc -l)"
  expect "$desc: acknowledged records missing" "$missing" 0
  expect "$desc: records read twice" "$((n_consumed - n_unique))" 0
  expect "$desc: records never acknowledged" "$extra" 0
  info "$desc: $n_consumed consumed, $n_acked acknowledged"
}

step "kafka: topic $TOPIC, 3 partitions, replication factor 3"
kt org.apache.kafka.tools.TopicCommand "${kargs[@]}" --create --topic "$TOPIC" --partitions 3 --replication-factor 3 >/dev/null
expect "all replicas in sync" "$(isr_summary)" "p0:1,2,3 p1:1,2,3 p2:1,2,3"
cfg="$(kt kafka.admin.ConfigCommand "${kargs[@]}" --describe --entity-type topics --entity-name "$TOPIC" --all)"
expect "topic min.insync.replicas" "$(sed -n 's/^ *min.insync.replicas=\([^ ]*\) .*/\1/p' <<<"$cfg")" 2
expect "topic unclean.leader.election.enable" "$(sed -n 's/^ *unclean.leader.election.enable=\([^ ]*\) .*/\1/p' <<<"$cfg")" false

step "kafka: produce 3000 records (acks=all, ~300/s) and kill -9 the leader of partition 0 mid-stream"
# Leadership does not move without a failure: pick the victim before producing.
victim="$(partitions | awk '$1 == 0 { print $2 }')"
[[ "$victim" =~ ^[123]$ ]] || die "no leader for partition 0 of $TOPIC"
controller="$(kt org.apache.kafka.tools.MetadataQuorumCommand "${kargs[@]}" describe --status | sed -n 's/^LeaderId: *//p')"
produce 1 3000 300 &
producer=$!
for _ in $(seq 1 150); do
  (($(acked "$WORK/produce-1.jsonl" | wc -l) >= 500)) && break
  kill -0 "$producer" 2>/dev/null || die "the producer exited early (see ${CLUSTER_KAFKA_TOOLS_LOG#"$ROOT_DIR"/})"
  sleep 0.2
done
info "leader of partition 0: kafka-$victim$([[ "$victim" == "$controller" ]] && printf ' (also the active KRaft controller)'); $(acked "$WORK/produce-1.jsonl" | wc -l) records acknowledged so far"
bash "$CLUSTER_SRC/kill.sh" "kafka-$victim" | sed 's/^/    /'
t_kill=$SECONDS
wait "$producer" || true
expect "phase 1: records acknowledged" "$(acked "$WORK/produce-1.jsonl" | wc -l)" 3000
expect "phase 1: send errors" "$(send_errors "$WORK/produce-1.jsonl")" 0
others="$(printf '%s\n' 1 2 3 | grep -v "^$victim$" | paste -sd, -)"
if wait_isr "p0:$others p1:$others p2:$others" 60; then
  pass "kafka-$victim dropped from every ISR, new leaders elected ($(elapsed "$t_kill") after the kill)"
else
  fail "ISRs after killing kafka-$victim: got '$(cat "$WORK/isr.last")'"
fi
expect "partitions led by the dead broker" "$(partitions | awk -v v="$victim" '$2 == v' | wc -l)" 0

step "kafka: with kafka-$victim down: produce 1000 more (2 in-sync replicas = min.insync.replicas), consume everything"
produce 2 1000 -1 || true
expect "phase 2: records acknowledged" "$(acked "$WORK/produce-2.jsonl" | wc -l)" 1000
expect "phase 2: send errors" "$(send_errors "$WORK/produce-2.jsonl")" 0
consume degraded 4000
compare_consumed degraded "consumed with kafka-$victim down"

step "kafka: restart kafka-$victim (deploy/local/cluster/up.sh kafka-$victim)"
t_restart=$SECONDS
bash "$CLUSTER_SRC/up.sh" "kafka-$victim" >"$WORK/restart-kafka.log" 2>&1 || { tail -n 20 "$WORK/restart-kafka.log" >&2; fail "up.sh kafka-$victim"; }
info "kafka-$victim registered again after $(elapsed "$t_restart")"
if wait_isr "p0:1,2,3 p1:1,2,3 p2:1,2,3" 90; then
  pass "kafka-$victim caught up and back in every ISR ($(elapsed "$t_restart") after the restart)"
else
  fail "ISRs after restarting kafka-$victim: got '$(cat "$WORK/isr.last")'"
fi
printf '{"partitions":[{"topic":"%s","partition":0},{"topic":"%s","partition":1},{"topic":"%s","partition":2}]}\n' \
  "$TOPIC" "$TOPIC" "$TOPIC" >"$WORK/election.json"
kt org.apache.kafka.tools.LeaderElectionCommand --bootstrap-server "$CLUSTER_BOOTSTRAP" --admin.config "$CLUSTER_KAFKA_CLIENT_PROPS" \
  --election-type PREFERRED --path-to-json-file "$WORK/election.json" >"$WORK/election.out" || true
preferred="$(partitions | awk -v v="$victim" '$3 ~ "^"v"," { n++ } END { print n + 0 }')"
led="$(partitions | awk -v v="$victim" '$3 ~ "^"v"," && $2 == v { n++ } END { print n + 0 }')"
expect "partitions led by kafka-$victim again after a preferred-leader election (of $preferred where it is preferred)" "$led" "$preferred"
consume restored 4000
compare_consumed restored "consumed after kafka-$victim rejoined (its partitions read from it)"

# ============================================================================
# ClickHouse
# ============================================================================
q() { ch_query "$@"; }
# wait_rows NODE WANT SECONDS -> 0 once count() on NODE equals WANT
wait_rows() {
  local node="$1" want="$2" deadline=$((SECONDS + $3)) got=''
  while ((SECONDS < deadline)); do
    got="$(q "$node" "SELECT count() FROM $DB.$TABLE" 2>/dev/null || true)"
    [[ "$got" == "$want" ]] && return 0
    sleep 0.5
  done
  return 1
}
# insert NODE FROM COUNT: ids FROM..FROM+COUNT-1 into the replicated table
insert() {
  q "$1" "INSERT INTO $DB.$TABLE (id, v) SELECT number, concat('row-', toString(number)) FROM system.numbers LIMIT $3 OFFSET $2" >/dev/null
}
# verify NODE N: count, distinct ids and their sum on NODE are exactly ids 0..N-1
verify() {
  expect "$1: count(), uniqExact(id), sum(id)" "$(q "$1" "SELECT count(), uniqExact(id), sum(id) FROM $DB.$TABLE" | tr '\t' ' ')" \
    "$2 $2 $(($2 * ($2 - 1) / 2))"
}
# kill_insert_restart DOWN UP FROM: kill -9 DOWN, insert 1000 rows on UP, restart DOWN, wait for it to catch up
kill_insert_restart() {
  local down="$1" up="$2" from="$3" t
  step "clickhouse: kill -9 $down, insert 1000 rows on $up, restart $down"
  bash "$CLUSTER_SRC/kill.sh" "$down" | sed 's/^/    /'
  local t_kill=$SECONDS
  if insert "$up" "$from" 1000; then pass "insert of 1000 rows on $up with $down dead"; else fail "insert on $up with $down dead"; fi
  # The dead replica counts as active until its ZooKeeper session expires
  # (session_timeout_ms, 10 s): only then is a quorum insert refused up front.
  local deadline=$((SECONDS + 40)) active=''
  while ((SECONDS < deadline)); do
    active="$(q "$up" "SELECT active_replicas FROM system.replicas WHERE database = '$DB' AND table = '$TABLE'" || true)"
    [[ "$active" == 1 ]] && break
    sleep 0.5
  done
  expect "$up: active replicas once $down's ZooKeeper session expired ($(elapsed "$t_kill") after the kill)" "$active" 1
  local quorum
  quorum="$(q "$up" "INSERT INTO $DB.$TABLE (id, v) VALUES (999999999, 'quorum')" "insert_quorum=2&insert_quorum_timeout=5000" 2>&1 || true)"
  if [[ "$quorum" == *"Code: 285"* ]]; then
    pass "insert with insert_quorum=2 refused while $down is dead (TOO_FEW_LIVE_REPLICAS)"
  else
    fail "insert with insert_quorum=2 while $down is dead: '${quorum:0:200}'"
  fi
  t=$SECONDS
  bash "$CLUSTER_SRC/up.sh" "$down" >"$WORK/restart-$down.log" 2>&1 || { tail -n 20 "$WORK/restart-$down.log" >&2; fail "up.sh $down"; }
  info "$down answering and writable again after $(elapsed "$t") (up.sh waits for the old ZooKeeper session to expire)"
  if wait_rows "$down" "$((from + 1000))" 60; then
    pass "$down caught up to $((from + 1000)) rows ($(elapsed "$t") after the restart)"
  else
    fail "$down did not catch up: $(q "$down" "SELECT count() FROM $DB.$TABLE" 2>&1 | head -c 200)"
  fi
  verify "$down" "$((from + 1000))"
}

step "clickhouse: cluster $CH_CLUSTER as each replica sees it"
for node in "${CH_NODES[@]}"; do
  expect "$node: replicas of $CH_CLUSTER" "$(q "$node" "SELECT groupArray(port) FROM (SELECT port FROM system.clusters WHERE cluster = '$CH_CLUSTER' ORDER BY port)")" \
    "[$(ch_tcp_port clickhouse-1),$(ch_tcp_port clickhouse-2)]"
  expect "$node: macros" "$(q "$node" "SELECT groupArray(concat(macro, '=', substitution)) FROM (SELECT * FROM system.macros ORDER BY macro)")" \
    "['cluster=$CH_CLUSTER','replica=$(ch_replica "$node")','shard=01']"
done

step "clickhouse: CREATE TABLE $DB.$TABLE ON CLUSTER $CH_CLUSTER (ReplicatedMergeTree) + a Distributed table over it"
ddl() { # ddl SQL -> "host:port:status" of each host that ran it
  q clickhouse-1 "$1" | awk -F'\t' '{ print $1 ":" $2 ":" $3 }' | sort | paste -sd' ' -
}
ok_hosts="127.0.0.1:$(ch_tcp_port clickhouse-1):0 127.0.0.1:$(ch_tcp_port clickhouse-2):0"
expect "CREATE DATABASE ON CLUSTER ran on" "$(ddl "CREATE DATABASE IF NOT EXISTS $DB ON CLUSTER $CH_CLUSTER")" "$ok_hosts"
expect "CREATE TABLE (ReplicatedMergeTree) ON CLUSTER ran on" "$(ddl "CREATE TABLE $DB.$TABLE ON CLUSTER $CH_CLUSTER
  (id UInt64, v String, day Date DEFAULT today())
  ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/$DB/$TABLE', '{replica}')
  PARTITION BY toYYYYMM(day) ORDER BY id")" "$ok_hosts"
expect "CREATE TABLE (Distributed) ON CLUSTER ran on" "$(ddl "CREATE TABLE $DB.${TABLE}_all ON CLUSTER $CH_CLUSTER
  AS $DB.$TABLE ENGINE = Distributed($CH_CLUSTER, $DB, $TABLE, rand())")" "$ok_hosts"

step "clickhouse: insert 1000 rows on clickhouse-1, read them on clickhouse-2"
t=$SECONDS
insert clickhouse-1 0 1000
if wait_rows clickhouse-2 1000 30; then pass "clickhouse-2 has the 1000 rows ($(elapsed "$t"))"; else fail "clickhouse-2 did not get the rows"; fi
verify clickhouse-2 1000

kill_insert_restart clickhouse-2 clickhouse-1 1000
kill_insert_restart clickhouse-1 clickhouse-2 2000

step "clickhouse: both replicas agree; the Distributed table reads one replica of the shard"
for node in "${CH_NODES[@]}"; do
  verify "$node" 3000
  expect "$node: count() through the Distributed table" "$(q "$node" "SELECT count() FROM $DB.${TABLE}_all")" 3000
  expect "$node: replication queue empty, not read-only" \
    "$(q "$node" "SELECT queue_size, is_readonly, active_replicas FROM system.replicas WHERE database = '$DB' AND table = '$TABLE'" | tr '\t' ' ')" "0 0 2"
done

# ============================================================================
# pingan on the cluster: its schema as replicated tables, its topics checked
# ============================================================================
PINGAN_BIN="$ROOT_DIR/target/debug/pingan"
if [[ ! -x "$PINGAN_BIN" ]]; then
  step "building pingan (cargo build -p pingan) for the schema checks"
  (cd "$ROOT_DIR" && cargo build --locked -p pingan >"$WORK/build.log" 2>&1) || { tail -n 20 "$WORK/build.log" >&2; die "cargo build failed"; }
fi
PDB="pingan_smoke_$RUN"
pingan_on() { # pingan_on NODE ARGS... with ClickHouse = NODE and Kafka = the cluster
  PINGAN__CLICKHOUSE__URL="$(ch_url "$1")" PINGAN__CLICKHOUSE__DATABASE="$PDB" \
    PINGAN__KAFKA__BOOTSTRAP_SERVERS="$CLUSTER_BOOTSTRAP" "$PINGAN_BIN" "${@:2}"
}
step "pingan migrate --cluster $CH_CLUSTER into $PDB (from clickhouse-1)"
if pingan_on clickhouse-1 migrate --cluster "$CH_CLUSTER" >"$WORK/migrate.log" 2>&1; then
  pass "pingan migrate --cluster $CH_CLUSTER"
else
  fail "pingan migrate --cluster: $(tail -n 5 "$WORK/migrate.log" | tr '\n' ' ')"
fi
for node in "${CH_NODES[@]}"; do
  expect "$node: pingan tables that are not Replicated*MergeTree (views aside)" \
    "$(q "$node" "SELECT count() FROM system.tables WHERE database = '$PDB' AND engine NOT LIKE 'Replicated%' AND engine NOT IN ('View', 'MaterializedView')")" 0
  expect "$node: pingan tables are replicated" \
    "$(q "$node" "SELECT count() > 15 FROM system.replicas WHERE database = '$PDB'")" 1
done
step "one incident inserted on clickhouse-1: raw row, audit row and rollup on clickhouse-2"
q clickhouse-1 "INSERT INTO $PDB.incidents (event_id, source, event_time, category, subtype, town_code, kafka_topic, kafka_partition, kafka_offset) SELECT generateUUIDv4(), 'call', now(), 'FRAUD', 'FRAUD_TELECOM', '310112102', 'smoke', 0, 1" >/dev/null
deadline=$((SECONDS + 30)) got=''
while ((SECONDS < deadline)); do
  got="$(q clickhouse-2 "SELECT (SELECT count() FROM $PDB.incidents), (SELECT count() FROM $PDB.insert_audit), (SELECT uniqExactMerge(events) FROM $PDB.counts_hour)" 2>/dev/null | tr '\t' ' ' || true)"
  [[ "$got" == "1 1 1" ]] && break
  sleep 0.5
done
expect "clickhouse-2: incidents, insert_audit, counts_hour (the views fired once, on clickhouse-1)" "$got" "1 1 1"
if pingan_on clickhouse-2 migrate --cluster "$CH_CLUSTER" 2>&1 | grep -q "nothing to do"; then
  pass "a second migrate from clickhouse-2 applies nothing (schema_migrations is replicated)"
else
  fail "a second migrate from clickhouse-2 was not a no-op"
fi
step "pingan topics: the seven topics with RF 3 and min.insync.replicas 2 on the three brokers"
if pingan_on clickhouse-1 topics >"$WORK/topics.log" 2>&1; then
  pass "pingan topics (created or already there)"
else
  fail "pingan topics: $(tail -n 5 "$WORK/topics.log" | tr '\n' ' ')"
fi
if pingan_on clickhouse-1 topics --check >"$WORK/topics-check.log" 2>&1; then
  expect "topics at RF 3, min.isr 2 (pingan topics --check)" \
    "$(awk '$1 ~ /^pingan\./ && $3 == 3 && $4 == 2 { n++ } END { print n + 0 }' "$WORK/topics-check.log")" 7
else
  fail "pingan topics --check: $(head -c 400 "$WORK/topics-check.log")"
fi

# ============================================================================
if [[ "${KEEP:-}" != 1 ]]; then
  q clickhouse-1 "DROP DATABASE IF EXISTS $PDB ON CLUSTER $CH_CLUSTER" >/dev/null || warn "could not drop $PDB"
  step "cleanup (KEEP=1 keeps them): topic $TOPIC, tables $DB.$TABLE{,_all}"
  kt org.apache.kafka.tools.TopicCommand "${kargs[@]}" --delete --topic "$TOPIC" >/dev/null || warn "could not delete topic $TOPIC"
  q clickhouse-1 "DROP TABLE IF EXISTS $DB.${TABLE}_all ON CLUSTER $CH_CLUSTER" >/dev/null || warn "could not drop $DB.${TABLE}_all"
  q clickhouse-1 "DROP TABLE IF EXISTS $DB.$TABLE ON CLUSTER $CH_CLUSTER" >/dev/null || warn "could not drop $DB.$TABLE"
fi

FINISHED=1
step "smoke run $RUN finished in $(elapsed "$T0")"
for f in "${FAILED[@]}"; do printf '    failed: %s\n' "$f"; done
printf 'smoke: %s passed, %s failed\n' "$passed" "$failed"
((failed == 0))
