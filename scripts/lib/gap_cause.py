#!/usr/bin/env python3
"""What the store was doing during a demo run's longest gap.

    python3 scripts/lib/gap_cause.py WORKDIR

Reads the ack log (the longest time between two successful replies) and
A's and B's logs (each store commit of 10 ms or more is logged when it
ends, with its duration) and prints, tab-separated: the gap in ms, the
longest slow commit whose time overlaps the gap ("-" when none did) and
when the gap began, in seconds after the first due time; then, when the
workdir holds machine-cpu*.jsonl (scripts/lib/machine_probe.py), the CPU
time the machine took from our programs during the gap (each CPU's late
wake-ups of a pinned real-time thread inside the gap, added up; the CPU
that lost most) and the steal time its CPUs reported around them ("-" when
no wake-up in the gap was 2 ms late); last, how much of the gap those slow
commits and one CPU's late wake-ups covered together, overlaps counted once
(the CPU that gives the most; "-" when nothing did). A gap with such a commit under it
waited for the store: for SQLite the log line beside it says whether that
was the fsync (flush_ms) or the other instance's lock (lock_ms). A gap
with as much CPU time lost under it waited for the VM's CPU. It counts
only late wake-ups: a CPU the hypervisor slows while the probe sleeps on
time, which `perf sched timehist` also shows here, is not counted.
"""
import datetime
import json
import re
import sys
from pathlib import Path

COMMIT = re.compile(r"^(\S+Z) .*slow store commit commit_ms=([0-9.]+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def unix_ns(stamp: str) -> int:
    # 2026-12-01T09:37:06.573424Z (tracing's RFC 3339, µs)
    t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    t = t.replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def main() -> None:
    work = Path(sys.argv[1])
    done, first_due, last_due = [], None, None
    with open(work / "acks.jsonl", encoding="utf-8") as f:
        for line in f:
            ack = json.loads(line)
            due = ack["due_ns"]
            first_due = due if first_due is None else min(first_due, due)
            last_due = due if last_due is None else max(last_due, due)
            if ack.get("outcome") == "ok":
                done.append(ack["done_ns"])
    if not done:
        print("-\t-\t-")
        return
    # As the feeder counts it: from the first due time to the last.
    points = sorted(done)
    points = [min(first_due, points[0])] + points + [max(last_due, points[-1])]
    gap, start, end = max((b - a, a, b) for a, b in zip(points, points[1:]))
    under, spans = [], []
    for log in ("a.log", "b-start.log"):
        path = work / log
        if not path.exists():
            continue
        for line in open(path, encoding="utf-8", errors="replace"):
            m = COMMIT.match(ANSI.sub("", line))
            if not m:
                continue
            ended = unix_ns(m.group(1))
            took = float(m.group(2))
            began = ended - int(took * 1e6)
            if began < end and ended > start:
                under.append(took)
                spans.append((began, ended))
    commit = f"{max(under):.1f}" if under else "-"
    # Each CPU's late wake-ups inside the gap, added up: a stall comes in
    # bursts (five of 4-7 ms within 40 ms on one CPU), and a CPU gone for
    # 4 + 6 ms of a 13 ms gap held up all that was queued on it.
    lost, late = {}, {}
    steal = 0
    for probe in sorted(work.glob("machine-cpu*.jsonl")):
        for line in open(probe, encoding="ascii"):
            s = json.loads(line)
            woke = s["due_ns"] + int(s["late_ms"] * 1e6)
            inside = min(woke, end) - max(s["due_ns"], start)
            if inside > 0:
                lost[s["cpu"]] = lost.get(s["cpu"], 0) + inside
                late.setdefault(s["cpu"], []).append((s["due_ns"], woke))
                steal += s["steal_ms"]
    machine = f"{max(lost.values()) / 1e6:.1f}" if lost else "-"
    # Slow commits and one CPU's late wake-ups together, overlaps counted
    # once: a 25 ms gap can be a 17 ms fsync and then 7 ms with the CPU gone.
    held = max(
        (covered(spans + cpu_late, start, end) for cpu_late in late.values()),
        default=covered(spans, start, end),
    )
    print(
        f"{gap / 1e6:.1f}\t{commit}\t{(start - points[0]) / 1e9:.2f}\t{machine}\t"
        f"{steal if lost else '-'}\t{f'{held / 1e6:.1f}' if held else '-'}"
    )


def covered(spans, start: int, end: int) -> int:
    """How much of start..end the spans cover, overlaps counted once (ns)."""
    total, reach = 0, start
    for a, b in sorted(spans):
        a, b = max(a, reach), min(b, end)
        if b > a:
            total += b - a
            reach = b
    return total


if __name__ == "__main__":
    main()
