#!/usr/bin/env python3
"""Prints a loopback TCP port that is free now, for a server a script starts.

The port is drawn at random below the kernel's ephemeral range. A port
bound to 0 comes from that range, where every outgoing connection of a busy
test suite also takes its source port, and one took a NATS node's port
between this check and the server's own bind (seen in CI: "address already
in use"). When the range starts too low to leave room below it, any free
port will do (port 0).
"""
import random
import socket


def main() -> None:
    with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
        low = int(f.read().split()[0])
    for _ in range(200):
        port = random.randint(10000, low - 1) if low > 11000 else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            print(s.getsockname()[1])
            return
    raise SystemExit("free_port: no free port found")


if __name__ == "__main__":
    main()
