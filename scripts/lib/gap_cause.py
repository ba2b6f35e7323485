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
no wake-up in the gap was 2 ms late). A gap with such a commit under it
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
    under = []
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
    commit = f"{max(under):.1f}" if under else "-"
    # Each CPU's late wake-ups inside the gap, added up: a stall comes in
    # bursts (five of 4-7 ms within 40 ms on one CPU), and a CPU gone for
    # 4 + 6 ms of a 13 ms gap held up all that was queued on it.
    lost = {}
    steal = 0
    for probe in sorted(work.glob("machine-cpu*.jsonl")):
        for line in open(probe, encoding="ascii"):
            s = json.loads(line)
            woke = s["due_ns"] + int(s["late_ms"] * 1e6)
            inside = min(woke, end) - max(s["due_ns"], start)
            if inside > 0:
                lost[s["cpu"]] = lost.get(s["cpu"], 0) + inside
                steal += s["steal_ms"]
    machine = f"{max(lost.values()) / 1e6:.1f}" if lost else "-"
    print(
        f"{gap / 1e6:.1f}\t{commit}\t{(start - points[0]) / 1e9:.2f}\t{machine}\t{steal if lost else '-'}"
    )


if __name__ == "__main__":
    main()
