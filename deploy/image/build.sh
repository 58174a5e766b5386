#!/usr/bin/env bash
# deploy/image/build.sh [--no-smoke | --smoke-only]
#
# Builds the pingan image from deploy/image/Containerfile with buildah (vfs storage, chroot
# isolation: no daemon, no overlay, no user namespaces needed), then smoke-tests it:
#   - the image config: non-root numeric user, HEALTHCHECK, entrypoint, exposed ports;
#   - `pingan --help` and `pingan classify --stdin` run inside the image as user 65532;
#   - the health check helper: healthy against `pingan serve` run from the image on a spare
#     port, unhealthy when nothing listens.
#
# Base images: PINGAN_IMAGE_BASES=auto (default) pulls the Containerfile's public bases and,
# when no registry answers, builds local stand-ins from Debian packages (local-bases.sh);
# =registry insists on the public ones; =local always uses the local ones.
#
# Env: PINGAN_IMAGE (tag, default localhost/pingan:dev), PINGAN_IMAGE_STORAGE=default (use
# /var/lib/containers instead of .cache/image/storage), PINGAN_SMOKE_PORT (default 18790).
# The first build compiles pingan in release mode inside the build stage (15-30 min on 2 cores);
# later builds reuse the cargo cache mounts.
set -euo pipefail
# shellcheck source=deploy/image/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

SMOKE=1
BUILD=1
for a in "$@"; do
  case "$a" in
    --no-smoke) SMOKE=0 ;;
    --smoke-only) BUILD=0 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $a" ;;
  esac
done
IMAGE="${PINGAN_IMAGE:-localhost/pingan:dev}"
BASES="${PINGAN_IMAGE_BASES:-auto}"
mkdir -p "$IMAGE_CACHE"
need_pkg buildah buildah
need_pkg jq jq

T0=$SECONDS
if ((BUILD == 1)); then
rust_image="$REGISTRY_RUST_IMAGE"
runtime_image="$REGISTRY_RUNTIME_IMAGE"
case "$BASES" in
  registry | auto)
    step "pulling the public base images"
    pulled=1
    for i in "$REGISTRY_RUST_IMAGE" "$REGISTRY_RUNTIME_IMAGE"; do
      if image_exists "$i"; then ok "$i (cached)"; continue; fi
      if timeout 600 buildah "${STORAGE_FLAGS[@]}" pull --quiet "$i" </dev/null >"$IMAGE_CACHE/pull.log" 2>&1; then
        ok "$i"
      else
        info "cannot pull $i: $(grep -m1 -i 'error' "$IMAGE_CACHE/pull.log" || tail -n1 "$IMAGE_CACHE/pull.log")"
        pulled=0
        break
      fi
    done
    if ((pulled == 0)); then
      [[ "$BASES" == auto ]] || die "PINGAN_IMAGE_BASES=registry but the public bases cannot be pulled"
      info "no container registry reachable: using local bases made from Debian packages"
      BASES=local
    fi
    ;;
  local) ;;
  *) die "PINGAN_IMAGE_BASES must be auto, registry or local (got $BASES)" ;;
esac
if [[ "$BASES" == local ]]; then
  bash "$IMAGE_DIR/local-bases.sh"
  rust_image="$LOCAL_RUST_IMAGE"
  runtime_image="$LOCAL_RUNTIME_IMAGE"
fi

version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT_DIR/Cargo.toml" | head -n1)"
revision="$(git -C "$ROOT_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)"
step "building $IMAGE (pingan $version, $revision) from $rust_image -> $runtime_image"
info "buildah bud --format docker --isolation chroot (log ${IMAGE_CACHE#"$ROOT_DIR"/}/build.log; the release build takes a while)"
t=$SECONDS
if ! bh bud --format docker --isolation chroot --layers=false \
  --build-arg RUST_IMAGE="$rust_image" --build-arg RUNTIME_IMAGE="$runtime_image" \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  -f "$IMAGE_DIR/Containerfile" -t "$IMAGE" "$ROOT_DIR" </dev/null >"$IMAGE_CACHE/build.log" 2>&1; then
  tail -n 40 "$IMAGE_CACHE/build.log" >&2
  die "image build failed (full log: $IMAGE_CACHE/build.log)"
fi
ok "built in $((SECONDS - t))s: $(bh images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE" | head -n1)"

fi
((SMOKE == 1)) || exit 0

step "smoke test of $IMAGE"
fail() { printf '%s    FAIL: %s%s\n' "$C_RED" "$*" "$C_OFF" >&2; FAILED=$((FAILED + 1)); }
FAILED=0
cfg="$(bh inspect --type image "$IMAGE" | jq '.Docker.config')"
check_cfg() { # check_cfg JQ_EXPR DESCRIPTION
  if jq -e "$1" >/dev/null <<<"$cfg"; then ok "$2"; else fail "$2 (config: $(jq -c "$1" <<<"$cfg" 2>&1))"; fi
}
check_cfg '.User == "65532:65532"' "runs as user 65532:65532"
check_cfg '.Healthcheck.Test == ["CMD","/usr/local/bin/pingan-healthcheck"]' "HEALTHCHECK set"
check_cfg '.Entrypoint == ["/usr/local/bin/pingan"]' "entrypoint is the pingan binary"
check_cfg '(.ExposedPorts | keys) == ["8080/tcp","8081/tcp","8082/tcp","8090/tcp"]' "exposes 8080 8081 8082 8090"
check_cfg '.Env | index("PINGAN_CONFIG=/etc/pingan/pingan.toml") != null' "PINGAN_CONFIG points at the image's config"

