#!/usr/bin/env bash
# The highest order rate a live migration survives with 0 failed and 0 lost,
# on this machine: `migrator demo` (edge + example-app A and B + the
# in-process feeder, release build) at rising rates, one bounded run each,
# on SQLite and on PostgreSQL (a throwaway cluster from scripts/pg.sh, one
# database per run); then the reconciliation of 1,000,000 acknowledged
# orders (scripts/bench-reconcile.sh).
#
# Beside each run's max gap (the longest time without a successful reply)
# it prints what the machine itself did in that run, so a stall can be put
# where it belongs:
#   commit under the gap: the longest store commit A or B logged (each of
#     >= 10 ms is logged, with its lock wait and fsync for SQLite) whose
#     time overlaps the max gap (scripts/lib/gap_cause.py);
#   CPU lost under the gap: how late a real-time thread pinned to a CPU
#     woke during the max gap, its late wake-ups there added up, for the CPU
#     that lost most (scripts/lib/machine_probe.py, SCHED_FIFO every 1 ms:
#     only interrupts and the hypervisor delay it, so it sees the CPU taken
#     from the whole VM, not our own processes competing for it). Not for
#     HIGH_RATES: there the probes' own 4-5 % of each CPU would be part of
#     what is measured.
# Gap goal (issue 15): <= 10 ms, or, where the store's commit under the gap
# or the CPU lost under it was longer, <= that + 5 ms ("disk" / "machine"
# in the last column), or <= the two together + 5 ms, their overlap counted
# once ("disk + machine": an fsync and then a CPU gone, one after the other).
# Prints a table and writes it into docs/benchmarks.md (section "Migration").
# Usage: scripts/bench-migration.sh [RATES...]   (default: 1000 2000 5000 10000)
# Env: STORES (default "sqlite postgres"), DURATION (20s), HIGH_RATES
# (default "20000 30000": run after RATES on SQLite only, the demo's own
# store; issue 15's goal is a clean migration at 30,000/s; "" skips them).
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(1000 2000 5000 10000)
DURATION="${DURATION:-20s}"
read -r -a HIGH <<<"${HIGH_RATES-20000 30000}"
read -r -a STORES <<<"${STORES:-sqlite postgres}"
need=()
command -v jq >/dev/null 2>&1 || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --bin migrator --bin example-app --bin edge >&2
LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
BIN="${CARGO_TARGET_DIR:-target}/release/migrator"
WORK="$(mktemp -d)"
PROBES=()
stop_probes() {
  if [ ${#PROBES[@]} -gt 0 ]; then
    kill -INT "${PROBES[@]}" 2>/dev/null || true
    wait "${PROBES[@]}" 2>/dev/null || true
  fi
  PROBES=()
}
cleanup() {
  stop_probes
  if [ -e "$WORK/pg/data" ]; then scripts/pg.sh stop "$WORK/pg" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PG_URL=""
for store in "${STORES[@]}"; do
  if [ "$store" = postgres ]; then
    echo "== starting a throwaway PostgreSQL (scripts/pg.sh)" >&2
    PG_URL="$(scripts/pg.sh start "$WORK/pg")"
  fi
done

# A fresh database per run, so B's catch-up does not grow run by run.
store_url() {
  local store=$1 rate=$2
  case "$store" in
  sqlite) echo "" ;;
  postgres)
    local dir="$WORK/pg" port
    port="$(cat "$dir/port")"
    runuser -u postgres -- psql -h "$dir" -p "$port" -U handover -d postgres -qAt \
      -c "CREATE DATABASE bench_$rate" >/dev/null
    echo "${PG_URL%/*}/bench_$rate"
    ;;
  *) echo "bench-migration: unknown store $store (sqlite, postgres)" >&2; exit 2 ;;
  esac
}


