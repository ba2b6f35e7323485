#!/usr/bin/env bash
# Ping-pong soak: ROUNDS consecutive `migrator run` cutovers A→B→A→… at RATE
# orders/s on one SQLite store behind one edge. Every round must pass with
# 0 lost and 0 failed; the RSS of every process is printed per round (the
# edge lives through all rounds, so its RSS must stay flat; each app
# instance and migrator is new per round).
# Usage: scripts/soak.sh   Env: ROUNDS (10), RATE (1000), BUILD (release|debug, release),
#   BIN_DIR (use the binaries there instead of building)
# Not part of CI by default; migrator/tests/soak.rs runs one short round.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-10}"
RATE="${RATE:-1000}"
BUILD="${BUILD:-release}"
if ! command -v jq >/dev/null 2>&1; then
  echo "== installing jq" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
fi
if [ -n "${BIN_DIR:-}" ]; then
  BIN="$BIN_DIR"
else
  if [ "$BUILD" = release ]; then cargo build --release --workspace --bins >&2; else cargo build --workspace --bins >&2; fi
  BIN="$(pwd)/${CARGO_TARGET_DIR:-target}/$BUILD"
fi
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for f in "$WORK"/*.pid; do [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true; done
  sleep 1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# One port free on both origin addresses.
PORT="$(python3 - <<'EOF'
import socket
for _ in range(100):
    a = socket.socket(); a.bind(("127.0.0.2", 0)); port = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.3", port)); print(port); break
    except OSError:
        pass
    finally:
        a.close(); b.close()
EOF
)"
TOKEN="soak-$RANDOM$RANDOM$RANDOM"
cat >"$WORK/edge.toml" <<EOF
api_listen = "127.0.0.1:0"
proxy_listen = "127.0.0.1:0"
origin_port = $PORT
propagation = "1s"
idle_timeout = "1s"
state_file = "$WORK/edge-state.json"
tokens_env = "SOAK_EDGE_TOKEN"

[[zones]]
name = "handover.test"

[[zones.records]]
name = "shop.handover.test"
type = "A"
content = "127.0.0.2"
proxied = true
ttl = 1
EOF
SOAK_EDGE_TOKEN="$TOKEN" "$BIN/edge" --config "$WORK/edge.toml" >"$WORK/edge.out" 2>"$WORK/edge.log" &
EDGE_PID=$!
PIDS+=("$EDGE_PID")
for _ in $(seq 100); do [ -s "$WORK/edge.out" ] && break; sleep 0.1; done
API="$(head -1 "$WORK/edge.out" | jq -r .api)"
PROXY="$(head -1 "$WORK/edge.out" | jq -r .proxy)"
STORE="sqlite:$WORK/events.db"

"$BIN/example-app" --listen "127.0.0.2:$PORT" --store "$STORE" --instance-id r0 >"$WORK/r0.out" 2>"$WORK/r0.log" &
echo $! >"$WORK/r0.pid"
for _ in $(seq 100); do (: >"/dev/tcp/127.0.0.2/$PORT") 2>/dev/null && break; sleep 0.1; done

printf '%-6s %-22s %-7s %8s %5s %6s %10s %12s %12s\n' round move result ok lost failed "edge RSS" "app RSS" "migrator RSS"
cur=127.0.0.2; other=127.0.0.3; status=0
for round in $(seq 1 "$ROUNDS"); do
  name="r$round"
  prev_pid="$(cat "$WORK/r$((round - 1)).pid")"
  cat >"$WORK/plan.toml" <<EOF
[a]
url = "http://$cur:$PORT/"
address = "$cur"
stop = "kill -TERM $prev_pid"

[b]
url = "http://$other:$PORT/"
address = "$other"
start = "echo \$\$ > $WORK/$name.pid; exec $BIN/example-app --listen $other:$PORT --store $STORE --instance-id $name"
stop = "kill -TERM {pid}"

[switch]
kind = "cloudflare"
zone = "handover.test"
record = "shop.handover.test"
api_base = "http://$API/client/v4/"

[feeder]
target = "http://shop.handover.test:${PROXY##*:}/"
resolve = { "shop.handover.test" = "$PROXY" }
rate = $RATE
run_before_flip = "3s"
run_after_flip = "2s"

[drain]
quiet = "1500ms"

[timeouts]
drain = "20s"
EOF
  mkdir -p "$WORK/$name"
  CLOUDFLARE_API_TOKEN="$TOKEN" "$BIN/migrator" run --plan "$WORK/plan.toml" --report "$WORK/$name/report.json" --workdir "$WORK/$name" >"$WORK/$name/out" 2>&1 &
  mig=$!
  peak=0
  while kill -0 "$mig" 2>/dev/null; do
    r="$(rss_kb "$mig")"; [ "${r:-0}" -gt "$peak" ] && peak="$r"
    sleep 0.2
  done
  wait "$mig" && code=0 || code=$?
  report="$WORK/$name/report.json"
  if [ ! -f "$report" ]; then
    echo "round $round: no report (exit $code)"; tail -20 "$WORK/$name/out"; status=1; break
  fi
  read -r passed ok lost failed < <(jq -r '[.passed, .reconcile.ok, .reconcile.lost, (.feeder.rejected + .feeder.indeterminate)] | @tsv' "$report")
  app_pid="$(cat "$WORK/$name.pid")"
  printf '%-6s %-22s %-7s %8s %5s %6s %7s MB %9s MB %9s MB\n' "$round" "$cur → $other" \
    "$([ "$passed" = true ] && echo pass || echo FAIL)" "$ok" "$lost" "$failed" \
    "$(( $(rss_kb "$EDGE_PID") / 1024 ))" "$(( $(rss_kb "$app_pid") / 1024 ))" "$(( peak / 1024 ))"
  if [ "$passed" != true ] || [ "$lost" != 0 ] || [ "$failed" != 0 ]; then
    jq -r '.reasons[]' "$report" | sed 's/^/  - /'
    status=1
    break
  fi
  tmp="$cur"; cur="$other"; other="$tmp"
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%M:%SZ), RATE=$RATE ROUNDS=$ROUNDS BUILD=$BUILD"
exit "$status"
