"""The refresh scheduler (secdns.refresh): backoff and jitter, coalesced wakes, one
bound on transfers for all zones, staying behind the primary is a failure, and
expiry survives a restart (serve and watch)."""

from __future__ import annotations

import asyncio
import random
import time

import dns.name
import pytest
from fakeprimary import FakePrimary
from xfrwire import answer_messages, rrset, zone_rrsets

from secdns.copies import StoreCopy
from secdns.endpoints import Endpoint
from secdns.errors import BadDataError
from secdns.mirror import Mirror, MirrorOptions, MirrorZone
from secdns.pull import PullResult, Status, pull_zone
from secdns.refresh import Refresher, RefreshPolicy, RefreshState, retry_delay
from secdns.store import Store, ZoneState, iso_time

ORIGIN_TEXT = "example.com."
ORIGIN = dns.name.from_text(ORIGIN_TEXT)
ZONE = """
@ 3600 IN SOA ns1 host {serial} 7200 900 1209600 300
@ 3600 IN NS ns1
ns1 3600 IN A 192.0.2.1
www 300 IN A 192.0.2.80
"""


def soa(serial: int):
    return rrset(
        f"{ORIGIN_TEXT} 3600 SOA ns1.{ORIGIN_TEXT} host.{ORIGIN_TEXT} {serial} 7200 900 1209600 300"
    )


def full(serial: int):
    rrsets = zone_rrsets(ZONE.format(serial=serial), ORIGIN_TEXT)
    return rrsets + rrsets[:1]


def result(status: Status = Status.UP_TO_DATE, serial: int = 1) -> PullResult:
    error = BadDataError("boom", zone=ORIGIN_TEXT) if status is Status.FAILED else None
    return PullResult(zone=ORIGIN_TEXT, status=status, serial_to=serial, error=error)


def test_failures_back_off_from_the_soa_retry_with_jitter():
    assert [retry_delay(n, 7200, 900) for n in range(1, 6)] == [900, 1800, 3600, 7200, 7200]

    async def scenario() -> None:
        async def fail(force_axfr: bool) -> PullResult:
            return result(Status.FAILED)

        refresher = Refresher(
            ORIGIN_TEXT,
            fail,
            asyncio.Semaphore(1),
            policy=RefreshPolicy(jitter=0.2),
            timers=lambda: (7200.0, 900.0, 1209600.0),
            rng=random.Random(7),
        )
        delays = []
        for _ in range(5):
            await refresher.refresh()
            assert refresher.state is RefreshState.RETRYING
            delays.append(refresher.retry_in)
        for delay, base in zip(delays, [900, 1800, 3600, 7200, 7200], strict=True):
            assert base * 0.8 <= delay <= base
        assert len(set(delays)) == 5  # jittered: no two alike
        assert refresher.status().last_error == "example.com.: boom" or refresher.last_error
        # success: back to the refresh interval, jittered
        refresher.check = lambda force_axfr: _done(result())
        await refresher.refresh()
        assert refresher.state is RefreshState.OK and refresher.failures == 0
        assert 7200 * 0.8 <= refresher.retry_in <= 7200
        # a primary cannot make us spin: timers below the minimum are raised
        refresher.timers = lambda: (0.0, 0.0, 0.0)
        assert refresher.soa_timers() == (1.0, 1.0, 1.0)

    asyncio.run(scenario())


async def _done(value: PullResult) -> PullResult:
    return value


def test_a_check_that_tries_no_primary_adds_no_failure_to_one_counted():
    """Only tries that fail double the retry: a check that could try no primary (held
    as unreachable, a try of it under way) after a failed one repeats that failure (a
    stranger's ctl refresh, queued behind a check that timed out, doubled the retry a
    second time 1 ms later); the first failure of a zone still counts."""
    from secdns.errors import TimeoutError_

    untried = TimeoutError_("not tried: held as unreachable", zone=ORIGIN_TEXT).not_tried(0.0)

    async def scenario() -> None:
        outcome = [result(Status.FAILED)]

        async def check(force_axfr: bool) -> PullResult:
            return outcome[0]

        refresher = Refresher(
            ORIGIN_TEXT,
            check,
            asyncio.Semaphore(1),
            policy=RefreshPolicy(jitter=0.0),
            timers=lambda: (7200.0, 900.0, 1209600.0),
        )
        await refresher.refresh()
        assert refresher.failures == 1 and refresher.retry_in == 900
        outcome[0] = PullResult(zone=ORIGIN_TEXT, status=Status.FAILED, error=untried)
        await refresher.refresh()
        assert refresher.failures == 1 and refresher.retry_in == 900
        assert refresher.last_error is not None and "held as unreachable" in refresher.last_error
        outcome[0] = result(Status.FAILED)
        await refresher.refresh()
        assert refresher.failures == 2 and refresher.retry_in == 1800

        fresh = Refresher(ORIGIN_TEXT, check, asyncio.Semaphore(1))
        outcome[0] = PullResult(zone=ORIGIN_TEXT, status=Status.FAILED, error=untried)
        await fresh.refresh()
        assert fresh.failures == 1 and fresh.state is RefreshState.RETRYING

    asyncio.run(scenario())


