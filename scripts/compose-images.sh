#!/usr/bin/env bash
# Builds, without any container registry, the local images that deploy/test/compose.local.yml
# puts in place of the pulled ones in docker-compose.yml:
#   plaint-local/debian:bookworm        a minimal Debian (debootstrap --variant=minbase from the
#                                       package sources this machine's apt uses), imported
#   plaint-local/postgres:15-bookworm   Debian's postgresql-15, with an entrypoint that does
#                                       what the official image's does for compose
#                                       (deploy/images/postgres/)
#   plaint-local/nats:2.15.1-bookworm   the pinned nats-server release (scripts/ensure-deps.sh
#                                       installs it) and wget for the health check
#                                       (deploy/images/nats/)
#   plaint-local/prometheus:bookworm    Debian's prometheus (deploy/images/prometheus/)
#   plaint-local/intake:0.1.0,          deploy/Dockerfile's runtime stages with the release
#   plaint-local/router:0.1.0           binaries built on this machine (BINARIES=prebuilt)
# The base is made once (a few minutes) and kept; the rest goes through docker's build cache,
# so a run on a machine that has the images takes seconds. Needs root (debootstrap) and a
# Docker engine. Builds the release binaries when target/release has none.
#
#   scripts/compose-images.sh            all of them
#   scripts/compose-images.sh --rebase   make the Debian base again (then everything on it)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SUITE=bookworm
BASE_IMAGE=plaint-local/debian:$SUITE
NATS_VERSION=2.15.1
VERSION=0.1.0
# Bounds: debootstrap downloads and unpacks about 80 packages; each image build is small.
DEBOOTSTRAP_TIMEOUT=900
BUILD_TIMEOUT=900

say() { echo "compose-images: $*" >&2; }
die() {
  say "$*"
  exit 1
}

WORK=""
cleanup() {
  [ -n "$WORK" ] || return 0
  # debootstrap mounts /proc and /sys inside the root it makes; never delete through a mount.
  if [ -d "$WORK/rootfs" ]; then
    { findmnt -rn -o TARGET | grep -F "$WORK/rootfs" || true; } | sort -r | while read -r m; do
      umount -l "$m" || true
    done
  fi
  rm -rf --one-file-system "$WORK" || true
}
trap cleanup EXIT
WORK="$(mktemp -d "${TMPDIR:-/tmp}/plaint-images.XXXXXX")"

docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info)"

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The Debian mirror this machine's apt uses: the first URIs of a deb822 sources file that
# serves the suite, else the first one-line `deb` entry for it.
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '
      /^[[:space:]]*$/ { if (uri != "" && has) { print uri; exit } uri = ""; has = 0; next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) has = 1 }
      END { if (uri != "" && has) print uri }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2 }' "$f"
  done
}

make_base() {
  if have_image "$BASE_IMAGE" && [ "${1:-}" != --rebase ]; then
    return 0
  fi
  if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  local mirror
  mirror="$(host_mirror | sed -n 1p)"
  [ -n "$mirror" ] || die "no Debian $SUITE entry in this machine's apt sources"
  say "debootstrap --variant=minbase $SUITE (the machine's Debian mirror); a few minutes"
  local started=$SECONDS
  timeout "$DEBOOTSTRAP_TIMEOUT" debootstrap --variant=minbase \
    --include=ca-certificates "$SUITE" "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log" >&2
    die "debootstrap failed"
  }
  local r="$WORK/rootfs"
  # What Debian's own container images set: no services started by package scripts, no
  # recommends, no documentation, and no package lists or archives kept in a layer.
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
  chmod 0755 "$r/usr/sbin/policy-rc.d"
  cat >"$r/etc/apt/apt.conf.d/90plaint-container" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT
  cat >"$r/etc/dpkg/dpkg.cfg.d/90plaint-container" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
DPKG
  rm -rf "$r/var/lib/apt/lists/"* "$r/var/cache/apt/"*.bin "$r/var/cache/apt/archives/"*.deb \
    "$r/var/log/"*.log "$r/usr/share/doc/"*/changelog* "$r/usr/share/man/"*
  : >"$r/etc/resolv.conf"
  : >"$r/etc/hostname"
  say "importing $BASE_IMAGE ($((SECONDS - started)) s of debootstrap)"
  tar -C "$r" --numeric-owner -c . |
    docker import --change 'CMD ["/bin/bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      - "$BASE_IMAGE" >/dev/null
}

# A docker CLI that builds with BuildKit, which deploy/Dockerfile needs (only the stages a
# target uses are built; the classic builder would build the Rust stage too): one with the
# buildx plugin, else an engine-era client (18.09 to 22.x) that has BuildKit built in.
buildkit_cli() {
  local cli version
  for cli in docker /usr/bin/docker /usr/local/bin/docker; do
    command -v "$cli" >/dev/null || continue
    if "$cli" buildx version >/dev/null 2>&1; then
      echo "$cli"
      return 0
    fi
    version="$("$cli" version --format '{{.Client.Version}}' 2>/dev/null || true)"
    case "$version" in
    18.09* | 19.* | 20.* | 21.* | 22.*)
      echo "$cli"
      return 0
      ;;
    *) ;;
    esac
  done
  return 1
}

# build <image> <context> <dockerfile> [docker build arguments...]
build() {
  local image=$1 context=$2 dockerfile=$3 started=$SECONDS
  shift 3
  if ! DOCKER_BUILDKIT=1 timeout "$BUILD_TIMEOUT" "$DOCKER" build --progress=plain \
    -f "$dockerfile" -t "$image" "$@" "$context" >"$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log" >&2
    die "building $image failed"
  fi
  say "$image ($((SECONDS - started)) s)"
}

started=$SECONDS
make_base "${1:-}"
DOCKER="$(buildkit_cli)" ||
  die "no docker client here builds with BuildKit (install the buildx plugin)"

# The pinned nats-server and the services' release binaries, built on this machine.
if [ "${PLAINT_SKIP_CARGO_BUILD:-}" != 1 ]; then
  say "cargo build --release (nothing to do when up to date)"
  cargo build --release -p plaint-intake -p plaint-router -p plaint-ctl
fi
for bin in plaint-intake plaint-router; do
  [ -x "target/release/$bin" ] || die "target/release/$bin is missing"
done
scripts/ensure-deps.sh
# shellcheck source=/dev/null
source .local/env
"$PLAINT_NATS_SERVER" --version | grep -q "v$NATS_VERSION" ||
  die "$PLAINT_NATS_SERVER is not nats-server $NATS_VERSION"

mkdir -p "$WORK/nats"
cp deploy/images/nats/Dockerfile "$PLAINT_NATS_SERVER" "$WORK/nats/"
build "plaint-local/nats:$NATS_VERSION-$SUITE" "$WORK/nats" "$WORK/nats/Dockerfile" \
  --build-arg "BASE=$BASE_IMAGE"
build "plaint-local/postgres:15-$SUITE" deploy/images/postgres deploy/images/postgres/Dockerfile \
  --build-arg "BASE=$BASE_IMAGE"
build "plaint-local/prometheus:$SUITE" deploy/images/prometheus \
  deploy/images/prometheus/Dockerfile --build-arg "BASE=$BASE_IMAGE"
for service in intake router; do
  build "plaint-local/$service:$VERSION" . deploy/Dockerfile --target "$service" \
    --build-arg BINARIES=prebuilt --build-arg "RUNTIME_BASE=$BASE_IMAGE"
done
say "images ready in $((SECONDS - started)) s"
