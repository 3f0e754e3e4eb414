#!/usr/bin/env bash
# The compose test: docker-compose.yml run for real, with images built on this machine
# (scripts/compose-images.sh; deploy/test/compose.local.yml swaps only image names and build
# sources), and checked against the running containers through the published ports, in
# steps (COMPOSE_TEST_STEPS picks some; `up` always runs first):
#   up             every service healthy; a demo load (gRPC and the helpdesk door) routed and
#                  visible through the router
#   kill           kill -9 of the router's process, then of intake's, under load: the restart
#                  policy brings each back; nothing acknowledged lost, every complaint decided once
#   docker_kill    `docker kill -s KILL` of the router (a manual stop to the engine), then up -d
#   nats           NATS stopped (writes get UNAVAILABLE) and started: everything resumes by itself
#   postgres       PostgreSQL restarted under load; then down + up: the named volumes keep it all
#   observability  Prometheus scrapes both services; a metric read back through its API
#   upgrade        the router container replaced under load: no failed submission
#   cluster        --profile cluster: the R3 log's leader node killed, a node cut off with
#                  docker network disconnect and reconnected; the nodes catch up
# Figures (time to healthy, recovery times, lost) are printed as `compose-test: figure ...`.
#
# Its own compose project (plaint-ct-<random>) in a temporary copy of the compose file and
# deploy/ with secrets of its own (scripts/compose-secrets.sh run there): the developer's
# deploy/secrets/ and any running deployment are never touched. Host ports are free ones on
# 127.0.0.1. Containers, networks and volumes are removed at the end, failed or not; the
# local images stay (they are the cache). At most COMPOSE_TEST_TIMEOUT seconds (900) in all,
# and every wait is bounded.
#
# Needs root (debootstrap, the first time), a Docker engine and its compose tool
# (`docker compose`, else docker-compose 1.29). PLAINT_SKIP_CARGO_BUILD=1 uses the release
# binaries in target/release as they are.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOTAL_TIMEOUT="${COMPOSE_TEST_TIMEOUT:-900}"
STARTED=$SECONDS
CTL="$ROOT/target/release/plaint-ctl"

say() { echo "compose-test: $*" >&2; }
figure() { echo "compose-test: figure $*"; }
die() {
  say "FAILED: $*"
  exit 1
}

WORK=""
PROJECT=""
WATCHDOG=""
dc_files=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$WATCHDOG" ]; then kill "$WATCHDOG" 2>/dev/null || true; fi
  if [ -n "$PROJECT" ]; then
    if [ "$status" -ne 0 ] && [ "${#dc_files[@]}" -gt 0 ]; then
      say "logs of the last 40 lines of each service:"
      timeout 60 "${COMPOSE[@]}" -p "$PROJECT" "${dc_files[@]}" --profile cluster \
        --profile observability logs --no-color --tail 40 >&2 2>&1 || true
    fi
    say "removing project $PROJECT (containers, networks, volumes)"
    if [ "${#dc_files[@]}" -gt 0 ]; then
      timeout 120 "${COMPOSE[@]}" -p "$PROJECT" "${dc_files[@]}" --profile cluster \
        --profile observability down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
    fi
    # Whatever the compose tool left (or could not reach), by the project's label.
    local label="label=com.docker.compose.project=$PROJECT"
    timeout 60 docker ps -aq --filter "$label" | xargs -r timeout 60 docker rm -fv >/dev/null 2>&1 || true
    timeout 60 docker network ls -q --filter "$label" | xargs -r timeout 60 docker network rm >/dev/null 2>&1 || true
    timeout 60 docker volume ls -q --filter "$label" | xargs -r timeout 60 docker volume rm -f >/dev/null 2>&1 || true
  fi
  [ -z "$WORK" ] || rm -rf "$WORK"
  [ "$status" -eq 0 ] || echo "compose-test: ${PASSED:-0} passed, 1 failed"
  say "$([ "$status" -eq 0 ] && echo passed || echo failed) in $((SECONDS - STARTED)) s"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'say "timed out or stopped"; exit 124' TERM

# The whole run is bounded: past TOTAL_TIMEOUT less two minutes for the clean-up, the
# watchdog stops the test's current command and the script (the trap cleans up).
(
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  sleep $((TOTAL_TIMEOUT - 120)) &
  sleeper=$!
  wait "$sleeper"
  say "no end after $((TOTAL_TIMEOUT - 120)) s; stopping"
  kill -TERM $$ 2>/dev/null
  # The script's trap waits for its current command, itself bounded; end it now.
  for child in $(ps -o pid= --ppid $$); do
    [ "$child" = "$BASHPID" ] || kill -TERM "$child" 2>/dev/null || true
  done
) &
WATCHDOG=$!

docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info)"
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
  COMPOSE_V1=""
elif command -v docker-compose >/dev/null; then
  COMPOSE=(docker-compose)
  COMPOSE_V1=1
else
  die "no compose tool (docker compose or docker-compose)"
fi
say "compose tool: $("${COMPOSE[@]}" version --short 2>/dev/null || "${COMPOSE[@]}" version | head -1)"

# --- images ------------------------------------------------------------------------------
t0=$SECONDS
scripts/compose-images.sh
figure "images ready in $((SECONDS - t0)) s"
[ -x "$CTL" ] || die "$CTL is missing"

# --- the project: a copy of the compose file and deploy/, with secrets of its own -----------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/plaint-ct.XXXXXX")"
PROJECT="plaint-ct-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
P="$WORK/project"
mkdir -p "$P/scripts" "$P/deploy"
cp -r deploy/nats deploy/observability deploy/postgres deploy/test deploy/plaint.env "$P/deploy/"
cp scripts/compose-secrets.sh "$P/scripts/"
if [ -n "$COMPOSE_V1" ]; then
  # Compose v1 does not know the top-level `name:` (the project name is given with -p).
  sed '/^name:/d' docker-compose.yml >"$P/docker-compose.yml"
else
  cp docker-compose.yml "$P/docker-compose.yml"
fi
PLAINT_CTL="$CTL" "$P/scripts/compose-secrets.sh" 2>"$WORK/secrets.log" ||
  die "compose-secrets.sh: $(cat "$WORK/secrets.log")"
S="$P/deploy/secrets"

# Free ports on loopback for what the compose file publishes: free_port <variable>.
# Taken below the kernel's ephemeral range: a port is published minutes after it is
# chosen, and one in that range may be handed meanwhile to any outgoing connection.
ephemeral_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "${ephemeral_low:-0}" -gt 12000 ] || ephemeral_low=32768
used_ports=" "
free_port() {
  local port
  for _ in $(seq 200); do
    port=$((10000 + RANDOM % (ephemeral_low - 10000)))
    if [[ "$used_ports" != *" $port "* ]] && ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      used_ports+="$port "
      printf -v "$1" '%s' "$port"
      return 0
    fi
  done
  die "no free port found"
}
for v in INTAKE_PORT ROUTER_PORT NATS_PORT CL_INTAKE_PORT CL_ROUTER_PORT PROM_PORT JAEGER_PORT \
  OTLP_PORT; do
  free_port "$v"
done
export PLAINT_INTAKE_PORT="127.0.0.1:$INTAKE_PORT" PLAINT_ROUTER_PORT="127.0.0.1:$ROUTER_PORT" \
  PLAINT_NATS_PORT="127.0.0.1:$NATS_PORT" PLAINT_CLUSTER_INTAKE_PORT="127.0.0.1:$CL_INTAKE_PORT" \
  PLAINT_CLUSTER_ROUTER_PORT="127.0.0.1:$CL_ROUTER_PORT" \
  PLAINT_PROMETHEUS_PORT="127.0.0.1:$PROM_PORT" PLAINT_JAEGER_UI_PORT="127.0.0.1:$JAEGER_PORT" \
  PLAINT_OTLP_PORT="127.0.0.1:$OTLP_PORT"

dc_files=(--project-directory "$P" -f "$P/docker-compose.yml" -f "$P/deploy/test/compose.local.yml")
# dc [compose arguments...]: the compose tool on this project, bounded.
dc() { timeout 300 "${COMPOSE[@]}" -p "$PROJECT" "${dc_files[@]}" "$@"; }

# plaint-ctl as a client from the host: mutual TLS with the project's client certificate,
# the bootstrap admin key, all read from files.
export PLAINT_API_KEY_FILE="$S/admin.key" PLAINT_TLS_CA_FILE="$S/tls/ca.pem" \
  PLAINT_TLS_CLIENT_CERT_FILE="$S/tls/client.pem" PLAINT_TLS_CLIENT_KEY_FILE="$S/tls/client.key"
export PLAINT_INTAKE_URL="https://127.0.0.1:$INTAKE_PORT" PLAINT_ROUTER_URL="https://127.0.0.1:$ROUTER_PORT"
ctl() { timeout 60 "$CTL" "$@"; }

