#!/usr/bin/env bash
# Reconciles N acknowledged orders (default 1,000,000) against the same orders
# served as NDJSON on loopback, in release, and prints the time and peak RSS.
# Usage: scripts/bench-reconcile.sh [N]
set -euo pipefail
N="${1:-1000000}"
cd "$(dirname "$0")/.."
cargo build --release -p migrator --example reconcile_bench >&2
BIN="${CARGO_TARGET_DIR:-target}/release/examples/reconcile_bench"
WORK="$(mktemp -d)"
SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" serve --orders "$N" --acks "$WORK/acks.jsonl" >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER=$!
for _ in $(seq 1 600); do
  grep -q listening "$WORK/server.out" 2>/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.err" >&2; exit 1; }
  sleep 0.2
done
ADDR="$(sed -n 's/.*"addr":"\([^"]*\)".*/\1/p' "$WORK/server.out")"
[ -n "$ADDR" ] || { echo "bench server did not start" >&2; exit 1; }

LINE="$("$BIN" run --acks "$WORK/acks.jsonl" --app "http://$ADDR/")"
ACKS_MB="$(du -m "$WORK/acks.jsonl" | cut -f1)"
get() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$LINE"; }

printf '%-28s %s\n' "what" "value"
printf '%-28s %s\n' "acknowledged orders" "$(get acked)"
printf '%-28s %s\n' "stored orders (NDJSON)" "$(get stored)"
printf '%-28s %s\n' "ack log size (MiB)" "$ACKS_MB"
printf '%-28s %s\n' "ok / lost / unexpected" "$(get ok) / $(get lost) / $(get unexpected)"
printf '%-28s %s\n' "duplicated / mismatched" "$(get duplicated) / $(get mismatched)"
printf '%-28s %s\n' "reconcile time (s)" "$(get seconds)"
printf '%-28s %s\n' "reconciler CPU time (s)" "$(get cpu_seconds)"
printf '%-28s %s\n' "load average (1 min)" "$(cut -d' ' -f1 /proc/loadavg)"
printf '%-28s %s\n' "peak RSS of reconciler (MiB)" "$(get peak_rss_mib)"
