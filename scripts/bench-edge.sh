#!/usr/bin/env bash
# Benchmark the edge's proxy hop: wrk straight to a trivial origin, through
# the edge, and through one HAProxy hop (Debian's haproxy, the peer) to the
# same origin, same wrk settings. Prints req/s and p50/p99 for each, the
# throughput ratios and the p50 added by each hop.
# Goal: proxied >= 50 % of the direct rate (issue 15), < 1 ms added to p50,
# and the edge's rate against HAProxy's.
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
LOAD=$(cut -d" " -f1-3 /proc/loadavg)

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v haproxy >/dev/null || need+=(haproxy)
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >&2 ||
        { echo "bench-edge: needs ${need[*]}" >&2; exit 2; }
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

# The peer: one HAProxy hop to the same origin, keep-alive both sides, as
# the edge does (one process, no threads beyond the edge's own share).
HAPROXY_PORT=$(python3 "$ROOT/scripts/lib/free_port.py")
cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn 4096
    nbthread 2
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
frontend shop
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend origin
backend origin
    http-reuse always
    server a $ORIGIN_ADDR
CFG
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$HAPROXY_PORT") 2>/dev/null && break
    sleep 0.05
done

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

echo "== through HAProxy: http://127.0.0.1:$HAPROXY_PORT/" >&2
read -r H_RPS H_P50 H_P99 H_BAD < <(run_wrk "http://127.0.0.1:$HAPROXY_PORT/")

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? 100 * a / b : 0) }'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
printf '\n%-22s %12s %10s %10s %8s %14s\n' "path" "req/s" "p50 ms" "p99 ms" "non-2xx" "% of direct"
printf '%-22s %12s %10s %10s %8s %14s\n' "direct to origin" "$D_RPS" "$D_P50" "$D_P99" "$D_BAD" "100.0"
printf '%-22s %12s %10s %10s %8s %14s\n' "through edge" "$E_RPS" "$E_P50" "$E_P99" "$E_BAD" "$(pct "$E_RPS" "$D_RPS")"
printf '%-22s %12s %10s %10s %8s %14s\n' "through HAProxy" "$H_RPS" "$H_P50" "$H_P99" "$H_BAD" "$(pct "$H_RPS" "$D_RPS")"
printf '\nedge/direct rate: %s %%  (goal >= 50 %%); edge/HAProxy rate: %s %%\n' \
    "$(pct "$E_RPS" "$D_RPS")" "$(pct "$E_RPS" "$H_RPS")"
printf 'p50 added by the hop: edge %s ms, HAProxy %s ms  (goal < 1 ms)\n' \
    "$(minus "$E_P50" "$D_P50")" "$(minus "$H_P50" "$D_P50")"

# docs/benchmarks.md: this script's section, with the date and load average.
{
    printf '## The edge'"'"'s proxy hop (scripts/bench-edge.sh)\n\n'
    # shellcheck disable=SC2016 # backquotes are Markdown here
    printf '`scripts/bench-edge.sh` (wrk -t%s -c%s -d%s, release build), %s cores (%s), %s,\n' \
        "$THREADS" "$CONNECTIONS" "$DURATION" "$(nproc)" \
        "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(date -u +%Y-%m-%d)"
    printf 'load average before the runs: %s. wrk, the origin and the proxy share the cores.\n\n' "$LOAD"
    printf '| path | req/s | p50 ms | p99 ms | non-2xx | %% of direct |\n|:--|---:|---:|---:|---:|---:|\n'
    printf '| direct to origin | %s | %s | %s | %s | 100.0 |\n' "$D_RPS" "$D_P50" "$D_P99" "$D_BAD"
    printf '| through the edge | %s | %s | %s | %s | %s |\n' "$E_RPS" "$E_P50" "$E_P99" "$E_BAD" "$(pct "$E_RPS" "$D_RPS")"
    printf '| through HAProxy (Debian) | %s | %s | %s | %s | %s |\n' "$H_RPS" "$H_P50" "$H_P99" "$H_BAD" "$(pct "$H_RPS" "$D_RPS")"
    printf '\nedge/direct %s %% (goal ≥ 50 %%), edge/HAProxy %s %%; p50 added by the hop: edge %s ms, HAProxy %s ms.\n' \
        "$(pct "$E_RPS" "$D_RPS")" "$(pct "$E_RPS" "$H_RPS")" "$(minus "$E_P50" "$D_P50")" "$(minus "$H_P50" "$D_P50")"
} | python3 "$ROOT/scripts/lib/doc_section.py" "$ROOT/docs/benchmarks.md" "## The edge's proxy hop (scripts/bench-edge.sh)"
echo "written to docs/benchmarks.md" >&2
