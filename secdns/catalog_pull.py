"""``pull --catalog``: a catalog zone and its members into one store (RFC 9432 consumer).

The catalog is pulled like any zone (:func:`secdns.pull.pull_zone` into the
store, so later runs use IXFR), read back from the store, and judged by
:func:`secdns.catalog.parse_catalog`.  The members are then pulled by the
caller's usual bounded pool.  Which members this catalog brought is kept in
``DIR/<catalog>.members.json`` (member -> unique id, and members no longer
listed but not yet pruned), so that

* ``--prune`` removes only zones this catalog listed before, never other zones
  that share the directory;
* a member whose unique id changed is removed first and transferred from
  scratch (RFC 9432 5.2);
* an unusable catalog (not version 2, over the member limit) changes nothing:
  the recorded members are pulled as before.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from pathlib import Path

import dns.exception
import dns.name

from secdns import catalog as catalogs
from secdns.atomicfile import atomic_write, fsync_directory
from secdns.copies import StoreCopy
from secdns.endpoints import Endpoint
from secdns.errors import LocalIOError
from secdns.pull import PullOptions, PullResult, Status, pull_zone
from secdns.store import Store, zone_filename

log = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class CatalogPlan:
    """The catalog's own pull, and what to do with its members."""

    name: dns.name.Name
    result: PullResult
    primaries: list[Endpoint]  # the members come from the catalog's primaries...
    options: PullOptions  # ...with its key and transport
    catalog: catalogs.Catalog | None = None  # None when the catalog could not be pulled
    members: list[dns.name.Name] = dataclasses.field(default_factory=list)  # pull these
    unique_ids: dict[dns.name.Name, str] = dataclasses.field(default_factory=dict)
    removed: list[dns.name.Name] = dataclasses.field(default_factory=list)  # no longer listed
    reset: list[dns.name.Name] = dataclasses.field(default_factory=list)  # unique id changed

    @property
    def findings(self) -> tuple[catalogs.CatalogFinding, ...]:
        return self.catalog.findings if self.catalog is not None else ()


def members_path(store: Store, name: dns.name.Name) -> Path:
    return store.directory / f"{zone_filename(name)}.members.json"


def load_membership(
    store: Store, name: dns.name.Name
) -> tuple[dict[dns.name.Name, str], set[dns.name.Name]]:
    """The members (-> unique id) and the not yet pruned ex-members recorded for a catalog."""
    path = members_path(store, name)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        members = {dns.name.from_text(k): str(v) for k, v in doc.get("members", {}).items()}
        removed = {dns.name.from_text(k) for k in doc.get("removed", [])}
    except FileNotFoundError:
        return {}, set()
    except (OSError, ValueError, AttributeError, dns.exception.DNSException) as err:
        log.warning("pull: catalog=%s %s is damaged (%s); starting afresh", name, path, err)
        return {}, set()
    return members, removed


def save_membership(
    store: Store,
    name: dns.name.Name,
    members: dict[dns.name.Name, str],
    removed: list[dns.name.Name],
) -> None:
    doc = {
        "catalog": name.to_text(),
        "members": {k.to_text(): members[k] for k in sorted(members)},
        "removed": [k.to_text() for k in sorted(removed)],
    }
    atomic_write(members_path(store, name), json.dumps(doc, indent=1) + "\n")


def remove_zone(store: Store, origin: dns.name.Name) -> bool:
    """Remove a zone's file, state and journal from the store; whether there was any."""
    found = False
    for path in (store.zone_path(origin), store.state_path(origin), store.journal_path(origin)):
        try:
            path.unlink()
            found = True
        except FileNotFoundError:
            continue
        except OSError as err:
            raise LocalIOError(f"cannot remove {path}: {err.strerror}") from err
    if found:
        fsync_directory(store.directory)
    return found


@dataclasses.dataclass(frozen=True, slots=True)
class MemberChange:
    """What a new version of a catalog means for the members recorded before it."""

    unique_ids: dict[dns.name.Name, str]  # the members now (-> unique id)
    removed: list[dns.name.Name]  # no longer listed and not yet pruned, sorted
    added: list[dns.name.Name]  # listed now, not recorded before
    reset: list[catalogs.Member]  # unique id changed: transfer from scratch (RFC 9432 5.2)


def plan_change(
    parsed: catalogs.Catalog,
    recorded: dict[dns.name.Name, str],
    removed_before: set[dns.name.Name],
) -> MemberChange:
    """The members after ``parsed``; an unusable catalog changes nothing (keep what we had)."""
    if not parsed.usable:
        return MemberChange(dict(recorded), sorted(removed_before), [], [])
    old = {n: catalogs.Member(n, uid) for n, uid in recorded.items()}
    delta = catalogs.diff_catalogs(old, parsed.members)
    return MemberChange(
        {n: m.unique_id for n, m in sorted(parsed.members.items())},
        sorted((set(recorded) | removed_before) - set(parsed.members)),
        [m.name for m in delta.added],
        list(delta.reset),
    )


