"""The UDP worker (secdns.server.udp): first asks answered with the general path's bytes,
repeats from the answer cache, and a blocking socket that stop() still wakes at once."""

from __future__ import annotations

import socket
import time

import dns.message
import dns.name
import dns.rcode
from test_prepared import MIX, _table

from secdns.server import front
from secdns.server.prepared import PreparedAnswers
from secdns.server.ready import ReadyAnswers
from secdns.server.readyfill import fill
from secdns.server.udp import AnswerCache, UdpWorker
from secdns.server.zone import ServedZone


class _Server:
    """What the worker reads of secdns.server.server.Server: the cache, the prepared
    answers and the general path (here front.handle, as answer_udp ends in it)."""

    log_queries = False

    def __init__(self) -> None:
        self.table = _table({"mix.test.": MIX})
        self.cache = AnswerCache()
        self.prepared = PreparedAnswers(self.table)
        self.ready = ReadyAnswers()
        self.general = 0

    def answer_udp(self, data: bytes, source: str, looked_up: bool = False) -> bytes | None:
        self.general += 1
        return front.handle(data, self.table, tcp=False).wire


def _ask(client: socket.socket, port: int, wire: bytes) -> bytes:
    client.sendto(wire, ("127.0.0.1", port))
    reply, _ = client.recvfrom(65535)
    return reply


def test_first_asks_repeats_and_a_prompt_stop() -> None:
    server = _Server()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    worker = UdpWorker(server, sock)  # type: ignore[arg-type]  # the fields run() reads
    assert sock.gettimeout() is None  # blocking: no poll before each recvfrom/sendto
    worker.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(5)
    try:
        questions = [
            ("ci000004.cdn.mix.test.", "A"),  # answered inline
            ("metrics000002.dc1.mix.test.", "AAAA"),
            ("nx000001.cdn.mix.test.", "A"),  # NXDOMAIN below a known parent
            ("corp000010.mix.test.", "MX"),  # with additional addresses
            ("CI000004.cdn.mix.test.", "A"),  # another case
            ("www000011.web.mix.test.", "A"),  # a CNAME chain: the general path
        ]
        for name, rdtype in questions * 2:
            query = dns.message.make_query(name, rdtype, use_edns=False)
            wire = query.to_wire()
            reply = _ask(client, port, wire)
            assert reply == front.handle(wire, server.table, tcp=False).wire, (name, rdtype)
        nx = dns.message.from_wire(_ask(client, port, _query("nx000002.cdn.mix.test.")))
        assert nx.rcode() == dns.rcode.NXDOMAIN
        assert server.prepared.used >= 5
        assert server.general == 2  # the CNAME chain (this stand-in caches nothing)
        # the prepared replies, each once: RD-shaped positive ones asked in the zone's case
        # kept as ready answers, the rest (NXDOMAIN, another case) in the cache
        assert len(server.cache.entries) + len(server.ready.entries) == 6
        assert len(server.ready.entries) == 3
    finally:
        client.close()
        started = time.monotonic()
        worker.stop()
        worker.thread.join(2.0)
    assert not worker.thread.is_alive()
    assert time.monotonic() - started < 1.0
    assert sock.fileno() == -1  # closed by the worker on its way out


def _query(name: str) -> bytes:
    return dns.message.make_query(name, "A", use_edns=False).to_wire()


def test_ready_answers_inline_are_the_general_paths_bytes() -> None:
    """The worker's inline ready lookup gives ReadyAnswers.reply's bytes, which are the
    general path's, in every shape it takes (no OPT, EDNS, DO, CD) and steps aside
    for the rest."""
    from test_prepared import _query as shaped
    from test_ready import READY_SHAPES

    server = _Server()
    zone = server.table.zones["mix.test."]
    for _made in fill(server.ready, PreparedAnswers(server.table), server.table, zone):
        pass
    filled = len(server.ready.entries)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    worker = UdpWorker(server, sock)  # type: ignore[arg-type]  # the fields run() reads
    worker.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(5)
    try:
        for name, rdtype in [
            ("ci000004.cdn.mix.test.", "A"),
            ("corp000010.mix.test.", "MX"),
            ("_dmarc.corp000010.mix.test.", "TXT"),
            ("www000011.web.mix.test.", "CNAME"),
            ("mix.test.", "SOA"),
            ("Ci000004.cdn.mix.test.", "A"),
            ("cust000003.mix.test.", "NS"),  # a referral, ready at its delegation point
            ("cust000003.mix.test.", "A"),
        ]:
            for shape in READY_SHAPES:
                wire = shaped(name, rdtype, **shape)
                reply = _ask(client, port, wire)
                assert reply == front.handle(wire, server.table, tcp=False).wire
                ready = server.ready.reply(wire)
                assert ready is None or ready == reply
        assert server.general == 0
        assert len(server.ready.entries) == filled  # another case is not kept (cached)
    finally:
        client.close()
        worker.stop()
        worker.thread.join(2.0)


def test_a_resolvers_first_asks_learn_the_authority_block() -> None:
    """RD clear through the worker: the first ask of a block key takes the prepared path
    and keeps its authority block; a name of the same lengths asked next is ready (the
    general path's bytes) without the prepared path."""
    from test_prepared import _query as shaped

    server = _Server()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    worker = UdpWorker(server, sock)  # type: ignore[arg-type]  # the fields run() reads
    worker.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(5)
    try:
        names = ["storage000001.dc1.mix.test.", "storage000001.dc2.mix.test."]
        server.table.zones["mix.test."].swap(
            server.table.zones["mix.test."].version.apply(  # type: ignore[union-attr]
                [([], ["storage000001.dc2 3600 IN A 10.1.2.3"])], 2024060102
            )
        )
        for name in names:
            wire = shaped(name, "A", rd=True)
            assert _ask(client, port, wire) == front.handle(wire, server.table, tcp=False).wire
        used = server.prepared.used
        first = shaped(names[0], "A")
        assert _ask(client, port, first) == front.handle(first, server.table, tcp=False).wire
        assert server.prepared.used == used + 1 and len(server.ready.blocks) == 1
        for shape in ({}, {"edns": 1232}, {"edns": 1232, "do": True, "cd": True}):
            wire = shaped(names[1], "A", **shape)
            assert _ask(client, port, wire) == front.handle(wire, server.table, tcp=False).wire
        assert server.prepared.used == used + 1  # each answered ready
        assert server.general == 0
    finally:
        client.close()
        worker.stop()
        worker.thread.join(2.0)


def test_the_answer_cache_is_bounded_by_bytes_too() -> None:
    """One client asking random names with DO of a signed zone fills the cache with
    ~1 KiB answers: it is cleared at CACHE_BYTES as at CACHE_ENTRIES."""
    zone = ServedZone(dns.name.from_text("example."))
    cache = AnswerCache(limit=1_000_000, max_bytes=100_000)
    for n in range(1_000):
        cache.put(b"U%06d" % n, zone, bytes(1_000))
        assert cache.bytes <= 100_000 and len(cache.entries) <= 100
    assert cache.get(b"U000999") == bytes(1_000)
