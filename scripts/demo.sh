#!/usr/bin/env bash
# The README's first command: build every binary, then run the whole cutover on
# this machine (edge + example-app A and B + feeder), e.g.
#   scripts/demo.sh --rate 1000 --duration 20s --plot handover.svg --workdir demo-out
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins
exec "${CARGO_TARGET_DIR:-target}/release/migrator" demo "$@"