def read_catalog(store: Store, name: dns.name.Name, max_members: int) -> catalogs.Catalog:
    """The member set of the catalog's copy in the store (blocking: run it in a thread)."""
    path = store.zone_path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise LocalIOError(f"cannot read {path}: {err.strerror}") from err
    return catalogs.catalog_from_text(name, text, max_members=max_members, filename=str(path))


async def pull_catalog(
    name: dns.name.Name,
    primaries: list[Endpoint],
    store: Store,
    options: PullOptions,
    *,
    max_members: int = catalogs.DEFAULT_MAX_MEMBERS,
) -> CatalogPlan:
    """Pull the catalog into ``store``, read its members, and plan the members' pulls."""
    result = await pull_zone(name, primaries, StoreCopy(store, name), options=options)
    plan = CatalogPlan(name, result, primaries, options)
    recorded, removed_before = await asyncio.to_thread(load_membership, store, name)
    if result.status is Status.FAILED:
        return plan
    parsed = await asyncio.to_thread(read_catalog, store, name, max_members)
    plan.catalog = parsed
    for finding in parsed.findings:  # the caller reports them: pull prints each
        log.debug("pull: %s", finding.line())
    change = plan_change(parsed, recorded, removed_before)
    for member in change.reset:
        log.warning(
            "pull: catalog=%s member %s has a new unique id %s: transferring it from scratch",
            name,
            member.text,
            member.unique_id,
        )
        await asyncio.to_thread(remove_zone, store, member.name)
        plan.reset.append(member.name)
    plan.members = sorted(change.unique_ids)
    plan.unique_ids = dict(change.unique_ids)
    plan.removed = change.removed
    return plan


async def pull_catalogs(
    catalogs: list[tuple[dns.name.Name, list[Endpoint], PullOptions, int]], store: Store
) -> list[CatalogPlan]:
    """:func:`pull_catalog` for several (name, primaries, options, max_members) at once."""
    return list(
        await asyncio.gather(
            *(
                pull_catalog(name, primaries, store, options, max_members=limit)
                for name, primaries, options, limit in catalogs
            )
        )
    )


def member_plans(
    plans: list[CatalogPlan], taken: set[dns.name.Name]
) -> tuple[list[tuple[dns.name.Name, CatalogPlan]], list[str]]:
    """Each member with the catalog it comes from, and notes on conflicts.

    The rule is :func:`secdns.catalog.assign_members` (shared with ``serve``).
    A member a catalog does not get is not recorded as its member, so
    ``--prune`` through that catalog never removes it.
    """
    listings = [
        (
            plan.name,
            plan.catalog.members
            if plan.catalog is not None and plan.catalog.usable
            else {m: catalogs.Member(m, plan.unique_ids.get(m, "")) for m in plan.members},
        )
        for plan in plans
    ]
    owner, notes = catalogs.assign_members(listings, taken)
    by_name = {plan.name: plan for plan in plans}
    for plan in plans:
        for member in plan.members:
            if owner.get(member) != plan.name:
                plan.unique_ids.pop(member, None)
    return [(member, by_name[catalog]) for member, catalog in owner.items()], notes


def finish(
    plan: CatalogPlan, store: Store, prune: bool, pulled: frozenset[dns.name.Name] = frozenset()
) -> list[str]:
    """After the members' pulls: prune (if asked), record membership; notes for stderr.

    A zone in ``pulled`` (configured, or now another catalog's member) is never pruned.
    """
    if plan.catalog is None:
        return []
    _kept, notes = settle(store, plan.name, plan.unique_ids, plan.removed, prune, pulled)
    return notes


def settle(
    store: Store,
    name: dns.name.Name,
    unique_ids: dict[dns.name.Name, str],
    removed: list[dns.name.Name],
    prune: bool,
    pulled: frozenset[dns.name.Name] = frozenset(),
) -> tuple[list[dns.name.Name], list[str]]:
    """Prune the ex-members (if asked) and record the membership (``pull`` and ``watch``).

    Returns the ex-members kept (not pruned, or that could not be) and a note on each.
    """
    notes = []
    kept = []
    for member in removed:
        if member in pulled:
            continue  # someone else's now
        if not prune:
            kept.append(member)
            notes.append(
                f"catalog {name}: {member} is no longer a member: kept (--prune removes it)"
            )
            continue
        try:
            remove_zone(store, member)
        except LocalIOError as err:
            kept.append(member)
            notes.append(f"catalog {name}: {member} is no longer a member: {err.message}")
            continue
        notes.append(f"catalog {name}: {member} is no longer a member: removed (--prune)")
    save_membership(store, name, unique_ids, kept)
    return kept, notes
