"""Zones -> a :class:`Delta` of record changes.  Pure: no I/O, no printing.

Records are compared semantically, not as text lines: owner names and the
domain names inside rdata compare case-insensitively (RFC 4343), TTL-only
changes are reported apart from additions and removals, and the SOA change is
reported on its own.  Everything is sorted in DNSSEC canonical order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from secdns import wire
from secdns.zonefile import record_key

SOA = dns.rdatatype.SOA

# Types whose presentation form holds only domain names and numbers, so that
# lowercasing it is exactly the case-insensitive comparison of RFC 4343.
_NAME_ONLY_TYPES = frozenset(
    {
        dns.rdatatype.NS,
        dns.rdatatype.CNAME,
        dns.rdatatype.DNAME,
        dns.rdatatype.PTR,
        dns.rdatatype.MX,
        dns.rdatatype.SRV,
        dns.rdatatype.SOA,
        dns.rdatatype.RP,
        dns.rdatatype.AFSDB,
        dns.rdatatype.RT,
        dns.rdatatype.KX,
        dns.rdatatype.MB,
        dns.rdatatype.MG,
        dns.rdatatype.MR,
        dns.rdatatype.MD,
        dns.rdatatype.MF,
    }
)

CompareKey = str


def compare_key(rec: wire.Record, ignore_serial: bool = False, apex: str = "") -> CompareKey:
    """A string that is equal for two records exactly when they are the same record
    (TTL aside).  Strings cache their hash, which makes million-record dicts cheap.
    *apex* is the zone's name, lowercased (see :func:`name_rdata`)."""
    rdtype = rec.rdtype
    rdata = name_rdata(rec.rdata, apex) if rdtype in _NAME_ONLY_TYPES else rec.rdata
    if ignore_serial and rdtype == SOA:
        fields = rdata.split()
        if len(fields) == 7:
            rdata = " ".join(fields[:2] + ["*"] + fields[3:])
    return f"{rec.owner.lower()}\t{rdtype}\t{rdata}"


def name_rdata(rdata: str, apex: str) -> str:
    """Rdata of a name-only type as compared: lowercased, names in the zone relative.

    :mod:`secdns.wire` writes a name absolute when its zone part is not in the
    origin's exact case; compared case-insensitively, it is the relative name.
    *apex* is the zone's name, lowercased, or ``""`` for the root zone.
    """
    text = rdata.lower()
    if not apex or apex not in text:
        return text
    tokens = text.split(" ")
    dotted = "." + apex
    for i, token in enumerate(tokens):
        if token == apex:
            tokens[i] = "@"
        elif token.endswith(dotted):
            head = token[: -len(dotted)]
            if (len(head) - len(head.rstrip("\\"))) % 2 == 0:  # that dot is not escaped
                tokens[i] = head
    return " ".join(tokens)


@dataclasses.dataclass(frozen=True, slots=True)
class TtlChange:
    old: wire.Record
    new: wire.Record


@dataclasses.dataclass(slots=True)
class Delta:
    """What turns zone A into zone B."""

    origin: dns.name.Name
    serial_a: int | None
    serial_b: int | None
    added: list[wire.Record]
    removed: list[wire.Record]
    ttl_changed: list[TtlChange]
    soa_a: wire.Record | None = None
    soa_b: wire.Record | None = None

    @property
    def same(self) -> bool:
        return not (self.added or self.removed or self.ttl_changed)

    def stats(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "ttl_changed": len(self.ttl_changed),
        }

    def by_owner(self) -> list[tuple[tuple[bytes, ...], list[tuple[str, object]]]]:
        """Changes grouped by owner name in canonical order: ('-'|'+'|'~', item).

        Within an owner, removals come first, then TTL changes, then additions (as
        ``diff -u`` shows a replaced line), each in canonical type and rdata order.
        """
        items: list[tuple[tuple, str, object]] = []
        items += [(record_key(r), "-", r) for r in self.removed]
        items += [(record_key(r), "+", r) for r in self.added]
        items += [(record_key(c.new), "~", c) for c in self.ttl_changed]
        sign_order = {"-": 0, "~": 1, "+": 2}
        items.sort(key=lambda item: (item[0][0], sign_order[item[1]], item[0][1], item[0][2]))
        groups: list[tuple[tuple[bytes, ...], list[tuple[str, object]]]] = []
        for key, sign, obj in items:
            if not groups or groups[-1][0] != key[0]:
                groups.append((key[0], []))
            groups[-1][1].append((sign, obj))
        return groups


def _soa(records: Iterable[wire.Record], origin_key: tuple[bytes, ...]) -> wire.Record | None:
    for rec in records:
        if rec.rdtype == SOA and rec.key == origin_key:
            return rec
    return None


