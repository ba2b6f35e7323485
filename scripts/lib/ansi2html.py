#!/usr/bin/env python3
"""A terminal screen (`tmux capture-pane -e -p`) as a small HTML page, so a
headless browser can take its picture for the docs. Understands the SGR
codes the live view uses: 0, 1, 22, 30-37, 39, 40-47, 49, 90-97, 100-107,
38;5;n and 48;5;n (the 16 base colours)."""
import html
import re
import sys

BASE = ["#000000", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
        "#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff"]
FG, BG = "#d4d4d4", "#1e1e1e"


def colour(n):
    return BASE[n] if 0 <= n < 16 else FG


def main():
    text = sys.stdin.read()
    fg, bg, bold = None, None, False
    out = []
    for part in re.split(r"(\x1b\[[0-9;]*m)", text):
        if part.startswith("\x1b["):
            codes = [int(c) if c else 0 for c in part[2:-1].split(";")]
            i = 0
            while i < len(codes):
                c = codes[i]
                if c == 0:
                    fg, bg, bold = None, None, False
                elif c == 1:
                    bold = True
                elif c == 22:
                    bold = False
                elif 30 <= c <= 37 or 90 <= c <= 97:
                    fg = colour(c % 10 + (8 if c >= 90 else 0))
                elif 40 <= c <= 47 or 100 <= c <= 107:
                    bg = colour(c % 10 + (8 if c >= 100 else 0))
                elif c in (39, 49):
                    fg, bg = (None, bg) if c == 39 else (fg, None)
                elif c in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
                    if c == 38:
                        fg = colour(codes[i + 2])
                    else:
                        bg = colour(codes[i + 2])
                    i += 2
                i += 1
            continue
        if not part:
            continue
        style = []
        if fg:
            style.append(f"color:{fg}")
        if bg:
            style.append(f"background:{bg}")
        if bold:
            style.append("font-weight:bold")
        esc = html.escape(part)
        out.append(f'<span style="{";".join(style)}">{esc}</span>' if style else esc)
    print(f"""<!DOCTYPE html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; background: {BG}; }}
pre {{ margin: 0; padding: 12px; color: {FG}; background: {BG};
      font: 15px/1.2 "DejaVu Sans Mono", monospace; }}
</style></head><body><pre>{"".join(out)}</pre></body></html>""")


if __name__ == "__main__":
    main()