def test_wakes_during_a_check_coalesce_into_one_more_check():
    async def scenario() -> None:
        calls = 0
        running = asyncio.Event()
        release = asyncio.Event()

        async def check(force_axfr: bool) -> PullResult:
            nonlocal calls
            calls += 1
            running.set()
            await release.wait()
            return result()

        refresher = Refresher(
            ORIGIN_TEXT,
            check,
            asyncio.Semaphore(1),
            policy=RefreshPolicy(first_delay=0.01),
            timers=lambda: (3600.0, 600.0, 86400.0),
        )
        task = asyncio.create_task(refresher.run())
        await asyncio.wait_for(running.wait(), 5)
        assert refresher.state is RefreshState.REFRESHING
        for _ in range(50):  # a NOTIFY flood while the first check runs
            refresher.wake()
        release.set()
        deadline = time.monotonic() + 5
        while calls < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert calls == 2
        assert refresher.state is RefreshState.OK
        assert refresher.next_refresh is not None and refresher.next_refresh > time.time() + 2000
        refresher.stopping = True
        refresher.wake()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())


def test_one_bound_on_transfers_for_all_zones():
    async def scenario() -> None:
        bound = asyncio.Semaphore(3)
        active = peak = 0

        async def check(force_axfr: bool) -> PullResult:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.05)
            active -= 1
            return result()

        refreshers = [Refresher(f"z{n}.", check, bound) for n in range(12)]
        results = await asyncio.gather(*(r.refresh() for r in refreshers))
        assert peak == 3 and all(r.status is Status.UP_TO_DATE for r in results)
        assert all(r.status().state == "ok" for r in refreshers)
        assert set(refreshers[0].status().to_dict()) == {
            "zone",
            "serial",
            "state",
            "primary",
            "last_refresh",
            "last_change",
            "next_refresh",
            "expires_at",
            "records",
            "last_error",
        }

    asyncio.run(scenario())


def test_ending_behind_the_primarys_serial_is_a_failure(tmp_path):
    """The probe says 11; the IXFR answers with our SOA alone (up to date at 10)."""
    store = Store(tmp_path / "store")

    async def pull(primary: FakePrimary) -> PullResult:
        copy = StoreCopy(store, ORIGIN)
        return await pull_zone(ORIGIN, [Endpoint("127.0.0.1", primary.port)], copy)

    def axfr(query):
        return answer_messages(query.id, ORIGIN_TEXT, "AXFR", full(10), 2)

    with FakePrimary(axfr, soa(10)) as primary:
        assert asyncio.run(pull(primary)).status is Status.TRANSFERRED

    def stale_ixfr(query):
        return answer_messages(query.id, ORIGIN_TEXT, "IXFR", [soa(10)], 2)

    with FakePrimary(stale_ixfr, soa(11)) as primary:
        pulled = asyncio.run(pull(primary))
    assert pulled.status is Status.FAILED
    assert "serial 11" in pulled.error.message and "behind" in pulled.error.message
    state = store.load_state(ORIGIN)
    assert state.serial == 10 and "behind" in state.last_error


def test_expiry_survives_a_restart_of_watch(tmp_path):
    store = Store(tmp_path / "store")
    store.ensure()
    old = time.time() - 3600
    store.save_state(
        ORIGIN,
        ZoneState(
            zone=ORIGIN_TEXT,
            serial=10,
            last_success=iso_time(old, whole_seconds=True),
            refresh=60,
            retry=60,
            expire=600,  # expired 50 minutes ago
        ),
    )
    mirror = Mirror(
        [MirrorZone(ORIGIN, (Endpoint("127.0.0.1", 9),))],
        store=store,
        options=MirrorOptions(timeout=0.2),
    )

    async def scenario() -> None:
        await mirror.startup()
        try:
            status = mirror.status(ORIGIN)
            assert status.state == "expired"
            assert status.expires_at == pytest.approx(old + 600, abs=1)
            assert status.last_refresh == pytest.approx(old, abs=1)
        finally:
            await mirror.shutdown()

    asyncio.run(scenario())