# --- helpers -----------------------------------------------------------------------------
# The remaining seconds of the whole run.
remaining() { echo $((TOTAL_TIMEOUT - (SECONDS - STARTED))); }

# wait_for <what> <seconds> <command...>: polls every 0.5 s; fails after <seconds>.
wait_for() {
  local what=$1 limit=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  while ! "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || die "$what: not within $limit s"
    sleep 0.5
  done
}

cid() { dc ps -q "$1"; }
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$1" 2>/dev/null; }
healthy() {
  local svc id
  for svc in "$@"; do
    id="$(cid "$svc")"
    [ -n "$id" ] && [ "$(health "$id")" = healthy ] || return 1
  done
}
restarts() { docker inspect -f '{{.RestartCount}}' "$1"; }
now_ms() { date +%s%3N; }
secs_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

say "project $PROJECT in $P; intake 127.0.0.1:$INTAKE_PORT, router 127.0.0.1:$ROUTER_PORT, NATS 127.0.0.1:$NATS_PORT"
dc config -q || die "the compose tool refuses the compose file"

# --- 1. up: every service healthy, a demo load routed and visible ----------------------------
t=$(now_ms)
dc up -d --no-build >"$WORK/up.log" 2>&1 || die "up: $(tail -n 20 "$WORK/up.log")"
wait_for "every service healthy" 180 healthy nats postgres intake router
figure "time to healthy (up -d to nats, postgres, intake, router healthy): $(secs_since "$t") s"

# --- load and checks ----------------------------------------------------------------------
CHANNELS=(EMAIL PUBLIC_SOCIAL PHONE CHAT WEB_FORM LETTER_TO_CEO STORE PRIVATE_SOCIAL)
CATEGORIES=(SERVICE PRODUCT_DEFECT RETURN BILLING DELIVERY PRODUCT_IDEA REPAIR_REQUEST OTHER)

# submit <ticket> <n>: one complaint over gRPC; prints its id when acknowledged.
submit() {
  local out
  out="$(timeout 30 "$CTL" submit --ticket "$1" --customer "cust-$(($2 % 97))" \
    --channel "${CHANNELS[$(($2 % 8))]}" --category "${CATEGORIES[$((($2 / 8) % 8))]}" \
    --reach $(($2 * 37 % 20000)) --json 2>&1)" || {
    echo "$out" >&2
    return 1
  }
  sed -n 's/.*"complaint_id":"\([^"]*\)".*/\1/p' <<<"$out"
}

# load <name> <seconds>: submits complaints <name>-1, <name>-2, ... one after the other until
# $WORK/<name>.stop exists or <seconds> have passed. A failed submission is retried with the
# same ticket (an ambiguous failure is then answered as a duplicate, with the same id) until
# acknowledged. Writes "<ticket> <id> <ms>" per acknowledgement to $WORK/<name>.acked and
# "<ticket> <ms> <error>" per failed attempt to $WORK/<name>.failed.
load() {
  local name=$1 end=$((SECONDS + $2)) i=0 id
  : >"$WORK/$name.acked"
  : >"$WORK/$name.failed"
  while [ ! -e "$WORK/$name.stop" ] && [ "$SECONDS" -lt "$end" ]; do
    i=$((i + 1))
    while [ "$SECONDS" -lt "$end" ]; do
      if id="$(submit "$name-$i" "$i" 2>"$WORK/$name.err")" && [ -n "$id" ]; then
        echo "$name-$i $id $(now_ms)" >>"$WORK/$name.acked"
        break
      fi
      echo "$name-$i $(now_ms) $(tr '\n' ' ' <"$WORK/$name.err" | tail -c 300)" >>"$WORK/$name.failed"
      sleep 0.2
    done
    sleep 0.05
  done
}
LOAD_PIDS=()
load_start() {
  load "$1" "$2" &
  LOAD_PIDS+=($!)
}
# load_stop <name>: asks the load to stop and waits for it (bounded by its own time limit).
load_stop() {
  touch "$WORK/$1.stop"
  local pid
  for pid in "${LOAD_PIDS[@]}"; do wait "$pid" || true; done
  LOAD_PIDS=()
  say "load $1: $(wc -l <"$WORK/$1.acked") acknowledged, $(wc -l <"$WORK/$1.failed") failed attempts (retried)"
}

