#!/usr/bin/env bash
# Deployment (issue 6): what tests/it/deploy.rs needs.
# - nginx (Debian): the test runs its own nginx process (never the system service) in front of
#   the server, with a copy of deploy/nginx/portcullis.conf.
# - systemd-analyze (Debian's systemd): `systemd-analyze verify` of deploy/systemd/portcullis.service.
# - openssl: the test makes its own CA and server certificate.
# Idempotent: installs only what is missing. Installing nginx must not start the system service
# (it would take ports 80/443): a temporary policy-rc.d refuses service starts during the install.
set -euo pipefail

need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -q
  apt-get install -y -q "${need[@]}"
fi
nginx -v
systemd-analyze --version | head -1
openssl version
