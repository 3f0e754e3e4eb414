#!/usr/bin/env bash
# The one test command: ensures NATS and PostgreSQL, then runs the whole suite twice over:
#   pass 1: every test, with tests' own servers running Debian's nats-server (2.9.x);
#   pass 2: the tests named *server_compat*, with the current nats-server release.
# Extra arguments go to both cargo invocations (e.g. `scripts/test.sh --no-capture`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/ensure-deps.sh
# shellcheck source=/dev/null
source .local/env

export PLAINT_TEST_DATABASE_URL="${PLAINT_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export PLAINT_TEST_NATS_URL="${PLAINT_TEST_NATS_URL:-nats://127.0.0.1:4222}"

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

# The quick bench test (crates/plaint-ctl/tests/bench_quick.rs) runs the service binaries
# as separate processes: build them first (nothing to do when they are up to date).
cargo build --workspace --bins
# The fault-injection tests (tests/faults) run them too, from here (unset, they build them).
PLAINT_SERVICE_BIN_DIR="$(cd "${CARGO_TARGET_DIR:-target}/debug" && pwd)"
export PLAINT_SERVICE_BIN_DIR

status=0
if cargo nextest --version >/dev/null 2>&1; then
  echo "==> pass 1: all tests against $("$PLAINT_NATS_SERVER_SYSTEM" --version)"
  PLAINT_NATS_SERVER="$PLAINT_NATS_SERVER_SYSTEM" \
    cargo nextest run --workspace --no-fail-fast "$@" || status=1
  echo "==> pass 2: server_compat tests against $("$PLAINT_NATS_SERVER_CURRENT" --version)"
  PLAINT_NATS_SERVER="$PLAINT_NATS_SERVER_CURRENT" \
    cargo nextest run --workspace --no-fail-fast --no-tests=warn -E 'test(/server_compat/)' "$@" ||
    status=1
else
  echo "==> pass 1: all tests against $("$PLAINT_NATS_SERVER_SYSTEM" --version)"
  PLAINT_NATS_SERVER="$PLAINT_NATS_SERVER_SYSTEM" \
    cargo test --workspace --tests --no-fail-fast "$@" || status=1
  echo "==> pass 2: server_compat tests against $("$PLAINT_NATS_SERVER_CURRENT" --version)"
  PLAINT_NATS_SERVER="$PLAINT_NATS_SERVER_CURRENT" \
    cargo test --workspace --tests --no-fail-fast "$@" -- server_compat || status=1
fi
exit "$status"
