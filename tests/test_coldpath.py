"""serve's cold-start path for small zones: the shortcuts it takes give what the
general path gives (the names-below counts of a small zone, a connection made
without a wait on the selector, and one that has to wait or fails)."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from secdns.server import zone
from secdns.tcpstream import TcpStream


@pytest.mark.parametrize("origin", ["example.", "a.b.example.", "x."])
def test_small_zone_names_below_match_the_general_count(origin):
    rng = random.Random(origin)
    labels = ["a", "b", "c", "www", "_tcp", "*", "xn--bcher-kva"]
    for _ in range(500):
        groups: dict[str, list[str]] = {} if rng.random() < 0.3 else {origin: []}
        for _ in range(rng.randint(0, zone.SMALL_NAMES)):
            depth = rng.randint(1, 5)
            groups[".".join(rng.choice(labels) for _ in range(depth)) + "." + origin] = []
        general = zone._add_below(zone._parents_counted(groups, origin), origin)
        assert zone._small_names_below(groups, origin) == dict(general)
        assert zone._names_below(groups, origin) == dict(general)


@pytest.mark.parametrize(
    "keys",
    [
        ["example.", "a\\.b.example."],  # an escaped dot: the general walk
        ["example.", "elsewhere."],  # outside the zone: not walked up (it would never end)
    ],
)
def test_small_zone_names_below_leave_odd_keys_to_the_general_count(keys):
    groups: dict[str, list[str]] = {key: [] for key in keys}
    assert zone._small_names_below(groups, "example.") is None
    assert zone._names_below(groups, "example.") == dict(
        zone._add_below(zone._parents_counted(groups, "example."), "example.")
    )


def test_root_zone_names_below_take_the_general_count():
    groups: dict[str, list[str]] = {".": [], "com.": [], "a.com.": []}
    assert zone._small_names_below(groups, ".") is None
    assert zone._names_below(groups, ".") == {".": 2, "com.": 1}


def test_small_version_answers_its_names_below():
    lines = [
        "@ 3600 IN SOA ns1 hostmaster 5 7200 3600 1209600 3600",
        "@ 3600 IN NS ns1",
        "a.b.c 3600 IN A 192.0.2.1",
        "ns1 3600 IN A 192.0.2.2",
    ]
    version = zone.ZoneVersion.from_lines(zone.dns.name.from_text("example."), lines)
    assert version.entry("example.") == (tuple(lines[:2]), 2)
    assert version.entry("c.example.") == ((), 1)  # an empty non-terminal
    assert version.entry("b.c.example.") == ((), 1)
    assert version.entry("a.b.c.example.") == ((lines[2],), 0)
    assert version.serial == 5 and version.names == 3 and version.records == 4


def _listener() -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    return listener


def test_connect_made_at_once_reads_and_writes():
    async def run(port: int) -> bytes:
        stream = await TcpStream.connect("127.0.0.1", port)
        stream.write(b"\x00\x02hi")
        await stream.drain()
        try:
            return await stream.readexactly(4)
        finally:
            stream.close()

    with _listener() as listener:
        port = listener.getsockname()[1]

        async def both() -> bytes:
            task = asyncio.create_task(run(port))
            conn, _ = await asyncio.to_thread(listener.accept)
            with conn:
                data = await asyncio.to_thread(conn.recv, 10)
                conn.sendall(data)
                return await task

        assert asyncio.run(both()) == b"\x00\x02hi"


def test_connect_that_waits_is_cancelled_cleanly():
    """A connection still being made (a listener whose backlog is full) waits on
    the selector; cancelled there (a timeout), it leaves no writer registered."""
    with _FullBacklog() as address:

        async def run() -> None:
            registered = asyncio.get_running_loop()._selector.get_map()  # type: ignore[attr-defined]
            before = len(registered)  # (the loop's own wake-up pipe)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await TcpStream.connect(*address)
            assert len(registered) == before

        asyncio.run(run())


def test_connect_that_waits_then_succeeds(monkeypatch):
    real = socket.socket

    class Pending(real):  # type: ignore[misc,valid-type]
        def getpeername(self):
            raise OSError(107, "not connected")

    with _listener() as listener:
        port = listener.getsockname()[1]

        async def run() -> None:
            monkeypatch.setattr(socket, "socket", Pending)
            stream = await TcpStream.connect("127.0.0.1", port)
            monkeypatch.setattr(socket, "socket", real)
            stream.close()

        asyncio.run(run())


class _FullBacklog:
    """A listener whose backlog is full: a connection to it is never made."""

    def __enter__(self) -> tuple[str, int]:
        self.listener = _listener()
        self.listener.listen(0)
        address = self.listener.getsockname()
        self.fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(address)
            except BlockingIOError:
                pass
            self.fillers.append(filler)
        return address

    def __exit__(self, *exc: object) -> None:
        for filler in self.fillers:
            filler.close()
        self.listener.close()


@pytest.mark.parametrize(
    "timeout, lifetime, said",
    [
        (0.2, 30.0, "cannot connect within 0.2s"),
        (30.0, 0.2, "AXFR took longer than its lifetime of 0.2s"),
    ],
)
def test_a_connection_never_made_says_which_bound_ran_out(timeout, lifetime, said):
    import dns.name

    from secdns import engine
    from secdns.errors import TimeoutError_
    from secdns.xfr import XfrKind

    with _FullBacklog() as (host, port):
        with pytest.raises(TimeoutError_) as caught:
            asyncio.run(
                engine.transfer(
                    dns.name.from_text("example."),
                    host,
                    port,
                    XfrKind.AXFR,
                    timeout=timeout,
                    lifetime=lifetime,
                )
            )
    assert said in caught.value.message
    assert caught.value.server == f"{host}:{port}"


def test_a_scoped_ipv6_address_keeps_its_scope():
    """``fe80::1%lo`` is connected to with its scope, as ``loop.sock_connect`` resolves
    it (a pair would make the kernel say EINVAL)."""
    from secdns import tcpstream

    assert tcpstream._sockaddr("192.0.2.1", 53, socket.AF_INET) == ("192.0.2.1", 53)
    assert tcpstream._sockaddr("2001:db8::1", 53, socket.AF_INET6) == ("2001:db8::1", 53)
    try:
        scope = socket.if_nametoindex("lo")
    except OSError:
        pytest.skip("no loopback interface named lo")
    assert tcpstream._sockaddr("fe80::1%lo", 53, socket.AF_INET6) == ("fe80::1", 53, 0, scope)