ctr="$(bh from --quiet "$IMAGE")"
serve_pid=''
cleanup() {
  # `buildah run` does not pass signals on to the chroot'ed process: stop its whole process
  # group (started with setsid, so the group is exactly that run)
  if [[ -n "$serve_pid" ]]; then
    kill -TERM -- "-$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  bh rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
# `buildah run` with chroot isolation: the image's own files, user and environment, the host's
# network (no network namespace is needed).
run_in() { bh run --isolation chroot --user 65532:65532 "$ctr" -- "$@"; }
# health_in URL: the image's health check against URL (the image has no env(1): buildah sets it)
health_in() { bh run --isolation chroot --user 65532:65532 --env PINGAN_HEALTHCHECK_URL="$1" "$ctr" -- /usr/local/bin/pingan-healthcheck; }

if out="$(run_in /usr/local/bin/pingan --help 2>&1)" && grep -q 'Usage: pingan' <<<"$out"; then
  ok "pingan --help: $(grep -c . <<<"$out") lines"
else
  fail "pingan --help: $out"
fi
line='{"description":"有人冒充公检法让我转账，被骗了五万元"}'
if out="$(printf '%s\n' "$line" | run_in /usr/local/bin/pingan classify --stdin 2>&1)" &&
  jq -e '.category == "FRAUD" and (.subtype | startswith("FRAUD_")) and (.department | type == "string")' >/dev/null 2>&1 <<<"$out"; then
  ok "pingan classify --stdin: $(jq -c '{subtype, category, department, score: .classification.score}' <<<"$out")"
else
  fail "pingan classify --stdin: $out"
fi
if out="$(run_in /usr/local/bin/pingan --dev --check-config serve 2>&1)" && grep -q '0.0.0.0:8090' <<<"$out"; then
  ok "the image's config listens on 0.0.0.0 (pingan --check-config)"
else
  fail "pingan --check-config serve: $out"
fi
port="${PINGAN_SMOKE_PORT:-18790}"
url="http://127.0.0.1:$port/healthz"
timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$port" 2>/dev/null &&
  die "port $port is in use (set PINGAN_SMOKE_PORT)"
if out="$(health_in "$url" 2>&1)"; then
  fail "health check passed with nothing listening on $port"
elif ! grep -q -i 'segmentation\|not found\|no such file' <<<"$out"; then
  ok "health check fails while nothing listens on $port"
else
  fail "health check failed for another reason than the closed port: $out"
fi
# serve starts without ClickHouse (its /readyz says not ready; /healthz is alive)
setsid buildah "${STORAGE_FLAGS[@]}" run --isolation chroot --user 65532:65532 \
  --env PINGAN__SERVE__LISTEN="127.0.0.1:$port" --env PINGAN__CLICKHOUSE__URL=http://127.0.0.1:9 \
  "$ctr" -- /usr/local/bin/pingan --dev serve >"$IMAGE_CACHE/smoke-serve.log" 2>&1 &
serve_pid=$!
healthy=0
for _ in $(seq 1 40); do
  if health_in "$url" >/dev/null 2>&1; then healthy=1; break; fi
  sleep 0.5
done
if ((healthy == 1)); then ok "health check passes against pingan serve from the image on :$port"; else fail "health check against pingan serve on :$port (log: $IMAGE_CACHE/smoke-serve.log)"; fi
# without PINGAN_HEALTHCHECK_URL the check finds the port from PID 1's command line and the
# service's listen variable (chroot isolation has no PID namespace: a stand-in command line file)
derive() { # COMMAND LISTEN_VAR PORT
  bh run --isolation chroot --user 65532:65532 --env "$2=0.0.0.0:$3" --env PINGAN_HEALTHCHECK_PROC=/tmp/cmdline "$ctr" -- \
    /usr/local/lib/pingan/busybox sh -c "printf '/usr/local/bin/pingan\\0$1\\0' >/tmp/cmdline && /usr/local/bin/pingan-healthcheck"
}
# (never the default ports: the host network is shared, and other services may run there)
closed=$((port + 1))
if timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$closed" 2>/dev/null; then
  fail "port $closed is in use: cannot test the port derivation"
elif derive serve PINGAN__SERVE__LISTEN "$port" >/dev/null 2>&1 && ! derive serve PINGAN__SERVE__LISTEN "$closed" >/dev/null 2>&1 &&
  ! derive ingest PINGAN__INGEST__LISTEN "$closed" >/dev/null 2>&1; then
  ok "health check derives the port from the command line (serve on :$port healthy; serve or ingest on :$closed, closed, not)"
else
  fail "health check port derivation from the command line"
fi

((FAILED == 0)) || die "$FAILED smoke check(s) failed"
ok "image $IMAGE works ($((SECONDS - T0))s in all)"
info "run it: buildah ${STORAGE_FLAGS[*]} run --isolation chroot \$(buildah ${STORAGE_FLAGS[*]} from $IMAGE) -- /usr/local/bin/pingan --help"
info "export it: buildah ${STORAGE_FLAGS[*]} push $IMAGE docker-archive:pingan.tar:$IMAGE"
