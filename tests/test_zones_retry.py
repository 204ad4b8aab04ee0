"""serve's refresh policy for a zone with nothing to serve yet: a failed first check
(a primary's transfer limit at a cold start of many zones) is retried after seconds,
doubling up to the SOA-retry back-off, never in a tight loop; a zone that holds a copy
keeps the RFC 1034 retry timers."""

from __future__ import annotations

import asyncio
import random

from secdns.errors import RefusedError
from secdns.pull import PullResult, Status
from secdns.refresh import Refresher, retry_delay
from secdns.server.zones import SERVE_POLICY

ZONE = "z0.many.test."


async def _fail(force_axfr: bool) -> PullResult:
    error = RefusedError("AXFR of z0.many.test.: SERVFAIL", zone=ZONE)
    return PullResult(zone=ZONE, status=Status.FAILED, error=error)


def _delays(serial: int | None, count: int = 8) -> list[float]:
    async def scenario() -> list[float]:
        refresher = Refresher(
            ZONE,
            _fail,
            asyncio.Semaphore(1),
            policy=SERVE_POLICY,
            timers=lambda: None if serial is None else (7200.0, 900.0, 1209600.0),
            rng=random.Random(3),
        )
        if serial is not None:
            refresher.restore(serial, None, None)
        delays = []
        for _ in range(count):
            await refresher.refresh()
            assert refresher.retry_in is not None
            delays.append(refresher.retry_in)
        return delays

    return asyncio.run(scenario())


def test_a_zone_with_nothing_to_serve_retries_soon_then_backs_off():
    delays = _delays(None)
    # 2 s doubling, below the SOA-retry back-off of an unknown zone (60 s doubling)
    bases = [2, 4, 8, 16, 32, 64, 128, 256]
    assert all(b <= retry_delay(n, 3600, 60) for n, b in enumerate(bases, 1))
    for delay, base in zip(delays, bases, strict=True):
        assert base * (1 - SERVE_POLICY.jitter) <= delay <= base
    assert delays == sorted(delays)


def test_a_zone_with_a_copy_keeps_the_soa_retry():
    delays = _delays(41, count=3)
    for failures, delay in enumerate(delays, 1):
        base = retry_delay(failures, 7200, 900)
        assert base * (1 - SERVE_POLICY.jitter) <= delay <= base


def test_a_cold_start_takes_its_zones_in_the_configs_order():
    """Zones with nothing to serve are checked at once, so the shared bound queues them
    in the order they were started (the config's), as Knot and BIND take them; a spread
    first check took 10,000 zones in a random order (and wrote their store files so,
    which a restart then read them in)."""
    started = [f"z{index}.many.test." for index in range(40)]

    async def scenario() -> list[str]:
        checked: list[str] = []
        gate = asyncio.Semaphore(3)

        def check_of(zone: str):  # type: ignore[no-untyped-def]
            async def check(force_axfr: bool) -> PullResult:
                checked.append(zone)
                await asyncio.sleep(0.001)
                return PullResult(zone=zone, status=Status.UP_TO_DATE)

            return check

        refreshers = [
            Refresher(zone, check_of(zone), gate, policy=SERVE_POLICY, rng=random.Random(zone))
            for zone in started
        ]
        tasks = [asyncio.create_task(refresher.run()) for refresher in refreshers]
        while len(checked) < len(started):
            await asyncio.sleep(0.01)
        for refresher in refreshers:
            refresher.stopping = True
            refresher.wake()
        await asyncio.gather(*tasks)
        return checked

    assert asyncio.run(scenario()) == started


def test_a_zone_added_by_a_reload_is_checked_within_half_a_second():
    from secdns.refresh import FIRST_DELAY

    assert FIRST_DELAY == 0.5 and isinstance(FIRST_DELAY, float)
    assert SERVE_POLICY.first_delay == 0.0
