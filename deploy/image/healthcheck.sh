#!/usr/local/lib/pingan/busybox sh
# pingan-healthcheck: the image's HEALTHCHECK. GETs /healthz of the service that PID 1 runs:
#   ingest 8080, classify 8081, aggregate 8082, serve 8090 (the image's pingan.toml), or the port
#   of PINGAN__INGEST__LISTEN, PINGAN__CLASSIFIER__ADMIN_LISTEN, PINGAN__AGGREGATOR__ADMIN_LISTEN,
#   PINGAN__SERVE__LISTEN when set. PINGAN_HEALTHCHECK_URL overrides all of it.
# Commands that serve nothing (migrate, classify --stdin, --help) are reported healthy.
# The runtime image has no shell: this runs on the busybox copied in next to it.
bb=/usr/local/lib/pingan/busybox
url="${PINGAN_HEALTHCHECK_URL:-}"
if [ -z "$url" ]; then
  # (PINGAN_HEALTHCHECK_PROC: another command line file, for the smoke test of build.sh)
  cmd=" $($bb tr '\0' ' ' <"${PINGAN_HEALTHCHECK_PROC:-/proc/1/cmdline}") "
  listen=''
  case "$cmd" in
    *" --stdin "* | *" --eval "* | *" train "*) exit 0 ;;
    *" ingest "*) listen="${PINGAN__INGEST__LISTEN:-0.0.0.0:8080}" ;;
    *" classify "*) listen="${PINGAN__CLASSIFIER__ADMIN_LISTEN:-0.0.0.0:8081}" ;;
    *" aggregate "*) listen="${PINGAN__AGGREGATOR__ADMIN_LISTEN:-0.0.0.0:8082}" ;;
    *" serve "*) listen="${PINGAN__SERVE__LISTEN:-0.0.0.0:8090}" ;;
    *) exit 0 ;;
  esac
  [ -n "$listen" ] || exit 0 # admin endpoint disabled ("")
  url="http://127.0.0.1:${listen##*:}/healthz"
fi
# (no -T: busybox 1.35 wget segfaults with -T on a refused connection; HEALTHCHECK --timeout
# and the probes time out a hanging check instead)
exec $bb wget -q -O /dev/null "$url"
