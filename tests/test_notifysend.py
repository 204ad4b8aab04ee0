"""Our outgoing NOTIFYs (secdns.notifysend.NotifySender): one under way per zone and target,
a bounded number in flight to each target, and one warning per target that fails.

The targets here are bare UDP sockets on loopback that answer (or do not) as a test
needs: what is tested is what we send, and real downstream servers (BIND, Knot)
receiving serve's NOTIFYs are in test_serve.py and test_ops.py.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import dns.message
import dns.name
import dns.rrset
from servers import free_port

from secdns.notifysend import NotifySender

ZONE = dns.name.from_text("example.com.")


def soa(serial: int) -> dns.rrset.RRset:
    return dns.rrset.from_text(
        ZONE, 3600, "IN", "SOA", f"ns1.example.com. h.example.com. {serial} 7200 3600 1209600 300"
    )


class Target:
    """A NOTIFY target on loopback: what it received, answered only when told."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.received: list[tuple[dns.message.Message, tuple[str, int]]] = []

    def drain(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
            except BlockingIOError:
                return
            self.received.append((dns.message.from_wire(data), addr))

    def answer_all(self) -> None:
        self.drain()
        for message, addr in self.received:
            self.sock.sendto(dns.message.make_response(message).to_wire(), addr)
        self.received.clear()

    def close(self) -> None:
        self.sock.close()


def serial_of(message: dns.message.Message) -> int:
    return message.answer[0][0].serial


def test_changes_made_while_one_is_unacknowledged_ride_on_it():
    """Twenty quick changes of one zone make two NOTIFYs to a target, not twenty chains
    of retries: the first, and once it is acknowledged one more with the newest SOA."""
    target = Target()

    async def run() -> list[bool]:
        sender = NotifySender(first_timeout=2.0)
        sends = [asyncio.ensure_future(sender.send(ZONE, soa(1), "127.0.0.1", target.port))]
        await asyncio.sleep(0.1)  # sent: the next changes come while it is unacknowledged
        sends += [
            asyncio.ensure_future(sender.send(ZONE, soa(serial), "127.0.0.1", target.port))
            for serial in range(2, 21)
        ]
        await asyncio.sleep(0.2)
        target.drain()
        first = [serial_of(m) for m, _ in target.received]
        assert first == [1], first
        assert sender.under_way == 1
        target.answer_all()  # acknowledges serial 1: changes came since, so once more
        await asyncio.sleep(0.3)
        target.drain()
        again = [serial_of(m) for m, _ in target.received]
        assert again == [20], again
        target.answer_all()
        results = await asyncio.gather(*sends)
        assert sender.under_way == 0
        return [result.acknowledged for result in results]

    try:
        assert asyncio.run(run()) == [True] * 20
    finally:
        target.close()


def test_a_retry_carries_the_newest_soa():
    target = Target()

    async def run() -> None:
        sender = NotifySender(first_timeout=0.2)
        first = asyncio.ensure_future(sender.send(ZONE, soa(1), "127.0.0.1", target.port))
        await asyncio.sleep(0.1)
        second = asyncio.ensure_future(sender.send(ZONE, soa(2), "127.0.0.1", target.port))
        # the first send times out unanswered; its retry is the newest change
        for _ in range(100):
            await asyncio.sleep(0.05)
            target.drain()
            if len(target.received) >= 2:
                break
        assert [serial_of(m) for m, _ in target.received][:2] == [1, 2]
        target.answer_all()
        results = await asyncio.gather(first, second)
        assert [r.acknowledged for r in results] == [True, True]

    try:
        asyncio.run(run())
    finally:
        target.close()


def test_in_flight_to_one_target_is_bounded_and_holds_back_no_other():
    """10 zones to a target that never answers: 3 in flight (the limit), the rest wait
    without a socket; a NOTIFY to another target goes at once and is acknowledged."""
    silent = Target()
    healthy = Target()

    async def run() -> None:
        sender = NotifySender(3, first_timeout=5.0)
        zones = [dns.name.from_text(f"z{i}.example.") for i in range(10)]
        pending = [
            asyncio.ensure_future(sender.send(zone, None, "127.0.0.1", silent.port))
            for zone in zones
        ]
        other = asyncio.ensure_future(sender.send(zones[0], None, "127.0.0.1", healthy.port))
        await asyncio.sleep(0.3)
        silent.drain()
        assert len(silent.received) == 3
        healthy.answer_all()
        assert (await asyncio.wait_for(other, 2.0)).acknowledged
        for task in sender.close():
            await asyncio.gather(task, return_exceptions=True)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    try:
        asyncio.run(run())
    finally:
        silent.close()
        healthy.close()


def test_a_target_that_is_down_is_one_warning(caplog):
    """A downstream that is down when 5 zones change: one warning naming it, the other
    zones' give-ups at info; once it acknowledges one, its next failure warns again."""
    port = free_port()  # nobody listens: each send is refused at once

    counted: list[tuple[str, str]] = []

    async def run() -> None:
        sender = NotifySender(
            attempts=2, first_timeout=0.05, counted=lambda *pair: counted.append(pair)
        )
        zones = [dns.name.from_text(f"z{i}.example.") for i in range(5)]
        results = await asyncio.gather(
            *(sender.send(zone, None, "127.0.0.1", port) for zone in zones)
        )
        assert [r.acknowledged for r in results] == [False] * 5
        assert all("refused" in (r.error or "") for r in results), results

    with caplog.at_level(logging.INFO, logger="secdns.notifysend"):
        asyncio.run(run())
    failures = [r for r in caplog.records if "never acknowledged" in r.getMessage()]
    assert len(failures) == 5
    warnings = [r for r in failures if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert f"127.0.0.1:{port}" in warnings[0].getMessage()
    assert "logged at info until it acknowledges one" in warnings[0].getMessage()
    assert counted == [(f"127.0.0.1:{port}", "unreachable")] * 5  # refused, not a timeout


def test_what_a_target_missed_is_sent_again_when_it_answers():
    """A downstream down while 3 zones changed (each NOTIFY given up): it is tried again
    with one of them, and once it acknowledges that, the other two are NOTIFYed again
    with their SOAs (a stranger's Knot, restarted, stayed behind until its refresh)."""
    port = free_port()

    async def run() -> None:
        sender = NotifySender(attempts=1, first_timeout=2.0, missed_probe=0.3)  # (refused: at once)
        zones = [dns.name.from_text(f"z{i}.example.") for i in range(3)]
        given_up = await asyncio.gather(
            *(sender.send(zone, soa(7), "127.0.0.1", port) for zone in zones)
        )
        assert not any(r.acknowledged for r in given_up)
        assert sender.missed_counts() == {f"127.0.0.1:{port}": 3}
        back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        back.bind(("127.0.0.1", port))
        back.settimeout(0)
        seen: list[str] = []
        try:
            for _ in range(100):  # the probe (one zone), then the other two once answered
                await asyncio.sleep(0.05)
                try:
                    data, addr = back.recvfrom(65535)
                except BlockingIOError:
                    if len(seen) == 3:
                        break
                    continue
                message = dns.message.from_wire(data)
                seen.append(message.question[0].name.to_text())
                assert serial_of(message) == 7
                back.sendto(dns.message.make_response(message).to_wire(), addr)
        finally:
            back.close()
        assert sorted(seen) == sorted(z.to_text() for z in zones), seen
        assert sender.missed_counts() == {f"127.0.0.1:{port}": 0}  # (the series stays, at 0)
        for task in sender.close():
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())


def test_serve_raises_its_open_files_limit():
    """A soft limit of 1,024 (systemd's default) would cap NOTIFY sockets, TCP clients
    and kept connections together: serve raises it to the hard limit, as BIND does."""
    import resource
    import subprocess
    import sys

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        raise AssertionError(f"this machine's hard open-files limit is {hard}")

    def low() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    code = (
        "import resource; from secdns.server.server import raise_file_limit; "
        "raise_file_limit(); print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], preexec_fn=low, capture_output=True, text=True, check=True
    )
    assert int(out.stdout) > 256
