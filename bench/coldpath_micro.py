#!/usr/bin/env python3
"""The client side of serve's cold start, alone: N small-zone pulls through
``pull_zone`` (the same layers serve runs: failover, the unprobed AXFR, the engine,
the TCP stream) into a copy that builds the served version, ``--concurrency`` at a
time, against a canned primary in another process that answers every AXFR with the
same genzone zone at once.  Prints the pulling thread's CPU microseconds per zone
(``time.thread_time``), median of ``--repeat`` rounds: a steadier figure of the
per-zone main-thread work than a whole serve start on a shared machine.

    python bench/coldpath_micro.py ZONEFILE [--zones 3000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import struct
import sys
import time
from pathlib import Path

if "PYTHONPATH" not in os.environ:  # (PYTHONPATH=BEFORE: another secdns, e.g. main's)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.rrset  # noqa: E402
import dns.zone  # noqa: E402

from secdns import wire, zonefile  # noqa: E402
from secdns.copies import ZoneCopy  # noqa: E402
from secdns.endpoints import Endpoint  # noqa: E402
from secdns.pull import PullOptions, PullResult, Status, pull_zone  # noqa: E402
from secdns.server.zone import ZoneVersion  # noqa: E402


def answer(path: str, origin: dns.name.Name) -> bytes:
    zone = dns.zone.from_file(path, origin, relativize=False)
    response = dns.message.make_response(dns.message.make_query(origin, dns.rdatatype.AXFR))
    soa = zone.find_rrset(origin, dns.rdatatype.SOA)
    response.answer.append(soa)
    for name, node in zone.nodes.items():
        for rdataset in node.rdatasets:
            if rdataset.rdtype != dns.rdatatype.SOA:
                response.answer.append(dns.rrset.from_rdata_list(name, rdataset.ttl, rdataset))
    response.answer.append(soa)
    return response.to_wire()


def primary(listener: socket.socket, canned: bytes) -> None:
    """Answer each connection's one query with ``canned`` (its ID patched), then close."""
    import selectors

    sel = selectors.DefaultSelector()
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is listener:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ)
                continue
            conn = key.fileobj
            data = conn.recv(512)
            sel.unregister(conn)
            if len(data) >= 4:
                body = data[2:4] + canned[2:]
                conn.setblocking(True)
                conn.sendall(struct.pack("!H", len(body)) + body)
            conn.close()


class BuildCopy(ZoneCopy):
    axfr_unprobed = True

    def __init__(self, origin: dns.name.Name, text: str) -> None:
        self.origin, self.text = origin, text

    async def apply_axfr(
        self, records: zonefile.FullZone, soa: wire.Record, result: PullResult
    ) -> None:
        lines = zonefile.canonical_lines(records)
        result.records = ZoneVersion.from_lines(self.origin, lines, self.text).records


async def round_(port: int, origin: dns.name.Name, zones: int, bound: int) -> float:
    gate = asyncio.Semaphore(bound)
    endpoint = [Endpoint("127.0.0.1", port)]
    text = origin.to_text()

    async def one() -> None:
        async with gate:
            result = await pull_zone(
                origin, endpoint, BuildCopy(origin, text), options=PullOptions()
            )
        assert result.status is Status.TRANSFERRED, result.error

    started = time.thread_time()
    await asyncio.gather(*(one() for _ in range(zones)))
    return time.thread_time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("zonefile")
    parser.add_argument("--origin", default="z00001.example.")
    parser.add_argument("--zones", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    origin = dns.name.from_text(args.origin)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    server = multiprocessing.Process(
        target=primary, args=(listener, answer(args.zonefile, origin)), daemon=True
    )
    server.start()
    try:
        rounds = [
            asyncio.run(round_(port, origin, args.zones, args.concurrency))
            for _ in range(args.repeat)
        ]
    finally:
        server.kill()
    per_zone = [1e6 * cpu / args.zones for cpu in rounds]
    print(
        f"{statistics.median(per_zone):.1f} us CPU per zone (median of {args.repeat}, "
        f"least {min(per_zone):.1f}; "
        f"rounds {', '.join(f'{u:.0f}' for u in per_zone)})"
    )


if __name__ == "__main__":
    main()
