"""``watch --servers``: watch a serial propagate to every address of every nameserver.

:class:`Monitor` polls the SOA on every address of every nameserver and reports
who has the newest serial and how long each took to catch up; it decides when to
ask whom (staggered, fast while behind) and when the run ends, within bounds.  The
bookkeeping is :class:`~secdns.propagation.PropagationTracker`: pure, driven by
the times it is given.  No click, no rich: events are value objects handed to a
callback.
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

from secdns.addresses import resolve
from secdns.endpoints import DEFAULT_PORT, Endpoint, format_addr, host_networks
from secdns.engine import probe_soa
from secdns.errors import ExitCode, NetworkError, SecdnsError
from secdns.keys import TsigKey
from secdns.notify import NotifyAcl, RefusalLog, answer_notify, listen_notify
from secdns.propagation import (
    AddressStatus,
    MonitorEvent,
    PropagationTracker,
    lag_fields,
)
from secdns.propagation import Lag as Lag  # re-exported: the renderers read it here
from secdns.propagation import MonitorEventKind as MonitorEventKind  # re-exported
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
    primary: bool = False  # the primary's address: where changes start, asked often

    @property
    def where(self) -> str:
        return format_addr(self.address, self.port) if self.address else "-"


def _dedupe(targets: list[Target]) -> list[Target]:
    """One target per address (the first name given for it), primary if any was."""
    unique: dict[tuple[str | None, int, str], Target] = {}
    for target in targets:
        key = (target.address, target.port, target.server if target.address is None else "")
        kept = unique.get(key)
        if kept is None:
            unique[key] = target
        elif target.primary and not kept.primary:
            unique[key] = dataclasses.replace(kept, primary=True)
    return list(unique.values())


def mark_primary(targets: Sequence[Target], primary: Sequence[Target]) -> list[Target]:
    """``targets`` with the addresses of ``primary`` marked (and added, first, when
    they were not there): the monitor asks them every ``primary_interval``."""
    marked = [dataclasses.replace(target, primary=True) for target in primary]
    return _dedupe(marked + list(targets))


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

    async def primary_name() -> str | None:
        """The SOA MNAME: the primary, when it is one of the NS."""
        try:
            soa = await resolver.resolve(origin, dns.rdatatype.SOA, search=False)
        except dns.exception.DNSException:
            return None
        return str(soa[0].mname)

    async def addresses(name: dns.name.Name) -> list[Target]:
        found: list[str] = []
        problems: list[str] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                rrs = await resolver.resolve(name, rdtype, search=False)
            except dns.resolver.NoAnswer:
                continue
            except dns.exception.DNSException as err:
                problems.append(str(err))
                continue
            found += [rdata.address for rdata in rrs]
        if not found:
            return [Target(name.to_text(), None, port, "; ".join(problems) or "no address")]
        return [Target(name.to_text(), address, port) for address in found]

    per_name, mname = await asyncio.gather(
        asyncio.gather(*(addresses(name) for name in names)), primary_name()
    )
    return _dedupe(
        [
            dataclasses.replace(target, primary=True) if target.server == mname else target
            for group in per_name
            for target in group
        ]
    )


class MonitorOutcome(enum.Enum):
    REACHED = "reached"  # --until-serial: every address has it
    CONSISTENT = "consistent"  # --until-consistent: every address answers the same
    TIMEOUT = "timeout"  # the deadline passed first
    STOPPED = "stopped"  # SIGINT/SIGTERM, or the caller's stop event


FAST_INTERVAL = 0.025
"""Seconds between queries to an address that answers an older serial than another."""
FAST_QUERIES = 1200
"""Fast queries per address and new serial (30 s at 25 ms); then back to the interval."""
NOTIFY_FAST = 2.0
"""Seconds every address is asked every ``fast_interval`` after a NOTIFY (until it
shows another serial); then the primary, once it has the new serial, keeps the
addresses behind it fast."""
PRIMARY_INTERVAL = 0.05
"""Seconds between queries to each address of the primary: 20 SOA queries a second to
one server, so that the moment a change starts is known to this."""
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
    primary_interval: float = PRIMARY_INTERVAL  # for the targets marked primary
    notify_listen: Endpoint | None = None  # NOTIFYs from the watched servers: ask all now

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
    def slowest(self) -> Lag | None:
        """The largest lag among the addresses (by its middle), None if none has one."""
        lags = [status.lag for status in self.statuses if status.lag is not None]
        return max(lags, key=lambda lag: lag.best, default=None)

    @property
    def has_primary(self) -> bool:
        return any(status.primary for status in self.statuses)

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
            **lag_fields(self.slowest),
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
    ``interval / addresses`` seconds.  The primary's addresses (targets marked
    ``primary``), where a change starts, are asked every ``primary_interval``, so
    that the start of a change is known to that; an address that answers an
    older serial than another is asked at once and then every ``fast_interval``
    seconds (at most ``fast_queries`` times per new serial), so that the moment
    it catches up is known to a few tens of milliseconds.  Lags are measured from
    the primary's window (see :class:`~secdns.propagation.PropagationTracker`).
    At most ``concurrency`` queries run at once, each bounded by ``timeout``.
    With ``notify_listen``, a NOTIFY for the zone from a watched address (the
    primary's also-notify) has every address asked at once and every
    ``fast_interval`` for :data:`NOTIFY_FAST` seconds: the primary's switch is
    then bounded by the NOTIFY, not by its next query.

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
        self._primaries = [i for i, target in enumerate(self.targets) if target.primary]
        self.tracker = self._tracker(time.monotonic())
        self.start_serial: int | None = None
        self._done = asyncio.Event()
        self._gate = asyncio.Semaphore(options.concurrency)
        self._stopping = False
        self._wakes: dict[int, asyncio.Event] = {}
        self._base_at: dict[int, float] = {}
        self._fast: dict[int, tuple[int | None, int]] = {}
        self._newest: int | None = None  # the newest serial the wakes were for
        self._after_notify: dict[int, tuple[int | None, float]] = {}  # serial, fast until

    def _tracker(self, started: float) -> PropagationTracker:
        return PropagationTracker(
            self.origin.to_text(), self.targets, started=started, primaries=self._primaries
        )

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
        self.tracker = self._tracker(started)
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
        self._newest = None
        self._after_notify = {}
        listening = await self._listen() if self.options.notify_listen is not None else None
        polls = [
            asyncio.create_task(self._poll(index), name=f"monitor {self.targets[index].where}")
            for index in watched
        ]
        try:
            outcome = await self._wait(stop, polls)
        finally:
            self._stopping = True
            if listening is not None:
                listening[0].close()
                listening[1].cancel()
            await _reap(polls if listening is None else [*polls, listening[1]])
        self._handle(self.tracker.settle())
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
            if task in polls and not task.cancelled():
                error = task.exception()
                if error is not None:
                    raise error
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

    async def _listen(self) -> tuple[asyncio.DatagramTransport, asyncio.Task[None]]:
        """The NOTIFY listener: the socket, and the task answering what it receives."""
        assert self.options.notify_listen is not None
        transport, _, queue = await listen_notify(self.options.notify_listen)
        key = self.options.key
        acl = NotifyAcl(
            sources=host_networks([t.address for t in self.targets if t.address is not None]),
            zone_key=dns.name.from_text(key.name) if key is not None else None,
        )
        keyring = {dns.name.from_text(key.name): key.to_dnspython()} if key is not None else {}
        refusals = RefusalLog(log, prefix="watch")

        async def answer() -> None:
            while True:
                wire, addr = await queue.get()
                decision = answer_notify(wire, addr[0], {self.origin: acl}, keyring)
                if decision.response is not None:
                    transport.sendto(decision.response, addr)
                if decision.zone is not None:
                    self._notified(format_addr(*addr))
                elif decision.rcode is not None:
                    refusals.refused(addr[0], str(decision.qname or "?"), decision.reason)

        log.info(
            "watch: zone=%s listening for NOTIFY on %s", self.origin, self.options.notify_listen
        )
        return transport, asyncio.create_task(answer(), name="monitor NOTIFY")

    def _notified(self, source: str) -> None:
        """A NOTIFY: ask every address now, and fast for a while."""
        now = time.monotonic()
        log.info("watch: zone=%s NOTIFY from %s: asking every address now", self.origin, source)
        for index, wake in self._wakes.items():
            self._after_notify[index] = (self.tracker.serial_of(index), now + NOTIFY_FAST)
            wake.set()
        self._handle([self.tracker.notified(now, source)])

    def _handle(self, events: list[MonitorEvent]) -> None:
        if self._on_event is not None:
            for event in events:
                self._on_event(event)
        newest = self.tracker.newest
        if newest != self._newest:  # a new serial somewhere (maybe held back: no event yet)
            self._newest = newest
            for index, wake in self._wakes.items():  # the others may lag: look now
                if self._behind(index):
                    wake.set()
        if not events:
            return
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
        notified = self._after_notify.get(index)
        if notified is not None:
            serial, until = notified
            if self.tracker.serial_of(index) == serial and now < until:
                return max(0.0, sent + self.options.fast_interval - now)
            del self._after_notify[index]
        if self.targets[index].primary:
            return max(0.0, sent + self.options.primary_interval - now)
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