def test_restore_expires_at_once_and_a_success_unexpires():
    async def scenario() -> None:
        told = []
        refresher = Refresher(
            ORIGIN_TEXT,
            lambda force_axfr: _done(result(serial=5)),
            asyncio.Semaphore(1),
            timers=lambda: (60.0, 60.0, 600.0),
            on_expire=told.append,
        )
        assert refresher.state is RefreshState.LOADING
        refresher.restore(5, time.time() - 10, time.time() + 590)  # a restart, in time
        assert refresher.state is RefreshState.OK and told == []
        refresher.restore(5, time.time() - 700, time.time() - 100)
        assert refresher.state is RefreshState.EXPIRED and told == [True]
        await refresher.refresh()
        assert refresher.state is RefreshState.OK and told == [True, False]
        assert refresher.expires_at == pytest.approx(time.time() + 600, abs=2)

    asyncio.run(scenario())


def test_expiry_survives_a_restart_of_serve(bind_primary, tmp_path):
    from pathlib import Path

    import dns.rcode
    from serving import ServerThread, write_config

    text = (
        (Path(__file__).parent / "zones" / "example.com.zone")
        .read_text()
        .replace("7200       ; refresh", "1 ; refresh")
        .replace("900        ; retry", "1 ; retry")
        .replace("1209600    ; expire", "4 ; expire")
    )
    primary = bind_primary({"example.com": text})
    config = write_config(
        tmp_path / "secdns.toml",
        directory=tmp_path / "store",
        zones=[{"name": "example.com", "primaries": [primary.addr]}],
        timeout=0.5,
    )
    server = ServerThread(config)
    try:
        server.wait_serial("example.com", 2024010101)
        assert server.server is not None
        status = server.server.runtimes[ORIGIN].status()
        assert (status.zone, status.serial) == ("example.com.", 2024010101)
        assert status.state in ("ok", "refreshing")  # refresh is 1 s here
        assert status.records and status.primary and status.last_refresh and status.expires_at
        assert status.last_change and status.next_refresh and status.last_error is None
        store = Store(tmp_path / "store")
        first = store.load_state(ORIGIN).last_success
        deadline = time.monotonic() + 10
        while store.load_state(ORIGIN).last_success == first and time.monotonic() < deadline:
            time.sleep(0.2)  # up-to-date checks are remembered, not only transfers
        assert store.load_state(ORIGIN).last_success != first
    finally:
        server.stop()
    primary.stop()
    time.sleep(4.5)  # past the expire, with no server running
    server = ServerThread(config)
    try:  # the stored copy is expired from the start: SERVFAIL, not stale answers
        assert server.query("www.example.com.", "A").rcode() == dns.rcode.SERVFAIL
    finally:
        server.stop()


def test_a_zone_stays_retrying_while_its_retry_waits_or_runs_and_queued_is_said():
    """ctl status exits 1 on retrying: a zone that never loaded flapped to
    refreshing (exit 0) during each retry; a check waiting for a slot is queued."""

    async def main() -> None:
        slots = asyncio.Semaphore(1)
        running = asyncio.Event()
        release = asyncio.Event()

        async def check(force_axfr: bool) -> PullResult:
            running.set()
            await release.wait()
            return result(Status.FAILED)

        refresher = Refresher(ORIGIN_TEXT, check, slots)
        async with slots:  # another zone's check holds the only slot
            task = asyncio.create_task(refresher.refresh())
            await asyncio.sleep(0.05)
            assert refresher.state is RefreshState.QUEUED
        await asyncio.wait_for(running.wait(), 5)
        assert refresher.state is RefreshState.REFRESHING
        release.set()
        await task
        assert refresher.state is RefreshState.RETRYING
        running.clear()
        release.clear()
        task = asyncio.create_task(refresher.refresh())  # the retry
        await asyncio.wait_for(running.wait(), 5)
        assert refresher.state is RefreshState.RETRYING
        release.set()
        await task

    asyncio.run(main())


