#!/usr/bin/env python3
"""Does answering scale past one core?  N processes share the UDP port (SO_REUSEPORT).

The zone is loaded once, then the process forks N answerers, each with its own
SO_REUSEPORT socket running the server's UDP loop (answer cache, prepared
answers, the general path).  One dnsperf pass per N, in the same run:

    python bench/reuseport_probe.py ZONE QUERIES --origin example.test. --workers 1 2

This measures the idea behind ``--workers N`` (issue 12, "Beyond one core"); it
is not the server's own lifecycle (no NOTIFY, no transfers).
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import dns.name  # noqa: E402
from serve_bench import dnsperf  # noqa: E402
from servers import free_port  # noqa: E402

from secdns import zonefile  # noqa: E402
from secdns.server import front  # noqa: E402
from secdns.server.prepared import PreparedAnswers  # noqa: E402
from secdns.server.zone import ServedZone, ZoneTable, ZoneVersion  # noqa: E402
from secdns.sources import read_file_records  # noqa: E402


def answer_loop(sock: socket.socket, table: ZoneTable) -> None:
    prepared = PreparedAnswers(table)
    cache: dict[bytes, bytes] = {}
    while True:
        data, addr = sock.recvfrom(65535)
        found = cache.get(data[2:])
        if found is not None:
            sock.sendto(data[:2] + found, addr)
            continue
        fast = prepared.answer(data)
        reply = fast[0] if fast is not None else front.handle(data, table, tcp=False).wire
        if reply is not None:
            cache[data[2:]] = reply[2:]
            sock.sendto(reply, addr)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("zone", type=Path)
    parser.add_argument("queries", type=Path)
    parser.add_argument("--origin", default="example.test.")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    origin = dns.name.from_text(args.origin)
    lines = zonefile.canonical_lines(read_file_records(str(args.zone), origin))
    zone = ServedZone(origin)
    zone.swap(ZoneVersion.from_lines(origin, lines))
    table = ZoneTable()
    table.add(zone)
    gc.freeze()
    for workers in args.workers:
        port = free_port()
        children = []
        for _ in range(workers):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind(("127.0.0.1", port))
            pid = os.fork()
            if pid == 0:
                answer_loop(sock, table)
                os._exit(0)
            sock.close()
            children.append(pid)
        time.sleep(0.5)
        try:
            qps = dnsperf(port, args.queries, 0, once=True)
            print(f"workers={workers}: first pass {qps:.0f} qps", flush=True)
        finally:
            for pid in children:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
