"""Connections kept between transfers (tcpstream.IdleConnections, engine.transfer).

serve keeps a transfer's connection open for the next transfer from the same primary
(RFC 5936 4.1).  Against real BIND, Knot, NSD and PowerDNS: the transfers share one
connection.  Against small
fake primaries, for what real ones do only sometimes: closing after each answer,
closing a kept connection just as it is used again, sending more than was asked.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading

import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import pytest
from servers import tsig_secret
from serving import ServerThread, write_config

from secdns import engine, tcpstream
from secdns.config import parse_config
from secdns.errors import ConfigError
from secdns.keys import make_key
from secdns.xfr import XfrKind

ZONES = ("example.com", "example.org", "example.net")


def _zone_text(zone: str) -> str:
    return (
        f"$ORIGIN {zone}.\n$TTL 300\n"
        f"@ IN SOA ns1 hostmaster 7 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"
        f"www IN A 192.0.2.80\n"
    )


async def _records(address: str, port: int, zone: str) -> int:
    done = await engine.transfer(dns.name.from_text(zone), address, port, XfrKind.AXFR)
    assert done.reader.zone is not None
    return len(done.reader.zone)


@pytest.mark.parametrize("peer", ["bind_primary", "knot_primary", "nsd_primary", "pdns_primary"])
def test_transfers_from_one_primary_share_a_connection(request, peer):
    # (each of them answers several AXFRs on one connection, as RFC 5936 4.1 allows)
    primary = request.getfixturevalue(peer)({zone: _zone_text(zone) for zone in ZONES})

    async def main() -> tuple[list[int], int, int]:
        pool = tcpstream.IdleConnections.install()
        try:
            counts = [await _records(primary.host, primary.port, zone) for zone in ZONES]
            return counts, pool.reused, pool.idle_count()
        finally:
            pool.close()

    counts, reused, idle = asyncio.run(main())
    assert counts == [4, 4, 4]
    assert (reused, idle) == (2, 1)


def test_without_a_pool_each_transfer_has_its_own_connection(bind_primary):
    primary = bind_primary({zone: _zone_text(zone) for zone in ZONES})

    async def main() -> list[int]:
        assert tcpstream.IdleConnections.current() is None
        return [await _records(primary.host, primary.port, zone) for zone in ZONES]

    assert asyncio.run(main()) == [4, 4, 4]


class _Primary:
    """An asyncio primary of every zone asked (SOA, NS, A, SOA), with a behaviour per
    connection: ``answers`` queries answered on one connection, then it is closed at
    once (``close_at_once``) or when the next query comes, unanswered (an idle
    timeout's race); ``extra``: a message nobody asked for after each answer."""

    def __init__(self, answers: int = 1_000, close_at_once: bool = True, extra: bool = False):
        self.answers = answers
        self.close_at_once = close_at_once
        self.extra = extra
        self.connections = 0
        self.queries = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            answered = 0
            while not (self.close_at_once and answered == self.answers):
                try:
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                    query = dns.message.from_wire(await reader.readexactly(length))
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.queries += 1
                if answered == self.answers:
                    return  # closed unanswered
                answered += 1
                wire = _axfr_answer(query)
                writer.write(struct.pack("!H", len(wire)) + wire)
                if self.extra:
                    writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
        finally:
            writer.close()


def _axfr_answer(query: dns.message.Message) -> bytes:
    origin = query.question[0].name
    response = dns.message.make_response(query)
    soa = dns.rrset.from_text(origin, 300, "IN", "SOA", f"ns1.{origin} h.{origin} 7 1 1 1 1")
    response.answer += [
        soa,
        dns.rrset.from_text(origin, 300, "IN", "NS", f"ns1.{origin}"),
        dns.rrset.from_text(f"ns1.{origin}", 300, "IN", "A", "192.0.2.1"),
        soa,
    ]
    return response.to_wire()


def _run(primary: _Primary, zones: tuple[str, ...] = ZONES) -> tuple[list[int], int]:
    async def main() -> tuple[list[int], int]:
        await primary.start()
        pool = tcpstream.IdleConnections.install()
        try:
            counts = []
            for zone in zones:
                counts.append(await _records("127.0.0.1", primary.port, zone))
                await asyncio.sleep(0.01)  # (what the primary does after its answer)
            return counts, pool.reused
        finally:
            pool.close()
            await primary.stop()

    return asyncio.run(main())


def test_a_primary_that_closes_after_each_answer_gets_a_new_connection_each_time():
    primary = _Primary(answers=1)
    counts, _reused = _run(primary)
    assert counts == [3, 3, 3]
    # (its close is seen when the connection is taken again; were it late, the query
    # sent on it would fail unanswered and the transfer be made on a new one)
    assert primary.connections == 3 and primary.queries == 3


def test_a_kept_connection_closed_as_it_is_used_again_is_replaced_at_once():
    # the primary reads the second query on a connection, then closes it unanswered:
    # the transfer is made again on a new connection, and succeeds
    primary = _Primary(answers=1, close_at_once=False)
    counts, reused = _run(primary)
    assert counts == [3, 3, 3]
    assert reused == 2 and primary.connections == 3 and primary.queries == 5


def test_a_primary_that_answers_on_one_connection_is_asked_on_it_again():
    primary = _Primary()
    counts, reused = _run(primary)
    assert counts == [3, 3, 3]
    assert reused == 2 and primary.connections == 1


def test_a_primary_that_sends_more_than_was_asked_is_not_asked_again_on_that_connection():
    primary = _Primary(extra=True)
    counts, reused = _run(primary)
    assert counts == [3, 3, 3]
    assert reused == 0 and primary.connections == 3 and primary.queries == 3


def test_idle_connections_are_closed_after_the_idle_time(bind_primary):
    primary = bind_primary({zone: _zone_text(zone) for zone in ZONES})

    async def main() -> tuple[int, int]:
        pool = tcpstream.IdleConnections.install(idle=0.2)
        try:
            await _records(primary.host, primary.port, ZONES[0])
            kept = pool.idle_count()
            await asyncio.sleep(0.6)
            return kept, pool.idle_count()
        finally:
            pool.close()

    assert asyncio.run(main()) == (1, 0)


def test_each_event_loop_keeps_its_own_connections(bind_primary):
    # (two serve instances in one process, as tests run them, each in its thread)
    primary = bind_primary({zone: _zone_text(zone) for zone in ZONES})
    found: list[tuple[int, int]] = []
    both_installed = threading.Barrier(2)

    async def main() -> None:
        pool = tcpstream.IdleConnections.install()
        await asyncio.to_thread(both_installed.wait, 10)
        try:
            for zone in ZONES:
                await _records(primary.host, primary.port, zone)
            assert tcpstream.IdleConnections.current() is pool
            found.append((pool.reused, pool.idle_count()))
        finally:
            pool.close()
        assert tcpstream.IdleConnections.current() is None

    threads = [threading.Thread(target=asyncio.run, args=(main(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert found == [(2, 1), (2, 1)]


def test_serve_stops_quietly_with_a_secondarys_connection_kept_open(tmp_path, caplog):
    # a secdns secondary keeps its connection to serve (as a primary) after a transfer:
    # serve stopping then ended the waiting handler by cancelling it, and asyncio's
    # streams (3.11) logged "Exception in callback ... CancelledError" with a traceback
    (tmp_path / "z.zone").write_text(_zone_text("example.com"))
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[
            {
                "name": "example.com",
                "file": str(tmp_path / "z.zone"),
                "allow_transfer": ["127.0.0.1"],
            }
        ],
    )
    caplog.set_level(logging.DEBUG)
    server = ServerThread(config)
    try:

        async def transfer_and_keep() -> None:
            pool = tcpstream.IdleConnections.install(idle=30)
            assert await _records("127.0.0.1", server.port, "example.com") == 4
            assert pool.idle_count() == 1
            await asyncio.to_thread(server.stop)  # with the connection still open
            pool.close()

        asyncio.run(transfer_and_keep())
    finally:
        server.stop()
    noisy = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not noisy, [r.getMessage() for r in noisy]


def test_signed_transfers_share_a_connection_too(bind_primary):
    key = make_key("xfr-key", "hmac-sha256", tsig_secret())
    primary = bind_primary(
        {zone: _zone_text(zone) for zone in ZONES},
        tsig={key.name: (key.algorithm, key.secret)},
        allow_transfer_key=key.name,
    )

    async def main() -> tuple[list[int], int]:
        pool = tcpstream.IdleConnections.install()
        try:
            counts = []
            for zone in ZONES:
                done = await engine.transfer(
                    dns.name.from_text(zone), primary.host, primary.port, XfrKind.AXFR, key=key
                )
                assert done.reader.zone is not None
                counts.append(len(done.reader.zone))
            return counts, pool.reused
        finally:
            pool.close()

    assert asyncio.run(main()) == ([4, 4, 4], 2)


def test_keep_connections_is_a_server_option(tmp_path):
    assert parse_config({}).server.keep_connections is True
    assert parse_config({"server": {"keep_connections": False}}).server.keep_connections is False
    with pytest.raises(ConfigError, match=r"server\.keep_connections: expected true or false"):
        parse_config({"server": {"keep_connections": "yes"}})
    # serve with it off keeps nothing: each transfer its own connection
    (tmp_path / "z.zone").write_text(_zone_text("example.com"))
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": "example.com", "file": str(tmp_path / "z.zone")}],
        keep_connections=False,
    )
    server = ServerThread(config)
    try:
        assert server.server is not None and server.server.connections is None
    finally:
        server.stop()