def test_a_check_that_tried_no_primary_is_not_retried_before_the_hold_ends():
    """Every primary held as unreachable: the retry waits for the first hold's end (a
    stranger's zones retried after 2, 4, 8 and 14 s of a 30 s hold, each skipped)."""
    from secdns.errors import TimeoutError_

    async def scenario() -> None:
        async def skipped(force_axfr: bool) -> PullResult:
            error = TimeoutError_("not tried: held", zone=ORIGIN_TEXT).not_tried(25.0)
            return PullResult(zone=ORIGIN_TEXT, status=Status.FAILED, error=error)

        refresher = Refresher(
            ORIGIN_TEXT,
            skipped,
            asyncio.Semaphore(1),
            policy=RefreshPolicy(first_retry=2.0),
            timers=lambda: (3600.0, 60.0, 1209600.0),
        )
        await refresher.refresh()
        assert refresher.retry_in is not None and refresher.retry_in >= 25.0
        refresher.check = lambda force_axfr: _done(result(Status.FAILED))
        await refresher.refresh()  # a failure of another kind: the usual back-off
        assert refresher.retry_in is not None and refresher.retry_in <= 4.0  # (2 s, doubled)

    asyncio.run(scenario())


def test_a_notify_whose_serial_the_primary_does_not_answer_yet_is_checked_again(
    monkeypatch, caplog
):
    """A NOTIFY announces serial 2, but the primary still answers 1 (PowerDNS's packet
    cache keeps an SOA 20 s): the zone is checked again, sooner than its refresh, until
    the primary answers 2; if it never does, a warning says so after the last check (a
    stranger's PowerDNS zone stayed an hour behind with nothing above info)."""
    import logging

    import secdns.refresh

    monkeypatch.setattr(secdns.refresh, "ANNOUNCED_RECHECKS", (0.05, 0.05, 0.05))
    caplog.set_level(logging.INFO, logger="secdns.refresh")

    async def scenario(answers: list[int]) -> list[int]:
        seen: list[int] = []

        async def check(force_axfr: bool) -> PullResult:
            serial = answers.pop(0) if answers else 1
            seen.append(serial)
            status = Status.TRANSFERRED if serial == 2 else Status.UP_TO_DATE
            return result(status, serial)

        refresher = Refresher(
            ORIGIN_TEXT,
            check,
            asyncio.Semaphore(1),
            policy=RefreshPolicy(first_delay=3600),
            timers=lambda: (3600.0, 600.0, 86400.0),
        )
        refresher.last_refresh = time.time()  # (restored: no first check of its own)
        task = asyncio.create_task(refresher.run())
        await asyncio.sleep(0.05)
        refresher.wake(2)
        await asyncio.sleep(0.6)
        refresher.stopping = True
        refresher.wake()
        await asyncio.wait_for(task, 5)
        assert refresher.announced is None
        assert refresher.next_refresh is not None and refresher.next_refresh > time.time() + 2000
        return seen

    # the primary answers 2 at the second check again: transferred, no warning
    assert asyncio.run(scenario([1, 1, 2])) == [1, 1, 2]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # it never does: 1 + 3 checks, then one warning
    caplog.clear()
    assert asyncio.run(scenario([])) == [1, 1, 1, 1]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "announced serial 2, but" in warnings[0], warnings
    assert "still answers 1 after 3 more checks" in warnings[0]


def test_a_zone_expires_at_its_deadline_not_at_its_next_check():
    """A zone whose checks fail expires when its expire deadline passes, between two
    checks (its retries back off past the SOA retry): a stranger's zone, expire 90 s, was
    served as authoritative for a minute more, until its next retry failed."""

    async def scenario() -> tuple[list[bool], int, float]:
        told: list[bool] = []
        checks = 0

        async def check(force_axfr: bool) -> PullResult:
            nonlocal checks
            checks += 1
            return PullResult(zone=ORIGIN_TEXT, status=Status.FAILED)

        refresher = Refresher(
            ORIGIN_TEXT,
            check,
            asyncio.Semaphore(1),
            policy=RefreshPolicy(restored_spread=3600.0),
            timers=lambda: (3600.0, 600.0, 86400.0),
            on_expire=told.append,
        )
        now = time.time()
        refresher.restore(41, now - 100, now + 0.3)  # fresh: first check in an hour or so
        task = asyncio.create_task(refresher.run())
        began = time.monotonic()
        while not told and time.monotonic() - began < 5:
            await asyncio.sleep(0.02)
        took = time.monotonic() - began
        refresher.stopping = True
        refresher.wake()
        await asyncio.wait_for(task, 5)
        return told, checks, took

    told, checks, took = asyncio.run(scenario())
    assert told == [True] and checks == 0
    assert 0.25 <= took < 1.0
