#!/usr/bin/env bash
# Makes the secrets docker-compose.yml hands to its containers, once, under deploy/secrets/:
#   admin.key            the bootstrap admin key of both services (plaint-ctl keys bootstrap)
#   tls/                 a CA, the services' certificate (for intake, router and their cluster
#                        twins as well as localhost) and a client certificate (plaint-ctl certs init)
#   nats/<user>.nk       an nkey seed per NATS user: intake, router and the helpdesk
#                        integrations acme and globex (plaint-ctl nats-user)
#   nats/users.env       the users' public keys, for the NATS server's configuration
#   personal/            the master key that wraps customers' data keys, and the secret of
#                        their pseudonyms (plaint-ctl personal-keys init)
# Files that exist are kept, so running it again changes nothing; delete one to renew it.
# The directory is private to its owner (0700); the files in it are readable (0644) because
# compose mounts each file on its own into a container whose user (uid 10001) must read it,
# and a bind mount keeps the host's owner and mode.
#
# Uses plaint-ctl from target/release (built when missing) or PLAINT_CTL.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DIR="$ROOT/deploy/secrets"
say() { echo "compose-secrets: $*" >&2; }

CTL="${PLAINT_CTL:-target/release/plaint-ctl}"
if [ ! -x "$CTL" ]; then
  say "building plaint-ctl"
  cargo build --release -p plaint-ctl
fi

umask 077
mkdir -p "$DIR/tls" "$DIR/nats" "$DIR/personal"
chmod 0700 "$DIR" "$DIR/tls" "$DIR/nats" "$DIR/personal"

[ -f "$DIR/admin.key" ] || "$CTL" keys bootstrap --out "$DIR/admin.key" >&2
[ -f "$DIR/tls/ca.pem" ] ||
  "$CTL" certs init --dir "$DIR/tls" \
    --san intake --san router --san intake-cluster --san router-cluster >&2

"$CTL" personal-keys init --dir "$DIR/personal" >&2

: >"$DIR/nats/users.env.new"
for user in intake router acme globex; do
  key="$("$CTL" nats-user "$user" --seed-file "$DIR/nats/$user.nk" --print public-key)"
  echo "PLAINT_NKEY_${user^^}=$key" >>"$DIR/nats/users.env.new"
done
mv "$DIR/nats/users.env.new" "$DIR/nats/users.env"

find "$DIR" -type f -exec chmod 0644 {} +
say "secrets are in deploy/secrets/ (admin key: deploy/secrets/admin.key)"
