#!/usr/bin/env bash
# The whole test suite, as the README and CI run it:
#   1. install, once and idempotently, what the tests drive besides Rust: an SMTP server process
#      (aiosmtpd), Debian's chromium + chromedriver, playwright-core, schemathesis, Debian's
#      nginx and systemd-analyze (tests/setup.d/*.sh; apt-get needs root, as on CI machines);
#   2. cargo test — SQLite always; PostgreSQL too when TEST_DATABASE_URL is set.
# Arguments go to cargo test (e.g. tests/run.sh --test integration flow).
#
# With TEST_DATABASE_URL set (as on CI), the run fails if any PostgreSQL test was ignored and,
# on a full run (no argument that selects tests), if no PostgreSQL test ran at all: a run
# expected to check PostgreSQL must not look green having checked nothing. The check reads
# libtest's per-test lines ("test x::postgres ... ok"), so with TEST_DATABASE_URL set,
# arguments that hide them (-q, --quiet, --format) are refused.
set -euo pipefail
cd "$(dirname "$0")/.."

pg="${TEST_DATABASE_URL:-}"
# A full run: no argument that could select tests (these few change how, not what, runs).
full_run=yes
for arg in "$@"; do
  case "$arg" in
    --no-fail-fast | --locked | --frozen | --offline | -v | --verbose) ;;
    -q | --quiet | --format | --format=*)
      if [ -n "$pg" ]; then
        echo "tests/run.sh: '$arg' hides the per-test lines that show PostgreSQL tests ran; drop it or unset TEST_DATABASE_URL" >&2
        exit 2
      fi
      ;;
    *) full_run=no ;;
  esac
done

for setup in tests/setup.d/*.sh; do
  echo "== setup: $setup"
  bash "$setup"
done

echo "== cargo test $*"
if [ -z "$pg" ]; then
  exec cargo test "$@"
fi

log="$(mktemp "${TMPDIR:-/tmp}/portcullis-test.XXXXXX.log")"
trap 'rm -f "$log"' EXIT
set +e
cargo test "$@" 2>&1 | tee "$log"
status=$? # cargo's own status (pipefail)
set -e

# PostgreSQL tests are those with "postgres" in their name (backend_tests! names each variant
# `<test>::postgres`). Result lines: "test <name> ... ok|FAILED|ignored[, reason]".
ignored="$(grep -E '^test [^ ]*postgres[^ ]* \.\.\. ignored' "$log" || true)"
ran="$(grep -cE '^test [^ ]*postgres[^ ]* \.\.\. (ok|FAILED)' "$log" || true)"
problem=""
if [ -n "$ignored" ]; then
  printf '%s\n' "$ignored" >&2
  problem="$(printf '%s\n' "$ignored" | wc -l) PostgreSQL test(s) ignored although TEST_DATABASE_URL is set (listed above)"
elif [ "$full_run" = yes ] && [ "$ran" -eq 0 ]; then
  problem="no PostgreSQL test ran although TEST_DATABASE_URL is set"
fi

if [ -n "$problem" ]; then
  echo "tests/run.sh: FAILED: $problem" >&2
  [ "$status" -ne 0 ] && exit "$status"
  exit 1
fi
[ "$status" -eq 0 ] && echo "tests/run.sh: $ran PostgreSQL test(s) ran, none ignored"
exit "$status"
