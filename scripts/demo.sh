#!/usr/bin/env bash
# Brings plaint up on loopback and runs a demo load through it:
#   scripts/demo.sh          NATS + PostgreSQL (scripts/ensure-deps.sh), database `plaint`,
#                            release builds, intake and router in the background, then
#                            `plaint-ctl demo` (DEMO_COUNT complaints, default 2000; DEMO_SEED,
#                            default the current time, so every run adds fresh complaints).
#                            Extra arguments go to `plaint-ctl demo` (e.g. --json).
#   scripts/demo.sh stop     stops the services a previous run started.
# Services use the defaults (prefix `plaint`, stream COMPLAINTS, database `plaint`); their JSON
# logs and pid files are in .local/run/. The bootstrap admin key is made once, in
# .local/keys/admin.key (mode 0600): the services take it as their admin key and `plaint-ctl`
# presents it by default.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUN_DIR="$ROOT/.local/run"
SERVICES=(intake router)

say() { echo "demo: $*" >&2; }
die() { say "$*"; exit 1; }

# stop_service <name>: kills the process in its pid file, if it is still that service.
stop_service() {
  local name=$1 pid_file="$RUN_DIR/$1.pid" pid
  [ -f "$pid_file" ] || return 0
  pid="$(cat "$pid_file")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
    grep -q "plaint-$name" "/proc/$pid/cmdline" 2>/dev/null; then
    say "stopping plaint-$name (pid $pid)"
    kill "$pid"
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pid_file"
}

stop_all() {
  for name in "${SERVICES[@]}"; do stop_service "$name"; done
}

if [ "${1:-}" = stop ]; then
  stop_all
  exit 0
fi

scripts/ensure-deps.sh
# shellcheck source=/dev/null
source .local/env
export NATS_URL="$PLAINT_NATS_URL"

psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='plaint'" | grep -q 1 ||
  createdb -h 127.0.0.1 -U postgres plaint

cargo build --release -p plaint-intake -p plaint-router -p plaint-ctl

mkdir -p "$RUN_DIR"
stop_all

ADMIN_KEY_FILE="$ROOT/.local/keys/admin.key"
if [ ! -f "$ADMIN_KEY_FILE" ]; then
  target/release/plaint-ctl keys bootstrap --out "$ADMIN_KEY_FILE"
fi
export PLAINT_ADMIN_KEY_FILE="$ADMIN_KEY_FILE" PLAINT_API_KEY_FILE="$ADMIN_KEY_FILE"

# start_service <name>: runs target/release/plaint-<name> in the background.
start_service() {
  local name=$1
  LOG_FORMAT=json nohup "target/release/plaint-$name" >"$RUN_DIR/$name.log" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
  say "started plaint-$name (pid $!), log .local/run/$name.log"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for_port <name> <port>: up to 30 s, failing early when the service died.
wait_for_port() {
  local name=$1 port=$2
  for _ in $(seq 150); do
    port_open "$port" && return 0
    kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null || {
      tail -n 20 "$RUN_DIR/$name.log" >&2
      die "plaint-$name exited; see .local/run/$name.log"
    }
    sleep 0.2
  done
  die "plaint-$name did not listen on 127.0.0.1:$port within 30 s; see .local/run/$name.log"
}

start_service intake
start_service router
wait_for_port intake 50051
wait_for_port router 50052

status=0
target/release/plaint-ctl demo \
  --intake http://127.0.0.1:50051 --router http://127.0.0.1:50052 \
  --nats "$NATS_URL" --prefix plaint \
  --count "${DEMO_COUNT:-2000}" --seed "${DEMO_SEED:-$(date +%s)}" "$@" || status=$?

cat >&2 <<MSG

demo: the services keep running: intake on 127.0.0.1:50051, router on 127.0.0.1:50052
demo: logs: .local/run/intake.log, .local/run/router.log
demo: stop them with: scripts/demo.sh stop
MSG
exit "$status"
