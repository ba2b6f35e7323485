#!/usr/bin/env bash
# Fuzzes the example-app's POST /orders (not part of the normal test run,
# which takes 5,000 bodies): CASES bodies (default 100,000) of arbitrary bytes
# and near-valid orders under good and bad content types, against a real
# instance on 127.0.0.1 over a temporary SQLite store. Every reply must be
# 201/200 or a JSON 4xx with X-Instance, no rejected body may append, and the
# server must not panic (example-app/tests/suite/fuzz.rs).
# Prints the number of bodies, the time and, on a failure, the smallest
# failing body proptest found; exits 1 on a failure, 2 on bad usage.
# Usage: scripts/fuzz-app.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
CASES="${1:-100000}"
if ! [[ "$CASES" =~ ^[1-9][0-9]{0,8}$ ]]; then
  echo "scripts/fuzz-app.sh: CASES must be a whole number from 1 to 999999999, not '$CASES'" >&2
  echo "usage: scripts/fuzz-app.sh [CASES]   (default 100000)" >&2
  exit 2
fi
TEST="suite::fuzz::post_orders_survives_arbitrary_and_near_valid_bodies"

echo "== building the example-app tests"
cargo test -q -p example-app --test tests --no-run

echo "== fuzzing POST /orders with $CASES bodies"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
start_ms=$(( $(date +%s%N) / 1000000 ))
status=0
# cargo test, not nextest: no per-test time limit on a long run.
PROPTEST_CASES="$CASES" cargo test -q -p example-app --test tests -- --exact "$TEST" --nocapture \
  >"$LOG" 2>&1 || status=$?
took_ms=$(( $(date +%s%N) / 1000000 - start_ms ))
took="$((took_ms / 1000)).$(( (took_ms % 1000) / 100 ))"
grep -E '^fuzzed POST /orders' "$LOG" || true
if [ "$status" -eq 0 ]; then
  echo "fuzz-app: $CASES bodies, 0 failures, ${took} s"
else
  echo "---- failure (the end of the test's output) ----"
  grep -v '^\s*[0-9]*: \|^\s*at ' "$LOG" | tail -40
  echo "fuzz-app: FAILED after ${took} s ($CASES bodies asked)"
  exit 1
fi
