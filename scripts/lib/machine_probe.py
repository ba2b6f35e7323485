#!/usr/bin/env python3
"""How long this machine kept a CPU from running anything of ours.

    python3 scripts/lib/machine_probe.py CPU OUT.jsonl

Pins itself to CPU, takes SCHED_FIFO priority 1 (no ordinary process can
delay it: only interrupts, real-time tasks and the hypervisor can) and
wakes every 1 ms. Each wake-up that came 2 ms or more late is one JSON
line: when the thread should have woken (unix ns), how late it was, and
how much steal time (the hypervisor running someone else on this CPU, from
/proc/stat, in 10 ms ticks) the CPU gained in the last 0.1 s or so. Runs until SIGINT or SIGTERM.

One process per CPU, not a thread per CPU: Python's threads share one lock,
so a stall on one CPU would show on the other too. A benchmark starts one
per CPU beside its run; scripts/lib/gap_cause.py adds up each CPU's
delays inside the run's max gap. A SCHED_FIFO thread woken late by as long
as the gap means the whole CPU was gone for that long, whatever was
running on it: the stall is the machine's, not the programs'.
"""
import json
import os
import signal
import sys
import time

PERIOD_NS = 1_000_000
LATE_NS = 2_000_000
USER_HZ = os.sysconf("SC_CLK_TCK")


def steal_ticks(cpu: int) -> int:
    with open("/proc/stat", encoding="ascii") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                return int(line.split()[8])
    return 0


def main() -> None:
    cpu, out = int(sys.argv[1]), sys.argv[2]
    os.sched_setaffinity(0, {cpu})
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except PermissionError:
        print("machine_probe: no SCHED_FIFO (not root); delays include other processes", file=sys.stderr)
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with open(out, "w", encoding="ascii", buffering=1) as f:
        steal = steal_ticks(cpu)
        due = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + PERIOD_NS
        # Unix time of a monotonic instant, to line up with the ack log.
        offset = time.time_ns() - time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        ticks = 0
        while not stop:
            ticks += 1
            if ticks % 100 == 0:
                # A fresh baseline every 0.1 s, so a late wake-up's steal is
                # what the CPU lost around it, not since the run began.
                steal = steal_ticks(cpu)
            time.sleep(max(0, due - time.clock_gettime_ns(time.CLOCK_MONOTONIC)) / 1e9)
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            late = now - due
            if late >= LATE_NS:
                now_steal = steal_ticks(cpu)
                f.write(json.dumps({
                    "cpu": cpu,
                    "due_ns": due + offset,
                    "late_ms": round(late / 1e6, 2),
                    "steal_ms": (now_steal - steal) * 1000 // USER_HZ,
                }) + "\n")
                steal = now_steal
            due = now + PERIOD_NS


if __name__ == "__main__":
    main()
