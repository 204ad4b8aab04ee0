"""What ``ctl status``, ``/metrics`` and ``/readyz`` say about each served zone.

:class:`~secdns.refresh.ZoneStatus` is the refresh scheduler's value per zone;
:class:`ServeZones` is the operator side's view of a running
:class:`~secdns.server.server.Server`: statuses (primary zones, which have no
refresh timers, included), refreshes on demand through each zone's own
:class:`~secdns.refresh.Refresher` (so they queue behind a running check and
share the server's bound on transfers), NOTIFY on demand, and every refresh's
result passed to observers (the metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import dns.exception
import dns.name

from secdns.addresses import resolve
from secdns.errors import SecdnsError, UsageError
from secdns.explain import Explain
from secdns.notifysend import NotifyResult
from secdns.pull import PullResult
from secdns.refresh import RefreshState, ZoneStatus

if TYPE_CHECKING:
    from secdns.endpoints import Endpoint
    from secdns.server.server import Server
    from secdns.server.zones import ZoneRuntime

__all__ = ["PROBLEM_STATES", "STATES", "ServeZones", "ZoneStatus"]

STATES = tuple(state.value for state in RefreshState)
"""``state``: no check finished yet; up to date; a check is running; the last check
failed and a retry is scheduled; past SOA expire without a successful check
(answering SERVFAIL); a catalog that cannot be used; a zone file that has not loaded
(answering SERVFAIL until a reload loads it)."""

NOTIFY_WAIT = 10.0
"""Seconds ``ctl notify`` waits for its targets' acknowledgements."""
PROBLEM_STATES = frozenset(
    {
        RefreshState.RETRYING.value,
        RefreshState.EXPIRED.value,
        RefreshState.UNUSABLE.value,
        RefreshState.FAILED.value,
    }
)
"""States that make ``secdns ctl status`` exit 1."""


