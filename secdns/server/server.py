"""The foreground server: startup -> serve until a stop event -> shutdown.

Shaped like uvicorn's server: :meth:`Server.serve` is awaitable, so tests run the
real server as a task in-process.  This module holds the lifecycle (start, stop,
SIGHUP/``ctl reload``, signals) and the zones being served (add, remove, refresh
tasks, NOTIFY out).  The sockets are :mod:`secdns.server.listeners`; what a query
gets back is :mod:`secdns.server.dispatch`, mixed into :class:`Server`; NOTIFYs out,
their retries and what a target missed are :mod:`secdns.notifysend` (here only which
zones and keys).  About 890 lines, kept whole: the cold start's measures (switch
interval, held writes, the collector's pause, the transfer process) are begun and
ended by the same lifecycle steps and zone additions that run the zones; apart, each
would reach into the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import resource
import signal
import sys
from collections.abc import Coroutine, Iterable
from typing import TypeVar

import dns.exception
import dns.name
import dns.tsig

from secdns import gcpause, notify, notifysend, tcpstream
from secdns._entry import hangup_seen
from secdns.addresses import resolve
from secdns.config import Config, ZoneConfig, keyring_conflicts, load_config
from secdns.control import Operations
from secdns.endpoints import Endpoint
from secdns.errors import ConfigError, SecdnsError, ZoneFileError
from secdns.explain import log_step
from secdns.pull import RETRANSFER_HINT, PullOptions
from secdns.server import xferproc
from secdns.server.catalogs import CatalogZones
from secdns.server.dispatch import QueryDispatch
from secdns.server.fastpath import NegativeAnswers
from secdns.server.listeners import Listeners, transfer_networks
from secdns.server.persist import StoreQueue
from secdns.server.prepared import PreparedAnswers
from secdns.server.ready import ReadyAnswers
from secdns.server.readyfill import ReadyFiller
from secdns.server.storelock import hold_store
from secdns.server.udp import GC_THRESHOLDS, AnswerCache
from secdns.server.xferproc import TransferProcess
from secdns.server.xot_listen import TlsListeners
from secdns.server.zone import ZoneTable
from secdns.server.zones import Stored, ZoneRuntime, read_stored
from secdns.store import Store
from secdns.unreachable import Unreachable, wake_failing

log = logging.getLogger(__name__)
T = TypeVar("T")

LOAD_BATCH = 200
FIRST_LOAD_PAUSE = 120.0
"""Seconds at most that the cyclic collector stays paused (as during each transfer:
:func:`secdns.gcpause.gc_paused`, which still collects after many failed transfers)
while zones with nothing to serve get their first version at start; the versions
made are then left out of its walks (``gc.freeze``, as for versions loaded from the
store).  A cold start of 2,000 small zones spent ~0.17 s of CPU in collections that
walked those versions and freed ~500 objects."""
COLD_HOLD_SECONDS = 15.0
"""A cold start holds its small zones' store writes this long at most (until each zone
has been tried once, if sooner): a stranger's 40 zones of a silent primary among 400
made the first round last 50 s, with nothing written."""
SWITCH_INTERVAL = 0.0005
"""The GIL hand-over interval while serving (Python's default is 5 ms): the UDP
threads answer while the loop refreshes thousands of zones, and a query must not
wait 5 ms for the interpreter behind it (10,000 zones: median answer 3 ms -> 0.3 ms)."""
COLD_SWITCH_INTERVAL = 0.005
"""The interval instead while most zones have nothing to serve yet (a cold start, until
each has been tried once): few queries have an answer to wait for, and hand-overs
every 0.5 ms to the store and UDP threads cost the transfers ~0.4-0.8 s of 6.4-7.1 s
at a 10,000-zone cold start (same runs, bench/manyzones_bench.py)."""


class Server(QueryDispatch):
    """An authoritative secondary for the zones of a config."""

    def __init__(
        self, config: Config, *, log_queries: bool = False, explain: bool | None = None
    ) -> None:
        """``log_queries``: log every query (serve -vv); ``explain``: explain every refresh
        (serve -v; by default as ``log_queries``)."""
        self.config = config
        self.log_queries = log_queries
        self.explain = log_queries if explain is None else explain
        self.table = ZoneTable()
        self.runtimes: dict[dns.name.Name, ZoneRuntime] = {}
        self.cache = AnswerCache()
        self.negative = NegativeAnswers(self.table)
        self.prepared = PreparedAnswers(self.table)
        self.ready = ReadyAnswers()  # answers built before they are asked
        self.filler = ReadyFiller(self.ready, self.table)
        self.filler.serving = self.prepared
        self.filler.answered = lambda: sum(sum(w.rcodes) for w in self.listeners.udp)
        self.filler.configure(config.server)
        self.keyring: dict[dns.name.Name, dns.tsig.Key] = {}
        self._key_names: dict[str, dns.name.Name] = {}
        self.store: Store | None = None
        self._store_lock: int | None = None  # (storelock.hold_store)
        self._stop_waiters: list[asyncio.StreamWriter] = []  # ctl stop's connections
        self._reload_pending = False  # a SIGHUP came while starting
        # every zone's store writes, group-committed ([server] store_sync: fsynced or not)
        self.commits = StoreQueue(sync=config.server.store_sync == "fsync")
        self.transfers = TransferProcess()  # a cold start's AXFRs (xferproc.MIN_ZONES)
        self._transfers_closing: asyncio.Task[None] | None = None
        self.connections: tcpstream.IdleConnections | None = None
        self.unreachable: Unreachable | None = None  # primaries held after timeouts
        self._pull_options: dict[PullOptions, PullOptions] = {}
        self._switch_interval: float | None = None
        self._first_loads: set[dns.name.Name] = set()  # zones still without a version
        self._cold_switch = False  # COLD_SWITCH_INTERVAL set until each was tried once
        self._first_tries: set[str] = set()  # a cold start's zones not yet tried once
        self._observing_tries = False  # _tried is among the zones' observers
        self._first_pause: contextlib.AbstractContextManager[None] | None = None
        self._first_deadline: asyncio.TimerHandle | None = None
        self._gc_thresholds: tuple[int, ...] = gc.get_threshold()
        self.gate = asyncio.Semaphore(config.server.concurrency)
        self.stop_event = asyncio.Event()
        self.started = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.listeners = Listeners(self)  # [server] listen: UDP workers, TCP connections
        self._background: set[asyncio.Task[object]] = set()
        self.notify_refusals = notify.RefusalLog(log)
        self.tsig_refusals = notify.RefusalLog(log, prefix="tsig")
        # our NOTIFYs to the zones' notify targets ([server] notify_limit in flight to each)
        self.notifier = notifysend.NotifySender(
            config.server.notify_limit,
            stop=self.stop_event,
            counted=self._notify_counted,
            missed_probe=notifysend.MISSED_PROBE,
        )
        self.notifier.changed = self._missed_changed
        self._missed_keep: asyncio.TimerHandle | None = None  # (MISSED_KEEP_DELAY)
        self._missed_write: asyncio.Task[None] | None = None
        self.operations = Operations(self)  # control socket, metrics, statuses
        self.catalogs = CatalogZones(self)  # [[catalog]] members, [server] catalog
        self.tls = TlsListeners(self)  # [server] tls_listen: DoT and XoT

    # --- lifecycle -----------------------------------------------------------------------------
    async def serve(self, *, install_signals: bool = False) -> None:
        """Start, answer until stopped, stop.  ``install_signals`` (the command line):
        SIGTERM/SIGINT stop, SIGHUP reloads, taken before the start (which may load for
        seconds): a stop asked for meanwhile comes once started, as does a reload, also
        one asked for before serve had the signal (:func:`secdns._entry.hangup_seen`)."""
        if install_signals:
            self._install_signals()
        try:
            await self.startup()
        except BaseException:
            if install_signals:
                self._restore_signals()
            raise
        if self._reload_pending or (install_signals and hangup_seen()):
            self._reload_pending = False
            self._spawn(self._reload_on_signal())
        try:
            await self.stop_event.wait()
        finally:
            if install_signals:
                self._restore_signals()
            await self.shutdown()

    def stop(self, waiter: asyncio.StreamWriter | None = None) -> None:
        """Stop; ``waiter`` (ctl stop's connection) is closed once stopped."""
        if waiter is not None:
            self._stop_waiters.append(waiter)
        if not self.started.is_set() and not self.stop_event.is_set():
            log.info("serve: asked to stop while starting: stopping once started")
        self.stop_event.set()

    def _hangup(self) -> None:
        """SIGHUP: read the config again; during the start, once started."""
        if self.started.is_set():
            self._spawn(self._reload_on_signal())
        elif not self._reload_pending:
            self._reload_pending = True
            log.info("serve: SIGHUP while starting: the config is read again once started")

    async def startup(self) -> None:
        try:
            await self._startup()
        except BaseException:  # (e.g. a port in use) the process's state as it was
            self.transfers.abandon()
            self._end_first_pause()
            self._restore_interpreter()
            with contextlib.suppress(Exception):  # its control socket's file too
                await self.operations.close()
            self.tls.close()
            self._release_store()
            raise

    async def _startup(self) -> None:
        raise_file_limit()
        self._apply_keys(self.config)
        if self.config.server.directory is not None:
            self.store = Store(self.config.server.directory)
            self.store.ensure()
            self._store_lock = hold_store(self.store.directory)  # (dropped at exit)
        # loading makes a few hundred long-lived objects per zone: the cyclic collector
        # would scan them all again and again (a third of the load time of 10,000
        # zones); it waits until they are loaded, then leaves them out (gc.freeze)
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        gc.set_threshold(*GC_THRESHOLDS)
        gc.disable()
        self.filler.hold()  # small zones' ready answers: once loaded (and a cold start over)
        failed: list[ZoneRuntime] = []  # file zones whose file did not load
        try:
            stored = await self._read_stored(self.config.zones)
            for zone_config in self.config.zones:
                stored_copy = stored.get(zone_config.name.labels)
                await self._add_zone(zone_config, stored=stored_copy, failed=failed)
            del stored
        finally:
            gc.freeze()
            gc.enable()
        if failed and len(failed) == len(self.config.zones) and not self.config.catalogs:
            # nothing at all to serve: said at once, as before (one zone's file among
            # others does not stop the start: it answers SERVFAIL until a reload loads it)
            first = failed[0]
            error = first.load_error or ZoneFileError("its file did not load")
            raise error.with_context(zone=first.name)
        for runtime in failed:
            log.error("load: %s", failure_line(runtime, runtime.load_error))
        self._pause_for_first_loads()
        await self.operations.start()  # first: a control socket in use fails before listening
        await self.catalogs.startup()
        self._loop = asyncio.get_running_loop()
        await self.listeners.listen()
        await self.tls.listen()
        # a transfer's connection is kept for the next from the same primary (a cold
        # start of 10,000 zones from one primary: not 10,000 connections)
        if self.config.server.keep_connections:
            self.connections = tcpstream.IdleConnections.install()
        # a primary whose tries time out is held back: its zones do not each hold a
        # transfer slot for the whole timeout (secdns.unreachable, BIND's unreachable cache)
        self.unreachable = Unreachable.install(
            self.config.server.unreachable_hold, self._primary_ready
        )
        if not (self._cold_switch and len(self._first_loads) >= xferproc.MIN_ZONES):
            self._close_transfers()  # (started on the listing of a store not a cold start's)
        for runtime in self.runtimes.values():
            self._start_zone(runtime)
        self._resume_missed_notifies()
        self._notify_loaded(self.runtimes.values())
        self.started.set()
        if not self._first_tries:
            self.filler.release()  # (a cold start's end releases them: _end_cold_start)
        log.info(
            "serve: listening on %s, %d zones",
            ", ".join(f"{a}:{p}" for a, p in self.listeners.addresses),
            len(self.runtimes),
        )

    def _pause_for_first_loads(self) -> None:
        """Pause the collector until every secondary zone that has nothing to serve
        has its first version (a cold start's transfers), or ``FIRST_LOAD_PAUSE``."""
        self._first_loads = {
            name
            for name, runtime in self.runtimes.items()
            if runtime.is_secondary and runtime.zone.version is None
        }
        if not self._first_loads:
            return
        if len(self._first_loads) * 2 >= len(self.runtimes):  # most: a cold start
            self._hold_for_first_tries([self.runtimes[name] for name in self._first_loads])
        self._pause_collector()

    def _hold_for_first_tries(self, runtimes: list[ZoneRuntime]) -> None:
        """A cold start of these zones, until each has been tried once (not loaded: a
        primary that is down must not hold every other zone's write back until
        FIRST_LOAD_PAUSE): the longer switch interval, their small store writes held
        (transfers first, their writes after: persist.py) for COLD_HOLD_SECONDS at most
        (primaries that never answer can make the first round last their timeout times
        their zones over the bound), and small zones' ready answers
        (:meth:`~secdns.server.readyfill.ReadyFiller.hold`)."""
        if not self._cold_switch:
            sys.setswitchinterval(COLD_SWITCH_INTERVAL)
            self._cold_switch = True
        self.commits.hold()
        self.filler.hold()
        asyncio.get_running_loop().call_later(COLD_HOLD_SECONDS, self.commits.release)
        if not self._observing_tries:
            self._observing_tries = True
            self.operations.zones.observers.append(self._tried)  # (every zone's results)
        self._first_tries |= {runtime.name for runtime in runtimes}

    def _pause_collector(self) -> None:
        """The collector paused until the zones with nothing to serve have their first
        version, or FIRST_LOAD_PAUSE."""
        if self._first_pause is None:
            self._first_pause = gcpause.gc_paused()
            self._first_pause.__enter__()
            self._first_deadline = asyncio.get_running_loop().call_later(
                FIRST_LOAD_PAUSE, self._end_first_pause
            )

    def cold_start(self, runtimes: list[ZoneRuntime]) -> None:
        """Zones just added with nothing to serve, most of the server's (a catalog's
        members on its first transfer, into an empty store), get what a cold start at
        serve's start gets: AXFRs in the transfer process (from :data:`xferproc.MIN_ZONES`
        zones), their store writes held until each has been tried once, the longer
        switch interval, the collector paused.  Without it a stranger's 2,000-member
        Knot catalog took 4.06 s to serve every member, against a Knot secondary's 1.57 s."""
        fresh = [r for r in runtimes if r.is_secondary and r.zone.version is None]
        if not fresh or len(fresh) * 2 < len(self.runtimes):
            return
        if len(fresh) >= xferproc.MIN_ZONES:
            if self.transfers.ended or self._transfers_closing is not None:
                self.transfers = TransferProcess()  # (the start's ended with its cold start)
                self._transfers_closing = None
            self.transfers.start()
            for runtime in fresh:
                runtime.elsewhere = self.transfers
        self._first_loads |= {runtime.config.name for runtime in fresh}
        self._hold_for_first_tries(fresh)
        self._pause_collector()
        log.debug("serve: %d zones added with nothing to serve: a cold start", len(fresh))

    def _tried(self, name: str, _result: object) -> None:
        """A zone's refresh ended (an observer of the cold start's zones)."""
        if self._first_tries:
            self._first_tries.discard(name)
            if not self._first_tries:
                self._end_cold_start()

    def _end_cold_start(self) -> None:
        """Every zone of a cold start has been tried once: answers first again (the
        switch interval), the held store writes made, the transfer process ended."""
        self._first_tries.clear()  # (_tried stays an observer: a set's test a result)
        if self._cold_switch:
            self._cold_switch = False
            sys.setswitchinterval(SWITCH_INTERVAL)
        self.commits.release()
        if self.started.is_set():
            self.filler.release()  # the small zones' ready answers
        self._close_transfers()

    def _end_first_pause(self) -> None:
        self._first_loads.clear()
        self._end_cold_start()

    def _close_transfers(self) -> None:
        """End the transfer process (in the background) once the cold start is over."""
        if not self.transfers.ended and self._transfers_closing is None:
            self._transfers_closing = asyncio.get_running_loop().create_task(self.transfers.close())
        if self._first_deadline is not None:
            self._first_deadline.cancel()
            self._first_deadline = None
        if self._first_pause is not None:
            pause, self._first_pause = self._first_pause, None
            gc.freeze()
            pause.__exit__(None, None, None)

    async def shutdown(self) -> None:
        log.info("serve: stopping")
        self._end_first_pause()
        self.filler.stop()
        await self.operations.close()
        self.listeners.stop_accepting()
        self.tls.close()
        for runtime in self.runtimes.values():
            runtime.stopping = True
            runtime.wake.set()
            if runtime.task is not None and not (
                runtime.refresher.checking and self._may_answer(runtime)
            ):
                # queued for a slot, or waiting for another zone's first try of its
                # primary: nothing of it is under way, and it must not begin a check
                # now; or trying primaries none of which has answered since the start
                # (a silent one made every stop wait its timeout)
                runtime.task.cancel()
        tasks = [r.task for r in self.runtimes.values() if r.task is not None]
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=5.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        others = list(self.listeners.connections) + list(self._background)
        if self._missed_keep is not None:
            self._missed_keep.cancel()
            self._missed_keep = None
        if self._missed_write is not None:  # (its older list must not land after ours)
            await asyncio.gather(self._missed_write, return_exceptions=True)
        self._keep_missed_notifies()
        others += self.notifier.close()
        for other in others:
            other.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        if self.connections is not None:
            self.connections.close()
        if self.unreachable is not None:
            self.unreachable.close()
        for runtime in self.runtimes.values():
            await runtime.flush()
        await self.transfers.close()
        self.commits.close()
        await self.listeners.wait_closed()
        self._restore_interpreter()
        self._release_store()
        log.info("serve: stopped")
        for waiter in self._stop_waiters:  # ctl stop returns now
            waiter.close()

    def _may_answer(self, runtime: ZoneRuntime) -> bool:
        """Whether a check of ``runtime`` may be transferring: one of its primaries has
        answered since the start (or it is named by host name, or no cache is kept)."""
        cache = self.unreachable
        pairs = runtime.primary_addresses
        return cache is None or not pairs or any(map(cache.answered, pairs))

    def _release_store(self) -> None:
        """Let the next serve have the store (one in this process too: the tests')."""
        if self._store_lock is not None:
            lock, self._store_lock = self._store_lock, None
            os.close(lock)

    def _restore_interpreter(self) -> None:
        """The switch interval and collector thresholds as they were before startup."""
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            gc.set_threshold(*self._gc_thresholds)

    def _primary_ready(self, address: str, port: int, every: bool) -> bool:
        """A primary held as unreachable may be tried (``every``: it answers again):
        its zones whose last check failed are checked now, one or all, rather than
        when their retry timers, doubled while their tries were skipped, fall due."""
        zones = self.runtimes.values()
        pairs = ((r.primary_addresses, r.refresher) for r in zones if r.is_secondary)
        return wake_failing(pairs, address, port, every)

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self._hangup)

    def _restore_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)

    def _spawn(self, coro: Coroutine[object, object, T]) -> asyncio.Task[T]:
        """Run ``coro`` in the background, kept (and cancelled at the stop); its task."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # --- zones ---------------------------------------------------------------------------------
    def _apply_keys(self, config: Config) -> None:
        self.keyring = {dns.name.from_text(k.name): k.to_dnspython() for k in config.keys.values()}
        self._key_names = {table: dns.name.from_text(k.name) for table, k in config.keys.items()}
        self.listeners.transfer_networks = transfer_networks(config)
        chaos = {}
        if config.server.version is not None:
            chaos["version.bind."] = config.server.version
        if config.server.identity is not None:
            chaos["hostname.bind."] = chaos["id.server."] = config.server.identity
        self.table.chaos = chaos

    async def _read_stored(self, zones: Iterable[ZoneConfig]) -> dict[tuple[bytes, ...], Stored]:
        """The store copies of secondary zones, read in batches (one thread hand-off
        per ``LOAD_BATCH`` zones: 10,000 small zones load in seconds), by the labels
        of the name as configured (hashed in C; a Name's hash is a Python loop), after
        one listing of the store: no absent state file or journal is opened."""
        store = self.store
        names = [z.name for z in zones if z.file is None and z.primaries]
        found: dict[tuple[bytes, ...], Stored] = {}
        present = await asyncio.to_thread(store.listing) if names and store else None
        if len(names) >= xferproc.MIN_ZONES:
            stored = sum(1 for name in present or () if name.endswith(".zone"))
            if stored * 2 < len(names):  # a cold start: ready before its first transfers
                self.transfers.start()
        if store is None:
            return found

        def read(batch: list[dns.name.Name]) -> None:
            for name in batch:
                try:
                    found[name.labels] = read_stored(store, name, present)
                except SecdnsError as err:  # _add_zone reads it again and logs it
                    log.debug("load: zone=%s %s", name, err.one_line())

        for start in range(0, len(names), LOAD_BATCH):
            await asyncio.to_thread(read, names[start : start + LOAD_BATCH])
        return found

    async def _add_zone(
        self,
        zone_config: ZoneConfig,
        keep: ZoneRuntime | None = None,
        stored: Stored | None = None,
        failed: list[ZoneRuntime] | None = None,
    ) -> ZoneRuntime:
        """A zone's runtime, answering what it has (``keep``'s version, its file, its
        stored copy).  A zone file that does not load is added to ``failed`` (when
        given; else it raises): the zone answers SERVFAIL until a reload loads it, or
        keeps ``keep``'s version, as BIND and Knot go on serving their other zones."""
        runtime = ZoneRuntime(zone_config, self.config, self.store, self._zone_changed)
        runtime.commits = self.commits
        runtime.elsewhere = self.transfers
        self.operations.attach(runtime)
        if keep is not None and keep.zone.version is not None:
            runtime.zone = keep.zone  # keep answering the loaded version
            runtime.journal = keep.journal
            runtime.last_success = keep.last_success
            runtime.store_copy = keep.store_copy
            runtime.keep_status(keep)  # (ctl status: primary, last change as they were)
            if zone_config.file is not None and zone_config.file == keep.config.file:
                runtime.file_stamp = keep.file_stamp  # (read again only if it changed)
        if zone_config.file is not None:
            await self._load_file(runtime, failed)  # (a new path read: a stranger's kept the old)
        elif keep is not None and keep.zone.version is not None:
            pass  # (a secondary's version kept, above)
        elif stored is not None:
            runtime.install_stored(stored)
        else:
            try:
                await runtime.load_from_store()
            except SecdnsError as err:
                log.error(
                    "load: zone=%s cannot use the stored copy: %s", zone_config.text, err.one_line()
                )
        self.runtimes[zone_config.name] = runtime
        self.table.add(runtime.zone)
        return runtime

    async def _load_file(self, runtime: ZoneRuntime, failed: list[ZoneRuntime] | None) -> bool:
        """Read a primary zone's file (again), as :meth:`ZoneRuntime.load_file`; one that
        does not load is added to ``failed`` (raised when None) and logged (at the start,
        once the start knows it goes on)."""
        try:
            loaded = await runtime.load_file()
        except SecdnsError as err:
            if failed is None:
                raise
            runtime.load_error = err
            failed.append(runtime)
            if self.started.is_set():
                log.error("reload: %s", failure_line(runtime, err))
            return False
        runtime.load_error = None
        return loaded

    def _start_zone(self, runtime: ZoneRuntime) -> None:
        self.filler.schedule(runtime.zone)  # ready answers of what it loaded, in the background
        if not runtime.is_secondary:
            return
        options = PullOptions(
            key=self.config.key_for(runtime.config),
            request_ixfr=runtime.config.request_ixfr,
            timeout=self.config.server.timeout,
            lifetime=self.config.server.lifetime,
            limits=self.config.server.limits,
            tls=runtime.config.tls,  # transport = "tls": XoT from the primaries
            explain=log_step if self.explain else None,  # serve -v: explain each refresh
            force_hint=RETRANSFER_HINT,
        )
        try:  # one value for the many zones with the same settings (frozen: shareable)
            options = self._pull_options.setdefault(options, options)
        except TypeError:  # a setting that does not hash: the zone's own
            pass
        runtime.task = asyncio.get_running_loop().create_task(runtime.run(self.gate, options))

    async def _remove_zone(self, name: dns.name.Name) -> None:
        runtime = self.runtimes.pop(name)
        self.table.remove(runtime.zone.key)
        runtime.zone.generation += 1  # cached answers of a removed zone are stale
        self.filler.forget(runtime.zone)  # and its ready answers dropped
        self.operations.metrics.forget(runtime.name)  # and its series
        runtime.stopping = True
        runtime.wake.set()
        if self._first_loads:
            self._first_loads.discard(name)
            if not self._first_loads:
                self._end_first_pause()
        self._tried(runtime.name, None)
        self.commits.release()  # (a write it has held back would wait for the cold start)
        if runtime.task is not None:
            if not runtime.refresher.checking:
                # asleep, or queued for the shared bound behind a storm of other zones'
                # checks (10,000 at a cold start): nothing of it is half done, it goes now
                runtime.task.cancel()
            try:  # a check under way may finish (its writes whole), for up to 5 s
                await asyncio.wait_for(runtime.task, 5.0)
            except (TimeoutError, asyncio.CancelledError):
                runtime.task.cancel()
        await runtime.flush()

    def _zone_changed(self, runtime: ZoneRuntime) -> None:
        version = runtime.zone.version
        if version is None:
            return
        if self._first_loads:
            self._first_loads.discard(runtime.config.name)
            if not self._first_loads:
                self._end_first_pause()
        self.catalogs.changed(runtime)
        self.filler.schedule(runtime.zone)  # not for an IXFR's version (see ReadyFiller)
        for endpoint in runtime.config.notify:
            self._spawn(self._notify(runtime, endpoint))

    async def _notify(
        self, runtime: ZoneRuntime, endpoint: Endpoint
    ) -> list[notifysend.NotifyResult]:
        """NOTIFY one of the zone's targets (each of its addresses); how each ended."""
        version = runtime.zone.version
        if version is None:
            return []
        try:
            addresses = await resolve(endpoint)
        except SecdnsError as err:
            log.warning("notify: zone=%s %s", runtime.name, err.one_line())
            return [notifysend.NotifyResult(str(endpoint), False, err.one_line())]
        soa = version.soa_rrset()
        tsig = self._notify_tsig(endpoint)
        return list(
            await asyncio.gather(
                *(
                    self.notifier.send(runtime.zone.origin, soa, address, port, tsig)
                    for address, port in addresses
                )
            )
        )

    def _notify_loaded(self, runtimes: Iterable[ZoneRuntime]) -> None:
        """Primary (``file``) zones loaded at the start, or added by a reload: NOTIFY their
        targets, as BIND does when it loads a primary zone.  A file changed while serve
        was down reached no downstream until the downstream's own refresh (a stranger's
        NSD, 7200 s).  Paced by ``[server] notify_limit`` in flight to each target."""
        loaded = [
            runtime
            for runtime in runtimes
            if runtime.config.file is not None
            and runtime.config.notify
            and runtime.zone.version is not None
        ]
        if not loaded:
            return
        log.info("notify: %d zones loaded from their files: NOTIFYing their targets", len(loaded))
        for runtime in loaded:
            for endpoint in runtime.config.notify:
                self._spawn(self._notify(runtime, endpoint))

    def _keep_missed_notifies(self) -> None:
        """serve stops: the NOTIFYs its targets never acknowledged, kept in the store."""
        if self.store is not None:
            notifysend.keep_missed(self.notifier, self.store.directory)

    def _missed_changed(self) -> None:
        """What a target missed changed: kept in the store within
        :data:`~secdns.notifysend.MISSED_KEEP_DELAY` (not only at the stop: a crash or a
        kill -9 would lose it, and a downstream down meanwhile would wait for its own
        refresh), one write at a time, off the event loop."""
        if self.store is None or self._missed_keep is not None or self.stop_event.is_set():
            return
        loop = asyncio.get_running_loop()
        self._missed_keep = loop.call_later(notifysend.MISSED_KEEP_DELAY, self._keep_missed_soon)

    def _keep_missed_soon(self) -> None:
        self._missed_keep = None
        if self.store is None or self.stop_event.is_set():
            return
        if self._missed_write is not None and not self._missed_write.done():
            self._missed_changed()  # (the last write still runs: after it)
            return
        missed = self.notifier.missed_zones()
        directory = self.store.directory
        self._missed_write = asyncio.get_running_loop().create_task(
            asyncio.to_thread(notifysend.write_missed, directory, missed)
        )

    def _resume_missed_notifies(self) -> None:
        """serve starts: the NOTIFYs its targets had not acknowledged when it stopped are
        what they missed now (sent again once each answers), for the zones still served,
        with their current SOA; the kept file is written again with what was resumed."""
        if self.store is None:
            return
        kept = notifysend.take_missed(self.store.directory)
        if kept or (self.store.directory / notifysend.MISSED_FILE).exists():
            self._missed_changed()  # (rewritten, or removed when none was resumed)
        for endpoint, origins in kept:
            tsig = self._notify_tsig(endpoint)
            zones = [
                (runtime.zone.origin, runtime.zone.version.soa_rrset(), tsig)
                for runtime in (self.runtimes.get(origin) for origin in origins)
                if runtime is not None and runtime.config.notify and runtime.zone.version
            ]
            if zones:
                log.info(
                    "notify: %s had not acknowledged the NOTIFYs of %d zone%s when serve "
                    "stopped: sent again when it answers",
                    endpoint,
                    len(zones),
                    "" if len(zones) == 1 else "s",
                )
                self.notifier.restore((endpoint.host, endpoint.port), zones)

    def _notify_tsig(self, endpoint: Endpoint) -> dns.tsig.Key | None:
        """The key NOTIFYs to ``endpoint`` are signed with ("HOST:PORT key:NAME"), from
        the keyring made of [keys] (not a new key object a NOTIFY)."""
        key = self.config.notify_key(endpoint)
        return self.keyring.get(dns.name.from_text(key.name)) if key is not None else None

    def _notify_counted(self, target: str, result: str) -> None:
        self.operations.metrics.count_notify_sent(target, result)

    async def _reload_on_signal(self) -> None:
        try:
            await self.reload()
        except SecdnsError:
            pass  # reload() logged it

    def _primaries_in_use(self) -> set[tuple[str, int]]:
        """Every primary address a zone transfers from: as resolved, and as written
        where it is an address (a zone a reload added may not have resolved yet)."""
        used: set[tuple[str, int]] = set()
        for runtime in self.runtimes.values():
            used.update(runtime.primary_addresses)
            used.update((e.host, e.port) for e in runtime.config.primaries if e.is_address)
        return used

    async def reload(self) -> Reloaded:
        """SIGHUP and ``ctl reload``: re-read the config; add, remove and change zones
        without dropping others.  Returns what changed and the warnings it logged
        (settings that need a restart, a zone file that did not load) for ``ctl reload``
        to show; raises the :class:`SecdnsError` of a config that does not load, after
        logging it."""
        path = self.config.path
        if path is None:
            return Reloaded()
        warnings: list[str] = []
        changed = 0
        reloaded = 0  # file zones that now serve a new version of their file
        failed: list[ZoneRuntime] = []  # file zones whose file did not load
        try:
            config = load_config(path)
            conflicts = keyring_conflicts(config)
            if conflicts:
                raise ConfigError(f"{path}: " + "; ".join(conflicts))
        except SecdnsError as err:
            # one line, as every log line (a config's "N problems:" come one per line)
            flat = err.one_line().replace(":\n  ", ": ").replace("\n  ", "; ")
            log.error("reload: %s; keeping the running configuration", flat)
            raise
        if config.server.listen != self.config.server.listen:
            warnings.append("listen addresses changed; restart secdns serve to apply")
            log.warning("reload: %s", warnings[-1])
        old = self.config
        served = set(self.runtimes)  # (what changed is counted from these: members too)
        self.config = config
        self.commits.sync = config.server.store_sync == "fsync"
        self.filler.configure(config.server)  # for the versions made from now on
        self.notifier.limit = config.server.notify_limit  # (for targets not sent to yet)
        self._apply_keys(config)
        wanted = {z.name: z for z in config.zones}
        removed = [n for n in self.runtimes if n not in wanted and not self.catalogs.owns(n)]
        for name in removed:
            log.info("reload: zone=%s removed", name)
        # together: each may wait (5 s at most) for a check under way to finish
        await asyncio.gather(*(self._remove_zone(name) for name in removed))
        for name, zone_config in wanted.items():
            current = self.runtimes.get(name)
            if current is None:
                log.info("reload: zone=%s added", name)
                runtime = await self._add_zone(zone_config, failed=failed)  # (counted: added)
                runtime.check_soon()  # (its stored copy, if any, may have missed NOTIFYs)
                self._start_zone(runtime)
                self._notify_loaded([runtime])
            elif current.config != zone_config or old.key_for(current.config) != config.key_for(
                zone_config
            ):
                log.info("reload: zone=%s changed", name)
                changed += 1
                await self._remove_zone(name)
                serial = current.zone.version.serial if current.zone.version else None
                runtime = await self._add_zone(zone_config, keep=current, failed=failed)
                if runtime.config.file is not None and runtime.zone.version is not None:
                    reloaded += runtime.zone.version.serial != serial
                runtime.check_soon()  # (new primaries or key: asked soon, not in 5 min)
                self._start_zone(runtime)
                if serial is None:  # (its file loads now: its secondaries are told)
                    self._notify_loaded([runtime])
            elif zone_config.file is not None:
                had = current.zone.version is not None
                reloaded += await self._load_file(current, failed)
                if not had and current.zone.version is not None:  # (its file loads now)
                    self._start_zone(current)
                    self._notify_loaded([current])
        # what a file zone's load warned of (a serial gone back), as ctl reload's warnings
        warnings += [r.load_warning for r in self.runtimes.values() if r.load_warning]
        changed += await self.catalogs.reload()  # (catalogs and members reconfigured)
        if self.unreachable is not None:  # primaries no zone uses now: out of ctl status
            self.unreachable.keep_only(self._primaries_in_use())
        warnings += await self.tls.reload()
        # every zone added or removed, catalogs and their members included (a stranger's
        # catalog put back with its 300 members said added=0)
        now = set(self.runtimes)
        added, gone = len(now - served), len(served - now)
        log.info(
            "reload: done, %d zones (%d added, %d removed, %d changed, %d reloaded, %d failed)",
            len(self.runtimes),
            added,
            gone,
            changed,
            reloaded,
            len(failed),
        )
        failures = [failure_line(runtime, runtime.load_error) for runtime in failed]
        errors = [runtime.load_error for runtime in failed if runtime.load_error is not None]
        exit_code = int(errors[0].exit_code) if errors else 0
        return Reloaded(added, gone, changed, warnings + failures, reloaded, failures, exit_code)


