"""``watch --servers``: watch a serial propagate to every address of every nameserver.

:class:`Monitor` polls the SOA on every address of every nameserver and reports
who has the newest serial and how long each took to catch up.  The bookkeeping
is :class:`PropagationTracker`: pure, driven by the times it is given.  No click,
no rich: events are value objects handed to a callback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Callable, Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from secdns.endpoints import DEFAULT_PORT, Endpoint, format_addr, resolve
from secdns.engine import probe_soa
from secdns.errors import ExitCode, NetworkError, SecdnsError
from secdns.keys import TsigKey
from secdns.store import iso_time
from secdns.xfr import serial_compare

log = logging.getLogger(__name__)

# --- monitor: watch a serial propagate -----------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """One address to watch, and the server name it belongs to."""

    server: str  # as given (@SERVER) or found (an NS name)
    address: str | None  # None: the name has no address
    port: int = DEFAULT_PORT
    error: str | None = None  # why there is no address

    @property
    def where(self) -> str:
        return format_addr(self.address, self.port) if self.address else "-"


def _dedupe(targets: list[Target]) -> list[Target]:
    seen: set[tuple[str | None, int, str]] = set()
    unique = []
    for target in targets:
        key = (target.address, target.port, target.server if target.address is None else "")
        if key not in seen:
            seen.add(key)
            unique.append(target)
    return unique


async def targets_from_endpoints(endpoints: Sequence[Endpoint]) -> list[Target]:
    """Every address of each ``@SERVER`` (a host name may have several)."""
    targets: list[Target] = []
    for endpoint in endpoints:
        label = str(endpoint) if endpoint.is_address else endpoint.host
        try:
            pairs = await resolve(endpoint)
        except SecdnsError as err:
            targets.append(Target(label, None, endpoint.port, err.message))
            continue
        targets += [Target(label, address, port) for address, port in pairs]
    return _dedupe(targets)


async def nameserver_targets(
    origin: dns.name.Name,
    *,
    resolver: dns.asyncresolver.Resolver | None = None,
    port: int = DEFAULT_PORT,
) -> list[Target]:
    """Every address (A and AAAA) of every name in the zone's NS set."""
    zone = origin.to_text()
    try:
        resolver = resolver or dns.asyncresolver.Resolver()
        answer = await resolver.resolve(origin, dns.rdatatype.NS, search=False)
    except dns.exception.DNSException as err:
        raise NetworkError(f"cannot look up the NS set: {err}", zone=zone) from err
    names = sorted({rdata.target for rdata in answer})

    async def addresses(name: dns.name.Name) -> list[Target]:
        found: list[str] = []
        problems: list[str] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                rrs = await resolver.resolve(name, rdtype, search=False)  # type: ignore[union-attr]
            except dns.resolver.NoAnswer:
                continue
            except dns.exception.DNSException as err:
                problems.append(str(err))
                continue
            found += [rdata.address for rdata in rrs]
        if not found:
            return [Target(name.to_text(), None, port, "; ".join(problems) or "no address")]
        return [Target(name.to_text(), address, port) for address in found]

    per_name = await asyncio.gather(*(addresses(name) for name in names))
    return _dedupe([target for group in per_name for target in group])


class MonitorEventKind(enum.Enum):
    SERIAL = "serial"  # an address answers a serial it did not answer before
    FAILED = "failed"  # an address stopped answering, or answers an error
    RECOVERED = "recovered"  # it answers again, with the serial it had
    CONSISTENT = "consistent"  # every address answers the same serial


@dataclasses.dataclass(frozen=True, slots=True)
class Lag:
    """How long after the first address an address showed a serial: ``value`` ± ``precision``.

    Moments are windows, not instants: an address switched after the query that
    last showed its old serial was sent, and before the answer showing the new one
    was received.  The lag is the distance between the middles of the two windows
    (this address's and the first address's), never below 0, and ``precision`` how
    far the true lag can be from it: the truth lies within ``value ± precision``.
    """

    value: float
    precision: float

    @classmethod
    def between(cls, window: tuple[float, float], first: tuple[float, float]) -> Lag:
        low, high = window[0] - first[1], window[1] - first[0]
        value = max(0.0, (low + high) / 2)
        return cls(value, max(value - max(0.0, low), high - value))


