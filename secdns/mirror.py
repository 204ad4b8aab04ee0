"""``watch``: follow zones as a secondary would, into files (the mirror).

:class:`Mirror` keeps local copies in sync without a server, awaitable so tests
run it as a task and stop it with an :class:`asyncio.Event`.  Each zone has a
:class:`secdns.refresh.Refresher` (the scheduler ``serve`` uses too): at the
zone's refresh interval (or a fixed interval), with jitter, or at once on an
accepted NOTIFY (decided by :mod:`secdns.notify`, as ``serve`` decides them), it
probes the SOA and calls :func:`secdns.pull.pull_zone` with that SOA when the
serial moved, so IXFR, the store, the checks and the fallbacks are exactly those
of ``pull``.  ``exec_command`` runs after each change (:mod:`secdns.hook`).  No
click, no rich: events are value objects handed to a callback.

About 720 lines, kept whole: past the event values it is one class whose parts
(startup/shutdown, the NOTIFY table, one zone's check and its events) share the
per-zone state; the scheduler, NOTIFY decisions, pull and the hook are already
modules of their own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

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

from secdns import tcpstream
from secdns.addresses import resolve
from secdns.config import Limits
from secdns.copies import ZoneCopy, make_copy
from secdns.endpoints import Endpoint, format_addr, host_networks
from secdns.errors import NetworkError, SecdnsError, TimeoutError_, UsageError, said_once
from secdns.hook import exec_environment, run_command
from secdns.keys import TsigKey
from secdns.notify import NotifyAcl, NotifyListener, RefusalLog, answer_notify, listen_notify
from secdns.pull import (
    RETRANSFER_HINT,
    PullOptions,
    PullResult,
    Status,
    probe_primaries,
    pull_zone,
    settle,
)
from secdns.refresh import Refresher, RefreshPolicy, ZoneStatus
from secdns.server.persist import StoreQueue
from secdns.store import Store, epoch, iso_time
from secdns.unreachable import (
    DEFAULT_HOLD,
    Unreachable,
    admitter,
    notify_ports,
    wake_failing,
)
from secdns.watch import SHUTDOWN_GRACE, seconds_text
from secdns.xfr import XfrKind
from secdns.xot import TlsError, TlsSettings

log = logging.getLogger(__name__)
SHOWN_AS_EVENT = {"shown_as_event": True}
"""``extra=`` of a log line that says what an event also says: a terminal that shows
the events drops it (one failure, one line); piped, both go out (stderr, stdout)."""

# --- mirror: follow zones ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class MirrorZone:
    """A zone to follow: where from, with which key, and where to (a file, or the store)."""

    origin: dns.name.Name
    primaries: tuple[Endpoint, ...]
    key: TsigKey | None = None
    output: Path | None = None
    allow_notify: tuple[str, ...] = ()  # networks allowed to NOTIFY besides the primaries
    tls: TlsSettings | None = None  # XoT from the primaries
    request_ixfr: bool = True  # False: AXFR only ([[zone]] request_ixfr = false)
    notify_key_required: bool = False  # an unsigned NOTIFY is refused ([[zone]])

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
    keep_connections: bool = True  # [server] keep_connections
    unreachable_hold: float = DEFAULT_HOLD  # [server] unreachable_hold (0: off)


class MirrorEventKind(enum.Enum):
    SYNCED = "synced"  # first check: the local copy is current
    UPDATED = "updated"  # a transfer brought a new serial
    FAILED = "failed"  # a check failed; retry_in says when the next one is
    RECOVERED = "recovered"  # a check worked again after failures
    NOTIFY = "notify"  # a primary announced a change: checking now
    EXEC = "exec"  # the --exec command finished
    REMOVED = "removed"  # a catalog member no longer listed: followed no more


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
    announced: int | None = None  # the serial a NOTIFY's SOA announced, if it had one
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
            "announced": self.announced,
            "exit_status": self.exit_status,
            "error": self.error,
        }


@dataclasses.dataclass(eq=False, slots=True)
class _Followed:
    """What the mirror knows of one zone between checks (its timers: ``refresher``)."""

    config: MirrorZone
    refresher: Refresher
    serial: int | None = None  # the serial we hold; None until the first check
    timers: tuple[float, float, float] | None = None  # the primary's SOA refresh, retry, expire
    failures: int = 0
    busy: bool = False  # transferring or running --exec
    task: asyncio.Task[None] | None = None
    unsettled: ZoneCopy | None = None  # the last check's copy, its writes maybe behind


EventSink = Callable[[MirrorEvent], None]


class TransferDisplay(Protocol):
    """Where a running transfer shows its progress (``watch -c`` on a terminal)."""

    def callback(self, zone: str) -> Callable[[int, int], None] | None: ...

    def finished(self, zone: str) -> None: ...


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
        progress: TransferDisplay | None = None,
    ) -> None:
        if not zones:
            raise UsageError("no zone to watch")
        if store is None and any(zone.output is None for zone in zones):
            raise UsageError("each zone needs an output file, or give a store directory")
        self.options = options
        self.store = store
        self._on_event = on_event
        self._progress = progress
        self._gate = asyncio.Semaphore(options.concurrency)  # transfers at once, all zones
        self._followed: dict[dns.name.Name, _Followed] = {}
        for zone in zones:
            if zone.origin in self._followed:
                raise UsageError(f"zone {zone.text} given twice")
            self._followed[zone.origin] = self._follower(zone)
        self._exec_lock = asyncio.Lock()
        # the store's writes in group commits, as serve and pull -c make them (startup):
        # a stranger's 5,000 current zones took watch 6.6 s, each check's state write
        # fsynced alone, against pull -c's 3.3 s
        self._commits: StoreQueue | None = None
        self._checks_written: set[asyncio.Future[object]] = set()  # (record_check, behind)
        self._stopping = False
        self._transport: asyncio.DatagramTransport | None = None
        self._listener: NotifyListener | None = None
        self._notify_task: asyncio.Task[None] | None = None
        self._notify_table: dict[dns.name.Name, NotifyAcl] = {}
        self._connections: tcpstream.IdleConnections | None = None
        self._unreachable: Unreachable | None = None
        self._keyring = {
            dns.name.from_text(z.key.name): z.key.to_dnspython() for z in zones if z.key is not None
        }
        self._refusals = RefusalLog(log, prefix="watch")
        self._started = False
        self._zones_added = asyncio.Event()  # run() then waits on their tasks too

    # -- public

    @property
    def notify_address(self) -> tuple[str, int] | None:
        """The (address, port) the NOTIFY listener is bound to, once started."""
        if self._transport is None:
            return None
        sockname = self._transport.get_extra_info("sockname")
        return (str(sockname[0]), int(sockname[1]))

    @property
    def origins(self) -> list[dns.name.Name]:
        """The zones followed now (catalog members come and go)."""
        return list(self._followed)

    def serial(self, origin: dns.name.Name) -> int | None:
        """The serial we hold for a zone (None before the first success)."""
        return self._followed[origin].serial

    def status(self, origin: dns.name.Name) -> ZoneStatus:
        """A zone's refresh state (``ctl status``, metrics)."""
        return self._followed[origin].refresher.status()

    async def refresh(self, origin: dns.name.Name, force_axfr: bool = False) -> PullResult:
        """Check a zone now (``ctl refresh``; ``force_axfr``: ``ctl retransfer``)."""
        return await self._followed[origin].refresher.refresh(force_axfr)

    def _follower(self, zone: MirrorZone) -> _Followed:
        def check(force_axfr: bool) -> Awaitable[PullResult]:
            return self._check(followed, force_axfr)

        async def took(result: PullResult, woken: bool) -> None:
            await self._took(followed, result)

        async def settled(result: PullResult) -> PullResult:
            copy, followed.unsettled = followed.unsettled, None
            return result if copy is None else await settle(result, copy)

        refresher = Refresher(
            zone.text,
            check,
            self._gate,
            policy=RefreshPolicy(interval=self.options.interval, jitter=self.options.jitter),
            timers=lambda: followed.timers,
            on_expire=lambda expired: self._expired(followed, expired),
            on_result=took,
            settle=settled,
        )
        followed = _Followed(zone, refresher)
        return followed

    async def run(self, stop: asyncio.Event) -> None:
        await self.startup()
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while not stopper.done():  # until stopped, or a task fails (a bug)
                added = asyncio.ensure_future(self._zones_added.wait())
                tasks = [f.task for f in self._followed.values() if f.task is not None]
                if self._notify_task is not None:
                    tasks.append(self._notify_task)
                tasks = [task for task in tasks if not task.done()]
                done, _ = await asyncio.wait(
                    [stopper, added, *tasks], return_when=asyncio.FIRST_COMPLETED
                )
                added.cancel()
                self._zones_added.clear()
                for task in done:
                    if task not in (stopper, added) and not task.cancelled():
                        error = task.exception()
                        if error is not None:
                            raise error
        finally:
            stopper.cancel()
            await self.shutdown()

    async def startup(self) -> None:
        listen = self.options.notify_listen
        if listen is not None:
            self._notify_table = await self._build_notify_table()
            transport, protocol, queue = await listen_notify(listen)
            self._transport = transport
            self._listener = protocol
            self._notify_task = asyncio.create_task(
                self._answer_notifies(queue), name="watch NOTIFY"
            )
            log.info(
                "watch: listening for NOTIFY on %s for %d zones", listen, len(self._notify_table)
            )
        self._started = True
        if self.store is not None:
            self._commits = StoreQueue()
        # a transfer's connection is kept for the next from the same primary (as serve)
        if self.options.keep_connections:
            self._connections = tcpstream.IdleConnections.install()
        # a primary that times out is held back, not waited on by each zone (as serve)
        self._unreachable = Unreachable.install(self.options.unreachable_hold, self._primary_ready)
        for followed in self._followed.values():
            self._start(followed)

    def _start(self, followed: _Followed) -> None:
        if self.store is not None:
            self._restore(followed)
        followed.refresher.admit = admitter(lambda: followed.config.primaries)  # (as serve)
        followed.task = asyncio.create_task(
            followed.refresher.run(), name=f"watch {followed.config.text}"
        )

    async def add_zone(self, zone: MirrorZone) -> bool:
        """Follow one more zone (a catalog member), from now on; False if it is followed
        already or the mirror is stopping.  Its first check comes within half a second."""
        if zone.origin in self._followed or self._stopping:
            return False
        followed = self._follower(zone)
        acl = await self._notify_acl(followed) if self._transport is not None else None
        if zone.origin in self._followed or self._stopping:  # meanwhile
            return False
        self._followed[zone.origin] = followed
        if zone.key is not None:
            self._keyring[dns.name.from_text(zone.key.name)] = zone.key.to_dnspython()
        if acl is not None:
            self._notify_table[zone.origin] = acl
        if self._started:
            self._start(followed)
            self._zones_added.set()
        return True

    async def remove_zone(self, origin: dns.name.Name) -> bool:
        """Follow a zone no more (its files stay); False if it was not followed.

        A transfer or --exec command in progress gets ``grace`` seconds to finish
        (so that no write lands after the caller removes the zone's files)."""
        followed = self._followed.pop(origin, None)
        if followed is None:
            return False
        self._notify_table.pop(origin, None)
        followed.refresher.stopping = True
        followed.refresher.wake()
        task = followed.task
        if task is not None and not task.done():
            if followed.busy:
                await asyncio.wait([task], timeout=self.options.grace)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return True

    async def shutdown(self) -> None:
        self._stopping = True
        if self._transport is not None:
            self._transport.close()
        if self._connections is not None:
            self._connections.close()
        if self._unreachable is not None:
            self._unreachable.close()
        tasks = [f.task for f in self._followed.values() if f.task is not None]
        if self._notify_task is not None:
            self._notify_task.cancel()
            tasks.append(self._notify_task)
        busy = []
        for followed in self._followed.values():
            followed.refresher.stopping = True
            followed.refresher.wake()
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
        if self._checks_written:  # (the check times still queued: written before the end)
            await asyncio.wait(set(self._checks_written), timeout=self.options.grace)
        if self._commits is not None:
            self._commits.close()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- NOTIFY

    async def _build_notify_table(self) -> dict[dns.name.Name, NotifyAcl]:
        return {origin: await self._notify_acl(f) for origin, f in self._followed.items()}

    async def _notify_acl(self, followed: _Followed) -> NotifyAcl:
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
        return NotifyAcl(
            sources=host_networks(addresses) + host_networks(followed.config.allow_notify),
            zone_key=dns.name.from_text(key.name) if key is not None else None,
            signed_only=followed.config.notify_key_required,
        )

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
            log.info(
                "watch: zone=%s NOTIFY from %s: checking now",
                followed.config.text,
                source,
                extra=SHOWN_AS_EVENT,
            )
            self._emit(
                MirrorEventKind.NOTIFY,
                followed.config.text,
                serial=followed.serial,
                source=source,
                announced=decision.serial,
            )
            if self._unreachable is not None:  # (it is up: no longer held after timeouts)
                pairs = _primary_pairs(followed)
                self._unreachable.forget(addr[0], notify_ports(addr[0], pairs))
            followed.refresher.wake(decision.serial, notified=True)

    def _primary_ready(self, address: str, port: int, every: bool) -> bool:
        """As serve's: a held primary's failing zones are checked now, one or all."""
        pairs = ((_primary_pairs(f), f.refresher) for f in self._followed.values())
        return wake_failing(pairs, address, port, every)

    # -- one zone

    def member_removed(self, origin: dns.name.Name, serial: int | None) -> None:
        """Say that a catalog member is no longer listed (``watch --catalog``): followed no
        more, its files kept or pruned as the catalog's settle says (no --exec)."""
        self._emit(MirrorEventKind.REMOVED, origin.to_text(), serial=serial)

    def _emit(self, kind: MirrorEventKind, zone: str, **fields: Any) -> None:
        """Hand an event about ``zone``, stamped now, to the callback."""
        if self._on_event is not None:
            self._on_event(MirrorEvent(kind, zone, time.time(), **fields))

    def _restore(self, followed: _Followed) -> None:
        """Expiry survives a restart: start from the store's last successful check."""
        assert self.store is not None
        try:
            state = self.store.load_state(followed.config.origin)
        except SecdnsError:
            return
        last = epoch(state.last_success)
        if state.serial is None or last is None:
            return
        if state.refresh is not None and state.retry is not None and state.expire is not None:
            followed.timers = (float(state.refresh), float(state.retry), float(state.expire))
        expire = followed.refresher.soa_timers()[2]
        followed.refresher.restore(state.serial, last, last + expire, state.last_error)

    async def _check(self, followed: _Followed, force_axfr: bool = False) -> PullResult:
        """Probe; pull only if the serial moved (the probe's SOA is not asked for again)."""
        origin = followed.config.origin
        primaries = list(followed.config.primaries)
        options = self._pull_options(followed, force_axfr)
        try:
            probed = await probe_primaries(origin, primaries, options)
            soa = probed.soa
            followed.timers = (float(soa.refresh), float(soa.retry), float(soa.expire))
            followed.busy = True  # writing to the store from here on
            if not force_axfr and followed.serial is not None and soa.serial == followed.serial:
                self._record_check(origin, soa.serial)
                return PullResult(
                    zone=followed.config.text,
                    status=Status.UP_TO_DATE,
                    primary=probed.server,
                    serial_from=soa.serial,
                    serial_to=soa.serial,
                    primary_serial=soa.serial,
                )
            # a fresh copy per pull: nothing of the zone stays in memory between
            copy = make_copy(
                origin, store=self.store, output=followed.config.output, commits=self._commits
            )
            followed.unsettled = copy  # (its writes durable once settled, out of the slot)
            shown = self._progress.callback(followed.config.text) if self._progress else None
            try:
                return await pull_zone(
                    origin, primaries, copy, options=options, probed=probed, progress=shown
                )
            finally:
                if shown is not None and self._progress is not None:
                    self._progress.finished(followed.config.text)
        except SecdnsError as err:
            error = err
        except Exception as err:  # a bug: say so loudly, keep following the other zones
            log.exception("watch: zone=%s internal error", followed.config.text)
            error = SecdnsError(f"internal error: {err!r}")
        return PullResult(
            zone=followed.config.text,
            status=Status.FAILED,
            error=error,
            serial_from=followed.serial,
        )

    def _record_check(self, origin: dns.name.Name, serial: int) -> None:
        """Remember in the store a check that found ``serial`` current, in the next group
        commit, without waiting for it (a check time lost in a crash only makes the
        copy look older after it: it expires sooner, never later)."""
        if self.store is None or self._commits is None:
            return
        written = asyncio.ensure_future(
            self._commits.run(functools.partial(self.store.record_check, origin, serial))
        )
        self._checks_written.add(written)
        written.add_done_callback(functools.partial(self._check_written, origin))

    def _check_written(self, origin: dns.name.Name, written: asyncio.Future[object]) -> None:
        self._checks_written.discard(written)
        if not written.cancelled() and written.exception() is not None:
            error = written.exception()
            why = error.message if isinstance(error, SecdnsError) else repr(error)
            log.error("watch: zone=%s cannot save state: %s", origin, why)

    def _pull_options(self, followed: _Followed, force_axfr: bool = False) -> PullOptions:
        return PullOptions(
            key=followed.config.key,
            axfr=force_axfr,
            request_ixfr=followed.config.request_ixfr,
            # ctl retransfer, or an expired zone (Refresher.refresh): whatever the serial
            force=self.options.force or force_axfr,
            timeout=self.options.timeout,
            lifetime=self.options.lifetime,
            limits=self.options.limits,
            tls=followed.config.tls,
            force_hint=RETRANSFER_HINT,
        )

    async def _took(self, followed: _Followed, result: PullResult) -> None:
        try:
            if result.status is Status.FAILED:
                assert result.error is not None
                self._failed(followed, result.error)
                return
            self._succeeded(followed)
            await self._changed(followed, result)
        finally:
            followed.busy = False

    def _succeeded(self, followed: _Followed) -> None:
        if followed.failures:
            log.warning(
                "watch: zone=%s primary answers again after %d failed checks",
                followed.config.text,
                followed.failures,
                extra=SHOWN_AS_EVENT,
            )
            self._emit(
                MirrorEventKind.RECOVERED,
                followed.config.text,
                serial=followed.serial,
                failures=followed.failures,
            )
        followed.failures = 0

    async def _changed(self, followed: _Followed, result: PullResult) -> None:
        zone = followed.config.text
        first = followed.serial is None
        followed.serial = result.serial_to
        if result.status is not Status.TRANSFERRED:
            if first:
                self._emit(
                    MirrorEventKind.SYNCED,
                    zone,
                    serial=result.serial_to,
                    primary=result.primary,
                    file=self._file(followed),
                )
            return
        self._emit(
            MirrorEventKind.UPDATED,
            zone,
            serial=result.serial_to,
            previous=result.serial_from,
            via=result.kind,
            primary=result.primary,
            file=result.output,
            added=result.added,
            removed=result.removed,
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
                status = await run_command(self.options.exec_command, env)
            except OSError as err:
                log.error(
                    "watch: zone=%s cannot run --exec: %s",
                    zone,
                    err.strerror or err,
                    extra=SHOWN_AS_EVENT,
                )
                self._emit(MirrorEventKind.EXEC, zone, serial=result.serial_to, error=str(err))
                return
        if status != 0:
            log.warning(
                "watch: zone=%s --exec exited with status %d (serial %s)",
                zone,
                status,
                result.serial_to,
                extra=SHOWN_AS_EVENT,
            )
        else:
            log.info(
                "watch: zone=%s --exec done (serial %s)",
                zone,
                result.serial_to,
                extra=SHOWN_AS_EVENT,
            )
        self._emit(
            MirrorEventKind.EXEC,
            zone,
            serial=result.serial_to,
            file=result.output,
            exit_status=status,
        )

    def _failed(self, followed: _Followed, err: SecdnsError) -> None:
        followed.failures += 1
        zone = followed.config.text
        delay = followed.refresher.retry_in or 0.0
        # (a certificate not trusted, a hostname or pin mismatch: a TLS setting to fix,
        # not a primary out of reach, as a stranger's untrusted CA was called)
        tls_setting = isinstance(err, TlsError) and not isinstance(err, TimeoutError_)
        unreachable = isinstance(err, NetworkError) and not tls_setting
        what = "primary unreachable" if unreachable else "check failed"
        # (a primary held, or refusing: said once for it, each zone at info, as serve)
        (log.info if said_once(err) else log.warning)(
            "watch: zone=%s %s, retry in %s: %s",
            zone,
            what,
            seconds_text(delay),
            err.one_line(with_zone=False),
            extra=SHOWN_AS_EVENT,
        )
        self._emit(
            MirrorEventKind.FAILED,
            zone,
            serial=followed.serial,
            retry_in=delay,
            failures=followed.failures,
            error=err.one_line(with_zone=False),
        )

    def _expired(self, followed: _Followed, expired: bool) -> None:
        if expired:
            log.warning(
                "watch: zone=%s not refreshed for longer than the SOA expire (%s): "
                "keeping the last copy, which a secondary would stop serving",
                followed.config.text,
                seconds_text(followed.refresher.soa_timers()[2]),
            )


def _primary_pairs(followed: _Followed) -> list[tuple[str, int]]:
    """A followed zone's primaries as written, (host, port): watch resolves no host
    names ahead (serve keeps the resolved addresses: ZoneRuntime.primary_addresses)."""
    return [(primary.host, primary.port) for primary in followed.config.primaries]
