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
import time
from collections.abc import Callable, Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from secdns.addresses import resolve
from secdns.endpoints import DEFAULT_PORT, Endpoint, format_addr
from secdns.engine import probe_soa
from secdns.errors import ExitCode, NetworkError, SecdnsError
from secdns.keys import TsigKey
from secdns.store import iso_time
from secdns.xfr import serial_compare

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
    lag: float | None = None  # seconds after the first address showed this serial
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
            "lag": round(self.lag, 3) if self.lag is not None else None,
            "newest": self.newest,
            "error": self.error,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class AddressStatus:
    """Where one address stands, for the table and the summary."""

    server: str
    address: str
    serial: int | None
    lag: float | None  # for its current serial; None if it had it when we started
    changed_at: float | None  # wall-clock time it started answering that serial
    error: str | None  # its latest query failed
    current: bool  # answers the newest serial

    def to_dict(self) -> dict[str, object]:
        return {
            "server": self.server,
            "address": self.address,
            "serial": self.serial,
            "lag": round(self.lag, 3) if self.lag is not None else None,
            "changed": iso_time(self.changed_at) if self.changed_at is not None else None,
            "error": self.error,
            "current": self.current,
        }


@dataclasses.dataclass(slots=True)
class _Seen:
    target: Target
    serial: int | None = None
    previous: int | None = None
    lag: float | None = None
    changed: float | None = None  # monotonic
    error: str | None = None
    error_code: int = 0


