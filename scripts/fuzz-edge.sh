#!/usr/bin/env bash
# Fuzz the edge's DNS-record API bodies (POST/PUT/PATCH) in process with
# proptest: arbitrary bytes, arbitrary JSON and structure-aware record
# bodies against the real router. Passes when nothing panicked, every reply
# was Cloudflare's JSON envelope, no 5xx, every 4xx left the zone unchanged
# and every 2xx changed only the record it named.
#
# Usage: scripts/fuzz-edge.sh [CASES]     (default 100000; or PROPTEST_CASES)
# Prints the case count, how many were accepted and rejected, and the time.
# The normal test run does the same with 5,000 cases.
set -euo pipefail

CASES=${1:-${PROPTEST_CASES:-100000}}
if ! [[ "$CASES" =~ ^[0-9]+$ ]] || [ "$CASES" -lt 1 ]; then
    echo "fuzz-edge: CASES must be a positive whole number, not '$CASES'" >&2
    exit 2
fi
cd "$(dirname "$0")/.."

echo "== building the edge's tests" >&2
cargo test -p edge --test edge --no-run >&2

echo "== fuzzing the API bodies: $CASES cases" >&2
started=$(date +%s%N)
out=$(PROPTEST_CASES=$CASES cargo test -q -p edge --test edge \
    suites::api_fuzz::record_bodies -- --nocapture 2>&1) || {
    echo "$out" >&2
    echo "fuzz-edge: FAILED (the minimal failing input is above)" >&2
    exit 1
}
ended=$(date +%s%N)
line=$(grep '^api fuzz:' <<<"$out" || true)
if [ -z "$line" ]; then
    echo "$out" >&2
    echo "fuzz-edge: the fuzz test did not run" >&2
    exit 1
fi
echo "$line"
ms=$(( (ended - started) / 1000000 ))
printf 'fuzz-edge: %s cases, wall time %d.%01d s (test binary included)\n' \
    "$CASES" $((ms / 1000)) $((ms % 1000 / 100))
