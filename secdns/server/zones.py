"""The life of each served zone: load from the store, refresh, NOTIFY, persist.

A secondary zone's refreshes are scheduled by :class:`secdns.refresh.Refresher`
(the scheduler ``watch`` uses too): each runs the shared
:func:`secdns.pull.pull_zone` path with a :class:`MemoryCopy`, which applies an
IXFR to the in-memory version in O(delta), swaps it in atomically, and only then
persists the change through the store's :class:`~secdns.store.ZoneWriter` in the
background.  Past the expiry deadline without a successful refresh (a deadline
the store remembers across restarts) the zone answers SERVFAIL.

About 620 lines, kept whole: a zone's runtime (its version, journal, store copy,
scheduler and NOTIFY ACL) is one object whose loading, installing and persisting read
and write the same fields; the scheduler, the store and the transfers are modules of
their own already.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import gc
import logging
import os
import time
from collections.abc import Callable, Container, Sequence
from pathlib import Path

import dns.name

from secdns import wire, zonefile
from secdns.addresses import resolve
from secdns.config import Config, ZoneConfig
from secdns.copies import ZoneCopy, axfr_journal, delta_entries, stored_soa
from secdns.endpoints import IPNetwork, host_networks
from secdns.errors import (
    IxfrNotApplicable,
    NetworkError,
    SecdnsError,
    ZoneFileError,
    said_once,
)
from secdns.notify import NotifyAcl
from secdns.pull import PullOptions, PullResult, Status, pull_zone
from secdns.refresh import FIRST_DELAY, MIN_TIMER, Refresher, RefreshPolicy, ZoneStatus
from secdns.server.persist import StoreQueue
from secdns.server.xferproc import TransferProcess
from secdns.server.zone import ChangeTally, ServedZone, ZoneVersion
from secdns.store import JournalEntry, Store, StoredSoa, ZoneWriter, epoch
from secdns.unreachable import admitter
from secdns.xfr import Delta, serial_newer

log = logging.getLogger(__name__)

JOURNAL_ENTRIES = 1000
INLINE_RECORDS = 500
"""A transferred zone this small is built on the event loop, not in a thread."""
SERVE_POLICY = RefreshPolicy(restored_spread=300.0, first_retry=2.0, first_delay=0.0)
"""Stored copies fresh at start are first checked over five minutes (or by their
refresh timer, if sooner), not all at once: 10,000 zones make ~33 SOA queries a second.
A zone with nothing to serve is checked at once, so that a cold start takes its zones
in the config's order (the shared bound queues them so, as Knot's and BIND's do), not
in the random order a spread first check made: zones come up in the order an
operator listed them, and their store files are made in it too.  (Time to every zone
served did not change beyond the noise: 10,000 zones, bench/manyzones_bench.py.)
A zone with nothing to serve yet retries a failed check after 2 s, doubling up to the
SOA retry (a primary's transfer limit at a cold start), each under the shared bound."""


class MemoryCopy(ZoneCopy):
    """The served, in-memory copy of a zone, persisted to the store after each swap."""

    axfr_unprobed = True  # holding nothing: AXFR at once (the SOA comes with it)

    def __init__(self, runtime: ZoneRuntime) -> None:
        self.runtime = runtime
        self.origin = runtime.zone.origin
        self.elsewhere = runtime.elsewhere

    async def prepare(self) -> None:
        version = self.runtime.zone.version
        self.serial = version.serial if version else None
        self.can_ixfr = version is not None
        self.records = version.records if version else None

    async def apply_ixfr(self, deltas: list[Delta], soa: wire.Record, result: PullResult) -> None:
        version = self.runtime.zone.version
        if version is None:
            raise IxfrNotApplicable("no copy in memory")
        entries = delta_entries(deltas)
        assert soa.serial is not None  # the closing SOA of a transfer: serial is set
        tally = ChangeTally()
        new = version.apply(((e.deleted, e.added) for e in entries), soa.serial, tally)
        result.removed += tally.removed - len(entries)  # not counting the SOA swaps
        result.added += tally.added - len(entries)
        result.records = new.records
        self.runtime.install(new, entries)
        stored, primary = stored_soa(soa), result.primary
        self.runtime.persist(lambda writer: writer.apply(entries, stored, primary=primary))

    async def apply_axfr(
        self, records: zonefile.FullZone, soa: wire.Record, result: PullResult
    ) -> None:
        origin, origin_text = self.origin, self.runtime.name
        old = self.runtime.zone.version

        def build() -> tuple[ZoneVersion, list[str], JournalEntry | None, int, int]:
            lines = zonefile.canonical_lines(records)
            version = ZoneVersion.from_lines(origin, lines, origin_text)
            entry, added, removed = (None, len(lines), 0)
            if old is not None:
                entry, added, removed = axfr_journal(
                    origin, list(old.iter_lines()), lines, old.serial, version.serial
                )
            return version, lines, entry, added, removed

        if len(records) <= INLINE_RECORDS:  # a thread hand-off costs more than the build
            version, lines, entry, result.added, result.removed = build()
        else:
            version, lines, entry, result.added, result.removed = await asyncio.to_thread(build)
        result.records = version.records
        self.runtime.install(version, [entry] if entry else None)
        stored, primary = stored_soa(soa), result.primary
        journal = [entry] if entry else None
        self.runtime.persist(  # (a large zone is written as it goes, not rendered whole)
            lambda writer: writer.replace(lines, stored, primary=primary, journal=journal),
            may_wait=len(lines) <= INLINE_RECORDS,
        )

    async def checked(self, result: PullResult) -> None:
        # remembered in the store, so that expiry survives a restart (rewritten only
        # when the stored time is older than 1/16 of the expire: expiry errs early)
        min_age = self.runtime.soa_timers()[2] / 16
        self.runtime.persist(lambda writer: writer.checked(min_age))

    async def failed(self, error: SecdnsError) -> None:
        # remembered in the store (the README's "a failure makes the state file"), so
        # that a restart shows the zone retrying, not ok; a zone failing again and again
        # rewrites it at most once every 1/16 of the expire, or when the error changes
        if self.runtime.writer is None and self.runtime.zone.version is None:
            return  # nothing held (a mistyped zone leaves nothing behind)
        min_age = self.runtime.soa_timers()[2] / 16
        line = error.one_line(with_zone=False)
        self.runtime.persist(lambda writer: writer.failed(line, min_age), may_wait=True)


Stored = tuple[ZoneWriter, "ZoneVersion | None", list[JournalEntry]]
_NO_OPTIONS = PullOptions()
_NO_JOURNAL: collections.deque[JournalEntry] = collections.deque(maxlen=0)
"""The journal of every zone that has none (empty, and never extended: see extend_journal)."""


def read_stored(
    store: Store, origin: dns.name.Name, present: Container[str] | None = None
) -> Stored:
    """Read a zone's store copy (state, master file, journal) into a served version,
    or None if there is no intact copy.  Blocking: one thread hand-off per zone (or
    per batch of zones) instead of one per file.  ``present``: the store's file
    names (:meth:`Store.listing`, listed once for every zone), so that no absent
    file is opened (a cold start's state files, most zones' journals)."""
    writer = ZoneWriter(store, origin, present)
    # the text is read, parsed into the served version and dropped: no second copy
    text, why = store.read_zone(origin, writer.state, writer.take_whole())
    if text is None:
        if writer.state.serial is not None:  # a copy was kept: say why it is not used
            log.warning(
                "load: zone=%s stored copy of serial %s not used: %s; transferring it again",
                origin,
                writer.state.serial,
                why,
            )
        return writer, None, []
    _, lines = zonefile.split_header(text)
    del text
    version = ZoneVersion.from_lines(origin, lines, writer.state.zone)  # (its to_text())
    del lines
    return writer, version, store.read_journal(origin, version.serial, present)


class ZoneRuntime:
    """One served zone: its config, memory copy, journal, timers and tasks."""

    def __init__(
        self,
        config: ZoneConfig,
        server_config: Config,
        store: Store | None,
        on_change: Callable[[ZoneRuntime], None],
    ) -> None:
        self.config = config
        self.name = config.text  # (rendered once: logs and statuses name it often)
        self.server_config = server_config
        self.zone = ServedZone(config.name, self.name)
        self.store = store
        self.writer: ZoneWriter | None = None  # the store's copy, once loaded
        self.journal: collections.deque[JournalEntry] = _NO_JOURNAL  # a deque once it has one
        self.on_change = on_change
        self.options = _NO_OPTIONS  # run() sets the server's
        self.refresher = Refresher(
            self.name,
            self._check,
            asyncio.Semaphore(1),  # the server's shared bound replaces it in run()
            policy=SERVE_POLICY,
            timers=self._soa_timers,
            on_expire=self._expire,
            on_result=self._took,
        )
        self.wake = self.refresher.wake_event
        self.task: asyncio.Task[None] | None = None
        self._persist_lock = asyncio.Lock()
        self._persist_tasks: set[asyncio.Task[None]] | None = None  # (a set once it writes)
        self.commits: StoreQueue | None = None  # the server's group-committed store writes
        self.elsewhere: TransferProcess | None = None  # the server's, at a cold start
        # who may NOTIFY: from the start, the primaries written as addresses (a NOTIFY
        # that came before the zone's task had resolved them was refused as "not a
        # primary": a stranger's cold start refused 10 of its primary's); host names
        # are added once resolved (resolve_notify_sources)
        literal = [e.host for e in config.primaries if e.is_address]
        self.notify_acl = (
            notify_acl(config, server_config, literal) if config.primaries else NotifyAcl()
        )
        # (address, port) of each primary, host names resolved at start and on reload:
        # a primary back after a hold wakes its zones (secdns.unreachable.wake_failing)
        self.primary_addresses: tuple[tuple[str, int], ...] = ()
        # a file zone: (size, mtime, inode) of the file as last read (a reload of an
        # unchanged file reads nothing, as BIND's reload of an up-to-date zone)
        self.file_stamp: tuple[int, int, int] | None = None
        self.load_error: SecdnsError | None = None  # its file's, at the last load that failed
        self.load_warning: str | None = None  # its file's last load's (a serial gone back)
        # told every result (ServeZones.attach: the metrics; a list shared by every zone)
        self.observers: Sequence[Callable[[str, PullResult], None]] = ()

    @property
    def is_secondary(self) -> bool:
        return bool(self.config.primaries)

    def check_soon(self, *, at_once: bool = False) -> None:
        """Its first check within the first half second (``at_once``: now), even with a
        fresh stored copy, which serve's start spreads over five minutes: a zone that a
        reload adds or changes, or a catalog put back, may have missed its NOTIFYs (a
        stranger's catalog, put back, was checked 49 s later, its removed member served
        meanwhile)."""
        refresher = self.refresher
        first = 0.0 if at_once else FIRST_DELAY
        refresher.policy = dataclasses.replace(
            refresher.policy, restored_spread=0.0, first_delay=first
        )

    @property
    def stopping(self) -> bool:
        return self.refresher.stopping

    @stopping.setter
    def stopping(self, value: bool) -> None:
        self.refresher.stopping = value

    @property
    def last_result(self) -> PullResult | None:
        return self.refresher.last_result

    @property
    def last_success(self) -> float | None:
        """The last successful check (epoch seconds)."""
        return self.refresher.last_refresh

    @last_success.setter
    def last_success(self, value: float | None) -> None:
        self.restore(value)

    def restore(self, last_success: float | None, last_error: str | None = None) -> None:
        """The refresh state the store remembers (its last success dates expiry; its
        last error, when the last check failed, keeps the zone ``retrying``)."""
        expire = self._soa_timers()
        value = last_success
        self.refresher.restore(
            self.zone.version.serial if self.zone.version else None,
            value,
            value + max(expire[2], MIN_TIMER) if value is not None and expire else None,
            last_error,
        )
        if self.is_secondary:  # a primary zone answers its SOA EXPIRE field instead
            self.zone.expires_at = self.refresher.expires_at  # EDNS EXPIRE answers from it

    def keep_status(self, old: ZoneRuntime) -> None:
        """A reload replaced the zone's runtime (its settings changed) and kept its
        version: ``ctl status`` goes on showing its primary and last change (a
        stranger saw both turn to ``-`` after a SIGHUP that changed a key)."""
        self.refresher.primary = old.refresher.primary
        self.refresher.last_change = old.refresher.last_change

    def status(self) -> ZoneStatus:
        """The zone's refresh state (``ctl status``, metrics)."""
        version = self.zone.version
        if version is None:
            return self.refresher.status()
        return self.refresher.status(version.serial, version.records)  # (one ZoneStatus made)

    async def refresh(
        self, force_axfr: bool = False, before: Callable[[], None] | None = None
    ) -> PullResult:
        """Check the primaries now (``ctl refresh``; ``force_axfr``: ``ctl retransfer``;
        ``before``: see :meth:`Refresher.refresh`)."""
        return await self.refresher.refresh(force_axfr, before=before)

    # --- loading ---
    async def load_from_store(self) -> None:
        """Answer at once from the store's copy, if it is intact."""
        if self.store is None:
            return
        self.install_stored(await asyncio.to_thread(read_stored, self.store, self.zone.origin))

    def install_stored(self, stored: Stored) -> None:
        """Answer from what :func:`read_stored` read (the server reads zones in batches)."""
        writer, version, entries = stored
        self.writer = writer
        if version is None:
            return
        self.zone.swap(version)
        self.extend_journal(entries)
        # the state's last successful check decides whether the copy is already expired,
        # and a last error says the zone was failing when serve stopped
        self.restore(epoch(writer.state.last_success), writer.state.last_error)
        self.refresher.primary = writer.state.primary  # (ctl status, until the next check)
        self.refresher.last_change = epoch(writer.state.last_change)  # (survives a restart)
        if self.zone.expired:
            log.error(
                "load: zone=%s the stored copy is past its SOA expire: answering "
                "SERVFAIL until a refresh succeeds",
                self.name,
            )
        log.info(
            "load: zone=%s serial %d, %d records from the store",
            self.name,
            version.serial,
            version.records,
        )

    async def load_file(self) -> bool:
        """A primary zone: read its master file (and on SIGHUP, again); whether a new
        version is served.  A file that does not load, or that changed but kept its
        serial, raises (the loaded version stays): ``ctl reload`` reports it, and
        ``ctl status`` shows it as the zone's last error until a reload loads one."""
        from secdns.server.load import version_from_file

        assert self.config.file is not None
        self.load_warning = None
        stamp = _file_stamp(self.config.file)
        old = self.zone.version
        if old is not None and stamp is not None and stamp == self.file_stamp:
            log.debug("reload: zone=%s %s unchanged: not read", self.name, self.config.file)
            return False
        try:
            version = await asyncio.to_thread(version_from_file, self.config.file, self.zone.origin)
            if old is not None and version.serial == old.serial:
                if sorted(old.iter_lines()) != sorted(version.iter_lines()):
                    raise ZoneFileError(
                        f"{self.config.file} changed but its serial {old.serial} did not: "
                        "secondaries would not take the change",
                        hint="raise the serial in its SOA, then reload",
                    )
        except SecdnsError as err:
            doing = "reload" if old is not None else "load"  # (the loaded version kept)
            self.refresher.last_error = f"{doing}: {err.one_line(with_zone=False)}"
            raise
        self.file_stamp = stamp
        self.refresher.last_error = None
        if old is not None:
            if version.serial == old.serial:
                return False  # (the same zone: touched, or written again alike)
            lines = list(version.iter_lines())
            if not serial_newer(version.serial, old.serial):
                self.load_warning = (
                    f"zone={self.name} {self.config.file}: serial {old.serial} -> "
                    f"{version.serial} went back: secondaries keep serial {old.serial} until "
                    "theirs expires or they are made to transfer it (rndc retransfer, ctl "
                    "retransfer)"
                )
                log.warning("reload: %s", self.load_warning)
            self.refresher.last_change = time.time()
            entry, added, removed = axfr_journal(
                self.zone.origin, list(old.iter_lines()), lines, old.serial, version.serial
            )
            log.info(
                "reload: zone=%s serial %d -> %d, +%d -%d",
                self.name,
                old.serial,
                version.serial,
                added,
                removed,
            )
            self.install(version, [entry] if entry else None)
        else:
            self.install(version, None, notify=False)
            gc.freeze()  # a whole zone's long-lived objects: out of the cyclic collector's walks
            log.info(
                "load: zone=%s serial %d, %d records from %s",
                self.name,
                version.serial,
                version.records,
                self.config.file,
            )
            self.refresher.last_change = time.time()  # (ctl status: since when it serves it)
        self.last_success = time.time()
        return True

    # --- changing ---
    def install(
        self, version: ZoneVersion, entries: list[JournalEntry] | None, notify: bool = True
    ) -> None:
        """Swap in a new version (atomic for every reader) and remember the delta."""
        if entries is None:
            self.journal = _NO_JOURNAL
        else:
            self.extend_journal(entries)
        self.zone.swap(version)
        if notify:
            self.on_change(self)

    def extend_journal(self, entries: list[JournalEntry]) -> None:
        """Remember the deltas IXFR out serves (the last ``JOURNAL_ENTRIES``)."""
        if not entries:
            return
        if self.journal is _NO_JOURNAL:  # most zones never change: no deque of their own
            self.journal = collections.deque(maxlen=JOURNAL_ENTRIES)
        self.journal.extend(entries)

    @property
    def store_copy(self) -> ZoneWriter | None:
        """(The name server.py's reload uses to carry the store's copy over.)"""
        return self.writer

    @store_copy.setter
    def store_copy(self, writer: ZoneWriter | None) -> None:
        self.writer = writer

    def persist(self, work: Callable[[ZoneWriter], object], *, may_wait: bool = False) -> None:
        """Write the change to the store in the background, one write at a time.
        ``may_wait``: a small write, which a cold start holds back (StoreQueue.hold)."""
        if self.store is None:
            return

        store = self.store

        def job() -> object:
            # a zone's first write opens its store copy in the store thread too (no
            # thread hand-off of its own: 10,000 zones are written at a cold start)
            if self.writer is None:
                self.writer = ZoneWriter(store, self.zone.origin)
            return work(self.writer)

        async def run() -> None:
            async with self._persist_lock:
                try:
                    if self.commits is not None:
                        await self.commits.run(job, may_wait=may_wait)
                    else:
                        await asyncio.to_thread(job)
                except (SecdnsError, OSError) as err:
                    if self.writer is None:  # the store copy could not even be opened
                        log.error("store: zone=%s cannot write: %s", self.name, err)
                        return
                    log.warning(
                        "store: zone=%s incremental write failed (%s); rewriting "
                        "the file from memory",
                        self.name,
                        err,
                    )
                    await self._rewrite(self.writer)

        task = asyncio.get_running_loop().create_task(run())
        if self._persist_tasks is None:  # an empty set is 216 bytes: 10,000 zones
            self._persist_tasks = set()
        self._persist_tasks.add(task)
        task.add_done_callback(self._persist_tasks.discard)

    async def _rewrite(self, writer: ZoneWriter) -> None:
        version = self.zone.version
        if version is None:
            return
        origin = self.zone.origin
        primary = writer.state.primary  # (the version in memory came from it)

        def work() -> None:
            lines = sorted(version.iter_lines(), key=zonefile.LineKeyer(origin))
            writer.replace(lines, StoredSoa.from_line(version.soa_line), primary=primary)

        await asyncio.to_thread(work)

    async def flush(self, timeout: float = 30.0) -> None:
        """Wait for pending store writes (shutdown)."""
        if self._persist_tasks:  # (None or empty: nothing pending)
            await asyncio.wait(list(self._persist_tasks), timeout=timeout)

    # --- refreshing ---
    def _soa_timers(self) -> tuple[float, float, float] | None:
        version = self.zone.version
        if version is None:
            return None
        fields = version.soa_line.split(" ", 4)[4].split()
        return (float(fields[3]), float(fields[4]), float(fields[5]))

    def soa_timers(self) -> tuple[float, float, float]:
        return self.refresher.soa_timers()

    async def resolve_notify_sources(self) -> None:
        """The primaries' addresses: NOTIFY's sources, and :attr:`primary_addresses`."""
        pairs: list[tuple[str, int]] = []
        for endpoint in self.config.primaries:
            try:
                pairs += await resolve(endpoint)
            except SecdnsError as err:
                log.warning(
                    "notify: zone=%s cannot resolve primary %s: %s",
                    self.name,
                    endpoint,
                    err.message,
                )
        self.primary_addresses = tuple(pairs)
        addresses = [address for address, _port in pairs]
        self.notify_acl = notify_acl(self.config, self.server_config, addresses)

    async def run(self, gate: asyncio.Semaphore, options: PullOptions) -> None:
        """The refresh loop (:class:`secdns.refresh.Refresher`), under the server's bound."""
        self.options = options
        self.refresher.transfers = gate
        # (a first try of a primary not yet heard from: the zone waits without a slot)
        self.refresher.admit = admitter(lambda: self.config.primaries)
        await self.resolve_notify_sources()
        await self.refresher.run()

    async def _check(self, force_axfr: bool) -> PullResult:
        # ctl retransfer, or an expired zone (Refresher.refresh): AXFR, whatever the serial
        options = (
            dataclasses.replace(self.options, axfr=True, force=True) if force_axfr else self.options
        )
        return await pull_zone(
            self.zone.origin, list(self.config.primaries), MemoryCopy(self), options=options
        )

    def _expire(self, expired: bool) -> None:
        if expired and not self.zone.expired:
            age = time.time() - self.last_success if self.last_success else float("inf")
            log.error(
                "expire: zone=%s not refreshed for %.0fs (expire %.0fs): answering SERVFAIL",
                self.name,
                age,
                self.soa_timers()[2],
            )
        elif not expired and self.zone.expired:
            log.info("refresh: zone=%s refreshed again: answering", self.name)
        self.zone.expired = expired

    async def _took(self, result: PullResult, woken: bool) -> None:
        for observer in self.observers:  # (the metrics: ServeZones.attach)
            observer(self.name, result)
        self.zone.expires_at = self.refresher.expires_at  # EDNS EXPIRE (RFC 7314) answers it
        if result.status is Status.FAILED:
            # (a zone of a primary held as unreachable, or refusing: said once, as a warning)
            # a primary that times out or refuses is probed (secdns.unreachable): its
            # zones are checked as soon as it answers, sooner than their own retry (a
            # stranger's log said "retry in 59s" while the tries came at +10, +20, +40 s)
            probed = isinstance(result.error, NetworkError)
            (log.info if said_once(result.error) else log.warning)(
                "refresh: zone=%s failed (%s); retry in %.0fs%s",
                self.name,
                result.error.one_line(with_zone=False) if result.error else "?",
                self.refresher.retry_in or 0.0,
                ", or as soon as its primary answers again" if probed else "",
            )
        elif result.status is Status.TRANSFERRED:
            log.info(
                "refresh: zone=%s serial %s -> %s via %s, +%d -%d from %s%s",
                self.name,
                "none" if result.serial_from is None else result.serial_from,
                result.serial_to,
                result.kind.value,
                result.added,
                result.removed,
                result.primary,
                " (NOTIFY)" if woken else "",
            )
        elif woken:  # a NOTIFY that brought nothing is said, not left silent
            # (short: a primary's start repeats every zone's NOTIFY; the README says why
            # a newer change may not show yet: an answer cache, a NOTIFY sent before it)
            version = self.zone.version
            log.info(
                "refresh: zone=%s NOTIFY, but %s answers serial %s (served: %s): nothing to "
                "transfer",
                self.name,
                result.primary,
                result.serial_to,
                version.serial if version is not None else "none",
            )


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    """(size, mtime in ns, inode) of a zone file, or None when it cannot be read (the
    read then says why)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def notify_acl(config: ZoneConfig, server_config: Config, addresses: list[str]) -> NotifyAcl:
    """Who may NOTIFY a served zone: its primaries' addresses, ``allow_notify``
    networks, and ``allow_notify`` keys (``key:NAME`` names a ``[keys.NAME]`` table)."""
    keys = frozenset(
        dns.name.from_text(server_config.keys[item[4:]].name)
        for item in config.allow_notify
        if item.startswith("key:") and item[4:] in server_config.keys
    )
    zone_key = server_config.key_for(config)
    return _shared_acl(
        tuple(sorted(set(addresses) | set(config.allow_notify))),
        keys,
        dns.name.from_text(zone_key.name) if zone_key is not None else None,
        config.notify_key_required,
    )


@functools.lru_cache(maxsize=1024)
def _shared_acl(
    sources: tuple[str, ...],
    keys: frozenset[dns.name.Name],
    zone_key: dns.name.Name | None,
    signed_only: bool = False,
) -> NotifyAcl:
    """One (frozen) ACL for the many zones with the same primaries and keys."""
    networks = _networks(sources)
    return NotifyAcl(sources=networks, keys=keys, zone_key=zone_key, signed_only=signed_only)


@functools.lru_cache(maxsize=1024)
def _networks(sources: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """``host_networks``, parsed once for the many zones that share their primaries."""
    return host_networks(sources)
