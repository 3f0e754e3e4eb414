#!/usr/bin/env bash
# The one test command: ensures NATS and PostgreSQL (scripts/ensure-deps.sh), then runs the
# whole suite; tests that start their own NATS servers run the pinned release.
# Extra arguments go to the test runner (e.g. `scripts/test.sh --no-capture`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/ensure-deps.sh
# shellcheck source=/dev/null
source .local/env

export PLAINT_TEST_DATABASE_URL="${PLAINT_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export PLAINT_TEST_NATS_URL="${PLAINT_TEST_NATS_URL:-$PLAINT_NATS_URL}"

# Test databases of failed tests are kept for inspection; drop those older than an hour
# (younger ones may belong to a run still going on).
psql -w -d "$PLAINT_TEST_DATABASE_URL" -Atq -c "
  SELECT datname FROM pg_database
  WHERE datname LIKE 'plaint\_test\_%'
    AND (pg_stat_file('base/' || oid || '/PG_VERSION', true)).modification
        < now() - interval '1 hour'" |
  while read -r db; do
    psql -w -d "$PLAINT_TEST_DATABASE_URL" -q -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
  done

# The quick bench test (crates/plaint-bench/tests/bench_quick.rs) runs the service binaries
# as separate processes: build them first (nothing to do when they are up to date).
cargo build --workspace --bins
# The fault-injection tests (tests/faults) run them too, from here (unset, they build them).
PLAINT_SERVICE_BIN_DIR="$(cd "${CARGO_TARGET_DIR:-target}/debug" && pwd)"
export PLAINT_SERVICE_BIN_DIR

echo "==> all tests against $("$PLAINT_NATS_SERVER" --version)"
export PLAINT_NATS_SERVER
if cargo nextest --version >/dev/null 2>&1; then
  exec cargo nextest run --workspace --no-fail-fast "$@"
else
  exec cargo test --workspace --tests --no-fail-fast "$@"
fi