class PropagationTracker:
    """Who answers which serial, since when, and how long after the first to show it.

    Pure: :meth:`observe` is given each answer (or failure) and its monotonic time,
    and returns the events it caused.  A serial's *lag* at an address is the time it
    first answered it minus the time any address first answered it; an address
    that already had a serial at its first answer has no lag for it.
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
        self._first_seen: dict[int, float] = {}
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
        lag: float | None = None,
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
        self, index: int, now: float, *, serial: int | None = None, error: SecdnsError | None = None
    ) -> list[MonitorEvent]:
        seen = self._seen[index]
        events: list[MonitorEvent] = []
        if serial is None:
            message = error.message if error is not None else "no answer"
            if seen.error != message:
                seen.error = message
                seen.error_code = int(error.exit_code) if error is not None else ExitCode.NETWORK
                events.append(
                    self._event(
                        MonitorEventKind.FAILED, now, seen, serial=seen.serial, error=message
                    )
                )
            return events
        self.answered = True
        recovered = seen.error is not None
        seen.error = None
        if serial == seen.serial:
            if recovered:
                events.append(self._event(MonitorEventKind.RECOVERED, now, seen, serial=serial))
        else:
            first = self._first_seen.setdefault(serial, now)
            if self.newest is None or serial_compare(serial, self.newest) == 1:
                self.newest = serial
            # at its first answer an address may have had the serial for long: no lag
            seen.lag = None if seen.serial is None else now - first
            seen.previous, seen.serial, seen.changed = seen.serial, serial, now
            events.append(
                self._event(
                    MonitorEventKind.SERIAL,
                    now,
                    seen,
                    serial=serial,
                    previous=seen.previous,
                    lag=seen.lag,
                )
            )
        consistent = self.consistent_serial()
        if consistent is not None and consistent != self._announced:
            self._announced = consistent
            events.append(
                self._event(
                    MonitorEventKind.CONSISTENT,
                    now,
                    serial=consistent,
                    lag=now - self._first_seen[consistent],
                )
            )
        elif consistent is None and self._serials_differ():
            self._announced = None
        return events

    def _serials_differ(self) -> bool:
        return len({seen.serial for seen in self._watched}) > 1

    def consistent_serial(self) -> int | None:
        """The serial every address answers right now, if they all answer the same."""
        serials = set()
        for seen in self._watched:
            if seen.serial is None or seen.error is not None:
                return None
            serials.add(seen.serial)
        return serials.pop() if len(serials) == 1 else None

    def reached(self, serial: int) -> bool:
        """Whether every address answers ``serial`` or newer right now (RFC 1982)."""
        if not self._watched:
            return False
        return all(
            seen.serial is not None
            and seen.error is None
            and serial_compare(seen.serial, serial) in (0, 1)
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


@dataclasses.dataclass(frozen=True, slots=True)
class MonitorOptions:
    interval: float = 1.0  # seconds between queries to each address
    timeout: float = 2.0  # per SOA query
    concurrency: int = 32  # queries at once
    key: TsigKey | None = None
    until_serial: int | None = None
    until_consistent: bool = False
    deadline: float | None = None  # seconds


@dataclasses.dataclass(frozen=True, slots=True)
class MonitorSummary:
    """How a monitor run ended, and who lagged."""

    zone: str
    outcome: MonitorOutcome
    elapsed: float
    newest: int | None
    until_serial: int | None
    statuses: tuple[AddressStatus, ...]
    exit_code: int

    @property
    def target_serial(self) -> int | None:
        return self.until_serial if self.until_serial is not None else self.newest

    @property
    def lagging(self) -> tuple[AddressStatus, ...]:
        """Addresses not answering the serial waited for (or the newest)."""
        wanted = self.target_serial
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
            "until_serial": self.until_serial,
            "exit_code": self.exit_code,
            "lagging": [status.to_dict() for status in self.lagging],
            "servers": [status.to_dict() for status in self.statuses],
        }


MonitorSink = Callable[[MonitorEvent], None]


class Monitor:
    """Poll the SOA on each target: ``summary = await Monitor(...).run(stop)``.

    One task per address queries every ``interval`` seconds (at most
    ``concurrency`` queries at once, each bounded by ``timeout``).  With
    ``until_serial``/``until_consistent`` the run ends as soon as the condition
    holds (exit 0) or when ``deadline`` passes (exit 1; 3+ if no address ever
    answered); otherwise when ``stop`` is set.
    """

    def __init__(
        self,
        origin: dns.name.Name,
        targets: Sequence[Target],
        *,
        options: MonitorOptions = MonitorOptions(),
        on_event: MonitorSink | None = None,
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
        self.tracker = PropagationTracker(origin.to_text(), self.targets, started=time.monotonic())
        self._done = asyncio.Event()
        self._gate = asyncio.Semaphore(options.concurrency)

    def statuses(self) -> tuple[AddressStatus, ...]:
        return self.tracker.statuses()

    def _condition(self) -> MonitorOutcome | None:
        if self.options.until_serial is not None:
            return (
                MonitorOutcome.REACHED if self.tracker.reached(self.options.until_serial) else None
            )
        if self.options.until_consistent:
            return (
                MonitorOutcome.CONSISTENT if self.tracker.consistent_serial() is not None else None
            )
        return None

    async def run(self, stop: asyncio.Event | None = None) -> MonitorSummary:
        stop = stop or asyncio.Event()
        self.tracker = PropagationTracker(
            self.origin.to_text(), self.targets, started=time.monotonic()
        )
        self._done.clear()
        polls = [
            asyncio.create_task(self._poll(index), name=f"monitor {target.where}")
            for index, target in enumerate(self.targets)
            if target.address is not None
        ]
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._done.wait())]
        outcome = MonitorOutcome.STOPPED
        try:
            async with asyncio.timeout(self.options.deadline):
                done, _ = await asyncio.wait(
                    [*waiters, *polls], return_when=asyncio.FIRST_COMPLETED
                )
            for task in done:
                if task in polls and not task.cancelled() and task.exception():
                    raise task.exception()  # type: ignore[misc]
            outcome = self._condition() or MonitorOutcome.STOPPED
        except TimeoutError:
            outcome = self._condition() or MonitorOutcome.TIMEOUT
        finally:
            for task in [*waiters, *polls]:
                task.cancel()
            await asyncio.gather(*waiters, *polls, return_exceptions=True)
        return self._summary(outcome)

    def _summary(self, outcome: MonitorOutcome) -> MonitorSummary:
        if outcome is MonitorOutcome.TIMEOUT:
            code = int(ExitCode.DIFFERENT) if self.tracker.answered else self.tracker.worst_error()
        else:
            code = int(ExitCode.OK)
        return MonitorSummary(
            self.origin.to_text(),
            outcome,
            time.monotonic() - self.tracker.started,
            self.tracker.newest,
            self.options.until_serial,
            self.tracker.statuses(),
            code,
        )

    async def _poll(self, index: int) -> None:
        target = self.targets[index]
        assert target.address is not None
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            async with self._gate:
                try:
                    soa = await probe_soa(
                        self.origin,
                        target.address,
                        target.port,
                        key=self.options.key,
                        timeout=self.options.timeout,
                    )
                except SecdnsError as err:
                    events = self.tracker.observe(index, time.monotonic(), error=err)
                else:
                    events = self.tracker.observe(index, time.monotonic(), serial=soa.serial)
            if self._on_event is not None:
                for event in events:
                    self._on_event(event)
            if events and self._condition() is not None:
                self._done.set()
                return
            next_at += self.options.interval
            delay = next_at - loop.time()
            if delay < 0:  # slower than the interval: skip the missed ticks
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(delay)
