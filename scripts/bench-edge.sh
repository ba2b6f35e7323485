#!/usr/bin/env bash
# Benchmark the edge's proxy hop: wrk straight to a trivial origin vs. wrk
# through the edge to the same origin, same wrk settings. Prints req/s and
# p50/p99 for both, the throughput ratio and the p50 added by the hop.
# Goal: proxied >= 35 % of the direct rate, < 1 ms added to p50.
#
# Env: DURATION (10s), THREADS (1), CONNECTIONS (32), CARGO_TARGET_DIR.
# Loopback only (origin on 127.0.0.2). Every child is killed on exit.
set -euo pipefail

DURATION=${DURATION:-10s}
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-32}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d)
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
    echo "== installing wrk" >&2
    apt-get install -y wrk >&2 || { echo "bench-edge: needs wrk (apt-get install wrk)" >&2; exit 2; }
fi

echo "== building (release)" >&2
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -p edge --bin edge --example origin >&2)
EDGE="$TARGET_DIR/release/edge"
ORIGIN="$TARGET_DIR/release/examples/origin"

# Reads the first line a child prints (its listening line), with a deadline.
first_line() {
    local file=$1 deadline=$((SECONDS + 30))
    while [[ ! -s "$file" ]]; do
        (( SECONDS < deadline )) || { echo "bench-edge: no listening line in $file" >&2; exit 1; }
        sleep 0.05
    done
    head -n1 "$file"
}
json_field() { sed -E "s/.*\"$1\":\"([^\"]+)\".*/\1/"; }

"$ORIGIN" --listen 127.0.0.2:0 --instance a >"$WORK/origin.out" 2>"$WORK/origin.err" &
PIDS+=($!)
ORIGIN_ADDR=$(first_line "$WORK/origin.out" | json_field addr)
ORIGIN_PORT=${ORIGIN_ADDR##*:}

cat >"$WORK/edge.toml" <<TOML
api_listen = "127.0.0.1:0"
proxy_listen = "127.0.0.1:0"
origin_port = $ORIGIN_PORT
propagation = "0s"
idle_timeout = "5s"
tokens = ["tok_bench"]
[[zones]]
name = "handover.test"
[[zones.records]]
name = "shop"
type = "A"
content = "127.0.0.2"
proxied = true
TOML
RUST_LOG=warn "$EDGE" --config "$WORK/edge.toml" >"$WORK/edge.out" 2>"$WORK/edge.err" &
PIDS+=($!)
PROXY_ADDR=$(first_line "$WORK/edge.out" | json_field proxy)

# Prints "req_per_sec p50_ms p99_ms" from wrk --latency output.
run_wrk() {
    local url=$1
    shift
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" >"$WORK/wrk.txt"
    awk '
        function ms(v) {
            if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
            if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
            if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
            return v + 0
        }
        /Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx/ { bad = $NF }
        END { printf "%.0f %.3f %.3f %s\n", rps, p50, p99, (bad == "" ? 0 : bad) }
    ' "$WORK/wrk.txt"
}

echo "== warm-up" >&2
wrk -t1 -c4 -d2s -H "Host: shop.handover.test" "http://$PROXY_ADDR/" >/dev/null
echo "== direct: http://$ORIGIN_ADDR/ ($THREADS threads, $CONNECTIONS connections, $DURATION)" >&2
read -r D_RPS D_P50 D_P99 D_BAD < <(run_wrk "http://$ORIGIN_ADDR/")
echo "== through the edge: http://$PROXY_ADDR/ (Host: shop.handover.test)" >&2
read -r E_RPS E_P50 E_P99 E_BAD < <(run_wrk "http://$PROXY_ADDR/" -H "Host: shop.handover.test")

RATIO=$(awk -v e="$E_RPS" -v d="$D_RPS" 'BEGIN { printf "%.1f", (d > 0 ? 100 * e / d : 0) }')
ADDED=$(awk -v e="$E_P50" -v d="$D_P50" 'BEGIN { printf "%.3f", e - d }')
printf '\n%-22s %12s %10s %10s %8s\n' "path" "req/s" "p50 ms" "p99 ms" "non-2xx"
printf '%-22s %12s %10s %10s %8s\n' "direct to origin" "$D_RPS" "$D_P50" "$D_P99" "$D_BAD"
printf '%-22s %12s %10s %10s %8s\n' "through edge" "$E_RPS" "$E_P50" "$E_P99" "$E_BAD"
printf '\nproxied/direct rate: %s %%  (goal >= 35 %%)\n' "$RATIO"
printf 'p50 added by the hop: %s ms  (goal < 1 ms)\n' "$ADDED"
