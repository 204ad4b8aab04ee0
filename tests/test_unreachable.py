"""Primaries held as unreachable after timeouts (secdns.unreachable, BIND's cache).

The cache's decisions against a clock of the test's; then serve and ``pull -c``
beside a silent primary (it takes connections and datagrams and never answers: no
real server does that on purpose, so a socket of the test's) and a real Knot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.name
import dns.rrset
import pytest
import tomli_w
from click.testing import CliRunner
from fakeprimary import silent_primary
from servers import zone_text
from serving import ServerThread, write_config

from secdns.cli import cli
from secdns.config import parse_config
from secdns.endpoints import parse_endpoint
from secdns.errors import ConfigError, TimeoutError_
from secdns.pull import probe_primaries
from secdns.unreachable import FIRST_HOLD, Unreachable


def small_zone(zone: str) -> str:
    return (
        f"$ORIGIN {zone}.\n$TTL 300\n@ IN SOA ns1 hostmaster 7 3600 600 86400 300\n"
        "@ IN NS ns1\nns1 IN A 192.0.2.1\n"
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def held_after_two_timeouts(clock: Clock, hold: float = 300.0) -> Unreachable:
    cache = Unreachable(hold, clock)
    for _ in range(2):
        assert cache.skip("192.0.2.1", 53) is None
        cache.tried("192.0.2.1", 53, heard=False)
    return cache


def test_two_timeouts_in_a_row_hold_an_address_and_an_answer_between_does_not():
    clock = Clock()
    cache = Unreachable(300.0, clock)
    cache.tried("192.0.2.1", 53, heard=False)
    assert cache.skip("192.0.2.1", 53) is None  # one timeout: a lost packet, perhaps
    cache.tried("192.0.2.1", 53, heard=True)  # anything heard: the count starts again
    cache.tried("192.0.2.1", 53, heard=False)
    assert cache.skip("192.0.2.1", 53) is None
    cache.tried("192.0.2.1", 53, heard=False)
    why = cache.skip("192.0.2.1", 53)
    assert why is not None and "held as unreachable until" in why and "timed out" in why
    assert cache.skip("192.0.2.1", 5300) is None  # another port, another primary
    assert cache.skip("192.0.2.2", 53) is None
    assert list(cache.counts()) == [("192.0.2.1:53", True, 1, 0)]


def test_after_one_timeout_no_try_is_added_while_others_are_under_way():
    """Eight tries at once of a silent primary: the slot the first timeout frees must not
    go to it again before the others have told (a stranger's pull -c of 50 zones took
    two timeouts, not one)."""
    cache = Unreachable(300.0, Clock())
    for _ in range(8):
        assert cache.skip("192.0.2.1", 53) is None
    cache.tried("192.0.2.1", 53, heard=False)
    assert "another is under way" in (cache.skip("192.0.2.1", 53) or "")
    told: list[tuple[str, int, bool]] = []
    cache.ready = lambda *args: told.append(args)
    for _ in range(6):
        cache.tried("192.0.2.1", 53, heard=True)  # the others answered: not held after all
    cache.tried("192.0.2.1", 53, heard=True)
    assert cache.skip("192.0.2.1", 53) is None
    assert list(cache.counts()) == [("192.0.2.1:53", False, 1, 0)]  # never held; one skipped
    assert told == [("192.0.2.1", 53, True)]  # the zone skipped meanwhile is checked now


def test_a_hold_ends_in_one_try_then_doubles_up_to_the_longest():
    clock = Clock()
    cache = held_after_two_timeouts(clock, hold=100.0)
    clock.now += FIRST_HOLD
    assert cache.skip("192.0.2.1", 53) is None  # the one try after the hold
    skipped = cache.skip("192.0.2.1", 53) or ""
    assert "a try of it is under way" in skipped and "ctl refresh tries at once" not in skipped
    cache.tried("192.0.2.1", 53, heard=False)
    clock.now += 2 * FIRST_HOLD - 1
    assert cache.skip("192.0.2.1", 53) is not None  # held 60 s this time
    clock.now += 1
    assert cache.skip("192.0.2.1", 53) is None
    cache.tried("192.0.2.1", 53, heard=False)
    clock.now += 99
    assert cache.skip("192.0.2.1", 53) is not None  # 100 s: the longest
    clock.now += 1
    assert cache.skip("192.0.2.1", 53) is None
    cache.tried("192.0.2.1", 53, heard=True)  # it answers again: forgotten
    assert cache.skip("192.0.2.1", 53) is None
    assert list(cache.counts()) == [("192.0.2.1:53", False, 3, 0)]  # (the count stays)


def test_a_cancelled_try_lets_the_next_one_go():
    clock = Clock()
    cache = held_after_two_timeouts(clock)
    clock.now += FIRST_HOLD
    assert cache.skip("192.0.2.1", 53) is None
    cache.tried("192.0.2.1", 53, heard=None)  # (a zone removed, serve stopping)
    assert cache.skip("192.0.2.1", 53) is None


def test_a_notify_tries_only_its_zones_primary_ports_and_a_timeout_holds_again_doubled():
    """A NOTIFY from a held primary (or ctl refresh) lets one try go at once; the others
    wait for it.  Its timeout holds the primary again at once for twice as long (a
    stranger's ctl refresh started the hold over at 30 s, and warned again); its
    answer ends the hold, and the skipped count stays (a counter does not vanish)."""
    clock = Clock()
    cache = held_after_two_timeouts(clock)
    cache.forget("192.0.2.1", {5300})
    assert cache.skip("192.0.2.1", 53) is not None
    cache.forget("192.0.2.1", {53})
    assert cache.skip("192.0.2.1", 53) is None  # the NOTIFYed zone's try
    assert "another is under way" in (cache.skip("192.0.2.1", 53) or "")
    cache.tried("192.0.2.1", 53, heard=False)
    clock.now += 2 * FIRST_HOLD - 1
    assert "held as unreachable until" in (cache.skip("192.0.2.1", 53) or "")
    clock.now += 1
    assert cache.skip("192.0.2.1", 53) is None
    cache.tried("192.0.2.1", 53, heard=True)
    assert list(cache.counts()) == [("192.0.2.1:53", False, 3, 0)]


def test_tries_under_way_as_the_hold_begins_do_not_lengthen_it():
    clock = Clock()
    cache = held_after_two_timeouts(clock)
    for _ in range(6):  # the other slots' tries, ending together
        cache.tried("192.0.2.1", 53, heard=False)
    clock.now += FIRST_HOLD
    assert cache.skip("192.0.2.1", 53) is None


def test_one_first_try_at_a_time_of_a_primary_not_heard_from():
    """Serve's and watch's checks ask admit() holding a slot: the first of a primary
    neither heard from nor timed out goes (the probe), the others wait for it without
    a slot; then every check goes, skip() deciding after a timeout."""

    async def main() -> None:
        clock = Clock()
        cache = Unreachable(300.0, clock)
        silent, other = ("192.0.2.1", 53), ("192.0.2.2", 53)
        probe = cache.admit([silent])
        assert callable(probe) and not isinstance(probe, asyncio.Future)
        waiting = cache.admit([silent])
        assert isinstance(waiting, asyncio.Future) and not waiting.done()
        # its preferred primary's first try under way: waits, the next one not known yet
        assert isinstance(cache.admit([silent, other]), asyncio.Future)
        assert cache.admit([]) is None  # primaries named by host name: not gated
        assert cache.skip(*silent) is None
        cache.tried(*silent, heard=False)
        probe()
        assert waiting.done()  # asks again: it timed out, skip() decides from here
        assert cache.admit([silent]) is None
        assert cache.skip(*silent) is None  # (the second try: the others fail at once)
        cache.tried(*silent, heard=True)
        assert cache.admit([silent]) is None  # it answers: every check goes
        cancelled = cache.admit([other])
        assert callable(cancelled)
        gone = cache.admit([other])
        assert isinstance(gone, asyncio.Future)
        gone.cancel()  # (a zone removed while it waited)
        cancelled()
        probe = cache.admit([other])
        assert callable(probe)
        cache.forget(*other[:1], {53}, up=False)  # ctl refresh: it asks, nothing was heard
        assert isinstance(cache.admit([other]), asyncio.Future)
        cache.forget(*other[:1], {53})  # a NOTIFY from it: heard
        assert cache.admit([other]) is None
        probe()

    asyncio.run(main())


def test_a_primary_back_wakes_the_failing_zones_that_list_its_address():
    """Serve gives each zone's primaries as resolved at its start (a host name's
    addresses too): a primary back after a hold wakes exactly its failing zones."""
    from secdns.unreachable import wake_failing

    class Zone:
        def __init__(self, failures: int) -> None:
            self.failures = failures
            self.woken = 0

        def recheck(self) -> None:
            self.woken += 1

    by_name, by_address, other, fine = Zone(3), Zone(1), Zone(2), Zone(0)
    pairs = [
        ((("127.0.0.1", 5300), ("::1", 5300)), by_name),  # "localhost:5300", resolved
        ((("192.0.2.9", 53), ("127.0.0.1", 5300)), by_address),
        ((("127.0.0.1", 53),), other),  # another port: another primary
        ((("127.0.0.1", 5300),), fine),  # not failing: left to its timer
    ]
    wake_failing(pairs, "127.0.0.1", 5300, every=False)
    assert [z.woken for z in (by_name, by_address, other, fine)] == [1, 0, 0, 0]
    wake_failing(pairs, "127.0.0.1", 5300, every=True)
    assert [z.woken for z in (by_name, by_address, other, fine)] == [2, 1, 0, 0]


def test_a_zone_whose_next_primary_answers_goes_on_to_it_during_a_first_try():
    """While one zone makes the first try of a primary not heard from, a zone listing it
    first waits too, unless a later primary of its has answered: it then passes over the
    first one and tries that one; the zone making the try (its own task) goes."""

    async def main() -> None:
        cache = Unreachable(300.0, Clock())
        silent, other = ("192.0.2.1", 53), ("192.0.2.2", 53)
        go = asyncio.Event()

        async def failover_zone() -> tuple[object, str | None, str | None]:
            await go.wait()
            admitted = cache.admit([silent, other])
            passed = cache.skip(*silent, True)
            tried = cache.skip(*other, False)
            cache.tried(*other, heard=True)
            return admitted, passed, tried

        task = asyncio.create_task(failover_zone())  # (its own context, as a zone's task)
        probe = cache.admit([silent])
        assert callable(probe)
        assert isinstance(cache.admit([silent, other]), asyncio.Future)  # other: not known
        assert cache.skip(*other) is None
        cache.tried(*other, heard=True)  # other answers (a zone of its own)
        go.set()
        admitted, passed, tried = await task
        assert admitted is None
        assert passed is not None and "another zone's first try" in passed
        assert tried is None
        assert cache.skip(*silent, True) is None  # the probing task's own try goes
        probe()

    asyncio.run(main())


def test_a_notify_clears_only_the_primary_it_can_come_from():
    """A NOTIFY names no port: two primaries of a zone on one address cannot be told
    apart, and neither is cleared (a stranger's held one was tried on the other's)."""
    from secdns.unreachable import notify_ports

    assert notify_ports("192.0.2.1", [("192.0.2.1", 53), ("192.0.2.2", 5300)]) == {53}
    assert notify_ports("127.0.0.1", [("127.0.0.1", 24053), ("127.0.0.1", 24054)]) == set()
    assert notify_ports("192.0.2.9", [("192.0.2.1", 53)]) == set()


def test_a_primary_that_refuses_is_never_held_but_its_failed_tries_are_counted():
    """A refusal is an answer: the zone fails over at once and the primary is not held,
    so only the log said it was down (a stranger's preferred primary, killed, showed
    in no status and no metric); its failed tries are now a counter."""
    cache = Unreachable(300.0, Clock())
    for _ in range(3):
        assert cache.skip("192.0.2.1", 53, True) is None
        cache.tried("192.0.2.1", 53, heard=True, failed=True)
    assert cache.skip("192.0.2.2", 53) is None
    cache.tried("192.0.2.2", 53, heard=True)
    assert list(cache.counts()) == [("192.0.2.1:53", False, 0, 3)]
    failing = {"primary": "192.0.2.1:53", "state": "failing", "until": None, "skipped": 0}
    assert cache.holds() == [{**failing, "failures": 3}]  # (ctl status names it)
    assert cache.skip("192.0.2.1", 53) is None
    cache.tried("192.0.2.1", 53, heard=True)  # it answers again
    assert cache.holds() == []


def test_a_refusing_primary_is_probed_and_its_first_answer_wakes_its_zones(monkeypatch):
    """A primary that refuses (its server stopped) is not held, but its failing zones
    would wait out their doubled SOA retries after it came back (a stranger's stayed
    retrying for minutes): one of them is checked after DOWN_PROBE, doubling, and the
    first answer from it, or a NOTIFY, checks all of them."""
    from secdns import unreachable

    monkeypatch.setattr(unreachable, "DOWN_PROBE", 0.05)
    told: list[tuple[str, int, bool]] = []
    failing = [True]

    def ready(address: str, port: int, every: bool) -> bool:
        told.append((address, port, every))
        return failing[0]

    async def run() -> None:
        cache = Unreachable.install(0.2, ready)
        assert cache is not None
        try:
            cache.tried("192.0.2.1", 53, heard=True, failed=True, down=True)
            cache.tried("192.0.2.1", 53, heard=True, failed=True, down=True)  # (one probe)
            cache.tried("192.0.2.2", 53, heard=True, failed=True)  # a REFUSED: not down
            await asyncio.sleep(0.08)
            assert told == [("192.0.2.1", 53, False)]  # one zone checked after 0.05 s
            await asyncio.sleep(0.1)
            assert told == [("192.0.2.1", 53, False)] * 2  # again after 0.1 s
            cache.tried("192.0.2.1", 53, heard=True, failed=True)  # answered (REFUSED)
            assert told[-1] == ("192.0.2.1", 53, True)  # every failing zone checked now
            await asyncio.sleep(0.3)
            assert len(told) == 3  # no probe once it answers
            cache.tried("192.0.2.3", 53, heard=True, failed=True, down=True)
            cache.forget("192.0.2.3", [53])  # a NOTIFY from it
            assert told[-1] == ("192.0.2.3", 53, True)
            failing[0] = False  # no zone failing on it: the probes stop
            cache.tried("192.0.2.4", 53, heard=True, failed=True, down=True)
            await asyncio.sleep(0.3)
            assert told[-1] == ("192.0.2.4", 53, False) and len(told) == 5
        finally:
            cache.close()

    asyncio.run(run())


def test_serve_checks_the_zones_of_a_refusing_primary_once_it_answers(
    knot_primary, tmp_path, monkeypatch
):
    """Zones served from a primary that then stops (refusing) fail and wait out their
    SOA retry (600 s here); when it starts again, without a NOTIFY, they are checked
    within a probe's delay (a stranger's stayed retrying for minutes)."""
    from secdns import unreachable

    monkeypatch.setattr(unreachable, "DOWN_PROBE", 1.5)
    names = [f"down{i}.example" for i in range(4)]
    primary = knot_primary({name: small_zone(name) for name in names})
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": name, "primaries": [primary.addr]} for name in names],
    )
    server = ServerThread(config, log_queries=False)
    try:
        for name in names:
            server.wait_serial(name, 7, timeout=10)
        primary.stop()
        for name in names:
            refreshed = CliRunner().invoke(cli, ["ctl", "-c", str(config), "refresh", name])
            assert refreshed.exit_code != 0 and "connection refused" in refreshed.output
        statuses = server.server.operations.zones.statuses()
        assert {s.state for s in statuses} == {"retrying"}
        waits = [s.next_refresh - time.time() for s in statuses]
        port = int(primary.addr.rsplit(":", 1)[1])
        began = time.monotonic()
        knot_primary({name: small_zone(name).replace(" 7 ", " 8 ") for name in names}, port=port)
        for name in names:
            server.wait_serial(name, 8, timeout=15)
        elapsed = time.monotonic() - began
        assert elapsed < 6 and min(waits) > 100, (elapsed, waits)
        assert {s.state for s in server.server.operations.zones.statuses()} == {"ok"}
        print(f"served {elapsed:.2f}s after the primary's start")
    finally:
        server.stop()


def test_unreachable_hold_is_a_server_option():
    assert parse_config({}).server.unreachable_hold == 300.0
    assert parse_config({"server": {"unreachable_hold": 0}}).server.unreachable_hold == 0.0
    with pytest.raises(ConfigError, match=r"server\.unreachable_hold: expected seconds"):
        parse_config({"server": {"unreachable_hold": "10m"}})
    for value in (float("nan"), float("inf"), -1):  # (TOML has nan and inf)
        with pytest.raises(ConfigError, match=r"server\.unreachable_hold: expected seconds"):
            parse_config({"server": {"unreachable_hold": value}})


def test_probing_a_held_primary_fails_at_once_naming_it():
    async def main() -> tuple[float, str]:
        cache = Unreachable.install(300.0)
        assert cache is not None
        try:
            cache.tried("127.0.0.1", 9, heard=False)
            cache.tried("127.0.0.1", 9, heard=False)
            began = time.monotonic()
            with pytest.raises(TimeoutError_) as caught:
                await probe_primaries(
                    dns.name.from_text("example.com"), [parse_endpoint("127.0.0.1:9")]
                )
            return time.monotonic() - began, caught.value.one_line()
        finally:
            cache.close()

    elapsed, line = asyncio.run(main())
    assert elapsed < 0.5
    assert line.startswith("zone example.com., server 127.0.0.1:9: not tried: held as unreachable")


def test_serve_holds_a_silent_primary_and_a_notify_of_another_is_not_kept_waiting(
    knot_primary, tmp_path, monkeypatch
):
    """Twelve zones of a silent primary, two transfer slots, a 4 s timeout: before the
    cache, its zones' retries held both slots nearly always, and a NOTIFY of the zone
    of a healthy primary waited for one (a stranger's 40 such zones among 400 made
    the healthy zones' NOTIFYs wait 30-40 s)."""
    from servers import free_port

    port = free_port()
    zone = "example.com"
    primary = knot_primary({zone: zone_text(zone)}, notify=[("127.0.0.1", port)])
    with silent_primary() as (silent, taken):
        silent_zones = [{"name": f"s{i}.example", "primaries": [silent]} for i in range(12)]
        config = write_config(
            tmp_path / "secdns.toml",
            directory=tmp_path / "store",
            zones=[*silent_zones, {"name": zone, "primaries": [primary.addr]}],
            port=port,
            concurrency=2,
            timeout=4,
        )
        server = ServerThread(config, log_queries=False)
        try:
            serial = primary.soa_serial(zone)
            server.wait_serial(zone, serial, timeout=20)
            assert server.server is not None
            zones = server.server.operations.zones
            deadline = time.monotonic() + 20
            while True:  # every silent zone has been tried, most of them skipped
                errors = [s.last_error or "" for s in zones.statuses() if s.zone != f"{zone}."]
                if all(errors) and sum("not tried" in e for e in errors) >= 10:
                    break
                assert time.monotonic() < deadline, errors
                time.sleep(0.1)
            metrics = server.server.operations.metrics.exposition().decode()
            assert f'secdns_primary_unreachable{{primary="{silent}"}} 1.0' in metrics
            # the zones' tries skipped, not failed (their primary's hold is the warning)
            assert metrics.count('kind="axfr",result="skipped"') >= 8, metrics
            failed = re.search(rf'secdns_primary_failed_total{{primary="{silent}"}} (\S+)', metrics)
            assert failed is not None and float(failed.group(1)) >= 2, metrics  # its timeouts
            # ctl status names the primary once, not only in each of its zones' errors
            ctl = ["ctl", "-c", str(config), "status"]
            listed = json.loads(CliRunner().invoke(cli, [*ctl, "--json"]).output)
            (held,) = listed["primaries"]
            assert held["primary"] == silent and held["state"] == "held", held
            assert held["until"] > time.time() and held["failures"] >= 2, held
            assert held["skipped"] >= 8, held
            with monkeypatch.context() as patched:
                patched.setattr("secdns.output.use_rich", lambda stream=None: True)
                shown = CliRunner().invoke(cli, ctl).output
            assert f"primary {silent} held as unreachable: until " in shown, shown
            primary.nsupdate(f"update add new.{zone}. 300 A 192.0.2.77", zone=zone)
            began = time.monotonic()
            server.wait_serial(zone, serial + 1, timeout=10)
            assert time.monotonic() - began < 2.0  # not behind a 4 s timeout
            assert taken[0] <= 3, taken  # the two first tries (and a third at most)
        finally:
            server.stop()


def test_a_cold_start_beside_a_silent_primary_does_not_wait_its_timeout(knot_primary, tmp_path):
    """Sixteen zones of a silent primary, four of Knot's and eight listing the silent
    primary first and Knot second, two transfer slots, a 4 s timeout: the silent
    primary's zones took both slots at the start, and the healthy zones waited a whole
    timeout (a stranger's 360 zones beside 40 silent ones: 5.8 s against 0.5 s; a
    second stranger's failover zones each tried it, holding every slot).  Now one try
    of it at a time learns that it does not answer, the others waiting without a slot."""
    healthy = [f"h{i}.example" for i in range(4)]
    failover = [f"f{i}.example" for i in range(8)]
    names = healthy + failover
    primary = knot_primary({name: small_zone(name) for name in names})
    with silent_primary() as (silent, taken):
        silent_zones = [{"name": f"s{i}.example", "primaries": [silent]} for i in range(16)]
        config = write_config(
            tmp_path / "secdns.toml",
            directory=tmp_path / "store",
            zones=[
                *silent_zones,
                *({"name": n, "primaries": [primary.addr]} for n in healthy),
                *({"name": n, "primaries": [silent, primary.addr]} for n in failover),
            ],
            concurrency=2,
            timeout=4,
        )
        began = time.monotonic()
        server = ServerThread(config, log_queries=False)
        try:
            for name in healthy:
                server.wait_serial(name, 7, timeout=20)
            elapsed = time.monotonic() - began
            assert elapsed < 3.0, elapsed  # (before: 4 s and more, the silent zones' timeout)
            assert taken[0] <= 1, taken  # one try at a time
            # the zones listing it first wait for that try, without a slot, then go on
            # to Knot (their preferred primary is not passed over for a try under way)
            for name in failover:
                server.wait_serial(name, 7, timeout=20)
            assert time.monotonic() - began < 3 * 4 + 3
            assert server.server is not None
            states = {s.zone: s.state for s in server.server.operations.zones.statuses()}
            assert all(states[f"s{i}.example."] != "ok" for i in range(16)), states
            assert taken[0] <= 2, taken  # the first try, then the one after its timeout
        finally:
            server.stop()


def test_a_refusing_preferred_primary_is_named_in_status_and_metrics(
    knot_primary, tmp_path, monkeypatch
):
    """Zones listing a closed port first and Knot second fail over at once, and the
    closed port is never held: ctl status names it as failing, the metrics count its
    failed tries (a stranger's killed preferred PowerDNS showed only in the log)."""
    from servers import free_port

    names = [f"r{i}.example" for i in range(3)]
    primary = knot_primary({name: small_zone(name) for name in names})
    closed = f"127.0.0.1:{free_port()}"
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": n, "primaries": [closed, primary.addr]} for n in names],
        metrics_listen=f"127.0.0.1:{free_port()}",
    )
    server = ServerThread(config, log_queries=False)
    try:
        for name in names:
            server.wait_serial(name, 7, timeout=10)
        assert server.server is not None
        metrics = server.server.operations.metrics.exposition().decode()
        assert f'secdns_primary_failed_total{{primary="{closed}"}} 3.0' in metrics, metrics
        assert f'secdns_primary_unreachable{{primary="{closed}"}} 0.0' in metrics
        ctl = ["ctl", "-c", str(config), "status"]
        (listed,) = json.loads(CliRunner().invoke(cli, [*ctl, "--json"]).output)["primaries"]
        assert listed["primary"] == closed and listed["state"] == "failing", listed
        with monkeypatch.context() as patched:
            patched.setattr("secdns.output.use_rich", lambda stream=None: True)
            shown = CliRunner().invoke(cli, ctl).output
        assert f"primary {closed} failing: its last 3 tries failed" in shown, shown
        # piped: the same, as a line of its own after the zones' (a stranger's was lost)
        piped = CliRunner().invoke(cli, ctl).output.splitlines()
        assert [line.split()[0] for line in piped[:3]] == [f"zone={n}." for n in names]
        assert piped[3:] == [f"primary={closed} state=failing until=- skipped=0 failures=3"]
    finally:
        server.stop()