def _seconds(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


@dataclasses.dataclass(frozen=True, slots=True)
class MonitorEvent:
    """One change seen by the monitor, for the renderers."""

    kind: MonitorEventKind
    zone: str
    at: float  # wall-clock time
    elapsed: float  # seconds since the monitor started
    server: str | None = None
    address: str | None = None
    serial: int | None = None
    previous: int | None = None
    lag: Lag | None = None  # after the first address showed this serial
    newest: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "event": self.kind.value,
            "time": iso_time(self.at),
            "elapsed": round(self.elapsed, 3),
            "zone": self.zone,
            "server": self.server,
            "address": self.address,
            "serial": self.serial,
            "previous": self.previous,
            "lag": _seconds(self.lag.value if self.lag else None),
            "lag_precision": _seconds(self.lag.precision if self.lag else None),
            "newest": self.newest,
            "error": self.error,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class AddressStatus:
    """Where one address stands, for the table and the summary."""

    server: str
    address: str
    serial: int | None
    lag: Lag | None  # for its current serial; None if it had it when we started
    changed_at: float | None  # wall-clock time it started answering that serial
    error: str | None  # its latest query failed
    current: bool  # answers the newest serial

    def to_dict(self) -> dict[str, object]:
        return {
            "server": self.server,
            "address": self.address,
            "serial": self.serial,
            "lag": _seconds(self.lag.value if self.lag else None),
            "lag_precision": _seconds(self.lag.precision if self.lag else None),
            "changed": iso_time(self.changed_at) if self.changed_at is not None else None,
            "error": self.error,
            "current": self.current,
        }


@dataclasses.dataclass(slots=True)
class _Seen:
    target: Target
    serial: int | None = None
    previous: int | None = None
    lag: Lag | None = None
    changed: float | None = None  # monotonic
    sent: float | None = None  # when the query behind the latest answer was sent
    error: str | None = None
    error_code: int = 0


class PropagationTracker:
    """Who answers which serial, since when, and how long after the first to show it.

    Pure: :meth:`observe` is given each answer (or failure) with the monotonic
    times its query was sent and its answer received, and returns the events it
    caused.  An address that switched serials did so inside the window from the
    sending of the query that last showed the old serial to the receipt of the one
    showing the new; a serial's *lag* at an address compares that window with the
    first address's (see :class:`Lag`).  The first address to show a serial has
    lag 0; an address that already had a serial at its first answer has no lag.
    """

    def __init__(
        self,
        zone: str,
        targets: Sequence[Target],
        *,
        started: float,
        wall_started: float | None = None,
    ) -> None:
        self.zone = zone
        self.targets = tuple(targets)
        self.started = started
        self.wall_started = time.time() if wall_started is None else wall_started
        self._seen = [_Seen(target) for target in self.targets]
        self._watched = [seen for seen in self._seen if seen.target.address is not None]
        self._first: dict[int, tuple[float, float]] = {}  # serial -> first address's window
        self._announced: int | None = None
        self.newest: int | None = None
        self.answered = False

    def _wall(self, now: float) -> float:
        return self.wall_started + (now - self.started)

    def _event(
        self,
        kind: MonitorEventKind,
        now: float,
        seen: _Seen | None = None,
        *,
        serial: int | None = None,
        previous: int | None = None,
        lag: Lag | None = None,
        error: str | None = None,
    ) -> MonitorEvent:
        return MonitorEvent(
            kind,
            self.zone,
            self._wall(now),
            now - self.started,
            server=seen.target.server if seen else None,
            address=seen.target.where if seen else None,
            serial=serial,
            previous=previous,
            lag=lag,
            newest=self.newest,
            error=error,
        )

    def observe(
        self,
        index: int,
        now: float,
        *,
        serial: int | None = None,
        error: SecdnsError | None = None,
        sent: float | None = None,
    ) -> list[MonitorEvent]:
        """Record one answer (``serial``) or failure, received at ``now`` for a query
        sent at ``sent`` (default ``now``)."""
        seen = self._seen[index]
        if serial is None:
            return self._failed(seen, now, error)
        sent = now if sent is None else sent
        self.answered = True
        events: list[MonitorEvent] = []
        recovered = seen.error is not None
        seen.error = None
        if serial == seen.serial:
            if recovered:
                events.append(self._event(MonitorEventKind.RECOVERED, now, seen, serial=serial))
        else:
            had = seen.serial
            window = (sent if had is None or seen.sent is None else seen.sent, now)
            first = self._first.setdefault(serial, window)
            if self.newest is None or serial_compare(serial, self.newest) == 1:
                self.newest = serial
            # at its first answer an address may have had the serial for long: no lag
            if had is None:
                seen.lag = None
            elif first is window:  # the first to show it: the reference
                seen.lag = Lag(0.0, 0.0)
            else:
                seen.lag = Lag.between(window, first)
            seen.previous, seen.serial, seen.changed = had, serial, now
            events.append(
                self._event(
                    MonitorEventKind.SERIAL, now, seen, serial=serial, previous=had, lag=seen.lag
                )
            )
        seen.sent = sent
        consistent = self.consistent_serial()
        if consistent is not None and consistent != self._announced:
            self._announced = consistent
            lags = [s.lag for s in self._watched if s.lag is not None]
            slowest = max(lags, key=lambda lag: lag.value, default=None)
            events.append(
                self._event(MonitorEventKind.CONSISTENT, now, serial=consistent, lag=slowest)
            )
        elif consistent is None and self._serials_differ():
            self._announced = None
        return events

    def _failed(self, seen: _Seen, now: float, error: SecdnsError | None) -> list[MonitorEvent]:
        message = error.message if error is not None else "no answer"
        if seen.error == message:
            return []
        seen.error = message
        seen.error_code = int(error.exit_code) if error is not None else ExitCode.NETWORK
        return [self._event(MonitorEventKind.FAILED, now, seen, serial=seen.serial, error=message)]

    def _serials_differ(self) -> bool:
        return len({seen.serial for seen in self._watched}) > 1

    def serial_of(self, index: int) -> int | None:
        """The serial an address answered last, None if it never did or now fails."""
        seen = self._seen[index]
        return seen.serial if seen.error is None else None

    def all_asked(self) -> bool:
        """Whether every address has answered or failed at least once."""
        return all(seen.serial is not None or seen.error is not None for seen in self._watched)

    def consistent_serial(self) -> int | None:
        """The serial every address answers right now, if they all answer the same."""
        serials = set()
        for seen in self._watched:
            if seen.serial is None or seen.error is not None:
                return None
            serials.add(seen.serial)
        return serials.pop() if len(serials) == 1 else None

    def reached(self, serial: int, *, newer: bool = False) -> bool:
        """Whether every address answers ``serial`` or newer right now (RFC 1982);
        with ``newer``, a serial newer than ``serial``."""
        wanted = (1,) if newer else (0, 1)
        if not self._watched:
            return False
        return all(
            seen.serial is not None
            and seen.error is None
            and serial_compare(seen.serial, serial) in wanted
            for seen in self._watched
        )

    def statuses(self) -> tuple[AddressStatus, ...]:
        return tuple(
            AddressStatus(
                server=seen.target.server,
                address=seen.target.where,
                serial=seen.serial,
                lag=seen.lag,
                changed_at=self._wall(seen.changed) if seen.changed is not None else None,
                error=seen.error if seen.target.address is not None else seen.target.error,
                current=(
                    seen.serial is not None and seen.serial == self.newest and seen.error is None
                ),
            )
            for seen in self._seen
        )

    def worst_error(self) -> int:
        """The worst exit code among addresses whose latest query failed (3 if none)."""
        codes = [seen.error_code for seen in self._watched if seen.error is not None]
        return max(codes, default=int(ExitCode.NETWORK))


class MonitorOutcome(enum.Enum):
    REACHED = "reached"  # --until-serial: every address has it
    CONSISTENT = "consistent"  # --until-consistent: every address answers the same
    TIMEOUT = "timeout"  # the deadline passed first
    STOPPED = "stopped"  # SIGINT/SIGTERM, or the caller's stop event


FAST_INTERVAL = 0.025
"""Seconds between queries to an address that answers an older serial than another."""
FAST_QUERIES = 1200
"""Fast queries per address and new serial (30 s at 25 ms); then back to the interval."""
REAP_GRACE = 2.0
"""Seconds the per-address tasks get to end once the run is over; then abandoned."""


@dataclasses.dataclass(frozen=True, slots=True)
class MonitorOptions:
    interval: float = 1.0  # seconds between queries to each address (staggered)
    timeout: float = 2.0  # per SOA query
    concurrency: int = 32  # queries at once
    key: TsigKey | None = None
    until_serial: int | None = None
    until_next: bool = False  # until every address answers a serial newer than at the start
    until_consistent: bool = False
    deadline: float | None = None  # seconds
    fast_interval: float = FAST_INTERVAL
    fast_queries: int = FAST_QUERIES

    @property
    def waits(self) -> bool:
        """Whether the run ends on a condition (--until-*), not only on a stop."""
        return self.until_serial is not None or self.until_next or self.until_consistent


@dataclasses.dataclass(frozen=True, slots=True)
class MonitorSummary:
    """How a monitor run ended, and who lagged."""

    zone: str
    outcome: MonitorOutcome
    elapsed: float
    newest: int | None
    until_serial: int | None  # for --until-serial next: the new serial, once seen
    statuses: tuple[AddressStatus, ...]
    exit_code: int
    start_serial: int | None = None  # the newest serial when every address had answered once
    until_next: bool = False

    @property
    def target_serial(self) -> int | None:
        return self.until_serial if self.until_serial is not None else self.newest

    @property
    def lagging(self) -> tuple[AddressStatus, ...]:
        """Addresses not answering the serial waited for (or the newest)."""
        wanted = self.target_serial
        if self.until_next and self.until_serial is None:
            wanted = None  # no new serial seen anywhere: every address lags
        return tuple(
            status
            for status in self.statuses
            if (
                status.serial is None
                or status.error is not None
                or wanted is None
                or serial_compare(status.serial, wanted) not in (0, 1)
            )
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "event": "summary",
            "zone": self.zone,
            "result": self.outcome.value,
            "elapsed": round(self.elapsed, 3),
            "newest": self.newest,
            "start_serial": self.start_serial,
            "until_serial": "next"
            if self.until_next and self.until_serial is None
            else self.until_serial,
            "exit_code": self.exit_code,
            "lagging": [status.to_dict() for status in self.lagging],
            "servers": [status.to_dict() for status in self.statuses],
        }


MonitorSink = Callable[[MonitorEvent], None]


def stopped_summary(
    origin: dns.name.Name, options: MonitorOptions, outcome: MonitorOutcome, code: int
) -> MonitorSummary:
    """The summary of a run stopped (or timed out) before it had any address to ask."""
    return MonitorSummary(
        origin.to_text(),
        outcome,
        0.0,
        None,
        options.until_serial,
        (),
        code,
        until_next=options.until_next,
    )


class Monitor:
    """Poll the SOA on each target: ``summary = await Monitor(...).run(stop)``.

    One task per address asks at once, then every ``interval`` seconds, the
    addresses staggered over the interval so that the zone is looked at every
    ``interval / addresses`` seconds.  An address that answers an older serial
    than another is asked every ``fast_interval`` seconds (at most
    ``fast_queries`` times per new serial), so that the moment it catches up is
    known to a few tens of milliseconds.  At most ``concurrency`` queries run at
    once, each bounded by ``timeout``.

    With ``until_*`` the run ends as soon as the condition holds (exit 0) or when
    ``deadline`` passes (exit 1; 3+ if no address ever answered); otherwise, and
    in any case, when ``stop`` is set: exit 0, or ``stop_code()`` if the condition
    did not hold.  Every wait is bounded: the per-address tasks are cancelled
    repeatedly and also check a flag, since a cancel that lands as an answer
    arrives can be swallowed (``asyncio.wait_for`` in Python 3.11).
    """

    def __init__(
        self,
        origin: dns.name.Name,
        targets: Sequence[Target],
        *,
        options: MonitorOptions = MonitorOptions(),
        on_event: MonitorSink | None = None,
        stop_code: Callable[[], int] | None = None,
    ) -> None:
        if not any(target.address for target in targets):
            problems = "; ".join(f"{t.server}: {t.error}" for t in targets if t.error)
            raise NetworkError(
                "no address to watch" + (f" ({problems})" if problems else ""),
                zone=origin.to_text(),
            )
        self.origin = origin
        self.targets = tuple(targets)
        self.options = options
        self._on_event = on_event
        self._stop_code = stop_code or (lambda: int(ExitCode.INTERRUPTED))
        self.tracker = PropagationTracker(origin.to_text(), self.targets, started=time.monotonic())
        self.start_serial: int | None = None
        self._done = asyncio.Event()
        self._gate = asyncio.Semaphore(options.concurrency)
        self._stopping = False
        self._wakes: dict[int, asyncio.Event] = {}
        self._base_at: dict[int, float] = {}
        self._fast: dict[int, tuple[int | None, int]] = {}

    def statuses(self) -> tuple[AddressStatus, ...]:
        return self.tracker.statuses()

    def _condition(self) -> MonitorOutcome | None:
        tracker = self.tracker
        if self.start_serial is None and tracker.newest is not None and tracker.all_asked():
            self.start_serial = tracker.newest
        if self.options.until_serial is not None:
            return MonitorOutcome.REACHED if tracker.reached(self.options.until_serial) else None
        if self.options.until_next:
            if self.start_serial is None:
                return None
            return (
                MonitorOutcome.REACHED if tracker.reached(self.start_serial, newer=True) else None
            )
        if self.options.until_consistent:
            return MonitorOutcome.CONSISTENT if tracker.consistent_serial() is not None else None
        return None

    async def run(self, stop: asyncio.Event | None = None) -> MonitorSummary:
        stop = stop or asyncio.Event()
        started = time.monotonic()
        self.tracker = PropagationTracker(self.origin.to_text(), self.targets, started=started)
        self.start_serial = None
        self._done.clear()
        self._stopping = False
        watched = [index for index, target in enumerate(self.targets) if target.address]
        self._wakes = {index: asyncio.Event() for index in watched}
        interval = self.options.interval
        self._base_at = {
            index: started + interval * (rank + 1) / len(watched)
            for rank, index in enumerate(watched)
        }
        self._fast = {}
        polls = [
            asyncio.create_task(self._poll(index), name=f"monitor {self.targets[index].where}")
            for index in watched
        ]
        try:
            outcome = await self._wait(stop, polls)
        finally:
            self._stopping = True
            await _reap(polls)
        return self._summary(outcome)

    async def _wait(self, stop: asyncio.Event, polls: list[asyncio.Task[None]]) -> MonitorOutcome:
        """Until stopped, the condition holds, the deadline passes, or a task fails."""
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._done.wait())]
        try:
            done, _ = await asyncio.wait(
                [*waiters, *polls], timeout=self.options.deadline, return_when=FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        for task in done:
            if task in polls and not task.cancelled() and task.exception():
                raise task.exception()  # type: ignore[misc]
        if not done:
            return self._condition() or MonitorOutcome.TIMEOUT
        return self._condition() or MonitorOutcome.STOPPED

    def summary(self, outcome: MonitorOutcome) -> MonitorSummary:
        """Where the run stands, as it would end with ``outcome``."""
        return self._summary(outcome)

    def _summary(self, outcome: MonitorOutcome) -> MonitorSummary:
        if outcome is MonitorOutcome.TIMEOUT:
            code = int(ExitCode.DIFFERENT) if self.tracker.answered else self.tracker.worst_error()
        elif outcome is MonitorOutcome.STOPPED and self.options.waits:
            code = self._stop_code()
        else:
            code = int(ExitCode.OK)
        until = self.options.until_serial
        newest = self.tracker.newest
        if self.options.until_next and self.start_serial is not None and newest is not None:
            until = newest if serial_compare(newest, self.start_serial) == 1 else None
        return MonitorSummary(
            self.origin.to_text(),
            outcome,
            time.monotonic() - self.tracker.started,
            newest,
            until,
            self.tracker.statuses(),
            code,
            self.start_serial,
            self.options.until_next,
        )

    async def _poll(self, index: int) -> None:
        target = self.targets[index]
        assert target.address is not None
        while not self._stopping:
            async with self._gate:
                if self._stopping:
                    return
                sent = time.monotonic()
                try:
                    soa = await probe_soa(
                        self.origin,
                        target.address,
                        target.port,
                        key=self.options.key,
                        timeout=self.options.timeout,
                    )
                except SecdnsError as err:
                    events = self.tracker.observe(index, time.monotonic(), error=err, sent=sent)
                else:
                    events = self.tracker.observe(
                        index, time.monotonic(), serial=soa.serial, sent=sent
                    )
            if self._stopping:  # a cancel swallowed by a receive that had its answer
                return
            self._handle(events)
            if self._done.is_set():
                return
            await self._sleep(index, self._delay(index, sent))

    def _handle(self, events: list[MonitorEvent]) -> None:
        if self._on_event is not None:
            for event in events:
                self._on_event(event)
        if not events:
            return
        if any(e.kind is MonitorEventKind.SERIAL and e.serial == e.newest for e in events):
            for index, wake in self._wakes.items():  # the others may lag: look now
                if self._behind(index):
                    wake.set()
        if self._condition() is not None:
            self._done.set()

    def _behind(self, index: int) -> bool:
        serial, newest = self.tracker.serial_of(index), self.tracker.newest
        return serial is not None and newest is not None and serial_compare(serial, newest) == -1

    def _delay(self, index: int, sent: float) -> float:
        """Seconds until the next query to this address: fast while it lags behind
        another (within its budget for that serial), else its next staggered tick."""
        now = time.monotonic()
        if self._behind(index):
            newest = self.tracker.newest
            for_serial, left = self._fast.get(index, (None, 0))
            if for_serial != newest:
                left = self.options.fast_queries
            if left > 0:
                self._fast[index] = (newest, left - 1)
                return max(0.0, sent + self.options.fast_interval - now)
        interval = self.options.interval
        base_at = self._base_at[index]
        if base_at <= now:  # skip the ticks missed (slow answers, fast polling)
            base_at += interval * (int((now - base_at) / interval) + 1)
        self._base_at[index] = base_at
        return base_at - now

    async def _sleep(self, index: int, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if another address shows a newer serial."""
        wake = self._wakes[index]
        if delay > 0 and not wake.is_set():
            handle = asyncio.get_running_loop().call_later(delay, wake.set)
            try:
                await wake.wait()
            finally:
                handle.cancel()
        wake.clear()


async def _reap(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait for them, at most :data:`REAP_GRACE` seconds: a
    cancel can be swallowed, so it is repeated; a task still running is abandoned."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + REAP_GRACE
    pending = {task for task in tasks if not task.done()}
    while pending and loop.time() < give_up:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.05)
    if pending:
        log.warning("watch: %d address tasks did not stop in %gs", len(pending), REAP_GRACE)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning
