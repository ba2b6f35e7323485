#!/usr/bin/env bash
# Refreshes the pictures the README and docs/report.md show, from the same
# tests that check them: the HTML report as headless chromium draws it
# (docs/img/report.png) and the live view as tmux shows it mid-run
# (docs/img/live-view.txt). Needs chromium and tmux (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs/img
cargo build --workspace --bins
HANDOVER_SCREENSHOTS="$PWD/docs/img" cargo test -p migrator --test live -- \
  html_report_opens_in_chromium the_live_view_runs_in_a_real_terminal
ls -l docs/img
