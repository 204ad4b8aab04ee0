#!/usr/bin/env python3
"""The floor of a Python secondary's cold start: AXFR every zone and do nothing else.

``manyzones_bench.py --floor`` runs this against its BIND primary: one asyncio
event loop on plain non-blocking sockets (the primitives secdns's own transfer
uses), ``--concurrency`` transfers at once, each one connection, one AXFR query,
its messages read until their answer counts reach the zone's records and the
closing SOA, then closed.  Nothing is decoded unless ``--decode`` (then each
message goes through :func:`secdns.wire.parse_message`, secdns's own decoder), nothing
is checked, built, stored or served.  It prints one JSON line: the seconds for
every zone and this process's CPU seconds (user + system).

What it shows: the part of a cold start no Python secondary on this machine gets
under, to set beside Knot's whole cold start in the same run.

    python bench/axfr_floor.py HOST PORT RECORDS ZONE... [--concurrency 8] [--decode]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dns.name  # noqa: E402

from secdns import wire  # noqa: E402


def axfr_query(query_id: int, name: str) -> bytes:
    labels = b"".join(bytes((len(part),)) + part.encode() for part in name.rstrip(".").split("."))
    body = struct.pack("!HHHHHH", query_id, 0, 1, 0, 0, 0) + labels + b"\x00" + b"\x00\xfc\x00\x01"
    return struct.pack("!H", len(body)) + body


async def read_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return data


async def transfer(
    loop: asyncio.AbstractEventLoop, address: tuple[str, int], name: str, records: int, decode: bool
) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_sendall(sock, axfr_query(os.getpid() & 0xFFFF, name))
        origin = dns.name.from_text(name) if decode else None
        seen = 0
        while seen < records:
            (length,) = struct.unpack("!H", await read_exactly(loop, sock, 2))
            message = await read_exactly(loop, sock, length)
            if origin is not None:
                wire.parse_message(message, origin)
            seen += struct.unpack_from("!H", message, 6)[0]
    finally:
        sock.close()


async def run(
    address: tuple[str, int], names: list[str], records: int, bound: int, decode: bool
) -> None:
    loop = asyncio.get_running_loop()
    queue = list(reversed(names))

    async def worker() -> None:
        while queue:
            await transfer(loop, address, queue.pop(), records, decode)

    await asyncio.gather(*(worker() for _ in range(bound)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("records", type=int, help="records per zone, the closing SOA included")
    parser.add_argument("zones", nargs="+")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--decode", action="store_true", help="decode each message too")
    args = parser.parse_args()
    began, cpu = time.perf_counter(), time.process_time()
    try:
        asyncio.run(
            run((args.host, args.port), args.zones, args.records, args.concurrency, args.decode)
        )
    except (OSError, ConnectionError) as err:
        raise SystemExit(f"axfr_floor: {args.host} port {args.port}: {err}") from None
    seconds, cpu_s = time.perf_counter() - began, time.process_time() - cpu
    print(json.dumps({"zones": len(args.zones), "seconds": seconds, "cpu_s": cpu_s}))


if __name__ == "__main__":
    main()