class ServeZones:
    """The zones of a running server, as operators see and drive them."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.observers: list[Callable[[str, PullResult], None]] = []
        self._explaining: dict[dns.name.Name, asyncio.Lock] = {}
        self._orders: tuple[object, dict[dns.name.Name, int]] | None = None  # see _order

    def attach(self, runtime: ZoneRuntime) -> None:
        """Pass every refresh result of ``runtime`` to the observers, before the zone's
        own handling (one shared list: no closure per zone, 10,000 zones)."""
        runtime.observers = self.observers

    # --- status ---
    def runtime(self, zone: str) -> ZoneRuntime:
        try:
            name = dns.name.from_text(zone)
        except dns.exception.DNSException as err:
            raise UsageError(f"bad zone name {zone!r}: {err}") from err
        runtime = self.server.runtimes.get(name)
        if runtime is None:
            raise UsageError(f"zone {name} is not served here")
        return runtime

    def status(self, runtime: ZoneRuntime) -> ZoneStatus:
        if runtime.is_secondary:
            found = runtime.status()
            problem = self.server.catalogs.problems.get(runtime.config.name)
            if problem is None or found.state in PROBLEM_STATES:
                return found
            usable, said = problem  # a [[catalog]] whose last copy was not clean
            return dataclasses.replace(
                found,
                state=found.state if usable else RefreshState.UNUSABLE.value,
                last_error=found.last_error or said,
            )
        version = runtime.zone.version  # a primary zone: loaded from its file, no timers
        if version is not None:
            state = RefreshState.OK
        else:  # (its file did not load: at the start, or added by a reload)
            state = RefreshState.FAILED if runtime.refresher.last_error else RefreshState.LOADING
        return ZoneStatus(
            zone=runtime.name,
            serial=version.serial if version else None,
            state=state.value,
            primary=None,
            last_refresh=None,
            last_change=runtime.refresher.last_change,  # (a reload to a new serial)
            next_refresh=None,
            expires_at=None,
            records=version.records if version else None,
            last_error=runtime.refresher.last_error,  # (its file's last reload failed)
        )

    def statuses(
        self, zones: list[str] | None = None, catalog: str | None = None
    ) -> list[ZoneStatus]:
        """The statuses of ``zones`` (every zone when none), or of the members that
        ``[[catalog]]`` *catalog* gives (among ``zones`` if given)."""
        if zones:
            runtimes = [self.runtime(z) for z in zones]
        else:  # in the config's order (a zone a reload changed was listed last)
            order = self._order()
            every = self.server.runtimes.values()
            runtimes = sorted(every, key=lambda r: order.get(r.config.name, len(order)))
        if catalog is not None:
            members = self.server.catalogs.members_of(self._catalog_name(catalog))
            runtimes = [r for r in runtimes if r.config.name in members]
        return [self.status(r) for r in runtimes]

    def _order(self) -> dict[dns.name.Name, int]:
        """Each configured zone's place in the config (catalog members come after them,
        in the order serve added them: sorted() keeps it)."""
        config = self.server.config
        cached = self._orders
        if cached is None or cached[0] is not config:
            cached = self._orders = (config, {z.name: i for i, z in enumerate(config.zones)})
        return cached[1]

    def _catalog_name(self, catalog: str) -> dns.name.Name:
        try:
            name = dns.name.from_text(catalog)
        except dns.exception.DNSException as err:
            raise UsageError(f"bad catalog name {catalog!r}: {err}") from err
        if not any(c.name == name for c in self.server.config.catalogs):
            raise UsageError(f"catalog {name} is not a [[catalog]] of this server")
        return name

    # --- on demand ---
    async def refresh(
        self, zone: str, force_axfr: bool = False, explain: Explain | None = None
    ) -> PullResult:
        """SOA check now (transfer if newer), or a full AXFR whatever the serial.

        ``explain`` is put into the zone's pull options for this one check; a check
        of the refresh timer that starts meanwhile would report to it too (harmless:
        the requester sees more steps, never fewer).
        """
        runtime = self.runtime(zone)
        if not runtime.is_secondary:
            raise UsageError(f"zone {runtime.name} is a primary zone (file); nothing to refresh")
        lift = await self._held_lifter(runtime)
        if explain is None:
            return await runtime.refresh(force_axfr, before=lift)
        lock = self._explaining.setdefault(runtime.config.name, asyncio.Lock())
        async with lock:  # one explained check at a time, so the options are restored right
            options = runtime.options
            runtime.options = dataclasses.replace(options, explain=explain)
            try:
                return await runtime.refresh(force_axfr, before=lift)
            finally:
                runtime.options = options

    async def _held_lifter(self, runtime: ZoneRuntime) -> Callable[[], None] | None:
        """Asked for by an operator: the zone's primaries are tried even if held as
        unreachable after timeouts (:mod:`secdns.unreachable`), their holds lifted just
        before its check (after any check under way, whose timeout would hold them
        again: a stranger's ``ctl refresh`` then said "not tried: held")."""
        unreachable = self.server.unreachable
        if unreachable is None:
            return None
        pairs: list[tuple[str, int]] = []
        for endpoint in runtime.config.primaries:
            with contextlib.suppress(SecdnsError):  # (the refresh says why it cannot resolve)
                pairs += await resolve(endpoint)

        def lift() -> None:
            for address, port in pairs:
                unreachable.forget(address, (port,), up=False)

        return lift

    async def notify(self, zone: str, wait: float = NOTIFY_WAIT) -> list[dict[str, object]]:
        """NOTIFY the zone's ``notify`` targets now; how each ended within ``wait``
        seconds (a target not acknowledged by then is retried in the background and
        reported as such: a stranger's ``ctl notify`` of a stopped downstream returned
        after 138 s, exit 0)."""
        runtime = self.runtime(zone)
        if runtime.zone.version is None:
            raise UsageError(f"zone {runtime.name} is not loaded yet; nothing to NOTIFY")
        targets = list(runtime.config.notify)
        if not targets:
            raise UsageError(f"zone {runtime.name} has no notify targets")
        # (in the background: one not done within wait goes on)
        tasks = [self.server._spawn(self.server._notify(runtime, target)) for target in targets]
        notifier, origin = self.server.notifier, runtime.zone.origin

        def why(target: Endpoint) -> str | None:
            return notifier.last_failure(origin, target.host, target.port)

        loop = asyncio.get_running_loop()
        began = loop.time()
        while True:  # until all are done, or those that are not were refused (nothing
            # listens there: waiting out the rest of the 10 s tells no more, a stranger saw)
            left = began + wait - loop.time()
            if left <= 0:
                break
            await asyncio.wait(tasks, timeout=min(left, 0.1))
            pending = [t for t, task in zip(targets, tasks, strict=True) if not task.done()]
            if all(notifier.unreachable(origin, t.host, t.port) for t in pending):
                break
        waited = loop.time() - began
        results: list[dict[str, object]] = []
        for target, task in zip(targets, tasks, strict=True):
            if task.done() and not task.cancelled():
                results += [result.to_dict() for result in task.result()]
            else:
                said = why(target)
                results.append(
                    NotifyResult(
                        str(target),
                        False,
                        f"not acknowledged within {waited:.0f} s"
                        + (f" ({said})" if said else "")
                        + "; still retrying in the background",
                    ).to_dict()
                )
        return results
