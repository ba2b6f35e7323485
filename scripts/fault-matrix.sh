#!/usr/bin/env bash
# The fault matrix of docs/reliability.md, measured: one `migrator demo` per
# row with the row's fault fired at its step, then one table line with the
# verdict and the per-order counts from the report. The same rows are tests
# (migrator/tests/faults.rs); this prints the observed numbers.
# Usage: scripts/fault-matrix.sh [--write]   (--write: replace the table in docs/reliability.md)
# Env: RATE (default 200), DURATION (default 8s), ROWS (a grep pattern on the row names).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${RATE:-200}"
DURATION="${DURATION:-8s}"
WRITE="${1:-}"
if ! command -v jq >/dev/null 2>&1; then
  echo "== installing jq" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
fi
cargo build --workspace --bins >&2
BIN="${CARGO_TARGET_DIR:-target}/debug/migrator"
WORK="$(mktemp -d)"
PG_DIR=""
cleanup() {
  [ -n "$PG_DIR" ] && scripts/pg.sh stop "$PG_DIR" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# name | expected | demo flags (the fault, and any store flags)
ROWS_ALL=(
  "kill A during the drain|traffic stays on B; failed = requests routed to A meanwhile|--fault drain_a:kill-a"
  "kill B after the flip|rollback: traffic back to A, exit 1|--fault after:flip:kill-b"
  "SQLite store restart during converge|pass or fail by the budget; converge waits|--fault converge:restart-store:1500ms"
  "SQLite store restart during the flip|pass or fail by the budget|--fault flip:restart-store:1500ms"
  "SQLite store restart during the drain|pass or fail by the budget|--fault drain_a:restart-store:1500ms"
  "PostgreSQL restart during converge|pass or fail by the budget; converge waits|PG --fault converge:restart-store:2s"
  "PostgreSQL restart during the flip|pass or fail by the budget|PG --fault flip:restart-store:2s"
  "PostgreSQL restart during the drain|pass or fail by the budget|PG --fault drain_a:restart-store:2s"
  "429 ×5 during the flip|pass (retried)|--fault flip:api-429:5"
  "503 ×5 during the flip|pass (retried)|--fault flip:api-5xx:5"
  "switch timeout during the flip|fail; record unchanged, B stopped, A serves|--fault flip:api-timeout --set timeouts.flip=3s"
  "B unhealthy once started|rollback before the flip; A serves; 0 failed|--fault after:start_b:b-unhealthy --set timeouts.converge=4s"
  "B stops applying (never converges)|rollback before the flip; A serves; 0 failed|--fault converge:b-lag --set timeouts.converge=4s"
  "300 ms latency on B after the flip|pass (below the feeder timeout)|--fault after:flip:origin-latency:300"
  "3 s latency on B after the flip|the watch budget rolls back to A|--fault after:flip:origin-latency:3000"
)

table="| fault | step | expected | observed | ok | lost | recovered | indeterminate | rerun |
|:--|:--|:--|:--|---:|---:|---:|---:|:--|"
for row in "${ROWS_ALL[@]}"; do
  IFS='|' read -r name expected flags <<<"$row"
  if [ -n "${ROWS:-}" ] && ! grep -qi -- "$ROWS" <<<"$name"; then continue; fi
  dir="$WORK/$(echo "$name" | tr -c 'A-Za-z0-9' '_')"
  extra=()
  if [[ "$flags" == PG* ]]; then
    flags="${flags#PG }"
    if [ -z "$PG_DIR" ]; then
      PG_DIR="$WORK/pg"
      PG_URL="$(scripts/pg.sh start "$PG_DIR")"
    fi
    # A fresh database per row keeps runs apart.
    db="m$RANDOM$RANDOM"
    psql -q "$PG_URL" -c "create database $db" >/dev/null
    extra=(--store "${PG_URL%/*}/$db" --store-stop "scripts/pg.sh stop $PG_DIR" --store-start "scripts/pg.sh start $PG_DIR")
  fi
  # shellcheck disable=SC2086
  read -r -a fault_args <<<"$flags"
  echo "== $name: migrator demo ${fault_args[*]}" >&2
  set +e
  timeout 600 "$BIN" demo --rate "$RATE" --duration "$DURATION" --workdir "$dir" "${fault_args[@]}" "${extra[@]}" >"$dir.out" 2>&1
  code=$?
  set -e
  step="$(sed -E 's/.*--fault (before:|after:)?([a-z_]+):.*/\1\2/' <<<"$flags")"
  rerun="\`migrator demo ${fault_args[*]}\`"
  if [ ! -f "$dir/report.json" ]; then
    table+=$'\n'"| $name | $step | $expected | no report (exit $code) | | | | | $rerun |"
    continue
  fi
  line="$(jq -r --arg code "$code" '
    (if .passed then "pass" else "FAIL" end) as $v
    | (if .rollback then "; rolled back" else "" end) as $rb
    | [ ($v + " (exit " + $code + ")" + $rb),
        (.reconcile.ok // "-" | tostring),
        (.reconcile.lost // "-" | tostring),
        (.reconcile.recovered // "-" | tostring),
        (.feeder.indeterminate // "-" | tostring) ] | join(" | ")' "$dir/report.json")"
  table+=$'\n'"| $name | $step | $expected | $line | $rerun |"
done

load="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "$table"
echo
echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, load average $load, RATE=$RATE DURATION=$DURATION (debug build)."
if [ "$WRITE" = "--write" ]; then
  python3 - "$table" "$(date -u +%Y-%m-%d)" "$load" <<'EOF'
import sys, re
table, day, load = sys.argv[1:4]
p = "docs/reliability.md"
s = open(p).read()
block = f"<!-- matrix -->\n{table}\n\nMeasured {day}, load average {load}, with `scripts/fault-matrix.sh`.\n<!-- /matrix -->"
s = re.sub(r"<!-- matrix -->.*?<!-- /matrix -->", lambda m: block, s, flags=re.S)
open(p, "w").write(s)
EOF
fi
