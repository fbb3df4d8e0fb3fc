#!/usr/bin/env bash
# Admin area (issue 5): what its tests need.
# - schemathesis (PyPI): checks the admin API against its OpenAPI document
#   (tests/it/admin_openapi.rs).
# - chromium + chromium-driver (Debian): the admin pages' browser test (tests/it/admin_pages.rs).
# Idempotent: installs only what is missing.
set -euo pipefail

if ! command -v schemathesis >/dev/null 2>&1; then
  python3 -m pip install -q --disable-pip-version-check "schemathesis>=4,<5"
fi

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${need[@]}"
fi