table="| store | rate/s | result | sent | failed | missed | lost | converge ms | overlap ms | p99 ms (all) | p99 ms (handover) | handover/all | max gap ms | gap at s | commit under the gap ms | CPU lost under the gap ms | gap goal |
|:--|---:|:--|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:--|"
best=""
for store in "${STORES[@]}"; do
  best_store="none"
  rates=("${RATES[@]}")
  [ "$store" = sqlite ] && rates+=("${HIGH[@]}")
  for rate in "${rates[@]}"; do
    dir="$WORK/$store-$rate"
    url="$(store_url "$store" "$rate")"
    args=(demo --rate "$rate" --duration "$DURATION" --workdir "$dir")
    [ -n "$url" ] && args+=(--store "$url")
    echo "== migrator demo --rate $rate --duration $DURATION ($store)" >&2
    mkdir -p "$dir"
    # The probes cost 4-5 % of each CPU (1,000 wake-ups a second at 30-50 us
    # each: /proc/PID/schedstat), taken from the run at real-time priority.
    # The gap goal is for RATES; a HIGH rate (throughput, the machine
    # saturated) runs without them, its CPU column "not probed".
    probed=1
    for high in "${HIGH[@]}"; do [ "$rate" = "$high" ] && [ "$store" = sqlite ] && probed=0; done
    if [ "$probed" = 1 ]; then
      for ((cpu = 0; cpu < $(nproc); cpu++)); do
        python3 scripts/lib/machine_probe.py "$cpu" "$dir/machine-cpu$cpu.jsonl" &
        PROBES+=($!)
      done
      # Started right beside the demo, the probes' own start-up stalled its
      # first 90 ms (replies of 40-66 ms in 4 of 4 runs at 10,000/s; with a
      # second's lead, 8-10 ms, as without probes).
      sleep 1
    fi
    set +e
    timeout 600 "$BIN" "${args[@]}" >"$WORK/$store-$rate.out" 2>&1
    code=$?
    set -e
    stop_probes
    if [ ! -f "$dir/report.json" ]; then
      table+=$'\n'"| $store | $rate | no report (exit $code) | | | | | | | | | | | | | | |"
      continue
    fi
    IFS=$'\t' read -r _ commit gap_at stall _ held < <(python3 scripts/lib/gap_cause.py "$dir")
    [ "$probed" = 1 ] || stall="not probed"
    row="$(jq -r --arg store "$store" --arg rate "$rate" --arg commit "$commit" --arg at "${gap_at:--}" --arg stall "${stall:--}" --arg held "${held:--}" '
      def r1: if . == null then "-" else (. * 10 | round / 10 | tostring) end;
      def num: tonumber? // 0;
      (.feeder.max_gap_ms // null) as $gap |
      [ $store, $rate,
        (if .passed then "pass" else "FAIL" end),
        (.feeder.sent // 0 | tostring),
        ((.feeder.rejected // 0) + (.feeder.indeterminate // 0) | tostring),
        (.feeder.missed // 0 | tostring),
        (.reconcile.lost // "-" | tostring),
        (.convergence.duration_ms // "-" | tostring),
        (.feeder.handover.overlap_ms // null | r1),
        (.feeder.latency_ms.p99 // null | r1),
        (.feeder.handover.window_p99_ms // null | r1),
        (if (.feeder.handover.window_p99_ms // null) != null and (.feeder.latency_ms.p99 // 0) > 0
         then (.feeder.handover.window_p99_ms / .feeder.latency_ms.p99 * 100 | round / 100 | tostring) + "×"
         else "-" end),
        ($gap | r1), $at,
        $commit, $stall,
        (if $gap == null then "-"
         elif $gap <= 10 then "met"
         elif ($commit | num) > 0 and $gap <= ($commit | num) + 5 then "disk"
         elif ($stall | num) > 0 and $gap <= ($stall | num) + 5 then "machine"
         elif ($held | num) > 0 and $gap <= ($held | num) + 5 then "disk + machine (\($held))"
         else "MISSED" end)
      ] | "| " + join(" | ") + " |"' "$dir/report.json")"
    table+=$'\n'"$row"
    if [ "$code" -eq 0 ] && jq -e '.passed and (.reconcile.lost == 0) and ((.feeder.rejected + .feeder.indeterminate) == 0)' "$dir/report.json" >/dev/null; then
      best_store="$rate"
    fi
  done
  best+="${best:+, }$store **$best_store/s**"
done

echo "== reconciling 1,000,000 acknowledged orders" >&2
recon="$(scripts/bench-reconcile.sh 1000000 2>/dev/null | tail -n 20 || echo "bench-reconcile.sh failed")"

cores="$(nproc)"
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
section="## Migration (scripts/bench-migration.sh)

\`migrator demo --rate R --duration $DURATION [--store postgres://…]\`, release build, edge
propagation 2 s (per client connection) / idle timeout 2 s, on $cores cores ($cpu), $(date -u +%Y-%m-%d),
load average before the runs: $LOAD.
\"overlap\": both instances answering; \"p99 (handover)\": replies inside that window;
\"handover/all\": that p99 over the whole run's (goal ≤ 2×, issue 15). \"commit under
the gap\": the longest store commit (A or B logs each of 10 ms or more) whose time
overlaps the run's max gap, which began \"gap at\" seconds after the load started;
\"CPU lost under the gap\": how late a real-time thread pinned to a CPU woke
during that gap, its late wake-ups added up, for the CPU that lost most
(scripts/lib/machine_probe.py; \"-\": never 2 ms late; \"not probed\": 20,000/s and
up run without the probes, which cost 4–5 % of each CPU). Gap goal: max gap ≤ 10 ms
(\"met\"), else ≤ the commit under it + 5 ms (\"disk\") or ≤ the CPU lost under it
+ 5 ms (\"machine\"), or ≤ the two together + 5 ms, overlaps counted once
(\"disk + machine\", with that sum).

$table

Highest rate passing with 0 failed and 0 lost: $best.

### Reconciling 1,000,000 acknowledged orders (scripts/bench-reconcile.sh)

\`\`\`
$recon
\`\`\`
"
echo "$section"

echo "$section" | python3 scripts/lib/doc_section.py docs/benchmarks.md "## Migration (scripts/bench-migration.sh)"
echo "written to docs/benchmarks.md" >&2