def test_a_stop_does_not_wait_on_a_primary_that_never_answered(tmp_path):
    """A check of a primary that has not answered since the start transfers nothing: a
    stop cancels it, and the zones queued behind it, at once (every stop beside a
    silent primary waited up to 5 s for its try's timeout)."""
    with silent_primary() as (silent, _taken):
        config = write_config(
            tmp_path / "secdns.toml",
            directory=tmp_path / "store",
            zones=[{"name": f"s{i}.example", "primaries": [silent]} for i in range(6)],
            concurrency=2,
            timeout=8,
        )
        server = ServerThread(config, log_queries=False)
        time.sleep(1.0)  # (the first try under way, the others waiting)
        assert server.server is not None
        checking = [r for r in server.server.runtimes.values() if r.refresher.checking]
        assert checking, "no try under way"
        began = time.monotonic()
        server.stop()
        assert time.monotonic() - began < 2.0


def test_pull_c_fails_over_from_a_held_primary_without_waiting_on_it(knot_primary, tmp_path):
    """Each zone lists the silent primary first: the first two wait its timeout, the
    others go straight to the next primary (before: each waited, 8 zones x 3 s / 2)."""
    names = [f"z{i}.example" for i in range(8)]
    primary = knot_primary({name: small_zone(name) for name in names})
    with silent_primary() as (silent, taken):
        doc = {
            # (pull -c takes the config's timeout: a stranger's was ignored for --timeout's)
            "server": {"directory": str(tmp_path / "store"), "concurrency": 2, "timeout": 3},
            "zone": [{"name": name, "primaries": [silent, primary.addr]} for name in names],
        }
        (tmp_path / "secdns.toml").write_text(tomli_w.dumps(doc))
        began = time.monotonic()
        result = CliRunner().invoke(cli, ["pull", "-c", str(tmp_path / "secdns.toml")])
        elapsed = time.monotonic() - began
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "store").glob("*.zone"))) == len(names)
    assert elapsed < 9, elapsed  # one timeout (two zones at once), not four
    assert taken[0] <= 3, taken


