"""Catalog zones (RFC 9432, version 2): read a catalog's member set, diff two, write one.

No I/O.  A catalog is untrusted input from a primary: every record that cannot
be used becomes a :class:`CatalogFinding` naming the catalog and the record,
and is skipped; the rest of the catalog still counts.  Only a catalog that is
not version 2, or lists more members than the limit, is unusable as a whole
(:attr:`Catalog.usable` is false): its consumer keeps what it had.

Layout read and written (RFC 9432 4)::

    catalog.            SOA ...
    catalog.            NS  invalid.
    version.catalog.    TXT "2"
    <id>.zones.catalog. PTR member.example.         ; one member (4.1)
    group.<id>.zones.catalog. TXT "name"            ; property group (4.4.2)
    coo.<id>.zones.catalog.   PTR other-catalog.    ; change of ownership (4.4.1)

What is a finding: a name that does not parse; a member node with more than one
PTR; a member listed twice (the unique id it had in the catalog's last version keeps
it, else the first in canonical order, RFC 9432 4.1: a new duplicate entry must not
take a served member over and reset it); a member equal to the catalog; a member
that is the root; a coo with more than one PTR.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import cast

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.txtbase

from secdns import wire
from secdns.config import DEFAULT_MAX_MEMBERS

VERSION = "2"
_ZONES = b"zones"
_PTR = dns.rdatatype.PTR
_TXT = dns.rdatatype.TXT


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    """One member zone of a catalog and its properties."""

    name: dns.name.Name
    unique_id: str  # the member node's label (RFC 9432 4.1), lower case
    groups: tuple[str, ...] = ()
    coo: dns.name.Name | None = None  # change of ownership: the catalog that may claim it

    @property
    def text(self) -> str:
        return self.name.to_text()

    def to_dict(self) -> dict[str, object]:
        return {
            "zone": self.text,
            "unique_id": self.unique_id,
            "groups": list(self.groups),
            "coo": self.coo.to_text() if self.coo else None,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class CatalogFinding:
    """A catalog record that was not used, and why."""

    catalog: str
    record: str  # "owner TYPE rdata", owner absolute
    message: str

    def line(self) -> str:
        return f"catalog {self.catalog}: {self.record}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"catalog": self.catalog, "record": self.record, "message": self.message}


@dataclasses.dataclass(frozen=True, slots=True)
class Catalog:
    """The member set of one catalog version."""

    name: dns.name.Name
    serial: int | None
    members: Mapping[dns.name.Name, Member]
    findings: tuple[CatalogFinding, ...] = ()
    usable: bool = True

    @property
    def text(self) -> str:
        return self.name.to_text()


@dataclasses.dataclass(frozen=True, slots=True)
class CatalogDelta:
    """What changed between two member sets (RFC 9432 5)."""

    added: tuple[Member, ...] = ()
    removed: tuple[Member, ...] = ()
    reset: tuple[Member, ...] = ()  # unique id changed: transfer from scratch (5.2)
    changed: tuple[Member, ...] = ()  # group or coo changed (5.3, 5.6)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.reset or self.changed)

    def to_dict(self) -> dict[str, object]:
        return {
            "added": [m.to_dict() for m in self.added],
            "removed": [m.to_dict() for m in self.removed],
            "reset": [m.to_dict() for m in self.reset],
            "changed": [m.to_dict() for m in self.changed],
        }


class _Reader:
    """Collects one catalog's records by node before judging them."""

    def __init__(self, catalog: dns.name.Name) -> None:
        self.catalog = catalog
        self.text = catalog.to_text()
        self.findings: list[CatalogFinding] = []
        self.version: list[str] = []
        self.ptrs: dict[str, list[tuple[str, str]]] = {}  # unique id -> [(record, target)]
        self.groups: dict[str, list[str]] = {}
        self.coos: dict[str, list[tuple[str, str]]] = {}
        self.serial: int | None = None

    def finding(self, record: str, message: str) -> None:
        self.findings.append(CatalogFinding(self.text, record, message))

    def add(self, record: wire.Record) -> None:
        rdata = _absolute(record.rdata, self.catalog) if record.rdtype == _PTR else record.rdata
        shown = f"{_absolute(record.owner, self.catalog)} {_type(record.rdtype)} {rdata}"
        if record.rdtype == dns.rdatatype.SOA:
            self.serial = record.serial
            return
        labels = record.key[len(self.catalog.labels) - 1 :]  # below the catalog, top first
        if labels == (b"version",) and record.rdtype == _TXT:
            self.version.append(_txt_text(record.rdata))
            return
        if len(labels) < 2 or labels[0] != _ZONES:
            return  # NS, custom properties (ext.), other data: not ours to judge
        unique = dns.name.Name([labels[1]]).to_text()  # escaped, lower case
        if len(labels) == 2 and record.rdtype == _PTR:
            self.ptrs.setdefault(unique, []).append((shown, record.rdata))
        elif len(labels) == 3 and labels[2] == b"group" and record.rdtype == _TXT:
            self.groups.setdefault(unique, []).append(_txt_text(record.rdata))
        elif len(labels) == 3 and labels[2] == b"coo" and record.rdtype == _PTR:
            self.coos.setdefault(unique, []).append((shown, record.rdata))

    def member(self, unique: str, entries: list[tuple[str, str]]) -> Member | None:
        shown, target = entries[0]
        if len(entries) > 1:
            for other, _ in entries:
                self.finding(other, f"member node {unique} has {len(entries)} PTR records")
            return None
        name = _name(target, self.catalog)
        if name is None:
            self.finding(shown, "the member name does not parse")
            return None
        if name == self.catalog:
            self.finding(shown, "a catalog cannot list itself as a member")
            return None
        if name == dns.name.root:
            self.finding(shown, "the root cannot be a catalog member")
            return None
        coo = None
        coos = self.coos.get(unique, [])
        if len(coos) > 1:
            for other, _ in coos:
                self.finding(other, f"member node {unique} has {len(coos)} coo PTR records")
        elif coos:
            coo = _name(coos[0][1], self.catalog)
            if coo is None:
                self.finding(coos[0][0], "the coo name does not parse")
        groups = tuple(sorted(set(self.groups.get(unique, []))))
        return Member(name, unique, groups, coo)


