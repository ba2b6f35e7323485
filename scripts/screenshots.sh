#!/usr/bin/env bash
# Refreshes the pictures the README and docs/report.md show:
#  - docs/img/report.png: the HTML report as headless chromium draws it (taken
#    by the browser test in migrator/tests/live.rs);
#  - docs/img/live-view.png and .txt: the live view in a real terminal (tmux)
#    at the handover moment, while both instances answer.
# Needs chromium and tmux (scripts/test.sh installs them) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs/img
cargo build --workspace --bins
bin="${CARGO_TARGET_DIR:-target}/debug/migrator"

HANDOVER_SCREENSHOTS="$PWD/docs/img" cargo test -p migrator --test live -- html_report_opens_in_chromium

work=$(mktemp -d)
sock="handover-shots-$$"
cleanup() { tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
tmux -L "$sock" -f /dev/null new-session -d -x 100 -y 30 -e TERM=xterm-256color \
  "$bin demo --rate 500 --duration 30s --propagation 6s --workdir $work/demo; echo \$? > $work/code; sleep 60"
# Every frame of the handover (B has taken over, A still answers); the one
# in the middle of them is the picture.
n=0
for _ in $(seq 1 400); do
  [ -s "$work/code" ] && break
  tmux -L "$sock" capture-pane -e -p -t 0 > "$work/now.ansi"
  tmux -L "$sock" capture-pane -p -t 0 > "$work/now.txt"
  if grep -q "▶ drain_a" "$work/now.txt" && grep -q "both answering" "$work/now.txt"; then
    n=$((n + 1))
    cp "$work/now.txt" "$work/frame-$n.txt"
    cp "$work/now.ansi" "$work/frame-$n.ansi"
  fi
  sleep 0.25
done
[ "$n" -gt 0 ] || { echo "never saw both instances answer during the drain" >&2; exit 1; }
mid=$(((n + 1) / 2))
cp "$work/frame-$mid.txt" docs/img/live-view.txt
cp "$work/frame-$mid.ansi" "$work/now.ansi"
python3 scripts/lib/ansi2html.py < "$work/now.ansi" > "$work/live.html"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --user-data-dir="$work/profile" --window-size=940,660 \
  --screenshot="$PWD/docs/img/live-view.png" "file://$work/live.html"
ls -l docs/img
