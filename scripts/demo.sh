#!/usr/bin/env bash
# Brings plaint up on loopback and runs a demo load through it:
#   scripts/demo.sh          dependencies (scripts/ensure-deps.sh), database `plaint_demo`,
#                            release builds, a NATS server of its own with users
#                            (deploy/nats/secured.conf), intake and router in the background,
#                            then `plaint-ctl demo` (DEMO_COUNT complaints, default 2000;
#                            DEMO_SEED, default the current time, so every run adds fresh
#                            complaints). Extra arguments go to `plaint-ctl demo` (e.g. --json).
#   scripts/demo.sh stop     stops the services and the NATS server a previous run started.
# Services use the defaults (prefix `plaint`, stream COMPLAINTS); their JSON logs and pid files
# are in .local/run/. The bootstrap admin key is made once, in .local/keys/admin.key (mode
# 0600): the services take it as their admin key and `plaint-ctl` presents it by default.
# NATS runs on 127.0.0.1:$DEMO_NATS_PORT (default 4223; store and log in .local/nats/demo/),
# every process signed in as its own nkey user: the seeds are made once, in
# .local/nats-users/<user>.nk (mode 0600); the demo's helpdesk half publishes as integration
# `acme`.
# The local CA and certificates are made once too, in .local/tls/ (`plaint-ctl certs init`):
# both services serve gRPC over mutual TLS with them, and `plaint-ctl` trusts that CA and
# presents the client certificate by default. The secrets that protect customers' personal
# data (master key, pseudonym secret) are made once in .local/personal/ (mode 0600).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUN_DIR="$ROOT/.local/run"
SERVICES=(intake router)
NATS_DIR="$ROOT/.local/nats/demo"
NATS_USERS_DIR="$ROOT/.local/nats-users"
NATS_USERS=(intake router acme globex)
DEMO_NATS_PORT="${DEMO_NATS_PORT:-4223}"
DEMO_DATABASE=plaint_demo

say() { echo "demo: $*" >&2; }
die() { say "$*"; exit 1; }

# stop_pid <program> <pid file>: kills the process in the pid file, if it still runs <program>.
stop_pid() {
  local program=$1 pid_file=$2 pid
  [ -f "$pid_file" ] || return 0
  pid="$(cat "$pid_file")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
    grep -q "$program" "/proc/$pid/cmdline" 2>/dev/null; then
    say "stopping $program (pid $pid)"
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
  for name in "${SERVICES[@]}"; do stop_pid "plaint-$name" "$RUN_DIR/$name.pid"; done
  stop_pid nats-server "$NATS_DIR/pid"
}

if [ "${1:-}" = stop ]; then
  stop_all
  exit 0
fi

scripts/ensure-deps.sh
# shellcheck source=/dev/null
source .local/env
export NATS_URL="nats://127.0.0.1:$DEMO_NATS_PORT"
# Its own database: the projections of its own log.
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DEMO_DATABASE"

# The projections belong to the log: without the demo's NATS store (a first run, or one
# deleted), a database left from an earlier log would hold rows and a checkpoint that the
# new log does not have, so it starts over too.
if [ ! -d "$NATS_DIR/store" ]; then
  dropdb -h 127.0.0.1 -U postgres --if-exists --force "$DEMO_DATABASE"
fi
psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='$DEMO_DATABASE'" |
  grep -q 1 || createdb -h 127.0.0.1 -U postgres "$DEMO_DATABASE"

cargo build --release -p plaint-intake -p plaint-router -p plaint-ctl

mkdir -p "$RUN_DIR"
stop_all

ADMIN_KEY_FILE="$ROOT/.local/keys/admin.key"
if [ ! -f "$ADMIN_KEY_FILE" ]; then
  target/release/plaint-ctl keys bootstrap --out "$ADMIN_KEY_FILE"
fi
export PLAINT_ADMIN_KEY_FILE="$ADMIN_KEY_FILE" PLAINT_API_KEY_FILE="$ADMIN_KEY_FILE"

TLS_DIR="$ROOT/.local/tls"
for f in ca.pem ca.key server.pem server.key client.pem client.key; do
  if [ ! -f "$TLS_DIR/$f" ]; then
    # A partial set is replaced whole: certificates only make sense with their CA.
    target/release/plaint-ctl certs init --dir "$TLS_DIR" --force
    break
  fi
