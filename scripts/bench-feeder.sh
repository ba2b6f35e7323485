#!/usr/bin/env bash
# Benchmark the feeder against oha on the same trivial local target.
#
# 1. build the feeder and the null server (release);
# 2. step the feeder's rate up (ack log on) to find the highest rate with
#    achieved >= 99 % of target, no missed slot and no failure — once with
#    the live view off, once on, both on a pseudo-terminal from `script`
#    (util-linux; without it the view is not measured);
# 3. run oha at full speed for the same duration against the same target;
# 4. measure the feeder's peak RSS over a 60 s run at 10,000/s;
# 5. print a table.
#
# Env: STEP_SECS (10), START_RATE (20000), MAX_STEPS (12), RSS_SECS (60),
#      RSS_RATE (10000), OHA_CONNECTIONS (50), CARGO_TARGET_DIR,
#      NO_OHA (1: skip oha and its install).
# Loopback only. Every child is killed on exit.
set -euo pipefail

STEP_SECS=${STEP_SECS:-10}
START_RATE=${START_RATE:-20000}
MAX_STEPS=${MAX_STEPS:-12}
RSS_SECS=${RSS_SECS:-60}
RSS_RATE=${RSS_RATE:-10000}
OHA_CONNECTIONS=${OHA_CONNECTIONS:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d)
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null || { echo "bench-feeder: needs $1" >&2; exit 2; }; }
need jq
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "== building (release)" >&2
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -p feeder --bin feeder --example null_server >&2)
FEEDER="$TARGET_DIR/release/feeder"
NULL_SERVER="$TARGET_DIR/release/examples/null_server"

if [[ ${NO_OHA:-0} != 1 ]] && ! command -v oha >/dev/null; then
    echo "== installing oha (cargo install oha; takes several minutes)" >&2
    cargo install oha --locked >&2 || echo "bench-feeder: oha install failed" >&2
fi

echo "== starting the null server" >&2
"$NULL_SERVER" 127.0.0.1:0 bench > "$WORK/server.out" 2> "$WORK/server.err" &
SERVER_PID=$!
for _ in $(seq 1 100); do
    [[ -s "$WORK/server.out" ]] && break
    sleep 0.1
done
ADDR=$(head -n1 "$WORK/server.out" | jq -r .addr)
URL="http://$ADDR/"
echo "   target $URL" >&2

# run_feeder RATE SECS [view] -> prints "pass achieved missed failed p50 p99"
# Both runs go through the same 120x36 pseudo-terminal (`script`), so they
# differ only in the live view: off (--no-tui) or on ("view").
run_feeder() {
    local rate=$1 secs=$2 view=${3:-}
    rm -f "$WORK/report.json"
    local cmd=("$FEEDER" "$URL" "$rate" --duration "${secs}s" --progress off
        --ack-log "$WORK/acks.jsonl" --report "$WORK/report.json")
    if [[ $view != view ]]; then cmd+=(--no-tui); fi
    if command -v script >/dev/null; then
        script -qfec "stty cols 120 rows 36; exec ${cmd[*]}" /dev/null < /dev/null > /dev/null 2> "$WORK/feeder.err" || true
    elif [[ $view != view ]]; then
        "${cmd[@]}" > /dev/null 2> "$WORK/feeder.err" || true
    fi
    jq -r --argjson rate "$rate" '
        [ (if (.achieved_rate >= 0.99 * $rate and .missed == 0 and .rejected + .indeterminate == 0)
           then "pass" else "fail" end),
          .achieved_rate, .missed, (.rejected + .indeterminate),
          .latency_ms.p50, .latency_ms.p99 ] | @tsv' "$WORK/report.json" 2>/dev/null \
        || printf 'fail\t0\t0\t0\t0\t0\n'
}

# max_clean_rate [view] -> sets best, best_p50, best_p99
max_clean_rate() {
    local view=${1:-} rate=$START_RATE fail_rate=0 steps=0
    best=0 best_p50=0 best_p99=0
    printf "   %10s %12s %8s %8s %9s %9s %s\n" rate achieved missed failed p50_ms p99_ms verdict >&2
    while (( steps < MAX_STEPS )); do
        steps=$((steps + 1))
        read -r verdict achieved missed failed p50 p99 < <(run_feeder "$rate" "$STEP_SECS" "$view")
        printf "   %10s %12.1f %8s %8s %9.3f %9.3f %s\n" "$rate" "$achieved" "$missed" "$failed" "$p50" "$p99" "$verdict" >&2
        if [[ $verdict == pass ]]; then
            best=$rate best_p50=$p50 best_p99=$p99
            if (( fail_rate == 0 )); then
                rate=$(( rate * 3 / 2 ))
            else
                rate=$(( (best + fail_rate) / 2 ))
            fi
        else
            fail_rate=$rate
            rate=$(( (best + fail_rate) / 2 ))
            # An overloaded step leaves the server draining its backlog:
            # let it, or the next step pays for this one.
            sleep 3
        fi
        # Stop bisecting once the bracket is within 5 %.
        if (( fail_rate > 0 && (fail_rate - best) * 20 <= fail_rate )); then break; fi
    done
}

