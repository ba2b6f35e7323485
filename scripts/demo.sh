#!/usr/bin/env bash
# The README's first command: build the three binaries the demo runs, then run
# the whole cutover on this machine (edge + example-app A and B + the feeder
# inside migrator), e.g.
#   scripts/demo.sh --rate 1000 --duration 20s --plot handover.svg --workdir demo-out
#
# It builds the `demo` profile (Cargo.toml): on a fresh machine the first run
# is mostly this compile, and the demo profile optimises only the request
# path, so a fresh build takes about half of what the old all-`opt-level 1`
# profile took (docs/benchmarks.md). For rates past ~5,000/s or numbers to
# compare with docs/benchmarks.md, build release: HANDOVER_PROFILE=release.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${HANDOVER_PROFILE:-demo}
# SQLite only unless --store names PostgreSQL or NATS: their drivers are
# about a tenth of the compile (docs/benchmarks.md).
FEATURES=(--no-default-features)
for arg in "$@"; do
  case "$arg" in
    *postgres://* | *postgresql://* | *nats://*) FEATURES=() ;;
  esac
done
cargo build --profile "$PROFILE" "${FEATURES[@]}" --bin migrator --bin example-app --bin edge
exec "${CARGO_TARGET_DIR:-target}/$PROFILE/migrator" demo "$@"
