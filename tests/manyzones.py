"""A primary of many small zones that counts what secondaries ask of it.

BIND cannot tell a test how many of its SOA queries and transfers were in flight
at once, so this one does: UDP SOA answers and TCP AXFRs are each held ``delay``
seconds in a thread of their own, and ``max_in_flight`` is the most held at
once.  Per zone it counts SOA queries and transfers (the "touched only these"
assertions of SIGHUP).  Zones are ``z<N>.many.test`` with a handful of records.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import struct
import threading
import time

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


def zone_names(count: int, start: int = 0) -> list[str]:
    return [f"z{i}.many.test" for i in range(start, start + count)]


class CountingPrimary:
    def __init__(
        self,
        zones: list[str],
        *,
        serial: int = 1,
        refresh: int = 3600,
        retry: int = 600,
        delay: float = 0.01,
    ) -> None:
        self.zones = {dns.name.from_text(z): z for z in zones}
        self.serial = serial
        self.timers = (refresh, retry, 86400 * 7, 300)
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.soa_queries: collections.Counter[str] = collections.Counter()
        self.transfers: collections.Counter[str] = collections.Counter()
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", 0))
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.tcp.listen(256)
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
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self.tcp.close()
        self.udp.close()

    def touched(self) -> dict[str, tuple[int, int]]:
        """Per zone: (SOA queries, transfers) so far."""
        with self.lock:
            names = set(self.soa_queries) | set(self.transfers)
            return {n: (self.soa_queries[n], self.transfers[n]) for n in names}

    # --- answers ---
    def _soa(self, origin: dns.name.Name) -> dns.rrset.RRset:
        refresh, retry, expire, minimum = self.timers
        return dns.rrset.from_text(
            origin,
            3600,
            "IN",
            "SOA",
            f"ns1.{origin} hostmaster.{origin} {self.serial} {refresh} {retry} {expire} {minimum}",
        )

    def _records(self, origin: dns.name.Name) -> list[dns.rrset.RRset]:
        return [
            dns.rrset.from_text(origin, 3600, "IN", "NS", f"ns1.{origin}", f"ns2.{origin}"),
            dns.rrset.from_text(f"ns1.{origin}", 3600, "IN", "A", "192.0.2.1"),
            dns.rrset.from_text(f"ns2.{origin}", 3600, "IN", "A", "192.0.2.2"),
            dns.rrset.from_text(f"www.{origin}", 300, "IN", "A", "192.0.2.80"),
            dns.rrset.from_text(origin, 300, "IN", "MX", f"10 mail.{origin}"),
        ]

    def _answer(self, query: dns.message.Message) -> list[bytes]:
        question = query.question[0]
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        name = self.zones.get(question.name)
        if name is None:
            response.set_rcode(dns.rcode.REFUSED)
            return [response.to_wire()]
        if question.rdtype == dns.rdatatype.SOA:
            self.soa_queries[name] += 1
            response.answer.append(self._soa(question.name))
        elif question.rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            self.transfers[name] += 1
            soa = self._soa(question.name)
            response.answer.extend([soa, *self._records(question.name), soa])
        else:
            response.set_rcode(dns.rcode.REFUSED)
        return [response.to_wire()]

    def _held(self, query: dns.message.Message) -> list[bytes]:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            answer = self._answer(query)
        try:
            time.sleep(self.delay)
        finally:
            with self.lock:
                self.in_flight -= 1
        return answer

    # --- listeners ---
    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.udp.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._udp_one, args=(data, peer), daemon=True).start()

    def _udp_one(self, data: bytes, peer: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data, ignore_trailing=True)
        except Exception:
            return
        for wire in self._held(query):
            with contextlib.suppress(OSError):
                self.udp.sendto(wire, peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._tcp_one, args=(conn,), daemon=True).start()

    def _tcp_one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            with contextlib.suppress(Exception):
                while True:
                    prefix = _read(conn, 2)
                    if not prefix:
                        return
                    (length,) = struct.unpack("!H", prefix)
                    query = dns.message.from_wire(_read(conn, length))
                    for wire in self._held(query):
                        conn.sendall(struct.pack("!H", len(wire)) + wire)


def _read(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            return b""
        data += chunk
    return data
