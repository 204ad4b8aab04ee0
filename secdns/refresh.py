"""The refresh scheduler (RFC 1034 4.3.5, RFC 1996), one for ``serve`` and ``watch``.

Each zone has a :class:`Refresher`: it waits for the SOA refresh timer (with
jitter) or a NOTIFY (:meth:`Refresher.wake`; wakes during a refresh coalesce
into one more check), then runs one check under the process's shared bound on
concurrent transfers (one :class:`asyncio.Semaphore` for all zones), unless
:attr:`Refresher.admit` says to wait without a slot (a primary not yet heard
from, being tried by another zone: :meth:`secdns.unreachable.Unreachable.admit`).  What a
check does is the caller's: both products call :func:`secdns.pull.pull_zone`
into their own copy.

A failed check is retried after the SOA retry, doubling each time up to the
refresh interval (``backoff_cap`` retries when the retry is not shorter), with jitter.  A
check that ends with our serial behind the primary's is a failure
(``pull_zone`` raises).  Past the expiry deadline (last successful check + SOA
expire) without a successful check the zone is *expired*; the deadline and the
last successful check are persisted in the store's state file, so a restart
does not reset them.

:class:`ZoneStatus` is what one zone looks like from outside (control socket,
metrics): a frozen value with ``to_dict()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable

from secdns.errors import SecdnsError, TimeoutError_
from secdns.pull import PullResult, Status
from secdns.xfr import serial_newer

log = logging.getLogger(__name__)

MIN_TIMER = 1.0
"""SOA refresh/retry/expire values below this are raised to it: a primary cannot make us spin."""
DEFAULT_TIMERS = (3600.0, 60.0, 7 * 86400.0)
"""Refresh, retry and expire of a zone whose SOA we have never seen."""
BACKOFF_CAP = 8
ANNOUNCED_UNKNOWN = -1
"""``Refresher.announced`` after a NOTIFY without its SOA (no real serial is negative)."""
ANNOUNCED_RECHECKS = (2.0, 4.0, 8.0, 16.0, 32.0)
"""Seconds before each check again of a zone whose primary answered an older serial
than its NOTIFY announced (62 s in all: past PowerDNS's 20 s packet cache)."""
"""Retries double from the SOA retry up to this many times it (or the refresh interval)."""


class RefreshState(enum.Enum):
    LOADING = "loading"  # nothing checked yet
    OK = "ok"  # the last check succeeded
    QUEUED = "queued"  # a check waits for a shared transfer slot (or admit: a first try)
    REFRESHING = "refreshing"  # a check is running
    RETRYING = "retrying"  # the last check failed; a retry is scheduled
    EXPIRED = "expired"  # no successful check for longer than the SOA expire
    UNUSABLE = "unusable"  # a catalog whose copy cannot be used (its members kept)
    FAILED = "failed"  # a primary zone whose file has not loaded (SERVFAIL until it does)


@dataclasses.dataclass(frozen=True, slots=True)
class ZoneStatus:
    """One zone's refresh state, for ``ctl status``, metrics and logs (times: epoch seconds)."""

    zone: str
    serial: int | None
    state: str  # a RefreshState value
    primary: str | None  # the primary used last
    last_refresh: float | None  # last successful SOA check
    last_change: float | None  # last transfer that brought a new serial
    next_refresh: float | None
    expires_at: float | None
    records: int | None
    last_error: str | None  # one line

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


FIRST_DELAY = 0.5
EXPIRY_SLACK = 0.01
"""Seconds past a zone's expire deadline at which it is expired between two checks."""
"""Seconds within which a zone's first check comes, by default (spread at random)."""


@dataclasses.dataclass(frozen=True, slots=True)
class RefreshPolicy:
    interval: float | None = None  # a fixed interval instead of the SOA refresh (watch)
    jitter: float = 0.2  # checks come up to this fraction early, to spread load
    min_timer: float = MIN_TIMER
    backoff_cap: int = BACKOFF_CAP
    first_delay: float = FIRST_DELAY  # the first check comes within this many seconds
    # a copy restored from the store and checked within its refresh interval is first
    # checked within this many seconds (spread, not all at start: serve's 10,000
    # zones), and never later than its refresh timer would have it; 0: at once
    restored_spread: float = 0.0
    # a zone we hold no copy of (nothing to serve yet) retries its failed first check
    # after this many seconds, doubling, up to the SOA-retry back-off (0: no sooner);
    # serve's 10,000-zone cold start meets a primary's transfer limit (BIND answers
    # SERVFAIL past transfers-out) and should not then wait the SOA retry to serve
    first_retry: float = 0.0


def retry_delay(failures: int, refresh: float, retry: float, cap: int = BACKOFF_CAP) -> float:
    """Seconds before retry number ``failures`` (1, 2, ...): the SOA retry, doubling up
    to the refresh interval (a failing zone is never checked less often than a healthy
    one: before, up to ``cap`` retries past it, 4,800 s for retry 600 and refresh 3,600),
    or up to ``cap`` retries when the SOA's retry is not shorter than its refresh."""
    ceiling = refresh if refresh > retry else retry * cap
    return min(retry * 2 ** min(max(failures, 1) - 1, 30), ceiling)


class Wake:
    """``asyncio.Event``'s ``set``/``clear``/``is_set``/``wait`` for one waiter (the
    refresh loop), without the Event's deque of waiters: 10,000 zones hold one each.
    ``set`` from another thread goes through ``loop.call_soon_threadsafe``, as with
    an Event."""

    __slots__ = ("_set", "_waiter")

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._set = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None
        return True


Timers = tuple[float, float, float]
_SHARED_RNG = random.Random()
Check = Callable[[bool], Awaitable[PullResult]]
"""``check(force_axfr)``: one refresh of the zone (the caller's ``pull_zone``)."""


class Refresher:
    """One zone's timers and state: ``await refresher.run()`` until cancelled.

    ``check`` does the work; ``timers()`` gives the held SOA's (refresh, retry,
    expire) or None; ``on_expire(expired)`` is told when the zone expires and
    when it is refreshed again; ``on_result(result, woken)`` sees every result.
    ``settle(result)``, when given, is awaited after the check has given back its
    slot of the shared bound and before the result counts: the result once what the
    check wrote is durable (watch: its store writes in group commits, as ``pull -c``).
    """

    __slots__ = (
        "zone",
        "check",
        "transfers",
        "policy",
        "timers",
        "on_expire",
        "on_result",
        "settle",
        "rng",
        "clock",
        "expired",
        "refreshing",
        "checking",
        "serial",
        "primary",
        "records",
        "last_refresh",
        "last_change",
        "next_refresh",
        "expires_at",
        "last_error",
        "failures",
        "retry_in",
        "last_result",
        "stopping",
        "wake_event",
        "_recheck",
        "announced",
        "announced_checks",
        "_lock",
        "admit",
    )
    # (31 attributes: past CPython's 30 shared keys, each instance's __dict__ was its own,
    # 1.6 KiB a zone; with slots ~0.3 KiB)

    def __init__(
        self,
        zone: str,
        check: Check,
        transfers: asyncio.Semaphore,
        *,
        policy: RefreshPolicy = RefreshPolicy(),
        timers: Callable[[], Timers | None] = lambda: None,
        on_expire: Callable[[bool], None] | None = None,
        on_result: Callable[[PullResult, bool], Awaitable[None]] | None = None,
        settle: Callable[[PullResult], Awaitable[PullResult]] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.zone = zone
        self.check = check
        self.transfers = transfers
        self.policy = policy
        self.timers = timers
        self.on_expire = on_expire
        self.on_result = on_result
        self.settle = settle
        self.rng = rng or _SHARED_RNG  # one generator: a Random is ~2.5 KiB per zone
        self.clock = clock
        self.expired = False
        self.refreshing = False
        self.checking = False  # holding a place under the shared bound (not queued for one)
        self.serial: int | None = None
        self.primary: str | None = None
        self.records: int | None = None
        self.last_refresh: float | None = None
        self.last_change: float | None = None
        self.next_refresh: float | None = None
        self.expires_at: float | None = None
        self.last_error: str | None = None
        self.failures = 0
        self.retry_in: float | None = None  # seconds to the next check, once scheduled
        self.last_result: PullResult | None = None
        self.stopping = False  # set it, then wake(): run() returns
        self.wake_event = Wake()
        self._recheck = False  # (recheck: the next wake is not a NOTIFY's)
        self.announced: int | None = None  # a NOTIFY's serial not yet seen at the primary
        self.announced_checks = 0
        self._lock = asyncio.Lock()
        # asked holding a slot, before each check (serve, watch: Unreachable.admit of
        # the zone's primaries): None or a function (go; call it once the check ends),
        # or a future to wait for without the slot, then ask again
        self.admit: Callable[[], Callable[[], None] | asyncio.Future[None] | None] | None = None

    # -- outside

    def wake(self, serial: int | None = None, *, notified: bool = False) -> None:
        """Check now (a NOTIFY); wakes while a check runs coalesce into one more.
        ``serial``: the one the NOTIFY announced (its SOA): a check that finds the
        primary answering an older one is made again (:meth:`_announced_recheck`).
        ``notified`` without a serial: a NOTIFY without its SOA (PowerDNS sends none):
        a check that finds no change is made again too, on the same schedule."""
        if serial is not None:
            if self.announced in (None, ANNOUNCED_UNKNOWN) or serial_newer(
                serial,
                self.announced,  # type: ignore[arg-type]  # (neither None nor unknown)
            ):
                self.announced = serial
                self.announced_checks = 0
        elif notified and self.announced is None:
            self.announced = ANNOUNCED_UNKNOWN
            self.announced_checks = 0
        self.wake_event.set()

    def recheck(self) -> None:
        """Check now, not for a NOTIFY: a primary held as unreachable may be tried
        again (the check's result is not said to be a NOTIFY's)."""
        self._recheck = True
        self.wake_event.set()

    @property
    def state(self) -> RefreshState:
        """Expired and retrying stay so while the next check waits or runs (ctl status
        exits 1 on them: it flapped to 0 during each retry of a zone that never loaded)."""
        if self.expired:
            return RefreshState.EXPIRED
        if self.failures:
            return RefreshState.RETRYING
        if self.refreshing:  # (at a cold start of 10,000 zones, most wait for a slot)
            return RefreshState.REFRESHING if self.checking else RefreshState.QUEUED
        if self.last_refresh is None:  # never checked, nor restored from the store
            return RefreshState.LOADING
        return RefreshState.OK

    def status(self, serial: int | None = None, records: int | None = None) -> ZoneStatus:
        """The zone's status; ``serial`` and ``records``: the served version's, when the
        caller has one (else the scheduler's own)."""
        return ZoneStatus(
            zone=self.zone,
            serial=self.serial if serial is None else serial,
            state=self.state.value,
            primary=self.primary,
            last_refresh=self.last_refresh,
            last_change=self.last_change,
            next_refresh=self.next_refresh,
            expires_at=self.expires_at,
            records=self.records if records is None else records,
            last_error=self.last_error,
        )

    def restore(
        self,
        serial: int | None,
        last_refresh: float | None,
        expires_at: float | None,
        last_error: str | None = None,
    ) -> None:
        """Start from what the store remembers; expired at once if the deadline passed.
        ``last_error``: the last check before the restart failed (the state file says
        so): the zone is ``retrying`` with that error until its first check, which comes
        at once (before, a restart showed such a zone ``ok`` for up to five minutes)."""
        self.serial = serial
        self.last_refresh = last_refresh
        self.expires_at = expires_at
        if last_error is not None:
            self.failures = max(self.failures, 1)
            self.last_error = last_error
        self.expired_check()

    def expired_check(self) -> bool:
        """Expire the zone if its deadline passed (True when it is expired)."""
        if self.expires_at is None or self.clock() <= self.expires_at:
            return self.expired
        if not self.expired:
            self.expired = True
            if self.on_expire is not None:
                self.on_expire(True)
        return True

    async def refresh(
        self,
        force_axfr: bool = False,
        *,
        woken: bool = False,
        before: Callable[[], None] | None = None,
    ) -> PullResult:
        """One check now, under the shared transfer bound (``ctl refresh/retransfer``).
        ``before``: called once a check under way has ended, just before this one
        (``ctl refresh`` lifts its primaries' holds there: lifted while a check it
        waited for timed out, the hold came back and the refresh was not tried).

        An expired zone is checked as ``ctl retransfer`` checks it (``force_axfr``: an
        AXFR, whatever the primary's serial), as BIND unloads an expired zone and Knot
        bootstraps it: a primary whose serial went back (restored from a backup, its
        serial reset) would otherwise leave the zone answering SERVFAIL for good."""
        force_axfr = force_axfr or self.expired_check()
        async with self._lock:
            self.refreshing = True
            if before is not None:
                before()
            try:
                while True:
                    async with self.transfers:
                        admitted = self.admit() if self.admit is not None else None
                        if not isinstance(admitted, asyncio.Future):
                            self.checking = True
                            try:
                                result = await self.check(force_axfr)
                            finally:
                                self.checking = False
                                if admitted is not None:
                                    admitted()
                            break
                    await admitted  # (its own future: a cancel here cancels it alone)
                if self.settle is not None:
                    result = await self.settle(result)
            finally:
                self.refreshing = False
            self._took(result)
            self.retry_in = self.next_delay()
            if self.announced is not None:
                sooner = self._announced_recheck(result)
                if sooner is not None:
                    self.retry_in = min(self.retry_in, sooner)
            error = result.error
            if isinstance(error, TimeoutError_) and not error.tried:
                # every primary held: no try before its hold ends (the cache then wakes
                # one of its zones for the one try, and all of them once it answers)
                self.retry_in = max(self.retry_in, error.retry_after)
            self.next_refresh = self.clock() + self.retry_in
            if self.on_result is not None:
                await self.on_result(result, woken)
            return result

    async def run(self) -> None:
        """The loop: wait for the timer or a wake, check, schedule the next check."""
        delay = self.rng.uniform(0, self.first_window())
        while not self.stopping:
            self.next_refresh = self.clock() + delay
            woken = await self._wait(delay)
            if self.stopping:
                return
            if self._recheck:
                self._recheck = woken = False
            try:
                await self.refresh(woken=woken)
            except SecdnsError as err:  # a check should report, not raise: count it
                self._failed(err.one_line())
                self.retry_in = self.next_delay()
            delay = self.retry_in if self.retry_in is not None else self.next_delay()

    # -- timers

    def first_window(self) -> float:
        """The first check comes within this many seconds: at once for a zone never
        checked (or expired, or failing when it stopped), spread over
        ``restored_spread`` for a fresh stored copy."""
        first = self.policy.first_delay
        if self.last_refresh is None or self.expired or self.failures:
            return first
        refresh, _retry, _expire = self.soa_timers()
        due = self.last_refresh + refresh - self.clock()
        return max(first, min(due, self.policy.restored_spread))

    def soa_timers(self) -> Timers:
        timers = self.timers() or DEFAULT_TIMERS
        low = self.policy.min_timer
        refresh, retry, expire = (max(float(t), low) for t in timers)
        if self.policy.interval is not None:
            refresh = self.policy.interval
            retry = min(retry, refresh)
        return refresh, retry, expire

    def next_delay(self) -> float:
        """Seconds to the next check: refresh on success, backed-off retry on failure."""
        refresh, retry, _expire = self.soa_timers()
        if self.failures:
            base = retry_delay(self.failures, refresh, retry, self.policy.backoff_cap)
            if self.policy.first_retry and self.serial is None:
                sooner = self.policy.first_retry * 2 ** min(self.failures - 1, 30)
                base = min(base, sooner)
        else:
            base = refresh
        return base * (1.0 - self.policy.jitter * self.rng.random())

    async def _wait(self, delay: float) -> bool:
        """:meth:`_sleep` ``delay`` seconds, the zone expired on the way when its expire
        deadline comes first: retries back off past the SOA retry (and a held primary's
        zones wait out its hold), and a zone was served for a minute past its expire, as
        authoritative, until its next check failed (a stranger's, expire 90 s)."""
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        while True:
            left = due - loop.time()
            if not self.expired and self.expires_at is not None:
                until_expiry = self.expires_at - self.clock()
                if until_expiry < left:
                    # (just past the deadline: expired_check needs the clock beyond it)
                    woken = await self._sleep(max(until_expiry, 0.0) + EXPIRY_SLACK)
                    if woken or self.stopping:
                        return woken
                    self.expired_check()
                    continue
            return await self._sleep(max(left, 0.0))

    async def _sleep(self, delay: float) -> bool:
        """Wait ``delay`` seconds or until woken; True when woken."""
        try:  # asyncio.timeout, not wait_for: no second task per sleeping zone
            async with asyncio.timeout(delay):
                await self.wake_event.wait()
            woken = True
        except TimeoutError:
            woken = False
        self.wake_event.clear()
        return woken

    # -- results

    def _announced_recheck(self, result: PullResult) -> float | None:
        """A NOTIFY announced a serial, and this check found the primary answering an
        older one: an answer cache there (PowerDNS's packet cache keeps an SOA 20 s) or
        a NOTIFY sent before the change was visible.  The zone is checked again after
        :data:`ANNOUNCED_RECHECKS` seconds, then a warning says it stays behind until its
        refresh timer (a stranger's PowerDNS zone stayed an hour behind, ``ok`` in
        ``ctl status``, nothing above info).  A NOTIFY without its SOA
        (:data:`ANNOUNCED_UNKNOWN`: PowerDNS sends none) is checked again so while the
        checks find no change (a stranger's zone stayed behind until its SOA refresh, 3
        hours), without the warning: it may have announced none.  Seconds to the next
        check, or None."""
        announced = self.announced
        assert announced is not None
        if result.status not in (Status.UP_TO_DATE, Status.TRANSFERRED):
            return None  # a failure: retried as failures are (the serial kept)
        answered = result.serial_to
        if announced == ANNOUNCED_UNKNOWN:
            behind = result.status is Status.UP_TO_DATE  # (no change found: a cache?)
            what = "a NOTIFY without a serial"
        else:
            behind = answered is not None and serial_newer(announced, answered)
            what = f"a NOTIFY announced serial {announced}"
        if not behind:
            self.announced = None  # seen (or passed)
            return None
        if self.announced_checks >= len(ANNOUNCED_RECHECKS):
            if announced != ANNOUNCED_UNKNOWN:
                log.warning(
                    "refresh: zone=%s %s, but %s still answers %s after %d more checks over "
                    "%.0f s: the next check at the SOA refresh",
                    self.zone,
                    what,
                    result.primary or "the primary",
                    answered,
                    self.announced_checks,
                    sum(ANNOUNCED_RECHECKS),
                )
            self.announced = None
            return None
        delay = ANNOUNCED_RECHECKS[self.announced_checks]
        self.announced_checks += 1
        log.info(
            "refresh: zone=%s %s, but %s answers %s: checking again in %.0f s",
            self.zone,
            what,
            result.primary or "the primary",
            answered,
            delay,
        )
        return delay

    def _took(self, result: PullResult) -> None:
        self.last_result = result
        if result.primary is not None:
            self.primary = result.primary
        if result.status is Status.FAILED:
            # (the zone's own status: its name is not said again, ctl status names it)
            error = result.error
            # a check that could try no primary (each held, or another zone's try of it
            # under way) adds no failure to one already counted: a ctl refresh queued
            # behind a check that timed out doubled the retry a second time, 1 ms later
            untried = isinstance(error, TimeoutError_) and not error.tried
            self._failed(
                error.one_line(with_zone=False) if error else "failed",
                counted=not (untried and self.failures),
            )
            return
        now = self.clock()
        self.failures = 0
        self.last_error = None
        self.last_refresh = now
        if result.status is Status.TRANSFERRED and result.serial_to != result.serial_from:
            self.last_change = now  # (a new serial: not ctl retransfer of the same one)
        self.serial = result.serial_to
        if result.records is not None:
            self.records = result.records
        _refresh, _retry, expire = self.soa_timers()
        if result.edns_expire is not None:  # RFC 7314: never outlive the primary's own copy
            expire = min(expire, max(float(result.edns_expire), self.policy.min_timer))
        self.expires_at = now + expire
        if self.expired:
            self.expired = False
            if self.on_expire is not None:
                self.on_expire(False)

    def _failed(self, error: str, counted: bool = True) -> None:
        if counted:
            self.failures += 1
        self.last_error = error
        self.expired_check()
