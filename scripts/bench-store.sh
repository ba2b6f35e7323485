#!/usr/bin/env bash
# Event-store benchmark (not a test): append throughput and subscriber lag
# p50/p99 at a paced rate, for SQLite, PostgreSQL and NATS JetStream (one
# server, and an R3 stream on a 3-node loopback cluster), as a table.
# PostgreSQL: HANDOVER_TEST_PG_URL if set, else a throwaway cluster (scripts/pg.sh).
# JetStream: throwaway servers (scripts/nats.sh); NATS=0 leaves them out.
# Then the highest clean migration rate on PostgreSQL (MIGRATION_RATES) and
# on the JetStream cluster (NATS_MIGRATION_RATES).
# Usage: scripts/bench-store.sh [RATE=1000] [SECONDS=10] [COUNT=50000]
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-1000}"
SECS="${2:-10}"
COUNT="${3:-50000}"
TARGET="${CARGO_TARGET_DIR:-target}"

echo "== building (release)"
cargo build --release -q -p example-app --example store_bench
BENCH="$TARGET/release/examples/store_bench"

WORK="$(mktemp -d)"
PGDIR=""
NATS="${NATS:-1}"
cleanup() {
  [ -n "$PGDIR" ] && scripts/pg.sh stop "$PGDIR" >/dev/null 2>&1 || true
  scripts/nats.sh stop "$WORK/nats1" >/dev/null 2>&1 || true
  scripts/nats.sh stop "$WORK/nats3" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${HANDOVER_TEST_PG_URL:-}" ]; then
  PG_ADMIN="$HANDOVER_TEST_PG_URL"
else
  PGDIR="$WORK/pg"
  PG_ADMIN="$(scripts/pg.sh start "$PGDIR")"
fi

declare -A RESULT
run_backend() {
  local name="$1" url_t="$2" url_l="$3"
  echo "== $name: throughput ($COUNT appends)"
  "$BENCH" "$url_t" throughput "$COUNT" | tee "$WORK/$name-t.txt"
  echo "== $name: lag at $RATE/s for ${SECS}s"
  "$BENCH" "$url_l" lag "$RATE" "$SECS" | tee "$WORK/$name-l.txt"
  RESULT[$name,batched]="$(awk -F'\t' '$1=="throughput_batched" {print $2}' "$WORK/$name-t.txt")"
  RESULT[$name,single]="$(awk -F'\t' '$1=="throughput_single" {print $2}' "$WORK/$name-t.txt")"
  RESULT[$name,batch]="$(awk -F'\t' '$1=="throughput_batched" {print $4}' "$WORK/$name-t.txt" | sed 's/(commits \([0-9]*\) for \([0-9]*\) appends, max batch \([0-9]*\))/\1\/\2\/\3/')"
  RESULT[$name,delivered]="$(awk -F'\t' '$1=="lag" {print $2"/"'"$RATE*$SECS"'" (failed "$4")"}' "$WORK/$name-l.txt")"
  RESULT[$name,p50]="$(awk -F'\t' '$1=="lag" {print $6}' "$WORK/$name-l.txt")"
  RESULT[$name,p99]="$(awk -F'\t' '$1=="lag" {print $8}' "$WORK/$name-l.txt")"
  RESULT[$name,max]="$(awk -F'\t' '$1=="lag" {print $10}' "$WORK/$name-l.txt")"
  RESULT[$name,cp50]="$(awk -F'\t' '$1=="lag" {print $12}' "$WORK/$name-l.txt")"
  RESULT[$name,cp99]="$(awk -F'\t' '$1=="lag" {print $14}' "$WORK/$name-l.txt")"
}

run_backend sqlite "sqlite:$WORK/t.db" "sqlite:$WORK/l.db"
# Separate databases so the lag run starts on a small table, as the SQLite one does.
for db in bench_t bench_l; do
  psql "$PG_ADMIN" -qAtc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
done
run_backend postgres "${PG_ADMIN%/*}/bench_t" "${PG_ADMIN%/*}/bench_l"
COLS=(sqlite postgres)
if [ "$NATS" = 1 ]; then
  N1="$(scripts/nats.sh start "$WORK/nats1")"
  run_backend nats "$N1/BENCH_T" "$N1/BENCH_L"
  N3="$(scripts/nats.sh cluster "$WORK/nats3")"
  run_backend nats-r3 "$N3/BENCH_T" "$N3/BENCH_L"
  COLS+=(nats nats-r3)
fi

line() { printf '%-38s' "$1"; shift; printf ' %-22s' "$@"; printf '\n'; }
echo
line "metric" "${COLS[@]}"
line "--------------------------------------" "${COLS[@]//?/-}"
row() {
  local cells=() c
  for c in "${COLS[@]}"; do cells+=("${RESULT[$c,$2]}"); done
  line "$1" "${cells[@]}"
}
row "appends/s, 1024 in flight (group)" batched
row "appends/s, one at a time" single
row "group commit (commits/appends/max)" batch
row "lag: delivered at ${RATE}/s" delivered
row "lag p50 (ms, append start->seen)" p50
row "lag p99 (ms)" p99
row "lag max (ms)" max
row "lag p50 (ms, commit ack->seen)" cp50
row "lag p99 (ms, commit ack->seen)" cp99

# The highest clean migration rate: `migrator demo --store` at rising rates,
# one bounded run each. PostgreSQL (MIGRATION_RATES; empty skips it) on the
# same cluster (the reconciler judges only each run's own orders); the
# JetStream cluster (NATS_MIGRATION_RATES) on a fresh R3 stream per run.
migration_rates() {
  local name="$1" store="$2" rates="$3" best=none rate rep res url
  printf '\n%s\n%-10s %-8s %-10s %-8s %-8s %-6s %-12s %-10s\n' "$name" "rate/s" "result" "sent" "failed" "missed" "lost" "overlap ms" "p99 ms"
  for rate in $rates; do
    rep="$(mktemp)"
    url="${store//\{rate\}/$rate}"
    if timeout 300 "$TARGET/release/migrator" demo --rate "$rate" --duration 20s --store "$url" \
      --report "$rep" >/dev/null 2>&1; then res=pass; best=$rate; else res=FAIL; fi
    python3 - "$rep" "$rate" "$res" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    print(f"{sys.argv[2]:<10} no report"); sys.exit(0)
f, c = r.get("feeder") or {}, r.get("reconcile") or {}
h = f.get("handover") or {}
print(f"{sys.argv[2]:<10} {sys.argv[3]:<8} {f.get('sent',0):<10} {f.get('rejected',0)+f.get('indeterminate',0):<8} "
      f"{f.get('missed',0):<8} {c.get('lost','-'):<6} {round(h.get('overlap_ms',0)):<12} {f.get('latency_ms',{}).get('p99','-'):<10}")
PY
    rm -f "$rep"
  done
  echo "highest clean migration rate on $name: $best/s"
}

MIGRATION_RATES=${MIGRATION_RATES-"5000 10000 20000"}
NATS_MIGRATION_RATES=${NATS_MIGRATION_RATES-"2000 5000 10000"}
if [ -n "$MIGRATION_RATES" ] || { [ "$NATS" = 1 ] && [ -n "$NATS_MIGRATION_RATES" ]; }; then
  cargo build --release -q --workspace --bins
fi
if [ -n "$MIGRATION_RATES" ]; then
  migration_rates PostgreSQL "$PG_ADMIN" "$MIGRATION_RATES"
fi
if [ "$NATS" = 1 ] && [ -n "$NATS_MIGRATION_RATES" ]; then
  migration_rates "JetStream R3 (3 nodes)" "$N3/MIG{rate}" "$NATS_MIGRATION_RATES"
fi
