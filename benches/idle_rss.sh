#!/usr/bin/env bash
# Idle resident memory of the release server on the embedded SQLite default.
# Usage: benches/idle_rss.sh   (builds release if needed; runs in a temp dir; ~15 s)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin="$PWD/target/release/portcullis"
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
PORTCULLIS_BIND=127.0.0.1:0 PORTCULLIS_LOG_LEVEL=warn "$bin" serve &
pid=$!
sleep 3
# A few requests so every lazy structure (pools, templates, TLS-free HTTP stack) is warm.
addr=$(ss -ltnp 2>/dev/null | awk -v p="pid=$pid," '$0 ~ p {print $4; exit}')
if [ -n "$addr" ]; then
  for path in /healthz /readyz /.well-known/openid-configuration /jwks.json /login; do
    curl -s -o /dev/null "http://$addr$path" || true
  done
fi
sleep 2
echo "pid $pid listening on ${addr:-?}"
grep -E 'VmRSS|VmHWM' "/proc/$pid/status"
