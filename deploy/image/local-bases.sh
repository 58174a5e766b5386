#!/usr/bin/env bash
# deploy/image/local-bases.sh [--force]
#
# Makes local stand-ins for the Containerfile's two public base images from Debian packages, for
# machines that reach Debian's archive and crates.io but no container registry:
#   localhost/pingan-rust-base:1.95.0-bookworm  (for rust:1.95.0-slim-bookworm)
#       debootstrap'd Debian bookworm (minbase) + gcc/g++/make/pkg-config + this machine's
#       rustup toolchain 1.95.0 (bin/ and lib/, no docs), CARGO_HOME=/usr/local/cargo, and
#       this machine's CA bundle (for crates.io through a TLS-inspecting proxy)
#   localhost/pingan-runtime-base:bookworm      (for gcr.io/distroless/cc-debian12:nonroot)
#       distroless-like: the files of libc6, libgcc-s1, libstdc++6, zlib1g, base-files, netbase,
#       tzdata and the Mozilla CA bundle; no shell, no package manager; user nonroot = 65532
# Idempotent: an image that exists is kept (--force rebuilds both). Needs root (debootstrap).
set -euo pipefail
# shellcheck source=deploy/image/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

FORCE=0
case "${1:-}" in --force) FORCE=1 ;; '') ;; -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; *) die "unknown argument $1" ;; esac

mkdir -p "$IMAGE_CACHE"
need_pkg buildah buildah
need_pkg debootstrap debootstrap

WORK="$IMAGE_CACHE/bases"
mkdir -p "$WORK"

# commit_rootfs DIR IMAGE CONFIG_ARGS...: one-layer image from a directory tree.
commit_rootfs() {
  local dir="$1" image="$2" c
  shift 2
  tar --numeric-owner -C "$dir" -cf "$dir.tar" .
  c="$(bh from --quiet scratch)"
  bh add --quiet "$c" "$dir.tar" / >/dev/null
  bh config "$@" "$c"
  bh commit --quiet --format docker --rm "$c" "$image" >/dev/null
  rm -f "$dir.tar"
}