def parse_catalog(
    catalog: dns.name.Name,
    records: Iterable[wire.Record],
    *,
    max_members: int = DEFAULT_MAX_MEMBERS,
    held: Mapping[dns.name.Name, Member] | None = None,
) -> Catalog:
    """The member set of ``catalog`` from its records (as a transfer or the store gives
    them).  ``held``: the members of its last version, whose unique ids keep a member
    listed twice (a stranger's duplicate entry, sorting first, reset a served member,
    and again when it was deleted)."""
    reader = _Reader(catalog)
    for record in records:
        reader.add(record)
    text = catalog.to_text()
    if reader.version != [VERSION]:
        found = ", ".join(repr(v) for v in reader.version) or "none"
        reader.finding(
            f"version.{text} TXT",
            f'not a version 2 catalog (version TXT: {found}, expected exactly "2")',
        )
        return Catalog(catalog, reader.serial, {}, tuple(reader.findings), usable=False)
    if len(reader.ptrs) > max_members:
        reader.finding(
            f"zones.{text} PTR",
            f"{len(reader.ptrs)} members, over the member limit of {max_members}",
        )
        return Catalog(catalog, reader.serial, {}, tuple(reader.findings), usable=False)
    listed: dict[dns.name.Name, list[Member]] = {}
    for unique in sorted(reader.ptrs):
        member = reader.member(unique, reader.ptrs[unique])
        if member is not None:
            listed.setdefault(member.name, []).append(member)
    members: dict[dns.name.Name, Member] = {}
    for name, entries in listed.items():
        was = held.get(name) if held is not None else None
        keeper = next((m for m in entries if was and m.unique_id == was.unique_id), entries[0])
        members[name] = keeper
        for other in entries:
            if other is not keeper:
                reader.finding(
                    reader.ptrs[other.unique_id][0][0],
                    f"{other.text} is listed twice; unique id {keeper.unique_id} keeps it",
                )
    return Catalog(catalog, reader.serial, members, tuple(reader.findings))


def catalog_from_text(
    catalog: dns.name.Name,
    text: str,
    *,
    max_members: int = DEFAULT_MAX_MEMBERS,
    filename: str = "<catalog>",
    held: Mapping[dns.name.Name, Member] | None = None,
) -> Catalog:
    """The member set of a catalog held as a master file (the store's copy)."""
    from secdns.masterfile import read_master

    records = read_master(text, catalog, filename=filename).records
    return parse_catalog(catalog, records, max_members=max_members, held=held)


def diff_catalogs(
    old: Mapping[dns.name.Name, Member], new: Mapping[dns.name.Name, Member]
) -> CatalogDelta:
    """Members added, removed, reset (unique id changed) and with changed properties."""
    added = [new[n] for n in new if n not in old]
    removed = [old[n] for n in old if n not in new]
    reset = [new[n] for n in new if n in old and old[n].unique_id != new[n].unique_id]
    changed = [
        new[n]
        for n in new
        if n in old
        and old[n].unique_id == new[n].unique_id
        and (old[n].groups, old[n].coo) != (new[n].groups, new[n].coo)
    ]
    return CatalogDelta(*(tuple(sorted(ms, key=_order)) for ms in (added, removed, reset, changed)))


