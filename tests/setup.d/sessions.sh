#!/usr/bin/env bash
# Issue 3 (sessions): a headless browser checks that the form_post response page submits itself
# (script allowed by the CSP, form-action allowed to the client) — `chromium` from Debian.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q chromium
fi
chromium --version
