"""``watch``: follow zones as a secondary would (mirror), or watch a serial propagate.

Two foreground loops over the same engine, both awaitable so tests (and ``serve``)
run them as tasks and stop them with an :class:`asyncio.Event`:

* :class:`Mirror` keeps local copies in sync without a server.  One task per zone
  probes the SOA at the zone's refresh interval (or a fixed interval, with
  jitter), wakes at once on an accepted NOTIFY, and calls
  :func:`secdns.pull.pull_zone` when the serial moved, so IXFR, the store, the
  checks and the fallbacks are exactly those of ``pull``.  Failures back off from
  the SOA retry timer.  ``exec_command`` runs after each change.
* :class:`Monitor` polls the SOA on every address of every nameserver and reports
  who has the newest serial and how long each took to catch up.  The bookkeeping
  is :class:`PropagationTracker`: pure, driven by the times it is given.

NOTIFYs are decided by :mod:`secdns.notify`, as ``serve`` decides them.  No click,
no rich: events are value objects handed to a callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import enum
import logging
import os
import random
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from secdns.config import Limits
from secdns.endpoints import DEFAULT_PORT, Endpoint, format_addr, host_networks, resolve
from secdns.engine import SoaInfo, probe_soa
from secdns.errors import ExitCode, NetworkError, SecdnsError, UsageError
from secdns.keys import TsigKey
from secdns.notify import NotifyAcl, NotifyListener, RefusalLog, answer_notify
from secdns.pull import PullOptions, PullResult, Status, make_copy, pull_zone
from secdns.store import Store
from secdns.xfr import XfrKind, serial_compare

log = logging.getLogger(__name__)

DEFAULT_REFRESH = 3600.0
"""Seconds between checks of a zone whose SOA we have never seen."""
DEFAULT_RETRY = 60.0
"""Seconds before the first retry of a zone whose SOA we have never seen."""
MIN_SOA_TIMER = 5.0
"""SOA refresh/retry values below this are raised to it: a primary cannot make us spin."""
RETRY_BACKOFF_CAP = 8
"""Retries double from the SOA retry up to this many times it (or the refresh interval)."""
SHUTDOWN_GRACE = 5.0
"""Seconds a transfer or an --exec command in progress gets to finish on SIGINT/SIGTERM."""


def iso_time(at: float) -> str:
    """A wall-clock time as ISO 8601 UTC with milliseconds."""
    moment = datetime.datetime.fromtimestamp(at, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seconds_text(value: float) -> str:
    """``0.4s``, ``12s``, ``900s``: short, for logs and lines."""
    return f"{value:.1f}s" if value < 10 else f"{value:.0f}s"


@contextlib.contextmanager
def stop_on_signals(
    stop: asyncio.Event,
    signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM),
) -> Iterator[None]:
    """Set ``stop`` on SIGINT/SIGTERM while inside; restore the handlers on exit."""
    loop = asyncio.get_running_loop()
    installed = []
    for signum in signals:
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            continue
        installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


# --- mirror: follow zones ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class MirrorZone:
    """A zone to follow: where from, with which key, and where to (a file, or the store)."""

    origin: dns.name.Name
    primaries: tuple[Endpoint, ...]
    key: TsigKey | None = None
    output: Path | None = None
    allow_notify: tuple[str, ...] = ()  # networks allowed to NOTIFY besides the primaries

    @property
    def text(self) -> str:
        return self.origin.to_text()


@dataclasses.dataclass(frozen=True, slots=True)
class MirrorOptions:
    interval: float | None = None  # seconds between checks instead of the SOA refresh
    jitter: float = 0.1  # checks come up to this fraction early, to spread load
    concurrency: int = 16  # SOA queries and transfers at once
    timeout: float = 5.0  # per message
    lifetime: float = 3600.0  # per transfer
    limits: Limits = Limits()
    force: bool = False
    exec_command: str | None = None
    notify_listen: Endpoint | None = None
    grace: float = SHUTDOWN_GRACE


class MirrorEventKind(enum.Enum):
    SYNCED = "synced"  # first check: the local copy is current
    UPDATED = "updated"  # a transfer brought a new serial
    FAILED = "failed"  # a check failed; retry_in says when the next one is
    RECOVERED = "recovered"  # a check worked again after failures
    NOTIFY = "notify"  # a primary announced a change: checking now
    EXEC = "exec"  # the --exec command finished


@dataclasses.dataclass(frozen=True, slots=True)
class MirrorEvent:
    """Something that happened to one followed zone, for the renderers."""

    kind: MirrorEventKind
    zone: str
    at: float  # wall-clock time (time.time())
    serial: int | None = None  # the serial we hold after the event
    previous: int | None = None  # the serial before an update
    via: XfrKind = XfrKind.NONE
    primary: str | None = None
    file: str | None = None
    added: int = 0
    removed: int = 0
    retry_in: float | None = None
    failures: int = 0
    source: str | None = None  # who sent a NOTIFY
    exit_status: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "event": self.kind.value,
            "time": iso_time(self.at),
            "zone": self.zone,
            "serial": self.serial,
            "previous": self.previous,
            "via": self.via.value if self.via is not XfrKind.NONE else None,
            "primary": self.primary,
            "file": self.file,
            "added": self.added,
            "removed": self.removed,
            "retry_in": round(self.retry_in, 3) if self.retry_in is not None else None,
            "failures": self.failures,
            "source": self.source,
            "exit_status": self.exit_status,
            "error": self.error,
        }


def retry_delay(failures: int, refresh: float, retry: float) -> float:
    """Seconds before retry number ``failures`` (1, 2, ...): the SOA retry, doubling,
    capped at the larger of the refresh interval and ``RETRY_BACKOFF_CAP`` retries."""
    cap = max(refresh, retry * RETRY_BACKOFF_CAP)
    return min(retry * 2 ** min(max(failures, 1) - 1, 30), cap)


def exec_environment(
    base: Mapping[str, str],
    *,
    zone: str,
    old_serial: int | None,
    new_serial: int | None,
    file: str | None,
    kind: XfrKind,
) -> dict[str, str]:
    """The environment of an ``--exec`` command.

    Every inherited ``SECDNS_*`` variable is removed (one may hold ``--tsig``), then
    ``SECDNS_ZONE``, ``SECDNS_OLD_SERIAL`` (empty for a first transfer),
    ``SECDNS_NEW_SERIAL``, ``SECDNS_FILE`` and ``SECDNS_KIND`` (IXFR/AXFR) are set.
    """
    env = {name: value for name, value in base.items() if not name.startswith("SECDNS_")}
    env.update(
        SECDNS_ZONE=zone,
        SECDNS_OLD_SERIAL="" if old_serial is None else str(old_serial),
        SECDNS_NEW_SERIAL="" if new_serial is None else str(new_serial),
        SECDNS_FILE=file or "",
        SECDNS_KIND=kind.value if kind is not XfrKind.NONE else "",
    )
    return env


@dataclasses.dataclass(eq=False, slots=True)
class _Followed:
    """What the mirror knows of one zone between checks."""

    config: MirrorZone
    wake: asyncio.Event
    serial: int | None = None
    refresh: float | None = None
    retry: float | None = None
    expire: float | None = None
    failures: int = 0
    last_success: float | None = None  # monotonic
    expired_warned: bool = False
    busy: bool = False  # transferring or running --exec
    task: asyncio.Task[None] | None = None


EventSink = Callable[[MirrorEvent], None]


class Mirror:
    """Follow zones: ``await Mirror(zones, ...).run(stop)`` until ``stop`` is set.

    ``run()`` is ``startup()`` (NOTIFY socket, one task per zone), a wait for the
    stop event, then ``shutdown()``: stop listening, cancel idle zones, give
    transfers and --exec commands in progress ``grace`` seconds, cancel the rest.
    """

    def __init__(
        self,
        zones: Sequence[MirrorZone],
        *,
        store: Store | None = None,
        options: MirrorOptions = MirrorOptions(),
        on_event: EventSink | None = None,
    ) -> None:
        if not zones:
            raise UsageError("no zone to watch")
        if store is None and any(zone.output is None for zone in zones):
            raise UsageError("each zone needs an output file, or give a store directory")
        self.options = options
        self.store = store
        self._on_event = on_event
        self._followed: dict[dns.name.Name, _Followed] = {}
        for zone in zones:
            if zone.origin in self._followed:
                raise UsageError(f"zone {zone.text} given twice")
            self._followed[zone.origin] = _Followed(zone, asyncio.Event())
        self._gate = asyncio.Semaphore(options.concurrency)
        self._exec_lock = asyncio.Lock()
        self._stopping = False
        self._transport: asyncio.DatagramTransport | None = None
        self._listener: NotifyListener | None = None
        self._notify_task: asyncio.Task[None] | None = None
        self._notify_table: dict[dns.name.Name, NotifyAcl] = {}
        self._keyring = {
            dns.name.from_text(z.key.name): z.key.to_dnspython() for z in zones if z.key is not None
        }
        self._refusals = RefusalLog(log, prefix="watch")

    # -- public

    @property
    def notify_address(self) -> tuple[str, int] | None:
        """The (address, port) the NOTIFY listener is bound to, once started."""
        if self._transport is None:
            return None
        sockname = self._transport.get_extra_info("sockname")
        return (str(sockname[0]), int(sockname[1]))

    def serial(self, origin: dns.name.Name) -> int | None:
        """The serial we hold for a zone (None before the first success)."""
        return self._followed[origin].serial

    def poke(self, origin: dns.name.Name) -> bool:
        """Check a zone now (as a NOTIFY does); pokes while a check runs coalesce."""
        followed = self._followed.get(origin)
        if followed is None:
            return False
        followed.wake.set()
        return True

    async def run(self, stop: asyncio.Event) -> None:
        await self.startup()
        try:
            stopper = asyncio.ensure_future(stop.wait())
            tasks = [f.task for f in self._followed.values() if f.task is not None]
            if self._notify_task is not None:
                tasks.append(self._notify_task)
            done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            for task in done:
                if task is not stopper and not task.cancelled() and task.exception():
                    raise task.exception()  # type: ignore[misc]
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        listen = self.options.notify_listen
        if listen is not None:
            if not listen.is_address:
                raise UsageError(f"--notify-listen needs an address, not {listen.host!r}")
            self._notify_table = await self._build_notify_table()
            queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue(maxsize=256)
            loop = asyncio.get_running_loop()
            try:
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda: NotifyListener(queue), local_addr=(listen.host, listen.port)
                )
            except OSError as err:
                raise NetworkError(
                    f"cannot listen for NOTIFY on {listen}: {err.strerror or err}"
                ) from err
            self._transport = transport
            self._listener = protocol
            self._notify_task = asyncio.create_task(
                self._answer_notifies(queue), name="watch NOTIFY"
            )
            log.info(
                "watch: listening for NOTIFY on %s for %d zones", listen, len(self._notify_table)
            )
        for followed in self._followed.values():
            followed.task = asyncio.create_task(
                self._follow(followed), name=f"watch {followed.config.text}"
            )

    async def shutdown(self) -> None:
        self._stopping = True
        if self._transport is not None:
            self._transport.close()
        tasks = [f.task for f in self._followed.values() if f.task is not None]
        if self._notify_task is not None:
            self._notify_task.cancel()
            tasks.append(self._notify_task)
        busy = []
        for followed in self._followed.values():
            followed.wake.set()
            if followed.task is None or followed.task.done():
                continue
            if followed.busy:
                busy.append(followed.task)
            else:
                followed.task.cancel()
        if busy:
            log.info(
                "watch: waiting up to %s for %d transfers or commands to finish",
                seconds_text(self.options.grace),
                len(busy),
            )
            _, pending = await asyncio.wait(busy, timeout=self.options.grace)
            for task in pending:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- NOTIFY

    async def _build_notify_table(self) -> dict[dns.name.Name, NotifyAcl]:
        table: dict[dns.name.Name, NotifyAcl] = {}
        for origin, followed in self._followed.items():
            addresses: list[str] = []
            for endpoint in followed.config.primaries:
                try:
                    addresses += [address for address, _ in await resolve(endpoint)]
                except SecdnsError as err:
                    log.warning(
                        "watch: zone=%s NOTIFY from %s will be refused: %s",
                        followed.config.text,
                        endpoint,
                        err.message,
                    )
            key = followed.config.key
            table[origin] = NotifyAcl(
                sources=host_networks(addresses) + host_networks(followed.config.allow_notify),
                zone_key=dns.name.from_text(key.name) if key is not None else None,
            )
        return table

    async def _answer_notifies(self, queue: asyncio.Queue[tuple[bytes, tuple[str, int]]]) -> None:
        while True:
            wire, addr = await queue.get()
            decision = answer_notify(wire, addr[0], self._notify_table, self._keyring)
            if decision.response is not None and self._transport is not None:
                self._transport.sendto(decision.response, addr)
            if decision.zone is None:
                if decision.rcode is not None:
                    self._refusals.refused(addr[0], str(decision.qname or "?"), decision.reason)
                else:
                    log.debug("watch: NOTIFY from %s %s", format_addr(*addr), decision.reason)
                continue
            source = format_addr(*addr)
            followed = self._followed[decision.zone]
            log.info("watch: zone=%s NOTIFY from %s: checking now", followed.config.text, source)
            self._emit(
                MirrorEvent(
                    MirrorEventKind.NOTIFY,
                    followed.config.text,
                    time.time(),
                    serial=followed.serial,
                    source=source,
                )
            )
            followed.wake.set()

    # -- one zone

    def _emit(self, event: MirrorEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    async def _follow(self, followed: _Followed) -> None:
        while not self._stopping:
            followed.wake.clear()
            delay = await self._check(followed)
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await followed.wake.wait()

    async def _check(self, followed: _Followed) -> float:
        """Probe, pull if the serial moved, run --exec; the seconds until the next check."""
        result: PullResult | None = None
        try:
            async with self._gate:
                soa = await self._probe(followed)
                followed.refresh, followed.retry = float(soa.refresh), float(soa.retry)
                followed.expire = float(soa.expire)
                if followed.serial is None or soa.serial != followed.serial:
                    followed.busy = True
                    # a fresh copy per pull: nothing of the zone stays in memory between
                    copy = make_copy(
                        followed.config.origin, store=self.store, output=followed.config.output
                    )
                    result = await pull_zone(
                        followed.config.origin,
                        list(followed.config.primaries),
                        copy,
                        options=self._pull_options(followed),
                    )
                    if result.error is not None:
                        raise result.error
        except SecdnsError as err:
            followed.busy = False
            return self._failed(followed, err)
        except Exception as err:  # a bug: say so loudly, keep following the other zones
            followed.busy = False
            log.exception("watch: zone=%s internal error", followed.config.text)
            return self._failed(followed, SecdnsError(f"internal error: {err!r}"))
        try:
            self._succeeded(followed)
            if result is not None:
                await self._took(followed, result)
        finally:
            followed.busy = False
        return self._jittered(self._refresh_base(followed))

    async def _probe(self, followed: _Followed) -> SoaInfo:
        """The SOA from the first primary address that answers, as pull tries them."""
        zone = followed.config.text
        errors: list[SecdnsError] = []
        for endpoint in followed.config.primaries:
            try:
                addresses = await resolve(endpoint)
            except SecdnsError as err:
                errors.append(err.with_context(zone=zone))
                continue
            for address, port in addresses:
                try:
                    return await probe_soa(
                        followed.config.origin,
                        address,
                        port,
                        key=followed.config.key,
                        timeout=self.options.timeout,
                    )
                except SecdnsError as err:
                    errors.append(err.with_context(zone=zone))
        if not errors:
            raise NetworkError("no primary to check", zone=zone)
        if len(errors) == 1:
            raise errors[0]
        last = errors[-1]
        summary = "; ".join(f"{e.server}: {e.message}" for e in errors)
        raise type(last)(f"all {len(errors)} primaries failed: {summary}", zone=zone)

    def _pull_options(self, followed: _Followed) -> PullOptions:
        return PullOptions(
            key=followed.config.key,
            force=self.options.force,
            timeout=self.options.timeout,
            lifetime=self.options.lifetime,
            limits=self.options.limits,
        )

    def _succeeded(self, followed: _Followed) -> None:
        if followed.failures:
            log.warning(
                "watch: zone=%s primary answers again after %d failed checks",
                followed.config.text,
                followed.failures,
            )
            self._emit(
                MirrorEvent(
                    MirrorEventKind.RECOVERED,
                    followed.config.text,
                    time.time(),
                    serial=followed.serial,
                    failures=followed.failures,
                )
            )
        followed.failures = 0
        followed.last_success = time.monotonic()
        followed.expired_warned = False

    async def _took(self, followed: _Followed, result: PullResult) -> None:
        zone = followed.config.text
        first = followed.serial is None
        followed.serial = result.serial_to
        if result.status is not Status.TRANSFERRED:
            if first:
                self._emit(
                    MirrorEvent(
                        MirrorEventKind.SYNCED,
                        zone,
                        time.time(),
                        serial=result.serial_to,
                        primary=result.primary,
                        file=self._file(followed),
                    )
                )
            return
        self._emit(
            MirrorEvent(
                MirrorEventKind.UPDATED,
                zone,
                time.time(),
                serial=result.serial_to,
                previous=result.serial_from,
                via=result.kind,
                primary=result.primary,
                file=result.output,
                added=result.added,
                removed=result.removed,
            )
        )
        if self.options.exec_command:
            await self._run_exec(followed, result)

    def _file(self, followed: _Followed) -> str | None:
        if followed.config.output is not None:
            return str(followed.config.output)
        if self.store is not None:
            return str(self.store.zone_path(followed.config.origin))
        return None

    async def _run_exec(self, followed: _Followed, result: PullResult) -> None:
        assert self.options.exec_command is not None
        zone = followed.config.text
        env = exec_environment(
            os.environ,
            zone=zone,
            old_serial=result.serial_from,
            new_serial=result.serial_to,
            file=result.output,
            kind=result.kind,
        )
        async with self._exec_lock:  # one command at a time: hooks often share a repo
            try:
                process = await asyncio.create_subprocess_shell(
                    self.options.exec_command,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=2,
                    start_new_session=True,
                )  # its output is not our data: stderr
            except OSError as err:
                log.error("watch: zone=%s cannot run --exec: %s", zone, err.strerror or err)
                self._emit(
                    MirrorEvent(
                        MirrorEventKind.EXEC,
                        zone,
                        time.time(),
                        serial=result.serial_to,
                        error=str(err),
                    )
                )
                return
            try:
                status = await process.wait()
            except asyncio.CancelledError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGTERM)
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(process.wait(), 1.0)
                raise
        if status != 0:
            log.warning(
                "watch: zone=%s --exec exited with status %d (serial %s)",
                zone,
                status,
                result.serial_to,
            )
        else:
            log.info("watch: zone=%s --exec done (serial %s)", zone, result.serial_to)
        self._emit(
            MirrorEvent(
                MirrorEventKind.EXEC,
                zone,
                time.time(),
                serial=result.serial_to,
                file=result.output,
                exit_status=status,
            )
        )

    def _failed(self, followed: _Followed, err: SecdnsError) -> float:
        followed.failures += 1
        zone = followed.config.text
        delay = self._jittered(
            retry_delay(followed.failures, self._refresh_base(followed), self._retry_base(followed))
        )
        what = "primary unreachable" if isinstance(err, NetworkError) else "check failed"
        log.warning(
            "watch: zone=%s %s, retry in %s: %s", zone, what, seconds_text(delay), err.one_line()
        )
        if (
            followed.last_success is not None
            and followed.expire is not None
            and not followed.expired_warned
            and time.monotonic() - followed.last_success > followed.expire
        ):
            followed.expired_warned = True
            log.warning(
                "watch: zone=%s not refreshed for longer than the SOA expire (%s): "
                "keeping the last copy, which a secondary would stop serving",
                zone,
                seconds_text(followed.expire),
            )
        self._emit(
            MirrorEvent(
                MirrorEventKind.FAILED,
                zone,
                time.time(),
                serial=followed.serial,
                retry_in=delay,
                failures=followed.failures,
                error=err.one_line(),
            )
        )
        return delay

    def _refresh_base(self, followed: _Followed) -> float:
        if self.options.interval is not None:
            return self.options.interval
        return max(followed.refresh or DEFAULT_REFRESH, MIN_SOA_TIMER)

    def _retry_base(self, followed: _Followed) -> float:
        retry = max(followed.retry or DEFAULT_RETRY, MIN_SOA_TIMER)
        return min(retry, self._refresh_base(followed))

    def _jittered(self, delay: float) -> float:
        return delay * (1.0 - self.options.jitter * random.random())


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
