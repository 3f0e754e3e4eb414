#!/usr/bin/env bash
# The entrypoint of the local PostgreSQL image (Dockerfile beside this file): what the
# official postgres image's entrypoint does for docker-compose.yml, with Debian's server.
# On the first start, when the data directory ($PGDATA, a named volume) is empty:
#   initdb, with POSTGRES_USER (default postgres) as the superuser and POSTGRES_PASSWORD
#   (or the file in POSTGRES_PASSWORD_FILE) as its password; local connections trusted,
#   connections from anywhere else by password (scram-sha-256);
#   POSTGRES_DB (default: the user's name) created;
#   /docker-entrypoint-initdb.d/*.sql run with psql against it, *.sh sourced, in name order.
# Then, and on every later start, postgres runs in the foreground listening on every address.
set -euo pipefail

# `docker run image -c x=y`: the arguments are the server's.
first="${1:-postgres}"
if [ "${first:0:1}" = - ]; then
  set -- postgres "$@"
fi

if [ "$(id -u)" = 0 ] && [ "${1:-}" = postgres ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 0700 "$PGDATA"
  exec gosu postgres "$0" "$@"
fi
[ "${1:-}" = postgres ] || exec "$@"

say() { echo "docker-entrypoint: $*" >&2; }

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  password="${POSTGRES_PASSWORD:-}"
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    password="$(cat "$POSTGRES_PASSWORD_FILE")"
  fi
  [ -n "$password" ] || {
    say "POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) is required for a new database"
    exit 1
  }
  pwfile="$(mktemp)"
  trap 'rm -f "$pwfile"' EXIT
  printf '%s\n' "$password" >"$pwfile"
  say "initdb in $PGDATA, superuser $user"
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"

  # A server on the socket only while the database is set up, so that no client connects
  # to a half-made one.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w -t 60 start >/dev/null
  psql=(psql -v ON_ERROR_STOP=1 -X -q --username "$user" --no-password)
  if [ "$db" != postgres ]; then
    "${psql[@]}" --dbname postgres --set db="$db" <<<'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
    *.sql)
      say "running $f"
      "${psql[@]}" --dbname "$db" -f "$f"
      ;;
    *.sh)
      say "running $f"
      # shellcheck source=/dev/null
      . "$f"
      ;;
    *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
  say "database $db ready"
fi

exec "$@"
