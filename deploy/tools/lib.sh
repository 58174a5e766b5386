# shellcheck shell=bash
# Pinned operations tools (helm, promtool), built from the Go module proxy into .cache/tools/.
# Source it; do not execute it. Every function is idempotent: a cached binary of the pinned
# version is used as is, so only the first run on a machine builds (progress is printed).
#
#   ensure_tool helm      -> prints the path of .cache/tools/helm-<version>/helm
#   ensure_tool promtool  -> prints the path of .cache/tools/promtool-<version>/promtool
#
# The Go module and build caches are Go's own (~/go/pkg/mod, ~/.cache/go-build), so a fresh
# clone on a machine that built a tool once only links it again (seconds).

TOOLS_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS_ROOT="$(cd "$TOOLS_LIB_DIR/../.." && pwd)"
TOOLS_CACHE="$TOOLS_ROOT/.cache/tools"

# name -> "module/path/cmd@version"
HELM_VERSION=v4.3.2
HELM_PKG="helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
# Prometheus tags its Go module v0.3XY.Z for release v3.XY.Z.
PROMTOOL_VERSION=v0.316.0
PROMTOOL_PKG="github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION"
# promtool without its service-discovery plugins (AWS, Azure, GCE, Kubernetes, ...): checking and
# unit-testing rules needs none of them, and they are most of its build time.
PROMTOOL_TAGS=remove_all_sd

tool_pkg() {
  case "$1" in
    helm) printf '%s' "$HELM_PKG" ;;
    promtool) printf '%s' "$PROMTOOL_PKG" ;;
    *) echo "unknown tool $1" >&2; return 1 ;;
  esac
}

tool_tags() {
  case "$1" in
    promtool) printf '%s' "$PROMTOOL_TAGS" ;;
    *) printf '' ;;
  esac
}

tool_path() {
  local pkg
  pkg="$(tool_pkg "$1")" || return 1
  printf '%s/%s-%s/%s' "$TOOLS_CACHE" "$1" "${pkg##*@}" "$1"
}

# ensure_tool NAME: builds NAME once (go install, no prompts), prints its path on stdout.
# Progress goes to stderr.
ensure_tool() {
  local name="$1" pkg bin dir tmp t0 log
  pkg="$(tool_pkg "$name")" || return 1
  bin="$(tool_path "$name")"
  if [[ -x "$bin" ]]; then
    printf '%s' "$bin"
    return 0
  fi
  command -v go >/dev/null 2>&1 || { echo "error: go not found (needed to build $name from the Go module proxy)" >&2; return 1; }
  dir="$(dirname "$bin")"
  tmp="$dir.tmp.$$"
  log="$TOOLS_CACHE/$name-install.log"
  mkdir -p "$TOOLS_CACHE"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  t0=$SECONDS
  echo "==> installing $name ($pkg) from the Go module proxy into ${dir#"$TOOLS_ROOT"/} (first run only; a few minutes on 2 cores)" >&2
  # CGO off: static binaries, no C toolchain needed. -trimpath for reproducible builds.
  # The build runs in the background so that a line of progress can be printed every 20 s.
  (GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-buildvcs=false go install -trimpath -tags "$(tool_tags "$name")" "$pkg" </dev/null >"$log" 2>&1) &
  local pid=$! rc=0 next=$((SECONDS + 20))
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS >= next)); then
      echo "    ... still building $name ($((SECONDS - t0))s; log ${log#"$TOOLS_ROOT"/})" >&2
      next=$((SECONDS + 20))
    fi
  done
  wait "$pid" || rc=$?
  if ((rc != 0)) || [[ ! -x "$tmp/$name" ]]; then
    tail -n 30 "$log" >&2 || true
    rm -rf "$tmp"
    echo "error: go install $pkg failed (log: $log)" >&2
    return 1
  fi
  rm -rf "$dir"
  mv "$tmp" "$dir"
  echo "    ok: $name built in $((SECONDS - t0))s" >&2
  printf '%s' "$bin"
}
