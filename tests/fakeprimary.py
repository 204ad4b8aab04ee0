"""The tests' fake primaries: one UDP+TCP listener on 127.0.0.1, two behaviours.

* :class:`FakePrimary`, for bad input that real servers never send: TCP queries
  are answered from a scripted ``respond(query) -> Iterable[bytes]`` function,
  each item sent as one length-prefixed message (or raw, for garbage) as it is
  produced, so a generator can stream without end; SOA queries over UDP are
  answered with ``soa`` (or with ``udp_rcode``, without AA if ``udp_aa`` is False).
* :class:`CountingPrimary`, a primary of many small zones that counts what
  secondaries ask of it: BIND cannot tell a test how many of its SOA queries and
  transfers were in flight at once, so this one does.  UDP SOA answers and TCP
  AXFRs are each held ``delay`` seconds in a thread of their own, and
  ``max_in_flight`` is the most held at once.  Per zone it counts SOA queries and
  transfers (the "touched only these" assertions of SIGHUP).  Zones are
  ``z<N>.many.test`` with a handful of records.

Both run their listeners in daemon threads and stop them with :meth:`stop` (or
as context managers).  :func:`silent_primary` takes connections and datagrams and
never answers (a primary that is down behind a firewall that drops, or hung):
tests/test_unreachable.py and bench/manyzones_bench.py ``--silent``.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Self

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

Respond = Callable[[dns.message.Message], Iterable[bytes]]

RAW = b"__raw__"


class _Listener:
    """UDP and TCP on one free port of 127.0.0.1, served until :meth:`stop`.

    ``concurrent``: each datagram and each TCP connection in a thread of its own,
    and a TCP connection answered until the client closes it; else one at a time,
    one query per connection."""

    concurrent = False
    backlog = 8

    def __init__(self) -> None:
        self.keyring: dict | None = None
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", 0))
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.tcp.listen(self.backlog)
        self.tcp.settimeout(0.2)
        self.udp.settimeout(0.2)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._serve_tcp, daemon=True),
            threading.Thread(target=self._serve_udp, daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self.tcp.close()
        self.udp.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what a subclass answers ---
    def answer_udp(self, query: dns.message.Message) -> Iterable[bytes]:
        raise NotImplementedError

    def answer_tcp(self, conn: socket.socket, query: dns.message.Message) -> None:
        raise NotImplementedError

    # --- listeners ---
    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.udp.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            if self.concurrent:
                threading.Thread(target=self._udp_one, args=(data, peer), daemon=True).start()
            else:
                self._udp_one(data, peer)

    def _udp_one(self, data: bytes, peer: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data, ignore_trailing=True, keyring=self.keyring or False)
        except Exception:
            return
        for wire in self.answer_udp(query):
            with contextlib.suppress(OSError):
                self.udp.sendto(wire, peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except (TimeoutError, OSError):
                continue
            if self.concurrent:
                threading.Thread(target=self._tcp_one, args=(conn,), daemon=True).start()
            else:
                self._tcp_one(conn)

    def _tcp_one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5 if self.concurrent else 2)
            while True:
                try:
                    (length,) = struct.unpack("!H", _read(conn, 2))
                    query = dns.message.from_wire(_read(conn, length), keyring=False)
                except Exception:
                    return
                try:
                    self.answer_tcp(conn, query)
                except OSError:
                    return
                if not self.concurrent:
                    return


class FakePrimary(_Listener):
    """A scripted primary for bad input (see the module docstring)."""

    def __init__(self, respond: Respond, soa: dns.rrset.RRset, keyring: dict | None = None) -> None:
        super().__init__()
        self.respond = respond
        self.keyring = keyring
        self.soa = soa
        self.close_after: int | None = None  # cut the TCP stream after this many bytes
        self.silent = False  # accept TCP but never answer
        self.udp_rcode = 0  # the rcode of SOA answers over UDP
        self.udp_aa = True  # whether SOA answers over UDP are authoritative
        self.queries: list[dns.message.Message] = []  # over TCP
        self.start()

    @property
    def addr(self) -> str:
        return f"@127.0.0.1:{self.port}"

    def answer_udp(self, query: dns.message.Message) -> Iterable[bytes]:
        response = dns.message.make_response(query)
        if not self.keyring:
            response.keyring = None
        if self.udp_aa:
            response.flags |= dns.flags.AA
        response.set_rcode(self.udp_rcode)
        if self.udp_rcode == 0:
            response.answer.append(self.soa)
        return (response.to_wire(),)

    def answer_tcp(self, conn: socket.socket, query: dns.message.Message) -> None:
        self.queries.append(query)
        if self.silent:
            self._stop.wait(5)
            return
        if self.close_after is None:
            # item by item, so that an endless generator streams forever
            conn.settimeout(30)  # a slow reader is not a closed one
            with contextlib.suppress(OSError):
                for item in self.respond(query):
                    if self._stop.is_set():
                        break
                    conn.sendall(_framed(item))
            return
        stream = b"".join(_framed(item) for item in self.respond(query))
        with contextlib.suppress(OSError):
            conn.sendall(stream[: self.close_after])


def zone_names(count: int, start: int = 0) -> list[str]:
    """The zones of a :class:`CountingPrimary`: ``z<start>.many.test`` and on."""
    return [f"z{i}.many.test" for i in range(start, start + count)]


class CountingPrimary(_Listener):
    """A primary of many small zones that counts what it is asked (see the module docstring)."""

    concurrent = True
    backlog = 256

    def __init__(
        self,
        zones: list[str],
        *,
        serial: int = 1,
        refresh: int = 3600,
        retry: int = 600,
        delay: float = 0.01,
    ) -> None:
        super().__init__()
        self.zones = {dns.name.from_text(z): z for z in zones}
        self.serial = serial
        self.timers = (refresh, retry, 86400 * 7, 300)
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.soa_queries: collections.Counter[str] = collections.Counter()
        self.transfers: collections.Counter[str] = collections.Counter()
        self.start()

    @property
    def addr(self) -> str:
        """``127.0.0.1:PORT``, for a config's primaries (as tests/servers.py's servers)."""
        return f"127.0.0.1:{self.port}"

    def touched(self) -> dict[str, tuple[int, int]]:
        """Per zone: (SOA queries, transfers) so far."""
        with self.lock:
            names = set(self.soa_queries) | set(self.transfers)
            return {n: (self.soa_queries[n], self.transfers[n]) for n in names}

    def answer_udp(self, query: dns.message.Message) -> Iterable[bytes]:
        return self._held(query)

    def answer_tcp(self, conn: socket.socket, query: dns.message.Message) -> None:
        for wire in self._held(query):
            conn.sendall(_framed(wire))

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


@contextlib.contextmanager
def silent_primary() -> Iterator[tuple[str, list[int]]]:
    """ADDR:PORT taking TCP connections and UDP datagrams and never answering, and
    the count of connections it has taken (a list of one)."""
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        udp.bind(("127.0.0.1", port))  # (bound: no ICMP port unreachable, no answer)
        tcp.listen(64)
        tcp.settimeout(0.1)
        taken = [0]
        stop = threading.Event()
        held: list[socket.socket] = []

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = tcp.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                taken[0] += 1
                held.append(conn)  # open, never answered

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            yield f"127.0.0.1:{port}", taken
        finally:
            stop.set()
            thread.join(5)
            for conn in held:
                conn.close()
