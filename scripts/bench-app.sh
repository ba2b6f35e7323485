#!/usr/bin/env bash
# Benchmark of one example-app instance on a SQLite store (not a test).
# Prints a table: orders/s, p50, p99 (wrk, POST /orders with unique ids),
# RSS holding 1,000,000 orders, the NDJSON listing of them, and a restart's catch-up.
# Usage: scripts/bench-app.sh [DURATION_S=20] [CONNECTIONS=64]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-20}"
CONNS="${2:-64}"
TARGET="${CARGO_TARGET_DIR:-target}"
LOAD="$(cut -d" " -f1-3 /proc/loadavg)"

if ! command -v wrk >/dev/null 2>&1; then
  echo "== installing wrk"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  }
fi

echo "== building (release)"
cargo build --release -q -p example-app --bin example-app --example fill_store
BIN="$TARGET/release/example-app"
FILL="$TARGET/release/examples/fill_store"

WORK="$(mktemp -d)"
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

STORE="sqlite:$WORK/events.db"
start_app() {
  "$BIN" --listen 127.0.0.1:0 --store "$STORE" --instance-id bench >"$WORK/out.txt" 2>"$WORK/err.txt" &
  PID=$!
  for _ in $(seq 1 6000); do
    grep -q listening "$WORK/out.txt" 2>/dev/null && break
    sleep 0.05
  done
  ADDR="$(sed -n 's/.*"addr":"\([^"]*\)".*/\1/p' "$WORK/out.txt" | head -1)"
  [ -n "$ADDR" ] || { echo "example-app did not start"; cat "$WORK/err.txt"; exit 1; }
}
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }

cat >"$WORK/post.lua" <<'LUA'
-- Unique ids: run tag, wrk thread, per-thread counter.
local counter = 0
local tag = tostring(os.time())
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local id = string.format("w%s-%d-%d", tag, tid, counter)
  local body = string.format('{"id":"%s","user_id":"u-%04d","line_items":[{"product":"widget","quantity":%d},{"product":"gadget","quantity":1}]}', id, counter % 60 + 1, counter % 1000 + 1)
  return wrk.format(nil, "/orders", nil, body)
end
LUA

start_app
echo "== instance on $ADDR; warm-up 3s, then ${DURATION}s with $CONNS connections"
wrk -t2 -c"$CONNS" -d3s -s "$WORK/post.lua" "http://$ADDR" >/dev/null
wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/post.lua" "http://$ADDR" | tee "$WORK/wrk.txt"
RPS="$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")"
P50="$(awk '$1=="50%" {print $2}' "$WORK/wrk.txt")"
P99="$(awk '$1=="99%" {print $2}' "$WORK/wrk.txt")"
NON2XX="$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.txt")"
ERRS="$(awk '/Socket errors/ {print}' "$WORK/wrk.txt")"
BATCH="$(curl -s "http://$ADDR/metrics" | awk '/^handover_store_(commits_total|appends_total|batch_max) / {printf "%s=%s ", $1, $2}')"

echo "== filling the store to 1,000,000 orders (the instance follows it)"
"$FILL" "$STORE" 1000000
for _ in $(seq 1 6000); do
  LAG="$(curl -s "http://$ADDR/health" | sed -n 's/.*"lag":\([0-9]*\).*/\1/p')"
  [ "$LAG" = "0" ] && break
  sleep 0.1
done
RSS_LIVE="$(rss_mb "$PID")"
T0=$(date +%s.%N)
LINES="$(curl -s -H 'Accept: application/x-ndjson' "http://$ADDR/orders" | wc -l)"
T1=$(date +%s.%N)
LIST_S="$(echo "$T1 - $T0" | bc -l)"
RSS_AFTER_LIST="$(rss_mb "$PID")"

kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
T0=$(date +%s.%N)
start_app
T1=$(date +%s.%N)
RESTART_S="$(echo "$T1 - $T0" | bc -l)"
RSS_RESTART="$(rss_mb "$PID")"

printf '\n%-44s %s\n' "metric" "value"
printf '%-44s %s\n' "--------------------------------------------" "------------"
printf '%-44s %s\n' "POST /orders per second (wrk, c=$CONNS)" "$RPS"
printf '%-44s %s\n' "latency p50" "$P50"
printf '%-44s %s\n' "latency p99" "$P99"
printf '%-44s %s\n' "non-2xx replies" "${NON2XX:-0}"
printf '%-44s %s\n' "socket errors" "${ERRS:-none}"
printf '%-44s %s\n' "group commit (this instance)" "$BATCH"
printf '%-44s %s\n' "orders listed (NDJSON)" "$LINES"
printf '%-44s %.2f s\n' "GET /orders NDJSON, all of them" "$LIST_S"
printf '%-44s %s MB\n' "RSS holding them (live, after catch-up)" "$RSS_LIVE"
printf '%-44s %s MB\n' "RSS after streaming the listing" "$RSS_AFTER_LIST"
printf '%-44s %.2f s\n' "restart: start to listening (catch-up)" "$RESTART_S"
printf '%-44s %s MB\n' "RSS after restart" "$RSS_RESTART"

# docs/benchmarks.md: this script's section, with the date and load average.
{
  printf '## One instance (scripts/bench-app.sh)\n\n'
  # shellcheck disable=SC2016 # backquotes are Markdown here
  printf '`scripts/bench-app.sh %s %s` (wrk -t2 POST /orders, unique ids, one SQLite instance,\n' "$DURATION" "$CONNS"
  printf 'release build), %s cores (%s), %s, load average before: %s.\n\n' "$(nproc)" \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(date -u +%Y-%m-%d)" "$LOAD"
  printf '| metric | value |\n|:--|--:|\n'
  printf '| POST /orders per second (c=%s) | %s |\n' "$CONNS" "$RPS"
  printf '| latency p50 / p99 | %s / %s |\n' "$P50" "$P99"
  printf '| non-2xx, socket errors | %s, %s |\n' "${NON2XX:-0}" "${ERRS:-none}"
  printf '| RSS holding 1,000,000 orders (after catch-up) | %s MB |\n' "$RSS_LIVE"
  printf '| GET /orders NDJSON, all of them | %.2f s |\n' "$LIST_S"
  printf '| restart: start to listening (catch-up of 1,000,000) | %.2f s, RSS %s MB |\n' "$RESTART_S" "$RSS_RESTART"
  printf '\nGoal (issue 15): p99 < 20 ms at ≥ 40,000 orders/s.\n'
} | python3 scripts/lib/doc_section.py docs/benchmarks.md "## One instance (scripts/bench-app.sh)"
echo "written to docs/benchmarks.md"
