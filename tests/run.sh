#!/usr/bin/env bash
# The whole test suite, as the README and CI run it:
#   1. install, once and idempotently, what the tests drive besides Rust: an SMTP server process
#      (aiosmtpd), Debian's chromium + chromedriver, playwright-core, schemathesis
#      (tests/setup.d/*.sh; apt-get needs root, as on CI machines);
#   2. cargo test — SQLite always; PostgreSQL too when TEST_DATABASE_URL is set.
# Arguments go to cargo test (e.g. tests/run.sh --test integration flow).
set -euo pipefail
cd "$(dirname "$0")/.."
for setup in tests/setup.d/*.sh; do
  echo "== setup: $setup"
  bash "$setup"
done
echo "== cargo test $*"
exec cargo test "$@"