@dataclasses.dataclass(frozen=True, slots=True)
class Reloaded:
    """What a reload did: zones added and removed (catalogs and their members
    included), zones of the config changed, file zones re-read to a new version or
    failing to load, and its warnings."""

    added: int = 0
    removed: int = 0
    changed: int = 0
    warnings: list[str] = dataclasses.field(default_factory=list)
    reloaded: int = 0  # file zones serving a new version of their file
    failures: list[str] = dataclasses.field(default_factory=list)
    """The warnings of file zones whose file did not load (the loaded version kept)."""
    exit_code: int = 0  # the first failure's (6: it does not parse, 7: it cannot be read)


def failure_line(runtime: ZoneRuntime, err: SecdnsError | None) -> str:
    """The one line of a zone file that did not load, for the log and ``ctl reload``."""
    said = err.one_line(with_zone=False) if err is not None else "did not load"
    if runtime.zone.version is not None:
        return f"zone={runtime.name} {said}; keeping the loaded version"
    return f"zone={runtime.name} {said}; answering SERVFAIL until a reload loads it"


def check_config_for_serve(config: Config) -> None:
    """Problems that only matter for serve, reported before anything starts."""
    problems = []
    if not config.zones and not config.catalogs:
        problems.append("no [[zone]] or [[catalog]] to serve")
    for endpoint in config.server.listen:
        if not endpoint.is_address:
            problems.append(f"server.listen: {endpoint.host!r} is not an IP address")
    for endpoint in config.server.tls_listen:
        if not endpoint.is_address:
            problems.append(f"server.tls_listen: {endpoint.host!r} is not an IP address")
    if (
        any(z.primaries for z in config.zones) or config.catalogs
    ) and config.server.directory is None:
        problems.append("server.directory is required for secondary zones (the store)")
    problems += keyring_conflicts(config)
    if problems:
        raise ConfigError(f"{config.path}: " + "; ".join(problems))


FILE_LIMIT_CAP = 1 << 20


def raise_file_limit() -> None:
    """Raise the soft limit of open files to the hard one, as BIND and Knot do at start:
    systemd's default soft limit is 1,024, and TCP clients (``tcp_clients``), kept
    transfer connections, NOTIFYs in flight to each target and the store's files add up
    past it at a few thousand zones (a failed ``accept`` or ``socket`` is EMFILE)."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = FILE_LIMIT_CAP if hard == resource.RLIM_INFINITY else min(hard, FILE_LIMIT_CAP)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            log.debug("serve: open files limit raised from %d to %d", soft, wanted)
    except (ValueError, OSError) as err:  # (a container may forbid it: not fatal)
        log.debug("serve: open files limit not raised: %s", err)
