"""``watch --catalog``: follow a catalog zone and its members into a store (RFC 9432).

The catalog is one zone of a :class:`~secdns.mirror.Mirror` like any other
(IXFR, NOTIFY, timers, the store).  Each time the mirror has a new copy of it
(and once at the first check, which catches up with changes made while we were
not running), the copy is read back from the store and judged by
:func:`secdns.catalog.parse_catalog`; what changed against the membership
recorded in ``DIR/<catalog>.members.json`` is :func:`secdns.catalog_pull.plan_change`,
the bookkeeping ``pull --catalog`` does, so the two commands can take turns on
one directory:

* an added member is followed from now on (its first check within half a
  second: an AXFR into the store);
* a removed member is followed no more; its files stay, recorded as an
  ex-member, unless ``prune`` removes them (:func:`secdns.catalog_pull.settle`,
  as ``pull --catalog --prune``);
* a member whose unique id changed is dropped, its files removed, and followed
  again from scratch (RFC 9432 5.2).

A catalog is untrusted input: each record that cannot be used is logged as an
error naming the catalog and the record and skipped; a catalog that is unusable
as a whole (not version 2, over ``max_members``) changes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

import dns.name

from secdns import catalog as catalogs
from secdns.catalog_pull import load_membership, plan_change, read_catalog, remove_zone, settle
from secdns.errors import SecdnsError
from secdns.mirror import Mirror, MirrorEvent, MirrorEventKind, MirrorOptions, MirrorZone
from secdns.store import Store

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class CatalogSummary:
    """What a ``watch --catalog`` run did, for the line printed when it stops."""

    catalog: str
    serial: int | None  # of the catalog copy last read; None if never read
    members: int  # followed at the end
    added: int = 0
    removed: int = 0
    reset: int = 0
    pruned: int = 0
    findings: int = 0  # catalog records logged as unusable

    def to_dict(self) -> dict[str, object]:
        return {"event": "summary", **dataclasses.asdict(self)}


class CatalogWatch:
    """``await CatalogWatch(catalog, store, ...).run(stop)``: the catalog and its members.

    ``member`` makes the :class:`MirrorZone` of a member from its name (the
    catalog's primaries, key and TLS settings); ``on_event`` sees every mirror
    event, the catalog's and the members'.
    """

    def __init__(
        self,
        catalog: MirrorZone,
        store: Store,
        options: MirrorOptions,
        *,
        max_members: int = catalogs.DEFAULT_MAX_MEMBERS,
        prune: bool = False,
        on_event: Callable[[MirrorEvent], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.max_members = max_members
        self.prune = prune
        self._on_event = on_event
        self.recorded, self.removed = load_membership(store, catalog.origin)
        members = [self.member(name) for name in sorted(self.recorded) if name != catalog.origin]
        self.mirror = Mirror([catalog, *members], store=store, options=options, on_event=self._seen)
        self.serial: int | None = None
        self.counts = dict.fromkeys(("added", "removed", "reset", "pruned", "findings"), 0)
        self._pending = asyncio.Event()
        self._noted: set[str] = set()
        self._stopping = False

    def member(self, name: dns.name.Name) -> MirrorZone:
        """A member is followed from the catalog's primaries, with its key and TLS settings."""
        return dataclasses.replace(self.catalog, origin=name, output=None)

    def summary(self) -> CatalogSummary:
        return CatalogSummary(self.catalog.text, self.serial, len(self.recorded), **self.counts)

    async def run(self, stop: asyncio.Event) -> None:
        follower = asyncio.create_task(self._follow(), name=f"watch catalog {self.catalog.text}")
        try:
            await self.mirror.run(stop)
        finally:  # a change being applied gets the mirror's grace to finish
            self._stopping = True
            self._pending.set()
            await asyncio.wait([follower], timeout=self.mirror.options.grace)
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)

    def _seen(self, event: MirrorEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)
        if event.zone == self.catalog.text and event.kind in (
            MirrorEventKind.SYNCED,
            MirrorEventKind.UPDATED,
        ):
            self._pending.set()  # changes made while one is applied coalesce into one more

    async def _follow(self) -> None:
        while not self._stopping:
            await self._pending.wait()
            self._pending.clear()
            if self._stopping:
                return
            try:
                await self.apply()
            except SecdnsError as err:
                log.error("watch: catalog=%s %s", self.catalog.text, err.one_line())

    async def _reset(self, member: dns.name.Name) -> None:
        """Follow a member afresh: its files go first, so the next check is an AXFR."""
        await self.mirror.remove_zone(member)
        await asyncio.to_thread(remove_zone, self.store, member)
        await self.mirror.add_zone(self.member(member))

    async def apply(self) -> None:
        """Read the catalog's stored copy and bring the followed members in line with it."""
        name = self.catalog.origin
        parsed = await asyncio.to_thread(read_catalog, self.store, name, self.max_members)
        self.serial = parsed.serial
        for finding in parsed.findings:
            log.error("watch: %s", finding.line())
        self.counts["findings"] += len(parsed.findings)
        if not parsed.usable:
            log.error(
                "watch: catalog=%s serial %s is unusable: keeping its %d members",
                self.catalog.text,
                parsed.serial,
                len(self.recorded),
            )
            return
        change = plan_change(parsed, self.recorded, self.removed)
        for member in change.reset:
            log.warning(
                "watch: catalog=%s member %s has a new unique id %s: "
                "transferring it from scratch (RFC 9432 5.2)",
                self.catalog.text,
                member.text,
                member.unique_id,
            )
        gone = sorted(set(self.recorded) - set(change.unique_ids))
        for member_name in gone:
            log.warning(
                "watch: catalog=%s member %s removed: no longer followed", name, member_name
            )
        # at once: each may wait for a transfer in progress to finish
        await asyncio.gather(*(self._reset(m.name) for m in change.reset))
        followed = set(self.mirror.origins)
        served = {m: self.mirror.serial(m) if m in followed else None for m in gone}
        await asyncio.gather(*(self.mirror.remove_zone(m) for m in gone))
        for member_name in gone:  # an event too, not only the summary's count
            self.mirror.member_removed(member_name, served[member_name])
        self.counts["reset"] += len(change.reset)
        self.counts["removed"] += len(gone)
        for added in change.added:
            log.warning("watch: catalog=%s member %s added: following it", name, added)
            await self.mirror.add_zone(self.member(added))
            self.counts["added"] += 1
        kept, notes = await asyncio.to_thread(
            settle, self.store, name, change.unique_ids, change.removed, self.prune
        )
        self.counts["pruned"] += len(change.removed) - len(kept)
        for note in notes:
            if note not in self._noted:  # once, not at every change of the catalog
                log.warning("watch: %s", note)
        self._noted = set(notes)
        self.recorded, self.removed = dict(change.unique_ids), set(kept)