@contextlib.contextmanager
def losing_primary(lost: int, keyring: dict | None = None) -> Iterator[tuple[int, list[float]]]:
    """A UDP port that drops the first ``lost`` SOA queries and answers the next; the
    times the queries came (a list filled as they come)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(0.1)
        came: list[float] = []
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    data, peer = udp.recvfrom(65535)
                except TimeoutError:
                    continue
                came.append(time.monotonic())
                if len(came) <= lost:
                    continue
                query = dns.message.from_wire(data, keyring=keyring)
                reply = dns.message.make_response(query)
                reply.flags |= dns.flags.AA
                reply.answer.append(
                    dns.rrset.from_text(
                        query.question[0].name,
                        300,
                        "IN",
                        "SOA",
                        "ns1.example.com. host.example.com. 7 3600 600 86400 300",
                    )
                )
                udp.sendto(reply.to_wire(), peer)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield udp.getsockname()[1], came
        finally:
            stop.set()
            thread.join(5)


@pytest.mark.parametrize("key", [False, True])
def test_a_lost_soa_datagram_is_sent_again_within_the_timeout(key):
    """As BIND and dig do: one lost datagram costs a third of the timeout, not the
    refresh (and it is no timeout towards holding the primary)."""
    from secdns.engine import probe_soa
    from secdns.keys import make_key

    tsig = make_key("k", "hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0") if key else None
    keyring = tsig.to_dnspython() if tsig is not None else None
    with losing_primary(1, {keyring.name: keyring} if keyring else None) as (port, came):

        async def main():
            return await probe_soa(
                dns.name.from_text("example.com"), "127.0.0.1", port, key=tsig, timeout=1.5
            )

        began = time.monotonic()
        assert asyncio.run(main()).serial == 7
        elapsed = time.monotonic() - began
    assert len(came) == 2 and 0.4 < came[1] - came[0] < 0.7, came
    assert elapsed < 1.2


def test_a_held_primary_back_without_notify_has_its_zones_checked_at_once(
    knot_primary, tmp_path, monkeypatch, caplog
):
    """The zones of a held primary fail at each retry, their retries doubling; when a
    hold ends one of them tries it, and when it answers all of them are checked at
    once (a stranger's 40 zones back after a 300 s hold loaded over 217 s)."""
    from secdns import unreachable

    caplog.set_level(logging.INFO)
    monkeypatch.setattr(unreachable, "FIRST_HOLD", 4.0)
    names = [f"back{i}.example" for i in range(4)]
    with silent_primary() as (silent, _taken):
        address, port_text = silent.rsplit(":", 1)
        port = int(port_text)
        config = write_config(
            tmp_path / "secdns.toml",
            directory=tmp_path / "store",
            zones=[{"name": name, "primaries": [silent]} for name in names],
            concurrency=4,
            timeout=1,
            unreachable_hold=4,
        )
        server = ServerThread(config, log_queries=False)
        try:
            assert server.server is not None and server.server.unreachable is not None
            cache = server.server.unreachable
            time.sleep(6)  # held, tried, held again
            deadline = time.monotonic() + 20
            while True:  # a hold that has just begun: the primary comes back during it
                entry = cache._entries.get((address, port))
                if entry is not None and entry.until - time.monotonic() > 3.3:
                    break
                assert time.monotonic() < deadline
                time.sleep(0.02)
            statuses = server.server.operations.zones.statuses()
            waits = [s.next_refresh - time.time() for s in statuses if s.next_refresh]
        except BaseException:
            server.stop()
            raise
    try:
        began = time.monotonic()
        knot_primary({name: small_zone(name) for name in names}, port=port)
        for name in names:
            server.wait_serial(name, 7, timeout=15)
        elapsed = time.monotonic() - began
        assert elapsed < 5.5, (elapsed, waits)  # the hold's end, one try, then every zone
        # (their own timers: the hold's end at the earliest, a check that tries no
        # primary adding no failure; their next check after it fails would double)
        assert min(waits) > 0, waits
        # no NOTIFY came: none is named (a stranger read "via AXFR ... (NOTIFY)")
        said = [r.getMessage() for r in caplog.records if "refresh: zone=back" in r.getMessage()]
        loaded = [line for line in said if " -> " in line or "NOTIFY, but" in line]
        assert len(loaded) == len(names) and not [x for x in loaded if "NOTIFY" in x], loaded
        warned = [r for r in caplog.records if "held as unreachable for" in r.getMessage()]
        assert [r.levelname for r in warned][:1] == ["WARNING"]  # the first hold
        assert all(r.levelname == "INFO" for r in warned[1:]), warned  # later ones
    finally:
        server.stop()


def test_a_zones_own_failure_does_not_list_its_primary_as_failing():
    """ctl status lists a primary as failing for its own failures (no answer, no server),
    not for one zone's (a wrong key, an ACL): a stranger's zone with a wrong key had the
    primary serving 397 other zones listed as failing; nor does secdns_primary_failed_total
    count them (another stranger's alert on it blamed a primary serving 29 zones well)."""
    clock = Clock()
    cache = Unreachable(clock=clock)
    assert cache.skip("192.0.2.1", 53) is None
    cache.tried("192.0.2.1", 53, heard=True, failed=True, unwell=False)  # BADSIG
    assert cache.holds() == []
    assert cache.skip("192.0.2.1", 53) is None
    cache.tried("192.0.2.1", 53, heard=True, failed=True, down=True, unwell=True)  # refused
    (listed,) = cache.holds()
    assert listed["state"] == "failing" and listed["failures"] == 1
    assert [failed for *_, failed in cache.counts()] == [1]


def test_keep_only_forgets_the_addresses_no_zone_uses():
    clock = Clock()
    cache = held_after_two_timeouts(clock)
    assert cache.skip("192.0.2.2", 53) is None
    cache.tried("192.0.2.2", 53, heard=True, failed=True)  # failing (refused), not held
    cache.keep_only({("192.0.2.2", 53)})
    assert [row["primary"] for row in cache.holds()] == ["192.0.2.2:53"]
    assert [row[0] for row in cache.counts()] == ["192.0.2.2:53"]
    assert cache.skip("192.0.2.1", 53) is None  # a new zone of it would try it


def test_a_reload_drops_the_primaries_no_zone_uses_and_ctl_refresh_tries_a_held_one(
    knot_primary, tmp_path
):
    """A stranger moved its zones off a silent primary and reloaded: ``ctl status`` went
    on listing it held, and ``secdns_primary_unreachable`` 1, for good.  And its
    ``ctl refresh`` of a zone whose check was under way against the silent primary
    waited for that check, whose timeout held the primary again: "not tried: held"."""
    zone = "example.com"
    primary = knot_primary({zone: zone_text(zone)})
    with silent_primary() as (silent, _taken):
        zones = [{"name": f"s{i}.example", "primaries": [silent]} for i in range(3)]
        zones.append({"name": zone, "primaries": [primary.addr]})
        config = write_config(
            tmp_path / "secdns.toml", directory=tmp_path / "store", zones=zones, timeout=1
        )
        port = int(config.read_text().split("127.0.0.1:")[1].split('"')[0])
        server = ServerThread(config, log_queries=False)
        try:
            server.wait_serial(zone, primary.soa_serial(zone), timeout=20)
            ctl = ["ctl", "-c", str(config)]

            def primaries() -> list[dict[str, object]]:
                shown = CliRunner().invoke(cli, [*ctl, "status", "--json"]).output
                return json.loads(shown)["primaries"]

            deadline = time.monotonic() + 15
            while not any(p["primary"] == silent and p["state"] == "held" for p in primaries()):
                assert time.monotonic() < deadline, primaries()
                time.sleep(0.1)
            # ctl refresh while the zone's own try is under way (its hold over, as a
            # NOTIFY ends it): that try times out and holds it again; the refresh then
            # tries all the same, and says what it found (a timeout), not "not tried"
            assert server.server is not None and server.server.unreachable is not None
            cache = server.server.unreachable
            runtime = server.server.runtimes[dns.name.from_text("s0.example")]
            address, silent_port = silent.rsplit(":", 1)

            def try_now() -> None:
                cache.forget(address, (int(silent_port),), up=False)
                runtime.refresher.recheck()

            server.loop.call_soon_threadsafe(try_now)
            deadline = time.monotonic() + 5
            while not runtime.refresher.checking:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            refreshed = CliRunner().invoke(cli, [*ctl, "refresh", "s0.example"])
            assert "not tried" not in refreshed.output, refreshed.output
            assert re.search(r"no (data|answer)\b.* 1s", refreshed.output), refreshed.output
            # every zone moved to the good primary: the silent one is forgotten
            moved = [{"name": z["name"], "primaries": [primary.addr]} for z in zones]
            write_config(config, directory=tmp_path / "store", zones=moved, port=port, timeout=1)
            assert CliRunner().invoke(cli, [*ctl, "reload"]).exit_code in (0, 1)
            assert all(p["primary"] != silent for p in primaries()), primaries()
            metrics = server.server.operations.metrics.exposition().decode()
            assert silent not in metrics
        finally:
            server.stop()