# verify <label> <seconds> <acked files...>: every acknowledged complaint is visible through
# the router and decided exactly once (`plaint-ctl get`: its decisions), waiting up to
# <seconds> for the projections; prints the figures, fails on any lost or twice-decided one.
verify() {
  local label=$1 limit=$2
  shift 2
  python3 - "$CTL" "$label" "$limit" "$@" <<'PY' || die "$label: acknowledged complaints lost or not decided once"
import json, subprocess, sys, time
ctl, label, limit, files = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
ids = {}
for f in files:
    for line in open(f):
        parts = line.split()
        if len(parts) >= 2:
            ids.setdefault(parts[1], parts[0])
deadline = time.monotonic() + limit
pending, decided, seen_error = set(ids), {}, {}
while pending and time.monotonic() < deadline:
    for cid in sorted(pending):
        r = subprocess.run([ctl, "get", cid, "--json"], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            seen_error[cid] = r.stderr.strip()[-200:]
            continue
        d = json.loads(r.stdout)
        routed = [e for e in d.get("timeline", []) if e.get("type") in ("complaint_routed",)]
        if d["complaint"].get("status") != "RECEIVED" and d.get("decisions"):
            decided[cid] = (len(d["decisions"]), len(routed))
            pending.discard(cid)
    if pending:
        time.sleep(1)
twice = {c: n for c, n in decided.items() if n[0] != 1 or n[1] != 1}
print(f"compose-test: figure {label}: {len(ids)} acknowledged, lost {len(pending)}, "
      f"decided once {len(decided) - len(twice)}, decided more than once {len(twice)}")
for cid in sorted(pending)[:5]:
    print(f"compose-test:   not visible or undecided: {ids[cid]} {cid} {seen_error.get(cid, '')}", file=sys.stderr)
for cid, n in sorted(twice.items())[:5]:
    print(f"compose-test:   {ids[cid]} {cid}: {n[0]} decisions, {n[1]} routed events", file=sys.stderr)
sys.exit(1 if pending or twice or not ids else 0)
PY
}

# acked_after <load> <ms>: the load has an acknowledgement after <ms>.
acked_after() { awk -v f="$2" '$3 > f { found = 1 } END { exit !found }' "$WORK/$1.acked"; }

# crash <service>: kill -9 of the container's process, as a crash or the OOM killer does it
# (the engine's restart policy applies; `docker kill` would be a manual stop, see below).
# Prints the milliseconds when it was killed.
crash() {
  local id pid
  id="$(cid "$1")"
  pid="$(docker inspect -f '{{.State.Pid}}' "$id")"
  [ "$pid" -gt 1 ] || die "$1: no process to kill"
  now_ms
  kill -9 "$pid"
}
# back <service> <restarts before> <seconds>: waits until the container was restarted and
# is healthy again.
restarted_healthy() {
  [ "$(docker inspect -f '{{.RestartCount}} {{.State.Health.Status}}' "$1")" = "$2 healthy" ]
}
back() {
  wait_for "$1 restarted and healthy" "$3" restarted_healthy "$(cid "$1")" $(($2 + 1))
}

# probe_routed <seconds> <ticket>: submits a complaint and waits until it is routed and
# visible through the router.
probe_routed() {
  local id deadline=$((SECONDS + $1))
  while ! id="$(submit "$2" 1 2>/dev/null)" || [ -z "$id" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "probe $2: not acknowledged within $1 s"
    sleep 0.2
  done
  while ! ctl get "$id" --json 2>/dev/null | grep -Eq '"status": ?"(ROUTED|ACKNOWLEDGED|RESOLVED)"'; do
    [ "$SECONDS" -lt "$deadline" ] || die "probe $2 ($id): not routed and visible within $1 s"
    sleep 0.2
  done
}

# visible: how many complaints the router shows.
visible() {
  ctl list --limit 1000000 --json 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null || echo 0
}
unrouted() {
  ctl list --status RECEIVED --limit 1000000 --json 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null || echo 1
}
door_target=0
all_there() { [ "$(visible)" -ge "$door_target" ] && [ "$(unrouted)" = 0 ]; }
# helpdesk_door_check <when> <count> <since ms>: the demo (half over gRPC, half published to
# the helpdesk door as integration acme) shows <count> more complaints, all routed.
helpdesk_door_check() {
  local before
  before="$(visible)"
  ctl demo --nats "nats://127.0.0.1:$NATS_PORT" --prefix plaint --integration acme \
    --nats-nkey-file "$S/nats/acme.nk" --nats-inbox-prefix _INBOX_acme \
    --count "$2" --seed "$RANDOM" --json >"$WORK/demo2.json" 2>"$WORK/demo.log" ||
    die "plaint-ctl demo $1: $(tail -n 20 "$WORK/demo.log")"
  door_target=$((before + $2))
  wait_for "the demo $1 routed and visible" 60 all_there
  figure "helpdesk door and gRPC $1: $2 complaints routed and visible $(secs_since "$3") s after it"
}

# Prometheus's HTTP API on its published port.
prom_query() {
  curl -fsS --max-time 5 "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" 2>/dev/null
}
# prom_value <query>: the first sample's value, or nothing.
prom_value() {
  prom_query "$1" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null
}
prom_has_counters() {
  [ -n "$(prom_value 'sum(plaint_decisions_total)')" ] &&
    [ -n "$(prom_value 'sum(plaint_intake_writes_total)')" ]
}
both_up() {
  [ "$(prom_value 'sum(up{job=~"plaint-intake|plaint-router"})')" = 2 ]
}

# The demo load through the published ports: half over gRPC, half over the helpdesk door
# (NATS, as integration acme with its own nkey), then read back through the router.
DEMO_COUNT="${COMPOSE_TEST_DEMO_COUNT:-400}"
t=$(now_ms)
ctl demo --nats "nats://127.0.0.1:$NATS_PORT" --prefix plaint --integration acme \
  --nats-nkey-file "$S/nats/acme.nk" --nats-inbox-prefix _INBOX_acme \
  --count "$DEMO_COUNT" --seed "$RANDOM" --json >"$WORK/demo.json" 2>"$WORK/demo.log" ||
  die "plaint-ctl demo: $(tail -n 20 "$WORK/demo.log")"
python3 - "$WORK/demo.json" "$DEMO_COUNT" <<'PY' || die "the demo load was not all routed and visible"
import json, sys
d, n = json.load(open(sys.argv[1])), int(sys.argv[2])
run, sub = d["this_run"], d["submitted"]
routes, statuses = run["routes"], run["statuses"]
print(f"compose-test: figure demo: {sub['grpc']} over gRPC + {sub['helpdesk']} over the helpdesk door; "
      f"visible {run['complaints']}, routes {routes}, statuses {statuses}, lifecycle errors {d['lifecycle']['errors']}")
ok = (sub["grpc"] + sub["helpdesk"] == n and run["complaints"] == n and sum(routes.values()) == n
      and "RECEIVED" not in statuses and d["lifecycle"]["errors"] == 0)
sys.exit(0 if ok else 1)
PY
figure "demo load of $DEMO_COUNT routed and visible in $(secs_since "$t") s"

# --- 2. kill -9 of the router, then of intake, under load ---------------------------------------
step_kill() {
  load_start kill 240
  sleep 3
  restarts_before="$(restarts "$(cid router)")"
  t="$(crash router)"
  probe_routed 60 probe-router-crash
  figure "router kill -9: a complaint submitted after the kill routed and visible $(secs_since "$t") s after it"
  back router "$restarts_before" 60
  figure "router kill -9: restarted by the engine and healthy after $(secs_since "$t") s"
  sleep 3
  restarts_before="$(restarts "$(cid intake)")"
  acked_before="$(wc -l <"$WORK/kill.acked")"
  t="$(crash intake)"
  back intake "$restarts_before" 60
  figure "intake kill -9: restarted by the engine and healthy after $(secs_since "$t") s"
  # Back for clients: the first acknowledgement after the first failed attempt since the kill.
  local first_fail first_ack
  first_fail="$(awk -v t="$t" '$2 > t { print $2; exit }' "$WORK/kill.failed")"
  if [ -n "$first_fail" ]; then
    wait_for "a submission acknowledged after the intake kill" 30 acked_after kill "$first_fail"
    first_ack="$(awk -v f="$first_fail" '$3 > f { print $3; exit }' "$WORK/kill.acked")"
    figure "intake kill -9: submissions acknowledged again $(awk -v a="$t" -v b="$first_ack" 'BEGIN { printf "%.1f", (b - a) / 1000 }') s after the kill"
  else
    figure "intake kill -9: no submission of the load failed"
  fi
  sleep 3
  load_stop kill
  verify "kill -9 router and intake under load" 90 "$WORK/kill.acked"
}

# `docker kill` is not a crash to the engine: it is a manual stop, after which no restart
# policy restarts the container (Docker Engine 20.10; the process killed as above is
# restarted). What an SRE who sends it then sees, and `up -d` bringing it back:
step_docker_kill() {
  id="$(cid router)"
  t=$(now_ms)
  timeout 60 docker kill -s KILL "$id" >/dev/null
  sleep 8
  if [ "$(docker inspect -f '{{.State.Running}}' "$id")" = true ]; then
    say "docker kill -s KILL router: the engine restarted it"
  else
    say "docker kill -s KILL router: not restarted after 8 s (a manual stop to the engine)"
  fi
  dc up -d --no-build router >"$WORK/up.log" 2>&1 || die "up router: $(tail -n 20 "$WORK/up.log")"
  wait_for "router healthy after docker kill and up -d" 60 healthy router
  figure "router docker kill -s KILL, then up -d: healthy $(secs_since "$t") s after the kill"
  probe_routed 60 probe-router-docker-kill
}

# --- 3. NATS stopped and started: UNAVAILABLE meanwhile, then everything resumes by itself ----
step_nats() {
  load_start nats 240
  sleep 3
  intake_restarts="$(restarts "$(cid intake)") $(restarts "$(cid router)")"
  t=$(now_ms)
  dc stop -t 10 nats >/dev/null 2>&1 || die "stop nats"
  figure "nats stopped in $(secs_since "$t") s"
  t2=$(now_ms)
  if out="$(submit probe-nats-down 1 2>&1)"; then
    die "a write while NATS was down was acknowledged: $out"
  fi
  grep -qi unavailable <<<"$out" || die "a write while NATS was down failed, but not with UNAVAILABLE: $out"
  figure "nats down: a write got UNAVAILABLE after $(secs_since "$t2") s"
  sleep 8
  t=$(now_ms)
  acked_before="$(wc -l <"$WORK/nats.acked")"
  dc start nats >/dev/null 2>&1 || die "start nats"
  wait_for "nats healthy" 60 healthy nats
  figure "nats started: healthy after $(secs_since "$t") s"
  probe_routed 90 probe-nats-up
  figure "nats started: a new complaint routed and visible $(secs_since "$t") s after the start"
  first_ack="$(awk -v n="$acked_before" 'NR > n { print $3; exit }' "$WORK/nats.acked")"
  [ -n "$first_ack" ] && figure "nats started: the load's writes acknowledged again $(awk -v a="$t" -v b="$first_ack" 'BEGIN { printf "%.1f", (b - a) / 1000 }') s after the start"
  sleep 2
  load_stop nats
  [ "$(restarts "$(cid intake)") $(restarts "$(cid router)")" = "$intake_restarts" ] ||
    die "intake or router restarted during the NATS outage (they should have resumed by themselves)"
  # The helpdesk door too: its consumer resumed by itself (the demo's helpdesk half).
  helpdesk_door_check "after the NATS restart" 40 "$t"
  verify "nats stop and start under load" 90 "$WORK/nats.acked"
}

# --- 4. PostgreSQL restarted: projections catch up; data survives down + up ----------------------
step_postgres() {
  load_start pg 240
  sleep 3
  t=$(now_ms)
  dc restart -t 10 postgres >/dev/null 2>&1 || die "restart postgres"
  wait_for "postgres healthy" 60 healthy postgres
  figure "postgres restarted: healthy after $(secs_since "$t") s"
  probe_routed 90 probe-pg-restart
  figure "postgres restarted: a new complaint routed and visible $(secs_since "$t") s after the restart began"
  sleep 3
  load_stop pg
  verify "postgres restart under load" 90 "$WORK/pg.acked"

  t=$(now_ms)
  dc down -t 10 >"$WORK/down.log" 2>&1 || die "down: $(tail -n 20 "$WORK/down.log")"
  figure "down (volumes kept) in $(secs_since "$t") s"
  t=$(now_ms)
  dc up -d --no-build >"$WORK/up.log" 2>&1 || die "up: $(tail -n 20 "$WORK/up.log")"
  wait_for "every service healthy after down + up" 180 healthy nats postgres intake router
  figure "up -d after down: every service healthy after $(secs_since "$t") s"
  verify "after down + up (named volumes), every load so far" 90 "$WORK"/*.acked
}

# --- 5. observability: Prometheus scrapes both services ------------------------------------------
step_observability() {
  t=$(now_ms)
  dc --profile observability up -d --no-build prometheus >"$WORK/up.log" 2>&1 ||
    die "up prometheus: $(tail -n 20 "$WORK/up.log")"
  wait_for "Prometheus scraping intake and router" 90 both_up
  figure "prometheus: both services scraped (up = 1) $(secs_since "$t") s after up -d"
  # Counters appear once they count: one complaint through both services first.
  probe_routed 60 probe-prometheus
  wait_for "plaint_decisions_total and plaint_intake_writes_total in Prometheus" 60 prom_has_counters
  figure "prometheus: plaint_decisions_total $(prom_value 'sum(plaint_decisions_total)'), plaint_intake_writes_total $(prom_value 'sum(plaint_intake_writes_total)') (since the services' last start), read $(secs_since "$t") s after up -d"
}

# --- 6. a rolling upgrade of the router under load -------------------------------------------------
step_upgrade() {
  load_start upgrade 240
  sleep 3
  old_id="$(cid router)"
  t=$(now_ms)
  dc up -d --no-build --no-deps --force-recreate router >"$WORK/up.log" 2>&1 ||
    die "recreate router: $(tail -n 20 "$WORK/up.log")"
  [ "$(cid router)" != "$old_id" ] || die "the router container was not replaced"
  wait_for "the new router healthy" 60 healthy router
  figure "router replaced: the new container healthy $(secs_since "$t") s after the replacement began"
  probe_routed 60 probe-upgrade
  figure "router replaced: a new complaint routed and visible $(secs_since "$t") s after the replacement began"
  sleep 3
  load_stop upgrade
  failed="$(wc -l <"$WORK/upgrade.failed")"
  [ "$failed" -eq 0 ] || die "rolling upgrade: $failed submissions failed: $(head -n 3 "$WORK/upgrade.failed")"
  verify "router replaced under load (0 failed submissions)" 90 "$WORK/upgrade.acked"
}

# --- 7. the cluster profile: three NATS nodes, R3 streams; a node killed, a node cut off -----------
# jsz <service>: that node's JetStream report (its own replicas' state), through its
# monitoring port inside the container (not published).
jsz() {
  timeout 20 docker exec "$(cid "$1")" wget -qO- 'http://127.0.0.1:8222/jsz?accounts=true&streams=true&config=true'
}
# stream <service> <field>: replicas | leader | last_seq of stream COMPLAINTS as that node sees it.
stream() {
  jsz "$1" 2>/dev/null | python3 -c '
import json, sys
d, field = json.load(sys.stdin), sys.argv[1]
for a in d.get("account_details", []):
    for st in a.get("stream_detail", []):
        if st["name"] == "COMPLAINTS":
            print({"replicas": st.get("config", {}).get("num_replicas"),
                   "leader": st.get("cluster", {}).get("leader", ""),
                   "last_seq": st["state"]["last_seq"]}[field])
' "$2" 2>/dev/null
}
# The compose service of a node's server name (plaint-nats-c2 -> nats-c2).
node_service() { echo "nats-${1##*-}"; }
# in_sync: the three nodes hold the same last sequence of the log.
in_sync() {
  local a b c
  a="$(stream nats-c1 last_seq)" b="$(stream nats-c2 last_seq)" c="$(stream nats-c3 last_seq)"
  [ -n "$a" ] && [ "$a" = "$b" ] && [ "$b" = "$c" ]
}
# caught_up <service> <sequence>: that node holds the log up to <sequence>.
caught_up() {
  local seq
  seq="$(stream "$1" last_seq)"
  [ -n "$seq" ] && [ "$seq" -ge "$2" ]
}
# acks_between <name> <from ms> <to ms>: acknowledgements of load <name> in that window, and
# the longest gap between two of them (s) from <from> on.
acks_between() {
  awk -v a="$2" -v b="$3" '$3 >= a && $3 <= b { n++; g = $3 - last; if (g > max) max = g; last = $3 }
    BEGIN { last = a } END { printf "%d acknowledged, longest gap %.1f s", n, max / 1000 }' "$WORK/$1.acked"
}

step_cluster() {
  local saved_intake=$PLAINT_INTAKE_URL saved_router=$PLAINT_ROUTER_URL node leader t_down t_up seq n v
  t=$(now_ms)
  dc --profile cluster up -d --no-build >"$WORK/up.log" 2>&1 ||
    die "up --profile cluster: $(tail -n 20 "$WORK/up.log")"
  wait_for "the cluster profile healthy" 180 healthy nats-c1 nats-c2 nats-c3 intake-cluster router-cluster
  figure "cluster: three nodes, intake-cluster and router-cluster healthy $(secs_since "$t") s after up -d"
  [ "$(stream nats-c1 replicas)" = 3 ] || die "cluster: stream COMPLAINTS is not R3"
  export PLAINT_INTAKE_URL="https://127.0.0.1:$CL_INTAKE_PORT" PLAINT_ROUTER_URL="https://127.0.0.1:$CL_ROUTER_PORT"
  probe_routed 60 probe-cluster-up
  load_start cluster 300
  sleep 3

  # One node killed: the log's leader, kept down 10 s (docker kill: no restart), then started.
  leader="$(stream nats-c1 leader)"
  node="$(node_service "$leader")"
  t_down=$(now_ms)
  timeout 60 docker kill -s KILL "$(cid "$node")" >/dev/null
  probe_routed 30 probe-cluster-node-down
  figure "cluster: log leader $node killed; a complaint routed and visible $(secs_since "$t_down") s after"
  sleep 10
  t_up=$(now_ms)
  figure "cluster: while $node was down: $(acks_between cluster "$t_down" "$t_up")"
  [ "$(acks_between cluster "$t_down" "$t_up" | cut -d' ' -f1)" -gt 0 ] ||
    die "cluster: nothing acknowledged while one node was down"
  # What the other two hold now: the restarted node must catch up to it.
  seq=0
  for n in nats-c1 nats-c2 nats-c3; do
    [ "$n" = "$node" ] && continue
    v="$(stream "$n" last_seq || true)"
    [ -z "$v" ] || [ "$v" -le "$seq" ] || seq=$v
  done
  timeout 60 docker start "$(cid "$node")" >/dev/null
  wait_for "$node healthy again" 60 healthy "$node"
  wait_for "$node caught up" 60 caught_up "$node" "$seq"
  figure "cluster: $node started again, healthy and caught up $(secs_since "$t_up") s after the start"

  # One node cut off (docker network disconnect) for 15 s, then reconnected: the log's leader
  # unless intake-cluster or router-cluster is connected to it (see RELIABILITY.md).
  local client_ips candidates="" ips
  client_ips="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' \
    "$(cid intake-cluster)" "$(cid router-cluster)" | tr '\n' ' ')"
  for n in nats-c1 nats-c2 nats-c3; do
    ips="$(timeout 20 docker exec "$(cid "$n")" wget -qO- http://127.0.0.1:8222/connz |
      python3 -c 'import json,sys; print(" ".join(c["ip"] for c in json.load(sys.stdin)["connections"]))')"
    local clients=0 ip
    for ip in $ips; do [[ " $client_ips " == *" $ip "* ]] && clients=1; done
    [ "$clients" = 1 ] || candidates+="$n "
  done
  [ -n "$candidates" ] || die "cluster: every node has a client of ours"
  leader="$(node_service "$(stream nats-c2 leader)")"
  if [[ " $candidates " == *" $leader "* ]]; then node=$leader; else node="${candidates%% *}"; fi
  local net
  net="$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$(cid "$node")")"
  t_down=$(now_ms)
  timeout 60 docker network disconnect "$net" "$(cid "$node")"
  probe_routed 30 probe-cluster-partition
  figure "cluster: $node cut off ($([ "$node" = "$leader" ] && echo "the log's leader" || echo "a follower")); a complaint routed and visible $(secs_since "$t_down") s after"
  sleep 15
  t_up=$(now_ms)
  figure "cluster: while $node was cut off: $(acks_between cluster "$t_down" "$t_up")"
  [ "$(acks_between cluster "$t_down" "$t_up" | cut -d' ' -f1)" -gt 0 ] ||
    die "cluster: nothing acknowledged while one node was cut off"
  timeout 60 docker network connect --alias "$node" "$net" "$(cid "$node")"
  sleep 3
  load_stop cluster
  wait_for "the three nodes in sync after the partition" 90 in_sync
  figure "cluster: $node reconnected; the three nodes hold the same log $(secs_since "$t_up") s after (last sequence $(stream nats-c1 last_seq))"
  verify "cluster: node killed, node cut off, under load" 90 "$WORK/cluster.acked"
  export PLAINT_INTAKE_URL="$saved_intake" PLAINT_ROUTER_URL="$saved_router"
}

# COMPOSE_TEST_STEPS picks steps (default all, in this order); `up` always runs first.
ALL_STEPS="kill docker_kill nats postgres observability upgrade cluster"
PASSED=1 # up, above
for step in ${COMPOSE_TEST_STEPS:-$ALL_STEPS}; do
  [[ " $ALL_STEPS " == *" $step "* ]] || die "no step $step (steps: $ALL_STEPS)"
  say "step $step"
  "step_$step"
  PASSED=$((PASSED + 1))
done
echo "compose-test: $PASSED passed, 0 failed"