def diff_zones(
    origin: dns.name.Name,
    a: list[wire.Record],
    b: list[wire.Record],
    *,
    ignore_ttl: bool = False,
    ignore_serial: bool = False,
    ignore_types: frozenset[int] = frozenset(),
) -> Delta:
    """Compare two zones record by record; linear in their sizes."""
    origin_key = tuple(label.lower() for label in reversed(origin.labels[:-1]))
    apex = origin.to_text().lower() if origin != dns.name.root else ""

    name_types = _NAME_ONLY_TYPES

    def index(records: list[wire.Record]) -> dict[CompareKey, wire.Record]:
        if ignore_types or ignore_serial:
            return {
                compare_key(r, ignore_serial, apex): r
                for r in records
                if r.rdtype not in ignore_types
            }
        # the hot path of compare_key, inlined
        return {
            f"{r.owner.lower()}\t{r.rdtype}\t"
            f"{name_rdata(r.rdata, apex) if r.rdtype in name_types else r.rdata}": r
            for r in records
        }

    index_a = index(a)
    index_b = index(b)
    removed = [r for k, r in index_a.items() if k not in index_b]
    added = [r for k, r in index_b.items() if k not in index_a]
    ttl_changed: list[TtlChange] = []
    if not ignore_ttl:
        smaller, larger, flip = (
            (index_a, index_b, False) if len(index_a) <= len(index_b) else (index_b, index_a, True)
        )
        for key, rec in smaller.items():
            other = larger.get(key)
            if other is not None and other.ttl != rec.ttl:
                old, new = (other, rec) if flip else (rec, other)
                ttl_changed.append(TtlChange(old, new))
    removed.sort(key=record_key)
    added.sort(key=record_key)
    ttl_changed.sort(key=lambda c: record_key(c.new))
    soa_a, soa_b = _soa(a, origin_key), _soa(b, origin_key)
    return Delta(
        origin,
        soa_a.serial if soa_a else None,
        soa_b.serial if soa_b else None,
        added,
        removed,
        ttl_changed,
        soa_a,
        soa_b,
    )


# --- renderings that scripts consume (pure text) -------------------------------------------------


def absolute_owner(rec: wire.Record, origin: dns.name.Name) -> str:
    if rec.owner == "@":
        return origin.to_text()
    if rec.owner.endswith("."):
        return rec.owner
    return f"{rec.owner}.{origin.to_text()}" if origin != dns.name.root else f"{rec.owner}."


def absolute_rdata(rec: wire.Record, origin: dns.name.Name) -> str:
    """The rdata with every name written absolute (for nsupdate and IXFR listings)."""
    rd = dns.rdata.from_text(
        dns.rdataclass.RdataClass(rec.rdclass),
        dns.rdatatype.RdataType(rec.rdtype),
        rec.rdata,
        origin=origin,
        relativize=False,
    )
    return rd.to_text(origin=None, relativize=False)


def absolute_line(rec: wire.Record, origin: dns.name.Name) -> str:
    rdclass = dns.rdataclass.to_text(dns.rdataclass.RdataClass(rec.rdclass))
    return (
        f"{absolute_owner(rec, origin)} {rec.ttl} {rdclass} "
        f"{wire.type_text(rec.rdtype)} {absolute_rdata(rec, origin)}"
    )


def record_dict(rec: wire.Record, origin: dns.name.Name) -> dict[str, object]:
    return {
        "name": absolute_owner(rec, origin),
        "ttl": rec.ttl,
        "type": wire.type_text(rec.rdtype),
        "rdata": absolute_rdata(rec, origin),
    }


def to_json(delta: Delta, source_a: str, source_b: str) -> dict[str, object]:
    """The documented JSON schema of ``secdns diff --format json``."""
    origin = delta.origin
    return {
        "zone": origin.to_text(),
        "same": delta.same,
        "a": {"source": source_a, "serial": delta.serial_a},
        "b": {"source": source_b, "serial": delta.serial_b},
        "stats": delta.stats(),
        "added": [record_dict(r, origin) for r in delta.added],
        "removed": [record_dict(r, origin) for r in delta.removed],
        "ttl_changed": [
            {
                "name": absolute_owner(c.new, origin),
                "type": wire.type_text(c.new.rdtype),
                "rdata": absolute_rdata(c.new, origin),
                "ttl_a": c.old.ttl,
                "ttl_b": c.new.ttl,
            }
            for c in delta.ttl_changed
        ],
    }


def to_nsupdate(delta: Delta, server: str | None = None) -> str:
    """An nsupdate(1) script that turns A into B (the SOA is left to the server); empty
    when only the SOA differs, or nothing (as ``-f ixfr``: piped into nsupdate, nothing
    is sent)."""
    origin = delta.origin
    lines = []
    if server:
        lines.append(f"server {server}")
    lines.append(f"zone {origin.to_text()}")
    for rec in delta.removed:
        if rec.rdtype != SOA:
            lines.append(f"update delete {absolute_line(rec, origin)}")
    for change in delta.ttl_changed:
        lines.append(f"update delete {absolute_line(change.old, origin)}")
    for rec in delta.added:
        if rec.rdtype != SOA:
            lines.append(f"update add {absolute_line(rec, origin)}")
    for change in delta.ttl_changed:
        lines.append(f"update add {absolute_line(change.new, origin)}")
    if not any(line.startswith("update ") for line in lines):
        return ""  # nothing to change (the SOA aside): no empty UPDATE to send
    lines.append("send")
    return "\n".join(lines) + "\n"


def to_ixfr(delta: Delta) -> str:
    """The change as an RFC 1995 IXFR answer: new SOA, old SOA, deletions, new SOA,
    additions, new SOA (absolute names, one record per line)."""
    origin = delta.origin
    if delta.soa_a is None or delta.soa_b is None:
        raise ValueError("both zones need an SOA for an IXFR listing")
    new_soa = absolute_line(delta.soa_b, origin)
    old_soa = absolute_line(delta.soa_a, origin)
    removed = [r for r in delta.removed if r.rdtype != SOA] + [c.old for c in delta.ttl_changed]
    added = [r for r in delta.added if r.rdtype != SOA] + [c.new for c in delta.ttl_changed]
    lines = [new_soa, old_soa]
    lines += [absolute_line(r, origin) for r in removed]
    lines.append(new_soa)
    lines += [absolute_line(r, origin) for r in added]
    lines.append(new_soa)
    return "\n".join(lines) + "\n"