done
# Services: their certificate, and client certificates required from that CA (mutual TLS).
export PLAINT_TLS_CERT_FILE="$TLS_DIR/server.pem" PLAINT_TLS_KEY_FILE="$TLS_DIR/server.key" \
  PLAINT_TLS_CLIENT_CA_FILE="$TLS_DIR/ca.pem"
# plaint-ctl: the CA to verify the services with, and the certificate to present.
export PLAINT_TLS_CA_FILE="$TLS_DIR/ca.pem" PLAINT_TLS_CLIENT_CERT_FILE="$TLS_DIR/client.pem" \
  PLAINT_TLS_CLIENT_KEY_FILE="$TLS_DIR/client.key"

# Customers' personal data is sealed in the log with data keys wrapped by this master key;
# routing knows customers by a pseudonym keyed with the other secret. Made once, kept: the
# log's NATS store cannot be read without them.
PERSONAL_DIR="$ROOT/.local/personal"
target/release/plaint-ctl personal-keys init --dir "$PERSONAL_DIR" 2>/dev/null
export PLAINT_MASTER_KEY_FILE="$PERSONAL_DIR/master.key" \
  PLAINT_PSEUDONYM_SECRET_FILE="$PERSONAL_DIR/pseudonym.key"

# Every NATS user's seed, made once; the server learns the public keys from its environment.
mkdir -p "$NATS_USERS_DIR" "$NATS_DIR/store"
chmod 700 "$NATS_USERS_DIR"
for user in "${NATS_USERS[@]}"; do
  key="$(target/release/plaint-ctl nats-user "$user" --seed-file "$NATS_USERS_DIR/$user.nk" \
    --print public-key)"
  export "PLAINT_NKEY_${user^^}=$key"
done

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_open "$DEMO_NATS_PORT" &&
  die "127.0.0.1:$DEMO_NATS_PORT is taken; set DEMO_NATS_PORT to a free port"
say "starting nats-server with users (deploy/nats/secured.conf) on 127.0.0.1:$DEMO_NATS_PORT"
setsid "$PLAINT_NATS_SERVER" -c deploy/nats/secured.conf -a 127.0.0.1 -p "$DEMO_NATS_PORT" \
  -sd "$NATS_DIR/store" -l "$NATS_DIR/nats-server.log" -P "$NATS_DIR/pid" \
  </dev/null >/dev/null 2>&1 &
for _ in $(seq 75); do
  port_open "$DEMO_NATS_PORT" && break
  sleep 0.2
done
port_open "$DEMO_NATS_PORT" ||
  die "nats-server did not listen on 127.0.0.1:$DEMO_NATS_PORT within 15 s; see .local/nats/demo/nats-server.log"

# start_service <name>: runs target/release/plaint-<name> in the background, signed in to NATS
# as its own user.
start_service() {
  local name=$1
  LOG_FORMAT=json PLAINT_NATS_NKEY_FILE="$NATS_USERS_DIR/$name.nk" \
    nohup "target/release/plaint-$name" >"$RUN_DIR/$name.log" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
  say "started plaint-$name (pid $!), log .local/run/$name.log"
}

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
  --intake https://127.0.0.1:50051 --router https://127.0.0.1:50052 \
  --nats "$NATS_URL" --prefix plaint --integration acme \
  --nats-nkey-file "$NATS_USERS_DIR/acme.nk" --nats-inbox-prefix _INBOX_acme \
  --count "${DEMO_COUNT:-2000}" --seed "${DEMO_SEED:-$(date +%s)}" "$@" || status=$?

cat >&2 <<MSG

demo: the services keep running, over mutual TLS: intake on https://127.0.0.1:50051,
demo: router on https://127.0.0.1:50052 (CA and client certificate in .local/tls/; plaint-ctl
demo: finds them there, grpcurl takes -cacert .local/tls/ca.pem -cert .local/tls/client.pem
demo: -key .local/tls/client.key)
demo: NATS (with users) on 127.0.0.1:$DEMO_NATS_PORT, database $DEMO_DATABASE
demo: logs: .local/run/intake.log, .local/run/router.log, .local/nats/demo/nats-server.log
demo: stop them with: scripts/demo.sh stop
MSG
exit "$status"