runtime_base() {
  if ((FORCE == 0)) && image_exists "$LOCAL_RUNTIME_IMAGE"; then
    ok "$LOCAL_RUNTIME_IMAGE exists"
    return 0
  fi
  step "making $LOCAL_RUNTIME_IMAGE from Debian packages (distroless-like)"
  local t=$SECONDS debs="$WORK/runtime-debs" root="$WORK/runtime-root" p
  rm -rf "$debs" "$root"
  mkdir -p "$debs" "$root"
  local pkgs=(base-files netbase tzdata libc6 libgcc-s1 libstdc++6 zlib1g ca-certificates)
  (cd "$debs" && apt-get download "${pkgs[@]}" </dev/null >"$WORK/runtime-download.log" 2>&1) || {
    tail -n 20 "$WORK/runtime-download.log" >&2
    die "apt-get download failed (run apt-get update first?)"
  }
  for p in "$debs"/*.deb; do dpkg-deb -x "$p" "$root"; done
  # the CA bundle that update-ca-certificates would write
  mkdir -p "$root/etc/ssl/certs"
  cat "$root"/usr/share/ca-certificates/mozilla/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
  # documentation and manuals are not needed at run time
  rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/lintian"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$root/etc/group"
  mkdir -p "$root/tmp" "$root/root" "$root/home/nonroot"
  chmod 1777 "$root/tmp"
  chmod 0700 "$root/root"
  chown 65532:65532 "$root/home/nonroot"
  commit_rootfs "$root" "$LOCAL_RUNTIME_IMAGE" \
    --user 65532:65532 --workingdir /home/nonroot \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --label org.opencontainers.image.description="pingan local runtime base (Debian $DEBIAN_SUITE files, distroless-like)"
  rm -rf "$debs" "$root"
  ok "$LOCAL_RUNTIME_IMAGE in $((SECONDS - t))s ($(bh images --format '{{.Size}}' "$LOCAL_RUNTIME_IMAGE" | head -n1))"
}

rust_base() {
  if ((FORCE == 0)) && image_exists "$LOCAL_RUST_IMAGE"; then
    ok "$LOCAL_RUST_IMAGE exists"
    return 0
  fi
  local sysroot have
  command -v rustc >/dev/null 2>&1 || die "rustc not found (the local Rust base copies this machine's toolchain)"
  sysroot="$(cd "$ROOT_DIR" && rustc --print sysroot)"
  have="$(cd "$ROOT_DIR" && rustc --version | awk '{print $2}')"
  [[ "$have" == "$RUST_VERSION" ]] || die "rustc here is $have, the image needs $RUST_VERSION"
  step "making $LOCAL_RUST_IMAGE: debootstrap $DEBIAN_SUITE from $DEBIAN_MIRROR + Rust $RUST_VERSION from $sysroot"
  local t=$SECONDS root="$WORK/rust-root"
  rm -rf "$root"
  info "debootstrap (a few minutes on first run; log ${WORK#"$ROOT_DIR"/}/debootstrap.log)"
  debootstrap --variant=minbase \
    --include=ca-certificates,gcc,g++,make,libc6-dev,pkg-config,zlib1g-dev,busybox-static \
    "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" </dev/null >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log" >&2
    die "debootstrap failed"
  }
  rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* "$root/usr/share/doc" "$root/usr/share/man"
  info "copying the Rust $RUST_VERSION toolchain (bin, lib; no docs)"
  mkdir -p "$root/usr/local/rust" "$root/usr/local/cargo/bin"
  cp -a "$sysroot/bin" "$sysroot/lib" "$root/usr/local/rust/"
  ln -s ../../rust/bin/cargo "$root/usr/local/cargo/bin/cargo"
  ln -s ../../rust/bin/rustc "$root/usr/local/cargo/bin/rustc"
  ln -s ../../rust/bin/rustdoc "$root/usr/local/cargo/bin/rustdoc"
  commit_rootfs "$root" "$LOCAL_RUST_IMAGE" \
    --env CARGO_HOME=/usr/local/cargo \
    --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --label org.opencontainers.image.description="pingan local build base (Debian $DEBIAN_SUITE + Rust $RUST_VERSION)"
  rm -rf "$root"
  ok "$LOCAL_RUST_IMAGE in $((SECONDS - t))s ($(bh images --format '{{.Size}}' "$LOCAL_RUST_IMAGE" | head -n1))"
}

# The build stage downloads crates over HTTPS. Where this machine trusts extra CAs (a site CA, a
# TLS-inspecting proxy: /usr/local/share/ca-certificates), the Debian bundle in the base does not,
# so the machine's bundle is layered on top (idempotent: the label records which bundle).
site_cas() {
  local bundle=/etc/ssl/certs/ca-certificates.crt sum have c
  [[ -r "$bundle" ]] || return 0
  sum="$(sha256sum "$bundle" | cut -d' ' -f1)"
  have="$(bh inspect --type image --format '{{index .Docker.Config.Labels "pingan.site-ca-sha256"}}' "$LOCAL_RUST_IMAGE" 2>/dev/null || true)"
  [[ "$have" == "$sum" ]] && { ok "$LOCAL_RUST_IMAGE trusts this machine's CA bundle"; return 0; }
  step "adding this machine's CA bundle ($bundle) to $LOCAL_RUST_IMAGE"
  c="$(bh from --quiet "$LOCAL_RUST_IMAGE")"
  bh copy --quiet "$c" "$bundle" /etc/ssl/certs/ca-certificates.crt >/dev/null
  bh config --label "pingan.site-ca-sha256=$sum" "$c"
  bh commit --quiet --format docker --rm "$c" "$LOCAL_RUST_IMAGE" >/dev/null
  ok "CA bundle added"
}

runtime_base
rust_base
site_cas
