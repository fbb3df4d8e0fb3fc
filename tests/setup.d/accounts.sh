#!/usr/bin/env bash
# Issue 4 (accounts): what the account tests need, installed idempotently.
# - Python's aiosmtpd: the real SMTP server the tests start to capture mail.
# - Debian's chromium + playwright-core (npm, pinned by tests/browser/package-lock.json; it
#   drives the system chromium, no browser download) for the headless-browser test.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! python3 -c "import aiosmtpd" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check aiosmtpd
fi
python3 -c "import aiosmtpd; print('aiosmtpd', aiosmtpd.__version__)"

if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
chromium --version

(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
node -e "require('./tests/browser/node_modules/playwright-core/package.json').version" >/dev/null
echo "playwright-core ready"
