# shellcheck shell=bash
# Shared settings of deploy/image/*.sh. Source it; do not execute it.
IMAGE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(cd "$IMAGE_DIR/../.." && pwd)"
IMAGE_CACHE="$ROOT_DIR/.cache/image"

# The public bases the Containerfile names by default.
REGISTRY_RUST_IMAGE=docker.io/library/rust:1.95.0-slim-bookworm
REGISTRY_RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# Local stand-ins made from Debian packages (local-bases.sh) when no container registry answers.
LOCAL_RUST_IMAGE=localhost/pingan-rust-base:1.95.0-bookworm
LOCAL_RUNTIME_IMAGE=localhost/pingan-runtime-base:bookworm
RUST_VERSION=1.95.0
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${PINGAN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# Image storage: vfs (works without overlay or fuse), in the project's .cache unless
# PINGAN_IMAGE_STORAGE=default asks for the machine's usual /var/lib/containers.
if [[ "${PINGAN_IMAGE_STORAGE:-project}" == default ]]; then
  STORAGE_FLAGS=(--storage-driver vfs)
else
  STORAGE_FLAGS=(--storage-driver vfs --root "$IMAGE_CACHE/storage" --runroot "$IMAGE_CACHE/run")
fi
bh() { buildah "${STORAGE_FLAGS[@]}" "$@"; }

if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
  C_BOLD=$'\033[1m' C_GREEN=$'\033[32m' C_RED=$'\033[31m' C_OFF=$'\033[0m'
else
  C_BOLD='' C_GREEN='' C_RED='' C_OFF=''
fi
step() { printf '%s==> %s%s\n' "$C_BOLD" "$*" "$C_OFF"; }
info() { printf '    %s\n' "$*"; }
ok() { printf '%s    ok: %s%s\n' "$C_GREEN" "$*" "$C_OFF"; }
die() { printf '%serror: %s%s\n' "$C_RED" "$*" "$C_OFF" >&2; exit 1; }

# need_pkg CMD PACKAGE: installs a Debian package (non-interactive) when CMD is missing.
need_pkg() {
  command -v "$1" >/dev/null 2>&1 && return 0
  [[ "$(id -u)" -eq 0 ]] || die "$1 not found; install Debian's $2 (apt-get install $2)"
  step "installing Debian's $2 (for $1)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2" </dev/null >"$IMAGE_CACHE/apt-$2.log" 2>&1; then
    info "apt-get install failed; running apt-get update once"
    DEBIAN_FRONTEND=noninteractive apt-get update </dev/null >>"$IMAGE_CACHE/apt-$2.log" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2" </dev/null >>"$IMAGE_CACHE/apt-$2.log" 2>&1 ||
      { tail -n 20 "$IMAGE_CACHE/apt-$2.log" >&2; die "apt-get install $2 failed"; }
  fi
  ok "$2 installed"
}

image_exists() { bh images --quiet "$1" >/dev/null 2>&1 && [[ -n "$(bh images --quiet "$1" 2>/dev/null)" ]]; }
