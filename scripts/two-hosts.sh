#!/usr/bin/env bash
# The two-host cutover: store, A, B, the edge and the client each get their own
# network namespace and address (TEST-NET-1, 192.0.2.0/24, only inside these
# namespaces), as two droplets behind Cloudflare would. A and B share a
# PostgreSQL store; `migrator run` moves the record from A to B with start and
# stop commands that use `ip netns exec`; the verdict must pass.
#
#   scripts/two-hosts.sh [--rate N] [--keep DIR] [--fault STEP:KIND[:ARG]]...
#
# --fault is passed to `migrator run`; the plan's [store] partition_b and
# heal_b cut and restore B's route to the store (partition-b-store).
#
# Needs root and iproute2 (scripts/test.sh installs it). Cleans up every
# namespace and process it made, also on failure. Exit code: the migrator's.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

RATE=200
KEEP=""
FAULTS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    --fault) FAULTS+=(--fault "$2"); shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "two-hosts.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || { echo "two-hosts.sh: needs root (network namespaces)" >&2; exit 2; }
command -v ip >/dev/null || { echo "two-hosts.sh: needs iproute2 (ip)" >&2; exit 2; }

if [ -z "${HANDOVER_BIN_DIR:-}" ]; then
  cargo build --release --bins -q
  HANDOVER_BIN_DIR="$ROOT/target/release"
fi
BIN=$HANDOVER_BIN_DIR
for b in example-app edge migrator; do
  [ -x "$BIN/$b" ] || { echo "two-hosts.sh: $BIN/$b not built" >&2; exit 2; }
done

# A unique prefix per run, so two runs (or a leftover) never collide.
export HO_NS_PREFIX="${HO_NS_PREFIX:-ho$$}"
# shellcheck source=lib/netns.sh
source "$ROOT/scripts/lib/netns.sh"

WORK=${KEEP:-$(mktemp -d /tmp/two-hosts.XXXXXX)}
mkdir -p "$WORK"
PIDS=()
cleanup() {
  local rc=$?
  [ ${#PIDS[@]} -eq 0 ] || stop_pids "${PIDS[@]}"
  [ -e "$WORK/pg/data/PG_VERSION" ] && netns_exec store "$ROOT/scripts/pg.sh" stop "$WORK/pg" || true
  netns_down
  if [ $rc -ne 0 ]; then
    echo "two-hosts.sh: failed (exit $rc); logs:" >&2
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
  fi
  [ -n "$KEEP" ] || rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

hosts_up
echo "== hosts: store $STORE_IP, a $A_IP, b $B_IP, edge $EDGE_IP, client $CLIENT_IP"

echo "== PostgreSQL on the store host"
URL=$(PG_LISTEN=$STORE_IP netns_exec store "$ROOT/scripts/pg.sh" start "$WORK/pg")
STORE_URL=${URL/@127.0.0.1:/@$STORE_IP:}

# wait_line FILE: until the server printed its listening line.
wait_line() {
  for _ in $(seq 300); do grep -q '"event":"listening"' "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "two-hosts.sh: no listening line in $1" >&2; return 1
}

echo "== example-app A on host a"
# Not through a shell function: $! must be the server's own pid (ip execs it).
HANDOVER_STORE=$STORE_URL ip netns exec "${HO_NS_PREFIX}-a" "$BIN/example-app" --listen "$A_IP:8080" --instance-id a \
  >"$WORK/a.out" 2>"$WORK/a.log" &
A_PID=$!
PIDS+=("$A_PID")
wait_line "$WORK/a.out"

echo "== edge on host edge"
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$WORK/edge.toml" <<TOML
api_listen = "$EDGE_IP:8000"
proxy_listen = "$EDGE_IP:80"
origin_port = 8080
propagation = "1s"
idle_timeout = "2s"
state_file = "$WORK/edge-state.json"
tokens_env = "EDGE_TOKENS"
[[zones]]
name = "handover.test"
[[zones.records]]
name = "shop.handover.test"
type = "A"
content = "$A_IP"
proxied = true
ttl = 1
TOML
EDGE_TOKENS=$TOKEN ip netns exec "${HO_NS_PREFIX}-edge" "$BIN/edge" --config "$WORK/edge.toml" \
  >"$WORK/edge.out" 2>"$WORK/edge.log" &
PIDS+=("$!")
wait_line "$WORK/edge.out"

cat >"$WORK/plan.toml" <<TOML
[a]
url = "http://$A_IP:8080/"
address = "$A_IP"
stop = "kill -TERM $A_PID"

[b]
url = "http://$B_IP:8080/"
address = "$B_IP"
# The store URL (with its password) reaches B through HANDOVER_STORE, not
# the command line, so neither the plan nor the migrator's output shows it.
start = "exec ip netns exec ${HO_NS_PREFIX}-b $BIN/example-app --listen $B_IP:8080 --instance-id b >$WORK/b.out 2>$WORK/b.log"
stop = "kill -TERM {pid}"

[switch]
kind = "cloudflare"
zone = "handover.test"
record = "shop.handover.test"
api_base = "http://$EDGE_IP:8000/client/v4/"

[feeder]
target = "http://shop.handover.test/"
rate = $RATE
resolve = { "shop.handover.test" = "$EDGE_IP:80" }
ack_log = "$WORK/acks.jsonl"
run_before_flip = "4s"
run_after_flip = "4s"

[drain]
quiet = "3s"

[store]
# B cannot reach the store: its namespace refuses the route (partition-b-store).
partition_b = "ip -n ${HO_NS_PREFIX}-b route add prohibit $STORE_IP/32"
heal_b = "ip -n ${HO_NS_PREFIX}-b route del prohibit $STORE_IP/32"
TOML

echo "== migrator run on host client"
set +e
cd "$WORK" # the migrator keeps its step logs (b-start.log) in its working directory
HANDOVER_STORE=$STORE_URL CLOUDFLARE_API_TOKEN=$TOKEN NO_COLOR=1 netns_exec client "$BIN/migrator" run --plan "$WORK/plan.toml" \
  --report "$WORK/report.json" "${FAULTS[@]}" 2>"$WORK/migrator.log"
RC=$?
set -e
# B, started by the plan, is the new production and keeps running after the
# migrator exits; cleanup ends it with its namespace.
echo "== migrator exit code $RC (report: $WORK/report.json)"
[ -n "${TWO_HOSTS_REPORT:-}" ] && cp "$WORK/report.json" "$TWO_HOSTS_REPORT" 2>/dev/null || true
exit $RC
