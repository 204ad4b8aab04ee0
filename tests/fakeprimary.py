"""A small hand-written primary for bad input that real servers never send.

It runs in a thread on 127.0.0.1 (UDP and TCP on one port) and answers from a
scripted ``respond(query) -> Iterable[bytes]`` function: each item is sent as one
length-prefixed TCP message (or raw, for garbage), as it is produced, so a
generator can stream without end.  SOA queries over UDP are
answered with ``soa`` (or with ``udp_rcode``, without AA if ``udp_aa`` is False).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterable

import dns.flags
import dns.message
import dns.rrset

Respond = Callable[[dns.message.Message], Iterable[bytes]]

RAW = b"__raw__"


class FakePrimary:
    def __init__(self, respond: Respond, soa: dns.rrset.RRset, keyring: dict | None = None) -> None:
        self.respond = respond
        self.keyring = keyring
        self.soa = soa
        self.close_after: int | None = None  # cut the TCP stream after this many bytes
        self.silent = False  # accept TCP but never answer
        self.udp_rcode = 0  # the rcode of SOA answers over UDP
        self.udp_aa = True  # whether SOA answers over UDP are authoritative
        self.queries: list[dns.message.Message] = []
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", 0))
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.tcp.listen(8)
        self.tcp.settimeout(0.2)
        self.udp.settimeout(0.2)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._serve_tcp, daemon=True),
            threading.Thread(target=self._serve_udp, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def addr(self) -> str:
        return f"@127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self.tcp.close()
        self.udp.close()

    def __enter__(self) -> FakePrimary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.udp.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            try:
                query = dns.message.from_wire(
                    data, ignore_trailing=True, keyring=self.keyring or False
                )
            except Exception:
                continue
            response = dns.message.make_response(query)
            if not self.keyring:
                response.keyring = None
            if self.udp_aa:
                response.flags |= dns.flags.AA
            response.set_rcode(self.udp_rcode)
            if self.udp_rcode == 0:
                response.answer.append(self.soa)
            with contextlib.suppress(OSError):
                self.udp.sendto(response.to_wire(), peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2)
                try:
                    (length,) = struct.unpack("!H", _read(conn, 2))
                    query = dns.message.from_wire(_read(conn, length), keyring=False)
                except Exception:
                    continue
                self.queries.append(query)
                if self.silent:
                    self._stop.wait(5)
                    continue
                if self.close_after is None:
                    # item by item, so that an endless generator streams forever
                    conn.settimeout(30)  # a slow reader is not a closed one
                    with contextlib.suppress(OSError):
                        for item in self.respond(query):
                            if self._stop.is_set():
                                break
                            conn.sendall(_framed(item))
                    continue
                stream = b"".join(_framed(item) for item in self.respond(query))
                with contextlib.suppress(OSError):
                    conn.sendall(stream[: self.close_after])


def _framed(item: bytes) -> bytes:
    """One TCP message with its length prefix, or RAW bytes as they are."""
    if item.startswith(RAW):
        return item[len(RAW) :]
    return struct.pack("!H", len(item)) + item


def _read(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data
