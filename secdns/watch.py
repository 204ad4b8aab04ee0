"""``watch``: follow zones as a secondary would (mirror).

(The propagation monitor, ``watch --servers``, is :mod:`secdns.monitor`.)

:class:`Mirror` keeps local copies in sync without a server, awaitable so tests
run it as a task and stop it with an :class:`asyncio.Event`.  One task per zone
probes the SOA at the zone's refresh interval (or a fixed interval, with
jitter), wakes at once on an accepted NOTIFY, and calls
:func:`secdns.pull.pull_zone` when the serial moved, so IXFR, the store, the
checks and the fallbacks are exactly those of ``pull``.  Failures back off from
the SOA retry timer.  ``exec_command`` runs after each change.

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
from secdns.endpoints import Endpoint, format_addr, host_networks, resolve
from secdns.engine import SoaInfo, probe_soa
from secdns.errors import NetworkError, SecdnsError, UsageError
from secdns.keys import TsigKey
from secdns.notify import NotifyAcl, NotifyListener, RefusalLog, answer_notify
from secdns.pull import PullOptions, PullResult, Status, make_copy, pull_zone
from secdns.store import Store
from secdns.xfr import XfrKind

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
