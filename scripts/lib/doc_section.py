#!/usr/bin/env python3
"""Replaces one section of docs/benchmarks.md with the text on stdin.

    python3 scripts/lib/doc_section.py DOC "## Heading (scripts/x.sh)" < section

The section runs from its heading to the next "## " heading (or the end);
a missing section is appended. Every bench script writes its own section
this way, so a rerun refreshes its figures and leaves the others alone.
"""
import re
import sys


def main() -> None:
    path, heading = sys.argv[1], sys.argv[2]
    section = sys.stdin.read().rstrip() + "\n"
    try:
        text = open(path, encoding="utf-8").read()
    except FileNotFoundError:
        text = "# Benchmarks\n\nFigures measured on the machine named in each section; rerun the script to refresh.\n"
    pat = re.compile(r"^" + re.escape(heading) + r"\n.*?(?=^## |\Z)", re.S | re.M)
    if pat.search(text):
        text = pat.sub(lambda _m: section + "\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + section
    open(path, "w", encoding="utf-8").write(text.rstrip() + "\n")


if __name__ == "__main__":
    main()