echo "== stepping the feeder's rate (${STEP_SECS}s per step, ack log on)" >&2
max_clean_rate
plain_best=$best plain_p50=$best_p50 plain_p99=$best_p99
echo "== the same with the live view on (the same pty)" >&2
max_clean_rate view
view_best=$best view_p50=$best_p50 view_p99=$best_p99
best=$plain_best best_p50=$plain_p50 best_p99=$plain_p99

oha_rate=NA oha_p50=NA oha_p99=NA
if [[ ${NO_OHA:-0} != 1 ]] && command -v oha >/dev/null; then
    echo "== oha at full speed for ${STEP_SECS}s (-c $OHA_CONNECTIONS)" >&2
    body='{"id":"bench-0000000001","user_id":"u-0001","line_items":[{"product":"apple","quantity":1}]}'
    if oha -z "${STEP_SECS}s" -c "$OHA_CONNECTIONS" --no-tui --output-format json \
        -m POST -T application/json -d "$body" "${URL}orders" > "$WORK/oha.json" 2> "$WORK/oha.err" \
        || oha -z "${STEP_SECS}s" -c "$OHA_CONNECTIONS" --no-tui -j \
        -m POST -T application/json -d "$body" "${URL}orders" > "$WORK/oha.json" 2>> "$WORK/oha.err"; then
        oha_rate=$(jq -r '.summary.requestsPerSec | floor' "$WORK/oha.json")
        oha_p50=$(jq -r '.latencyPercentiles.p50 * 1000000 | round / 1000' "$WORK/oha.json")
        oha_p99=$(jq -r '.latencyPercentiles.p99 * 1000000 | round / 1000' "$WORK/oha.json")
    else
        echo "bench-feeder: oha failed: $(cat "$WORK/oha.err")" >&2
    fi
fi

echo "== feeder peak RSS: ${RSS_SECS}s at ${RSS_RATE}/s with the ack log" >&2
/usr/bin/time -v "$FEEDER" "$URL" "$RSS_RATE" --duration "${RSS_SECS}s" --progress off \
    --ack-log "$WORK/acks-rss.jsonl" --report "$WORK/report-rss.json" > /dev/null 2> "$WORK/time.err" || true
rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/time.err")
rss_lines=$(wc -l < "$WORK/acks-rss.jsonl")
rss_achieved=$(jq -r '.achieved_rate' "$WORK/report-rss.json")
rss_missed=$(jq -r '.missed' "$WORK/report-rss.json")
rm -f "$WORK/acks-rss.jsonl"

ratio=NA
if [[ $oha_rate != NA ]]; then ratio=$(awk -v a="$best" -v b="$oha_rate" 'BEGIN { printf "%.2f", a / b }'); fi

echo
echo "feeder benchmark (target: null server on $ADDR, ${STEP_SECS}s per step, $(nproc) cores)"
printf "%-44s %s\n" "measure" "value"
printf "%-44s %s\n" "--------------------------------------------" "----------------"
printf "%-44s %s/s\n" "feeder max clean rate (ack log on)" "$best"
printf "%-44s %s ms / %s ms\n" "feeder p50 / p99 at that rate (from due)" "$best_p50" "$best_p99"
printf "%-44s %s/s (%s ms / %s ms)\n" "feeder max clean rate, live view on" "$view_best" "$view_p50" "$view_p99"
printf "%-44s %s\n" "view cost (goal <= 5 %)" \
    "$(awk -v a="$best" -v b="$view_best" 'BEGIN { if (a > 0 && b > 0) printf "%.1f %%", (a - b) * 100 / a; else print "NA" }')"
printf "%-44s %s/s\n" "oha full speed (-c $OHA_CONNECTIONS)" "$oha_rate"
printf "%-44s %s ms / %s ms\n" "oha p50 / p99" "$oha_p50" "$oha_p99"
printf "%-44s %s\n" "ratio feeder / oha (goal >= 1.0)" "$ratio"
printf "%-44s %s MB (%s lines, achieved %.1f/s, missed %s)\n" \
    "feeder peak RSS, ${RSS_SECS}s at ${RSS_RATE}/s (goal < 64)" \
    "$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')" "$rss_lines" "$rss_achieved" "$rss_missed"
