#!/usr/bin/env bash
# How long the README's first command takes on a fresh checkout: clones this
# repository's HEAD into a temporary directory (empty target dir), runs
# `scripts/demo.sh --duration 10s` there and times the moment the demo
# prints its first line, i.e. the cold build of the three binaries it runs.
# By default crates already in ~/.cargo/registry are not downloaded again;
# EMPTY_CARGO_HOME=1 gives the build an empty CARGO_HOME, so every crate is
# fetched from crates.io as on a machine that never built this (the
# toolchain itself stays: rustup keeps it in RUSTUP_HOME).
# Prints the figures and writes its section into docs/benchmarks.md.
# Env: KEEP=1 keeps the clone (default: removed).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT

LOAD=$(cut -d" " -f1-3 /proc/loadavg)
git clone -q "$ROOT" "$WORK/repo"
crates_note="crates already downloaded"
if [ "${EMPTY_CARGO_HOME:-0}" = 1 ]; then
  export CARGO_HOME="$WORK/cargo-home"
  export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
  mkdir -p "$CARGO_HOME"
  crates_note="an empty CARGO_HOME: every crate downloaded from crates.io"
fi
rev=$(git -C "$WORK/repo" rev-parse --short HEAD)
echo "== scripts/demo.sh from a fresh clone of $rev (empty target dir)" >&2
start=$(date +%s.%N)
first=""
built=""
while IFS= read -r line; do
  now=$(date +%s.%N)
  case "$line" in
  *"Finished"*) [ -n "$built" ] || built=$(echo "$now - $start" | bc -l) ;;
  "demo: "*) [ -n "$first" ] || first=$(echo "$now - $start" | bc -l) ;;
  esac
done < <(cd "$WORK/repo" && env -u CARGO_TARGET_DIR scripts/demo.sh --duration 10s --workdir "$WORK/demo" 2>&1)
[ -n "$first" ] || { echo "bench-demo: the demo never printed its first line" >&2; exit 1; }
passed=$(jq -r '.passed' "$WORK/demo/report.json" 2>/dev/null || echo "no report")
crates=$(grep -c '^name = ' "$WORK/repo/Cargo.lock")

printf '\n%-40s %s\n' "commit" "$rev"
printf '%-40s %.0f s\n' "cold build (cargo, demo profile)" "$built"
printf '%-40s %.0f s  (goal < 180 s)\n' "first demo line after the command" "$first"
printf '%-40s %s\n' "demo passed" "$passed"
printf '%-40s %s\n' "packages in Cargo.lock" "$crates"

{
  printf '## First demo on a fresh checkout (scripts/bench-demo.sh)\n\n'
  # shellcheck disable=SC2016 # backquotes are Markdown here
  printf '`scripts/demo.sh --duration 10s` in a fresh clone of %s with an empty target dir\n' "$rev"
  printf '(%s), %s cores (%s), %s, load average before: %s.\n\n' "$crates_note" "$(nproc)" \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(date -u +%Y-%m-%d)" "$LOAD"
  printf '| what | value |\n|:--|--:|\n'
  printf '| cold build of migrator, example-app, edge (demo profile) | %.0f s |\n' "$built"
  printf '| the demo'"'"'s first line, from the command | %.0f s (goal < 180 s) |\n' "$first"
  printf '| the demo passed | %s |\n' "$passed"
  printf '| packages in Cargo.lock | %s |\n' "$crates"
} | python3 "$ROOT/scripts/lib/doc_section.py" "$ROOT/docs/benchmarks.md" "## First demo on a fresh checkout (scripts/bench-demo.sh)"
echo "written to docs/benchmarks.md" >&2