def assign_members(
    listings: Sequence[tuple[dns.name.Name, Mapping[dns.name.Name, Member]]],
    taken: Collection[dns.name.Name],
    owners: Mapping[dns.name.Name, dns.name.Name] | None = None,
) -> tuple[dict[dns.name.Name, dns.name.Name], list[str]]:
    """Which catalog owns each listed member (member -> catalog), and notes on conflicts.

    The one ownership rule of ``pull --catalog`` and ``serve``: a zone in ``taken``
    (configured on its own, or a catalog itself) is never a member.  A zone listed
    by two catalogs belongs to the first that listed it: its owner in ``owners``
    (serve: who has it now) if that catalog still lists it, else the first catalog
    in ``listings`` order; unless the owner's ``coo`` property for it names the
    other catalog, which then takes it (change of ownership, RFC 9432 5.6).
    """
    owners = owners or {}
    listed = {catalog: members for catalog, members in listings}
    order = {catalog: index for index, (catalog, _) in enumerate(listings)}
    owner: dict[dns.name.Name, dns.name.Name] = {}
    notes: list[str] = []

    def rank(catalog: dns.name.Name, member: dns.name.Name) -> tuple[int, int]:
        return (0 if owners.get(member) == catalog else 1, order[catalog])

    claims: dict[dns.name.Name, list[dns.name.Name]] = {}
    for catalog, members in listings:
        for member in members:
            if member in taken:
                notes.append(f"catalog {catalog}: {member} is configured as a zone; not a member")
                continue
            claims.setdefault(member, []).append(catalog)
    for member, claimants in claims.items():
        claimants.sort(key=lambda c: rank(c, member))
        first = previous = claimants[0]
        coo = listed[first][member].coo
        if coo is not None and coo != first and coo in claimants:
            notes.append(f"catalog {coo}: {member} moves here from catalog {first} (coo)")
            first = coo
        owner[member] = first
        for other in claimants:
            if other not in (first, previous):
                notes.append(
                    f"catalog {other}: {member} is a member of catalog {first} "
                    "already (the first catalog that lists a zone keeps it)"
                )
    return owner, notes


def unique_id(member: dns.name.Name) -> str:
    """A stable unique id for a member: a hash of its name, so it never changes by itself."""
    return hashlib.sha256(member.to_digestable()).hexdigest()[:20]


def render_catalog(
    catalog: dns.name.Name,
    zones: Iterable[dns.name.Name],
    serial: int,
    *,
    groups: Mapping[dns.name.Name, str] | None = None,
    ttl: int = 0,
) -> str:
    """A version 2 catalog of ``zones`` as a master file (absolute names, canonical order)."""
    c = catalog.to_text()
    lines = [
        f"{c} {ttl} IN SOA invalid. invalid. {serial} 3600 600 2147483646 0",
        f"{c} {ttl} IN NS invalid.",
        f'version.{c} {ttl} IN TXT "{VERSION}"',
    ]
    for zone in sorted(set(zones)):
        if zone == catalog:
            continue
        node = f"{unique_id(zone)}.zones.{c}"
        lines.append(f"{node} {ttl} IN PTR {zone.to_text()}")
        group = (groups or {}).get(zone)
        if group:
            escaped = group.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'group.{node} {ttl} IN TXT "{escaped}"')
    return "\n".join(lines) + "\n"


def _order(member: Member) -> dns.name.Name:
    return member.name


def _type(rdtype: int) -> str:
    # to_text takes any int (unknown types print as TYPEnnn); the stubs ask for the enum
    return dns.rdatatype.to_text(cast(dns.rdatatype.RdataType, rdtype))


def _absolute(owner: str, origin: dns.name.Name) -> str:
    try:
        return dns.name.from_text(owner, origin=origin).to_text()
    except dns.exception.DNSException:
        return owner


def _name(text: str, origin: dns.name.Name) -> dns.name.Name | None:
    try:
        return dns.name.from_text(text, origin=origin)
    except dns.exception.DNSException:
        return None


def _txt_text(rdata: str) -> str:
    try:
        txt = dns.rdata.from_text(dns.rdataclass.IN, _TXT, rdata)
    except dns.exception.DNSException:
        return rdata
    strings = cast(dns.rdtypes.txtbase.TXTBase, txt).strings  # from_text(TXT) gives a TXT
    return b"".join(strings).decode("utf-8", "replace")
