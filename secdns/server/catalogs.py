"""Catalog zones in ``serve`` (RFC 9432): follow ``[[catalog]]``s, publish ``[server] catalog``.

Consumer.  Each ``[[catalog]]`` is a secondary zone of the server like any
other (same :class:`~secdns.server.zones.ZoneRuntime`, so IXFR, NOTIFY, timers
and the store come for free).  After every change applied to a catalog's
in-memory copy, its member set is parsed (:func:`secdns.catalog.parse_catalog`)
and the ownership of every member recomputed over all catalogs
(:func:`secdns.catalog.assign_members`, the rule ``pull --catalog`` uses):

* an added member becomes a secondary zone with the catalog's primaries, key and
  TLS settings, or its ``[groups.NAME]``'s, and is started at once (its first
  check comes within half a second);
* a removed member is no longer answered (REFUSED) and its files leave the store; the
  members of a ``[[catalog]]`` removed from the config are no longer answered either,
  but keep their files, as a removed ``[[zone]]`` does (a typo in a catalog's name
  must not wipe a customer's zones; put back, they load from the store);
* a member whose unique id changed is dropped, its files removed, and transferred
  from scratch (5.2);
* a member whose group or owner (``coo``, 5.6) changed keeps its data and gets
  its new settings.

A catalog is untrusted input: every record it lists that cannot be used is
logged as an error naming the catalog and the record, and skipped; a catalog
that is unusable as a whole (not version 2, over ``max_members``) changes
nothing.  A zone configured with ``[[zone]]`` is never a member.

Members survive a restart: on startup each catalog is read from the store and
its members loaded from theirs, before any refresh.

Producer.  With ``[server] catalog = "NAME."`` the server publishes a version 2
catalog of every zone it serves (configured zones and catalog members; not the
catalogs themselves), a primary zone built in memory with a new serial whenever
that set changes, transferable under ``catalog_allow_transfer`` and NOTIFYing
``catalog_notify``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING

import dns.name

from secdns import catalog as catalogs
from secdns import zonefile
from secdns.catalog_pull import remove_zone
from secdns.config import CatalogConfig, Config, ZoneConfig
from secdns.copies import axfr_journal
from secdns.errors import SecdnsError
from secdns.server.zone import ZoneVersion
from secdns.server.zones import ZoneRuntime

if TYPE_CHECKING:
    from secdns.server.server import Server

log = logging.getLogger(__name__)


def catalog_zone_config(catalog: CatalogConfig) -> ZoneConfig:
    """The catalog itself as a secondary zone (transferable from us under its
    ``allow_transfer``: a secondary of ours follows it, then its members, from us)."""
    return ZoneConfig(
        name=catalog.name,
        primaries=catalog.primaries,
        key=catalog.key,
        tls=catalog.tls,
        allow_transfer=catalog.allow_transfer,
        notify=catalog.notify,
    )


def member_config(config: Config, catalog: CatalogConfig, member: catalogs.Member) -> ZoneConfig:
    """A member's zone settings: its catalog's, each overridden by its first configured
    group's when that group sets it (a stranger had no way to let a downstream
    secondary transfer members without a group property on every one)."""
    group = next((config.groups[g] for g in member.groups if g in config.groups), None)
    return ZoneConfig(
        name=member.name,
        primaries=(group.primaries if group and group.primaries else catalog.primaries),
        key=group.key if group and group.key else catalog.key,
        allow_transfer=(
            group.allow_transfer if group and group.allow_transfer else catalog.allow_transfer
        ),
        notify=group.notify if group and group.notify else catalog.notify,
        tls=catalog.tls,
    )


def version_text(version: ZoneVersion) -> str:
    """A zone version as a master file (relative owners under ``$ORIGIN``)."""
    return f"$ORIGIN {version.origin_text}\n" + "\n".join(version.iter_lines()) + "\n"


class CatalogZones:
    """The catalogs a server follows and the one it publishes."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.listed: dict[dns.name.Name, dict[dns.name.Name, catalogs.Member]] = {}
        self.reconfigured = 0  # catalogs and members whose settings a reload changed
        self.owner: dict[dns.name.Name, dns.name.Name] = {}  # member -> its catalog
        self.members: dict[dns.name.Name, catalogs.Member] = {}  # as its owner lists it
        self.published: ZoneRuntime | None = None
        self._published_set: frozenset[dns.name.Name] | None = None
        self._lock = asyncio.Lock()
        self._noted: set[str] = set()
        # of each catalog's last read: its records skipped, whether it was usable (metrics)
        self.read_counts: dict[dns.name.Name, tuple[int, bool]] = {}
        # of each catalog's last read that was not clean: (usable, what to say), for
        # ctl status and /readyz (a stranger's unusable catalog showed "ok" everywhere)
        self.problems: dict[dns.name.Name, tuple[bool, str]] = {}
        self._said: dict[dns.name.Name, set[str]] = {}  # its records not used, logged

    @property
    def config(self) -> Config:
        return self.server.config

    def _catalog(self, name: dns.name.Name) -> CatalogConfig | None:
        return next((c for c in self.config.catalogs if c.name == name), None)

    def members_of(self, catalog: dns.name.Name) -> set[dns.name.Name]:
        """The members ``[[catalog]]`` *catalog* gives (``ctl status --catalog``)."""
        return {member for member, owner in self.owner.items() if owner == catalog}

    def owns(self, name: dns.name.Name) -> bool:
        """Whether the zone is run from here (a catalog, a member, the published catalog)."""
        return (
            name in self.owner
            or self._catalog(name) is not None
            or (self.published is not None and name == self.published.config.name)
        )

    # --- lifecycle -----------------------------------------------------------------------------
    async def startup(self) -> None:
        """Add the catalogs and, from the store, their members (before listening)."""
        async with self._lock:
            for catalog in self.config.catalogs:
                runtime = await self.server._add_zone(catalog_zone_config(catalog))
                runtime.check_soon(at_once=True)  # (every member waits for it)
                await self._read(runtime)
            await self._assign(start=False)
            self._publish()

    async def reload(self) -> int:
        """After SIGHUP: catalogs added, removed or changed; groups; the published catalog.
        How many catalogs and members had their settings changed (``ctl reload``'s
        ``changed``: a stranger's catalog settings, applied, said changed=0)."""
        async with self._lock:
            self.reconfigured = 0
            wanted = {c.name: c for c in self.config.catalogs}
            for name in [n for n in self.listed if n not in wanted]:
                log.info("reload: catalog=%s removed: its members go too", name)
                self.listed.pop(name, None)
                if name in self.server.runtimes and self.config.zone(name) is None:
                    await self.server._remove_zone(name)
            for name, catalog in wanted.items():
                current = self.server.runtimes.get(name)
                zone_config = catalog_zone_config(catalog)
                if current is None or current.config != zone_config:
                    if current is not None:
                        self.reconfigured += 1
                        await self.server._remove_zone(name)
                    current = await self.server._add_zone(zone_config, keep=current)
                    current.check_soon(at_once=True)
                    self.server._start_zone(current)
                await self._read(current)  # max_members may have changed
            await self._assign(start=True)
            self._publish()
            return self.reconfigured

    def counts(self) -> list[tuple[str, int, int, bool]]:
        """(catalog, members it gives, records of its last read skipped, whether that
        read was usable) of each ``[[catalog]]``, for the metrics."""
        members: dict[dns.name.Name, int] = {}
        for catalog in list(self.owner.values()):
            members[catalog] = members.get(catalog, 0) + 1
        return [
            (
                catalog.text,
                members.get(catalog.name, 0),
                *self.read_counts.get(catalog.name, (0, True)),
            )
            for catalog in self.config.catalogs
        ]

    def changed(self, runtime: ZoneRuntime) -> None:
        """A zone's copy changed (the server's on_change): a catalog's? Re-read its members."""
        if runtime.config.name in self.listed or self._catalog(runtime.config.name) is not None:
            self.server._spawn(self._changed(runtime))

    async def _changed(self, runtime: ZoneRuntime) -> None:
        async with self._lock:
            if self.server.runtimes.get(runtime.config.name) is not runtime:
                return  # removed meanwhile
            if await self._read(runtime):
                await self._assign(start=True)
                self._publish()

    # --- consuming -----------------------------------------------------------------------------
    async def _read(self, runtime: ZoneRuntime) -> bool:
        """Parse a catalog's current copy into ``listed``; False when it changes nothing."""
        catalog = self._catalog(runtime.config.name)
        version = runtime.zone.version
        if catalog is None or version is None:
            return False
        try:
            parsed = await asyncio.to_thread(
                functools.partial(
                    catalogs.catalog_from_text,
                    catalog.name,
                    version_text(version),
                    max_members=catalog.max_members,
                    held=self.listed.get(catalog.name),  # (a member listed twice: kept)
                )
            )
        except SecdnsError as err:
            log.error("catalog: catalog=%s unreadable: %s", catalog.text, err.one_line())
            return False
        # each record not used said once while it stays in the catalog, with the serial
        # and the primary it came from (every change and reload said them all again)
        said = self._said.get(catalog.name, set())
        now = {finding.line() for finding in parsed.findings}
        primary = runtime.refresher.primary or "its primary"
        for finding in parsed.findings:
            if finding.line() not in said:
                log.error("catalog: %s (serial %s from %s)", finding.line(), parsed.serial, primary)
        self._said[catalog.name] = now
        self.read_counts[catalog.name] = (len(parsed.findings), parsed.usable)
        if not parsed.usable:
            kept = sum(1 for owner in self.owner.values() if owner == catalog.name)
            log.error(
                "catalog: catalog=%s serial %s is unusable: keeping its %d members",
                catalog.text,
                parsed.serial,
                kept,
            )
            why = parsed.findings[-1].message if parsed.findings else "unusable"
            self.problems[catalog.name] = (
                False,
                f"serial {parsed.serial} is unusable ({why}): keeping its {kept} members",
            )
            return False
        if parsed.findings:
            self.problems[catalog.name] = (
                True,
                f"serial {parsed.serial}: {len(parsed.findings)} records not used "
                f"(the log says which), the first: {parsed.findings[0].record}: "
                f"{parsed.findings[0].message}",
            )
        else:
            self.problems.pop(catalog.name, None)
        self.listed[catalog.name] = dict(parsed.members)
        return True

    def _taken(self) -> set[dns.name.Name]:
        taken = {z.name for z in self.config.zones} | {c.name for c in self.config.catalogs}
        if self.config.server.catalog is not None:
            taken.add(self.config.server.catalog)
        return taken

    async def _assign(self, *, start: bool) -> None:
        """Recompute who owns which member; add, drop, reset and reconfigure member zones."""
        listings = [(c.name, self.listed.get(c.name, {})) for c in self.config.catalogs]
        taken = self._taken()
        owner, notes = catalogs.assign_members(listings, taken, self.owner)
        groups = self.config.groups
        for catalog_name, listed in listings:  # (a typo in a group name was silent)
            for member in listed.values():
                if member.groups and not any(g in groups for g in member.groups):
                    named = ", ".join(repr(g) for g in member.groups)
                    notes.append(
                        f"catalog {catalog_name}: member {member.name} names group {named}, "
                        "no [groups.*] of this server: it takes the catalog's settings"
                    )
        for note in notes:
            if note not in self._noted:  # once, not at every change of a catalog
                log.warning("catalog: %s", note)
        self._noted = set(notes)
        gone, unlisted = [], []
        configured = {c.name: c for c in self.config.catalogs}
        for name in [n for n in self.owner if n not in owner]:
            was = self.owner.pop(name)
            self.members.pop(name, None)
            if name in taken:
                continue  # a configured zone now: the server's reload runs it
            if was in configured:  # the catalog's primary removed it: its files go too
                log.info(
                    "catalog: catalog=%s member %s removed from the catalog: no longer served",
                    was,
                    name,
                )
                gone.append(name)
            else:  # its [[catalog]] left the config: kept, as a removed [[zone]]'s files are
                unlisted.append(name)
        if unlisted:
            log.info(
                "catalog: %d members no longer answered: their [[catalog]] left the config "
                "(their store files are kept, as a removed [[zone]]'s: put it back and they "
                "load from the store)",
                len(unlisted),
            )
        await asyncio.gather(  # (each may wait for a transfer under way)
            *(self._drop(name) for name in gone),
            *(self._drop(name, keep_files=True) for name in unlisted),
        )
        loaded: dict[str, int] = {}
        added: list[ZoneRuntime] = []
        # the store copies of members new here, read in batches as serve's start reads its
        # zones' (one thread hand-off a zone made a restart of 2,000 members take ~1 s)
        wanted_of = {
            name: member_config(self.config, configured[owned], self.listed[owned][name])
            for name, owned in owner.items()
        }
        fresh = [
            wanted_of[name]
            for name in owner
            if name not in self.members and name not in self.server.runtimes
        ]
        stored = await self.server._read_stored(fresh) if len(fresh) > 1 else {}
        for name, catalog_name in owner.items():
            catalog = configured[catalog_name]
            member = self.listed[catalog_name][name]
            before = self.members.get(name)
            wanted = wanted_of[name]
            current = self.server.runtimes.get(name)
            self.owner[name] = catalog_name
            self.members[name] = member
            if before is not None and before.unique_id != member.unique_id:
                log.warning(
                    "catalog: catalog=%s member %s has a new unique id %s: "
                    "transferring it from scratch (RFC 9432 5.2)",
                    catalog.text,
                    name,
                    member.unique_id,
                )
                await self._drop(name)
                current = None
            elif current is not None and current.config == wanted:
                continue
            elif current is not None:
                log.info("catalog: catalog=%s member %s settings changed", catalog.text, name)
                self.reconfigured += 1
                await self.server._remove_zone(name)
            elif start:
                log.info("catalog: catalog=%s member %s added", catalog.text, name)
            else:  # (serve's start: the stored catalog's members, said once a catalog)
                log.debug("catalog: catalog=%s member %s loaded", catalog.text, name)
                loaded[catalog.text] = loaded.get(catalog.text, 0) + 1
            # (read above only for a member new here: one dropped just now has no files)
            kept = stored.pop(name.labels, None) if before is None else None
            added.append(await self.server._add_zone(wanted, keep=current, stored=kept))
        if start:  # (many members with nothing to serve: a cold start of their own)
            self.server.cold_start(added)
            for runtime in added:
                runtime.check_soon()  # (a member back with its catalog: its copy may be old)
                self.server._start_zone(runtime)
        for catalog_text, count in loaded.items():
            log.info("catalog: catalog=%s %d members, from its stored copy", catalog_text, count)

    async def _drop(self, name: dns.name.Name, *, keep_files: bool = False) -> None:
        """Stop answering a member and remove its files from the store (unless
        ``keep_files``)."""
        if name in self.server.runtimes:
            await self.server._remove_zone(name)
        store = self.server.store
        if store is not None and not keep_files:
            try:
                await asyncio.to_thread(remove_zone, store, name)
            except SecdnsError as err:
                log.error("catalog: member %s: %s", name, err.one_line())

    # --- producing -----------------------------------------------------------------------------
    def _publish(self) -> None:
        """Publish ``[server] catalog`` anew if the set of served zones changed."""
        name = self.config.server.catalog
        if name is None:
            if self.published is not None:
                self.server.runtimes.pop(self.published.config.name, None)
                self.server.table.remove(self.published.zone.key)
                self.published.zone.generation += 1
                self.published = None
                self._published_set = None
            return
        zone_config = ZoneConfig(
            name=name,
            allow_transfer=self.config.server.catalog_allow_transfer,
            notify=self.config.server.catalog_notify,
        )
        runtime = self.published
        if runtime is None or runtime.config.name != name:
            if runtime is not None:
                self.server.runtimes.pop(runtime.config.name, None)
                self.server.table.remove(runtime.zone.key)
            runtime = ZoneRuntime(zone_config, self.config, None, self.server._zone_changed)
            self.published = runtime
            self._published_set = None
            self.server.runtimes[name] = runtime
            self.server.table.add(runtime.zone)
        runtime.config = zone_config  # allow_transfer and notify follow SIGHUP
        served = frozenset(
            zone for zone in self.server.runtimes if zone != name and self._catalog(zone) is None
        )
        if served == self._published_set:
            return
        old = runtime.zone.version
        serial = int(time.time()) & 0xFFFFFFFF  # time-based: it grows across restarts
        if old is not None and not 0 < (serial - old.serial) & 0xFFFFFFFF < 1 << 31:
            serial = (old.serial + 1) & 0xFFFFFFFF
        version = published_version(name, served, serial)
        entry = None
        if old is not None:
            entry, _, _ = axfr_journal(
                name, list(old.iter_lines()), list(version.iter_lines()), old.serial, serial
            )
        runtime.install(version, [entry] if entry else None)
        self._published_set = served
        log.info("catalog: published %s serial %d, %d zones", name, serial, len(served))


def published_version(
    name: dns.name.Name, zones: frozenset[dns.name.Name], serial: int
) -> ZoneVersion:
    """The version 2 catalog of ``zones`` as a servable zone version."""
    from secdns.masterfile import read_master

    text = catalogs.render_catalog(name, zones, serial)
    records = read_master(text, name, filename=f"<catalog {name}>").records
    return ZoneVersion.from_lines(name, zonefile.canonical_lines(records))
